//! The transactional outbox: messages are written with the challenge they carry and
//! sent later by a dispatcher. States: queued → sending → sent; failed once its code
//! can no longer be used (or after `max_attempts`, when an operator bounds them), or
//! cancelled while queued when its code was superseded. A claim is
//! a lease: rows whose claimer died are claimed again once it runs out.
//!
//! The sealed text is dropped once it can no longer be of use: when the message is
//! sent or cancelled, and, for a failed one (which an operator may retry), once its
//! code no longer works.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use super::schema::outbox;

pub const QUEUED: &str = "queued";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";
/// Never sent, because its code stopped working first.
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = outbox)]
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
    diesel::insert_into(outbox::table).values(row).execute(conn)
}

/// Claims up to `limit` due messages for `claim` (a fresh id per call) until
/// `lease_until`, and returns them. On PostgreSQL, rows another dispatcher is claiming
/// right now are skipped rather than waited for.
pub fn claim_due(
    conn: &mut DbConnection,
    claim: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    super::write_transaction(conn, |conn| {
        fail_dead_due(conn, now)?;
        match conn {
            DbConnection::Pg(c) => diesel::sql_query(
                "UPDATE outbox SET state = 'sending', claimed_by = $1, lease_until = $2, updated_at = $3 \
                 WHERE id IN (SELECT id FROM outbox \
                   WHERE (state = 'queued' AND next_attempt_at <= $3) \
                      OR (state = 'sending' AND lease_until < $3) \
                   ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)",
            )
            .bind::<Text, _>(claim)
            .bind::<BigInt, _>(lease_until)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(limit)
            .execute(c)?,
            DbConnection::Sqlite(c) => diesel::sql_query(
                "UPDATE outbox SET state = 'sending', claimed_by = ?1, lease_until = ?2, updated_at = ?3 \
                 WHERE id IN (SELECT id FROM outbox \
                   WHERE (state = 'queued' AND next_attempt_at <= ?3) \
                      OR (state = 'sending' AND lease_until < ?3) \
                   ORDER BY next_attempt_at LIMIT ?4)",
            )
            .bind::<Text, _>(claim)
            .bind::<BigInt, _>(lease_until)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(limit)
            .execute(c)?,
        };
        outbox::table
            .filter(outbox::claimed_by.eq(claim))
            .filter(outbox::state.eq(SENDING))
            .select(OutboxRow::as_select())
            .load(conn)
    })
}

/// Why a message whose code can no longer be used was never sent.
pub const CODE_EXPIRED: &str = "the code expired before it could be sent";
pub const CODE_USED: &str = "the code was used before it could be sent";
pub const CODE_SUPERSEDED: &str = "the code was superseded before it could be sent";
pub const CODE_GONE: &str = "the code no longer exists";

/// Fails, in one statement, every due message (queued and due, or whose lease ran
/// out) whose code can no longer be used: expired, used, superseded or gone. Its
/// `last_error` says why, followed by the last attempt's error if there was one, and
/// its sealed text is dropped. Messages without a challenge are left alone.
fn fail_dead_due(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    // The same SQL on both backends but for the placeholders and, on PostgreSQL, rows
    // another dispatcher is claiming right now, which are skipped.
    let sql = |p: &dyn Fn(usize) -> String, lock: &str| {
        format!(
            "UPDATE outbox SET state = 'failed', payload = NULL, lease_until = NULL, updated_at = {now}, \
             last_error = COALESCE((SELECT CASE \
                 WHEN c.consumed_at IS NOT NULL THEN {used} \
                 WHEN c.superseded_at IS NOT NULL THEN {superseded} \
                 ELSE {expired} END \
               FROM challenges c WHERE c.id = outbox.challenge_id), {gone}) \
               || COALESCE('; last attempt: ' || last_error, '') \
             WHERE id IN (SELECT o.id FROM outbox o \
               WHERE o.challenge_id IS NOT NULL \
                 AND ((o.state = 'queued' AND o.next_attempt_at <= {now}) \
                   OR (o.state = 'sending' AND o.lease_until < {now})) \
                 AND NOT EXISTS (SELECT 1 FROM challenges c WHERE c.id = o.challenge_id \
                   AND c.expires_at > {now} AND c.consumed_at IS NULL AND c.superseded_at IS NULL){lock})",
            now = p(1),
            used = p(2),
            superseded = p(3),
            expired = p(4),
            gone = p(5),
        )
    };
    macro_rules! run {
        ($c:expr, $sql:expr) => {
            diesel::sql_query($sql)
                .bind::<BigInt, _>(now)
                .bind::<Text, _>(CODE_USED)
                .bind::<Text, _>(CODE_SUPERSEDED)
                .bind::<Text, _>(CODE_EXPIRED)
                .bind::<Text, _>(CODE_GONE)
                .execute($c)
        };
    }
    match conn {
        DbConnection::Pg(c) => run!(c, sql(&|i| format!("${i}"), " FOR UPDATE OF o SKIP LOCKED")),
        DbConnection::Sqlite(c) => run!(c, sql(&|i| format!("?{i}"), "")),
    }
}

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
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(ids))
            .filter(outbox::claimed_by.eq(claim)),
    )
    .set((
        outbox::state.eq(SENT),
        outbox::payload.eq(None::<Vec<u8>>),
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::lease_until.eq(None::<i64>),
        outbox::last_error.eq(None::<String>),
        outbox::provider.eq(provider),
        outbox::provider_ref.eq(provider_ref),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)
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
    let n = match retry_at {
        Some(at) => diesel::update(target)
            .set((
                outbox::state.eq(QUEUED),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(at),
                outbox::lease_until.eq(None::<i64>),
                outbox::last_error.eq(error),
                outbox::updated_at.eq(now),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                outbox::state.eq(FAILED),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::lease_until.eq(None::<i64>),
                outbox::last_error.eq(error),
                outbox::updated_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Deletes sent, failed and cancelled messages last touched before `before`.
pub fn delete_final_before(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::state.eq_any([SENT, FAILED, CANCELLED]))
            .filter(outbox::updated_at.lt(before)),
    )
    .execute(conn)
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
    .execute(conn)
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
    .execute(conn)
}

/// The organisation of each of these challenges (whose From and SMS sender their
/// messages carry) and when its code expires (until when its messages are retried).
pub fn challenges_of(
    conn: &mut DbConnection,
    challenge_ids: &[String],
) -> QueryResult<Vec<(String, i64, i64)>> {
    use super::schema::challenges;
    challenges::table
        .filter(challenges::id.eq_any(challenge_ids))
        .select((challenges::id, challenges::org_id, challenges::expires_at))
        .load(conn)
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
    outbox::table
        .filter(outbox::id.eq_any(ids))
        .select(Listing::as_select())
        .load(conn)
}

/// Newest first: with `state`, the messages in that state; without, those still
/// under way or failed, and any other touched since `recent_since`.
pub fn list(
    conn: &mut DbConnection,
    state: Option<&str>,
    recent_since: i64,
    limit: i64,
) -> QueryResult<Vec<Listing>> {
    let mut q = outbox::table
        .select(Listing::as_select())
        .order((outbox::created_at.desc(), outbox::id))
        .limit(limit)
        .into_boxed();
    q = match state {
        Some(s) => q.filter(outbox::state.eq(s.to_string())),
        None => q.filter(
            outbox::state
                .eq_any([QUEUED, SENDING, FAILED])
                .or(outbox::updated_at.ge(recent_since)),
        ),
    };
    q.load(conn)
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
            .first(conn)
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
                    .get_result::<i64>(conn)?
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
            .execute(conn)?;
        Ok(Requeue::Requeued)
    })
}
