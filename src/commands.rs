//! What the command line does beyond serving: provisioning users and the demo set-up.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::db::{outbox, users};
use crate::services::user_details::profile_fields;
use crate::users::{NewUser, Passwords, insert};

/// Validates, hashes and stores one user.
pub fn add_user(app: &App, new: &NewUser) -> Result<users::User, String> {
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
pub fn import_users(app: &App, file: &Path, progress: bool) -> Result<ImportReport, String> {
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
pub fn ensure_demo_user(app: &App) -> Result<(), String> {
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
    app: &App,
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
pub fn outbox_retry(app: &App, id: &str) -> Result<(), String> {
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
