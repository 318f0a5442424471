//! The database a test runs on: a temporary SQLite file, or a new PostgreSQL database
//! when OTPGATE_TEST_POSTGRES_URL is set.

use std::io::Write;
use std::sync::Once;

use diesel::prelude::*;

pub const PG_ENV: &str = "OTPGATE_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend: `both!(name)` makes `name::sqlite` and
/// `name::postgres` from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::support::postgres_url().is_some() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        }
    )*};
}

/// The PostgreSQL server for tests, or None (said once on the output) when unset.
pub fn postgres_url() -> Option<String> {
    static SAID: Once = Once::new();
    let url = std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty());
    if url.is_none() {
        SAID.call_once(|| {
            // Straight to stderr, past the test harness's capture.
            let _ = writeln!(
                std::io::stderr(),
                "note: PostgreSQL tests skipped: {PG_ENV} is not set \
                 (e.g. {PG_ENV}=postgres://postgres@127.0.0.1:5432/test runs them)"
            );
        });
    }
    url
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = sqlite_url(dir.path(), "otpgate.db");
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_url().expect("PostgreSQL URL");
                let name = format!("otpgate_t_{}", uuid::Uuid::new_v4().simple());
                let mut c = diesel::PgConnection::establish(&admin)
                    .expect("connect to the test PostgreSQL server");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .expect("create test database");
                TestDb {
                    url: with_database(&admin, &name),
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg
            && let Ok(mut c) = diesel::PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c);
        }
    }
}

/// The URL of an SQLite file `name` in `dir`.
pub fn sqlite_url(dir: &std::path::Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(name).display())
}

/// A scratch directory with the URL of an SQLite database `name` in it, for the
/// commands a test runs as an operator would.
pub fn scratch_sqlite(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(dir.path(), name);
    (dir, url)
}

/// The same server URL with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let server = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    format!("{server}/{name}{query}")
}
