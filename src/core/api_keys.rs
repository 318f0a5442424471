//! otpgate's own API keys (the legacy `AuthType` APIKEY): 32 random bytes in base64,
//! the shape of the legacy server's keys, shown once when created and stored only as
//! their SHA-256. A key belongs to a user and is deleted with the user.
//!
//! A key is found by its hash, one indexed look-up, so no comparison of the key
//! itself leaks how much of it was right. Its last use is written at most once a
//! minute.

use base64::Engine;

use crate::core::keys::{random_bytes, sha256_hex};
use crate::core::users::User;
use crate::db::api_keys::{self, ApiKey, NewApiKey};
use crate::db::{Db, DbConnection, now_ms, users};
use crate::error::{Error, Result};

/// How often a key's last use is written, at most.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// A new key, as the caller sends it in `APIKey`.
pub fn generate() -> String {
    base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
}

/// How a key is stored and looked up.
pub fn hash(key: &str) -> String {
    sha256_hex(key.trim().as_bytes())
}

/// A key just created: the key itself exists only here.
pub struct Created {
    pub id: i64,
    pub key: String,
    pub user: User,
}

/// The user with this login name, e-mail or LoginUID.
pub fn find_user(conn: &mut DbConnection, login: &str) -> Result<User> {
    match users::find_by_login(conn, login)? {
        Some(u) => Some(u),
        None => users::find_by_login_uid(conn, login)?,
    }
    .ok_or_else(|| Error::invalid(format!("no user has the login '{}'", login.trim())))
}

/// Creates a key for the user with this login; `expires_at` in ms, None for never.
pub fn create(
    conn: &mut DbConnection,
    login: &str,
    name: &str,
    expires_at: Option<i64>,
) -> Result<Created> {
    let user = find_user(conn, login)?;
    let now = now_ms();
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Error::invalid("the expiry is in the past"));
    }
    let key = generate();
    let id = api_keys::insert(
        conn,
        &NewApiKey {
            user_id: user.id,
            name: name.trim(),
            key_hash: &hash(&key),
            created_at: now,
            expires_at,
        },
    )?;
    Ok(Created { id, key, user })
}

/// The id of the user a key authenticates: `InvalidApiKey` for a key that is unknown
/// or revoked, `ApiKeyExpired` for one past its expiry.
pub fn authenticate(conn: &mut DbConnection, key: &str, now: i64) -> Result<i64> {
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::InvalidApiKey);
    }
    let found = api_keys::find_by_hash(conn, &hash(key))?.ok_or(Error::InvalidApiKey)?;
    check(&found, now)?;
    api_keys::touch(conn, found.id, now, TOUCH_EVERY_MS)?;
    Ok(found.user_id)
}

fn check(k: &ApiKey, now: i64) -> Result<()> {
    if k.revoked_at.is_some() {
        return Err(Error::InvalidApiKey);
    }
    if k.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::ApiKeyExpired);
    }
    Ok(())
}

/// The user a key authenticates.
pub async fn user_of(db: &Db, key: &str) -> Result<User> {
    let key = key.to_string();
    db.run(move |c| {
        let id = authenticate(c, &key, now_ms())?;
        users::find_by_id(c, id)?.ok_or(Error::InvalidApiKey)
    })
    .await
}

/// Every key (of the user with this login, when given) and its user's login name.
pub fn list(conn: &mut DbConnection, login: Option<&str>) -> Result<Vec<(ApiKey, String)>> {
    let user_id = match login {
        Some(l) => Some(find_user(conn, l)?.id),
        None => None,
    };
    Ok(api_keys::list(conn, user_id)?)
}

/// Revokes a key: from now on it is answered as unknown.
pub fn revoke(conn: &mut DbConnection, id: i64) -> Result<()> {
    match api_keys::find(conn, id)? {
        None => Err(Error::invalid(format!("no API key has the id {id}"))),
        Some(k) if k.revoked_at.is_some() => Err(Error::invalid(format!(
            "the API key {id} is already revoked"
        ))),
        Some(_) => {
            api_keys::revoke(conn, id, now_ms())?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_legacy_shape() {
        let k = generate();
        assert_eq!(k.len(), 44);
        assert!(k.ends_with('='));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&k)
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(k, generate());
        assert_eq!(hash(&format!(" {k}\n")), hash(&k));
        assert_eq!(hash(&k).len(), 64);
    }

    #[test]
    fn revoked_beats_expired() {
        let k = ApiKey {
            id: 1,
            user_id: 1,
            name: String::new(),
            key_hash: String::new(),
            created_at: 0,
            expires_at: Some(10),
            revoked_at: None,
            last_used_at: None,
        };
        assert!(check(&k, 9).is_ok());
        assert!(matches!(check(&k, 10), Err(Error::ApiKeyExpired)));
        let revoked = ApiKey {
            revoked_at: Some(5),
            ..k
        };
        assert!(matches!(check(&revoked, 9), Err(Error::InvalidApiKey)));
        assert!(matches!(check(&revoked, 11), Err(Error::InvalidApiKey)));
    }
}
