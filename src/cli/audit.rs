//! `otpgate audit`: what happened to codes (issued, delivered, verified or refused,
//! limited), from the audit trail and the outbox. Destinations are shown masked; an
//! address given with `--destination` is looked up by its keyed hash.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::args::AuditArgs;
use crate::config::Settings;
use crate::core::api_keys::find_user;
use crate::core::channel::Destination;
use crate::db::audit::{self, AuditEvent, Search};
use crate::db::outbox::{self, Listing};
use crate::db::{DbConnection, now_ms};
use crate::state::AppState;

/// The audited events `--event` takes, and `otp.delivery` for the outbox's part.
pub const EVENTS: &[&str] = &["otp.generate", "otp.verify", "login.password", DELIVERY];
const DELIVERY: &str = "otp.delivery";
const GENERATE: &str = "otp.generate";

pub(super) fn run(args: AuditArgs, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    let lines = audit_lines(&app, &mut conn, &args, now_ms())?;
    if args.json {
        let all: Vec<Value> = lines.iter().map(Line::to_json).collect();
        println!("{}", Value::Array(all));
    } else if lines.is_empty() {
        println!("no events");
        if let Some(d) = &args.destination
            && !d.contains('@')
            && !d.trim_start().starts_with('+')
        {
            eprintln!("note: numbers are matched with their country code, e.g. +91 98765 43219");
        }
    } else {
        print!("{}", format_table(&lines));
    }
    Ok(())
}

/// One line of the answer: an audited event, or a delivery of an issued code.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub user_id: Option<i64>,
    pub transaction_id: Option<String>,
    pub destination: Option<String>,
    pub channel: Option<String>,
    pub request_id: Option<String>,
    /// For a delivery: the provider that took it, its attempts and its last error.
    pub provider: Option<String>,
    pub attempts: Option<i64>,
    pub error: Option<String>,
}

impl Line {
    fn from_event(e: AuditEvent) -> Line {
        Line {
            at: e.at,
            event: e.event,
            outcome: e.outcome,
            user_id: e.user_id,
            transaction_id: e.transaction_id,
            destination: e.destination_masked,
            channel: e.channel,
            request_id: e.request_id,
            provider: None,
            attempts: None,
            error: None,
        }
    }

    fn from_delivery(m: Listing, issued: &AuditEvent) -> Line {
        Line {
            // A message's last change: when it was sent, or last failed.
            at: m.updated_at,
            event: DELIVERY.into(),
            outcome: m.state,
            user_id: issued.user_id,
            transaction_id: m.challenge_id,
            destination: Some(m.destination_masked),
            channel: Some(m.channel),
            request_id: issued.request_id.clone(),
            provider: m.provider,
            attempts: Some(m.attempts),
            error: m.last_error,
        }
    }

    /// What happened, in words.
    pub fn what(&self) -> String {
        let refusal = |o: &str| o.replace('_', " ");
        match (self.event.as_str(), self.outcome.as_str()) {
            (GENERATE, "ok") => "issued".into(),
            (GENERATE, "send_limit") => "limited: send limit reached".into(),
            (GENERATE, "resend_cooldown") => "limited: resend cool-down".into(),
            (GENERATE, o) => format!("not issued: {}", refusal(o)),
            ("otp.verify", "ok") => "verified".into(),
            ("otp.verify", o) => format!("not verified: {}", refusal(o)),
            ("login.password", "ok") => "logged in".into(),
            ("login.password", o) => format!("login refused: {}", refusal(o)),
            (DELIVERY, "sent") => format!(
                "delivered by {}",
                self.provider.as_deref().unwrap_or("a provider")
            ),
            (DELIVERY, "failed") => format!(
                "delivery failed: {}",
                self.error.as_deref().unwrap_or("no detail")
            ),
            (DELIVERY, "cancelled") => format!(
                "not delivered: {}",
                self.error.as_deref().unwrap_or("cancelled")
            ),
            (DELIVERY, state) => match &self.error {
                Some(e) => format!(
                    "delivery {state}, {} attempts, last: {e}",
                    self.attempts.unwrap_or(0)
                ),
                None => format!("delivery {state}"),
            },
            (e, o) => format!("{e} {o}"),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "at": time(self.at),
            "event": self.event,
            "outcome": self.outcome,
            "what": self.what(),
            "user_id": self.user_id,
            "transaction_id": self.transaction_id,
            "destination": self.destination,
            "channel": self.channel,
            "request_id": self.request_id,
            "provider": self.provider,
            "attempts": self.attempts,
            "error": self.error,
        })
    }
}

