//! Session tokens (the legacy TokenID): 64 upper-case hex digits, stored only under a
//! key derived from them, with an absolute and an idle expiry.
//!
//! A token begins with the time it was made (12 hex digits of milliseconds) and goes on
//! with 208 random bits. Its key is that time followed by the SHA-256 of the whole
//! token: a new session goes to the end of the sessions' index, as a TransactionID goes
//! to the end of the challenges', instead of to a random page of it that a large
//! database seldom has in its cache. The time is no secret; the random bits are the
//! token's strength.

use crate::config::SessionSettings;
use crate::core::keys::{random_bytes, sha256_hex};
use crate::core::users::User;
use crate::db::sessions::{self, Opening};
use crate::db::users;
use crate::db::{Db, DbConnection, now_ms};
use crate::error::{Error, Result};

pub fn create(
    conn: &mut DbConnection,
    user_id: i64,
    device_id: Option<&str>,
    s: &SessionSettings,
) -> Result<String> {
    let (token, opening) = new_session(device_id, s, now_ms());
    sessions::insert(conn, &opening.for_user(user_id))?;
    Ok(token)
}

/// A new session's token and what is stored of it, made at `now`, before the user it
/// is for is known (a login with a code learns the user as it spends the code).
pub fn new_session(device_id: Option<&str>, s: &SessionSettings, now: i64) -> (String, Opening) {
    let token = new_token(now);
    let opening = Opening {
        token_hash: key(&token),
        device_id: device_id.map(str::to_string),
        created_at: now,
        expires_at: now + s.lifetime_seconds * 1000,
        idle_timeout_ms: s.idle_timeout_minutes * 60_000,
    };
    (token, opening)
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
    let (token, now) = (token.trim(), now_ms());
    if let Some(user) = sessions::touch(conn, &key(token), now)? {
        return Ok(user);
    }
    // A session opened before tokens began with their time is stored under the token's
    // SHA-256 alone; it lives out its lifetime.
    sessions::touch(conn, &untimed_key(token), now)?.ok_or(Error::InvalidSession)
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

/// Hex digits of milliseconds that begin a token (enough until the year 10889).
const TIME_DIGITS: usize = 12;

/// A new token, made at `now`.
pub(crate) fn new_token(now: i64) -> String {
    format!("{now:012X}{}", hex::encode_upper(random_bytes::<26>()))
}

/// The key a session is stored under: the token's time, then the SHA-256 of the token
/// (in upper case: a token's case does not matter). `token` is one of otpgate's own
/// ([`is_own_token`]).
pub fn key(token: &str) -> String {
    let token = token.to_ascii_uppercase();
    format!("{}{}", &token[..TIME_DIGITS], sha256_hex(token.as_bytes()))
}

/// The key of a session opened before tokens began with their time.
fn untimed_key(token: &str) -> String {
    sha256_hex(token.to_ascii_uppercase().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_otpgates_own_and_their_keys_sort_as_they_were_made() {
        let start = now_ms();
        let tokens: Vec<String> = (0..1000).map(|i| new_token(start + i / 10)).collect();
        assert!(tokens.iter().all(|t| is_own_token(t)), "{}", tokens[0]);
        assert!(
            tokens
                .iter()
                .all(|t| t.bytes().all(|b| !b.is_ascii_lowercase()))
        );
        let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len());
        let keys: Vec<String> = tokens.iter().map(|t| key(t)).collect();
        for pair in keys.windows(2) {
            // Made in the same millisecond, two keys may sort either way; never back
            // across a millisecond.
            assert!(pair[0][..TIME_DIGITS] <= pair[1][..TIME_DIGITS], "{pair:?}");
        }
        assert!(keys[0] < keys[999]);
        assert_eq!(&keys[0][..TIME_DIGITS], format!("{start:012X}"));
    }

    #[test]
    fn a_tokens_key_does_not_depend_on_its_case_and_hides_its_random_part() {
        let token = new_token(now_ms());
        assert_eq!(key(&token), key(&token.to_lowercase()));
        let key = key(&token);
        assert_eq!(key.len(), TIME_DIGITS + 64);
        assert!(!key.to_uppercase().contains(&token[TIME_DIGITS..]));
        assert_ne!(key, untimed_key(&token));
    }
}
