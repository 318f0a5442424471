//! Verifying a code in one atomic step.

use super::{Verified, VerifyRequest};
use crate::core::audit::{self, Event};
use crate::core::ids::{ChallengeId, UserId};
use crate::core::keys::Keys;
use crate::core::users::User;
use crate::db::challenges::{self, Challenge, Claimant, RightCode};
use crate::db::sessions::{self, Opening};
use crate::db::{DbConnection, autocommits, now_ms, users, write_transaction};
use crate::error::{Error, Result};

const EVENT: &str = "otp.verify";

/// Verifies a code in one atomic step: a code succeeds at most once, and concurrent
/// wrong attempts never exceed the challenge's maximum (see
/// [`challenges::spend_attempt`]). Expired, consumed, superseded and locked challenges
/// each fail with their own error.
///
/// The right code for an open challenge is one statement. Where the connection
/// [`autocommits`] (PostgreSQL), it is tried first on its own, atomic by itself,
/// without the round trips of BEGIN and COMMIT; anything else then takes the
/// transaction below.
pub fn verify(conn: &mut DbConnection, keys: &Keys, req: &VerifyRequest) -> Result<Verified> {
    if autocommits(conn) {
        let now = now_ms();
        if let Some(c) = consume_if_right(conn, keys, req, now)? {
            return succeed(conn, &c, Succeeded::Audited, now, |_, _| Ok(())).map(|(v, ())| v);
        }
        return verified(conn, keys, req, false, |_, _| Ok(())).map(|(v, ())| v);
    }
    verify_then(conn, keys, req, |_, _| Ok(())).map(|(v, ())| v)
}

/// [`verify`], then `then` in the same transaction when the code was right (to open
/// the session it grants, say). If `then` fails, everything is rolled back: the code
/// is not spent for a login that did not happen.
pub fn verify_then<T>(
    conn: &mut DbConnection,
    keys: &Keys,
    req: &VerifyRequest,
    then: impl FnOnce(&mut DbConnection, &Verified) -> Result<T>,
) -> Result<(Verified, T)> {
    verified(conn, keys, req, true, then)
}

/// A login with a code: [`verify_then`], then the challenge's user, with `session`
/// opened for them in the same transaction. A code issued for no user (a bare phone
/// number) logs nobody in: [`Error::UnknownTransaction`], and the code stays unspent.
///
/// Where the connection [`autocommits`] (PostgreSQL), the right code for an open
/// challenge of a user who exists is all one statement
/// ([`challenges::consume_into_session`]): one round trip where the transaction takes
/// five. Anything else then takes the transaction.
pub fn verify_login(
    conn: &mut DbConnection,
    keys: &Keys,
    req: &VerifyRequest,
    session: &Opening,
) -> Result<User> {
    let then = |c: &mut DbConnection, v: &Verified| -> Result<User> {
        let user = match v.user_id {
            Some(id) => users::find_by_id(c, id.0)?,
            None => None,
        };
        let user = user.ok_or(Error::UnknownTransaction)?;
        sessions::insert(c, &session.for_user(user.id))?;
        Ok(user)
    };
    if autocommits(conn)
        && let DbConnection::Pg(pg) = conn
    {
        let now = now_ms();
        if let Some(code) = right_code(keys, req, now)
            && let Some(user) = challenges::consume_into_session(pg, &code, now, session)?
        {
            return Ok(user);
        }
        return verified(conn, keys, req, false, then).map(|(_, user)| user);
    }
    verified(conn, keys, req, true, then).map(|(_, user)| user)
}

