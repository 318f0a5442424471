//! Per-destination send counting. Each destination has a row that serialises the
//! sends to it: locked with FOR UPDATE on PostgreSQL, covered by the write lock of
//! `BEGIN IMMEDIATE` on SQLite. Under that lock, the sends within the window are counted
//! and the new one recorded, so the limit holds across processes.

use diesel::prelude::*;

use super::DbConnection;
use super::kept::{kept, kept_here};
use super::native::Native;
use super::schema::{send_limits, sends};

/// Makes sure the row of `key` (a destination's) exists and locks it until the
/// transaction ends. Returns the time of the last send to it (0 when none).
pub fn lock_destination(conn: &mut DbConnection, key: &str) -> QueryResult<i64> {
    // On PostgreSQL the row of a destination sent to before is locked as it is: an
    // update would leave a dead version of it behind at every issue.
    if let DbConnection::Pg(c) = conn {
        let locked = send_limits::table
            .find(key)
            .select(send_limits::last_sent_at)
            .for_update()
            .get_result(c)
            .optional()?;
        if let Some(last) = locked {
            return Ok(last);
        }
    }
    // One statement that creates or locks the row, so housekeeping deleting an idle
    // row cannot slip in between finding it and locking it. On SQLite the write lock
    // of BEGIN IMMEDIATE covers it already; the upsert saves the separate read.
    let upsert = diesel::insert_into(send_limits::table)
        .values((
            send_limits::destination_key.eq(key),
            send_limits::last_sent_at.eq(0i64),
        ))
        .on_conflict(send_limits::destination_key)
        .do_update()
        .set(send_limits::destination_key.eq(key))
        .returning(send_limits::last_sent_at);
    crate::per_backend!(conn, |c| kept_here!(upsert).get_result(c))
}

/// Serialises the issues of one subject (a user and purpose) until the transaction
/// ends. On PostgreSQL a transaction-scoped advisory lock on the first 64 bits of
/// `key`, a SHA-256 in hex: no row is written, so the subject leaves no row versions
/// behind for vacuum (two subjects sharing 64 bits would only wait on each other). On
/// SQLite the write lock of `BEGIN IMMEDIATE` already holds every other writer off.
pub fn lock_subject(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    let DbConnection::Pg(c) = conn else {
        return Ok(());
    };
    let bits = key
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| diesel::result::Error::QueryBuilderError("a subject key is hex".into()))?;
    let lock = diesel::sql_query("SELECT 1 AS done FROM pg_advisory_xact_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(bits.cast_signed());
    kept(lock).rows(c)?;
    Ok(())
}

/// Sends to the destination since `since`: how many, and the oldest of them.
pub fn sends_since(
    conn: &mut DbConnection,
    key: &str,
    since: i64,
) -> QueryResult<(i64, Option<i64>)> {
    let rows: (i64, Option<i64>) = sends::table
        .filter(sends::destination_key.eq(key))
        .filter(sends::sent_at.gt(since))
        .select((diesel::dsl::count_star(), diesel::dsl::min(sends::sent_at)))
        .one(conn)?;
    Ok(rows)
}

pub fn record_send(conn: &mut DbConnection, key: &str, now: i64) -> QueryResult<()> {
    let id = uuid::Uuid::now_v7().to_string();
    // On PostgreSQL the send and its time in one statement: one round trip.
    if let DbConnection::Pg(c) = conn {
        const SQL: &str = "WITH sent AS (INSERT INTO sends (id, destination_key, sent_at) \
            VALUES ($1, $2, $3)) \
            UPDATE send_limits SET last_sent_at = $3 WHERE destination_key = $2 \
            RETURNING 1 AS done";
        let record = diesel::sql_query(SQL)
            .bind::<diesel::sql_types::Text, _>(&id)
            .bind::<diesel::sql_types::Text, _>(key)
            .bind::<diesel::sql_types::BigInt, _>(now);
        kept(record).rows(c)?;
        return Ok(());
    }
    diesel::insert_into(sends::table)
        .values((
            sends::id.eq(id),
            sends::destination_key.eq(key),
            sends::sent_at.eq(now),
        ))
        .exec(conn)?;
    let last_sent = diesel::update(send_limits::table.find(key))
        .set(send_limits::last_sent_at.eq(now))
        .returning(send_limits::last_sent_at);
    kept_here!(last_sent).all::<i64>(conn)?;
    Ok(())
}

/// Forgets at most `limit` sends older than `before` (housekeeping; they no longer
/// count anywhere).
pub fn prune(conn: &mut DbConnection, before: i64, limit: i64) -> QueryResult<usize> {
    super::delete_batch(conn, ("sends", "id"), "sent_at < ?", before, limit)
}

/// Forgets at most `limit` lock rows of destinations not sent to since `before`: they
/// are made again on the next issue. (Databases written before subjects were locked
/// without a row also hold subjects' rows, which never record a send.)
pub fn prune_idle(conn: &mut DbConnection, before: i64, limit: i64) -> QueryResult<usize> {
    let table = ("send_limits", "destination_key");
    super::delete_batch(conn, table, "last_sent_at < ?", before, limit)
}
