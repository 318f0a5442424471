//! Users' own API keys on the legacy server, sealed.

use diesel::prelude::*;

use super::native::Native;
use super::schema::upstream_keys;
use super::{DbConnection, write_transaction};

/// Stores (or replaces) a user's sealed key.
pub fn set(conn: &mut DbConnection, user_id: i64, sealed: &[u8], now: i64) -> QueryResult<()> {
    write_transaction(conn, |c| {
        diesel::delete(upstream_keys::table.find(user_id)).exec(c)?;
        diesel::insert_into(upstream_keys::table)
            .values((
                upstream_keys::user_id.eq(user_id),
                upstream_keys::sealed.eq(sealed),
                upstream_keys::updated_at.eq(now),
            ))
            .exec(c)?;
        Ok::<(), diesel::result::Error>(())
    })
}

/// Removes a user's key; whether there was one.
pub fn clear(conn: &mut DbConnection, user_id: i64) -> QueryResult<bool> {
    Ok(diesel::delete(upstream_keys::table.find(user_id)).exec(conn)? > 0)
}

/// A user's sealed key.
pub fn get(conn: &mut DbConnection, user_id: i64) -> QueryResult<Option<Vec<u8>>> {
    upstream_keys::table
        .find(user_id)
        .select(upstream_keys::sealed)
        .one(conn)
        .optional()
}
