//! `otpgate brand add|set|list`: the brands of the Capillary auth API (/auth/v1).

use super::args::BrandCommand;
use crate::config::Settings;
use crate::state::AppState;

pub(super) fn run(command: BrandCommand, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    match command {
        BrandCommand::Add { name, settings } => {
            let b = save_brand(&app, &name, &settings, false)?;
            println!("brand {} added", b.name);
        }
        BrandCommand::Set { name, settings } => {
            let b = save_brand(&app, &name, &settings, true)?;
            println!("brand {} saved", b.name);
        }
        BrandCommand::List => {
            let mut conn = app.db.get().map_err(|e| e.to_string())?;
            let all = crate::db::capillary_brands::all(&mut conn).map_err(|e| e.to_string())?;
            print!("{}", format_brands(&all));
        }
    }
    Ok(())
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
