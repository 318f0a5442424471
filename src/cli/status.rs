//! `otpgate status`: is the gateway well, and if not, what is most wrong. Read-only:
//! it applies no migration and needs no running gateway, only the database.
//!
//! Exit status: 0 when nothing needs attention; 1 when something does (listed first,
//! most wrong first); 2 when the configuration is invalid. Needs attention:
//! - the database cannot be reached, or has migrations pending;
//! - the oldest message still queued (or being sent) is older than `--max-queue-age`;
//! - a delivery provider's last attempt failed, or it is cooling down (critical when
//!   every provider of a channel is, a warning while another still works).
//!
//! Nothing printed holds a code, an address or a login: providers' errors were
//! scrubbed before they were stored, and users at the failure limit are given by
//! UserId.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::args::StatusArgs;
use crate::config::Settings;
use crate::db::provider_status::{self, ProviderStatus};
use crate::db::{
    ConnectionManager, DatabaseUrl, DbConnection, audit, now_ms, outbox, pending_migrations,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub what: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub backend: &'static str,
    /// Most wrong first; empty when all is well.
    pub problems: Vec<Problem>,
    pub pending_migrations: Vec<String>,
    pub outbox: Option<Outbox>,
    pub providers: Vec<Provider>,
    pub lockouts: Option<Lockouts>,
}

