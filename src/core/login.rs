//! Password logins and their lockout.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::LoginSettings;
use crate::core::audit::{self, Event};
use crate::core::ids::UserId;
use crate::core::keys::sha256_hex;
use crate::core::users::{Passwords, User};
use crate::db::{Db, login_failures, now_ms, users, write_transaction};
use crate::error::{Error, Result};

const EVENT: &str = "login.password";

/// The keys a login's failures are counted under: the login as given (known or not:
/// the answers must not tell which), and that login from one client address.
fn failure_keys(login: &str, client: IpAddr) -> (String, String) {
    let login = login.trim().to_lowercase();
    let address = crate::core::throttle::address_key(client);
    (
        sha256_hex(format!("login:{login}").as_bytes()),
        sha256_hex(format!("login:{login}@{address}").as_bytes()),
    )
}

/// Why a login is not checked now, from its failures in the window: too many from
/// this address (refused until the oldest leaves the window), or so many from all
/// addresses that each attempt waits a back-off after the last one.
fn held_back(
    settings: &LoginSettings,
    local: (i64, Option<i64>),
    global: (i64, Option<i64>),
    now: i64,
) -> Option<i64> {
    let window_ms = settings.lockout_seconds * 1000;
    let (local_n, local_oldest) = local;
    if local_n >= settings.max_failures {
        return Some(local_oldest.map_or(window_ms, |o| o + window_ms - now));
    }
    let (global_n, global_last) = global;
    if global_n >= settings.global_failures {
        let doublings = u32::try_from(global_n - settings.global_failures).unwrap_or(u32::MAX);
        let backoff_ms = 1000i64
            .checked_shl(doublings.min(30))
            .unwrap_or(i64::MAX)
            .min(settings.max_backoff_seconds * 1000);
        let wait = global_last.map_or(0, |l| l + backoff_ms - now);
        if wait > 0 {
            return Some(wait);
        }
    }
    None
}

/// The user whose login name (or e-mail) and password these are, for a client at
/// `client`. Known and unknown logins take the same work and get the same answers:
/// the password is checked (against a decoy for an unknown login), failures are
/// counted under the login as given, and every outcome is audited.
///
/// After `max_failures` failures of a login from one address within `lockout_seconds`,
/// that address's attempts are refused without a password check until the oldest
/// failure leaves the window. Beyond `global_failures` from all addresses, each attempt
/// waits a back-off after the last failure instead: the owner can still log in.
pub async fn password_login(
    db: &Db,
    passwords: &Arc<Passwords>,
    settings: &LoginSettings,
    login: &str,
    password: &str,
    client: IpAddr,
) -> Result<User> {
    let (global_key, local_key) = failure_keys(login, client);
    let login = login.to_string();
    let since = now_ms() - settings.lockout_seconds * 1000;
    let (user, local, global) = {
        let (global_key, local_key) = (global_key.clone(), local_key.clone());
        db.run_as("login", move |c| {
            let user = users::find_by_login(c, &login)?;
            let (n, oldest, _) = login_failures::since(c, &local_key, since)?;
            let (gn, _, last) = login_failures::since(c, &global_key, since)?;
            Ok((user, (n, oldest), (gn, last)))
        })
        .await?
    };
    let outcome = match held_back(settings, local, global, now_ms()) {
        Some(wait) => Err(Error::LoginLocked {
            retry_after_secs: ((wait + 999) / 1000).max(1),
        }),
        None => {
            let hash = user.as_ref().and_then(|u| u.password_hash.clone());
            let wait = Duration::from_millis(settings.queue_timeout_ms);
            // Verified even for an unknown user (against a decoy), so both take as long.
            match passwords.verify(hash, password.to_string(), wait).await? {
                true if user.is_some() => Ok(()),
                _ => Err(Error::InvalidCredentials),
            }
        }
    };
    let user_id = user.as_ref().map(|u| UserId(u.id));
    let kind = outcome.as_ref().err().map_or("ok", Error::kind);
    let failed = matches!(outcome, Err(Error::InvalidCredentials));
    let succeeded = outcome.is_ok();
    let counted = match &outcome {
        Ok(()) => "ok",
        Err(Error::InvalidCredentials) => "failed",
        Err(Error::LoginLocked { .. }) => "locked",
        Err(_) => "busy",
    };
    // This failure is the one that reaches the limit: the address is locked out now.
    let lockout_started = failed && local.0 + 1 == settings.max_failures;
    db.metrics().login(counted, lockout_started);
    db.run_as("login_record", move |c| {
        write_transaction(c, |c| {
            let now = now_ms();
            if failed {
                login_failures::record(c, &[&global_key, &local_key], now)?;
            } else if succeeded {
                login_failures::clear(c, &local_key)?;
            }
            let event = Event {
                event: EVENT,
                outcome: kind,
                user_id,
                ..Event::default()
            };
            audit::record(c, event, now)
        })
    })
    .await?;
    outcome?;
    user.ok_or(Error::InvalidCredentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LoginSettings {
        LoginSettings {
            max_failures: 5,
            lockout_seconds: 900,
            global_failures: 20,
            max_backoff_seconds: 60,
            ..LoginSettings::default()
        }
    }

    #[test]
    fn one_address_is_refused_for_the_window_after_its_failures() {
        let s = settings();
        let now = 1_000_000;
        assert_eq!(
            held_back(&s, (4, Some(now - 10)), (4, Some(now)), now),
            None
        );
        let wait = held_back(&s, (5, Some(now - 100_000)), (5, Some(now)), now);
        assert_eq!(wait, Some(800_000));
    }

    #[test]
    fn all_addresses_together_get_a_doubling_back_off_not_the_window() {
        let s = settings();
        let now = 1_000_000;
        // At the ceiling: one second after the last failure.
        assert_eq!(held_back(&s, (0, None), (20, Some(now)), now), Some(1000));
        assert_eq!(held_back(&s, (0, None), (20, Some(now - 1000)), now), None);
        // Doubling per further failure, up to the cap.
        assert_eq!(held_back(&s, (0, None), (23, Some(now)), now), Some(8000));
        assert_eq!(
            held_back(&s, (0, None), (500, Some(now)), now),
            Some(60_000)
        );
        assert_eq!(
            held_back(&s, (0, None), (500, Some(now - 60_000)), now),
            None
        );
    }

    #[test]
    fn failures_are_keyed_by_the_login_as_given_and_the_address() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let (g1, l1) = failure_keys(" Vishnu ", a);
        let (g2, l2) = failure_keys("vishnu", b);
        assert_eq!(g1, g2);
        assert_ne!(l1, l2);
        assert_eq!(failure_keys("VISHNU", a).1, l1);
        assert_ne!(failure_keys("nobody", a).0, g1);
    }
}
