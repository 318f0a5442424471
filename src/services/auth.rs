//! Who is calling: password login and session tokens, shared by the operations.

use std::time::Duration;

use crate::core::otp::{self, Channel, Destination, Policy};
use crate::db::users::{self, User};
use crate::db::{audit, now_ms};
use crate::error::{Error, Result};
use crate::state::AppState;

/// The user whose login name (or e-mail) and password these are. Every outcome for a
/// known user is audited; after `login.max_failures` failures within
/// `login.lockout_seconds`, the user's logins are refused without a password check
/// until the oldest failure ages out.
pub async fn password_login(app: &AppState, login: &str, password: &str) -> Result<User> {
    const EVENT: &str = "login.password";
    let login = login.to_string();
    let window_ms = app.settings.login.lockout_seconds * 1000;
    let (user, failures, oldest) = app
        .db
        .run(move |c| {
            let user = users::find_by_login(c, &login)?;
            let (n, oldest) = match &user {
                Some(u) => {
                    audit::count_since(c, u.id, EVENT, "invalid_credentials", now_ms() - window_ms)?
                }
                None => (0, None),
            };
            Ok((user, n, oldest))
        })
        .await?;
    let outcome = if user.is_some() && failures >= app.settings.login.max_failures {
        let wait = oldest.map_or(window_ms, |o| o + window_ms - now_ms());
        Err(Error::LoginLocked {
            retry_after_secs: ((wait + 999) / 1000).max(1),
        })
    } else {
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let wait = Duration::from_millis(app.settings.login.queue_timeout_ms);
        // Verified even for an unknown user (against a decoy), so both take as long.
        match app
            .passwords
            .verify(hash, password.to_string(), wait)
            .await?
        {
            true => Ok(()),
            false => Err(Error::InvalidCredentials),
        }
    };
    if let Some(u) = &user {
        let (id, kind) = (u.id, outcome.as_ref().err().map_or("ok", Error::kind));
        app.db
            .run(move |c| otp::record(c, EVENT, kind, Some(id), None, None, None, now_ms()))
            .await?;
    }
    outcome?;
    user.ok_or(Error::InvalidCredentials)
}

/// The user of a live session token.
pub async fn session_user(app: &AppState, token: &str) -> Result<User> {
    let token = token.to_string();
    app.db
        .run(move |c| {
            let id = crate::core::sessions::authenticate(c, &token)?;
            users::find_by_id(c, id)?.ok_or(Error::InvalidSession)
        })
        .await
}

/// Where a user's codes go under a policy: each channel of the policy for which the
/// user has an address. Only the stored record decides: a mobile number without `+`
/// gets the user's country code, or goes out as stored when there is none.
pub fn destinations(user: &User, policy: &Policy) -> Vec<Destination> {
    policy
        .channels
        .iter()
        .filter_map(|ch| match ch {
            Channel::Email if !user.email.trim().is_empty() => Some(Destination {
                channel: Channel::Email,
                address: user.email.trim().to_string(),
            }),
            Channel::Sms if !user.mobile.trim().is_empty() => {
                let cc = Some(user.country_code.as_str()).filter(|c| !c.is_empty());
                Some(Destination {
                    channel: Channel::Sms,
                    address: international(&user.mobile, cc),
                })
            }
            _ => None,
        })
        .collect()
}

fn international(mobile: &str, country_code: Option<&str>) -> String {
    users::international(mobile, country_code.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::international;

    #[test]
    fn mobiles_become_international_numbers() {
        assert_eq!(international("9876543219", Some("91")), "+919876543219");
        assert_eq!(
            international("+44 7700 900123", Some("91")),
            "+447700900123"
        );
        assert_eq!(international("98765-43219", Some("+91")), "+919876543219");
        assert_eq!(international("9876543219", None), "9876543219");
    }
}
