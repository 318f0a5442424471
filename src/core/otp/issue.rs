//! Issuing a challenge, in one transaction: check the send limits, then write
//! ([`issue::write`]) the supersede of the subject's open challenge, the keyed hash of
//! a new code, the sends, one sealed outbox message per destination and the audit
//! event. The code itself leaves only inside the sealed messages (and in the answer,
//! when the request may reveal it).
//!
//! A decoy ([`super::decoy`]) takes the same path and does the same work, but stores a
//! hash no code matches and queues nothing: its messages are written already cancelled.

use super::sends::RecentSends;
use super::{Channel, Destination, IssueRequest, Issued, generate_code, generate_reference};
use crate::core::audit::{self, Event};
use crate::core::ids::ChallengeId;
use crate::core::keys::{Keys, random_bytes, sha256_hex};
use crate::db::challenges::Challenge;
use crate::db::issue::{self, Writes};
use crate::db::limits::{self, Kept};
use crate::db::outbox::{self, OutboxRow};
use crate::db::{DbConnection, now_ms, write_transaction_locked};
use crate::delivery::{Message, Templates};
use crate::error::{Error, Result};

const EVENT: &str = "otp.generate";

pub fn issue(
    conn: &mut DbConnection,
    keys: &Keys,
    templates: &Templates,
    req: &IssueRequest,
) -> Result<Issued> {
    if req.destinations.is_empty() {
        return Err(Error::NoDestination);
    }
    // The subject's lock, held from the transaction's start, serialises its issues
    // (the supersede of its open challenge, then the insert of the new one).
    let subject_key = sha256_hex(format!("subject:{}:{}", req.subject, req.purpose).as_bytes());
    let subject_lock = limits::subject_lock(&subject_key)?;
    write_transaction_locked(conn, subject_lock, |conn| -> Result<Result<Issued>> {
        let now = now_ms();
        let limit_keys = limit_keys(req);
        let mut audit_keys: Vec<String> =
            req.destinations.iter().map(|d| d.audit_key(keys)).collect();
        audit_keys.sort();
        audit_keys.dedup();
        let recent_sends = match check_limits(conn, req, &limit_keys, now)? {
            Ok(recent_sends) => recent_sends,
            Err(e) => {
                let masked: Vec<String> =
                    req.destinations.iter().map(Destination::masked).collect();
                let event = Event {
                    event: EVENT,
                    outcome: e.kind(),
                    user_id: req.user_id,
                    destination_masked: Some(&masked.join(" and ")),
                    destination_keys: &audit_keys,
                    ..Event::default()
                };
                audit::record(conn, event, now)?;
                return Ok(Err(e));
            }
        };
        let code = generate_code(req.policy.length);
        let challenge = new_challenge(keys, req, &code, now);
        let messages = messages(keys, templates, req, &challenge, &code, now);
        let event = Event {
            event: EVENT,
            outcome: req.decoy.map_or("ok", |d| d.outcome()),
            user_id: req.user_id,
            transaction_id: Some(&challenge.id),
            destination_masked: Some(&challenge.destination_masked),
            channel: Some(&challenge.channels),
            destination_keys: &audit_keys,
        };
        let numeric_id = issue::write(
            conn,
            &Writes {
                now,
                challenge: &challenge,
                limit_keys: &limit_keys,
                recent_sends: &recent_sends,
                messages: &messages,
                event: &audit::row(event, now),
                destination_keys: &audit_keys,
            },
        )?;
        // A decoy's messages are final from the start: none is queued.
        let outbox_ids = match req.decoy {
            None => messages.into_iter().map(|m| m.id).collect(),
            Some(_) => Vec::new(),
        };
        Ok(Ok(Issued {
            numeric_id,
            code: (req.reveal_code && req.decoy.is_none()).then_some(code),
            transaction_id: ChallengeId::from_stored(challenge.id),
            reference: challenge.reference,
            expires_at: challenge.expires_at,
            destinations: req.destinations.clone(),
            outbox_ids,
        }))
    })?
}

