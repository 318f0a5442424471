//! Sessions of the Capillary auth API: opened by token/generate, named by a
//! `P-<uuid>` sessionId, closed by a successful otp/validate, ended by the wrong code
//! that uses up an OTP's retries.

use diesel::prelude::*;

use super::DbConnection;
use super::kept::kept_here;
use super::native::Native;
use super::schema::capillary_sessions;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = capillary_sessions)]
pub struct CapSession {
    pub id: String,
    pub brand_key: String,
    /// Opened on a /web/ route; usable only there.
    pub web: bool,
    pub identifier_type: String,
    /// Normalised: digits of a mobile number, lower-case e-mail or login name.
    pub identifier_value: String,
    pub device_id: Option<String>,
    pub user_id: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub validated_at: Option<i64>,
}

pub fn insert(conn: &mut DbConnection, s: &CapSession) -> QueryResult<usize> {
    diesel::insert_into(capillary_sessions::table)
        .values(s)
        .exec(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<CapSession>> {
    crate::per_backend!(conn, |c| capillary_sessions::table
        .find(id)
        .select(CapSession::as_select())
        .get_result(c))
    .optional()
}

/// Closes an open session; false when it was no longer open (validated meanwhile).
pub fn mark_validated(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<bool> {
    let open = capillary_sessions::table
        .find(id)
        .filter(capillary_sessions::validated_at.is_null());
    let validate = diesel::update(open)
        .set(capillary_sessions::validated_at.eq(now))
        .returning(capillary_sessions::id);
    Ok(kept_here!(validate)
        .one::<String>(conn)
        .optional()?
        .is_some())
}

/// Ends a session now (it then reads as expired): the client must start again with
/// token/generate.
pub fn end(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        capillary_sessions::table
            .find(id)
            .filter(capillary_sessions::expires_at.gt(now)),
    )
    .set(capillary_sessions::expires_at.eq(now))
    .exec(conn)
}

/// Deletes at most `limit` expired sessions.
pub fn delete_expired(conn: &mut DbConnection, now: i64, limit: i64) -> QueryResult<usize> {
    let table = ("capillary_sessions", "id");
    super::delete_batch(conn, table, ("expires_at", "<="), None, now, limit)
}
