//! Group commit for SQLite. SQLite has one writer at a time, and every commit writes
//! the pages it changed to the write-ahead log: requests that each commit on their own
//! write the same index pages again and again. Here one thread owns the connection.
//! Work sent to it while it is busy waits in a queue; it then takes everything waiting,
//! at most [`MOST_PER_BATCH`], and runs it in one `BEGIN IMMEDIATE … COMMIT`. What a
//! piece writes is kept as it would be on a connection of its own: its
//! `write_transaction`s (savepoints here) roll back when they fail, a statement that
//! fails undoes itself, and what it wrote outside them stays, even when it answers an
//! error (a wrong code is counted, then reported). Each piece's answer is sent once the
//! batch has committed; if the commit fails, every piece of the batch gets the error,
//! and none of them is stored. A piece that panics (a bug) rolls back the whole batch
//! it was in, whose pieces all fail: nothing is half-written, and no piece pays a
//! savepoint of its own for a case that should never happen.
//!
//! A piece waits at most for the batch before it, as it waited for the connection
//! before; while nothing else is waiting, a batch is one piece.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};

use super::{ConnectionManager, DbConnection, WORK, Work, depth};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// The most pieces of work one transaction takes.
pub const MOST_PER_BATCH: usize = 128;

/// What a piece leaves once it ran: whether the batch can go on, and
/// how to answer once the batch's outcome is known.
struct Ran {
    usable: bool,
    /// Where the batch records its own transaction: the metrics of the gateway whose
    /// work this is.
    metrics: Arc<Metrics>,
    answer: Answer,
}

type Job = Box<dyn FnOnce(&mut DbConnection) -> Ran + Send>;

/// Sends a piece's answer, given why its batch failed (None: it committed).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// The way to the writer thread; the thread ends when the last of these is dropped.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Dropped with the writer: the checkpoint thread then ends.
    _stop: mpsc::Sender<()>,
}

/// How often the checkpoint thread copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Pages in the write-ahead log (about 8 MiB) past which the writer finishes the
/// checkpoint itself between two batches, so that the log starts again from its
/// beginning.
const RESTART_AFTER_PAGES: i64 = 2048;

/// The size SQLite cuts the write-ahead log file back to when it starts again from its
/// beginning, should a burst have made it longer.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

impl Writer {
    /// Starts the writer thread with a connection of its own from `manager`, and the
    /// thread that checkpoints the write-ahead log beside it.
    pub fn start(manager: ConnectionManager) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpoints = manager.clone();
        let long_log = Arc::new(AtomicBool::new(false));
        let asks = long_log.clone();
        std::thread::Builder::new()
            .name("otpgate-ckpt".into())
            .spawn(move || checkpoint_loop(checkpoints, stopped, &asks))?;
        std::thread::Builder::new()
            .name("otpgate-writer".into())
            .spawn(move || write_loop(manager, queue, &long_log))?;
        Ok(Writer { jobs, _stop: stop })
    }

    /// Runs `f` in the next batch and answers its result once that batch committed.
    /// Work not started within `wait` is not started at all: it fails as unavailable.
    pub async fn run<T, F>(
        &self,
        kind: &'static str,
        metrics: Arc<Metrics>,
        wait: Duration,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let (request, span) = (crate::core::request_id::current(), tracing::Span::current());
        let queued = Instant::now();
        let job: Job = Box::new(move |conn| {
            let _span = span.entered();
            let waited = queued.elapsed();
            if waited > wait {
                let _ = tx.send(Err(Error::Unavailable));
                return Ran {
                    usable: true,
                    metrics,
                    answer: Box::new(|_| {}),
                };
            }
            metrics.pool_wait(waited.as_secs_f64());
            let started = Instant::now();
            WORK.set(Work::default());
            let (result, usable) = crate::core::request_id::carried(request, || contained(conn, f));
            metrics.transaction(kind, started.elapsed().as_secs_f64(), WORK.get().counts());
            Ran {
                usable,
                metrics,
                answer: Box::new(move |failed: Option<&str>| {
                    let answer = match failed {
                        None => result,
                        Some(why) => Err(Error::internal(format!(
                            "the batch this work was in was not committed: {why}"
                        ))),
                    };
                    let _ = tx.send(answer);
                }),
            }
        });
        self.jobs.send(job).map_err(|_| Error::Unavailable)?;
        // A piece that is dropped unanswered (the writer could not open the database)
        // closes its channel.
        rx.await.unwrap_or(Err(Error::Unavailable))
    }
}

/// Runs `f`, and answers whether the batch can go on: not after a panic, nor when
/// `f` left a transaction of its own open.
fn contained<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T>,
) -> (Result<T>, bool) {
    let ours = depth(conn);
    match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut *conn))) {
        Ok(result) => {
            let usable = depth(conn) == ours;
            (result, usable)
        }
        Err(_) => (Err(Error::internal("the database work panicked")), false),
    }
}

/// What `PRAGMA wal_checkpoint` answers.
#[derive(diesel::QueryableByName)]
struct Checkpointed {
    /// Pages in the write-ahead log.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
}

