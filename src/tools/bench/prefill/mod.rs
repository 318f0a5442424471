//! `--prefill-users N --prefill-days D [--prefill-rate R]`: a database holding N users
//! and D days of history at R cycles a second, built once and reused by every later
//! run with the same N, D and R.
//!
//! The build is one transaction: the table `bench_prefill`, written last, marks a
//! complete prefill, and an interrupted build leaves nothing behind. Every user gets
//! the same Argon2id hash of one password, hashed once. Rows go in with multi-row
//! INSERTs below SQLite's bind-variable limit, made on a thread of their own while
//! the previous block is written; the secondary indexes of the tables filled are
//! dropped first and made again from their own definitions at the end (one sort
//! each, instead of a random B-tree insert per row).

mod rows;

use std::path::PathBuf;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::config::Settings;
use crate::db::schema::{
    audit_destinations, audit_events, challenges, outbox, send_limits, sessions, users,
};
use crate::db::{ConnectionManager, DatabaseUrl, DbConnection};
use rows::{Block, History, Plan, Rules};

pub use rows::PASSWORD;

/// What to build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub users: u64,
    pub days: u32,
    /// History cycles per second.
    pub rate: f64,
}

/// Stay below SQLite's limit of 32,766 variables per statement.
const MAX_BINDS: usize = 30_000;
/// History cycles made (and written) per block.
const CYCLES_PER_BLOCK: usize = 20_000;
/// The tables a prefill fills.
const TABLES: [&str; 7] = [
    "users",
    "challenges",
    "outbox",
    "audit_events",
    "audit_destinations",
    "send_limits",
    "sessions",
];

impl Spec {
    /// The rate as the marker and the file name spell it.
    fn rate_text(&self) -> String {
        let text = format!("{:.6}", self.rate);
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }

    /// A SQLite file in the cache directory named after N, D and R.
    pub fn cached_url(&self) -> Result<String, String> {
        let dir = cache_dir()?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = format!(
            "prefill-{}u-{}d-{}r.db",
            self.users,
            self.days,
            self.rate_text()
        );
        Ok(format!("sqlite://{}", dir.join(name).display()))
    }
}

/// `$XDG_CACHE_HOME/otpgate/bench`, else `~/.cache/otpgate/bench`.
fn cache_dir() -> Result<PathBuf, String> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache"))
            .ok_or("neither XDG_CACHE_HOME nor HOME is set: give --database-url")?,
    };
    Ok(base.join("otpgate").join("bench"))
}

/// Row counts per table, in [`TABLES`] order.
type Counts = Vec<(String, i64)>;

#[derive(QueryableByName)]
struct Marker {
    #[diesel(sql_type = BigInt)]
    users: i64,
    #[diesel(sql_type = BigInt)]
    days: i64,
    #[diesel(sql_type = Text)]
    rate: String,
    #[diesel(sql_type = BigInt)]
    build_ms: i64,
    #[diesel(sql_type = Text)]
    counts: String,
}

