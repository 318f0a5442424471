//! One-time passwords: generation, keyed storage, delivery hand-off, verification.
//!
//! Everything here is synchronous and takes a database connection; callers run it on
//! the blocking pool. Each operation is one database transaction.

mod policy;

pub use crate::core::channel::{Channel, Destination};

pub use policy::Policy;

use rand::Rng;

use crate::core::keys::{Keys, sha256_hex};
use crate::db::audit::{self, AuditEvent};
use crate::db::challenges::{self, Challenge};
use crate::db::outbox::{self, OutboxRow};
use crate::db::{DbConnection, limits, now_ms, write_transaction};
use crate::delivery::{Message, Templates};
use crate::error::{Error, Result};

pub struct IssueRequest {
    /// Who the code is for (`user:836`); one open challenge per subject and purpose.
    pub subject: String,
    pub purpose: &'static str,
    pub user_id: Option<i64>,
    pub org_id: i64,
    pub destinations: Vec<Destination>,
    pub device_id: Option<String>,
    /// The language of the message, where the dialect carries one.
    pub language: Option<String>,
    /// An SMS text of the caller's own (a TwoFactorConfiguration's), instead of the
    /// organisation's template.
    pub sms_template: Option<String>,
    /// Hand the code back to the caller (a TwoFactorConfiguration that allows it).
    pub reveal_code: bool,
    pub policy: Policy,
    /// Count the policy's send limit apart from other sends to the same address: under
    /// this scope (e.g. a tenant's name) instead of per address alone. None counts
    /// every send to the address together.
    pub limit_scope: Option<String>,
}

#[derive(Debug)]
pub struct Issued {
    pub transaction_id: String,
    pub numeric_id: i64,
    /// The code, only when the request asked to reveal it.
    pub code: Option<String>,
    pub reference: String,
    pub expires_at: i64,
    /// The destinations written to the outbox, in request order.
    pub destinations: Vec<Destination>,
    pub outbox_ids: Vec<String>,
}

pub struct VerifyRequest {
    pub transaction_id: String,
    pub code: String,
    pub device_id: Option<String>,
    /// When given, the challenge must be this subject's; another's reads as unknown.
    pub subject: Option<String>,
    /// The purposes the caller may verify (each operation sees only its own kind of
    /// challenge); any other reads as unknown.
    pub purposes: &'static [&'static str],
    /// Accept the right code again for a challenge already verified, while unexpired.
    pub allow_revalidate: bool,
}

#[derive(Debug, Clone)]
pub struct Verified {
    pub transaction_id: String,
    pub numeric_id: Option<i64>,
    pub destination_masked: String,
    /// The challenge had been verified before (an allowed re-validation).
    pub revalidated: bool,
    pub user_id: Option<i64>,
    pub subject: String,
    pub purpose: String,
    pub org_id: i64,
}

