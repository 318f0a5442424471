//! Typed settings: defaults, then an optional TOML file, then `OTPGATE_*` environment
//! variables (nested keys with `__`: `OTPGATE_OTP__LENGTH=8`). Validated once at start-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

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
    pub log: LogSettings,
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
    /// Failed password logins of one user within `lockout_seconds` after which
    /// further attempts are refused until the oldest failure leaves the window.
    pub max_failures: i64,
    pub lockout_seconds: i64,
    /// How long a login waits for a password-hashing slot before answering "busy".
    pub queue_timeout_ms: u64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            max_failures: 5,
            lockout_seconds: 900,
            queue_timeout_ms: 5000,
        }
    }
}

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
    /// Attempts before a message is marked failed.
    pub max_attempts: i64,
    /// First retry delay; doubled on each attempt, with jitter.
    pub retry_base_ms: i64,
    /// How long a claimed message stays with one dispatcher before another may take it.
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummitSettings {
    /// `InstanceLable` in LoginApp answers.
    pub instance_label: String,
    /// `WsVersion` in LoginApp answers.
    pub ws_version: String,
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
            log: LogSettings::default(),
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

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            email: vec!["file".into()],
            sms: vec!["file".into()],
            providers: Vec::new(),
            provider_cooldown_seconds: 30,
            console: false,
            file_path: "otpgate-deliveries.jsonl".into(),
            max_attempts: 5,
            retry_base_ms: 1000,
            lease_seconds: 30,
            poll_interval_ms: 500,
            batch_size: 64,
            app_name: "otpgate".into(),
            default_language: "en".into(),
            sms_template: "{code} is your {app} OTP. It expires in {minutes} minutes. Ref {reference}."
                .into(),
            email_subject: "Your {app} one-time password".into(),
            email_template: "Your one-time password is {code}.\n\nIt expires in {minutes} minutes. \
                             Reference: {reference}.\n\nIf you did not ask for it, ignore this message."
                .into(),
            templates: BTreeMap::new(),
            orgs: BTreeMap::new(),
        }
    }
}