/// The keys the destinations' send limits are counted under, sorted and without
/// repeats: the order in which they are locked, so concurrent issues cannot deadlock.
fn limit_keys(req: &IssueRequest) -> Vec<String> {
    let mut keys: Vec<String> = req
        .destinations
        .iter()
        .map(|d| d.limit_key(req.limit_scope.as_deref()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Locks every destination, in the order of `limit_keys`, then checks the resend
/// cooldown and the send limit of each. A destination's lock serialises its send
/// count. Each issue holds its subject's lock first and then takes the destinations'
/// in one fixed order, so concurrent issues cannot deadlock. The outer error is a
/// fault; the inner one the limit hit. Returns what each destination's row is to keep
/// of its sends, with this one, in the order of `limit_keys`, for [`issue::write`] to
/// record.
fn check_limits(
    conn: &mut DbConnection,
    req: &IssueRequest,
    limit_keys: &[String],
    now: i64,
) -> Result<Result<Vec<Kept>>> {
    let p = &req.policy;
    let mut recent_sends = Vec::with_capacity(limit_keys.len());
    for key in limit_keys {
        let locked = limits::lock_destination(conn, key)?;
        let last = locked.last_sent_at;
        if p.cooldown_ms > 0 && last > 0 && now - last < p.cooldown_ms {
            let retry_after_secs = ceil_secs(last + p.cooldown_ms - now);
            return Ok(Err(Error::ResendCooldown { retry_after_secs }));
        }
        let sends = RecentSends::parse(
            &locked.recent_sends,
            locked.sends_window_ms,
            locked.sends_max,
        );
        if let Some(wait_ms) = sends.wait_ms(now, p.max_sends, p.send_window_ms) {
            let retry_after_secs = ceil_secs(wait_ms);
            return Ok(Err(Error::SendLimitReached { retry_after_secs }));
        }
        recent_sends.push(sends.with_send(now, p.max_sends, p.send_window_ms));
    }
    Ok(Ok(recent_sends))
}

/// The new challenge, as it is written (its numeric Id is drawn as it is).
fn new_challenge(keys: &Keys, req: &IssueRequest, code: &str, now: i64) -> Challenge {
    let id = ChallengeId::new().into_string();
    let masked: Vec<String> = req.destinations.iter().map(Destination::masked).collect();
    let channels: Vec<&str> = req
        .destinations
        .iter()
        .map(|d| d.channel.as_str())
        .collect();
    Challenge {
        reference: generate_reference(),
        subject: req.subject.clone(),
        purpose: req.purpose.to_string(),
        user_id: req.user_id.map(|u| u.0),
        org_id: req.org_id,
        channels: channels.join(","),
        destination_masked: masked.join(" and "),
        device_id: req.device_id.clone(),
        code_hash: code_hash(keys, req, &id, code),
        created_at: now,
        expires_at: now + req.policy.expiry_ms,
        attempts: 0,
        max_attempts: req.policy.max_attempts,
        consumed_at: None,
        superseded_at: None,
        numeric_id: None,
        change_request_id: None,
        id,
    }
}

/// The stored form of the code: its keyed hash; for a decoy, random bytes of the same
/// length (the hash computed all the same), that no code matches.
fn code_hash(keys: &Keys, req: &IssueRequest, id: &str, code: &str) -> Vec<u8> {
    let hash = keys.code_hash(id, code);
    match req.decoy {
        None => hash,
        Some(_) => random_bytes::<32>().to_vec(),
    }
}

/// One sealed message per destination, in request order. A decoy's are rendered and
/// sealed alike, as rows that are final from the start ([`decoy_row`]).
fn messages(
    keys: &Keys,
    templates: &Templates,
    req: &IssueRequest,
    challenge: &Challenge,
    code: &str,
    now: i64,
) -> Vec<OutboxRow> {
    let minutes = req.policy.expiry_minutes();
    let mut rows = Vec::with_capacity(req.destinations.len());
    for d in &req.destinations {
        let message = match (&req.sms_template, d.channel) {
            (Some(t), Channel::Sms) => Message {
                subject: None,
                text: templates.fill(t, code, minutes, &challenge.reference),
            },
            _ => templates.render(
                req.org_id,
                req.language.as_deref(),
                d.channel,
                code,
                minutes,
                &challenge.reference,
            ),
        };
        let row = OutboxRow::queued(
            uuid::Uuid::now_v7().to_string(),
            Some(challenge.id.clone()),
            d.channel.as_str(),
            (d.address.clone(), d.masked()),
            keys.seal(&message.to_bytes()),
            now,
        );
        rows.push(match req.decoy {
            None => row,
            Some(_) => decoy_row(row),
        });
    }
    rows
}

/// What a decoy writes where a code writes its message: the same insert, of a row that
/// is cancelled from the start (the dispatcher claims only queued ones), holds neither
/// the sealed text nor the address (only its masked form), says why, and goes with the
/// other cancelled messages after `retention_days`. Skipping the insert made a decoy
/// measurably quicker than a code on PostgreSQL (docs/performance.md).
fn decoy_row(row: OutboxRow) -> OutboxRow {
    OutboxRow {
        state: outbox::CANCELLED.to_string(),
        destination: row.destination_masked.clone(),
        payload: None,
        last_error: Some(super::decoy::NOTE.to_string()),
        ..row
    }
}

fn ceil_secs(ms: i64) -> i64 {
    ((ms + 999) / 1000).max(1)
}
