//! Storage: one connection enum for SQLite and PostgreSQL, chosen by the URL scheme,
//! pooled with r2d2. Blocking Diesel work (`Db::run`) runs for PostgreSQL on a thread
//! per pooled connection, taking the work in the order it arrived (`workers`), and for
//! SQLite on the one writer thread that commits the work arriving together in one
//! transaction (`writer`); a connection is never held across an `.await`.
//!
//! Statements run on the backend's own connection, not through the enum (`native.rs`).
//! Reads of one row use `one` (`get_result`), not `first`: `first` adds `LIMIT ?`, and
//! SQLite plans such a statement again each time it runs with a bound limit, instead of
//! reusing the prepared one. Only reads that pick one row of many keep `first`.

pub mod api_keys;
pub mod audit;
pub mod capillary_brands;
pub mod capillary_sessions;
pub mod challenges;
pub mod issue;
mod kept;
pub mod limits;
pub mod login_failures;
mod native;
pub mod outbox;
pub mod provider_status;
pub mod schema;
pub mod sessions;
mod sqlite;
mod transactions;
pub mod twofactor_configs;
pub mod upstream_keys;
pub mod users;
mod work;
mod workers;
#[cfg(test)]
pub(crate) use work::recorded;
mod writer;

pub use transactions::{atomically, autocommits, write_transaction, write_transaction_locked};
pub use work::Work;
pub(crate) use work::delete_batch;
use work::{WORK, count_work};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Error, Result};
use crate::metrics::Metrics;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of whichever backend is in
/// use, for the few statements whose SQL differs between backends.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Pg($c) => $body,
        }
    };
}

/// A parsed `database_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> std::result::Result<DatabaseUrl, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err(
                "is empty; use sqlite://PATH, a file path, or postgres://USER@HOST/DB".into(),
            );
        }
        match url.split_once("://") {
            None if url.starts_with("sqlite:") => Self::sqlite_path(&url["sqlite:".len()..]),
            None => Self::sqlite_path(url),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "sqlite" | "file" => Self::sqlite_path(rest.split('?').next().unwrap_or(rest)),
                "postgres" | "postgresql" => Ok(DatabaseUrl::Postgres(url.to_string())),
                other => Err(format!(
                    "unsupported scheme '{other}://'; use sqlite://PATH (or a plain file path) or postgres:// / postgresql://"
                )),
            },
        }
    }

    fn sqlite_path(path: &str) -> std::result::Result<DatabaseUrl, String> {
        if path.is_empty() {
            return Err("sqlite:// needs a file path, e.g. sqlite://otpgate.db".into());
        }
        if path.contains(":memory:") || path.starts_with("file::memory") {
            return Err(
                "an in-memory SQLite database is private to one connection; give a file path"
                    .into(),
            );
        }
        Ok(DatabaseUrl::Sqlite(path.to_string()))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// Builds the connection variant the URL names (never by trying each in turn: SQLite
/// would accept any string as a path).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        ConnectionManager { url }
    }

    pub fn establish(&self) -> std::result::Result<DbConnection, diesel::r2d2::Error> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut c = sqlite::open(path)?;
                c.set_instrumentation(count_work);
                Ok(DbConnection::Sqlite(c))
            }
            DatabaseUrl::Postgres(url) => {
                // libpq and the HTTP/SMTP clients share one bundled OpenSSL. Initialise
                // it before libpq does, without the atexit clean-up: otherwise a pool
                // thread still opening or closing a TLS connection when the process
                // exits touches freed OpenSSL state and the process dies of SIGSEGV
                // (openssl/openssl#6214, sfackler/r2d2#137).
                openssl_sys::init();
                let url = with_connect_timeout(url);
                let mut c =
                    PgConnection::establish(&url).map_err(diesel::r2d2::Error::ConnectionError)?;
                c.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(diesel::r2d2::Error::QueryError)?;
                c.set_instrumentation(count_work);
                Ok(DbConnection::Pg(c))
            }
        }
    }
}