impl Default for SummitSettings {
    fn default() -> Self {
        SummitSettings {
            instance_label: "otpgate".into(),
            ws_version: "5.12.2".into(),
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

/// Providers every configuration has without declaring them: `file` writes to
/// `delivery.file_path`, `log` records the send without its text.
pub const BUILTIN_PROVIDERS: &[&str] = &["file", "log"];
pub const CHANNELS: &[&str] = &["email", "sms"];

impl Settings {
    /// Defaults, then `file` (when given), then the environment.
    /// The pool's size: `pool_size`, or by backend when it is 0. SQLite has one
    /// writer: measured with `otpgate bench`, 2 connections gave more cycles per second
    /// and less CPU per cycle than 4 or 8 (writers beyond the first wait in SQLite's
    /// sleeping busy handler, and each connection keeps a page cache of its own that
    /// every commit elsewhere invalidates), and 1 the same rate as 2 with a third of
    /// the worst latency: requests then queue for the connection in the pool, woken
    /// at once, instead of polling the lock. PostgreSQL gains from a few more.
    pub fn pool_connections(&self) -> u32 {
        match (
            self.pool_size,
            crate::db::DatabaseUrl::parse(&self.database_url),
        ) {
            (0, Ok(crate::db::DatabaseUrl::Sqlite(_))) => 1,
            (0, _) => 8,
            (n, _) => n,
        }
    }

    pub fn load(file: Option<&Path>) -> Result<Settings, String> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!(
                    "configuration file {} does not exist",
                    path.display()
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        // OTPGATE_CONFIG names the file; OTPGATE_TEST_* belong to the test suite.
        let env = Env::prefixed("OTPGATE_")
            .filter(|k| {
                !k.as_str().eq_ignore_ascii_case("config")
                    && !k.as_str().to_ascii_lowercase().starts_with("test_")
            })
            .split("__");
        figment = figment.merge(env);
        let settings: Settings = figment
            .extract()
            .map_err(|e| format!("configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "bind: '{}' is not an address like 127.0.0.1:8080",
                self.bind
            ));
        }
        if let Err(e) = crate::db::DatabaseUrl::parse(&self.database_url) {
            problems.push(format!("database_url: {e}"));
        }
        if self.max_body_bytes < 1024 {
            problems.push("max_body_bytes: must be at least 1024".into());
        }
        if !(2..=128).contains(&self.max_depth) {
            problems.push("max_depth: must be between 2 and 128".into());
        }
        if self.retention_days < 1 {
            problems.push("retention_days: must be at least 1".into());
        }
        let base = self.otp.clone();
        check_policy("otp", &base, &mut problems);
        for (org, o) in &self.orgs {
            if org.parse::<i64>().is_err() {
                problems.push(format!("orgs.{org}: the key must be a numeric OrgID"));
            }
            check_policy(&format!("orgs.{org}"), &o.apply(&base), &mut problems);
        }
        if self.session.lifetime_seconds < 60 {
            problems.push("session.lifetime_seconds: must be at least 60".into());
        }
        if self.session.idle_timeout_minutes < 1 {
            problems.push("session.idle_timeout_minutes: must be at least 1".into());
        }
        let on_postgres = matches!(
            crate::db::DatabaseUrl::parse(&self.database_url),
            Ok(crate::db::DatabaseUrl::Postgres(_))
        );
        if on_postgres && self.secrets.otp_key.is_none() {
            problems.push(
                "secrets.otp_key: required with PostgreSQL, where every process must hash and seal with the same key".into(),
            );
        }
        if let Some(k) = &self.secrets.otp_key
            && let Err(e) = crate::core::keys::parse_key(k, 32)
        {
            problems.push(format!("secrets.otp_key: {e}"));
        }
        if let Some(k) = &self.secrets.capillary_jwt_key
            && let Err(e) = crate::core::keys::parse_key(k, 32)
        {
            problems.push(format!("secrets.capillary_jwt_key: {e}"));
        }
        for (i, k) in self.secrets.previous_otp_keys.iter().enumerate() {
            if let Err(e) = crate::core::keys::parse_key(k, 32) {
                problems.push(format!("secrets.previous_otp_keys[{i}]: {e}"));
            }
        }
        if self.field_cipher.enabled
            && let Err(e) = crate::core::cipher::FieldCipher::from_settings(&self.field_cipher)
        {
            problems.push(format!("field_cipher: {e}"));
        }
        let ph = &self.password_hashing;
        if ph.memory_kib < 8 * 1024 || ph.iterations < 1 || ph.parallelism < 1 {
            problems.push(
                "password_hashing: memory_kib must be at least 8192, iterations and parallelism at least 1"
                    .into(),
            );
        }
        if self.login.max_failures < 1
            || self.login.lockout_seconds < 1
            || self.login.queue_timeout_ms < 1
        {
            problems.push(
                "login: max_failures, lockout_seconds and queue_timeout_ms must be positive".into(),
            );
        }
        if ph.max_concurrent == 0 {
            problems.push("password_hashing.max_concurrent: must be at least 1".into());
        }
        check_delivery(&self.delivery, &mut problems);
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format: '{}' is neither 'text' nor 'json'",
                self.log.format
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

fn check_delivery(d: &DeliverySettings, problems: &mut Vec<String>) {
    use crate::delivery::templates::{MESSAGE_PLACEHOLDERS, check_template, is_language_tag};
    const REQUEST_PLACEHOLDERS: &[&str] = &["to", "to_digits", "text", "sender", "id"];

    let mut names: BTreeMap<&str, &ProviderSettings> = BTreeMap::new();
    for (i, p) in d.providers.iter().enumerate() {
        let at = format!("delivery.providers[{i}] ('{}')", p.name());
        if p.name().trim().is_empty() {
            problems.push(format!("delivery.providers[{i}].name: must not be empty"));
        } else if BUILTIN_PROVIDERS.contains(&p.name()) {
            problems.push(format!(
                "{at}: the name is taken by a built-in provider; choose another"
            ));
        } else if names.contains_key(p.name()) {
            problems.push(format!("{at}: another provider has the same name"));
        } else {
            names.insert(p.name(), p);
        }
        match p {
            ProviderSettings::Smtp(m) => check_smtp(&at, m, &d.app_name, problems),
            ProviderSettings::HttpSms(h) => check_http_sms(&at, h, REQUEST_PLACEHOLDERS, problems),
            ProviderSettings::File(f) => {
                if f.path.as_os_str().is_empty() {
                    problems.push(format!("{at}.path: must not be empty"));
                }
            }
            ProviderSettings::Log(_) => {}
        }
    }
    for (list_name, list, kinds) in [
        ("delivery.email", &d.email, ["smtp", "file", "log"]),
        ("delivery.sms", &d.sms, ["http_sms", "file", "log"]),
    ] {
        if list.is_empty() {
            problems.push(format!(
                "{list_name}: name at least one provider (built in: {})",
                BUILTIN_PROVIDERS.join(", ")
            ));
        }
        for n in list {
            let kind = match names.get(n.as_str()) {
                Some(p) => p.kind(),
                None if BUILTIN_PROVIDERS.contains(&n.as_str()) => continue,
                None => {
                    let declared: Vec<&str> = names.keys().copied().collect();
                    problems.push(format!(
                        "{list_name}: unknown provider '{n}' (declared: {}; built in: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        },
                        BUILTIN_PROVIDERS.join(", ")
                    ));
                    continue;
                }
            };
            if !kinds.contains(&kind) {
                problems.push(format!(
                    "{list_name}: provider '{n}' is of kind {kind}, which cannot send this channel"
                ));
            }
        }
    }
    if d.max_attempts < 1
        || d.retry_base_ms < 1
        || d.lease_seconds < 1
        || d.poll_interval_ms < 10
        || d.batch_size < 1
    {
        problems.push(
            "delivery: max_attempts, retry_base_ms, lease_seconds and batch_size must be positive, poll_interval_ms at least 10"
                .into(),
        );
    }
    fn template(problems: &mut Vec<String>, name: &str, text: &str, needs_code: bool) {
        if let Err(e) = check_template(text, MESSAGE_PLACEHOLDERS, needs_code) {
            problems.push(format!("{name}: {e}"));
        }
    }
    template(problems, "delivery.sms_template", &d.sms_template, true);
    template(problems, "delivery.email_subject", &d.email_subject, false);
    template(problems, "delivery.email_template", &d.email_template, true);
    let mut sets: Vec<(String, &BTreeMap<String, TemplateSet>)> =
        vec![("delivery.templates".into(), &d.templates)];
    for (org, o) in &d.orgs {
        if org.parse::<i64>().is_err() {
            problems.push(format!(
                "delivery.orgs.{org}: the key must be a numeric OrgID"
            ));
        }
        sets.push((format!("delivery.orgs.{org}.templates"), &o.templates));
        if let Some(lang) = &o.default_language
            && !is_language_tag(lang)
        {
            problems.push(format!(
                "delivery.orgs.{org}.default_language: '{lang}' is not a language tag like en or pt-BR"
            ));
        }
        if let Some(from) = &o.email_from {
            let app = o.app_name.as_deref().unwrap_or(&d.app_name);
            if let Err(e) = crate::delivery::smtp::parse_from(from, app) {
                problems.push(format!("delivery.orgs.{org}.email_from: {e}"));
            }
        }
    }
    for (at, set) in sets {
        for (lang, t) in set {
            let at = format!("{at}.{lang}");
            if !is_language_tag(lang) {
                problems.push(format!(
                    "{at}: '{lang}' is not a language tag like en or pt-BR"
                ));
            }
            if let Some(sms) = &t.sms {
                template(problems, &format!("{at}.sms"), sms, true);
            }
            match (&t.email_subject, &t.email_text) {
                (Some(subject), Some(text)) => {
                    template(problems, &format!("{at}.email_subject"), subject, false);
                    template(problems, &format!("{at}.email_text"), text, true);
                }
                (None, None) => {}
                _ => problems.push(format!("{at}: give email_subject and email_text together")),
            }
        }
    }
    if !is_language_tag(&d.default_language) {
        problems.push(format!(
            "delivery.default_language: '{}' is not a language tag like en or pt-BR",
            d.default_language
        ));
    }
}

fn check_smtp(at: &str, m: &SmtpSettings, app: &str, problems: &mut Vec<String>) {
    if m.host.trim().is_empty() {
        problems.push(format!("{at}.host: must not be empty"));
    }
    if !matches!(m.security.as_str(), "starttls" | "tls" | "none") {
        problems.push(format!(
            "{at}.security: '{}' is none of starttls, tls, none",
            m.security
        ));
    }
    if m.username.is_some() != m.password.is_some() {
        problems.push(format!("{at}: give username and password together"));
    }
    if let Err(e) = crate::delivery::smtp::parse_from(&m.from, app) {
        problems.push(format!("{at}.from: {e}"));
    }
    if let Some(ca) = &m.ca_file
        && let Err(e) = crate::delivery::smtp::read_ca_file(ca)
    {
        problems.push(format!("{at}.ca_file: {e}"));
    }
    if m.timeout_seconds < 1 {
        problems.push(format!("{at}.timeout_seconds: must be at least 1"));
    }
}

fn check_http_sms(at: &str, h: &HttpSmsSettings, known: &[&str], problems: &mut Vec<String>) {
    use crate::delivery::templates::check_template;
    match reqwest::Url::parse(&h.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => problems.push(format!("{at}.url: not an http:// or https:// URL")),
    }
    if reqwest::Method::from_bytes(h.method.to_ascii_uppercase().as_bytes()).is_err()
        || !matches!(
            h.method.to_ascii_uppercase().as_str(),
            "GET" | "POST" | "PUT" | "PATCH"
        )
    {
        problems.push(format!(
            "{at}.method: '{}' is none of GET, POST, PUT, PATCH",
            h.method
        ));
    }
    if !matches!(h.encoding.as_str(), "json" | "form") {
        problems.push(format!(
            "{at}.encoding: '{}' is neither json nor form",
            h.encoding
        ));
    }
    let mut strings: Vec<(String, &str)> = Vec::new();
    for (k, v) in &h.headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            problems.push(format!("{at}.headers: '{k}' is not a header name"));
        }
        strings.push((format!("{at}.headers.{k}"), v));
    }
    for (k, v) in &h.query {
        strings.push((format!("{at}.query.{k}"), v));
    }
    if let Some(body) = &h.body {
        if h.encoding == "form" {
            match body.as_object() {
                Some(o) if o.values().all(|v| !v.is_object() && !v.is_array()) => {}
                _ => problems.push(format!(
                    "{at}.body: with form encoding, the body is a table of plain values"
                )),
            }
        }
        let mut leaves = Vec::new();
        string_leaves(body, &mut leaves);
        for v in leaves {
            strings.push((format!("{at}.body"), v));
        }
    }
    for (name, text) in strings {
        if let Err(e) = check_template(text, known, false) {
            problems.push(format!("{name}: {e}"));
        }
    }
    if h.success_status.iter().any(|s| !(100..=599).contains(s)) {
        problems.push(format!(
            "{at}.success_status: HTTP statuses are between 100 and 599"
        ));
    }
    for (name, pointer) in [
        ("success_field", &h.success_field),
        ("message_id_field", &h.message_id_field),
    ] {
        if let Some(p) = pointer
            && !p.is_empty()
            && !p.starts_with('/')
        {
            problems.push(format!(
                "{at}.{name}: '{p}' is not a JSON pointer like /status or /messages/0/status"
            ));
        }
    }
    if h.basic_auth.is_some()
        && h.headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        problems.push(format!(
            "{at}: give basic_auth or an Authorization header, not both"
        ));
    }
    if h.timeout_seconds < 1 {
        problems.push(format!("{at}.timeout_seconds: must be at least 1"));
    }
}

fn string_leaves<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| string_leaves(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| string_leaves(x, out)),
        _ => {}
    }
}

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

