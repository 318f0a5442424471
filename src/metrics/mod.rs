//! The process's Prometheus metrics: one registry per gateway, every family
//! registered at start-up, written in the Prometheus text format at `/metrics`
//! (docs/operations/README.md#metrics).
//!
//! Label values are always `&'static str` from a small fixed set (a dialect, an
//! operation otpgate serves, an outcome kind) or a configured provider's name: never
//! a user, destination, address, code or id. What a client sends never becomes a
//! label value; an operation otpgate does not serve is `unknown`.
//!
//! Recording is an atomic add after a lookup in a small map under a read lock; when
//! `metrics.enabled` is false every call returns at once.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::error::Error;

mod labels;

use labels::*;
pub use labels::{
    LOGIN_OUTCOMES, OUTBOX_STATES, OtpEvent, RequestLabels, TRANSACTION_KINDS, UNKNOWN,
    failure_reason,
};

/// The `Content-Type` of the scrape.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Buckets of a histogram family, given once.
#[derive(Clone)]
struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

type HistogramFamily<S> = Family<S, Histogram, Buckets>;

/// 1 ms to 8 s: answers, transactions, upstream calls.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// 10 ms to 82 s: a message from its code's issue to a provider taking it.
fn delivery() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// 0.1 ms to 6.5 s: waiting for a pooled connection or a hashing slot.
fn wait() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 3.0, 11))
}

pub struct Metrics {
    enabled: bool,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<OperationLabels>,
    otp: Family<OutcomeLabel, Counter>,
    logins: Family<OutcomeLabel, Counter>,
    lockouts: Counter,
    hashing_wait: Histogram,
    outbox: Family<StateLabel, Gauge>,
    outbox_oldest: Gauge<f64, AtomicU64>,
    delivery_attempts: Family<ProviderResult, Counter>,
    delivery_failures: Family<ProviderReason, Counter>,
    delivery_seconds: HistogramFamily<ChannelLabel>,
    cooldowns: Family<ProviderLabel, Counter>,
    pool_connections: Family<StateLabel, Gauge>,
    pool_wait: Histogram,
    transactions: HistogramFamily<KindLabel>,
    sql_statements: Family<KindLabel, Counter>,
    sql_transactions: Family<KindLabel, Counter>,
    housekeeping_seconds: Histogram,
    housekeeping_rows: Counter,
    upstream_seconds: HistogramFamily<UpstreamLabel>,
    upstream_errors: Family<UpstreamError, Counter>,
    circuit_open: Family<UpstreamLabel, Gauge>,
}

