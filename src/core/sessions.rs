//! Session tokens (the legacy TokenID): 256 random bits, given to the client as
//! upper-case hex, stored only as their SHA-256, with an absolute and an idle expiry.

use crate::config::SessionSettings;
use crate::core::keys::{random_bytes, sha256_hex};
use crate::core::users::User;
use crate::db::sessions::{self, Session};
use crate::db::users;
use crate::db::{Db, DbConnection, now_ms};
use crate::error::{Error, Result};

pub fn create(
    conn: &mut DbConnection,
    user_id: i64,
    device_id: Option<&str>,
    s: &SessionSettings,
) -> Result<String> {
    let token = hex::encode_upper(random_bytes::<32>());
    let now = now_ms();
    sessions::insert(
        conn,
        &Session {
            token_hash: hash(&token),
            user_id,
            device_id: device_id.map(str::to_string),
            created_at: now,
            expires_at: now + s.lifetime_seconds * 1000,
            last_seen_at: now,
            idle_timeout_ms: s.idle_timeout_minutes * 60_000,
        },
    )?;
    Ok(token)
}

/// Whether a token has the shape of otpgate's own (64 hex digits). Tokens of another
/// shape were issued by someone else (the legacy server's are 288 hex digits).
pub fn is_own_token(token: &str) -> bool {
    let token = token.trim();
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The user of a live token; refreshes its idle timer.
pub fn authenticate(conn: &mut DbConnection, token: &str) -> Result<i64> {
    if !is_own_token(token) {
        return Err(Error::InvalidSession);
    }
    sessions::touch(conn, &hash(token.trim()), now_ms())?.ok_or(Error::InvalidSession)
}

/// The user of a live session token (an activity of the session).
pub async fn user_of(db: &Db, token: &str) -> Result<User> {
    let token = token.to_string();
    db.run(move |c| {
        let id = authenticate(c, &token)?;
        users::find_by_id(c, id)?.ok_or(Error::InvalidSession)
    })
    .await
}

fn hash(token: &str) -> String {
    sha256_hex(token.to_ascii_uppercase().as_bytes())
}
