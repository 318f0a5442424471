//! A user's own API key on the legacy server: what otpgate puts in `_ProxyDetails` when
//! it forwards a call made with that user's session. Sealed at rest with the message
//! key; opened only to be sent upstream.

use crate::core::keys::Keys;
use crate::db::{Db, DbConnection, now_ms, upstream_keys, users};
use crate::error::{Error, Result};

/// Sets (`Some`) or clears (`None`) the key of the user with this login (login name,
/// e-mail or LoginUID).
pub fn set(conn: &mut DbConnection, keys: &Keys, login: &str, key: Option<&str>) -> Result<()> {
    let user = match users::find_by_login(conn, login)? {
        Some(u) => Some(u),
        None => users::find_by_login_uid(conn, login)?,
    }
    .ok_or_else(|| Error::invalid(format!("no user has the login '{login}'")))?;
    match key.map(str::trim) {
        Some("") => Err(Error::invalid("the upstream API key is empty")),
        Some(k) => Ok(upstream_keys::set(
            conn,
            user.id,
            &keys.seal(k.as_bytes()),
            now_ms(),
        )?),
        None => {
            upstream_keys::clear(conn, user.id)?;
            Ok(())
        }
    }
}

/// The user's key, opened; None when the user has none. A key sealed under a key no
/// longer accepted is a fault of the server (set it again after a key rotation).
pub async fn of_user(db: &Db, keys: &Keys, user_id: i64) -> Result<Option<String>> {
    let Some(sealed) = db.run(move |c| Ok(upstream_keys::get(c, user_id)?)).await? else {
        return Ok(None);
    };
    match keys.open(&sealed).and_then(|b| String::from_utf8(b).ok()) {
        Some(k) => Ok(Some(k)),
        // Not the service key in its place: it may carry other rights.
        None => Err(Error::internal(
            "a user's upstream API key cannot be opened with the configured keys",
        )),
    }
}
