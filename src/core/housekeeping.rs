//! Removal of rows that no longer count for anything: the send-limit rows of
//! destinations not sent to within any window, dead sessions, and challenges and
//! messages past the retention period. Audit events are kept.

use std::time::Duration;

use diesel::QueryResult;

use crate::config::Settings;
use crate::db::{
    Db, DbConnection, capillary_brands, capillary_sessions, challenges, limits, login_failures,
    outbox, sessions, write_transaction,
};
use crate::error::Result;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Idle rows of `send_limits`, with the sends they held.
    pub limit_rows: usize,
    pub sessions: usize,
    /// Expired sessions of the Capillary auth API.
    pub capillary_sessions: usize,
    pub challenges: usize,
    pub messages: usize,
    /// Failed password logins older than the lockout window.
    pub login_failures: usize,
}

impl Removed {
    pub fn total(&self) -> usize {
        self.limit_rows
            + self.sessions
            + self.capillary_sessions
            + self.challenges
            + self.messages
            + self.login_failures
    }
}

/// Sends count for the longest window of any policy: TwoFactor windows (stored
/// configurations, requests) reach a day, and a Capillary brand's otpTimeOut (stored
/// in the database) up to 7 days.
fn keep_sends_ms(settings: &Settings, longest_brand_minutes: Option<i64>) -> i64 {
    let brand_seconds = longest_brand_minutes.unwrap_or(0).saturating_mul(60);
    settings
        .longest_send_window_seconds()
        .max(86_400)
        .max(brand_seconds)
        .saturating_mul(1000)
}

/// Rows one housekeeping transaction deletes at most. Each batch holds the write lock
/// (SQLite's one writer) for a few milliseconds; requests get it between batches.
pub const BATCH_ROWS: i64 = 500;

/// The longest a batch should hold the writer. On a large database, where each row's
/// index entries lie on pages of their own, 500 rows took up to 64 ms, which every
/// request arriving meanwhile waited for; the batches shrink until they take about
/// this long.
const BATCH_TIME: Duration = Duration::from_millis(10);

/// The fewest rows a batch deletes, however slow: housekeeping still goes on.
const FEWEST_ROWS: i64 = 50;

/// The rows of a run's first batch: about what takes [`BATCH_TIME`] on a large
/// database; on a small one the batches double from there.
const FIRST_ROWS: i64 = 100;

/// The rows of the next batch, after one of `rows` took `took`: half as many after a
/// batch longer than [`BATCH_TIME`], twice as many after one shorter than half of it,
/// within [`FEWEST_ROWS`] and [`BATCH_ROWS`].
fn next_batch(rows: i64, took: Duration) -> i64 {
    if took > BATCH_TIME {
        (rows / 2).max(FEWEST_ROWS)
    } else if took < BATCH_TIME / 2 {
        (rows * 2).min(BATCH_ROWS)
    } else {
        rows
    }
}

/// What housekeeping deletes, in order: messages before the challenges they name.
#[derive(Debug, Clone, Copy)]
enum Table {
    LimitRows,
    Sessions,
    CapillarySessions,
    Messages,
    Challenges,
    LoginFailures,
}

impl Table {
    const ALL: [Table; 6] = [
        Table::LimitRows,
        Table::Sessions,
        Table::CapillarySessions,
        Table::Messages,
        Table::Challenges,
        Table::LoginFailures,
    ];

    /// Deletes at most `limit` of this table's rows that count for nothing before
    /// `cutoffs` says.
    fn delete(self, c: &mut DbConnection, at: &Cutoffs, limit: i64) -> QueryResult<usize> {
        match self {
            Table::LimitRows => limits::prune_idle(c, at.sends, limit),
            Table::Sessions => sessions::delete_expired(c, at.now, limit),
            Table::CapillarySessions => capillary_sessions::delete_expired(c, at.now, limit),
            Table::Messages => outbox::delete_final_before(c, at.retention, limit),
            Table::Challenges => challenges::delete_expired_before(c, at.retention, limit),
            Table::LoginFailures => login_failures::prune(c, at.failures, limit),
        }
    }

    fn count(self, removed: &mut Removed) -> &mut usize {
        match self {
            Table::LimitRows => &mut removed.limit_rows,
            Table::Sessions => &mut removed.sessions,
            Table::CapillarySessions => &mut removed.capillary_sessions,
            Table::Messages => &mut removed.messages,
            Table::Challenges => &mut removed.challenges,
            Table::LoginFailures => &mut removed.login_failures,
        }
    }
}

/// The times before which each kind of row counts for nothing.
#[derive(Debug, Clone, Copy)]
struct Cutoffs {
    now: i64,
    sends: i64,
    retention: i64,
    failures: i64,
}

