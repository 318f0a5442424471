//! The named providers and each channel's ordered list of them, with the cool-down
//! that makes a failing provider step aside.
//!
//! The cool-down is kept in each process: a provider that just failed here is skipped
//! here for `provider_cooldown_seconds`, while another process finds out on its own.
//! When every provider of a channel is cooling down they are all tried anyway, in
//! order: a cool-down never leaves a message with nothing to try.
//!
//! What each provider did since it was last written ([`Providers::unwritten`]) is kept
//! too, for the dispatcher to write to `provider_status` once a second, where
//! `otpgate status` reads it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::http_sms::HttpSmsTransport;
use super::smtp::SmtpTransport;
use super::{FileTransport, LogTransport, Outgoing, Receipt, Transport};
use crate::config::{DeliverySettings, ProviderSettings};
use crate::core::channel::Channel;
use crate::db::now_ms;
use crate::db::provider_status::ProviderStatus;

pub struct Provider {
    transport: Arc<dyn Transport>,
    cooling_until: Mutex<Option<Instant>>,
    /// What it did since that was last written, if anything.
    unwritten: Mutex<Option<ProviderStatus>>,
    /// The name, shared with the metrics' labels.
    label: Arc<str>,
}

impl Provider {
    fn new(transport: Arc<dyn Transport>) -> Arc<Provider> {
        Arc::new(Provider {
            label: transport.name().into(),
            transport,
            cooling_until: Mutex::new(None),
            unwritten: Mutex::new(None),
        })
    }

    /// The name as a metrics label.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    pub fn name(&self) -> &str {
        self.transport.name()
    }

    pub fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    fn note(&self, f: impl FnOnce(&mut ProviderStatus)) {
        let mut unwritten = self.unwritten.lock().unwrap_or_else(|e| e.into_inner());
        let status = unwritten.get_or_insert_with(|| ProviderStatus {
            provider: self.name().to_string(),
            ..ProviderStatus::default()
        });
        f(status);
        status.updated_at = now_ms();
    }

    fn cooling(&self, now: Instant) -> bool {
        let until = self.cooling_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|u| u > now)
    }
}

pub struct Providers {
    email: Vec<Arc<Provider>>,
    sms: Vec<Arc<Provider>>,
    cooldown: Duration,
}

/// Stands for a provider whose set-up failed at start (a CA file that became
/// unreadable, say): each send fails with the reason, so the next provider is tried
/// and the outbox says why.
struct Broken {
    name: String,
    why: String,
}

impl Transport for Broken {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, _: &'a Outgoing) -> BoxFuture<'a, Result<Receipt, String>> {
        Box::pin(async move { Err(format!("not set up: {}", self.why)) })
    }
}

impl Providers {
    pub fn from_settings(s: &DeliverySettings) -> Providers {
        let mut by_name: BTreeMap<String, Arc<Provider>> = BTreeMap::new();
        by_name.insert(
            "file".into(),
            Provider::new(Arc::new(FileTransport::new("file", s.file_path.clone()))),
        );
        by_name.insert(
            "log".into(),
            Provider::new(Arc::new(LogTransport { name: "log".into() })),
        );
        for p in &s.providers {
            let built: Result<Arc<dyn Transport>, String> = match p {
                ProviderSettings::Smtp(m) => {
                    SmtpTransport::new(m, &s.app_name).map(|t| Arc::new(t) as Arc<dyn Transport>)
                }
                ProviderSettings::HttpSms(h) => {
                    HttpSmsTransport::new(h).map(|t| Arc::new(t) as Arc<dyn Transport>)
                }
                ProviderSettings::File(f) => {
                    Ok(Arc::new(FileTransport::new(f.name.clone(), f.path.clone())))
                }
                ProviderSettings::Log(l) => Ok(Arc::new(LogTransport {
                    name: l.name.clone(),
                })),
            };
            let transport = built.unwrap_or_else(|why| {
                tracing::error!(provider = p.name(), error = %why, "delivery provider cannot be set up");
                Arc::new(Broken {
                    name: p.name().to_string(),
                    why,
                })
            });
            by_name.insert(p.name().to_string(), Provider::new(transport));
        }
        let pick = |names: &[String]| -> Vec<Arc<Provider>> {
            names
                .iter()
                .filter_map(|n| by_name.get(n).cloned())
                .collect()
        };
        tracing::info!(
            email = %s.email.join(", "),
            sms = %s.sms.join(", "),
            "delivery providers, in the order they are tried"
        );
        Providers {
            email: pick(&s.email),
            sms: pick(&s.sms),
            cooldown: Duration::from_secs(s.provider_cooldown_seconds),
        }
    }

    /// The providers to try for a message, in order: those not cooling down, or all
    /// of them when every one is.
    pub fn to_try(&self, channel: Channel) -> Vec<Arc<Provider>> {
        let all = match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
        };
        let now = Instant::now();
        let ready: Vec<Arc<Provider>> = all.iter().filter(|p| !p.cooling(now)).cloned().collect();
        if ready.is_empty() { all.clone() } else { ready }
    }

    /// `p` did not take a message, for the reason `error` (already scrubbed); puts it
    /// in its cool-down. True when it was not cooling down already.
    pub fn failed(&self, p: &Provider, error: &str) -> bool {
        let now = now_ms();
        let cooling = !self.cooldown.is_zero();
        p.note(|s| {
            s.last_failure_at = Some(now);
            s.last_error = Some(error.to_string());
            s.failures += 1;
            s.cooling_until = cooling.then(|| now + self.cooldown.as_millis() as i64);
        });
        if !cooling {
            return false;
        }
        let now = Instant::now();
        let mut until = p.cooling_until.lock().unwrap_or_else(|e| e.into_inner());
        let started = until.is_none_or(|u| u <= now);
        *until = Some(now + self.cooldown);
        started
    }

    pub fn succeeded(&self, p: &Provider) {
        let now = now_ms();
        p.note(|s| {
            s.last_success_at = Some(now);
            s.failures = 0;
            s.cooling_until = None;
        });
        *p.cooling_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// What each provider did since this was last asked, to be written; each
    /// provider once, whichever channels it serves.
    pub fn unwritten(&self) -> Vec<ProviderStatus> {
        let mut seen = std::collections::BTreeSet::new();
        self.email
            .iter()
            .chain(&self.sms)
            .filter(|p| seen.insert(p.name().to_string()))
            .filter_map(|p| p.unwritten.lock().unwrap_or_else(|e| e.into_inner()).take())
            .collect()
    }
}
