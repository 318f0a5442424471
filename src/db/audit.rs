//! The audit trail's rows, and the searches `otpgate audit` runs over them. Every
//! search is written once as SQL with its binds, so that the same statements can be
//! run and explained (the test that reads their plans on both backends).

use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;

use super::DbConnection;
use super::native::Native;
use super::schema::{audit_destinations, audit_events};

/// One audited outcome. Never holds a code or a full destination.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
// None is written as NULL, so the INSERT is the same SQL every time and stays prepared.
#[diesel(treat_none_as_default_value = false)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub user_id: Option<i64>,
    pub transaction_id: Option<String>,
    pub destination_masked: Option<String>,
    pub channel: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
}

/// Writes the event, and one row per destination key (the keyed hashes its
/// destinations are found by; without repeats).
pub fn insert(
    conn: &mut DbConnection,
    e: &AuditEvent,
    destination_keys: &[String],
) -> QueryResult<usize> {
    if let (DbConnection::Pg(c), false) = (&mut *conn, destination_keys.is_empty()) {
        return insert_with_destinations_pg(c, e, destination_keys);
    }
    let n = diesel::insert_into(audit_events::table)
        .values(e)
        .exec(conn)?;
    // One row at a time: batch inserts are not written the same way on both backends.
    for key in destination_keys {
        diesel::insert_into(audit_destinations::table)
            .values((
                audit_destinations::destination_key.eq(key),
                audit_destinations::at.eq(e.at),
                audit_destinations::event_id.eq(&e.id),
                audit_destinations::transaction_id.eq(&e.transaction_id),
            ))
            .exec(conn)?;
    }
    Ok(n)
}

/// On PostgreSQL, the event and its destination rows in one statement (one round
/// trip rather than one per row).
fn insert_with_destinations_pg(
    c: &mut diesel::PgConnection,
    e: &AuditEvent,
    destination_keys: &[String],
) -> QueryResult<usize> {
    use diesel::sql_types::Array;
    const SQL: &str = "WITH event AS (INSERT INTO audit_events \
        (id, at, event, outcome, user_id, transaction_id, destination_masked, channel, request_id) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)) \
        INSERT INTO audit_destinations (destination_key, at, event_id, transaction_id) \
        SELECT key, $2, $1, $6 FROM unnest($10::text[]) AS key \
        RETURNING 1 AS done";
    let statement = bind_event_pg(diesel::sql_query(SQL).into_boxed(), e)
        .bind::<Array<Text>, _>(destination_keys);
    let written = super::kept::kept(statement).rows(c)?;
    Ok(usize::from(written > 0))
}

/// Binds `e`'s columns to a statement of PostgreSQL's, next in its parameters: id, at,
/// event, outcome, user_id, transaction_id, destination_masked, channel, request_id.
pub(super) fn bind_event_pg<'a>(
    q: BoxedSqlQuery<'a, Pg, SqlQuery>,
    e: &'a AuditEvent,
) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    use diesel::sql_types::Nullable;
    q.bind::<Text, _>(&e.id)
        .bind::<BigInt, _>(e.at)
        .bind::<Text, _>(&e.event)
        .bind::<Text, _>(&e.outcome)
        .bind::<Nullable<BigInt>, _>(e.user_id)
        .bind::<Nullable<Text>, _>(&e.transaction_id)
        .bind::<Nullable<Text>, _>(&e.destination_masked)
        .bind::<Nullable<Text>, _>(&e.channel)
        .bind::<Nullable<Text>, _>(&e.request_id)
}

/// What `otpgate audit` asks for. Every filter is optional; those given must all hold.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub user_id: Option<i64>,
    /// The keyed hash of a destination ([`crate::core::channel::Destination::audit_key`]):
    /// the events sent to it, and every other event of their transactions.
    pub destination_key: Option<String>,
    pub transaction_id: Option<String>,
    pub request_id: Option<String>,
    pub event: Option<String>,
    pub outcome: Option<String>,
    /// From and until these times (ms), both included.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// At most this many events, the newest.
    pub limit: i64,
}

