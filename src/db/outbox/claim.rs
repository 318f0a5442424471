//! Claiming due messages: the lease a dispatcher takes on them, with the state of
//! each one's code, and the failing of those whose code can no longer be used.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::{FAILED, OutboxRow};
use crate::db::DbConnection;
use crate::db::kept::kept;
use crate::db::native::Native;
use crate::db::schema::outbox;

/// A due message this claimer may now send, with what its code says about it.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub row: OutboxRow,
    /// The organisation of its code (whose From and SMS sender it carries) and when the
    /// code expires (until when it is retried); `None` for a message without a code.
    pub code: Option<(i64, i64)>,
}

/// What one claim took.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    /// The messages to send.
    pub live: Vec<ClaimedRow>,
    /// How many claimed messages were failed instead, because their code can no
    /// longer be used (expired, used, superseded or gone).
    pub failed: usize,
}

impl Claim {
    /// How many due messages the claim took, sent or failed: when it is the limit,
    /// more may be due.
    pub fn taken(&self) -> usize {
        self.live.len() + self.failed
    }
}

/// Columns of [`OutboxRow`], for the claim's RETURNING.
const ROW_COLUMNS: &str = "id, challenge_id, channel, destination, destination_masked, payload, \
    state, attempts, next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at";

/// Claims up to `limit` due messages (queued and due, or whose lease ran out) for
/// `claim` (a fresh id per call) until `lease_until`. A claimed message whose code can
/// no longer be used is failed in the same transaction, with `last_error` saying why
/// (followed by the last attempt's error if there was one) and its sealed text
/// dropped; the others are returned to be sent. On PostgreSQL, rows another dispatcher
/// is claiming right now are skipped rather than waited for, and messages whose lease
/// ran out are taken before those that came due.
///
/// Every statement here is bounded by `limit` and reaches rows by key, so its cost
/// does not hang on the planner's statistics: a table that has not been analysed yet
/// (a burst of thousands of messages) is claimed as fast as an analysed one.
///
/// On PostgreSQL the claim is one statement, atomic by itself, and runs without a
/// transaction around it (two round trips fewer); a message then failed for its code
/// is its own statement. Were the process to stop between the two, the message would
/// stay claimed until its lease runs out, and the next claim would fail it.
pub fn claim_due(
    conn: &mut DbConnection,
    claim: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> QueryResult<Claim> {
    // Claims, then fails the messages whose code can no longer be used.
    let claim_and_sort = |conn: &mut DbConnection| -> QueryResult<Claim> {
        let rows = match conn {
            DbConnection::Pg(c) => claim_pg(c, claim, now, lease_until, limit)?,
            DbConnection::Sqlite(_) => claim_sqlite(conn, claim, now, lease_until, limit)?,
        };
        let mut taken = Claim::default();
        for (row, code) in rows {
            if row.challenge_id.is_none() {
                taken.live.push(ClaimedRow { row, code: None });
                continue;
            }
            let usable = match code {
                None => Err(CODE_GONE),
                Some((_, _, Some(_), _)) => Err(CODE_USED),
                Some((_, _, _, Some(_))) => Err(CODE_SUPERSEDED),
                Some((org, expires_at, None, None)) if expires_at > now => Ok((org, expires_at)),
                Some(_) => Err(CODE_EXPIRED),
            };
            match usable {
                Ok(code) => taken.live.push(ClaimedRow {
                    row,
                    code: Some(code),
                }),
                Err(reason) => {
                    let why = match &row.last_error {
                        Some(last) => format!("{reason}; last attempt: {last}"),
                        None => reason.to_string(),
                    };
                    diesel::update(outbox::table.find(&row.id))
                        .set((
                            outbox::state.eq(FAILED),
                            outbox::payload.eq(None::<Vec<u8>>),
                            outbox::lease_until.eq(None::<i64>),
                            outbox::last_error.eq(why),
                            outbox::updated_at.eq(now),
                        ))
                        .exec(conn)?;
                    taken.failed += 1;
                }
            }
        }
        Ok(taken)
    };
    if crate::db::autocommits(conn) {
        return claim_and_sort(conn);
    }
    crate::db::write_transaction(conn, claim_and_sort)
}

/// What a claim reads of a message's code: its organisation, expiry, and when it was
/// used or superseded. `None` for a message whose code is gone (or that has none).
type CodeState = (i64, i64, Option<i64>, Option<i64>);

/// A claimed message, with its code's state, as PostgreSQL's claim answers it.
#[derive(QueryableByName)]
struct ClaimedPg {
    #[diesel(embed)]
    message: OutboxRow,
    #[diesel(sql_type = Nullable<BigInt>)]
    code_org_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    code_expires_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    code_consumed_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    code_superseded_at: Option<i64>,
}

/// The claim on PostgreSQL, in one statement that answers each message with the state
/// of its code.
///
/// The two kinds of due message are read apart, leases run out first, each in the
/// order of the index on (state, next_attempt_at). Every claim and record leaves an
/// old version of the row in that index until vacuum. Read as one condition with OR,
/// the planner takes a bitmap scan, which visits each of those versions at every claim
/// and never marks them dead: a claim read 424 pages after eight seconds of load. A
/// plain index scan marks the dead ones it passes, so the next claim skips them.
///
/// The codes are joined to the claimed messages, one look-up by key per message. Read
/// apart with `id = ANY(…)`, the planner's plan for ten keys, kept prepared from the
/// first claims on a small table, was a sequential scan: 10 ms per claim once the
/// table had grown, for as long as the plan was kept.
fn claim_pg(
    c: &mut diesel::PgConnection,
    claim: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> QueryResult<Vec<(OutboxRow, Option<CodeState>)>> {
    let statement = diesel::sql_query(claim_pg_sql())
        .bind::<Text, _>(claim)
        .bind::<BigInt, _>(lease_until)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(limit);
    // Kept prepared: one text.
    let rows: Vec<ClaimedPg> = kept(statement).load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let code = match (r.code_org_id, r.code_expires_at) {
                (Some(org), Some(expires_at)) => {
                    Some((org, expires_at, r.code_consumed_at, r.code_superseded_at))
                }
                _ => None,
            };
            (r.message, code)
        })
        .collect())
}

