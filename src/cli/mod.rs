//! What the command line does beyond serving: provisioning users and the demo set-up.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::core::users::{NewUser, Passwords, insert};
use crate::db::{outbox, users};
use crate::dialects::summit::user_document::profile_fields;
use crate::state::AppState;

/// Validates, hashes and stores one user.
pub fn add_user(app: &AppState, new: &NewUser) -> Result<users::User, String> {
    new.validate(&profile_fields())?;
    let hash = new
        .password
        .as_deref()
        .map(|p| app.passwords.hash(p))
        .transpose()?;
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    insert(&mut conn, new, hash).map_err(|e| e.to_string())
}

pub struct ImportReport {
    pub added: usize,
    /// (record number from 1, what was wrong)
    pub failed: Vec<(usize, String)>,
}

/// Imports a JSON array of users. A bad record is reported and skipped; the others
/// are stored. Passwords are hashed in parallel on every core.
pub fn import_users(app: &AppState, file: &Path, progress: bool) -> Result<ImportReport, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let records: Vec<serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a JSON array of users: {e}", file.display()))?;
    let bar = if progress {
        ProgressBar::new(records.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} users  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = std::sync::mpsc::channel();
    let chunks: Vec<Vec<(usize, serde_json::Value)>> = {
        let mut c: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, r) in records.into_iter().enumerate() {
            c[i % workers].push((i + 1, r));
        }
        c
    };
    std::thread::scope(|s| {
        for chunk in chunks {
            let tx = tx.clone();
            let passwords: &Passwords = &app.passwords;
            s.spawn(move || {
                for (n, record) in chunk {
                    let prepared = serde_json::from_value::<NewUser>(record)
                        .map_err(|e| e.to_string())
                        .and_then(|u| u.validate(&profile_fields()).map(|_| u))
                        .and_then(|u| {
                            let hash = u
                                .password
                                .as_deref()
                                .map(|p| passwords.hash(p))
                                .transpose()?;
                            Ok((u, hash))
                        });
                    let _ = tx.send((n, prepared));
                }
            });
        }
        drop(tx);
        let mut report = ImportReport {
            added: 0,
            failed: Vec::new(),
        };
        let mut conn = app.db.get().map_err(|e| e.to_string())?;
        for (n, prepared) in rx {
            match prepared
                .and_then(|(u, hash)| insert(&mut conn, &u, hash).map_err(|e| e.to_string()))
            {
                Ok(_) => report.added += 1,
                Err(e) => report.failed.push((n, e)),
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        report.failed.sort_by_key(|(n, _)| *n);
        Ok(report)
    })
}

pub const DEMO_LOGIN: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "demo-password";

/// Creates the demo user unless it exists.
pub fn ensure_demo_user(app: &AppState) -> Result<(), String> {
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    if users::find_by_login(&mut conn, DEMO_LOGIN)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    drop(conn);
    add_user(
        app,
        &NewUser {
            user_id: None,
            login_uid: "100001".into(),
            login_name: Some(DEMO_LOGIN.into()),
            user_name: "Demo User".into(),
            email: DEMO_LOGIN.into(),
            mobile: "9876543219".into(),
            country_code: "91".into(),
            password: Some(DEMO_PASSWORD.into()),
            org_id: 1,
            org_name: "Demo".into(),
            domain_id: 1,
            profile: Default::default(),
        },
    )
    .map(|_| ())
}

/// `otpgate outbox list`: with `state`, the messages in that state; without, those
/// queued, being sent or failed, and the others of the last 24 hours. Newest first,
/// destinations masked.
pub fn outbox_list(
    app: &AppState,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<outbox::Listing>, String> {
    const STATES: &[&str] = &[
        outbox::QUEUED,
        outbox::SENDING,
        outbox::SENT,
        outbox::FAILED,
        outbox::CANCELLED,
    ];
    if let Some(s) = state
        && !STATES.contains(&s)
    {
        return Err(format!("--state '{s}' is none of {}", STATES.join(", ")));
    }
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    let since = crate::db::now_ms() - 86_400_000;
    outbox::list(&mut conn, state, since, limit.max(1)).map_err(|e| e.to_string())
}

/// The listing as a table for a terminal.
pub fn format_outbox(rows: &[outbox::Listing]) -> String {
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let mut table = vec![[
        "ID".to_string(),
        "STATE".into(),
        "CHANNEL".into(),
        "TO".into(),
        "ATTEMPTS".into(),
        "PROVIDER".into(),
        "UPDATED".into(),
        "DETAIL".into(),
    ]];
    for r in rows {
        let detail = match r.state.as_str() {
            outbox::QUEUED => {
                let next = format!("next attempt {}", time(r.next_attempt_at));
                match &r.last_error {
                    Some(e) => format!("{next}; last error: {e}"),
                    None => next,
                }
            }
            outbox::SENT => r.provider_ref.clone().unwrap_or_default(),
            _ => r.last_error.clone().unwrap_or_default(),
        };
        table.push([
            r.id.clone(),
            r.state.clone(),
            r.channel.clone(),
            r.destination_masked.clone(),
            r.attempts.to_string(),
            r.provider.clone().unwrap_or_else(|| "-".into()),
            time(r.updated_at),
            detail,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        for (i, cell) in row.iter().enumerate() {
            if i < 7 {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            } else {
                out.push_str(cell);
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

/// `otpgate outbox retry ID`: queues a failed message again, while its code works.
pub fn outbox_retry(app: &AppState, id: &str) -> Result<(), String> {
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    match outbox::requeue_failed(&mut conn, id.trim(), crate::db::now_ms())
        .map_err(|e| e.to_string())?
    {
        outbox::Requeue::Requeued => Ok(()),
        outbox::Requeue::NotFound => Err(format!("no message has the id {id}")),
        outbox::Requeue::NotFailed(state) => Err(format!(
            "message {id} is {state}; only failed messages are retried"
        )),
        outbox::Requeue::CodeGone => Err(format!(
            "message {id} cannot be retried: its code has expired, been used or been replaced; ask for a new code"
        )),
    }
}

/// The settings of a brand of the Capillary auth API, as `otpgate brand add|set` take
/// them. On `set`, only the options given change; `none` clears an optional setting.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BrandSettings {
    /// OTPs allowed per identifier within --otp-timeout minutes, or `none` (the
    /// default: the gateway's otp.max_sends per otp.send_window_seconds).
    #[arg(long, value_name = "N|none")]
    pub otp_max_count: Option<String>,
    /// The window of --otp-max-count, in minutes, or `none` (the default).
    #[arg(long, value_name = "MINUTES|none")]
    pub otp_timeout: Option<String>,
    /// Wrong codes allowed per OTP (default 5).
    #[arg(long)]
    pub max_otp_retries: Option<i64>,
    /// Digits in a code (default 6).
    #[arg(long)]
    pub otp_length: Option<i64>,
    /// How long a code works, in minutes (default 15).
    #[arg(long)]
    pub otp_validity: Option<i64>,
    /// How long a sessionId works, in minutes (default 15).
    #[arg(long)]
    pub session_validity: Option<i64>,
    /// Lifetime of the USER token otp/validate answers, in minutes (default 15).
    #[arg(long)]
    pub token_validity: Option<i64>,
    /// Lifetime of the AUTH key otp/validate answers on mobile, in minutes (default 60).
    #[arg(long)]
    pub key_validity: Option<i64>,
    /// Channels codes go out on: `sms`, `email` or `sms,email` (default both).
    #[arg(long)]
    pub channels: Option<String>,
    /// The organisation whose delivery settings and templates apply (default 0).
    #[arg(long)]
    pub org_id: Option<i64>,
    /// The SMS text, with {code}, {minutes}, {reference}, {app}; `none`: the organisation's.
    #[arg(long, value_name = "TEXT|none")]
    pub sms_template: Option<String>,
    /// Turns the payload hash check on with this key (32 bytes or more, hex or base64);
    /// `none` turns it off (the default).
    #[arg(long, value_name = "KEY|none")]
    pub hash_key: Option<String>,
    /// How far a request's timeStamp may be from now, in seconds (default 300).
    #[arg(long)]
    pub hash_window: Option<i64>,
}

fn optional<T: std::str::FromStr>(value: &str, option: &str) -> Result<Option<T>, String> {
    if value.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| format!("--{option}: '{value}' is neither a number nor 'none'"))
}

impl BrandSettings {
    pub fn apply(&self, b: &mut crate::db::capillary_brands::Brand) -> Result<(), String> {
        if let Some(v) = &self.otp_max_count {
            b.otp_max_count = optional(v, "otp-max-count")?;
        }
        if let Some(v) = &self.otp_timeout {
            b.otp_timeout_minutes = optional(v, "otp-timeout")?;
        }
        let minutes = |m: Option<i64>, field: &mut i64| {
            if let Some(m) = m {
                *field = m.saturating_mul(60);
            }
        };
        minutes(self.otp_validity, &mut b.otp_validity_seconds);
        minutes(self.session_validity, &mut b.session_validity_seconds);
        minutes(self.token_validity, &mut b.token_validity_seconds);
        minutes(self.key_validity, &mut b.key_validity_seconds);
        if let Some(n) = self.max_otp_retries {
            b.max_otp_retries = n;
        }
        if let Some(n) = self.otp_length {
            b.otp_length = n;
        }
        if let Some(c) = &self.channels {
            b.channels = c
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(",");
        }
        if let Some(o) = self.org_id {
            b.org_id = o;
        }
        let text = |v: &str| Some(v.to_string()).filter(|v| !v.trim().eq_ignore_ascii_case("none"));
        if let Some(t) = &self.sms_template {
            b.sms_template = text(t);
        }
        if let Some(k) = &self.hash_key {
            b.hash_key = text(k).map(|k| k.trim().to_string());
        }
        if let Some(w) = self.hash_window {
            b.hash_window_seconds = w;
        }
        b.check()
    }
}

/// Adds a brand (`set` false; it must not exist) or changes one (`set` true; it must).
pub fn save_brand(
    app: &AppState,
    name: &str,
    settings: &BrandSettings,
    set: bool,
) -> Result<crate::db::capillary_brands::Brand, String> {
    use crate::db::capillary_brands as brands;
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    let now = crate::db::now_ms();
    let existing = brands::find(&mut conn, name).map_err(|e| e.to_string())?;
    let mut brand = match (existing, set) {
        (Some(_), false) => {
            return Err(format!(
                "brand '{}' exists; change it with `otpgate brand set`",
                name.trim()
            ));
        }
        (None, true) => {
            return Err(format!(
                "no brand '{}'; add it with `otpgate brand add`",
                name.trim()
            ));
        }
        (Some(b), true) => b,
        (None, false) => brands::Brand::new(name, now),
    };
    settings.apply(&mut brand)?;
    brand.updated_at = now;
    if set {
        brands::update(&mut conn, &brand).map_err(|e| e.to_string())?;
    } else {
        brands::insert(&mut conn, &brand).map_err(|e| e.to_string())?;
    }
    Ok(brand)
}

/// One line per brand, for `otpgate brand list` (hash keys are not shown).
pub fn format_brands(brands: &[crate::db::capillary_brands::Brand]) -> String {
    let mut out = format!(
        "{:<20} {:>5} {:>12} {:>7} {:>6} {:>8} {:>8} {:>9} {:>7}  {:<9} {}\n",
        "brand",
        "org",
        "otp limit",
        "retries",
        "digits",
        "otp_min",
        "sess_min",
        "token_min",
        "key_min",
        "channels",
        "hash"
    );
    for b in brands {
        let limit = match b.otp_limit() {
            Some((n, m)) => format!("{n}/{m}min"),
            None => "none".into(),
        };
        let hash = match &b.hash_key {
            Some(_) => format!("on, {}s", b.hash_window_seconds),
            None => "off".into(),
        };
        out.push_str(&format!(
            "{:<20} {:>5} {:>12} {:>7} {:>6} {:>8} {:>8} {:>9} {:>7}  {:<9} {}\n",
            b.name,
            b.org_id,
            limit,
            b.max_otp_retries,
            b.otp_length,
            b.otp_validity_seconds / 60,
            b.session_validity_seconds / 60,
            b.token_validity_seconds / 60,
            b.key_validity_seconds / 60,
            b.channels,
            hash
        ));
    }
    out
}