/// Makes sure `database_url` holds the prefill `spec` asks for: reuses a complete one,
/// else builds it. Returns what to tell the operator.
pub fn ensure(spec: Spec, settings: &Settings, database_url: &str) -> Result<String, String> {
    let url = DatabaseUrl::parse(database_url)?;
    let mut conn = ConnectionManager::new(url)
        .establish()
        .map_err(|e| format!("prefill: cannot open the database: {e}"))?;
    crate::db::migrate(&mut conn).map_err(|e| format!("prefill: migrations failed: {e}"))?;
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS bench_prefill (users BIGINT NOT NULL, days BIGINT NOT NULL, \
         rate TEXT NOT NULL, built_at BIGINT NOT NULL, build_ms BIGINT NOT NULL, counts TEXT NOT NULL)",
    )
    .map_err(|e| format!("prefill: {e}"))?;
    let found: Vec<Marker> = crate::per_backend!(&mut conn, |c| diesel::sql_query(
        "SELECT users, days, rate, build_ms, counts FROM bench_prefill"
    )
    .load(c))
    .map_err(|e| format!("prefill: {e}"))?;
    if let Some(m) = found.first() {
        let same = m.users == spec.users as i64
            && m.days == i64::from(spec.days)
            && m.rate == spec.rate_text();
        if !same {
            return Err(format!(
                "prefill: {database_url} holds a prefill of {} users, {} days at {}/s; \
                 give another database (or remove this one) for {} users, {} days at {}/s",
                m.users,
                m.days,
                m.rate,
                spec.users,
                spec.days,
                spec.rate_text()
            ));
        }
        let counts: Counts = serde_json::from_str(&m.counts).unwrap_or_default();
        return Ok(format!(
            "prefill: reusing the prefilled database ({} users, {} days at {}/s, built in {:.1} s): {}",
            spec.users,
            spec.days,
            spec.rate_text(),
            m.build_ms as f64 / 1000.0,
            show(&counts)
        ));
    }
    let started = Instant::now();
    let counts = build(&mut conn, spec, settings)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(format!(
        "prefill: built in {seconds:.1} s ({} users, {} days at {}/s): {}",
        spec.users,
        spec.days,
        spec.rate_text(),
        show(&counts)
    ))
}

fn show(counts: &Counts) -> String {
    counts
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn build(conn: &mut DbConnection, spec: Spec, settings: &Settings) -> Result<Counts, String> {
    let started = Instant::now();
    let sqlite = matches!(conn, DbConnection::Sqlite(_));
    if sqlite {
        // One transaction of gigabytes: a rollback journal (which keeps only the pages
        // that existed before) instead of WAL (which would hold every page once more),
        // no syncs until the end, and a large page cache. The gateway's connections
        // switch back to WAL when they open.
        conn.batch_execute(
            "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = -2000000;",
        )
        .map_err(|e| format!("prefill: {e}"))?;
    }
    let hash = crate::core::users::Passwords::new(&settings.password_hashing)?.hash(PASSWORD)?;
    let end_ms = crate::db::now_ms();
    let counts = crate::db::write_transaction(conn, |conn| -> Result<Counts, Failed> {
        let q = |e: diesel::result::Error| Failed(format!("prefill: {e}"));
        let first_id = crate::db::users::next_id(conn).map_err(q)?;
        let numeric_id = crate::db::challenges::next_numeric_id(conn).map_err(q)?;
        let indexes = secondary_indexes(conn).map_err(q)?;
        for (name, _) in &indexes {
            conn.batch_execute(&format!("DROP INDEX {name}"))
                .map_err(q)?;
        }
        let mut counts: Counts = TABLES.iter().map(|t| (t.to_string(), 0)).collect();
        std::thread::scope(|scope| -> Result<(), Failed> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Block>(2);
            let maker = scope.spawn(move || make(spec, settings, &hash, end_ms, first_id, numeric_id, tx));
            for block in rx {
                write(conn, block, &mut counts).map_err(q)?;
            }
            maker
                .join()
                .map_err(|_| Failed("prefill: the row maker panicked".into()))
        })?;
        for (_, sql) in &indexes {
            conn.batch_execute(sql).map_err(q)?;
        }
        if !sqlite {
            conn.batch_execute(
                "SELECT setval('challenge_numeric_id', (SELECT COALESCE(MAX(numeric_id), 1) FROM challenges))",
            )
            .map_err(q)?;
        }
        let build_ms = started.elapsed().as_millis() as i64;
        let text = serde_json::to_string(&counts).map_err(|e| Failed(e.to_string()))?;
        conn.batch_execute(&format!(
            "INSERT INTO bench_prefill (users, days, rate, built_at, build_ms, counts) \
             VALUES ({}, {}, '{}', {end_ms}, {build_ms}, '{}')",
            spec.users,
            spec.days,
            spec.rate_text(),
            text.replace('\'', "''")
        ))
        .map_err(q)?;
        Ok(counts)
    })
    .map_err(|Failed(e)| e)?;
    if !sqlite {
        // What autovacuum would soon do: the planner's statistics for the new rows.
        conn.batch_execute("ANALYZE")
            .map_err(|e| format!("prefill: {e}"))?;
    }
    Ok(counts)
}

