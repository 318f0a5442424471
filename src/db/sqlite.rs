//! Opening a SQLite connection: the file made private, the settings every connection
//! of the process shares, and the pragmas of each.

use diesel::SqliteConnection;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// Opens the database at `path` (creating it private first) with the gateway's
/// pragmas.
pub(super) fn open(path: &str) -> Result<SqliteConnection, diesel::r2d2::Error> {
    create_private(path);
    process_settings();
    let mut c = SqliteConnection::establish(path).map_err(diesel::r2d2::Error::ConnectionError)?;
    // busy_timeout first: switching to WAL itself may wait for a lock.
    // temp_store: the journals of savepoints (every request's, in the
    // writer's batches) stay in memory rather than in a temporary file.
    // They grow in chunks of 1 KiB; larger ones (SQLITE_CONFIG_STMTJRNL_SPILL)
    // spill to a file past 128 KiB, which the writer's larger pieces reach
    // (docs/performance.md).
    // cache_size: 8 MiB of pages per connection rather than 2. Only the
    // writer's outlives a transaction (in WAL mode a connection drops its
    // pages whenever another has committed since its last read), and on a
    // database of a million users 32 MiB did no better than 8 while the
    // process held 25 MB more (docs/performance.md).
    c.batch_execute(
        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192;",
    )
    .map_err(diesel::r2d2::Error::QueryError)?;
    Ok(c)
}

/// SQLite's settings for the whole process, made once before its first connection
/// opens.
///
/// - No memory statistics (`SQLITE_CONFIG_MEMSTATUS` off): with them, every
///   allocation SQLite makes takes a process-wide mutex to count itself, and the
///   gateway reads none of the counts. `sqlite3_config` works only before SQLite
///   initialises, which registering the auto-extension below does; so it comes first,
///   and if something in the process initialised SQLite earlier it is refused and the
///   counts stay on, a cost and no error.
/// - The query planner stability guarantee for every connection: a statement is
///   planned once, when it is prepared, not again for the values bound to it. Without
///   it, a statement comparing a column to a bound value (`purpose = ?`) where a
///   partial index names a value of that column (`challenges_capillary_latest … WHERE
///   purpose = 'capillary'`), or one that SQLite's statistics (STAT4, on in the
///   bundled build) could plan by value, is planned again at every run with a new
///   value, as if the schema had changed: the cost of parsing it each time, which
///   keeping statements prepared is there to save. A statement that needs a partial
///   index names its value as a literal (`challenges::latest_capillary`).
fn process_settings() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let off: std::os::raw::c_int = 0;
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; SQLite refuses the call
        // (SQLITE_MISUSE) rather than misbehave once it has initialised.
        let _ =
            unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, off) };
        // SAFETY: registers a function SQLite calls with each new connection's handle,
        // which `enable_qpsg` only passes back to SQLite.
        unsafe {
            libsqlite3_sys::sqlite3_auto_extension(Some(enable_qpsg));
        }
    });
}

/// SQLite calls this with each connection it opens (an auto-extension); an error
/// here would fail the open, and `sqlite3_db_config` cannot fail for a known option.
unsafe extern "C" fn enable_qpsg(
    db: *mut libsqlite3_sys::sqlite3,
    _error: *mut *mut std::os::raw::c_char,
    _api: *const libsqlite3_sys::sqlite3_api_routines,
) -> std::os::raw::c_int {
    let on: std::os::raw::c_int = 1;
    // SAFETY: `db` is the open connection SQLite hands to its auto-extensions; the
    // option takes an int (1: on) and a pointer for the new setting, which may be null.
    unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            on,
            std::ptr::null_mut::<std::os::raw::c_int>(),
        )
    }
}

/// Creates the SQLite file at `path`, empty and readable by its owner alone (0600),
/// unless it exists: it holds password hashes, e-mail addresses and phone numbers.
/// SQLite gives the `-wal`, `-shm` and `-journal` files it creates beside it the
/// database file's own mode. An existing file keeps its mode; a `file:` URI is left
/// to SQLite. Failing here is not an error: SQLite then says why it cannot open it.
fn create_private(path: &str) {
    if path.starts_with("file:") {
        return;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let _ = opts.open(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{ConnectionManager, DatabaseUrl, DbConnection, migrate};

    /// SQLite keeps no memory statistics once the gateway has opened a connection:
    /// counting each allocation would take a process-wide lock.
    #[test]
    fn sqlite_counts_no_allocations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counts.db");
        let manager = ConnectionManager::new(DatabaseUrl::Sqlite(path.display().to_string()));
        let mut conn = manager.establish().unwrap();
        migrate(&mut conn).unwrap();
        let (mut current, mut highest) = (0i64, 0i64);
        // SAFETY: reads two counters into the locals given.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_status64(
                libsqlite3_sys::SQLITE_STATUS_MALLOC_COUNT,
                &mut current,
                &mut highest,
                0,
            )
        };
        assert_eq!(rc, libsqlite3_sys::SQLITE_OK);
        assert_eq!((current, highest), (0, 0));
    }

    /// A statement kept prepared is planned once, whatever values are bound to it.
    /// Comparing `purpose = ?` to the partial index on Capillary's challenges used to
    /// make SQLite plan it again at each run with a new value: with 'capillary' bound,
    /// the plan then changed to that index.
    #[test]
    fn sqlite_plans_a_statement_once_for_any_values() {
        #[derive(QueryableByName)]
        struct Plan {
            #[diesel(sql_type = diesel::sql_types::Text)]
            detail: String,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.db");
        let manager = ConnectionManager::new(DatabaseUrl::Sqlite(path.display().to_string()));
        let mut conn = manager.establish().unwrap();
        migrate(&mut conn).unwrap();
        let DbConnection::Sqlite(c) = &mut conn else {
            unreachable!()
        };
        let mut plan = |purpose: &str| -> Vec<String> {
            diesel::sql_query(
                "EXPLAIN QUERY PLAN SELECT id FROM challenges \
                 WHERE subject = ? AND purpose = ? ORDER BY created_at DESC",
            )
            .bind::<diesel::sql_types::Text, _>("capillary:P-x")
            .bind::<diesel::sql_types::Text, _>(purpose)
            .load::<Plan>(c)
            .unwrap()
            .into_iter()
            .map(|p| p.detail)
            .collect()
        };
        let for_summit = plan("summit_login");
        let for_capillary = plan("capillary");
        assert!(
            !for_capillary
                .iter()
                .any(|l| l.contains("challenges_capillary_latest")),
            "{for_capillary:#?}"
        );
        assert_eq!(for_summit, for_capillary);
    }
}