/// A passive checkpoint on `conn`: copies every page of the write-ahead log that no
/// reader still needs into the database, without waiting for readers or the writer.
/// Answers how many pages the log holds.
fn checkpoint(conn: &mut DbConnection) -> diesel::QueryResult<i64> {
    let done: Checkpointed = crate::per_backend!(conn, |c| {
        diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)"), c)
    })?;
    Ok(done.log)
}

/// Copies committed pages from the write-ahead log into the database, every
/// [`CHECKPOINT_EVERY`], on a connection of its own. SQLite would otherwise do it
/// inside a commit once the log holds 1,000 pages, on the writer's one thread, which
/// every request waits for; here the copying runs beside the writer (a passive
/// checkpoint never blocks it).
///
/// The log starts again from its beginning only when a write transaction begins with
/// every page of it copied. While the writer is never idle, that never happens on its
/// own: the writer commits more pages while a checkpoint copies, and the log grew by
/// the whole of what was written (1.9 GB in twenty seconds of the bench), each new
/// page costing the file system a block. So once the log holds
/// [`RESTART_AFTER_PAGES`], this thread asks the writer to copy the few pages written
/// since (see [`write_loop`]).
fn checkpoint_loop(manager: ConnectionManager, stopped: mpsc::Receiver<()>, long_log: &AtomicBool) {
    let mut conn: Option<DbConnection> = None;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        if conn.is_none() {
            conn = manager.establish().ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        // A long log is copied again at once (what was committed during the first
        // copy), so that what the writer copies is a batch or two.
        let copied = checkpoint(c).and_then(|pages| {
            if pages >= RESTART_AFTER_PAGES {
                checkpoint(c).map(|_| true)
            } else {
                Ok(false)
            }
        });
        match copied {
            Ok(true) => long_log.store(true, Ordering::Relaxed),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "a checkpoint of the SQLite write-ahead log failed");
                conn = None;
            }
        }
    }
}

/// The writer's own connection: SQLite does not checkpoint inside its commits; the
/// checkpoint thread does, and the writer between batches when asked (see [`write_loop`]).
fn open_writer(manager: &ConnectionManager) -> std::result::Result<DbConnection, String> {
    let mut c = manager.establish().map_err(|e| e.to_string())?;
    c.batch_execute(&format!(
        "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))
    .map_err(|e| e.to_string())?;
    Ok(c)
}

/// Runs the batches. When the checkpoint thread found the write-ahead log long, the
/// writer, between two batches, copies what was committed since that checkpoint (a
/// passive checkpoint: a reader still reading older pages only leaves them for the
/// next time). The next batch then begins with the whole log copied, and SQLite
/// writes it from the log's beginning again, over pages the file already has.
fn write_loop(manager: ConnectionManager, queue: mpsc::Receiver<Job>, long_log: &AtomicBool) {
    let mut conn: Option<DbConnection> = None;
    let mut batch: Vec<Job> = Vec::with_capacity(MOST_PER_BATCH);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < MOST_PER_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let c = match conn.take() {
            Some(c) => conn.insert(c),
            None => match open_writer(&manager) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::error!(error = %e, "the SQLite database cannot be opened");
                    // Dropped unanswered: each piece fails as unavailable.
                    batch.clear();
                    continue;
                }
            },
        };
        if long_log.swap(false, Ordering::Relaxed)
            && let Err(e) = checkpoint(c)
        {
            tracing::warn!(error = %e, "a checkpoint of the SQLite write-ahead log failed");
        }
        if !run_batch(c, &mut batch) {
            // Closed and opened again on the next batch: whatever state it was left
            // in is gone with it.
            conn = None;
        }
    }
}

