use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::redact::scrub;
use super::{Message, Outgoing, Providers, Templates};
use crate::config::DeliverySettings;
use crate::core::channel::Channel;
use crate::core::keys::Keys;
use crate::db::outbox::{self, OutboxRow};
use crate::db::provider_status;
use crate::db::{Db, atomically, now_ms};

/// How often sealed texts of failed messages whose code no longer works are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often what the providers did is written for `otpgate status` (at most).
const PROVIDER_STATUS_EVERY: Duration = Duration::from_secs(1);

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

/// A claimed message, with what its sending needs to know.
struct Claimed {
    row: OutboxRow,
    /// The organisation of its code, for the sender and From.
    org_id: Option<i64>,
    /// When its code expires, if it carries one.
    expires_at: Option<i64>,
}

/// A claimed message and what became of it.
struct Done {
    claimed: Claimed,
    outcome: Outcome,
}

/// `first`, and every other delivery already finished, without waiting for more.
fn drain(first: Result<Done, tokio::task::JoinError>, sending: &mut JoinSet<Done>) -> Vec<Done> {
    let mut done = Vec::new();
    let mut next = Some(first);
    while let Some(joined) = next {
        match joined {
            Ok(d) => done.push(d),
            // The message stays claimed and is sent again after its lease.
            Err(e) => tracing::error!(error = %e, "a message's delivery task failed"),
        }
        next = sending.try_join_next();
    }
    done
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

    /// Runs until `shutdown` turns true, finishing the messages in hand.
    ///
    /// Up to `batch_size` messages are in the providers' hands at once. Each outcome
    /// is recorded as soon as it is known, with whatever other outcomes are known by
    /// then, and the room it frees is filled by the next due messages: a message a
    /// provider took is never left unrecorded while slower ones are still being sent
    /// (a process that dies then leaves as few sent messages as possible to be sent
    /// again), and a slow provider never holds up the messages behind it.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let status = tokio::spawn(write_provider_status(
            this.db.clone(),
            this.providers.clone(),
            shutdown.clone(),
        ));
        let poll = Duration::from_millis(this.settings.poll_interval_ms);
        let mut sending: JoinSet<Done> = JoinSet::new();
        let mut last_sweep: Option<Instant> = None;
        let mut look = true;
        // Whether the last claim was full, so more messages may be due.
        let mut more_due = false;
        loop {
            if *shutdown.borrow() {
                while let Some(first) = sending.join_next().await {
                    this.record(drain(first, &mut sending)).await;
                }
                let _ = status.await;
                if let Err(e) = flush_provider_status(&this.db, &this.providers).await {
                    tracing::warn!(error = %e, "writing the providers' status failed");
                }
                return;
            }
            // Outcomes already known are recorded before anything else is claimed,
            // so that no sent message waits for a claim to be recorded.
            if let Some(first) = sending.try_join_next() {
                this.record(drain(first, &mut sending)).await;
                continue;
            }
            let room = this.settings.batch_size - sending.len() as i64;
            if look && room > 0 {
                look = false;
                match this.claim(room).await {
                    Ok((claimed, taken)) => {
                        // A full claim may have left more that is due.
                        more_due = taken as i64 == room;
                        look = more_due;
                        let idle = claimed.is_empty() && sending.is_empty();
                        for c in claimed {
                            let this = this.clone();
                            sending.spawn(async move { this.deliver(c).await });
                        }
                        if idle && last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                            last_sweep = Some(Instant::now());
                            this.sweep().await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claiming due messages failed"),
                }
                if look {
                    continue;
                }
            }
            tokio::select! {
                biased;
                Some(first) = sending.join_next(), if !sending.is_empty() => {
                    this.record(drain(first, &mut sending)).await;
                    // New messages wake the dispatcher, and retries come with the
                    // poll; the freed room is filled now only if more were due.
                    look = more_due;
                }
                _ = this.wake.notified() => look = true,
                _ = tokio::time::sleep(poll) => look = true,
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims up to `limit` due messages, and answers those to send and how many the
    /// claim took in all: it fails those whose code can no longer be used.
    async fn claim(&self, limit: i64) -> crate::error::Result<(Vec<Claimed>, usize)> {
        let claim = uuid::Uuid::new_v4().to_string();
        let lease_ms = self.settings.lease_and_budget().0.as_millis() as i64;
        let taken = self
            .db
            .run_as("outbox_claim", move |c| {
                let now = now_ms();
                Ok(outbox::claim_due(c, &claim, now, now + lease_ms, limit)?)
            })
            .await?;
        if taken.failed > 0 {
            tracing::info!(
                messages = taken.failed,
                "failed due messages whose code can no longer be used"
            );
        }
        let count = taken.taken();
        let live = taken
            .live
            .into_iter()
            .map(|outbox::ClaimedRow { row, code }| Claimed {
                row,
                org_id: code.map(|(org, _)| org),
                expires_at: code.map(|(_, expires_at)| expires_at),
            })
            .collect();
        Ok((live, count))
    }

    /// Drops the sealed texts of failed messages whose code no longer works.
    async fn sweep(&self) {
        let swept = self
            .db
            .run_as("outbox_sweep", |c| {
                Ok(outbox::drop_dead_payloads(c, now_ms())?)
            })
            .await;
        if let Err(e) = swept {
            tracing::warn!(error = ?e, "dropping the texts of dead messages failed");
        }
    }

    /// Records outcomes atomically: in one transaction, or as the one update they
    /// usually are. A failure leaves the messages claimed: they are sent again once
    /// their lease runs out.
    async fn record(&self, done: Vec<Done>) {
        if done.is_empty() {
            return;
        }
        let settings = self.settings.clone();
        let recorded = self
            .db
            .run_as("outbox_record", move |c| {
                let now = now_ms();
                // One update per claim, provider and reference: the messages a
                // provider took without one go together.
                let mut sent: HashMap<(&str, &str, Option<&str>), Vec<&str>> = HashMap::new();
                let mut failed = Vec::new();
                for Done { claimed, outcome } in &done {
                    let Claimed {
                        row, expires_at, ..
                    } = claimed;
                    match outcome {
                        Outcome::Sent { provider, reference } => {
                            sent.entry((
                                row.claimed_by.as_deref().unwrap_or_default(),
                                provider.as_str(),
                                reference.as_deref(),
                            ))
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
                            failed.push((row, err, retry));
                        }
                    }
                }
                // Usually one update for every message: then no transaction is needed
                // around it on PostgreSQL.
                atomically(c, failed.len() + sent.len(), |c| {
                    for (row, err, retry) in failed {
                        let claim = row.claimed_by.as_deref().unwrap_or_default();
                        outbox::mark_attempt_failed(c, &row.id, claim, err, retry, now)?;
                    }
                    for ((claim, provider, reference), ids) in sent {
                        outbox::mark_sent(c, &ids, claim, provider, reference, now)?;
                    }
                    Ok(())
                })
            })
            .await;
        super::outcomes_recorded();
        if let Err(e) = recorded {
            tracing::error!(error = %e, "recording the outcome of messages failed");
        }
    }

    /// Hands one message to its channel's providers in turn until one takes it, all
    /// within `budget` (inside the claim's lease, so no other dispatcher takes the
    /// message over while this one may still be sending it).
    async fn deliver(&self, claimed: Claimed) -> Done {
        let outcome = self.send(&claimed.row, claimed.org_id).await;
        Done { claimed, outcome }
    }

    async fn send(&self, row: &OutboxRow, org_id: Option<i64>) -> Outcome {
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
        let budget = self.settings.lease_and_budget().1;
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
                    let waited_ms = (crate::db::now_ms() - row.created_at).max(0);
                    self.db.metrics().delivered(
                        p.label(),
                        channel.as_str(),
                        waited_ms as f64 / 1000.0,
                    );
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
                    let e = scrub(&e, &out);
                    let cooling = self.providers.failed(&p, &e);
                    self.db.metrics().delivery_failed(p.label(), &e, cooling);
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

/// Writes what the providers did, once a second while anything happened, until
/// shutdown (the dispatcher writes the last of it after its last outcomes).
async fn write_provider_status(
    db: Db,
    providers: Arc<Providers>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut warned = false;
    while !*shutdown.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(PROVIDER_STATUS_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        match flush_provider_status(&db, &providers).await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "writing the providers' status failed");
            }
            Err(_) => {}
        }
    }
}

async fn flush_provider_status(db: &Db, providers: &Providers) -> crate::error::Result<()> {
    let unwritten = providers.unwritten();
    if unwritten.is_empty() {
        return Ok(());
    }
    db.run(move |c| {
        for s in &unwritten {
            provider_status::record(c, s)?;
        }
        Ok(())
    })
    .await
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
