//! The settings of the `[delivery]` section: providers, templates, per-organisation
//! overrides. Types and defaults only; checked in `validate`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Providers tried in order for e-mail: names from `providers`, or the built-in
    /// `file` and `log`.
    pub email: Vec<String>,
    /// Providers tried in order for SMS.
    pub sms: Vec<String>,
    /// The named providers (`[[delivery.providers]]`): SMTP, HTTP SMS, file, log.
    pub providers: Vec<ProviderSettings>,
    /// How long a provider that failed is skipped in favour of the next one (in this
    /// process).
    pub provider_cooldown_seconds: u64,
    /// Also print every sent message, code included, on standard output (demos only).
    pub console: bool,
    /// Where the built-in `file` provider appends one JSON object per message.
    pub file_path: PathBuf,
    /// An upper bound on a message's attempts, if positive. 0 (the default): a
    /// message is retried for as long as its code can be used, and fails only once the
    /// code has expired, been used or been superseded.
    pub max_attempts: i64,
    /// First retry delay; doubled on each attempt, with jitter, up to
    /// `max_retry_delay_ms`.
    pub retry_base_ms: i64,
    /// The longest wait between two attempts of a message, so one that keeps failing
    /// is still tried at least this often (and goes out soon after a provider is back).
    pub max_retry_delay_ms: i64,
    /// How long a claimed message stays with one dispatcher before another may take
    /// it (after a crash, how long its messages wait). 0 (the default): sized to the
    /// providers, the sum of one channel's provider timeouts (the longest channel) and
    /// 5 s to record the outcome.
    pub lease_seconds: i64,
    /// How often the dispatcher looks for due messages when nothing wakes it.
    pub poll_interval_ms: u64,
    /// Messages a dispatcher claims (and sends concurrently) at once.
    pub batch_size: i64,
    /// Name used as `{app}` in templates.
    pub app_name: String,
    /// The language of a message when neither the request nor the organisation names
    /// one; the three templates below are this language's.
    pub default_language: String,
    pub sms_template: String,
    pub email_subject: String,
    pub email_template: String,
    /// Templates by language (`en`, `hi`, `pt-br`), for every organisation.
    pub templates: BTreeMap<String, TemplateSet>,
    /// Per-organisation settings of delivery, keyed by OrgID.
    pub orgs: BTreeMap<String, OrgDelivery>,
}

/// The templates of one language. Each one left out falls back to the next language
/// in line (see `Templates`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateSet {
    pub sms: Option<String>,
    /// Given together with `email_text`.
    pub email_subject: Option<String>,
    pub email_text: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgDelivery {
    /// `{app}` for this organisation.
    pub app_name: Option<String>,
    /// Language of this organisation's messages when the request names none.
    pub default_language: Option<String>,
    /// The e-mail `From` for this organisation (`{app}` is filled in); else the SMTP
    /// provider's.
    pub email_from: Option<String>,
    /// `{sender}` of the HTTP SMS providers for this organisation; else the provider's.
    pub sms_sender: Option<String>,
    pub templates: BTreeMap<String, TemplateSet>,
}

/// One named delivery provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderSettings {
    Smtp(SmtpSettings),
    HttpSms(HttpSmsSettings),
    File(FileSettings),
    Log(LogProviderSettings),
}

/// What a lease sized to the providers adds to their timeouts, for recording.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// The time given to a provider that has no timeout of its own (`file`, `log`).
const LOCAL_PROVIDER_TIME: Duration = Duration::from_secs(1);

impl DeliverySettings {
    /// The lease of a claim, and the time one attempt of a message may take within
    /// it: every provider of its channel in turn, each within its own timeout. An
    /// explicit `lease_seconds` gives each attempt half of it.
    pub fn lease_and_budget(&self) -> (Duration, Duration) {
        if self.lease_seconds > 0 {
            let lease = Duration::from_secs(self.lease_seconds.unsigned_abs());
            return (lease, lease / 2);
        }
        let budget = [&self.email, &self.sms]
            .into_iter()
            .map(|names| names.iter().map(|n| self.provider_time(n)).sum())
            .max()
            .unwrap_or(LOCAL_PROVIDER_TIME)
            .max(LOCAL_PROVIDER_TIME);
        (budget + LEASE_MARGIN, budget)
    }