/// The text of [`claim_pg`]'s statement.
fn claim_pg_sql() -> String {
    format!(
        "WITH expired AS (SELECT id FROM outbox \
           WHERE state = 'sending' AND lease_until < $3 \
           ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
         due AS (SELECT id FROM outbox \
           WHERE state = 'queued' AND next_attempt_at <= $3 \
           ORDER BY next_attempt_at LIMIT $4 - (SELECT count(*) FROM expired) \
           FOR UPDATE SKIP LOCKED), \
         claimed AS (UPDATE outbox \
           SET state = 'sending', claimed_by = $1, lease_until = $2, updated_at = $3 \
           WHERE id IN (SELECT id FROM expired UNION ALL SELECT id FROM due) \
           RETURNING {ROW_COLUMNS}) \
         SELECT claimed.*, code.org_id AS code_org_id, code.expires_at AS code_expires_at, \
           code.consumed_at AS code_consumed_at, code.superseded_at AS code_superseded_at \
         FROM claimed LEFT JOIN challenges AS code ON code.id = claimed.challenge_id"
    )
}

/// The plan PostgreSQL keeps for the claim once it plans it for any values (as it
/// does for a statement kept prepared after a few runs), one line per step; for the
/// test that the plan reads by index however large the tables grow.
pub fn claim_plan_pg(c: &mut diesel::PgConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    // Outside a transaction, so that a failed EXPLAIN leaves the statement to be
    // deallocated (PREPARE is not undone by a rollback) and the setting reset.
    diesel::sql_query("SET plan_cache_mode = force_generic_plan").execute(c)?;
    let prepare = format!(
        "PREPARE claim_plan (text, bigint, bigint, bigint) AS {}",
        claim_pg_sql()
    );
    let plan = diesel::sql_query(prepare).execute(c).and_then(|_| {
        let plan =
            diesel::sql_query("EXPLAIN EXECUTE claim_plan ('plan', 2, 1, 10)").load::<Line>(c);
        diesel::sql_query("DEALLOCATE claim_plan").execute(c)?;
        plan
    });
    diesel::sql_query("RESET plan_cache_mode").execute(c)?;
    Ok(plan?.into_iter().map(|l| l.line).collect())
}

/// The claim on SQLite: the messages, then their codes.
fn claim_sqlite(
    conn: &mut DbConnection,
    claim: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> QueryResult<Vec<(OutboxRow, Option<CodeState>)>> {
    let DbConnection::Sqlite(c) = conn else {
        unreachable!("called for SQLite only")
    };
    // Kept prepared, one text per limit (at most `delivery.batch_size` of them). The
    // limit is written into the SQL: SQLite plans a statement with a bound LIMIT
    // twice, once more when it first runs.
    let rows: Vec<OutboxRow> = kept(diesel::sql_query(format!(
        "UPDATE outbox SET state = 'sending', claimed_by = ?1, lease_until = ?2, updated_at = ?3 \
         WHERE id IN (SELECT id FROM outbox \
           WHERE (state = 'queued' AND next_attempt_at <= ?3) \
              OR (state = 'sending' AND lease_until < ?3) \
           ORDER BY next_attempt_at LIMIT {limit}) \
         RETURNING {ROW_COLUMNS}"
    ))
    .bind::<Text, _>(claim)
    .bind::<BigInt, _>(lease_until)
    .bind::<BigInt, _>(now))
    .load(c)?;
    let challenge_ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.challenge_id.as_deref())
        .collect();
    let codes: HashMap<String, CodeState> = if challenge_ids.is_empty() {
        HashMap::new()
    } else {
        use crate::db::schema::challenges;
        challenges::table
            .filter(challenges::id.eq_any(&challenge_ids))
            .select((
                challenges::id,
                (
                    challenges::org_id,
                    challenges::expires_at,
                    challenges::consumed_at,
                    challenges::superseded_at,
                ),
            ))
            .all::<(String, CodeState)>(conn)?
            .into_iter()
            .collect()
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            // Messages to several destinations share their code.
            let code = row
                .challenge_id
                .as_ref()
                .and_then(|id| codes.get(id).copied());
            (row, code)
        })
        .collect())
}

/// Why a message whose code can no longer be used was never sent.
pub const CODE_EXPIRED: &str = "the code expired before it could be sent";
pub const CODE_USED: &str = "the code was used before it could be sent";
pub const CODE_SUPERSEDED: &str = "the code was superseded before it could be sent";
pub const CODE_GONE: &str = "the code no longer exists";
