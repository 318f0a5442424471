//! Per-destination send counting. Each destination has a row that serialises the
//! sends to it: locked with FOR UPDATE on PostgreSQL, covered by the write lock of
//! `BEGIN IMMEDIATE` on SQLite. The row holds the times of the recent sends
//! ([`crate::core::otp::sends`]): under the lock they are counted, and written back
//! with the new send, so the limit holds across processes.

use diesel::prelude::*;

use super::DbConnection;
use super::kept::kept_here;
use super::native::Native;
use super::schema::send_limits;

/// A destination's row, as it is locked.
#[derive(Debug, Default, PartialEq, Eq, Queryable)]
pub struct Locked {
    /// The time of the last send (0 when none).
    pub last_sent_at: i64,
    /// The recent sends, as the row keeps them, with the longest window and the
    /// highest limit of the policies that counted them.
    pub recent_sends: String,
    pub sends_window_ms: i64,
    pub sends_max: i64,
}

/// What a destination's row keeps of its sends, as a send writes it
/// ([`crate::core::otp::sends`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Kept {
    /// The times, in milliseconds, joined by commas.
    pub times: String,
    pub window_ms: i64,
    pub max: i64,
}

type Columns = (
    send_limits::last_sent_at,
    send_limits::recent_sends,
    send_limits::sends_window_ms,
    send_limits::sends_max,
);

const COLUMNS: Columns = (
    send_limits::last_sent_at,
    send_limits::recent_sends,
    send_limits::sends_window_ms,
    send_limits::sends_max,
);

/// Makes sure the row of `key` (a destination's) exists and locks it until the
/// transaction ends.
pub fn lock_destination(conn: &mut DbConnection, key: &str) -> QueryResult<Locked> {
    // On PostgreSQL the row of a destination sent to before is locked as it is: an
    // update would leave a dead version of it behind at every issue.
    if let DbConnection::Pg(c) = conn {
        let locked = send_limits::table
            .find(key)
            .select(COLUMNS)
            .for_update()
            .get_result(c)
            .optional()?;
        if let Some(locked) = locked {
            return Ok(locked);
        }
    }
    // One statement that creates or locks the row, so housekeeping deleting an idle
    // row cannot slip in between finding it and locking it. On SQLite the write lock
    // of BEGIN IMMEDIATE covers it already; the upsert saves the separate read.
    let upsert = diesel::insert_into(send_limits::table)
        .values((
            send_limits::destination_key.eq(key),
            send_limits::last_sent_at.eq(0i64),
            send_limits::recent_sends.eq(""),
            send_limits::sends_window_ms.eq(0i64),
            send_limits::sends_max.eq(0i64),
        ))
        .on_conflict(send_limits::destination_key)
        .do_update()
        .set(send_limits::destination_key.eq(key))
        .returning(COLUMNS);
    crate::per_backend!(conn, |c| kept_here!(upsert).get_result(c))
}

/// The lock that serialises the issues of one subject (a user and purpose), for
/// [`super::write_transaction_locked`]: the first 64 bits of `key`, a SHA-256 in hex.
/// On PostgreSQL it is a transaction-scoped advisory lock, so no row is written and
/// the subject leaves no row versions behind for vacuum (two subjects sharing 64 bits
/// would only wait on each other). Every process computes the same number, so the
/// lock holds across them.
pub fn subject_lock(key: &str) -> QueryResult<i64> {
    key.get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .map(u64::cast_signed)
        .ok_or_else(|| diesel::result::Error::QueryBuilderError("a subject key is hex".into()))
}

/// Records a send at `now` to the locked row of `key`: `kept` is what the row keeps
/// of its sends, with this one.
pub fn record_send(conn: &mut DbConnection, key: &str, now: i64, kept: &Kept) -> QueryResult<()> {
    let record = diesel::update(send_limits::table.find(key))
        .set((
            send_limits::last_sent_at.eq(now),
            send_limits::recent_sends.eq(&kept.times),
            send_limits::sends_window_ms.eq(kept.window_ms),
            send_limits::sends_max.eq(kept.max),
        ))
        .returning(send_limits::last_sent_at);
    kept_here!(record).all::<i64>(conn)?;
    Ok(())
}

/// Forgets at most `limit` rows of destinations not sent to since `before`, with the
/// sends they hold, which no longer count anywhere: they are made again on the next
/// issue. (Databases written before subjects were locked without a row also hold
/// subjects' rows, which never record a send.)
pub fn prune_idle(conn: &mut DbConnection, before: i64, limit: i64) -> QueryResult<usize> {
    let table = ("send_limits", "destination_key");
    super::delete_batch(conn, table, ("last_sent_at", "<"), None, before, limit)
}