    fn provider_time(&self, name: &str) -> Duration {
        match self.providers.iter().find(|p| p.name() == name) {
            Some(ProviderSettings::Smtp(s)) => Duration::from_secs(s.timeout_seconds),
            Some(ProviderSettings::HttpSms(h)) => Duration::from_secs(h.timeout_seconds),
            _ => LOCAL_PROVIDER_TIME,
        }
    }
}

impl ProviderSettings {
    pub fn name(&self) -> &str {
        match self {
            ProviderSettings::Smtp(p) => &p.name,
            ProviderSettings::HttpSms(p) => &p.name,
            ProviderSettings::File(p) => &p.name,
            ProviderSettings::Log(p) => &p.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ProviderSettings::Smtp(_) => "smtp",
            ProviderSettings::HttpSms(_) => "http_sms",
            ProviderSettings::File(_) => "file",
            ProviderSettings::Log(_) => "log",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub name: String,
    pub host: String,
    /// Defaults by `security`: 465 for `tls`, 587 for `starttls`, 25 for `none`.
    pub port: Option<u16>,
    /// `starttls` (upgrade required), `tls` (TLS from the first byte), or `none`.
    #[serde(default = "default_smtp_security")]
    pub security: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From` of every message, e.g. `"{app} <no-reply@example.com>"`.
    pub from: String,
    /// A PEM file of extra CA certificates to trust (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The name given in EHLO; the host name when absent.
    pub hello_name: Option<String>,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
}

/// A configurable HTTP request per message. `{to}` (E.164, `+919876543219`),
/// `{to_digits}` (`919876543219`), `{text}`, `{sender}` and `{id}` (the message id,
/// for idempotency keys) are filled in the body, the query and header values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSmsSettings {
    pub name: String,
    pub url: String,
    #[serde(default = "default_http_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub basic_auth: Option<BasicAuth>,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// `json` or `form` (`application/x-www-form-urlencoded`; the body is then a flat
    /// table).
    #[serde(default = "default_http_encoding")]
    pub encoding: String,
    /// The body, as a TOML table; none when absent.
    pub body: Option<serde_json::Value>,
    /// `{sender}`: the sender id or number.
    #[serde(default)]
    pub sender: String,
    /// Statuses meaning "accepted"; any 2xx when empty.
    #[serde(default)]
    pub success_status: Vec<u16>,
    /// A JSON pointer into the answer (`/messages/0/status`) that must hold one of
    /// `success_values` (or, when that is empty, be present and neither null nor false).
    pub success_field: Option<String>,
    #[serde(default)]
    pub success_values: Vec<String>,
    /// A JSON pointer to the provider's message id, kept with the message.
    pub message_id_field: Option<String>,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogProviderSettings {
    pub name: String,
}

fn default_smtp_security() -> String {
    "starttls".into()
}

fn default_http_method() -> String {
    "POST".into()
}

fn default_http_encoding() -> String {
    "json".into()
}

fn default_provider_timeout() -> u64 {
    10
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            email: vec!["file".into()],
            sms: vec!["file".into()],
            providers: Vec::new(),
            provider_cooldown_seconds: 30,
            console: false,
            file_path: "otpgate-deliveries.jsonl".into(),
            max_attempts: 0,
            retry_base_ms: 1000,
            max_retry_delay_ms: 30_000,
            lease_seconds: 0,
            poll_interval_ms: 500,
            batch_size: 64,
            app_name: "otpgate".into(),
            default_language: "en".into(),
            sms_template: "{code} is your {app} OTP. It expires in {minutes} {minutes|minute|minutes}. Ref {reference}."
                .into(),
            email_subject: "Your {app} one-time password".into(),
            email_template: "Your one-time password is {code}.\n\nIt expires in {minutes} {minutes|minute|minutes}. \
                             Reference: {reference}.\n\nIf you did not ask for it, ignore this message."
                .into(),
            templates: BTreeMap::new(),
            orgs: BTreeMap::new(),
        }
    }
}

/// Providers every configuration has without declaring them: `file` writes to
/// `delivery.file_path`, `log` records the send without its text.
pub const BUILTIN_PROVIDERS: &[&str] = &["file", "log"];

impl DeliverySettings {
    /// Whether any channel ends up in a file (which holds live codes).
    pub fn uses_file(&self) -> bool {
        self.email.iter().chain(&self.sms).any(|n| {
            n == "file"
                || self
                    .providers
                    .iter()
                    .any(|p| p.name() == n && matches!(p, ProviderSettings::File(_)))
        })
    }
}
