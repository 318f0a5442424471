//! What the database work sends, counted per piece of work for the metrics, and the
//! one statement housekeeping's batches are made of.

use diesel::prelude::*;

use super::{DbConnection, numbered_placeholders};

/// What one piece of database work sent: SQL statements (BEGIN and COMMIT included)
/// and transactions (outermost BEGINs; savepoints are not counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    pub statements: u64,
    pub transactions: u64,
}

impl Work {
    /// (statements, transactions), as the metrics take them.
    pub fn counts(self) -> (u64, u64) {
        (self.statements, self.transactions)
    }
}

thread_local! {
    /// The work sent on this thread since [`run_retrying`] last reset it.
    pub(super) static WORK: std::cell::Cell<Work> = const {
        std::cell::Cell::new(Work { statements: 0, transactions: 0 })
    };
}

/// Every pooled connection's instrumentation: counts what it sends into [`WORK`],
/// which `otpgate_db_statements_total` and `otpgate_db_transactions_total` report.
pub(super) fn count_work(event: diesel::connection::InstrumentationEvent<'_>) {
    use diesel::connection::InstrumentationEvent as E;
    let mut w = WORK.get();
    match event {
        E::StartQuery { .. } => w.statements += 1,
        E::BeginTransaction { depth, .. } if depth.get() == 1 => w.transactions += 1,
        _ => return,
    }
    WORK.set(w);
}

/// Deletes at most `limit` rows of `table` whose `oldest`, an indexed expression, is
/// before `at` (`cmp`: `<` or `<=`), oldest first, and that also meet `also`, SQL in
/// which every `?` stands for `at` too; `key` is the table's primary key
/// (housekeeping's batches). All are names from this crate, never from a request.
///
/// The order makes PostgreSQL walk that index in order and stop at `limit`. Without
/// it, it gathered every entry below the cutoff into a bitmap first, and an entry stays
/// in the index until vacuum removes the row: each batch visited every row the
/// earlier batches had deleted. On a table of 600,000 limit rows, after an hour of
/// housekeeping, that was 13,000 pages read to delete two rows (docs/performance.md).
/// A walk in order marks those entries dead the first time it meets them and skips
/// them after.
pub(crate) fn delete_batch(
    conn: &mut DbConnection,
    (table, key): (&'static str, &'static str),
    (oldest, cmp): (&'static str, &'static str),
    also: Option<&'static str>,
    at: i64,
    limit: i64,
) -> QueryResult<usize> {
    use diesel::sql_types::BigInt;
    let condition = match also {
        Some(also) => format!("{oldest} {cmp} ? AND {also}"),
        None => format!("{oldest} {cmp} ?"),
    };
    let sql = format!(
        "DELETE FROM {table} WHERE {key} IN \
         (SELECT {key} FROM {table} WHERE {condition} ORDER BY {oldest} LIMIT ?)"
    );
    let times = condition.matches('?').count();
    macro_rules! run {
        ($c:expr, $sql:expr) => {{
            let mut q = diesel::sql_query($sql).into_boxed();
            for _ in 0..times {
                q = q.bind::<BigInt, _>(at);
            }
            q.bind::<BigInt, _>(limit).execute($c)
        }};
    }
    match conn {
        DbConnection::Sqlite(c) => run!(c, sql),
        DbConnection::Pg(c) => run!(c, numbered_placeholders(&sql)),
    }
}

/// What a test records of the statements sent: the SQL of each event `pick` names.
#[cfg(test)]
pub(crate) type Recorded = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A connection to a new SQLite database in `dir` that records, for a test, the SQL of
/// each event `pick` names.
#[cfg(test)]
pub(crate) fn recorded(
    dir: &std::path::Path,
    pick: fn(diesel::connection::InstrumentationEvent<'_>) -> Option<String>,
) -> (r2d2::PooledConnection<super::ConnectionManager>, Recorded) {
    let db = super::Db::open(dir.join("r.db").to_str().unwrap(), 1).unwrap();
    let mut conn = db.get().unwrap();
    let sent = Recorded::default();
    let seen = sent.clone();
    let DbConnection::Sqlite(c) = &mut *conn else {
        unreachable!("a file path opens SQLite")
    };
    c.set_instrumentation(move |e: diesel::connection::InstrumentationEvent<'_>| {
        if let Some(sql) = pick(e) {
            seen.lock().unwrap().push(sql);
        }
    });
    (conn, sent)
}
