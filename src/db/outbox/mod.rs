//! The transactional outbox: messages are written with the challenge they carry and
//! sent later by a dispatcher. States: queued → sending → sent; failed once its code
//! can no longer be used (or after `max_attempts`, when an operator bounds them), or
//! cancelled while queued when its code was superseded. A claim is
//! a lease: rows whose claimer died are claimed again once it runs out.
//!
//! The sealed text is dropped once it can no longer be of use: when the message is
//! sent or cancelled, and, for a failed one (which an operator may retry), once its
//! code no longer works.

mod claim;

use diesel::prelude::*;

pub use claim::{
    CODE_EXPIRED, CODE_GONE, CODE_SUPERSEDED, CODE_USED, Claim, ClaimedRow, claim_due,
    claim_plan_pg,
};

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
    let also = "updated_at < ? AND (state || '') IN ('sent', 'failed', 'cancelled')";
    let table = ("outbox", "id");
    super::delete_batch(conn, table, ("created_at", "<"), Some(also), before, limit)
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

/// How many messages are in each state: every message is read, so this is for
/// `otpgate status`, which an operator runs, and not for anything that repeats.
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

/// The states a message waits or needs an operator in: what the metrics' gauge counts.
/// Sent and cancelled messages are done; they make nearly all of a large outbox.
pub const OPEN_STATES: [&str; 3] = [QUEUED, SENDING, FAILED];

/// How many messages are in each of the `OPEN_STATES`. The index on
/// `(state, next_attempt_at)` finds them without reading the sent and cancelled ones:
/// counting every state took 2.4 s of PostgreSQL's time on an outbox of seven million
/// messages (docs/performance.md), and the refresh task runs every 15 s.
pub fn count_open(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    outbox::table
        .filter(outbox::state.eq_any(OPEN_STATES))
        .group_by(outbox::state)
        .select((outbox::state, diesel::dsl::count_star()))
        .all(conn)
}

/// Messages per open state, and the creation time of the oldest one not yet sent.
pub type Gauges = (Vec<(String, i64)>, Option<i64>);

/// What the metrics' refresh task shows (`otpgate_outbox_messages`): messages by
/// open state, and the creation time of the oldest one not yet sent.
pub fn gauges(conn: &mut DbConnection) -> QueryResult<Gauges> {
    Ok((count_open(conn)?, oldest_queued(conn)?))
}
