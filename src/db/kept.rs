//! Statements kept prepared that Diesel would prepare again each time.
//!
//! Diesel keeps a prepared statement per SQL text, except for kinds whose text it
//! cannot bound: every UPDATE, every upsert and every raw SQL statement are parsed and
//! planned again each time they run (on PostgreSQL as an unnamed statement). Each of
//! ours has one text, or a handful, whatever the request; several run in every OTP
//! cycle. [`kept`] marks such a statement as safe to keep: Diesel then keeps it under
//! its SQL text, as it does its own cacheable statements.
//!
//! Only statements that answer rows (`load`, `get_result`) are kept: `execute` hands
//! Diesel a reference to the statement, and Diesel asks a reference whether it may be
//! kept without asking the statement itself. The kept UPDATEs therefore say what they
//! changed with `RETURNING`.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A statement Diesel keeps prepared under its SQL text. Only for statements whose
/// text comes from this crate and takes a bounded number of shapes: the cache holds
/// one entry per text for the connection's life.
#[derive(Debug, Clone, Copy)]
pub struct Kept<Q>(Q);

/// `query`, kept prepared (see [`Kept`]).
pub fn kept<Q>(query: Q) -> Kept<Q> {
    Kept(query)
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Kept<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No identity of its type: the statement is found by its SQL text, so two texts of
/// one type (an update with or without a column) are two statements.
impl<Q> QueryId for Kept<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Kept<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Kept<Q> {}

/// The one column a raw statement answers per row it wrote (`RETURNING 1 AS done`),
/// so that Diesel loads it, and keeps it (see the module's note on `execute`).
#[derive(diesel::QueryableByName)]
pub(super) struct Done {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    done: i32,
}

impl<Q> Kept<Q> {
    /// Runs a raw statement that answers `1 AS done` per row it wrote; how many.
    pub(super) fn rows<'a, Conn>(self, conn: &mut Conn) -> QueryResult<usize>
    where
        Self: diesel::query_dsl::LoadQuery<'a, Conn, Done>,
    {
        Ok(self
            .load::<Done>(conn)?
            .iter()
            .map(|d| d.done as usize)
            .sum())
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::InstrumentationEvent;

    use super::super::work::recorded;
    use super::super::{DbConnection, challenges, limits, outbox, sessions};

    /// Each statement of an OTP cycle that Diesel would prepare at every run is
    /// prepared on its first run and reused on the second.
    #[test]
    fn the_cycles_updates_and_upserts_are_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, prepared) = recorded(dir.path(), |e| match e {
            InstrumentationEvent::CacheQuery { sql, .. } => Some(sql.to_string()),
            _ => None,
        });
        type Step<'a> = Box<dyn Fn(&mut DbConnection) + 'a>;
        let steps: Vec<(&str, Step)> = vec![
            (
                "send-limit lock",
                Box::new(|c| {
                    limits::lock_destination(c, "d").unwrap();
                }),
            ),
            (
                "send record",
                Box::new(|c| limits::record_send(c, "d", 5).unwrap()),
            ),
            (
                "supersede",
                Box::new(|c| {
                    challenges::supersede_open(c, "s", "login", 5).unwrap();
                }),
            ),
            (
                "right code",
                Box::new(|c| {
                    challenges::spend_attempt(c, "x", true, 5).unwrap();
                }),
            ),
            (
                "right code, in one statement",
                Box::new(|c| {
                    let who = challenges::Claimant {
                        subject: Some("s"),
                        purposes: ("login", "second_factor"),
                        device_id: None,
                    };
                    challenges::consume_right_code(c, "x", &[1; 32], &who, 5).unwrap();
                }),
            ),
            (
                "wrong code",
                Box::new(|c| {
                    challenges::spend_attempt(c, "x", false, 5).unwrap();
                }),
            ),
            (
                "re-validation",
                Box::new(|c| {
                    challenges::spend_revalidation_attempt(c, "x", 5).unwrap();
                }),
            ),
            (
                "claim",
                Box::new(|c| {
                    outbox::claim_due(c, "w", 5, 10, 64).unwrap();
                }),
            ),
            (
                "sent",
                Box::new(|c| {
                    outbox::mark_sent(c, &["m"], "w", "sms", None, 5).unwrap();
                }),
            ),
            (
                "failed",
                Box::new(|c| {
                    outbox::mark_attempt_failed(c, "m", "w", "e", None, 5).unwrap();
                }),
            ),
            (
                "session",
                Box::new(|c| {
                    sessions::touch(c, "t", 5).unwrap();
                }),
            ),
        ];
        for (what, step) in &steps {
            let before = prepared.lock().unwrap().len();
            step(&mut conn);
            let first = prepared.lock().unwrap().len();
            assert!(
                first > before,
                "{what}: not kept prepared: {:#?}",
                prepared.lock().unwrap()
            );
            step(&mut conn);
            assert_eq!(
                prepared.lock().unwrap().len(),
                first,
                "{what}: prepared again"
            );
        }
    }
}
