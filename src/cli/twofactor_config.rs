//! `otpgate twofactor-config add|list`: the TwoFactorConfigurations that
//! CreateTwoFactorSmsOtp names by id.

use super::args::{AddTwoFactorConfig, TwoFactorConfigCommand};
use crate::config::Settings;
use crate::db::twofactor_configs::{self, TwoFactorConfig};
use crate::state::AppState;

pub(super) fn run(command: TwoFactorConfigCommand, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    match command {
        TwoFactorConfigCommand::Add(a) => add(&app, a),
        TwoFactorConfigCommand::List => list(&app),
    }
}

/// Adds the configuration, or replaces the one with its id.
fn add(app: &AppState, a: AddTwoFactorConfig) -> Result<(), String> {
    let config = TwoFactorConfig {
        id: a.id,
        name: a.name,
        code_length: a.code_length,
        expiry_seconds: a.expiry_seconds,
        max_attempts: a.max_attempts,
        max_sms_count: a.max_sms_count,
        max_sms_interval_seconds: a.max_sms_interval_seconds,
        return_code: a.return_code,
        sms_template: a.sms_template,
        created_at: crate::db::now_ms(),
    };
    config.check()?;
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    twofactor_configs::upsert(&mut conn, &config).map_err(|e| e.to_string())?;
    println!(
        "TwoFactorConfiguration {} ({}) saved",
        config.id, config.name
    );
    Ok(())
}

fn list(app: &AppState) -> Result<(), String> {
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    let all = twofactor_configs::all(&mut conn).map_err(|e| e.to_string())?;
    println!(
        "{:>6}  {:<20} {:>6} {:>8} {:>8} {:>10} {:>6}  template",
        "id", "name", "digits", "expiry_s", "attempts", "sms/window", "return"
    );
    for c in all {
        println!(
            "{:>6}  {:<20} {:>6} {:>8} {:>8} {:>10} {:>6}  {}",
            c.id,
            c.name,
            c.code_length,
            c.expiry_seconds,
            c.max_attempts,
            format!("{}/{}s", c.max_sms_count, c.max_sms_interval_seconds),
            if c.return_code { "yes" } else { "no" },
            c.sms_template.as_deref().unwrap_or("(organisation's)")
        );
    }
    Ok(())
}
