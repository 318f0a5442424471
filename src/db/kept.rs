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
//!
//! A statement with one text wherever it runs is kept by [`kept_here!`] instead, under
//! a type declared where it is written ([`KeptAt`]): found by that type, its text is
//! not written out and hashed at every run. The statements of each OTP cycle are.

use std::marker::PhantomData;

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

/// A statement Diesel keeps prepared under a type of its own, `Site`, rather than its
/// SQL text: made by [`kept_here!`], which declares a new `Site` where it is written.
/// Looking a statement up by its text means writing the text out at every run, and
/// hashing it; by a type, neither. Only for a statement that has one text wherever it
/// runs: no list of values (`eq_any`), no changeset of optional values, and not in a
/// generic function (whose instances would share the site). Debug builds check this at
/// every run, so the tests would find a statement with two texts.
pub struct KeptAt<Site, Q> {
    query: Q,
    site: PhantomData<Site>,
}

impl<Site, Q> KeptAt<Site, Q> {
    pub fn new(query: Q) -> KeptAt<Site, Q> {
        KeptAt {
            query,
            site: PhantomData,
        }
    }
}

/// `$query`, kept prepared under a type declared here (see [`KeptAt`]).
macro_rules! kept_here {
    ($query:expr $(,)?) => {{
        struct Site;
        $crate::db::kept::KeptAt::<Site, _>::new($query)
    }};
}
pub(crate) use kept_here;

impl<DB, Site, Q> QueryFragment<DB> for KeptAt<Site, Q>
where
    DB: Backend + 'static,
    DB::QueryBuilder: Default,
    Site: 'static,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        #[cfg(debug_assertions)]
        one_text::<Site, DB>(&self.query, _backend)?;
        Ok(true)
    }
}

impl<Site: 'static, Q> QueryId for KeptAt<Site, Q> {
    type QueryId = Site;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Site, Q: Query> Query for KeptAt<Site, Q> {
    type SqlType = Q::SqlType;
}

impl<Site, Q, Conn> RunQueryDsl<Conn> for KeptAt<Site, Q> {}

/// Fails when the statement of a site does not have the text it had at the site's
/// first run (per backend).
#[cfg(debug_assertions)]
fn one_text<Site: 'static, DB: Backend + 'static>(
    query: &impl QueryFragment<DB>,
    backend: &DB,
) -> QueryResult<()>
where
    DB::QueryBuilder: Default,
{
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use diesel::query_builder::QueryBuilder;

    static TEXTS: OnceLock<Mutex<HashMap<(TypeId, TypeId), String>>> = OnceLock::new();
    let mut builder = DB::QueryBuilder::default();
    query.to_sql(&mut builder, backend)?;
    let sql = builder.finish();
    let mut texts = TEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let first = texts
        .entry((TypeId::of::<Site>(), TypeId::of::<DB>()))
        .or_insert_with(|| sql.clone());
    if *first != sql {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("a statement kept by its site has two texts: {first} and {sql}").into(),
        ));
    }
    Ok(())
}

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

    /// A statement kept by its site that turns out to have two texts (here a list of
    /// values, one long and then two) fails in a debug build instead of running the
    /// first text's statement with the second's binds.
    #[test]
    #[cfg(debug_assertions)]
    fn a_site_with_two_texts_fails_rather_than_run_the_wrong_statement() {
        use diesel::prelude::*;

        use super::super::native::Native;
        use super::super::schema::challenges;
        fn open(c: &mut DbConnection, ids: &[&str]) -> QueryResult<Vec<String>> {
            let q = diesel::update(challenges::table.filter(challenges::id.eq_any(ids)))
                .set(challenges::attempts.eq(challenges::attempts + 1))
                .returning(challenges::id);
            kept_here!(q).all(c)
        }
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, _) = recorded(dir.path(), |_| None);
        assert_eq!(open(&mut conn, &["a"]).unwrap(), Vec::<String>::new());
        assert_eq!(open(&mut conn, &["b"]).unwrap(), Vec::<String>::new());
        let err = open(&mut conn, &["a", "b"]).unwrap_err().to_string();
        assert!(err.contains("two texts"), "{err}");
    }

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
                Box::new(|c| {
                    let kept = limits::Kept {
                        times: "5".into(),
                        window_ms: 1000,
                        max: 1,
                    };
                    limits::record_send(c, "d", 5, &kept).unwrap();
                }),
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
                    let event = super::super::audit::AuditEvent {
                        id: "e".into(),
                        at: 5,
                        event: "otp.verify".into(),
                        outcome: "ok".into(),
                        user_id: None,
                        transaction_id: None,
                        destination_masked: None,
                        channel: None,
                        request_id: None,
                    };
                    let code = challenges::RightCode {
                        id: "x",
                        code_hash: vec![1; 32],
                        who,
                        event,
                    };
                    challenges::consume_right_code(c, &code, 5).unwrap();
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
