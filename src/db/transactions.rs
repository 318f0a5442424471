//! Transactions that write: `BEGIN IMMEDIATE` on SQLite, a savepoint inside one
//! already open, a subject's lock taken with PostgreSQL's BEGIN, and work of one
//! statement that needs none on PostgreSQL.

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};

use super::{COMMIT_SENT, DbConnection, depth, kept};

/// A transaction that writes. On SQLite it starts with `BEGIN IMMEDIATE`, taking the
/// write lock up front: a deferred transaction that reads and then writes fails at
/// once with SQLITE_BUSY when another writer got in between, whatever the busy timeout.
/// Inside a transaction already (the SQLite writer's batch), it is a savepoint.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> std::result::Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> std::result::Result<T, E>,
    E: From<diesel::result::Error>,
{
    transaction(conn, None, f)
}

/// A [`write_transaction`] that holds, on PostgreSQL, the transaction-scoped advisory
/// lock `lock` from its start. `BEGIN` and the lock go to the server together, in one
/// round trip (a lock that fails ends the transaction it began). On SQLite the write
/// lock of `BEGIN IMMEDIATE` already holds every other writer off.
///
/// The same round trip tells PostgreSQL to run the transaction's prepared statements
/// on the plan it keeps for any values (`plan_cache_mode`, until the transaction
/// ends). An issue's statements all find their rows by key, and that plan is the one
/// the values would give. Left to choose, PostgreSQL planned the statement
/// anew on every run once its tables were large: its plan for any values counts ten
/// elements in each array parameter, so it looks dearer than a plan for the actual
/// one or two destinations. On a database of a million users that planning took
/// 0.25 ms of the server's time per issue (docs/performance.md).
pub fn write_transaction_locked<T, E, F>(
    conn: &mut DbConnection,
    lock: i64,
    f: F,
) -> std::result::Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> std::result::Result<T, E>,
    E: From<diesel::result::Error>,
{
    transaction(conn, Some(lock), f)
}

fn transaction<T, E, F>(
    conn: &mut DbConnection,
    lock: Option<i64>,
    f: F,
) -> std::result::Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> std::result::Result<T, E>,
    E: From<diesel::result::Error>,
{
    let nested = depth(conn) != Ok(0);
    match (&mut *conn, lock) {
        (DbConnection::Sqlite(c), _) if !nested => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        (DbConnection::Sqlite(c), _) => AnsiTransactionManager::begin_transaction(c)?,
        (DbConnection::Pg(c), None) => AnsiTransactionManager::begin_transaction(c)?,
        // The lock is a number, written into the statement: a statement with a
        // parameter cannot share a round trip with another.
        (DbConnection::Pg(c), Some(lock)) if !nested => {
            let sql = format!(
                "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
                 SELECT pg_advisory_xact_lock({lock})"
            );
            if let Err(e) = AnsiTransactionManager::begin_transaction_sql(c, &sql) {
                // BEGIN ran if the lock failed: end the aborted transaction, or the
                // pooled connection would answer nothing but errors.
                let _ = c.batch_execute("ROLLBACK");
                return Err(e.into());
            }
        }
        // Inside a transaction already: the caller's plans are left as they are.
        (DbConnection::Pg(c), Some(lock)) => {
            AnsiTransactionManager::begin_transaction(c)?;
            let statement = diesel::sql_query("SELECT 1 AS done FROM pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(lock);
            if let Err(e) = kept::kept(statement).rows(c) {
                AnsiTransactionManager::rollback_transaction(c)?;
                return Err(e.into());
            }
        }
    }
    match f(conn) {
        Ok(value) => {
            if depth(conn) == Ok(1) {
                COMMIT_SENT.set(true);
            }
            crate::per_backend!(conn, |c| AnsiTransactionManager::commit_transaction(c))?;
            Ok(value)
        }
        Err(e) => {
            crate::per_backend!(conn, |c| AnsiTransactionManager::rollback_transaction(c))?;
            Err(e)
        }
    }
}

/// Whether each statement on `conn` commits by itself: PostgreSQL outside a
/// transaction. A statement is atomic there on its own, so work that is one statement
/// needs neither BEGIN nor COMMIT, two of its three round trips to the server. On
/// SQLite every write goes through [`write_transaction`] (`BEGIN IMMEDIATE`, or a
/// savepoint in the writer's batch).
pub fn autocommits(conn: &mut DbConnection) -> bool {
    matches!(conn, DbConnection::Pg(_)) && depth(conn) == Ok(0)
}

/// Runs `f`, which writes with `statements` statements, atomically: one statement
/// where the connection [`autocommits`] runs as it is, anything else in a
/// [`write_transaction`].
pub fn atomically<T, E, F>(
    conn: &mut DbConnection,
    statements: usize,
    f: F,
) -> std::result::Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> std::result::Result<T, E>,
    E: From<diesel::result::Error>,
{
    if statements == 1 && autocommits(conn) {
        return f(conn);
    }
    write_transaction(conn, f)
}
