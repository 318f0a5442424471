//! The `housekeeping` phase's second load: the gateway's housekeeping, over and over
//! while the summit cycles go on. When the bench knows the gateways' process ids (the
//! gateway it started, or `--target-pid`), it asks each to run its own housekeeping
//! with SIGUSR1, and reads what they did from their metrics. Otherwise it runs
//! housekeeping itself against the same database, with a connection of its own: on
//! SQLite that is a second writer in a second process, which the gateway's writer
//! starves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Settings;
use crate::core::housekeeping;

/// The pause between two runs.
const PAUSE: Duration = Duration::from_millis(100);

/// What the forced housekeeping did during the phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HousekeepingReport {
    /// `gateway` (asked by signal) or `bench` (run by the bench itself).
    pub run_by: &'static str,
    pub runs: u64,
    pub rows_removed: u64,
    pub mean_run_ms: f64,
    /// Known only when the bench runs it.
    pub longest_run_ms: Option<f64>,
    /// Runs that failed (the first error is in the phase's errors).
    pub failed_runs: u64,
}

/// Runs housekeeping until `stop` turns true, at least once; returns what it did and
/// the errors.
pub async fn run_until(
    settings: &Settings,
    stop: Arc<AtomicBool>,
) -> (HousekeepingReport, Vec<String>) {
    let mut report = HousekeepingReport {
        run_by: "bench",
        ..HousekeepingReport::default()
    };
    let mut errors = Vec::new();
    let mut total_ms = 0.0;
    let db = match crate::db::Db::open(&settings.database_url, 1) {
        Ok(db) => db,
        Err(e) => return (report, vec![format!("housekeeping: {e}")]),
    };
    loop {
        let started = Instant::now();
        let result = housekeeping::run(&db, settings, crate::db::now_ms()).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        report.runs += 1;
        total_ms += ms;
        report.mean_run_ms = total_ms / report.runs as f64;
        report.longest_run_ms = Some(report.longest_run_ms.unwrap_or(0.0).max(ms));
        match result {
            Ok(removed) => report.rows_removed += removed.total() as u64,
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

const RUNS: &str = "otpgate_housekeeping_duration_seconds_count";
const SECONDS: &str = "otpgate_housekeeping_duration_seconds_sum";
const ROWS: &str = "otpgate_housekeeping_rows_removed_total";

/// The gateways' housekeeping counters, summed: runs, seconds, rows.
async fn counters(http: &reqwest::Client, bases: &[String]) -> Option<[f64; 3]> {
    let mut sum = [0.0; 3];
    for base in bases {
        let text = super::scrape::text(http, base).await;
        for (i, name) in [RUNS, SECONDS, ROWS].into_iter().enumerate() {
            sum[i] += super::scrape::sum(&text, name)?;
        }
    }
    Some(sum)
}

/// Waits, at most `within`, until every gateway at `bases` that exports metrics has
/// finished the housekeeping it runs at start: on a database reused from an earlier
/// run, that first run deletes what aged since, and would otherwise land in the first
/// phase. Answers how long it waited, or None when no gateway says.
pub async fn started(
    http: &reqwest::Client,
    bases: &[String],
    within: Duration,
) -> Option<Duration> {
    let began = Instant::now();
    let mut said = false;
    for base in bases {
        loop {
            let text = super::scrape::text(http, base).await;
            if text.is_empty() {
                break;
            }
            said = true;
            if super::scrape::sum(&text, RUNS).is_some_and(|runs| runs >= 1.0)
                || began.elapsed() >= within
            {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
    }
    said.then(|| began.elapsed())
}

/// Asks every gateway in `pids` to run its housekeeping (SIGUSR1), every [`PAUSE`],
/// until `stop` turns true, then reads from the gateways at `bases` what it did.
pub async fn signal_until(
    http: reqwest::Client,
    bases: Vec<String>,
    pids: Vec<u32>,
    stop: Arc<AtomicBool>,
) -> (HousekeepingReport, Vec<String>) {
    let Some(before) = counters(&http, &bases).await else {
        return (
            HousekeepingReport::default(),
            vec!["housekeeping: the gateways do not export its metrics".into()],
        );
    };
    loop {
        for pid in &pids {
            // SAFETY: kill(2) with a process id and a signal number reads no memory.
            let sent = unsafe { libc::kill(*pid as libc::pid_t, libc::SIGUSR1) };
            if sent != 0 {
                let e = std::io::Error::last_os_error();
                return (
                    HousekeepingReport::default(),
                    vec![format!("housekeeping: cannot signal process {pid}: {e}")],
                );
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    // The last run asked for ends before the phase is read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = counters(&http, &bases).await.unwrap_or(before);
    let runs = after[0] - before[0];
    let report = HousekeepingReport {
        run_by: "gateway",
        runs: runs as u64,
        rows_removed: (after[2] - before[2]) as u64,
        mean_run_ms: if runs > 0.0 {
            (after[1] - before[1]) / runs * 1000.0
        } else {
            0.0
        },
        longest_run_ms: None,
        failed_runs: 0,
    };
    (report, Vec::new())
}