/// The most events one search returns, whatever `--limit` says.
pub const MAX_LIMIT: i64 = 10_000;

enum Bind {
    Text(String),
    Int(i64),
}

/// One statement, written with `?` placeholders (numbered for PostgreSQL when run).
struct Statement {
    sql: String,
    binds: Vec<Bind>,
}

const COLUMNS: &str =
    "id, at, event, outcome, user_id, transaction_id, destination_masked, channel, request_id";

impl Search {
    fn limit(&self) -> i64 {
        self.limit.clamp(1, MAX_LIMIT)
    }

    /// The events matching every filter but the destination, and `extra` (a column
    /// in a list), newest first.
    fn events(&self, extra: Option<(&str, &[String])>) -> Statement {
        let mut conds: Vec<String> = Vec::new();
        let mut binds = Vec::new();
        let mut text = |column: &str, value: &Option<String>| {
            if let Some(v) = value {
                conds.push(format!("{column} = ?"));
                binds.push(Bind::Text(v.clone()));
            }
        };
        text("transaction_id", &self.transaction_id);
        text("request_id", &self.request_id);
        text("event", &self.event);
        text("outcome", &self.outcome);
        if let Some(u) = self.user_id {
            conds.push("user_id = ?".into());
            binds.push(Bind::Int(u));
        }
        if let Some((column, values)) = extra {
            conds.push(format!(
                "{column} IN ({})",
                vec!["?"; values.len()].join(", ")
            ));
            binds.extend(values.iter().map(|v| Bind::Text(v.clone())));
        }
        self.time_range(&mut conds, &mut binds);
        let wheres = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        binds.push(Bind::Int(self.limit()));
        Statement {
            sql: format!("SELECT {COLUMNS} FROM audit_events{wheres} ORDER BY at DESC LIMIT ?"),
            binds,
        }
    }

    /// The newest events sent to the destination: their ids and transactions.
    fn sent_to(&self, key: &str) -> Statement {
        let mut conds = vec!["destination_key = ?".to_string()];
        let mut binds = vec![Bind::Text(key.to_string())];
        self.time_range(&mut conds, &mut binds);
        binds.push(Bind::Int(self.limit()));
        Statement {
            sql: format!(
                "SELECT event_id, transaction_id FROM audit_destinations WHERE {} ORDER BY at DESC LIMIT ?",
                conds.join(" AND ")
            ),
            binds,
        }
    }

    fn time_range(&self, conds: &mut Vec<String>, binds: &mut Vec<Bind>) {
        if let Some(s) = self.since {
            conds.push("at >= ?".into());
            binds.push(Bind::Int(s));
        }
        if let Some(u) = self.until {
            conds.push("at <= ?".into());
            binds.push(Bind::Int(u));
        }
    }

    /// Every statement this search runs, with stand-ins for the lists a first
    /// statement would find (for reading their plans).
    fn statements(&self) -> Vec<Statement> {
        match &self.destination_key {
            None => vec![self.events(None)],
            Some(key) => {
                let found = ["00000000-0000-0000-0000-000000000000".to_string()];
                vec![
                    self.sent_to(key),
                    self.events(Some(("id", &found))),
                    self.events(Some(("transaction_id", &found))),
                ]
            }
        }
    }
}

#[derive(QueryableByName)]
struct SentTo {
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    transaction_id: Option<String>,
}