/// Deletes what counts for nothing at `now`, [`BATCH_ROWS`] rows per transaction,
/// letting other work run between transactions. A failure stops the run; what the
/// batches before it deleted stays deleted, and the next run goes on from there.
pub async fn run(db: &Db, settings: &Settings, now: i64) -> Result<Removed> {
    let longest_brand = db
        .run_as("housekeeping", |c| {
            Ok(capillary_brands::longest_otp_timeout_minutes(c)?)
        })
        .await?;
    let at = Cutoffs {
        now,
        sends: now - keep_sends_ms(settings, longest_brand),
        retention: now - settings.retention_days * 86_400_000,
        failures: now - settings.login.lockout_seconds * 1000,
    };
    let mut removed = Removed::default();
    let mut rows = FIRST_ROWS;
    for table in Table::ALL {
        loop {
            let started = std::time::Instant::now();
            let limit = rows;
            // Timed where it runs: the wait for the writer is not the batch's doing.
            let (n, took) = db
                .run_as("housekeeping", move |c| {
                    let began = std::time::Instant::now();
                    let n = write_transaction(c, |c| table.delete(c, &at, limit))?;
                    Ok((n, began.elapsed()))
                })
                .await?;
            *table.count(&mut removed) += n;
            rows = next_batch(limit, took);
            if n < limit as usize {
                break;
            }
            // As long again for everything else: housekeeping never holds the writer
            // (or, on SQLite, the one connection) more than half the time.
            tokio::time::sleep(started.elapsed().max(Duration::from_millis(1))).await;
        }
    }
    Ok(removed)
}

/// Runs [`run`] at start, then every `every` and whenever the process receives
/// SIGUSR1 (`kill -USR1 PID`: housekeeping now, as `otpgate bench` asks for it during
/// its housekeeping phase), until `shutdown` turns true. SIGUSR1 is handled from
/// this call on, before the returned future first runs: a signal that came before
/// the handler would end the process.
pub fn run_periodically(
    db: crate::db::Db,
    settings: std::sync::Arc<Settings>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut asked =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
    async move {
        loop {
            let started = std::time::Instant::now();
            match run(&db, &settings, crate::db::now_ms()).await {
                Ok(removed) => {
                    let seconds = started.elapsed().as_secs_f64();
                    db.metrics().housekeeping(seconds, removed.total() as u64);
                    if removed != Removed::default() {
                        tracing::info!(?removed, seconds, "housekeeping")
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "housekeeping failed"),
            }
            #[cfg(unix)]
            let signalled = async {
                match asked.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<()>();
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = signalled => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::InstrumentationEvent;
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use std::time::Duration;

    use super::{BATCH_ROWS, BATCH_TIME, Cutoffs, FEWEST_ROWS, Table, next_batch};
    use crate::db::recorded;

    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// A slow batch halves the next, down to the fewest; a quick one doubles it, up to
    /// the most; one near the aim keeps its size.
    #[test]
    fn batches_shrink_when_slow_and_grow_back_when_quick() {
        let slow = BATCH_TIME * 6;
        let quick = BATCH_TIME / 5;
        assert_eq!(next_batch(BATCH_ROWS, slow), 250);
        assert_eq!(next_batch(250, slow), 125);
        assert_eq!(next_batch(60, slow), FEWEST_ROWS);
        assert_eq!(next_batch(FEWEST_ROWS, slow), FEWEST_ROWS);
        assert_eq!(next_batch(125, BATCH_TIME * 3 / 4), 125);
        assert_eq!(next_batch(125, quick), 250);
        assert_eq!(next_batch(400, quick), BATCH_ROWS);
        assert_eq!(next_batch(BATCH_ROWS, Duration::ZERO), BATCH_ROWS);
    }

    /// Every delete housekeeping sends finds its rows through an index, oldest first in
    /// that index's order, on SQLite as planned with no statistics: a full scan of a
    /// table of millions of rows holds the one writer for seconds. The old-messages
    /// delete uses the index on `created_at`, never the one on state (which reads
    /// every sent message).
    #[test]
    fn every_delete_finds_its_rows_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, sent) = recorded(dir.path(), |e| match e {
            InstrumentationEvent::StartQuery { query, .. } => {
                let sql = query.to_string();
                Some(
                    sql.split(" -- binds:")
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                )
            }
            _ => None,
        });
        let at = Cutoffs {
            now: 1_000_000,
            sends: 1_000,
            retention: 1_000,
            failures: 1_000,
        };
        for table in Table::ALL {
            table.delete(&mut conn, &at, 500).unwrap();
        }
        let deletes: Vec<String> = sent
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with("DELETE"))
            .cloned()
            .collect();
        assert_eq!(deletes.len(), Table::ALL.len() + 1, "{deletes:#?}");
        for sql in &deletes {
            let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load::<Plan>(&mut *conn)
                .unwrap()
                .into_iter()
                .map(|p| p.detail)
                .collect();
            assert!(
                plan.iter().all(|line| !line.starts_with("SCAN ")),
                "{sql}\n{plan:#?}"
            );
            // Oldest first, in the index's own order: no sort of every row found.
            assert!(sql.contains(" ORDER BY "), "{sql}");
            assert!(
                plan.iter().all(|line| !line.contains("TEMP B-TREE")),
                "{sql}\n{plan:#?}"
            );
            if sql.starts_with("DELETE FROM outbox") {
                assert!(
                    plan.iter().any(|l| l.contains("outbox_created")),
                    "{plan:#?}"
                );
            }
        }
    }
}
