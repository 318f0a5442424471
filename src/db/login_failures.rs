//! Failed password logins, one row per failure and key (core/login.rs names the keys).

use diesel::prelude::*;

use super::DbConnection;
use super::native::Native;
use super::schema::login_failures;

/// The failures under `key` since `since`: how many, the oldest and the latest.
pub fn since(
    conn: &mut DbConnection,
    key: &str,
    since: i64,
) -> QueryResult<(i64, Option<i64>, Option<i64>)> {
    login_failures::table
        .filter(login_failures::key.eq(key))
        .filter(login_failures::at.gt(since))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(login_failures::at),
            diesel::dsl::max(login_failures::at),
        ))
        .one(conn)
}

pub fn record(conn: &mut DbConnection, keys: &[&str], now: i64) -> QueryResult<()> {
    // One row at a time: the connection serves both backends, and batch inserts are
    // not written the same way on both.
    for k in keys {
        diesel::insert_into(login_failures::table)
            .values((login_failures::key.eq(*k), login_failures::at.eq(now)))
            .exec(conn)?;
    }
    Ok(())
}

/// Forgets the failures under `key` (a good password from that client).
pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<usize> {
    diesel::delete(login_failures::table.filter(login_failures::key.eq(key))).exec(conn)
}

/// Forgets failures older than `before` (housekeeping; they count nowhere).
/// At most `limit` of them.
pub fn prune(conn: &mut DbConnection, before: i64, limit: i64) -> QueryResult<usize> {
    let table = ("login_failures", "id");
    super::delete_batch(conn, table, ("at", "<"), None, before, limit)
}
