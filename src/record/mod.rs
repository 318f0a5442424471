//! Recording live traffic as replay scenarios (`[record]`, docs/recording.md).
//!
//! A middleware around every dialect request ([`capture`]) takes the exchange (local
//! or forwarded alike) and offers it to a bounded queue, never waiting: a full queue
//! drops the exchange and counts it in [`Stats::dropped`]. A writer task ([`writer`])
//! chains a generate with the requests that use its transaction or session id
//! ([`chain`]), redacts secrets, codes and contacts ([`redact`]), and writes each
//! scenario as a `*.replay.toml` file that `otpgate replay` reads ([`render`]).

pub mod capture;
mod chain;
mod exchange;
mod fields;
mod redact;
mod render;
mod writer;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::middleware::Condition;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Settings;

pub use capture::Capture;

/// What the recorder counted since start.
#[derive(Debug, Default)]
pub struct Stats {
    /// Exchanges handed to the writer.
    pub captured: AtomicU64,
    /// Exchanges dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Scenario files written.
    pub written: AtomicU64,
    /// Scenarios that could not be written.
    pub failed: AtomicU64,
    /// When a full queue was last logged, in seconds since the epoch.
    last_warning: AtomicU64,
}

impl Stats {
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn captured(&self) -> u64 {
        self.captured.load(Ordering::Relaxed)
    }
}

/// A running recorder: the middleware's handle and the writer task.
pub struct Recording {
    capture: Capture,
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Recording {
    /// Starts the writer when `record.dir` is set (creating the directory); None when
    /// recording is off. Must be called within a tokio runtime.
    pub fn start(settings: &Settings) -> std::io::Result<Option<Recording>> {
        let r = &settings.record;
        let Some(dir) = &r.dir else {
            return Ok(None);
        };
        writer::prepare(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("record.dir {}: {e}", dir.display()))
        })?;
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel(r.queue.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let files = Arc::new(writer::Files {
            dir: dir.clone(),
            extra: r
                .redact
                .iter()
                .map(|n| redact::normalize(n))
                .collect::<BTreeSet<_>>(),
            seq: AtomicU64::new(0),
            stats: Arc::clone(&stats),
        });
        let task = tokio::spawn(writer::run(rx, stop_rx, files, r.pending_seconds));
        let shared = capture::Shared {
            tx,
            stats: Arc::clone(&stats),
            names: r.names.clone(),
            sample: r.sample,
            max_body: settings.max_body_bytes,
            extra_headers: r.redact.clone(),
        };
        tracing::info!(
            target: "otpgate",
            dir = %dir.display(),
            sample = r.sample,
            names = r.names.len(),
            "recording exchanges as replay scenarios"
        );
        Ok(Some(Recording {
            capture: Capture {
                shared: Some(Arc::new(shared)),
            },
            stats,
            stop,
            task,
        }))
    }

    /// The middleware's handle, one per HTTP worker.
    pub fn capture(&self) -> Capture {
        self.capture.clone()
    }

    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Stops the writer after it has written what it holds (at most 30 s).
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        drop(self.capture);
        if tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .is_err()
        {
            tracing::warn!("recording: the writer did not finish within 30 s");
        }
        let s = &self.stats;
        tracing::info!(
            target: "otpgate",
            written = s.written(),
            dropped = s.dropped(),
            "recording stopped"
        );
    }
}

/// The middleware for the app: records with `capture`, and is not even in the way
/// when recording is off.
pub fn middleware(capture: Option<Capture>) -> Condition<Capture> {
    Condition::new(capture.is_some(), capture.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::chain::tests::exchange;

    /// A full queue drops and counts instead of waiting.
    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let stats = Arc::new(Stats::default());
        let (tx, _rx) = mpsc::channel(1);
        let shared = capture::Shared {
            tx,
            stats: Arc::clone(&stats),
            names: Vec::new(),
            sample: 1.0,
            max_body: 1024,
            extra_headers: Vec::new(),
        };
        for _ in 0..5 {
            shared.offer(exchange("/auth/v1/otp/generate", "{}", 200, "{}"));
        }
        assert_eq!(stats.captured(), 1);
        assert_eq!(stats.dropped(), 4);
        assert!(stats.last_warning.load(Ordering::Relaxed) > 0);
    }
}