/// The URL with libpq's `connect_timeout`, unless it sets one itself.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}connect_timeout={PG_CONNECT_TIMEOUT_SECS}")
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> std::result::Result<DbConnection, Self::Error> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> std::result::Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A connection left inside a transaction (a panic mid-closure) is not reused.
        depth(conn) != Ok(0)
    }
}

/// How many transactions deep the connection is (0: outside any); Err when Diesel's
/// transaction manager is in an error state.
fn depth(conn: &mut DbConnection) -> std::result::Result<u32, ()> {
    per_backend!(conn, |c| {
        AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map(|d| d.map_or(0, |d| d.get()))
            .map_err(|_| ())
    })
}

pub type Pool = r2d2::Pool<ConnectionManager>;

/// The pool and the way into it from async code.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    url: DatabaseUrl,
    /// False since a request found no connection, until one gets one again: while the
    /// database is known to be down, requests wait briefly instead of the full
    /// timeout, so clients get their 503 at once.
    reachable: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    threads: Threads,
}

/// The threads that run the work of [`Db::run`].
#[derive(Clone)]
enum Threads {
    /// SQLite: the one thread that writes, committing the work that arrives together
    /// in one transaction ([`writer`]). The pool then serves the command-line tools.
    Writer(Arc<writer::Writer>),
    /// PostgreSQL: a thread per pooled connection, taking the work in the order it
    /// arrived ([`workers`]).
    Workers(Arc<workers::Workers>),
}

/// How long a request waits for a pooled connection while the database answers.
const CONNECTION_WAIT: Duration = Duration::from_secs(10);
/// ... and while it is known to be down.
const CONNECTION_WAIT_WHEN_DOWN: Duration = Duration::from_millis(500);
/// How long a libpq connection attempt may take (an unreachable host otherwise holds
/// a pool thread for minutes).
const PG_CONNECT_TIMEOUT_SECS: u32 = 3;

