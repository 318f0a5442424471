//! Typed settings and their defaults: defaults, then an optional TOML file, then
//! `OTPGATE_*` environment variables (nested keys with `__`: `OTPGATE_OTP__LENGTH=8`),
//! read in `load` and checked once at start-up in `validate`. The types depend on
//! nothing else in the crate.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod delivery;
mod load;
mod metrics;
mod record;
mod security;
mod upstream;
mod validate;

pub use delivery::{
    BUILTIN_PROVIDERS, BasicAuth, DeliverySettings, FileSettings, HttpSmsSettings,
    LogProviderSettings, OrgDelivery, ProviderSettings, SmtpSettings, TemplateSet,
};
pub use metrics::MetricsSettings;
pub use record::RecordSettings;
pub use security::{Buckets, Rate, SecuritySettings, ThrottleSettings};
pub use upstream::{RouteTo, UnknownTokens, Upstream, UpstreamSettings};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// `sqlite://PATH` (or a bare path), `postgres://…` / `postgresql://…`.
    pub database_url: String,
    /// Connections in the pool; 0 picks by backend (see [`Settings::pool_connections`]).
    pub pool_size: u32,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deepest nesting of a JSON or XML request body accepted.
    pub max_depth: usize,
    /// Seconds a request body may take to arrive once its headers are in; a slower
    /// one is answered 408 and its connection closed.
    pub body_timeout_seconds: u64,
    /// Open client connections per process; further clients wait in the listen
    /// backlog until one closes. 0: the open-file limit less a reserve (25,000 at most).
    pub max_connections: usize,
    /// Seconds an idle keep-alive connection is kept open.
    pub keep_alive_seconds: u64,
    /// Days ended challenges and sent or failed messages are kept (audit events stay).
    pub retention_days: i64,
    pub otp: PolicySettings,
    /// Per-organisation overrides of `otp`, keyed by OrgID.
    pub orgs: BTreeMap<String, PolicyOverride>,
    pub session: SessionSettings,
    pub secrets: SecretSettings,
    pub field_cipher: FieldCipherSettings,
    pub password_hashing: PasswordHashing,
    pub login: LoginSettings,
    pub delivery: DeliverySettings,
    pub summit: SummitSettings,
    /// The legacy servers otpgate stands in front of.
    pub upstream: UpstreamSettings,
    pub log: LogSettings,
    /// Recording exchanges as replay scenarios (docs/recording.md).
    pub record: RecordSettings,
    /// Unknown-user answers, trusted proxies and the per-client throttle.
    pub security: SecuritySettings,
    /// The Prometheus endpoint.
    pub metrics: MetricsSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Digits in a code, 4 to 10.
    pub length: u32,
    pub expiry_seconds: i64,
    pub max_attempts: i64,
    /// Sends allowed to one destination within `send_window_seconds`.
    pub max_sends: i64,
    pub send_window_seconds: i64,
    /// Minimum time between two sends to one destination.
    pub resend_cooldown_seconds: i64,
    /// Channels a code goes out on, in order: `email`, `sms`.
    pub channels: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    pub length: Option<u32>,
    pub expiry_seconds: Option<i64>,
    pub max_attempts: Option<i64>,
    pub max_sends: Option<i64>,
    pub send_window_seconds: Option<i64>,
    pub resend_cooldown_seconds: Option<i64>,
    pub channels: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Absolute lifetime of a session token (LoginApp's `ExpiryTime`, in seconds).
    pub lifetime_seconds: i64,
    /// Idle timeout (LoginApp's `SessionIdleTimeout`, in minutes).
    pub idle_timeout_minutes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSettings {
    /// Key for the codes' keyed hash: 32 bytes or more, hex or base64. When unset, a
    /// key is created in `key_file` on first start.
    pub otp_key: Option<String>,
    /// Keys used before a rotation, still accepted for codes issued under them.
    pub previous_otp_keys: Vec<String>,
    pub key_file: PathBuf,
    /// HS256 key of the Capillary auth API's tokens: 32 bytes or more, hex or base64.
    /// When unset, derived from the OTP key with HKDF (info `capillary jwt v1`).
    pub capillary_jwt_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldCipherSettings {
    /// Decrypt `EncryptedEmailID` (and encrypted TransactionID / OTP values) with
    /// AES-256-CBC, PKCS#7 padding, base64 text.
    pub enabled: bool,
    /// 32-byte key, hex or base64.
    pub key: Option<String>,
    /// 16-byte IV, hex or base64.
    pub iv: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashing {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Password hashes computed at once; further logins wait their turn.
    pub max_concurrent: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginSettings {
    /// Failed password logins of one login from one client address within
    /// `lockout_seconds` after which that address's attempts are refused until the
    /// oldest failure leaves the window.
    pub max_failures: i64,
    pub lockout_seconds: i64,
    /// Failed logins of one login from all addresses within `lockout_seconds` beyond
    /// which every attempt waits a back-off (1 s, doubling per failure, up to
    /// `max_backoff_seconds`) after the last failure, rather than being refused for the
    /// whole window: the owner still gets in from elsewhere.
    pub global_failures: i64,
    pub max_backoff_seconds: i64,
    /// How long a login waits for a password-hashing slot before answering "busy".
    pub queue_timeout_ms: u64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            max_failures: 5,
            lockout_seconds: 900,
            global_failures: 20,
            max_backoff_seconds: 60,
            queue_timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummitSettings {
    /// `InstanceLable` in LoginApp answers.
    pub instance_label: String,
    /// `WsVersion` in LoginApp answers.
    pub ws_version: String,
    /// Whether AuthType FORM (a user name and password) is accepted; false leaves API
    /// keys and sessions (the legacy `IsAPIKeyDisabled` switch, inverted).
    pub password_auth: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `otpgate=debug`.
    pub level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://otpgate.db".into(),
            pool_size: 0,
            workers: 0,
            max_body_bytes: 64 * 1024,
            max_depth: 32,
            body_timeout_seconds: 10,
            max_connections: 0,
            keep_alive_seconds: 5,
            retention_days: 7,
            otp: PolicySettings::default(),
            orgs: BTreeMap::new(),
            session: SessionSettings::default(),
            secrets: SecretSettings::default(),
            field_cipher: FieldCipherSettings::default(),
            password_hashing: PasswordHashing::default(),
            login: LoginSettings::default(),
            delivery: DeliverySettings::default(),
            summit: SummitSettings::default(),
            upstream: UpstreamSettings::default(),
            log: LogSettings::default(),
            record: RecordSettings::default(),
            security: SecuritySettings::default(),
            metrics: MetricsSettings::default(),
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            length: 6,
            expiry_seconds: 600,
            max_attempts: 3,
            max_sends: 5,
            send_window_seconds: 900,
            resend_cooldown_seconds: 30,
            channels: vec!["email".into(), "sms".into()],
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            lifetime_seconds: 6000,
            idle_timeout_minutes: 90,
        }
    }
}

impl Default for SecretSettings {
    fn default() -> Self {
        SecretSettings {
            otp_key: None,
            previous_otp_keys: Vec::new(),
            key_file: "otpgate.key".into(),
            capillary_jwt_key: None,
        }
    }
}

impl Default for PasswordHashing {
    fn default() -> Self {
        // OWASP's minimum for Argon2id: 19 MiB, 2 iterations, 1 lane.
        PasswordHashing {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 2,
        }
    }
}

impl Default for SummitSettings {
    fn default() -> Self {
        SummitSettings {
            instance_label: "otpgate".into(),
            ws_version: "5.12.2".into(),
            password_auth: true,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

pub const CHANNELS: &[&str] = &["email", "sms"];

impl PolicyOverride {
    pub fn apply(&self, base: &PolicySettings) -> PolicySettings {
        PolicySettings {
            length: self.length.unwrap_or(base.length),
            expiry_seconds: self.expiry_seconds.unwrap_or(base.expiry_seconds),
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            max_sends: self.max_sends.unwrap_or(base.max_sends),
            send_window_seconds: self.send_window_seconds.unwrap_or(base.send_window_seconds),
            resend_cooldown_seconds: self
                .resend_cooldown_seconds
                .unwrap_or(base.resend_cooldown_seconds),
            channels: self
                .channels
                .clone()
                .unwrap_or_else(|| base.channels.clone()),
        }
    }
}

impl Settings {
    /// The longest send window of any policy: sends older than it count nowhere.
    pub fn longest_send_window_seconds(&self) -> i64 {
        self.orgs
            .values()
            .map(|o| o.apply(&self.otp).send_window_seconds)
            .chain([self.otp.send_window_seconds])
            .max()
            .unwrap_or(self.otp.send_window_seconds)
    }
}