/// The events the filters select, newest first, each issued code followed by its
/// deliveries (unless `--event` names another event).
pub fn audit_lines(
    app: &AppState,
    conn: &mut DbConnection,
    args: &AuditArgs,
    now: i64,
) -> Result<Vec<Line>, String> {
    let event = args.event.as_deref().map(str::trim);
    if let Some(e) = event
        && !EVENTS.contains(&e)
    {
        return Err(format!("--event '{e}' is none of {}", EVENTS.join(", ")));
    }
    let only_deliveries = event == Some(DELIVERY);
    let user_id = match &args.user {
        None => None,
        Some(login) => Some(match find_user(conn, login) {
            Ok(u) => u.id,
            // A UserId, also of a user since deleted.
            Err(e) => login.trim().parse::<i64>().map_err(|_| e.to_string())?,
        }),
    };
    let search = Search {
        user_id,
        destination_key: args
            .destination
            .as_deref()
            .map(|d| Destination::parse_any(d).audit_key(&app.keys)),
        transaction_id: args.transaction.as_deref().map(|t| t.trim().to_string()),
        request_id: args.request_id.as_deref().map(|t| t.trim().to_string()),
        event: event.map(|e| if only_deliveries { GENERATE } else { e }.to_string()),
        outcome: if only_deliveries {
            None
        } else {
            args.outcome.as_deref().map(|o| o.trim().to_string())
        },
        since: args
            .since
            .as_deref()
            .map(|t| parse_time(t, now).map_err(|e| format!("--since {e}")))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_time(t, now).map_err(|e| format!("--until {e}")))
            .transpose()?,
        limit: args.limit,
    };
    if args.limit < 1 || args.limit > audit::MAX_LIMIT {
        return Err(format!(
            "--limit {}: must be 1 to {}",
            args.limit,
            audit::MAX_LIMIT
        ));
    }
    let events = audit::search(conn, &search).map_err(|e| e.to_string())?;
    let with_deliveries = matches!(event, None | Some(GENERATE | DELIVERY));
    let issued: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| with_deliveries && e.event == GENERATE && e.outcome == "ok")
        .collect();
    let ids: Vec<String> = issued
        .iter()
        .filter_map(|e| e.transaction_id.clone())
        .collect();
    let mut messages = outbox::of_challenges(conn, &ids).map_err(|e| e.to_string())?;
    if let Some(state) = args.outcome.as_deref().map(str::trim) {
        messages.retain(|m| m.state == state);
    }
    let mut lines = Vec::new();
    for e in events {
        let deliveries: Vec<Line> = messages
            .iter()
            .filter(|m| {
                e.event == GENERATE
                    && m.challenge_id.is_some()
                    && m.challenge_id == e.transaction_id
            })
            .map(|m| Line::from_delivery(m.clone(), &e))
            .collect();
        // Newest first, as the events: a code's deliveries above it.
        lines.extend(deliveries.into_iter().rev());
        if !only_deliveries {
            lines.push(Line::from_event(e));
        }
    }
    Ok(lines)
}

/// A time as `--since` and `--until` take it: RFC 3339, a date (midnight UTC), or an
/// age (`90s`, `30m`, `2h`, `7d`, `2w`) before `now`; in ms.
pub fn parse_time(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc().timestamp_millis());
    }
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(unit_at);
    let per: i64 = match unit.trim() {
        "s" | "sec" | "secs" => 1_000,
        "m" | "min" | "mins" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "'{t}' is neither RFC 3339, a date (YYYY-MM-DD) nor an age like 30m, 2h, 7d"
            ));
        }
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .map(|ago| now - ago)
        .ok_or_else(|| format!("'{t}' is not an age like 30m, 2h, 7d"))
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// The lines as a table for a terminal, newest first.
pub fn format_table(lines: &[Line]) -> String {
    let short = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut table = vec![[
        "TIME".to_string(),
        "EVENT".into(),
        "OUTCOME".into(),
        "USER".into(),
        "TRANSACTION".into(),
        "TO".into(),
        "REQUEST".into(),
        "WHAT".into(),
    ]];
    for l in lines {
        table.push([
            short(l.at),
            l.event.clone(),
            l.outcome.clone(),
            l.user_id.map_or("-".into(), |u| u.to_string()),
            dash(&l.transaction_id),
            dash(&l.destination),
            dash(&l.request_id),
            l.what(),
        ]);
    }
    super::outbox::columns(&table)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_rfc3339_dates_or_ages() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_time("30m", now), Ok(now - 1_800_000));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(parse_time(" 45s ", now), Ok(now - 45_000));
        assert_eq!(
            parse_time("2026-12-02T09:00:00Z", now),
            Ok(1_796_202_000_000)
        );
        assert_eq!(
            parse_time("2026-12-02T10:00:00+01:00", now),
            Ok(1_796_202_000_000)
        );
        assert_eq!(parse_time("2026-12-02", now), Ok(1_796_169_600_000));
        for bad in ["", "h", "2x", "yesterday", "99999999999999999999d"] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
