//! Who is calling an operation that needs an authenticated caller: a user name and
//! password, a live session, or one of otpgate's API keys.

use std::net::IpAddr;

use crate::core::users::User;
use crate::core::{api_keys, login, sessions};
use crate::error::{Error, Result};
use crate::state::AppState;

/// How the caller proves who they are.
pub enum Caller {
    /// A login name and password, from the client at `client` (failures are counted
    /// per login and address).
    Password {
        login: String,
        password: String,
        client: IpAddr,
    },
    Session {
        token: String,
    },
    ApiKey {
        key: String,
    },
}

/// The caller's user, and the session it came with (a session caller only).
/// Passwords are refused, unchecked, when `summit.password_auth` is off.
pub async fn authenticate(state: &AppState, caller: Caller) -> Result<(User, Option<String>)> {
    match caller {
        Caller::Password {
            login,
            password,
            client,
        } => {
            let s = &state.settings;
            if !s.summit.password_auth {
                return Err(Error::PasswordAuthDisabled);
            }
            let user = login::password_login(
                &state.db,
                &state.passwords,
                &s.login,
                &login,
                &password,
                client,
            )
            .await?;
            Ok((user, None))
        }
        Caller::Session { token } => Ok((sessions::user_of(&state.db, &token).await?, Some(token))),
        Caller::ApiKey { key } => Ok((api_keys::user_of(&state.db, &key).await?, None)),
    }
}