/// `length` digits, each drawn uniformly from a CSPRNG.
pub fn generate_code(length: u32) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A short reference shown with the code, from letters and digits that are hard to
/// confuse.
pub fn generate_reference() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Issues a challenge: checks the send limits of every destination, supersedes the
/// subject's open challenge, stores the keyed hash of a new code and queues one outbox
/// message per destination, all in one transaction. The code itself leaves only
/// inside the sealed outbox messages.
pub fn issue(
    conn: &mut DbConnection,
    keys: &Keys,
    templates: &Templates,
    req: IssueRequest,
) -> Result<Issued> {
    if req.destinations.is_empty() {
        return Err(Error::NoDestination);
    }

    write_transaction(conn, |conn| -> Result<Result<Issued>> {
        let now = now_ms();
        let p = &req.policy;
        // Lock the subject and every destination, in one fixed order so concurrent
        // issues cannot deadlock. The subject's lock serialises issues for one user
        // (supersede, then insert); a destination's serialises its send count.
        let mut keyed: Vec<(String, &Destination)> = req
            .destinations
            .iter()
            .map(|d| (d.limit_key(req.limit_scope.as_deref()), d))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        let subject_key = sha256_hex(format!("subject:{}:{}", req.subject, req.purpose).as_bytes());
        let mut locks: Vec<&str> = keyed.iter().map(|(k, _)| k.as_str()).collect();
        locks.push(&subject_key);
        locks.sort_unstable();
        let sqlite = matches!(conn, DbConnection::Sqlite(_));
        for key in locks {
            if key == subject_key {
                // On SQLite, BEGIN IMMEDIATE already holds the one write lock there is.
                if !sqlite {
                    limits::lock_destination(conn, key)?;
                }
                continue;
            }
            let last = limits::lock_destination(conn, key)?;
            if p.cooldown_ms > 0 && last > 0 && now - last < p.cooldown_ms {
                let wait = ceil_secs(last + p.cooldown_ms - now);
                return Ok(Err(fail_issue(
                    conn,
                    &req,
                    Error::ResendCooldown {
                        retry_after_secs: wait,
                    },
                    now,
                )?));
            }
            let (count, oldest) = limits::sends_since(conn, key, now - p.send_window_ms)?;
            if count >= p.max_sends {
                let wait = ceil_secs(oldest.unwrap_or(now) + p.send_window_ms - now);
                return Ok(Err(fail_issue(
                    conn,
                    &req,
                    Error::SendLimitReached {
                        retry_after_secs: wait,
                    },
                    now,
                )?));
            }
        }
        challenges::supersede_open(conn, &req.subject, req.purpose, now)?;

        let transaction_id = uuid::Uuid::new_v4().to_string();
        let reference = generate_reference();
        let code = generate_code(p.length);
        let masked: Vec<String> = req.destinations.iter().map(Destination::masked).collect();
        let channels: Vec<&str> = req
            .destinations
            .iter()
            .map(|d| d.channel.as_str())
            .collect();
        let challenge = Challenge {
            id: transaction_id.clone(),
            reference: reference.clone(),
            subject: req.subject.clone(),
            purpose: req.purpose.to_string(),
            user_id: req.user_id,
            org_id: req.org_id,
            channels: channels.join(","),
            destination_masked: masked.join(" and "),
            device_id: req.device_id.clone(),
            code_hash: keys.code_hash(&transaction_id, &code),
            created_at: now,
            expires_at: now + p.expiry_ms,
            attempts: 0,
            max_attempts: p.max_attempts,
            consumed_at: None,
            superseded_at: None,
            numeric_id: Some(challenges::next_numeric_id(conn)?),
            change_request_id: None,
        };
        challenges::insert(conn, &challenge)?;

        for (key, _) in &keyed {
            limits::record_send(conn, key, now)?;
        }
        let mut outbox_ids = Vec::with_capacity(req.destinations.len());
        for (d, m) in req.destinations.iter().zip(&masked) {
            let message = match (&req.sms_template, d.channel) {
                (Some(t), Channel::Sms) => Message {
                    subject: None,
                    text: templates.fill(t, &code, p.expiry_minutes(), &reference),
                },
                _ => templates.render(
                    req.org_id,
                    req.language.as_deref(),
                    d.channel,
                    &code,
                    p.expiry_minutes(),
                    &reference,
                ),
            };
            let id = uuid::Uuid::new_v4().to_string();
            outbox::insert(
                conn,
                &OutboxRow {
                    id: id.clone(),
                    challenge_id: Some(transaction_id.clone()),
                    channel: d.channel.as_str().to_string(),
                    destination: d.address.clone(),
                    destination_masked: m.clone(),
                    payload: Some(keys.seal(&message.to_bytes())),
                    state: outbox::QUEUED.to_string(),
                    attempts: 0,
                    next_attempt_at: now,
                    lease_until: None,
                    claimed_by: None,
                    last_error: None,
                    created_at: now,
                    updated_at: now,
                },
            )?;
            outbox_ids.push(id);
        }
        record(
            conn,
            "otp.generate",
            "ok",
            req.user_id,
            Some(&transaction_id),
            Some(&challenge.destination_masked),
            Some(&challenge.channels),
            now,
        )?;
        Ok(Ok(Issued {
            numeric_id: challenge.numeric_id.unwrap_or_default(),
            code: req.reveal_code.then(|| code.clone()),
            transaction_id,
            reference,
            expires_at: challenge.expires_at,
            destinations: req.destinations.clone(),
            outbox_ids,
        }))
    })?
}

