use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Notify, watch};

use super::redact::scrub;
use super::{Message, Outgoing, Providers, Templates};
use crate::config::DeliverySettings;
use crate::core::channel::Channel;
use crate::core::keys::Keys;
use crate::db::outbox::{self, OutboxRow};
use crate::db::{Db, now_ms, write_transaction};

/// How often sealed texts of failed messages whose code no longer works are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Drains the outbox: claims due messages, hands each to the providers of its channel
/// in order until one takes it, and records the outcome. Several dispatchers (in
/// several processes) may share one database: claims are atomic leases.
#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    keys: Arc<Keys>,
    providers: Arc<Providers>,
    /// For each organisation's e-mail From and SMS sender.
    templates: Arc<Templates>,
    settings: DeliverySettings,
    wake: Arc<Notify>,
}

enum Outcome {
    Sent {
        provider: String,
        reference: Option<String>,
    },
    Failed(String),
}

impl Dispatcher {
    pub fn new(
        db: Db,
        keys: Arc<Keys>,
        settings: &DeliverySettings,
        wake: Arc<Notify>,
    ) -> Dispatcher {
        Dispatcher {
            providers: Arc::new(Providers::from_settings(settings)),
            templates: Arc::new(Templates::from_settings(settings)),
            db,
            keys,
            settings: settings.clone(),
            wake,
        }
    }

