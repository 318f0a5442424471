//! otpgate's own API keys, stored as the SHA-256 of the key.

use diesel::prelude::*;

use super::DbConnection;
use super::native::Native;
use super::schema::{api_keys, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub key_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// A key to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// Stores a key; its id.
pub fn insert(conn: &mut DbConnection, key: &NewApiKey<'_>) -> QueryResult<i64> {
    diesel::insert_into(api_keys::table)
        .values(key)
        .exec(conn)?;
    api_keys::table
        .filter(api_keys::key_hash.eq(key.key_hash))
        .select(api_keys::id)
        .one(conn)
}

/// The key with this hash, if any: one indexed look-up.
pub fn find_by_hash(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<ApiKey>> {
    crate::per_backend!(conn, |c| api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .select(ApiKey::as_select())
        .get_result(c))
    .optional()
}

/// Records a use at `now`, unless one was recorded within the last `every_ms`: one
/// conditional statement, so busy keys are written at most once per interval.
pub fn touch(conn: &mut DbConnection, id: i64, now: i64, every_ms: i64) -> QueryResult<bool> {
    let n = diesel::update(
        api_keys::table.filter(api_keys::id.eq(id)).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(now - every_ms)),
        ),
    )
    .set(api_keys::last_used_at.eq(now))
    .exec(conn)?;
    Ok(n > 0)
}

/// Revokes a live key; false when there is no such key or it was already revoked.
pub fn revoke(conn: &mut DbConnection, id: i64, now: i64) -> QueryResult<bool> {
    let n = diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(now))
    .exec(conn)?;
    Ok(n > 0)
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<ApiKey>> {
    crate::per_backend!(conn, |c| api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .get_result(c))
    .optional()
}

/// Every key (of one user, when given) with its user's login name, oldest first.
pub fn list(conn: &mut DbConnection, user_id: Option<i64>) -> QueryResult<Vec<(ApiKey, String)>> {
    use diesel::IntoSql;
    use diesel::sql_types::{BigInt, Nullable};
    let of_user = user_id
        .into_sql::<Nullable<BigInt>>()
        .is_null()
        .or(api_keys::user_id.nullable().eq(user_id));
    crate::per_backend!(conn, |c| api_keys::table
        .inner_join(users::table)
        .filter(of_user)
        .select((ApiKey::as_select(), users::login_name))
        .order(api_keys::id)
        .load(c))
}
