//! Delivery of codes: message templates, the providers a channel is routed through,
//! and the dispatcher that drains the outbox.
//!
//! A message is written to the outbox in the transaction that creates its challenge.
//! A dispatcher in every `serve` process claims due messages, hands each to the
//! channel's providers in order until one takes it, and records the outcome. Callers
//! that must answer with the outcome (synchronous sends) wait on the row with
//! [`wait_for_outcome`].

mod dispatcher;
pub mod http_sms;
mod providers;
pub mod redact;
pub mod smtp;
pub mod templates;
mod transports;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

pub use dispatcher::Dispatcher;
pub use providers::Providers;
pub use templates::Templates;
pub use transports::{FileTransport, LogTransport, Receipt, Transport};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::core::channel::Channel;
use crate::db::Db;
use crate::db::outbox;

/// The text of one message; sealed in the outbox until it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
}

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(b: &[u8]) -> Option<Message> {
        serde_json::from_slice(b).ok()
    }
}

/// One message on its way out, as a transport sees it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub channel: Channel,
    pub to: String,
    pub to_masked: String,
    pub transaction_id: Option<String>,
    pub message: Message,
    /// The organisation's e-mail `From`; None: the provider's.
    pub from: Option<String>,
    /// The organisation's SMS sender; None: the provider's.
    pub sender: Option<String>,
}

/// Woken whenever a dispatcher of this process records outcomes, so a waiter in the
/// same process does not wait for its next poll.
static OUTCOMES: LazyLock<Notify> = LazyLock::new(Notify::new);

pub(crate) fn outcomes_recorded() {
    OUTCOMES.notify_waiters();
}

/// Waits until every one of the messages is sent (Ok), or one of them failed for good
/// or was cancelled, or `timeout` passed (Err, with a reason fit for the client: the
/// destination masked, never the code).
///
/// It reads the database, so it sees the outcome whichever process's dispatcher sends
/// the message. The caller wakes the local dispatcher first. A message still queued at
/// the timeout is left to its retries: it may still arrive.
pub async fn wait_for_outcome(
    db: &Db,
    outbox_ids: &[String],
    timeout: Duration,
) -> Result<(), String> {
    let mut wanted = outbox_ids.to_vec();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        // Registered before the read, so an outcome recorded in between still wakes us.
        let woken = OUTCOMES.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let ids = wanted.clone();
        let rows = db
            .run(move |c| Ok(outbox::find_many(c, &ids)?))
            .await
            .map_err(|e| {
                tracing::warn!(error = ?e, "cannot read the delivery status");
                "the delivery status could not be read".to_string()
            })?;
        if rows.len() < wanted.len() {
            return Err("a message of this request is no longer in the outbox".into());
        }
        if let Some(r) = rows
            .iter()
            .find(|r| r.state == outbox::FAILED || r.state == outbox::CANCELLED)
        {
            let why = r.last_error.as_deref().unwrap_or("no error was recorded");
            return Err(if r.state == outbox::FAILED {
                format!(
                    "the {} message to {} could not be delivered after {} attempt{}: {why}",
                    channel_name(&r.channel),
                    r.destination_masked,
                    r.attempts,
                    if r.attempts == 1 { "" } else { "s" }
                )
            } else {
                format!(
                    "the {} message to {} was not sent: {why}",
                    channel_name(&r.channel),
                    r.destination_masked
                )
            });
        }
        if rows.iter().all(|r| r.state == outbox::SENT) {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            let r = rows.iter().find(|r| r.state != outbox::SENT);
            return Err(match r {
                Some(r) => format!(
                    "the {} message to {} was not delivered within {}{}",
                    channel_name(&r.channel),
                    r.destination_masked,
                    if timeout.subsec_millis() == 0 {
                        format!("{} s", timeout.as_secs())
                    } else {
                        format!("{} ms", timeout.as_millis())
                    },
                    r.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ),
                None => "the message was not delivered in time".into(),
            });
        }
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(pause.min(deadline - now)) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

fn channel_name(channel: &str) -> &str {
    match channel {
        "email" => "e-mail",
        "sms" => "SMS",
        other => other,
    }
}