fn fail_issue(conn: &mut DbConnection, req: &IssueRequest, e: Error, now: i64) -> Result<Error> {
    let masked: Vec<String> = req.destinations.iter().map(Destination::masked).collect();
    record(
        conn,
        "otp.generate",
        e.kind(),
        req.user_id,
        None,
        Some(&masked.join(" and ")),
        None,
        now,
    )?;
    Ok(e)
}

fn ceil_secs(ms: i64) -> i64 {
    ((ms + 999) / 1000).max(1)
}

/// Verifies a code in one atomic step: a code succeeds at most once, and concurrent
/// wrong attempts never exceed the challenge's maximum (see
/// [`challenges::spend_attempt`]). Expired, consumed, superseded and locked challenges
/// each fail with their own error.
pub fn verify(conn: &mut DbConnection, keys: &Keys, req: &VerifyRequest) -> Result<Verified> {
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
    write_transaction(conn, |conn| -> Result<Result<(Verified, T)>> {
        let now = now_ms();
        let Some(c) = challenges::find(conn, &req.transaction_id)? else {
            record(
                conn,
                "otp.verify",
                Error::UnknownTransaction.kind(),
                None,
                None,
                None,
                None,
                now,
            )?;
            return Ok(Err(Error::UnknownTransaction));
        };
        let fail = |conn: &mut DbConnection, e: Error| -> Result<Result<(Verified, T)>> {
            record(
                conn,
                "otp.verify",
                e.kind(),
                c.user_id,
                Some(&c.id),
                Some(&c.destination_masked),
                None,
                now,
            )?;
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
        record(
            conn,
            "otp.verify",
            "ok",
            c.user_id,
            Some(&c.id),
            Some(&c.destination_masked),
            None,
            now,
        )?;
        let verified = Verified {
            numeric_id: c.numeric_id,
            destination_masked: c.destination_masked.clone(),
            revalidated: revalidating,
            transaction_id: c.id.clone(),
            user_id: c.user_id,
            subject: c.subject.clone(),
            purpose: c.purpose.clone(),
            org_id: c.org_id,
        };
        let extra = then(conn, &verified)?;
        Ok(Ok((verified, extra)))
    })?
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

#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConnection,
    event: &str,
    outcome: &str,
    user_id: Option<i64>,
    transaction_id: Option<&str>,
    destination_masked: Option<&str>,
    channel: Option<&str>,
    now: i64,
) -> Result<()> {
    audit::insert(
        conn,
        &AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            at: now,
            event: event.to_string(),
            outcome: outcome.to_string(),
            user_id,
            transaction_id: transaction_id.map(str::to_string),
            destination_masked: destination_masked.map(str::to_string),
            channel: channel.map(str::to_string),
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_of_the_policy_length_and_vary() {
        for len in 4..=10 {
            let c = generate_code(len);
            assert_eq!(c.len(), len as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        let many: std::collections::HashSet<String> = (0..200).map(|_| generate_code(8)).collect();
        assert!(many.len() > 190);
    }

    #[test]
    fn every_digit_turns_up() {
        let all: String = (0..100).map(|_| generate_code(10)).collect();
        for d in '0'..='9' {
            assert!(all.contains(d));
        }
    }

    #[test]
    fn references_are_six_unambiguous_characters() {
        let r = generate_reference();
        assert_eq!(r.len(), 6);
        assert!(!r.contains(['0', 'O', '1', 'I']));
    }

    #[test]
    fn limit_keys_ignore_formatting_but_not_channel() {
        let a = Destination {
            channel: Channel::Sms,
            address: "+91 98765-43219".into(),
        };
        let b = Destination {
            channel: Channel::Sms,
            address: "919876543219".into(),
        };
        assert_eq!(a.limit_key(None), b.limit_key(None));
        let e1 = Destination {
            channel: Channel::Email,
            address: "A@B.com ".into(),
        };
        let e2 = Destination {
            channel: Channel::Email,
            address: "a@b.com".into(),
        };
        assert_eq!(e1.limit_key(None), e2.limit_key(None));
        assert_ne!(a.limit_key(None), e2.limit_key(None));
        // A scope counts apart from the address alone and from other scopes.
        assert_eq!(a.limit_key(Some("t:x")), b.limit_key(Some("t:x")));
        assert_ne!(a.limit_key(Some("t:x")), a.limit_key(None));
        assert_ne!(a.limit_key(Some("t:x")), a.limit_key(Some("t:y")));
    }
}
