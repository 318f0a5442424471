//! `otpgate outbox list|retry`: looking at outgoing messages (destinations masked)
//! and queueing failed ones again.

use super::args::OutboxCommand;
use crate::config::Settings;
use crate::db::outbox;
use crate::state::AppState;

pub(super) fn run(command: OutboxCommand, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    match command {
        OutboxCommand::List { state, limit } => {
            let rows = outbox_list(&app, state.as_deref(), limit)?;
            if rows.is_empty() {
                println!("no messages");
            } else {
                print!("{}", format_outbox(&rows));
            }
            Ok(())
        }
        OutboxCommand::Retry { id } => {
            outbox_retry(&app, &id)?;
            println!("message {} is queued again", id.trim());
            Ok(())
        }
    }
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
    columns(&table)
}

/// Rows as aligned columns, the last one unpadded; the first row is the header.
pub(super) fn columns<const N: usize>(table: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in table {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < N {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
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