impl Db {
    /// Connects, applies pending migrations and returns the pool.
    pub fn open(database_url: &str, pool_size: u32) -> std::result::Result<Db, String> {
        let url = DatabaseUrl::parse(database_url).map_err(|e| format!("database_url: {e}"))?;
        let manager = ConnectionManager::new(url.clone());
        let mut first = manager
            .establish()
            .map_err(|e| format!("cannot open the {} database: {e}", url.backend()))?;
        migrate(&mut first).map_err(|e| format!("migrations failed: {e}"))?;
        drop(first);
        let reachable = Arc::new(AtomicBool::new(true));
        let threads = match url {
            DatabaseUrl::Sqlite(_) => Threads::Writer(Arc::new(
                writer::Writer::start(manager.clone())
                    .map_err(|e| format!("cannot start the SQLite writer thread: {e}"))?,
            )),
            DatabaseUrl::Postgres(_) => Threads::Workers(Arc::new(
                workers::Workers::start(pool_size)
                    .map_err(|e| format!("cannot start the database threads: {e}"))?,
            )),
        };
        let pool = r2d2::Pool::builder()
            .error_handler(Box::new(MarkUnreachable(reachable.clone())))
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(CONNECTION_WAIT)
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| format!("cannot open the {} database: {e}", url.backend()))?;
        Ok(Db {
            pool,
            url,
            reachable,
            metrics: Metrics::off(),
            threads,
        })
    }

    /// The same pool, recording its waits and work in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Db {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Connections (in use, idle) in the pool now.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (
            s.connections.saturating_sub(s.idle_connections),
            s.idle_connections,
        )
    }

    pub fn backend(&self) -> &'static str {
        self.url.backend()
    }

    /// Runs blocking database work with a pooled connection, on a thread of its own
    /// ([`workers`]; on SQLite, the [`writer`]).
    ///
    /// A connection that turns out to be dead (the server restarted, a proxy or
    /// firewall dropped it, an administrator terminated it) fails the work before
    /// anything is committed; the work is then run once more on a connection that
    /// answers. Work whose COMMIT was sent is never run again: whether it committed
    /// cannot be known. A statement that commits by itself (on PostgreSQL, outside a
    /// transaction; see [`autocommits`]) is not counted as one: each is written to be
    /// safe to run twice (a code is spent only while it is open, a message is marked
    /// only by the dispatcher that holds its lease), so a lost answer to one is run
    /// again, and a login whose code did commit then answers that the code was used.
    /// Connections are therefore not tested when taken from the pool, which would cost
    /// every request a round trip.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnMut(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_as("other", f).await
    }

    /// As [`Db::run`], its time recorded as work of `kind` (`issue`, `verify`…: a
    /// label of `otpgate_db_transaction_duration_seconds`).
    pub async fn run_as<T, F>(&self, kind: &'static str, f: F) -> Result<T>
    where
        F: FnMut(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let wait = if self.reachable.load(Ordering::Relaxed) {
            CONNECTION_WAIT
        } else {
            CONNECTION_WAIT_WHEN_DOWN
        };
        self.run_waiting(kind, wait, f).await
    }

    /// As [`Db::run`], waiting at most `wait` for a connection.
    async fn run_waiting<T, F>(&self, kind: &'static str, wait: Duration, f: F) -> Result<T>
    where
        F: FnMut(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let workers = match &self.threads {
            Threads::Writer(writer) => {
                return writer.run(kind, self.metrics.clone(), wait, f).await;
            }
            Threads::Workers(workers) => workers,
        };
        let (pool, reachable) = (self.pool.clone(), self.reachable.clone());
        let metrics = self.metrics.clone();
        // The request this work is done for goes with it: its log lines and the audit
        // events it writes name the request.
        let (request, span) = (crate::core::request_id::current(), tracing::Span::current());
        let asked = std::time::Instant::now();
        workers
            .run(wait, move || {
                let _span = span.entered();
                crate::core::request_id::carried(request, || {
                    let waited = asked.elapsed();
                    // Work that waited its turn while the database was found to be
                    // down is answered at once, as it would have been on asking.
                    if waited >= CONNECTION_WAIT_WHEN_DOWN && !reachable.load(Ordering::Relaxed) {
                        return Err(Error::Unavailable);
                    }
                    let left = wait.saturating_sub(waited).max(CONNECTION_WAIT_WHEN_DOWN);
                    run_retrying(&pool, &reachable, &metrics, asked, left, kind, f)
                })
            })
            .await
    }

    /// Whether the database answers a query within `within` (readiness): never
    /// longer, whatever the database or the pool is doing.
    pub async fn ready(&self, within: Duration) -> bool {
        let check = self.run_waiting("ready", within, |c| Ok(c.batch_execute("SELECT 1")?));
        matches!(tokio::time::timeout(within, check).await, Ok(Ok(())))
    }

    /// For command-line tools that are not async.
    pub fn get(&self) -> Result<r2d2::PooledConnection<ConnectionManager>> {
        Ok(self.pool.get()?)
    }
}

/// SQL written with `?` placeholders, numbered for PostgreSQL (`$1`, `$2`…), for the
/// few statements written once as SQL for both backends. The SQL must hold no other
/// `?` (in a string literal, say).
fn numbered_placeholders(sql: &str) -> String {
    let mut parts = sql.split('?');
    let mut out = parts.next().unwrap_or_default().to_string();
    for (n, part) in parts.enumerate() {
        out.push_str(&format!("${}{part}", n + 1));
    }
    out
}

/// Runs `f` on a pooled connection (see [`Db::run`]): once more on another connection
/// when its connection was lost before anything was committed. `asked` is when the
/// work was asked for: its wait for a turn counts as waiting for a connection.
fn run_retrying<T>(
    pool: &Pool,
    reachable: &AtomicBool,
    metrics: &Metrics,
    asked: std::time::Instant,
    wait: Duration,
    kind: &'static str,
    mut f: impl FnMut(&mut DbConnection) -> Result<T>,
) -> Result<T> {
    let deadline = std::time::Instant::now() + wait;
    let mut conn = checkout(pool, reachable, wait)?;
    let started = std::time::Instant::now();
    metrics.pool_wait((started - asked).as_secs_f64());
    COMMIT_SENT.set(false);
    WORK.set(Work::default());
    let result = match f(&mut conn) {
        Err(Error::Internal(e)) if !COMMIT_SENT.get() && lost(&mut conn) => {
            discard(&mut conn);
            drop(conn);
            tracing::warn!(
                error = %e,
                "a database connection was lost before anything was committed; \
                 running the work again on another"
            );
            let mut conn = checkout_live(pool, reachable, deadline)?;
            f(&mut conn)
        }
        other => other,
    };
    metrics.transaction(kind, started.elapsed().as_secs_f64(), WORK.get().counts());
    result
}

/// A pooled connection within `wait`, asked for in short slices: a request already
/// waiting gives up as soon as the pool reports that the database cannot be reached,
/// rather than at the end of its wait.
fn checkout(
    pool: &Pool,
    reachable: &AtomicBool,
    wait: Duration,
) -> std::result::Result<r2d2::PooledConnection<ConnectionManager>, r2d2::Error> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match pool.get_timeout(left.min(CONNECTION_WAIT_WHEN_DOWN)) {
            Ok(c) => {
                reachable.store(true, Ordering::Relaxed);
                return Ok(c);
            }
            Err(e) if !reachable.load(Ordering::Relaxed) || left <= CONNECTION_WAIT_WHEN_DOWN => {
                reachable.store(false, Ordering::Relaxed);
                return Err(e);
            }
            Err(_) => {}
        }
    }
}

