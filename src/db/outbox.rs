//! The transactional outbox: messages are written with the challenge they carry and
//! sent later by a dispatcher. States: queued → sending → sent; failed once its code
//! can no longer be used (or after `max_attempts`, when an operator bounds them), or
//! cancelled while queued when its code was superseded. A claim is
//! a lease: rows whose claimer died are claimed again once it runs out.
//!
//! The sealed text is dropped once it can no longer be of use: when the message is
//! sent or cancelled, and, for a failed one (which an operator may retry), once its
//! code no longer works.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::DbConnection;
use super::kept::{kept, kept_here};
use super::native::Native;
use super::schema::outbox;

pub const QUEUED: &str = "queued";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";
/// Never sent, because its code stopped working first.
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = outbox)]
// None is written as NULL, so the INSERT is the same SQL every time and stays prepared.
#[diesel(treat_none_as_default_value = false)]
pub struct OutboxRow {
    pub id: String,
    pub challenge_id: Option<String>,
    pub channel: String,
    pub destination: String,
    pub destination_masked: String,
    pub payload: Option<Vec<u8>>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub claimed_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OutboxRow {
    /// A new message, due now: `payload` is the sealed message.
    pub fn queued(
        id: String,
        challenge_id: Option<String>,
        channel: &str,
        (destination, destination_masked): (String, String),
        payload: Vec<u8>,
        now: i64,
    ) -> OutboxRow {
        OutboxRow {
            id,
            challenge_id,
            channel: channel.to_string(),
            destination,
            destination_masked,
            payload: Some(payload),
            state: QUEUED.to_string(),
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            claimed_by: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

pub fn insert(conn: &mut DbConnection, row: &OutboxRow) -> QueryResult<usize> {
    diesel::insert_into(outbox::table).values(row).exec(conn)
}

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
pub fn claim_due(
    conn: &mut DbConnection,
    claim: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> QueryResult<Claim> {
    super::write_transaction(conn, |conn| {
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
    })
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
        use super::schema::challenges;
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

/// Records successful sends through `provider` (with the reference it gave, if any)
/// and drops the sealed messages, in one statement. Only the claimer whose lease it
/// still is may do so; answers how many were recorded.
pub fn mark_sent(
    conn: &mut DbConnection,
    ids: &[&str],
    claim: &str,
    provider: &str,
    provider_ref: Option<&str>,
    now: i64,
) -> QueryResult<usize> {
    // Kept prepared: one text on PostgreSQL (`= ANY`); on SQLite one per number of
    // messages, at most `delivery.batch_size`.
    let target = outbox::table
        .filter(outbox::id.eq_any(ids))
        .filter(outbox::claimed_by.eq(claim));
    let sent = diesel::update(target).set((
        outbox::state.eq(SENT),
        outbox::payload.eq(None::<Vec<u8>>),
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::lease_until.eq(None::<i64>),
        outbox::last_error.eq(None::<String>),
        outbox::provider.eq(provider),
        outbox::provider_ref.eq(provider_ref),
        outbox::updated_at.eq(now),
    ));
    Ok(kept(sent.returning(outbox::id)).all::<String>(conn)?.len())
}

/// Records a failed attempt: queued again at `retry_at`, or failed for good when
/// `retry_at` is None. A failed message keeps its sealed text while its code works, so
/// an operator can retry it ([`requeue_failed`]).
pub fn mark_attempt_failed(
    conn: &mut DbConnection,
    id: &str,
    claim: &str,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> QueryResult<bool> {
    let target = outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::claimed_by.eq(claim));
    let recorded = match retry_at {
        Some(at) => {
            let again = diesel::update(target).set((
                outbox::state.eq(QUEUED),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(at),
                outbox::lease_until.eq(None::<i64>),
                outbox::last_error.eq(error),
                outbox::updated_at.eq(now),
            ));
            kept_here!(again.returning(outbox::id)).one::<String>(conn)
        }
        None => {
            let failed = diesel::update(target).set((
                outbox::state.eq(FAILED),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::lease_until.eq(None::<i64>),
                outbox::last_error.eq(error),
                outbox::updated_at.eq(now),
            ));
            kept_here!(failed.returning(outbox::id)).one::<String>(conn)
        }
    };
    Ok(recorded.optional()?.is_some())
}

/// Deletes at most `limit` sent, failed and cancelled messages last touched before
/// `before`. A message is created before it is last touched, so the index on
/// `created_at` finds them; `updated_at`, which every claim and record moves, has none.
pub fn delete_final_before(conn: &mut DbConnection, before: i64, limit: i64) -> QueryResult<usize> {
    // The states are SENT, FAILED and CANCELLED. `state || ''` keeps the planner off
    // the index on state, which would read every sent message there is.
    let condition =
        "created_at < ? AND updated_at < ? AND (state || '') IN ('sent', 'failed', 'cancelled')";
    super::delete_batch(conn, ("outbox", "id"), condition, before, limit)
}

/// Cancels the queued messages of these challenges (one being sent is left to finish).
pub fn cancel_queued(
    conn: &mut DbConnection,
    challenge_ids: &[String],
    why: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::challenge_id.eq_any(challenge_ids))
            .filter(outbox::state.eq(QUEUED)),
    )
    .set((
        outbox::state.eq(CANCELLED),
        outbox::payload.eq(None::<Vec<u8>>),
        outbox::last_error.eq(why),
        outbox::updated_at.eq(now),
    ))
    .exec(conn)
}

/// Drops the sealed texts of failed messages whose code no longer works (expired,
/// used or superseded, or whose challenge is gone): they can never be retried.
pub fn drop_dead_payloads(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    use super::schema::challenges;
    let live = challenges::table
        .filter(challenges::expires_at.gt(now))
        .filter(challenges::consumed_at.is_null())
        .filter(challenges::superseded_at.is_null())
        .select(challenges::id);
    diesel::update(
        outbox::table
            .filter(outbox::state.eq(FAILED))
            .filter(outbox::payload.is_not_null())
            .filter(
                outbox::challenge_id
                    .is_null()
                    .or(outbox::challenge_id.ne_all(live.nullable())),
            ),
    )
    .set(outbox::payload.eq(None::<Vec<u8>>))
    .exec(conn)
}

/// A message as `otpgate outbox list` and waiting callers see it: everything but the
/// full destination and the sealed text.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct Listing {
    pub id: String,
    pub challenge_id: Option<String>,
    pub channel: String,
    pub destination_masked: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub provider: Option<String>,
    pub provider_ref: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<Listing>> {
    crate::per_backend!(conn, |c| outbox::table
        .filter(outbox::id.eq_any(ids))
        .select(Listing::as_select())
        .load(c))
}

/// Newest first: with `state`, the messages in that state; without, those still
/// under way or failed, and any other touched since `recent_since`.
pub fn list(
    conn: &mut DbConnection,
    state: Option<&str>,
    recent_since: i64,
    limit: i64,
) -> QueryResult<Vec<Listing>> {
    crate::per_backend!(conn, |c| {
        let q = outbox::table
            .select(Listing::as_select())
            .order((outbox::created_at.desc(), outbox::id))
            .limit(limit)
            .into_boxed();
        let q = match state {
            Some(s) => q.filter(outbox::state.eq(s.to_string())),
            None => q.filter(
                outbox::state
                    .eq_any([QUEUED, SENDING, FAILED])
                    .or(outbox::updated_at.ge(recent_since)),
            ),
        };
        q.load(c)
    })
}

#[derive(Debug, PartialEq, Eq)]
pub enum Requeue {
    Requeued,
    NotFound,
    /// Only failed messages are retried; this one is in the given state.
    NotFailed(String),
    /// Its code no longer works (or its text is gone): a new code must be asked for.
    CodeGone,
}

/// Queues a failed message again, due now, with a fresh set of attempts, if its code
/// still works.
pub fn requeue_failed(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<Requeue> {
    use super::schema::challenges;
    super::write_transaction(conn, |conn| {
        let row: Option<(String, Option<String>, bool)> = outbox::table
            .find(id)
            .select((
                outbox::state,
                outbox::challenge_id,
                outbox::payload.is_not_null(),
            ))
            .one(conn)
            .optional()?;
        let Some((state, challenge, has_text)) = row else {
            return Ok(Requeue::NotFound);
        };
        if state != FAILED {
            return Ok(Requeue::NotFailed(state));
        }
        let live = match challenge {
            Some(c) => {
                challenges::table
                    .find(c)
                    .filter(challenges::expires_at.gt(now))
                    .filter(challenges::consumed_at.is_null())
                    .filter(challenges::superseded_at.is_null())
                    .count()
                    .one::<i64>(conn)?
                    > 0
            }
            None => false,
        };
        if !has_text || !live {
            return Ok(Requeue::CodeGone);
        }
        diesel::update(outbox::table.find(id).filter(outbox::state.eq(FAILED)))
            .set((
                outbox::state.eq(QUEUED),
                outbox::attempts.eq(0),
                outbox::next_attempt_at.eq(now),
                outbox::lease_until.eq(None::<i64>),
                outbox::claimed_by.eq(None::<String>),
                outbox::updated_at.eq(now),
            ))
            .exec(conn)?;
        Ok(Requeue::Requeued)
    })
}

/// The messages of these codes (`challenge_id`), oldest first: what `otpgate audit`
/// shows as their deliveries.
pub fn of_challenges(
    conn: &mut DbConnection,
    challenge_ids: &[String],
) -> QueryResult<Vec<Listing>> {
    if challenge_ids.is_empty() {
        return Ok(Vec::new());
    }
    crate::per_backend!(conn, |c| outbox::table
        .filter(outbox::challenge_id.eq_any(challenge_ids))
        .order(outbox::created_at)
        .select(Listing::as_select())
        .load(c))
}

/// How many messages are in each state.
pub fn count_by_state(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    outbox::table
        .group_by(outbox::state)
        .select((outbox::state, diesel::dsl::count_star()))
        .all(conn)
}

/// When the oldest message still queued was written, if any is.
pub fn oldest_queued(conn: &mut DbConnection) -> QueryResult<Option<i64>> {
    outbox::table
        .filter(outbox::state.eq_any([QUEUED, SENDING]))
        .select(diesel::dsl::min(outbox::created_at))
        .one(conn)
}

/// Messages per state, and the creation time of the oldest one not yet sent.
pub type Gauges = (Vec<(String, i64)>, Option<i64>);

/// What the metrics' refresh task shows (`otpgate_outbox_messages`): messages by
/// state, and the creation time of the oldest one not yet sent.
pub fn gauges(conn: &mut DbConnection) -> QueryResult<Gauges> {
    Ok((count_by_state(conn)?, oldest_queued(conn)?))
}