    /// Runs until `shutdown` turns true, finishing the batch in hand.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms);
        let mut last_sweep: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let handled = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "outbox dispatch failed");
                    0
                }
            };
            if handled as i64 >= self.settings.batch_size {
                continue;
            }
            // Housekeeping of its own, when there is nothing to send.
            if handled == 0 && last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(Instant::now());
                let swept = self
                    .db
                    .run(|c| Ok(outbox::drop_dead_payloads(c, now_ms())?))
                    .await;
                if let Err(e) = swept {
                    tracing::warn!(error = ?e, "dropping the texts of dead messages failed");
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims and sends one batch; returns how many messages it handled.
    pub async fn run_once(&self) -> crate::error::Result<usize> {
        let claim = uuid::Uuid::new_v4().to_string();
        let lease_ms = self.settings.lease_seconds * 1000;
        let batch = self.settings.batch_size;
        let claim_id = claim.clone();
        // Each claimed message's code is still usable: the claim fails the others.
        let (rows, codes) = self
            .db
            .run(move |c| {
                let now = now_ms();
                let rows = outbox::claim_due(c, &claim_id, now, now + lease_ms, batch)?;
                let challenges: Vec<String> =
                    rows.iter().filter_map(|r| r.challenge_id.clone()).collect();
                let codes: HashMap<String, (i64, i64)> = if challenges.is_empty() {
                    HashMap::new()
                } else {
                    outbox::challenges_of(c, &challenges)?
                        .into_iter()
                        .map(|(id, org, expires_at)| (id, (org, expires_at)))
                        .collect()
                };
                Ok((rows, codes))
            })
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let n = rows.len();
        let code_of = |r: &OutboxRow| r.challenge_id.as_ref().and_then(|c| codes.get(c)).copied();
        let outcomes = futures_util::future::join_all(
            rows.iter()
                .map(|r| self.deliver(r, code_of(r).map(|(org, _)| org))),
        )
        .await;
        let expiries: Vec<Option<i64>> = rows
            .iter()
            .map(|r| code_of(r).map(|(_, expires_at)| expires_at))
            .collect();
        let settings = self.settings.clone();
        let results: Vec<((OutboxRow, Option<i64>), Outcome)> =
            rows.into_iter().zip(expiries).zip(outcomes).collect();
        let recorded = self
            .db
            .run(move |c| {
                write_transaction(c, |c| {
                    let now = now_ms();
                    // One update per provider and reference: all the messages a
                    // provider took without one go together.
                    let mut sent: HashMap<(&str, Option<&str>), Vec<&str>> = HashMap::new();
                    for ((row, expires_at), outcome) in &results {
                        match outcome {
                            Outcome::Sent { provider, reference } => {
                                sent.entry((provider.as_str(), reference.as_deref()))
                                    .or_default()
                                    .push(row.id.as_str());
                            }
                            Outcome::Failed(err) => {
                                let attempt = row.attempts + 1;
                                let retry = retry_at(
                                    &settings,
                                    attempt,
                                    row.challenge_id.is_some(),
                                    *expires_at,
                                    now,
                                );
                                match retry {
                                    Some(at) => tracing::info!(message_id = %row.id, channel = %row.channel, to = %row.destination_masked, attempt, retry_in_ms = at - now, error = %err, "message not sent; it will be retried"),
                                    None => tracing::warn!(message_id = %row.id, channel = %row.channel, to = %row.destination_masked, attempt, error = %err, "message failed after the last attempt"),
                                }
                                outbox::mark_attempt_failed(c, &row.id, &claim, err, retry, now)?;
                            }
                        }
                    }
                    for ((provider, reference), ids) in sent {
                        outbox::mark_sent(c, &ids, &claim, provider, reference, now)?;
                    }
                    Ok(())
                })
            })
            .await;
        super::outcomes_recorded();
        recorded?;
        Ok(n)
    }

    async fn deliver(&self, row: &OutboxRow, org_id: Option<i64>) -> Outcome {
        let Some(message) = row
            .payload
            .as_deref()
            .and_then(|p| self.keys.open(p))
            .and_then(|b| Message::from_bytes(&b))
        else {
            return Outcome::Failed(
                "the sealed message cannot be opened with the configured keys".into(),
            );
        };
        let channel = Channel::parse(&row.channel).unwrap_or(Channel::Sms);
        let out = Outgoing {
            id: row.id.clone(),
            channel,
            to: row.destination.clone(),
            to_masked: row.destination_masked.clone(),
            transaction_id: row.challenge_id.clone(),
            message,
            from: org_id.and_then(|o| self.templates.email_from(o)),
            sender: org_id.and_then(|o| self.templates.sms_sender(o)),
        };
        let mut errors = Vec::new();
        // Every provider together stays well inside the lease, so no other dispatcher
        // takes the message over while this one may still be sending it.
        let budget = Duration::from_millis((self.settings.lease_seconds * 500) as u64);
        let deadline = tokio::time::Instant::now() + budget;
        for p in self.providers.to_try(channel) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                errors.push(format!(
                    "{}: not tried, the attempt ran out of time",
                    p.name()
                ));
                continue;
            }
            let sent = tokio::time::timeout(left, p.transport().send(&out))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} ms", left.as_millis())));
            match sent {
                Ok(receipt) => {
                    self.providers.succeeded(&p);
                    if self.settings.console {
                        // The demo's stand-in for a phone: the whole message, on stdout.
                        let subject = out
                            .message
                            .subject
                            .as_deref()
                            .map(|s| format!(" [{s}]"))
                            .unwrap_or_default();
                        println!(
                            "[delivery] {} to {}{}: {}",
                            channel.as_str(),
                            out.to_masked,
                            subject,
                            out.message.text
                        );
                    }
                    tracing::debug!(message_id = %row.id, provider = p.name(), to = %row.destination_masked, "message sent");
                    return Outcome::Sent {
                        provider: p.name().to_string(),
                        reference: receipt.reference.map(|r| scrub(&r, &out)),
                    };
                }
                Err(e) => {
                    self.providers.failed(&p);
                    let e = scrub(&e, &out);
                    tracing::info!(message_id = %row.id, provider = p.name(), to = %row.destination_masked, error = %e, "provider did not take the message");
                    errors.push(format!("{}: {e}", p.name()));
                }
            }
        }
        if errors.is_empty() {
            errors.push(format!(
                "no provider is configured for {}",
                channel.as_str()
            ));
        }
        Outcome::Failed(errors.join("; "))
    }
}