#[derive(Debug, Serialize)]
pub struct Outbox {
    pub by_state: BTreeMap<String, i64>,
    /// How long the oldest message still queued (or being sent) has waited.
    pub oldest_queued_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Provider {
    pub name: String,
    pub channels: Vec<&'static str>,
    /// `ok`, `failing`, `cooling down`, or `unused` (nothing recorded yet).
    pub state: &'static str,
    pub last_success: Option<String>,
    pub last_failure: Option<String>,
    pub last_error: Option<String>,
    /// Failures since its last success.
    pub failures: i64,
    pub cooling_down_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Lockouts {
    pub window_seconds: i64,
    /// Password logins refused in the window because their login was locked.
    pub refused: i64,
    /// The users (by UserId) with `max_failures` or more failed logins in the window.
    pub users_at_limit: Vec<i64>,
}

pub(super) fn run(args: StatusArgs, settings: Settings) -> ExitCode {
    let report = status(&settings, args.max_queue_age, now_ms());
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("otpgate: {e}"),
        }
    } else {
        print!("{}", format_report(&report));
    }
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The gateway's state as its database tells it at `now`.
pub fn status(settings: &Settings, max_queue_age_secs: i64, now: i64) -> Report {
    let mut report = Report {
        version: env!("CARGO_PKG_VERSION"),
        backend: "unknown",
        problems: Vec::new(),
        pending_migrations: Vec::new(),
        outbox: None,
        providers: Vec::new(),
        lockouts: None,
    };
    let critical = |what: String| Problem {
        severity: Severity::Critical,
        what,
    };
    let url = match DatabaseUrl::parse(&settings.database_url) {
        Ok(u) => u,
        Err(e) => {
            report.problems.push(critical(format!("database_url: {e}")));
            return report;
        }
    };
    report.backend = url.backend();
    let mut conn = match ConnectionManager::new(url).establish() {
        Ok(c) => c,
        Err(e) => {
            report
                .problems
                .push(critical(format!("the database cannot be reached: {e}")));
            return report;
        }
    };
    match pending_migrations(&mut conn) {
        Ok(p) if !p.is_empty() => {
            report.problems.push(critical(format!(
                "{} migration(s) pending ({}): run `otpgate migrate`, or start the new version",
                p.len(),
                p.join(", ")
            )));
            report.pending_migrations = p;
        }
        Ok(_) => {}
        Err(e) => report
            .problems
            .push(critical(format!("cannot read the migrations: {e}"))),
    }
    match provider_status::all(&mut conn) {
        Ok(rows) => {
            let (providers, problems) = providers(settings, &rows, now);
            report.providers = providers;
            report.problems.extend(problems);
        }
        Err(e) => report
            .problems
            .push(critical(format!("cannot read the providers' status: {e}"))),
    }
    // A backed-up outbox comes after the providers that are its usual cause.
    match read_outbox(&mut conn, now) {
        Ok(o) => {
            if let Some(age) = o.oldest_queued_seconds
                && age > max_queue_age_secs
            {
                report.problems.push(critical(format!(
                    "the outbox is backing up: the oldest queued message has waited {} (more than {max_queue_age_secs} s)",
                    duration(age)
                )));
            }
            report.outbox = Some(o);
        }
        Err(e) => report
            .problems
            .push(critical(format!("cannot read the outbox: {e}"))),
    }
    let window = settings.login.lockout_seconds;
    match audit::lockouts_since(&mut conn, now - window * 1000, settings.login.max_failures) {
        Ok((refused, users_at_limit)) => {
            report.lockouts = Some(Lockouts {
                window_seconds: window,
                refused,
                users_at_limit,
            })
        }
        Err(e) => report
            .problems
            .push(critical(format!("cannot read the lockouts: {e}"))),
    }
    // Tables a pending migration creates cannot be read: that migration is the problem.
    if !report.pending_migrations.is_empty() {
        report
            .problems
            .retain(|p| !p.what.starts_with("cannot read the "));
    }
    // Stable: within a severity, in the order found (database, providers, outbox).
    report.problems.sort_by_key(|p| p.severity);
    report
}

fn read_outbox(conn: &mut DbConnection, now: i64) -> diesel::QueryResult<Outbox> {
    let mut by_state: BTreeMap<String, i64> = [
        outbox::QUEUED,
        outbox::SENDING,
        outbox::SENT,
        outbox::FAILED,
        outbox::CANCELLED,
    ]
    .iter()
    .map(|s| (s.to_string(), 0))
    .collect();
    by_state.extend(outbox::count_by_state(conn)?);
    let oldest = outbox::oldest_queued(conn)?;
    Ok(Outbox {
        by_state,
        oldest_queued_seconds: oldest.map(|at| ((now - at) / 1000).max(0)),
    })
}

/// Each configured provider with what it last did, and the problems that makes.
fn providers(
    settings: &Settings,
    rows: &[ProviderStatus],
    now: i64,
) -> (Vec<Provider>, Vec<Problem>) {
    let d = &settings.delivery;
    // Those this configuration names, and any other a dispatcher wrote about (another
    // process's configuration, or one since removed).
    let mut names: Vec<&String> = d
        .email
        .iter()
        .chain(&d.sms)
        .chain(rows.iter().map(|r| &r.provider))
        .collect();
    names.sort();
    names.dedup();
    let providers: Vec<Provider> = names
        .into_iter()
        .map(|name| {
            let row = rows.iter().find(|r| &r.provider == name);
            let cooling = row
                .and_then(|r| r.cooling_until)
                .filter(|&u| u > now)
                .map(|u| (u - now + 999) / 1000);
            let state = match row {
                None => "unused",
                Some(_) if cooling.is_some() => "cooling down",
                Some(r) if r.failures > 0 => "failing",
                Some(_) => "ok",
            };
            let channels = [("email", &d.email), ("sms", &d.sms)]
                .into_iter()
                .filter(|(_, list)| list.contains(name))
                .map(|(c, _)| c)
                .collect();
            Provider {
                name: name.clone(),
                channels,
                state,
                last_success: row.and_then(|r| r.last_success_at).map(time),
                last_failure: row.and_then(|r| r.last_failure_at).map(time),
                last_error: row.and_then(|r| r.last_error.clone()),
                failures: row.map_or(0, |r| r.failures),
                cooling_down_seconds: cooling,
            }
        })
        .collect();
    let failing = |p: &Provider| matches!(p.state, "failing" | "cooling down");
    let mut problems = Vec::new();
    for p in providers
        .iter()
        .filter(|p| p.channels.is_empty() && failing(p))
    {
        problems.push(Problem {
            severity: Severity::Warning,
            what: format!(
                "provider {} (not in this configuration) is failing, last at {}: {}",
                p.name,
                p.last_failure.as_deref().unwrap_or("-"),
                p.last_error.as_deref().unwrap_or("no detail")
            ),
        });
    }
    for (channel, list) in [("e-mail", &d.email), ("SMS", &d.sms)] {
        let of: Vec<&Provider> = providers
            .iter()
            .filter(|p| list.contains(&p.name))
            .collect();
        let bad: Vec<&Provider> = of.iter().copied().filter(|p| failing(p)).collect();
        if bad.is_empty() {
            continue;
        }
        let all = bad.len() == of.len();
        for p in bad {
            let why = match &p.cooling_down_seconds {
                Some(s) => format!("{} failure(s), cooling down for {s} s", p.failures),
                None => format!("{} failure(s)", p.failures),
            };
            let problem = Problem {
                severity: if all {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                what: format!(
                    "{channel} provider {} is failing{} ({why}, last at {}): {}",
                    p.name,
                    if all { ", and no other works" } else { "" },
                    p.last_failure.as_deref().unwrap_or("-"),
                    p.last_error.as_deref().unwrap_or("no detail")
                ),
            };
            problems.push(problem);
        }
    }
    (providers, problems)
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn duration(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// The report as text: what needs attention first, then each part.
pub fn format_report(r: &Report) -> String {
    let mut out = format!("otpgate {} ({})\n", r.version, r.backend);
    if r.problems.is_empty() {
        out.push_str("OK: nothing needs attention\n");
    } else {
        out.push_str("NEEDS ATTENTION, most wrong first:\n");
        for (i, p) in r.problems.iter().enumerate() {
            let sev = match p.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
            };
            out.push_str(&format!("  {}. [{sev}] {}\n", i + 1, p.what));
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "migrations: {}\n",
        if r.pending_migrations.is_empty() {
            "all applied".to_string()
        } else {
            format!("{} pending", r.pending_migrations.len())
        }
    ));
    if let Some(o) = &r.outbox {
        let states: Vec<String> = o.by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let oldest = o
            .oldest_queued_seconds
            .map_or("nothing queued".to_string(), |s| {
                format!("the oldest queued has waited {}", duration(s))
            });
        out.push_str(&format!("outbox: {}; {oldest}\n", states.join(", ")));
    }
    if !r.providers.is_empty() {
        out.push_str("providers:\n");
        let mut table = vec![[
            "  NAME".to_string(),
            "CHANNELS".into(),
            "STATE".into(),
            "LAST SUCCESS".into(),
            "LAST FAILURE".into(),
            "LAST ERROR".into(),
        ]];
        for p in &r.providers {
            let state = match p.cooling_down_seconds {
                Some(s) => format!("{} ({s} s)", p.state),
                None => p.state.to_string(),
            };
            table.push([
                format!("  {}", p.name),
                p.channels.join(","),
                state,
                p.last_success.clone().unwrap_or_else(|| "-".into()),
                p.last_failure.clone().unwrap_or_else(|| "-".into()),
                p.last_error.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&super::outbox::columns(&table));
    }
    if let Some(l) = &r.lockouts {
        let users = match l.users_at_limit.as_slice() {
            [] => "no user at the failure limit".to_string(),
            ids => format!(
                "{} user(s) at the failure limit (UserId {})",
                ids.len(),
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push_str(&format!(
            "lockouts (last {} s): {} login(s) refused as locked; {users}\n",
            l.window_seconds, l.refused
        ));
    }
    out
}