/// [`verify_then`]; `try_right` false when the right code's one statement was tried
/// already, and changed nothing.
fn verified<T>(
    conn: &mut DbConnection,
    keys: &Keys,
    req: &VerifyRequest,
    try_right: bool,
    then: impl FnOnce(&mut DbConnection, &Verified) -> Result<T>,
) -> Result<(Verified, T)> {
    write_transaction(conn, |conn| -> Result<Result<(Verified, T)>> {
        let now = now_ms();
        // The right code, for an open challenge of the caller's, is one statement.
        // Anything else changes nothing there and is told apart below.
        if try_right && let Some(c) = consume_if_right(conn, keys, req, now)? {
            return succeed(conn, &c, Succeeded::Audited, now, then).map(Ok);
        }
        let Some(c) = challenges::find(conn, req.transaction_id.as_str())? else {
            let event = Event {
                event: EVENT,
                outcome: Error::UnknownTransaction.kind(),
                ..Event::default()
            };
            audit::record(conn, event, now)?;
            return Ok(Err(Error::UnknownTransaction));
        };
        let fail = |conn: &mut DbConnection, e: Error| -> Result<Result<(Verified, T)>> {
            audit::record(conn, found_event(&c, e.kind()), now)?;
            Ok(Err(e))
        };
        if req.subject.as_deref().is_some_and(|s| s != c.subject)
            || !req.purposes.contains(&c.purpose.as_str())
        {
            return fail(conn, Error::UnknownTransaction);
        }
        if let Some(expected) = c.device_id.as_deref()
            && req.device_id.as_deref().map(str::trim) != Some(expected)
        {
            return fail(conn, Error::DeviceMismatch);
        }
        let revalidating = req.allow_revalidate && c.consumed_at.is_some();
        let correct = keys.code_matches(&c.id, req.code.trim(), &c.code_hash);
        // A re-validation sees the challenge as still open; with the right code, the
        // attempts spent before it was validated do not count against it either.
        let as_open = |x: &Challenge| {
            let mut x = x.clone();
            if revalidating {
                x.consumed_at = None;
                if correct {
                    x.attempts = 0;
                }
            }
            x
        };
        if let Some(e) = closed_reason(&as_open(&c), now) {
            return fail(conn, e);
        }
        let spent = match (revalidating, correct) {
            // The right code again: nothing to spend, nothing to consume.
            (true, true) => true,
            (true, false) => challenges::spend_revalidation_attempt(conn, &c.id, now)?,
            (false, _) => challenges::spend_attempt(conn, &c.id, correct, now)?,
        };
        if !spent {
            // Someone else changed the challenge since it was read: say what it is now.
            let now_state = challenges::find(conn, &c.id)?.unwrap_or(c.clone());
            return fail(
                conn,
                closed_reason(&as_open(&now_state), now).unwrap_or(Error::TooManyAttempts),
            );
        }
        if !correct {
            let attempts = challenges::find(conn, &c.id)?.map_or(c.attempts + 1, |x| x.attempts);
            return fail(
                conn,
                Error::WrongCode {
                    remaining: (c.max_attempts - attempts).max(0),
                },
            );
        }
        let how = if revalidating {
            Succeeded::Revalidated
        } else {
            Succeeded::Spent
        };
        succeed(conn, &c, how, now, then).map(Ok)
    })?
}

/// [`challenges::consume_right_code`] for the request: the code hashed under the
/// current key (one stored under an earlier key is found by the slower path).
fn consume_if_right(
    conn: &mut DbConnection,
    keys: &Keys,
    req: &VerifyRequest,
    now: i64,
) -> Result<Option<Challenge>> {
    let Some(code) = right_code(keys, req, now) else {
        return Ok(None);
    };
    Ok(challenges::consume_right_code(conn, &code, now)?)
}

/// The request's [`RightCode`]: the code hashed under the current key, the audit
/// event of its success (whose user, transaction and masked destination are the
/// consumed challenge's). `None` for more than two purposes, which only the slower
/// path checks.
fn right_code<'a>(keys: &Keys, req: &'a VerifyRequest, now: i64) -> Option<RightCode<'a>> {
    let purposes = match req.purposes {
        [one] => (*one, *one),
        [one, two] => (*one, *two),
        _ => return None,
    };
    let id = req.transaction_id.as_str();
    let who = Claimant {
        subject: req.subject.as_deref(),
        purposes,
        device_id: req.device_id.as_deref().map(str::trim),
    };
    let event = audit::row(
        Event {
            event: EVENT,
            outcome: "ok",
            ..Event::default()
        },
        now,
    );
    Some(RightCode {
        id,
        code_hash: keys.code_hash(id, req.code.trim()),
        who,
        event,
    })
}

/// How a right code was spent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Succeeded {
    /// Consumed, and audited, by [`challenges::consume_right_code`].
    Audited,
    /// Consumed by a separate attempt (a code stored under an earlier key).
    Spent,
    /// A consumed challenge validated again.
    Revalidated,
}

/// The right code was spent: audit it (unless that is done), then `then` in the same
/// transaction.
fn succeed<T>(
    conn: &mut DbConnection,
    c: &Challenge,
    how: Succeeded,
    now: i64,
    then: impl FnOnce(&mut DbConnection, &Verified) -> Result<T>,
) -> Result<(Verified, T)> {
    if how != Succeeded::Audited {
        audit::record(conn, found_event(c, "ok"), now)?;
    }
    let verified = Verified {
        numeric_id: c.numeric_id,
        destination_masked: c.destination_masked.clone(),
        revalidated: how == Succeeded::Revalidated,
        transaction_id: ChallengeId::from_stored(c.id.clone()),
        user_id: c.user_id.map(UserId),
        subject: c.subject.clone(),
        purpose: c.purpose.clone(),
        org_id: c.org_id,
    };
    let extra = then(conn, &verified)?;
    Ok((verified, extra))
}

/// The audit event of a verify that found its challenge.
fn found_event<'a>(c: &'a Challenge, outcome: &'a str) -> Event<'a> {
    Event {
        event: EVENT,
        outcome,
        user_id: c.user_id.map(UserId),
        transaction_id: Some(&c.id),
        destination_masked: Some(&c.destination_masked),
        channel: None,
        destination_keys: &[],
    }
}

/// Why a challenge no longer accepts codes, if it does not.
fn closed_reason(c: &Challenge, now: i64) -> Option<Error> {
    if c.consumed_at.is_some() {
        Some(Error::CodeAlreadyUsed)
    } else if c.superseded_at.is_some() {
        Some(Error::CodeSuperseded)
    } else if c.attempts >= c.max_attempts {
        Some(Error::TooManyAttempts)
    } else if c.expires_at <= now {
        Some(Error::CodeExpired)
    } else {
        None
    }
}