/// Why the build's transaction was rolled back.
struct Failed(String);

impl From<diesel::result::Error> for Failed {
    fn from(e: diesel::result::Error) -> Self {
        Failed(format!("prefill: {e}"))
    }
}

/// The secondary indexes of the tables a prefill fills (not those behind a primary
/// key or a unique constraint): name and the statement that makes it.
fn secondary_indexes(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    #[derive(QueryableByName)]
    struct Index {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        sql: String,
    }
    let tables = TABLES.map(|t| format!("'{t}'")).join(", ");
    let found: Vec<Index> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ({tables})"
        ))
        .load(c)?,
        DbConnection::Pg(c) => diesel::sql_query(format!(
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename IN ({tables}) \
             AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ))
        .load(c)?,
    };
    Ok(found.into_iter().map(|i| (i.name, i.sql)).collect())
}

/// Makes the blocks: the users, the history in time order, the send-limit rows.
fn make(
    spec: Spec,
    settings: &Settings,
    hash: &str,
    end_ms: i64,
    first_id: i64,
    numeric_id: i64,
    tx: std::sync::mpsc::SyncSender<Block>,
) {
    let created = end_ms - i64::from(spec.days + 1) * 86_400_000;
    let per_block = MAX_BINDS / 15 * 8;
    let mut n = 0;
    while n < spec.users {
        let upto = (n + per_block as u64).min(spec.users);
        let block = (n..upto)
            .map(|i| rows::user(i, first_id + i as i64, hash, created))
            .collect();
        if tx.send(Block::Users(block)).is_err() {
            return;
        }
        n = upto;
    }
    let plan = Plan::new(spec.users, spec.days, spec.rate, end_ms);
    let rules = Rules::new(settings, end_ms);
    let mut i = 0;
    while i < plan.cycles() {
        let upto = (i + CYCLES_PER_BLOCK).min(plan.cycles());
        let h = rows::history(&plan, &rules, i..upto, first_id, numeric_id);
        if tx.send(Block::History(h)).is_err() {
            return;
        }
        i = upto;
    }
    let _ = tx.send(Block::Limits(rows::limits(&plan, &rules)));
}

/// Inserts `rows` into `table` in statements of at most [`MAX_BINDS`] values;
/// `columns` is the number of columns a row fills.
macro_rules! bulk {
    ($conn:expr, $table:expr, $rows:expr, $columns:expr) => {{
        let mut n = 0usize;
        for chunk in $rows.chunks(MAX_BINDS / $columns) {
            n += crate::per_backend!(&mut *$conn, |c| diesel::insert_into($table)
                .values(chunk)
                .execute(c))?;
        }
        n as i64
    }};
}

fn write(conn: &mut DbConnection, block: Block, counts: &mut Counts) -> QueryResult<()> {
    let mut add = |table: &str, n: i64| {
        if let Some(c) = counts.iter_mut().find(|(t, _)| t == table) {
            c.1 += n;
        }
    };
    match block {
        Block::Users(u) => add("users", bulk!(conn, users::table, u, 15)),
        Block::Limits(l) => add("send_limits", bulk!(conn, send_limits::table, l, 5)),
        Block::History(History {
            challenges: ch,
            messages,
            events,
            destinations,
            sessions: se,
        }) => {
            // The numeric Id is not part of a challenge's own insert (see
            // `db::challenges::insert`): the prefill gives its own.
            let ch: Vec<_> = ch
                .into_iter()
                .map(|c| {
                    let numeric_id = challenges::numeric_id.eq(c.numeric_id);
                    (c, numeric_id)
                })
                .collect();
            add("challenges", bulk!(conn, challenges::table, ch, 18));
            add("outbox", bulk!(conn, outbox::table, messages, 16));
            add("audit_events", bulk!(conn, audit_events::table, events, 9));
            add(
                "audit_destinations",
                bulk!(conn, audit_destinations::table, destinations, 4),
            );
            add("sessions", bulk!(conn, sessions::table, se, 7));
        }
    }
    Ok(())
}