/// Runs one batch in one transaction and answers each piece. Returns whether the
/// connection can be used again.
fn run_batch(conn: &mut DbConnection, batch: &mut Vec<Job>) -> bool {
    let started = Instant::now();
    WORK.set(Work::default());
    let begun = match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Pg(c) => AnsiTransactionManager::begin_transaction(c),
    };
    if let Err(e) = begun {
        let why = e.to_string();
        tracing::error!(error = %why, "a write transaction could not begin");
        for job in batch.drain(..) {
            drop(job);
        }
        return false;
    }
    // What BEGIN sent, before the pieces count their own.
    let begin_work = WORK.get();
    let mut answers = Vec::with_capacity(batch.len());
    let mut metrics = None;
    let mut usable = true;
    for job in batch.drain(..) {
        if !usable {
            // Dropped unanswered: unavailable, and never run.
            drop(job);
            continue;
        }
        let ran = job(conn);
        usable = ran.usable;
        metrics = Some(ran.metrics);
        answers.push(ran.answer);
    }
    WORK.set(Work::default());
    let failed = if usable {
        match crate::per_backend!(&mut *conn, |c| AnsiTransactionManager::commit_transaction(
            c
        )) {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        }
    } else {
        Some("a piece of work left the connection in an unknown state".to_string())
    };
    if failed.is_some() {
        tracing::error!(error = ?failed, "a batch of database work was rolled back");
        let _ = crate::per_backend!(
            &mut *conn,
            |c| AnsiTransactionManager::rollback_transaction(c)
        );
        usable = false;
    }
    let end_work = WORK.get();
    let batch_work = Work {
        statements: begin_work.statements + end_work.statements,
        transactions: begin_work.transactions + end_work.transactions,
    };
    if let Some(m) = metrics {
        m.transaction(
            "group_commit",
            started.elapsed().as_secs_f64(),
            batch_work.counts(),
        );
    }
    for answer in answers {
        answer(failed.as_deref());
    }
    usable
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::super::schema::login_failures;
    use super::super::{Db, login_failures as failures, write_transaction};
    use super::WAL_SIZE_LIMIT;
    use crate::error::Error;

    /// Many pieces at once, so that they share batches. A piece keeps what it wrote
    /// outside its own transactions even when it answers an error, as on a connection
    /// of its own; a transaction of its own that fails leaves nothing. A piece that
    /// panics fails its batch: every piece answered with success is stored whole, and
    /// every piece answered with an internal error left nothing at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn each_piece_is_stored_as_it_was_answered() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("w.db").to_str().unwrap(), 1).unwrap();
        let mut tasks = Vec::new();
        for i in 0..300u32 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.run(move |c| {
                    let key = format!("k{i}");
                    failures::record(c, &[&key], 1)?;
                    if i.is_multiple_of(3) {
                        write_transaction(c, |c| -> crate::error::Result<()> {
                            failures::record(c, &[&key], 2)?;
                            match i % 10 {
                                7 => Err(Error::invalid("refused")),
                                _ => Ok(()),
                            }
                        })?;
                    }
                    match i % 50 {
                        49 => panic!("a bug in piece {i}"),
                        _ if i % 10 == 7 => Err(Error::invalid("refused")),
                        _ => Ok(i),
                    }
                })
                .await
            }));
        }
        // What each piece should have left, by how it was answered.
        let mut expected: Vec<String> = Vec::new();
        let mut lost = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            let i = i as u32;
            let rows = if i.is_multiple_of(3) && i % 10 != 7 {
                2
            } else {
                1
            };
            match (i % 50, i % 10, t.await.unwrap()) {
                (49, _, Err(Error::Internal(_))) => lost += 1,
                (_, 7, Err(Error::InvalidRequest(_))) => {
                    expected.extend(std::iter::repeat_n(format!("k{i}"), rows))
                }
                (_, _, Ok(n)) if n == i => {
                    expected.extend(std::iter::repeat_n(format!("k{i}"), rows))
                }
                // A piece that shared its batch with a panic: it ran and was rolled
                // back (internal), or came after it and never ran (unavailable).
                (_, _, Err(Error::Internal(_) | Error::Unavailable)) => lost += 1,
                (_, _, other) => panic!("piece {i}: {other:?}"),
            }
        }
        let mut stored: Vec<String> = db
            .run(|c| Ok(login_failures::table.select(login_failures::key).load(c)?))
            .await
            .unwrap();
        stored.sort();
        expected.sort();
        assert!(lost >= 6, "the six panicking pieces failed, at least");
        assert_eq!(stored, expected);
        // The writer goes on after the panics.
        assert_eq!(db.run(|_| Ok(7)).await.unwrap(), 7);
    }

    /// Writes that never let the writer rest (160 megabytes of pages, from eight tasks
    /// at once) leave a write-ahead log cut back near [`WAL_SIZE_LIMIT`] (64 MiB), not
    /// one of everything written since the gateway started, and every row written is
    /// there. The log may end longer than the limit by what the writer wrote while the
    /// checkpoint thread waited for a core (on a loaded machine, a fraction of a second
    /// is tens of megabytes here), so the bound is twice the limit: below the 160 MB a
    /// log that never starts again holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_write_ahead_log_starts_again_under_continuous_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let db = Db::open(path.to_str().unwrap(), 1).unwrap();
        db.run(|c| {
            Ok(crate::per_backend!(c, |c| diesel::sql_query(
                "CREATE TABLE filler (b BLOB NOT NULL)"
            )
            .execute(c))?)
        })
        .await
        .unwrap();
        const TASKS: usize = 8;
        const JOBS: usize = 320;
        const ROWS: usize = 16;
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..JOBS {
                    db.run(|c| {
                        Ok(crate::per_backend!(c, |c| diesel::sql_query(format!(
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                             WHERE i < {ROWS}) INSERT INTO filler SELECT randomblob(4000) FROM n"
                        ))
                        .execute(c))?)
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("w.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal <= 2 * WAL_SIZE_LIMIT as u64,
            "the write-ahead log holds {wal} bytes after 160 MB were written"
        );
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows = db
            .run(|c| {
                Ok(crate::per_backend!(c, |c| diesel::sql_query(
                    "SELECT count(*) AS n FROM filler"
                )
                .get_result::<Count>(c))?)
            })
            .await
            .unwrap();
        assert_eq!(rows.n, (TASKS * JOBS * ROWS) as i64);
    }
}
