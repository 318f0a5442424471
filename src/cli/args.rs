//! The command line's grammar: every command, option and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::brand::BrandSettings;
use crate::tools::bench::BenchArgs;

/// A legacy-compatible OTP gateway.
#[derive(Parser)]
#[command(name = "otpgate", version)]
pub struct Cli {
    /// TOML configuration file; OTPGATE_* environment variables override it.
    #[arg(long, global = true, env = "OTPGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once; the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Create a demo user and print every message on the console too.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the user directory.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage otpgate's API keys (Summit AuthType APIKEY).
    #[command(subcommand, name = "apikey")]
    ApiKey(ApiKeyCommand),
    /// Inspect outgoing messages and retry failed ones (destinations masked).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// What happened to codes: issued, delivered, verified or refused, limited.
    Audit(AuditArgs),
    /// The gateway's health: migrations, outbox, providers, lockouts. Exits 1 when
    /// something needs attention.
    Status(StatusArgs),
    /// Manage the TwoFactorConfigurations CreateTwoFactorSmsOtp names by id.
    #[command(subcommand, name = "twofactor-config")]
    TwoFactorConfig(TwoFactorConfigCommand),
    /// Manage the brands of the Capillary auth API (/auth/v1).
    #[command(subcommand)]
    Brand(BrandCommand),
    /// Replay recorded exchanges (fixtures/scenarios) against a running gateway.
    Replay(ReplayArgs),
    /// Load-test the full OTP cycle against a gateway it starts on loopback.
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct AuditArgs {
    /// The user's login name, e-mail or LoginUID (or UserId).
    #[arg(long, value_name = "LOGIN")]
    pub user: Option<String>,
    /// An e-mail address or a phone number with its country code, as typed
    /// (spaces, dashes, brackets and `+` are ignored): the codes sent there, and what
    /// became of them.
    #[arg(long, value_name = "E-MAIL-OR-NUMBER")]
    pub destination: Option<String>,
    /// A TransactionID (challenge id).
    #[arg(long, value_name = "ID")]
    pub transaction: Option<String>,
    /// The X-Request-Id of the request that caused the events.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// otp.generate, otp.verify, login.password, or otp.delivery (the deliveries of
    /// the codes found).
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// ok or a refusal (wrong_code, expired, send_limit, resend_cooldown,
    /// login_locked…); for deliveries their state (sent, failed, queued…).
    #[arg(long, value_name = "NAME")]
    pub outcome: Option<String>,
    /// From this time: RFC 3339 (2026-12-02T09:00:00Z), a date (2026-12-02, UTC), or
    /// an age such as 30m, 2h, 7d.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Until this time, in the same forms as --since.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// At most this many events, the newest (their deliveries come with them).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: i64,
    /// A JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    /// A JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// The oldest queued message may wait this long before it needs attention.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub max_queue_age: i64,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The gateway to send every request to (scheme, host and port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// The gateway's file sink (delivery.file_path), where codes are read from.
    #[arg(long)]
    pub sink: Option<PathBuf>,
    /// Write the answers received as the new expected ones (review the diff first).
    #[arg(long)]
    pub record: bool,
    /// Scenario files, or directories searched for *.replay.toml.
    #[arg(required = true)]
    pub fixtures: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum BrandCommand {
    /// Add a brand, with the defaults for what is not given.
    Add {
        /// The brand name requests send in `brand` (matched without case).
        name: String,
        #[command(flatten)]
        settings: BrandSettings,
    },
    /// Change settings of a brand.
    Set {
        name: String,
        #[command(flatten)]
        settings: BrandSettings,
    },
    /// List the brands.
    List,
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for a user and print it, once: only its SHA-256 is kept.
    Create {
        /// The user's login name, e-mail or LoginUID.
        #[arg(long)]
        user: String,
        /// What the key is for, shown by `apikey list`.
        #[arg(long, default_value = "")]
        name: String,
        /// The last day the key works (UTC), YYYY-MM-DD; default: it does not expire.
        #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "days")]
        expires: Option<String>,
        /// The key works for this many days from now.
        #[arg(long, value_name = "N")]
        days: Option<i64>,
    },
    /// List keys (never the keys themselves): id, user, name, created, expires, last used.
    List {
        /// Only the keys of the user with this login name, e-mail or LoginUID.
        #[arg(long)]
        user: Option<String>,
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: from now on it is refused as unknown.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Messages queued, being sent or failed, and the others of the last 24 hours.
    List {
        /// Only messages in this state: queued, sending, sent, failed, cancelled.
        #[arg(long)]
        state: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue a failed message again (while its code still works).
    Retry { id: String },
}

#[derive(Subcommand)]
pub enum TwoFactorConfigCommand {
    /// Add a configuration, or replace the one with this id.
    Add(AddTwoFactorConfig),
    /// List the configurations.
    List,
}

#[derive(Args)]
pub struct AddTwoFactorConfig {
    /// The TwoFactorConfigurationId requests use.
    #[arg(long)]
    pub id: i64,
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value_t = 6)]
    pub code_length: i64,
    #[arg(long, default_value_t = 180)]
    pub expiry_seconds: i64,
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i64,
    /// Sends to one GsmNumber per interval, unless a request gives MaxSMSCount.
    #[arg(long, default_value_t = 5)]
    pub max_sms_count: i64,
    #[arg(long, default_value_t = 900)]
    pub max_sms_interval_seconds: i64,
    /// Return the code to the caller in OtpCode (for callers that send it themselves).
    #[arg(long)]
    pub return_code: bool,
    /// The SMS text, with {code}, {minutes}, {reference}, {app}; default: the organisation's.
    #[arg(long)]
    pub sms_template: Option<String>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add one user.
    Add(AddUser),
    /// Import users from a JSON array (the fields of `user add`, snake_case).
    Import { file: PathBuf },
    /// Change a user's settings.
    Set(SetUser),
}

#[derive(Args)]
pub struct SetUser {
    /// The user's login name, e-mail or LoginUID.
    pub login: String,
    /// Read the user's own API key on the legacy server from the first line of
    /// standard input (sealed in the database; sent upstream instead of the service
    /// key when a call made with the user's otpgate session is forwarded).
    #[arg(long, required_unless_present = "clear_upstream_api_key")]
    pub upstream_api_key_stdin: bool,
    /// Remove the user's own upstream API key (the service key applies again).
    #[arg(long, conflicts_with = "upstream_api_key_stdin")]
    pub clear_upstream_api_key: bool,
}

#[derive(Args)]
pub struct AddUser {
    #[arg(long)]
    pub login_uid: String,
    #[arg(long)]
    pub user_name: String,
    /// The form login (Frm_UID); defaults to the e-mail.
    #[arg(long)]
    pub login_name: Option<String>,
    #[arg(long, default_value = "")]
    pub email: String,
    #[arg(long, default_value = "")]
    pub mobile: String,
    #[arg(long, default_value = "")]
    pub country_code: String,
    /// The password (visible to other local users: prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long, default_value_t = 1)]
    pub org_id: i64,
    #[arg(long, default_value = "")]
    pub org_name: String,
    #[arg(long, default_value_t = 1)]
    pub domain_id: i64,
    /// The numeric UserId; when absent, the LoginUID if it is a whole number no user
    /// has as UserId, else the next free one.
    #[arg(long)]
    pub user_id: Option<i64>,
    /// A LoginApp profile field, e.g. --profile TimezoneMins=330 (repeatable).
    #[arg(long = "profile", value_name = "KEY=VALUE")]
    pub profile: Vec<String>,
}
