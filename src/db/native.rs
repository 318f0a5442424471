//! Statements run on the backend's own connection.
//!
//! [`DbConnection`] is Diesel's `MultiConnection`. A statement given to it is wrapped in
//! one that writes the statement's whole SQL text each time Diesel walks it: once to
//! ask whether it may be kept prepared, once more to collect its binds. Prepared
//! statements are found by the type of the statement, so the text is built only to be
//! thrown away, twice per statement, and in the writer thread that every SQLite
//! transaction goes through. Profiling the gateway put a fifth of that thread's time
//! there.
//!
//! [`Native`] runs the same statement on the concrete connection inside (SQLite's or
//! PostgreSQL's), where a statement Diesel keeps prepared costs a look-up by its type
//! and its binds. The statements of every OTP cycle run this way; so does the rest of
//! `db`, so that there is one way to run a statement here.

use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::{PgConnection, QueryResult, RunQueryDsl, SqliteConnection};

use super::DbConnection;

/// Runs a statement on the concrete connection inside [`DbConnection`]. The methods
/// are `RunQueryDsl`'s `execute`, `get_result` and `load`, by other names.
/// (A read through `as_select()` names its backend in its type: it is written out
/// for each, with [`crate::per_backend!`].)
pub trait Native: Sized {
    /// `execute`: how many rows the statement changed.
    fn exec(self, conn: &mut DbConnection) -> QueryResult<usize>
    where
        Self: ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection>,
    {
        match conn {
            DbConnection::Sqlite(c) => ExecuteDsl::<SqliteConnection>::execute(self, c),
            DbConnection::Pg(c) => ExecuteDsl::<PgConnection>::execute(self, c),
        }
    }

    /// `get_result`: the one row the statement answers (`NotFound` when none).
    fn one<'q, U>(self, conn: &mut DbConnection) -> QueryResult<U>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConnection::Sqlite(c) => RunQueryDsl::<SqliteConnection>::get_result(self, c),
            DbConnection::Pg(c) => RunQueryDsl::<PgConnection>::get_result(self, c),
        }
    }

    /// `load`: every row the statement answers.
    fn all<'q, U>(self, conn: &mut DbConnection) -> QueryResult<Vec<U>>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConnection::Sqlite(c) => RunQueryDsl::<SqliteConnection>::load(self, c),
            DbConnection::Pg(c) => RunQueryDsl::<PgConnection>::load(self, c),
        }
    }
}

impl<Q> Native for Q {}