impl Metrics {
    /// The metrics of a gateway on `backend`; `enabled: false` records nothing.
    pub fn new(enabled: bool, backend: &'static str) -> Metrics {
        let mut m = Metrics {
            enabled,
            registry: Registry::with_prefix("otpgate"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(Buckets(latency)),
            otp: Family::default(),
            logins: Family::default(),
            lockouts: Counter::default(),
            hashing_wait: wait(),
            outbox: Family::default(),
            outbox_oldest: Gauge::default(),
            delivery_attempts: Family::default(),
            delivery_failures: Family::default(),
            delivery_seconds: Family::new_with_constructor(Buckets(delivery)),
            cooldowns: Family::default(),
            pool_connections: Family::default(),
            pool_wait: wait(),
            transactions: Family::new_with_constructor(Buckets(latency)),
            sql_statements: Family::default(),
            sql_transactions: Family::default(),
            housekeeping_seconds: latency(),
            housekeeping_rows: Counter::default(),
            upstream_seconds: Family::new_with_constructor(Buckets(latency)),
            upstream_errors: Family::default(),
            circuit_open: Family::default(),
        };
        // Series that exist from the start, so that rates and alerts see a zero
        // rather than nothing.
        for e in OtpEvent::ALL {
            let _ = m.otp.get_or_create(&OutcomeLabel {
                outcome: e.as_str(),
            });
        }
        for outcome in LOGIN_OUTCOMES {
            let _ = m.logins.get_or_create(&OutcomeLabel { outcome });
        }
        for state in OUTBOX_STATES {
            let _ = m.outbox.get_or_create(&StateLabel { state });
        }
        for state in ["in_use", "idle"] {
            let _ = m.pool_connections.get_or_create(&StateLabel { state });
        }
        for kind in TRANSACTION_KINDS {
            let _ = m.transactions.get_or_create(&KindLabel { kind });
            let _ = m.sql_statements.get_or_create(&KindLabel { kind });
            let _ = m.sql_transactions.get_or_create(&KindLabel { kind });
        }
        let r = &mut m.registry;
        r.register(
            "build",
            "The running version and database backend",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                backend,
            }),
        );
        r.register(
            "http_requests",
            "Requests answered, by dialect, operation and outcome",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer",
            m.request_seconds.clone(),
        );
        r.register(
            "otp_events",
            "OTP requests by what they came to",
            m.otp.clone(),
        );
        r.register(
            "password_logins",
            "Password logins by outcome",
            m.logins.clone(),
        );
        r.register(
            "login_lockouts",
            "Lockouts started: a login's failures from one address reached login.max_failures",
            m.lockouts.clone(),
        );
        r.register(
            "password_hash_queue_wait_seconds",
            "Time a password check waited for a hashing slot",
            m.hashing_wait.clone(),
        );
        r.register(
            "outbox_messages",
            "Outbox messages queued, being sent or failed, by state (refreshed every metrics.refresh_seconds)",
            m.outbox.clone(),
        );
        r.register(
            "outbox_oldest_queued_age_seconds",
            "Age of the oldest queued outbox message, 0 when none is queued",
            m.outbox_oldest.clone(),
        );
        r.register(
            "delivery_attempts",
            "Messages handed to a provider, by provider and result",
            m.delivery_attempts.clone(),
        );
        r.register(
            "delivery_failures",
            "Messages a provider did not take, by provider and reason class",
            m.delivery_failures.clone(),
        );
        r.register(
            "delivery_latency_seconds",
            "Time from a message's issue to a provider taking it",
            m.delivery_seconds.clone(),
        );
        r.register(
            "provider_cooldowns",
            "Cool-downs started after a provider failed",
            m.cooldowns.clone(),
        );
        r.register(
            "db_pool_connections",
            "Pooled database connections, in use or idle",
            m.pool_connections.clone(),
        );
        r.register(
            "db_pool_wait_seconds",
            "Time spent waiting for a pooled database connection",
            m.pool_wait.clone(),
        );
        r.register(
            "db_transaction_duration_seconds",
            "Database work by kind, from taking a connection to giving it back",
            m.transactions.clone(),
        );
        r.register(
            "db_statements",
            "SQL statements sent (BEGIN and COMMIT included), by the kind of work",
            m.sql_statements.clone(),
        );
        r.register(
            "housekeeping_duration_seconds",
            "Housekeeping runs, from start to end (every batch and the rests between them)",
            m.housekeeping_seconds.clone(),
        );
        r.register(
            "housekeeping_rows_removed",
            "Rows housekeeping deleted",
            m.housekeeping_rows.clone(),
        );
        r.register(
            "db_transactions",
            "Database transactions begun (savepoints not counted), by the kind of work",
            m.sql_transactions.clone(),
        );
        r.register(
            "upstream_request_duration_seconds",
            "Requests forwarded to a legacy server, until its answer",
            m.upstream_seconds.clone(),
        );
        r.register(
            "upstream_errors",
            "Forwarded requests that failed, by kind",
            m.upstream_errors.clone(),
        );
        r.register(
            "upstream_circuit_open",
            "1 while a legacy server's circuit breaker is open",
            m.circuit_open.clone(),
        );
        m
    }

    /// Metrics that record nothing, for the command-line tools.
    pub fn off() -> Arc<Metrics> {
        Arc::new(Metrics::new(false, UNKNOWN))
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The scrape: every family in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    pub fn request(&self, labels: RequestLabels, seconds: f64) {
        if !self.enabled {
            return;
        }
        self.request_seconds
            .get_or_create(&OperationLabels {
                dialect: labels.dialect,
                operation: labels.operation,
            })
            .observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    pub fn otp(&self, event: OtpEvent) {
        if self.enabled {
            self.otp
                .get_or_create(&OutcomeLabel {
                    outcome: event.as_str(),
                })
                .inc();
        }
    }

    /// Counts `result` of an OTP operation when it is an OTP event: `ok` as the
    /// operation's success, an error by [`OtpEvent::of_error`].
    pub fn otp_result<T>(&self, ok: OtpEvent, result: &Result<T, Error>) {
        match result {
            Ok(_) => self.otp(ok),
            Err(e) => {
                if let Some(event) = OtpEvent::of_error(e) {
                    self.otp(event);
                }
            }
        }
    }

    /// A password login's outcome, one of [`LOGIN_OUTCOMES`].
    pub fn login(&self, outcome: &'static str, lockout_started: bool) {
        if !self.enabled {
            return;
        }
        self.logins.get_or_create(&OutcomeLabel { outcome }).inc();
        if lockout_started {
            self.lockouts.inc();
        }
    }

    pub fn hashing_wait(&self, seconds: f64) {
        if self.enabled {
            self.hashing_wait.observe(seconds);
        }
    }

    /// The outbox as the refresh task last counted it.
    pub fn outbox(&self, counts: &[(String, i64)], oldest_queued_seconds: f64) {
        if !self.enabled {
            return;
        }
        for state in OUTBOX_STATES {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.outbox.get_or_create(&StateLabel { state }).set(n);
        }
        self.outbox_oldest.set(oldest_queued_seconds.max(0.0));
    }

    /// A provider took a message issued `seconds` ago.
    pub fn delivered(&self, provider: &Arc<str>, channel: &'static str, seconds: f64) {
        if !self.enabled {
            return;
        }
        self.delivery_attempts
            .get_or_create(&ProviderResult {
                provider: provider.clone(),
                result: "sent",
            })
            .inc();
        self.delivery_seconds
            .get_or_create(&ChannelLabel { channel })
            .observe(seconds);
    }

    /// A provider did not take a message; `cooling` when that started its cool-down.
    pub fn delivery_failed(&self, provider: &Arc<str>, error: &str, cooling: bool) {
        if !self.enabled {
            return;
        }
        self.delivery_attempts
            .get_or_create(&ProviderResult {
                provider: provider.clone(),
                result: "failed",
            })
            .inc();
        self.delivery_failures
            .get_or_create(&ProviderReason {
                provider: provider.clone(),
                reason: failure_reason(error),
            })
            .inc();
        if cooling {
            self.cooldowns
                .get_or_create(&ProviderLabel {
                    provider: provider.clone(),
                })
                .inc();
        }
    }

    pub fn pool(&self, in_use: u32, idle: u32) {
        if !self.enabled {
            return;
        }
        for (state, n) in [("in_use", in_use), ("idle", idle)] {
            self.pool_connections
                .get_or_create(&StateLabel { state })
                .set(i64::from(n));
        }
    }

    pub fn pool_wait(&self, seconds: f64) {
        if self.enabled {
            self.pool_wait.observe(seconds);
        }
    }

    /// Database work of `kind`, one of [`TRANSACTION_KINDS`]: how long it held its
    /// connection, and what it sent.
    pub fn transaction(
        &self,
        kind: &'static str,
        seconds: f64,
        (statements, transactions): (u64, u64),
    ) {
        debug_assert!(TRANSACTION_KINDS.contains(&kind), "{kind}");
        if self.enabled {
            let label = KindLabel { kind };
            self.transactions.get_or_create(&label).observe(seconds);
            self.sql_statements.get_or_create(&label).inc_by(statements);
            self.sql_transactions
                .get_or_create(&label)
                .inc_by(transactions);
        }
    }

    /// A housekeeping run that took `seconds` and deleted `rows`.
    pub fn housekeeping(&self, seconds: f64, rows: u64) {
        if self.enabled {
            self.housekeeping_seconds.observe(seconds);
            self.housekeeping_rows.inc_by(rows);
        }
    }

    /// A request forwarded to `upstream` (`summit`, `twofactor`, `capillary`), and
    /// the kind of its failure if it failed.
    pub fn upstream(&self, upstream: &'static str, seconds: f64, failure: Option<&'static str>) {
        if !self.enabled {
            return;
        }
        self.upstream_seconds
            .get_or_create(&UpstreamLabel { upstream })
            .observe(seconds);
        if let Some(kind) = failure {
            self.upstream_errors
                .get_or_create(&UpstreamError { upstream, kind })
                .inc();
        }
    }

    pub fn circuit(&self, upstream: &'static str, open: bool) {
        if self.enabled {
            self.circuit_open
                .get_or_create(&UpstreamLabel { upstream })
                .set(i64::from(open));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_names_every_family_with_the_prefix() {
        let m = Metrics::new(true, "sqlite");
        m.request(
            RequestLabels {
                dialect: "summit",
                operation: "ADM_GenerateOTP",
                outcome: "ok",
            },
            0.01,
        );
        let text = m.encode();
        for name in [
            "otpgate_build_info{version=",
            "otpgate_http_requests_total{dialect=\"summit\",operation=\"ADM_GenerateOTP\",outcome=\"ok\"} 1",
            "otpgate_http_request_duration_seconds_bucket{",
            "otpgate_otp_events_total{outcome=\"issued\"} 0",
            "otpgate_outbox_messages{state=\"queued\"} 0",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
    }

    #[test]
    fn disabled_metrics_record_nothing() {
        let m = Metrics::new(false, "sqlite");
        m.otp(OtpEvent::Issued);
        assert!(
            m.encode()
                .contains("otpgate_otp_events_total{outcome=\"issued\"} 0")
        );
    }

    #[test]
    fn provider_errors_fall_in_a_few_classes() {
        assert_eq!(failure_reason("no answer within 500 ms"), "timeout");
        assert_eq!(
            failure_reason("cannot connect to 127.0.0.1: Connection refused"),
            "connect"
        );
        assert_eq!(
            failure_reason("the gateway answered status 500"),
            "rejected"
        );
        assert_eq!(failure_reason("whatever"), "other");
    }
}
