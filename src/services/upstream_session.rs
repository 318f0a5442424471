//! Exchanging an otpgate session for the legacy server's credentials, when a call made
//! with it is forwarded: the session must be live (this counts as its activity), and
//! the user's own upstream API key is used, or the configured service key.

use crate::core::{sessions, upstream_keys};
use crate::error::{Error, Result};
use crate::state::AppState;

pub struct Input {
    pub token: String,
    /// The key for users without one of their own.
    pub service_key: Option<String>,
}

/// Who the upstream is told the caller is, and the key that proves it.
pub struct Outcome {
    pub login_uid: String,
    pub user_name: String,
    pub api_key: String,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let user = sessions::user_of(&state.db, &input.token).await?;
    let own = upstream_keys::of_user(&state.db, &state.keys, user.id).await?;
    let api_key = own.or(input.service_key).ok_or_else(|| {
        Error::invalid(
            "This session cannot be used for services of the upstream server: no upstream API key is set for its user.",
        )
    })?;
    Ok(Outcome {
        login_uid: user.login_uid,
        user_name: user.user_name,
        api_key,
    })
}
