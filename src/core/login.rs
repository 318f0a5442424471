//! Password logins and their lockout.

use std::sync::Arc;
use std::time::Duration;

use crate::config::LoginSettings;
use crate::core::audit::{self, Event};
use crate::core::ids::UserId;
use crate::core::users::{Passwords, User};
use crate::db::users;
use crate::db::{Db, audit as audit_rows, now_ms};
use crate::error::{Error, Result};

const EVENT: &str = "login.password";

/// The user whose login name (or e-mail) and password these are. Every outcome for a
/// known user is audited; after `max_failures` failures within `lockout_seconds`, the
/// user's logins are refused without a password check until the oldest failure ages
/// out.
pub async fn password_login(
    db: &Db,
    passwords: &Arc<Passwords>,
    settings: &LoginSettings,
    login: &str,
    password: &str,
) -> Result<User> {
    let login = login.to_string();
    let window_ms = settings.lockout_seconds * 1000;
    let (user, failures, oldest) = db
        .run(move |c| {
            let user = users::find_by_login(c, &login)?;
            let (n, oldest) = match &user {
                Some(u) => audit_rows::count_since(
                    c,
                    u.id,
                    EVENT,
                    "invalid_credentials",
                    now_ms() - window_ms,
                )?,
                None => (0, None),
            };
            Ok((user, n, oldest))
        })
        .await?;
    let outcome = if user.is_some() && failures >= settings.max_failures {
        let wait = oldest.map_or(window_ms, |o| o + window_ms - now_ms());
        Err(Error::LoginLocked {
            retry_after_secs: ((wait + 999) / 1000).max(1),
        })
    } else {
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let wait = Duration::from_millis(settings.queue_timeout_ms);
        // Verified even for an unknown user (against a decoy), so both take as long.
        match passwords.verify(hash, password.to_string(), wait).await? {
            true => Ok(()),
            false => Err(Error::InvalidCredentials),
        }
    };
    if let Some(u) = &user {
        let (id, kind) = (
            UserId(u.id),
            outcome.as_ref().err().map_or("ok", Error::kind),
        );
        db.run(move |c| {
            let event = Event {
                event: EVENT,
                outcome: kind,
                user_id: Some(id),
                ..Event::default()
            };
            audit::record(c, event, now_ms())
        })
        .await?;
    }
    outcome?;
    user.ok_or(Error::InvalidCredentials)
}