fn check_policy(name: &str, p: &PolicySettings, problems: &mut Vec<String>) {
    if !(4..=10).contains(&p.length) {
        problems.push(format!(
            "{name}.length: {} is outside 4 to 10 digits",
            p.length
        ));
    }
    if p.expiry_seconds < 1 {
        problems.push(format!("{name}.expiry_seconds: must be at least 1"));
    }
    if p.max_attempts < 1 {
        problems.push(format!("{name}.max_attempts: must be at least 1"));
    }
    if p.max_sends < 1 || p.send_window_seconds < 1 {
        problems.push(format!(
            "{name}.max_sends and send_window_seconds: must be at least 1"
        ));
    }
    if p.resend_cooldown_seconds < 0 {
        problems.push(format!(
            "{name}.resend_cooldown_seconds: must not be negative"
        ));
    }
    if p.channels.is_empty() {
        problems.push(format!("{name}.channels: name at least one of email, sms"));
    }
    for c in &p.channels {
        if !CHANNELS.contains(&c.as_str()) {
            problems.push(format!(
                "{name}.channels: unknown channel '{c}' (known: email, sms)"
            ));
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("otpgate.toml");
        std::fs::write(&path, toml).map_err(|e| e.to_string())?;
        Settings::load(Some(&path))
    }

    #[test]
    fn the_pool_is_sized_by_backend_unless_set() {
        let mut s = Settings::default();
        assert_eq!(s.pool_connections(), 1, "SQLite by default");
        s.database_url = "postgres://u@localhost/db".into();
        assert_eq!(s.pool_connections(), 8);
        s.pool_size = 3;
        assert_eq!(s.pool_connections(), 3);
        s.database_url = "sqlite://x.db".into();
        assert_eq!(s.pool_connections(), 3);
    }

    #[test]
    fn named_providers_are_read_in_order_with_their_kinds() {
        let s = load(
            r#"
            [delivery]
            email = ["mail", "file"]
            sms = ["gateway", "log"]

            [[delivery.providers]]
            name = "mail"
            kind = "smtp"
            host = "smtp.example.com"
            from = "{app} <otp@example.com>"
            username = "otp"
            password = "secret"

            [[delivery.providers]]
            name = "gateway"
            kind = "http_sms"
            url = "https://sms.example.com/send"
            headers = { "X-Api-Key" = "k", "Idempotency-Key" = "{id}" }
            body = { to = "{to}", text = "{text}", from = "{sender}", flags = [1, "{to_digits}"] }
            success_field = "/ok"

            [delivery.orgs."7"]
            app_name = "Acme"
            email_from = "{app} <otp@acme.example>"
            [delivery.orgs."7".templates.hi]
            sms = "{code} आपका OTP है"
            "#,
        )
        .unwrap();
        let kinds: Vec<(&str, &str)> = s
            .delivery
            .providers
            .iter()
            .map(|p| (p.name(), p.kind()))
            .collect();
        assert_eq!(kinds, vec![("mail", "smtp"), ("gateway", "http_sms")]);
        let ProviderSettings::Smtp(m) = &s.delivery.providers[0] else {
            panic!("smtp expected")
        };
        assert_eq!(
            (m.security.as_str(), m.port, m.timeout_seconds),
            ("starttls", None, 10)
        );
        let ProviderSettings::HttpSms(h) = &s.delivery.providers[1] else {
            panic!("http_sms expected")
        };
        assert_eq!((h.method.as_str(), h.encoding.as_str()), ("POST", "json"));
        assert_eq!(h.body.as_ref().unwrap()["flags"][1], "{to_digits}");
        assert!(s.delivery.uses_file());
    }

    #[test]
    fn mistakes_in_delivery_are_named() {
        let e = load(
            r#"
            [delivery]
            email = ["gateway", "nowhere"]
            sms = ["mail"]
            sms_template = "Your code"

            [[delivery.providers]]
            name = "mail"
            kind = "smtp"
            host = "smtp.example.com"
            from = "not an address"
            security = "ssl"

            [[delivery.providers]]
            name = "gateway"
            kind = "http_sms"
            url = "ftp://sms.example.com/send"
            encoding = "form"
            body = { to = "{to}", text = "{txt}", nested = { a = 1 } }
            success_field = "status"

            [[delivery.providers]]
            name = "gateway"
            kind = "log"

            [[delivery.providers]]
            name = "file"
            kind = "log"

            [delivery.orgs.acme.templates.en]
            email_text = "{code}"
            "#,
        )
        .unwrap_err();
        for expected in [
            "delivery.email: provider 'gateway' is of kind http_sms, which cannot send this channel",
            "delivery.email: unknown provider 'nowhere' (declared: gateway, mail; built in: file, log)",
            "delivery.sms: provider 'mail' is of kind smtp, which cannot send this channel",
            "delivery.sms_template: must contain {code}",
            "delivery.providers[0] ('mail').from: 'not an address' is not an address",
            "delivery.providers[0] ('mail').security: 'ssl' is none of starttls, tls, none",
            "delivery.providers[1] ('gateway').url: not an http:// or https:// URL",
            "delivery.providers[1] ('gateway').body: with form encoding, the body is a table of plain values",
            "delivery.providers[1] ('gateway').body: unknown placeholder {txt} (known: {to}, {to_digits}, {text}, {sender}, {id})",
            "delivery.providers[1] ('gateway').success_field: 'status' is not a JSON pointer",
            "delivery.providers[2] ('gateway'): another provider has the same name",
            "delivery.providers[3] ('file'): the name is taken by a built-in provider",
            "delivery.orgs.acme: the key must be a numeric OrgID",
            "delivery.orgs.acme.templates.en: give email_subject and email_text together",
        ] {
            assert!(e.contains(expected), "missing: {expected}\nin:\n{e}");
        }
    }

    /// The README's delivery examples are configurations that start.
    #[test]
    fn the_readme_delivery_examples_are_valid() {
        let readme = include_str!("../../README.md");
        let start = readme.find("## Delivery").unwrap();
        let end = readme[start..].find("\n## Users").unwrap() + start;
        let blocks: Vec<&str> = readme[start..end]
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert_eq!(blocks.len(), 2);
        for b in blocks {
            let s = load(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
            let t = crate::delivery::Templates::from_settings(&s.delivery);
            let m = t.render(7, None, crate::core::otp::Channel::Sms, "123456", 10, "REF");
            assert!(m.text.contains("123456"));
        }
    }

    #[test]
    fn unknown_provider_keys_and_kinds_are_refused() {
        let e = load(
            "[[delivery.providers]]\nname = \"x\"\nkind = \"smtp\"\nhost = \"h\"\nfrom = \"a@b.c\"\nhots = \"typo\"\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown field") && e.contains("hots"), "{e}");
        let e = load("[[delivery.providers]]\nname = \"x\"\nkind = \"pigeon\"\n").unwrap_err();
        assert!(e.contains("pigeon"), "{e}");
    }
}