thread_local! {
    /// Whether the work running on this thread has sent a COMMIT (see
    /// [`write_transaction`]): after that, a lost connection leaves the outcome unknown.
    static COMMIT_SENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a connection whose work just failed is gone: it no longer answers.
fn lost(conn: &mut DbConnection) -> bool {
    conn.batch_execute("SELECT 1").is_err()
}

/// Marks a connection so that the pool closes it rather than hand it out again.
fn discard(conn: &mut DbConnection) {
    per_backend!(conn, |c| {
        AnsiTransactionManager::transaction_manager_status_mut(c).set_in_error()
    });
}

/// A pooled connection that answers, before `deadline`. Connections the pool still
/// holds may have died with the one just lost; each that does not answer is closed.
fn checkout_live(
    pool: &Pool,
    reachable: &AtomicBool,
    deadline: std::time::Instant,
) -> std::result::Result<r2d2::PooledConnection<ConnectionManager>, r2d2::Error> {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut conn = checkout(pool, reachable, left.max(CONNECTION_WAIT_WHEN_DOWN))?;
        if !lost(&mut conn) {
            return Ok(conn);
        }
        discard(&mut conn);
    }
}

/// Told by the pool of each connection it could not open (or keep): the database is
/// known to be down until a request gets a connection again.
#[derive(Debug)]
struct MarkUnreachable(Arc<AtomicBool>);

impl r2d2::HandleError<diesel::r2d2::Error> for MarkUnreachable {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if self.0.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %error, "the database cannot be reached");
        }
    }
}

/// Applies pending migrations. On PostgreSQL an advisory lock keeps several starting
/// processes from migrating at once.
pub fn migrate(conn: &mut DbConnection) -> std::result::Result<Vec<String>, String> {
    const LOCK: i64 = 0x006f_7470_6761_7465; // "otpgate"
    let applied = match conn {
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>())
            .map_err(|e| e.to_string()),
        DbConnection::Pg(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({LOCK})"))
                .map_err(|e| e.to_string())?;
            let r = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            let _ = c.batch_execute(&format!("SELECT pg_advisory_unlock({LOCK})"));
            r
        }
    }?;
    Ok(applied)
}

/// The migrations not yet applied, by name, without applying any (`otpgate status`).
pub fn pending_migrations(conn: &mut DbConnection) -> std::result::Result<Vec<String>, String> {
    match conn {
        DbConnection::Sqlite(c) => c
            .pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.name().to_string()).collect()),
        DbConnection::Pg(c) => c
            .pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.name().to_string()).collect()),
    }
    .map_err(|e| e.to_string())
}

/// Reverts every applied migration (for the migration round-trip test and `migrate --redo`).
pub fn revert_all(conn: &mut DbConnection) -> std::result::Result<(), String> {
    match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Pg(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    }
    .map_err(|e| e.to_string())
}

/// Milliseconds since the Unix epoch, UTC: the one time representation in storage.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
    }
}