/// The newest events that match `s`, newest first.
pub fn search(conn: &mut DbConnection, s: &Search) -> QueryResult<Vec<AuditEvent>> {
    let Some(key) = &s.destination_key else {
        return load(conn, &s.events(None));
    };
    let sent: Vec<SentTo> = load(conn, &s.sent_to(key))?;
    if sent.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = sent.iter().map(|r| r.event_id.clone()).collect();
    let mut transactions: Vec<String> = sent.into_iter().filter_map(|r| r.transaction_id).collect();
    transactions.sort();
    transactions.dedup();
    let mut events: Vec<AuditEvent> = load(conn, &s.events(Some(("id", &ids))))?;
    if !transactions.is_empty() {
        events.extend(load(
            conn,
            &s.events(Some(("transaction_id", &transactions))),
        )?);
    }
    events.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    events.dedup_by(|a, b| a.id == b.id);
    events.truncate(s.limit() as usize);
    Ok(events)
}

#[derive(QueryableByName)]
struct SqlitePlan {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan of each statement `s` runs, as the database explains it (SQLite's
/// `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`), one string per statement.
pub fn explain(conn: &mut DbConnection, s: &Search) -> QueryResult<Vec<String>> {
    let mut plans = Vec::new();
    for st in s.statements() {
        let explained = Statement {
            sql: match conn {
                DbConnection::Sqlite(_) => format!("EXPLAIN QUERY PLAN {}", st.sql),
                DbConnection::Pg(_) => format!("EXPLAIN {}", st.sql),
            },
            binds: st.binds,
        };
        let lines: Vec<String> = match conn {
            DbConnection::Sqlite(c) => bound::<Sqlite>(&explained, false)
                .load::<SqlitePlan>(c)?
                .into_iter()
                .map(|p| p.detail)
                .collect(),
            DbConnection::Pg(c) => bound::<Pg>(&explained, true)
                .load::<PgPlan>(c)?
                .into_iter()
                .map(|p| p.line)
                .collect(),
        };
        plans.push(format!("{}\n{}", st.sql, lines.join("\n")));
    }
    Ok(plans)
}

fn load<T>(conn: &mut DbConnection, st: &Statement) -> QueryResult<Vec<T>>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    match conn {
        DbConnection::Sqlite(c) => bound::<Sqlite>(st, false).load::<T>(c),
        DbConnection::Pg(c) => bound::<Pg>(st, true).load::<T>(c),
    }
}

/// The statement with its binds, its placeholders numbered (`$1`…) when `numbered`.
fn bound<DB>(st: &Statement, numbered: bool) -> BoxedSqlQuery<'static, DB, SqlQuery>
where
    DB: Backend,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    let sql = if numbered {
        super::numbered_placeholders(&st.sql)
    } else {
        st.sql.clone()
    };
    let mut q = diesel::sql_query(sql).into_boxed::<DB>();
    for b in &st.binds {
        q = match b {
            Bind::Text(s) => q.bind::<Text, _>(s.clone()),
            Bind::Int(i) => q.bind::<BigInt, _>(*i),
        };
    }
    q
}

/// Password logins in the lockout window, for `otpgate status`: how many attempts
/// were refused as locked, and the users (known ones; by UserId) with at least
/// `max_failures` failed logins in it.
pub fn lockouts_since(
    conn: &mut DbConnection,
    since: i64,
    max_failures: i64,
) -> QueryResult<(i64, Vec<i64>)> {
    const EVENT: &str = "login.password";
    let refused: i64 = audit_events::table
        .filter(audit_events::event.eq(EVENT))
        .filter(audit_events::outcome.eq("login_locked"))
        .filter(audit_events::at.gt(since))
        .count()
        .one(conn)?;
    let failing: Vec<(Option<i64>, i64)> = audit_events::table
        .filter(audit_events::event.eq(EVENT))
        .filter(audit_events::outcome.eq("invalid_credentials"))
        .filter(audit_events::at.gt(since))
        .filter(audit_events::user_id.is_not_null())
        .group_by(audit_events::user_id)
        .select((audit_events::user_id, diesel::dsl::count_star()))
        .all(conn)?;
    let users = failing
        .into_iter()
        .filter(|(_, n)| *n >= max_failures)
        .filter_map(|(u, _)| u)
        .collect();
    Ok((refused, users))
}
