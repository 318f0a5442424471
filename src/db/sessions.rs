use diesel::prelude::*;

use super::DbConnection;
use super::kept::kept_here;
use super::native::Native;
use super::schema::sessions;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
// None is written as NULL, so the INSERT is the same SQL every time and stays prepared.
#[diesel(treat_none_as_default_value = false)]
pub struct Session {
    pub token_hash: String,
    pub user_id: i64,
    pub device_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub idle_timeout_ms: i64,
}

/// A session about to be opened for a user not known yet (the one a code logs in).
pub struct Opening {
    pub token_hash: String,
    pub device_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub idle_timeout_ms: i64,
}

impl Opening {
    /// The session, opened for `user_id`.
    pub fn for_user(&self, user_id: i64) -> Session {
        Session {
            token_hash: self.token_hash.clone(),
            user_id,
            device_id: self.device_id.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_seen_at: self.created_at,
            idle_timeout_ms: self.idle_timeout_ms,
        }
    }
}

pub fn insert(conn: &mut DbConnection, s: &Session) -> QueryResult<usize> {
    diesel::insert_into(sessions::table).values(s).exec(conn)
}

/// The user of a live session, touching it so the idle timeout starts again. One
/// conditional statement, so a session past either limit is never revived.
pub fn touch(conn: &mut DbConnection, token_hash: &str, now: i64) -> QueryResult<Option<i64>> {
    let live = sessions::table
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::expires_at.gt(now))
        .filter((sessions::last_seen_at + sessions::idle_timeout_ms).gt(now));
    let touch = diesel::update(live)
        .set(sessions::last_seen_at.eq(now))
        .returning(sessions::user_id);
    kept_here!(touch).one(conn).optional()
}

/// Deletes at most `limit` sessions past their end, then at most `limit` idle for
/// longer than their idle timeout: two statements, each on its own index (an `OR` of
/// the two would read the whole table).
pub fn delete_expired(conn: &mut DbConnection, now: i64, limit: i64) -> QueryResult<usize> {
    let table = ("sessions", "token_hash");
    let ended = super::delete_batch(conn, table, ("expires_at", "<="), None, now, limit)?;
    let idle = ("last_seen_at + idle_timeout_ms", "<=");
    Ok(ended + super::delete_batch(conn, table, idle, None, now, limit)?)
}
