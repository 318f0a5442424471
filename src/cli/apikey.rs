//! `otpgate apikey create|list|revoke`: otpgate's own API keys. A key is printed once,
//! when created, alone on standard output; it is stored only as its SHA-256.

use chrono::{DateTime, NaiveDate};
use serde_json::json;

use super::args::ApiKeyCommand;
use crate::config::Settings;
use crate::core::api_keys;
use crate::db::api_keys::ApiKey;
use crate::db::now_ms;
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;

pub(super) fn run(command: ApiKeyCommand, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    match command {
        ApiKeyCommand::Create {
            user,
            name,
            expires,
            days,
        } => {
            let expires_at = expiry(expires.as_deref(), days, now_ms())?;
            let created =
                api_keys::create(&mut conn, &user, &name, expires_at).map_err(|e| e.to_string())?;
            let until = expires_at.map_or("never".to_string(), time);
            eprintln!(
                "created API key {} for {} (expires: {until}); it is shown only now:",
                created.id, created.user.login_name
            );
            println!("{}", created.key);
            Ok(())
        }
        ApiKeyCommand::List { user, json } => {
            let keys = api_keys::list(&mut conn, user.as_deref()).map_err(|e| e.to_string())?;
            if json {
                println!("{}", format_json(&keys, now_ms()));
            } else if keys.is_empty() {
                println!("no API keys");
            } else {
                print!("{}", format_table(&keys, now_ms()));
            }
            Ok(())
        }
        ApiKeyCommand::Revoke { id } => {
            api_keys::revoke(&mut conn, id).map_err(|e| e.to_string())?;
            println!("revoked API key {id}");
            Ok(())
        }
    }
}

/// When a key made with `--expires` or `--days` stops working, in ms: the end of the
/// given day (UTC), or `days` from `now`.
fn expiry(expires: Option<&str>, days: Option<i64>, now: i64) -> Result<Option<i64>, String> {
    if let Some(d) = days {
        if d < 1 {
            return Err(format!("--days {d}: must be at least 1"));
        }
        return d
            .checked_mul(DAY_MS)
            .and_then(|ms| ms.checked_add(now))
            .map(Some)
            .ok_or_else(|| format!("--days {d}: too far ahead"));
    }
    let Some(text) = expires else {
        return Ok(None);
    };
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("--expires '{text}' is not a date as YYYY-MM-DD"))?;
    let end = date
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| format!("--expires '{text}' is not a usable date"))?;
    if end <= now {
        return Err(format!("--expires {text}: that day is over"));
    }
    Ok(Some(end))
}

fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn state(k: &ApiKey, now: i64) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "live"
    }
}

fn format_json(keys: &[(ApiKey, String)], now: i64) -> serde_json::Value {
    let t = |ms: Option<i64>| ms.map(time);
    keys.iter()
        .map(|(k, login)| {
            json!({
                "id": k.id,
                "user": login,
                "name": k.name,
                "created": time(k.created_at),
                "expires": t(k.expires_at),
                "last_used": t(k.last_used_at),
                "revoked": t(k.revoked_at),
                "state": state(k, now),
            })
        })
        .collect()
}

fn format_table(keys: &[(ApiKey, String)], now: i64) -> String {
    let t = |ms: Option<i64>, none: &str| ms.map_or(none.to_string(), time);
    let mut rows = vec![
        [
            "ID",
            "USER",
            "NAME",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "STATE",
        ]
        .map(String::from),
    ];
    for (k, login) in keys {
        rows.push([
            k.id.to_string(),
            login.clone(),
            if k.name.is_empty() {
                "-".into()
            } else {
                k.name.clone()
            },
            time(k.created_at),
            t(k.expires_at, "never"),
            t(k.last_used_at, "-"),
            state(k, now).to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_the_end_of_the_day_or_days_ahead() {
        let now = 1_800_000_000_000; // 2027-01-15 08:00Z
        assert_eq!(expiry(None, None, now), Ok(None));
        assert_eq!(expiry(None, Some(2), now), Ok(Some(now + 2 * DAY_MS)));
        assert!(expiry(None, Some(0), now).is_err());
        let end = expiry(Some("2027-01-15"), None, now).unwrap().unwrap();
        assert_eq!(time(end), "2027-01-16 00:00:00Z");
        assert!(
            expiry(Some("2027-01-14"), None, now)
                .unwrap_err()
                .contains("over")
        );
        assert!(expiry(Some("15/01/2027"), None, now).is_err());
    }
}