/// Attempts of a message that carries no code (so has no code's life to bound its
/// retries) when `max_attempts` sets no bound.
const ATTEMPTS_WITHOUT_A_CODE: i64 = 5;

/// When a message whose `attempt`-th attempt failed is tried again, or None when it
/// has failed for good. A message carrying a code is retried for as long as the code
/// may be used (never later than its expiry, when the claim fails it if it is still
/// unsent), up to `max_attempts` when that is positive; one without a code, up to
/// `max_attempts` or [`ATTEMPTS_WITHOUT_A_CODE`].
fn retry_at(
    settings: &DeliverySettings,
    attempt: i64,
    has_code: bool,
    expires_at: Option<i64>,
    now: i64,
) -> Option<i64> {
    let bound = match settings.max_attempts {
        n if n > 0 => n,
        _ if has_code => i64::MAX,
        _ => ATTEMPTS_WITHOUT_A_CODE,
    };
    if attempt >= bound {
        return None;
    }
    let at = now + backoff_ms(settings.retry_base_ms, attempt, settings.max_retry_delay_ms);
    Some(expires_at.map_or(at, |e| at.min(e.max(now))))
}

/// Exponential backoff with jitter in its upper half: min(base·2^(n-1), cap) · [0.5, 1].
fn backoff_ms(base: i64, attempt: i64, cap: i64) -> i64 {
    let exp = base.saturating_mul(1i64 << (attempt - 1).clamp(0, 40));
    let capped = exp.min(cap).max(1);
    capped / 2 + rand::rng().random_range(0..=capped - capped / 2)
}

#[cfg(test)]
mod tests {
    use super::{backoff_ms, retry_at};
    use crate::config::DeliverySettings;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..6 {
            let b = backoff_ms(1000, attempt, 30_000);
            let full = 1000 * (1 << (attempt - 1));
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b}");
        }
    }

    #[test]
    fn backoff_is_capped_however_many_attempts_failed() {
        for attempt in [6, 10, 30, 63, 1_000, i64::MAX] {
            let b = backoff_ms(1000, attempt, 30_000);
            assert!((15_000..=30_000).contains(&b), "attempt {attempt}: {b}");
        }
        // A cap below the base wins, and the smallest delays stay positive.
        assert!((250..=500).contains(&backoff_ms(1000, 1, 500)));
        assert!((0..=1).contains(&backoff_ms(1, 1, 1)));
        assert!(backoff_ms(i64::MAX, 40, i64::MAX) > 0);
    }

    #[test]
    fn a_message_with_a_code_is_retried_until_the_code_expires() {
        let s = DeliverySettings::default();
        assert_eq!(s.max_attempts, 0);
        let now = 1_000_000;
        let expires = now + 600_000;
        for attempt in [1, 5, 50, 10_000] {
            let at = retry_at(&s, attempt, true, Some(expires), now).expect("retried");
            assert!(at > now && at <= now + 30_000, "attempt {attempt}: {at}");
        }
        // Never later than the expiry, when the claim fails it.
        assert_eq!(
            retry_at(&s, 20, true, Some(now + 100), now),
            Some(now + 100)
        );
        assert_eq!(retry_at(&s, 20, true, Some(now - 5), now), Some(now));
    }

    #[test]
    fn a_positive_max_attempts_bounds_every_message() {
        let s = DeliverySettings {
            max_attempts: 3,
            ..DeliverySettings::default()
        };
        let now = 1_000_000;
        assert!(retry_at(&s, 2, true, Some(now + 600_000), now).is_some());
        assert_eq!(retry_at(&s, 3, true, Some(now + 600_000), now), None);
        assert_eq!(retry_at(&s, 3, false, None, now), None);
    }

    #[test]
    fn a_message_without_a_code_keeps_a_bounded_number_of_attempts() {
        let s = DeliverySettings::default();
        assert!(retry_at(&s, 4, false, None, 0).is_some());
        assert_eq!(retry_at(&s, 5, false, None, 0), None);
    }
}
