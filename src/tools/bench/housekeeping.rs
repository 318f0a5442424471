//! The `housekeeping` phase's second load: the gateway's housekeeping, run by the
//! bench over and over against the same database while the summit cycles go on, with
//! a connection of its own (on SQLite, from a second process, as a second gateway's
//! housekeeping would: harsher than the gateway's own, which shares its writer).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Settings;
use crate::core::housekeeping::{self, Removed};

/// The pause between two runs.
const PAUSE: Duration = Duration::from_millis(100);

/// What the forced housekeeping did during the phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HousekeepingReport {
    pub runs: u64,
    pub rows_removed: u64,
    pub longest_run_ms: f64,
    /// Runs that failed (the first error is in the phase's errors).
    pub failed_runs: u64,
}

fn total(r: &Removed) -> u64 {
    (r.sends
        + r.limit_rows
        + r.sessions
        + r.capillary_sessions
        + r.challenges
        + r.messages
        + r.login_failures) as u64
}

/// Runs housekeeping until `stop` turns true, at least once; returns what it did and
/// the errors.
pub async fn run_until(
    settings: &Settings,
    stop: Arc<AtomicBool>,
) -> (HousekeepingReport, Vec<String>) {
    let mut report = HousekeepingReport::default();
    let mut errors = Vec::new();
    let db = match crate::db::Db::open(&settings.database_url, 1) {
        Ok(db) => db,
        Err(e) => return (report, vec![format!("housekeeping: {e}")]),
    };
    loop {
        let started = Instant::now();
        let result = housekeeping::run(&db, settings, crate::db::now_ms()).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        report.runs += 1;
        report.longest_run_ms = report.longest_run_ms.max(ms);
        match result {
            Ok(removed) => report.rows_removed += total(&removed),
            Err(e) => {
                report.failed_runs += 1;
                errors.push(format!("housekeeping: {e}"));
            }
        }
        if stop.load(Ordering::Relaxed) {
            return (report, errors);
        }
        tokio::time::sleep(PAUSE).await;
    }
}
