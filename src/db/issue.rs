//! What an issue writes once its send limits have been checked: the subject's open
//! challenge superseded (its queued messages cancelled), the new challenge, the send
//! recorded in each destination's row, the messages queued, the audit event.
//!
//! On PostgreSQL that is one statement. Each statement there is a round trip to the
//! server, and the issue holds a pooled connection for all of them: written one by one,
//! these five were half of the round trips of an issue and set how many cycles a
//! second the pool could serve (docs/performance.md). On SQLite the statements never
//! leave the process; they run one after the other.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Binary, Nullable, Text};

use super::DbConnection;
use super::audit::{self, AuditEvent};
use super::challenges::{self, Challenge};
use super::kept::kept_here;
use super::limits::{self, Kept};
use super::outbox::{self, OutboxRow};

/// The writes of one issue.
pub struct Writes<'a> {
    pub now: i64,
    /// Written with a new numeric Id; its subject and purpose name the open challenge
    /// it supersedes.
    pub challenge: &'a Challenge,
    /// The keys of the destinations' send limits, each recorded as sent to.
    pub limit_keys: &'a [String],
    /// What each destination's row keeps of its sends, with this one.
    pub recent_sends: &'a [Kept],
    pub messages: &'a [OutboxRow],
    pub event: &'a AuditEvent,
    /// The audit event's destination keys.
    pub destination_keys: &'a [String],
}

/// Writes them all, in the caller's transaction; the new challenge's numeric Id.
pub fn write(conn: &mut DbConnection, w: &Writes<'_>) -> QueryResult<i64> {
    if let DbConnection::Pg(c) = conn {
        return write_pg(c, w);
    }
    let c = w.challenge;
    challenges::supersede_open(conn, &c.subject, &c.purpose, w.now)?;
    let numeric_id = challenges::insert(conn, c)?;
    for (key, recent) in w.limit_keys.iter().zip(w.recent_sends) {
        limits::record_send(conn, key, w.now, recent)?;
    }
    for m in w.messages {
        outbox::insert(conn, m)?;
    }
    audit::insert(conn, w.event, w.destination_keys)?;
    Ok(numeric_id)
}

/// The same writes as a chain of data-modifying CTEs. They all see the database as it
/// was when the statement began: the supersede cannot reach the new challenge, nor the
/// cancel its messages. PostgreSQL runs them in no set order, so the new challenge is
/// selected from the count of superseded ones: the subject's open challenge is closed
/// before the new one meets the unique index of open challenges. The foreign key of
/// the messages to the challenge is checked when the statement ends.
const SQL: &str = "WITH superseded AS (\
        UPDATE challenges SET superseded_at = $1 \
        WHERE subject = $4 AND purpose = $5 AND consumed_at IS NULL AND superseded_at IS NULL \
        RETURNING id), \
    cancelled AS (\
        UPDATE outbox SET state = 'cancelled', payload = NULL, last_error = $2, updated_at = $1 \
        WHERE challenge_id IN (SELECT id FROM superseded) AND state = 'queued'), \
    challenge AS (\
        INSERT INTO challenges (id, reference, subject, purpose, user_id, org_id, channels, \
            destination_masked, device_id, code_hash, created_at, expires_at, attempts, \
            max_attempts, consumed_at, superseded_at, change_request_id, numeric_id) \
        SELECT $3, $6, $4, $5, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
            nextval('challenge_numeric_id') \
        FROM (SELECT count(*) FROM superseded) AS superseded_first \
        RETURNING numeric_id), \
    sent AS (\
        UPDATE send_limits SET last_sent_at = $1, recent_sends = s.recent, \
            sends_window_ms = s.window_ms, sends_max = s.max \
        FROM unnest($20::text[], $21::text[], $46::int8[], $47::int8[]) \
            AS s (recent, key, window_ms, max) \
        WHERE destination_key = s.key), \
    queued AS (\
        INSERT INTO outbox (id, challenge_id, channel, destination, destination_masked, \
            payload, state, attempts, next_attempt_at, lease_until, claimed_by, last_error, \
            created_at, updated_at) \
        SELECT * FROM unnest($22::text[], $23::text[], $24::text[], $25::text[], \
            $26::text[], $27::bytea[], $28::text[], $29::int8[], $30::int8[], $31::int8[], \
            $32::text[], $33::text[], $34::int8[], $35::int8[])), \
    event AS (\
        INSERT INTO audit_events (id, at, event, outcome, user_id, transaction_id, \
            destination_masked, channel, request_id) \
        VALUES ($36, $37, $38, $39, $40, $41, $42, $43, $44)), \
    event_destinations AS (\
        INSERT INTO audit_destinations (destination_key, at, event_id, transaction_id) \
        SELECT key, $37, $36, $41 FROM unnest($45::text[]) AS key) \
    SELECT numeric_id FROM challenge";

#[derive(QueryableByName)]
struct NumericId {
    #[diesel(sql_type = BigInt)]
    numeric_id: i64,
}

fn write_pg(conn: &mut diesel::PgConnection, w: &Writes<'_>) -> QueryResult<i64> {
    let c = w.challenge;
    let ms = w.messages;
    let sent = w.recent_sends;
    fn column<'a, R, T>(rows: &'a [R], f: impl Fn(&'a R) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    let statement = diesel::sql_query(SQL)
        .into_boxed()
        .bind::<BigInt, _>(w.now)
        .bind::<Text, _>(challenges::SUPERSEDED)
        .bind::<Text, _>(&c.id)
        .bind::<Text, _>(&c.subject)
        .bind::<Text, _>(&c.purpose)
        .bind::<Text, _>(&c.reference)
        .bind::<Nullable<BigInt>, _>(c.user_id)
        .bind::<BigInt, _>(c.org_id)
        .bind::<Text, _>(&c.channels)
        .bind::<Text, _>(&c.destination_masked)
        .bind::<Nullable<Text>, _>(&c.device_id)
        .bind::<Binary, _>(&c.code_hash)
        .bind::<BigInt, _>(c.created_at)
        .bind::<BigInt, _>(c.expires_at)
        .bind::<BigInt, _>(c.attempts)
        .bind::<BigInt, _>(c.max_attempts)
        .bind::<Nullable<BigInt>, _>(c.consumed_at)
        .bind::<Nullable<BigInt>, _>(c.superseded_at)
        .bind::<Nullable<Text>, _>(&c.change_request_id)
        .bind::<Array<Text>, _>(column(sent, |k| &k.times))
        .bind::<Array<Text>, _>(w.limit_keys)
        .bind::<Array<Text>, _>(column(ms, |m| &m.id))
        .bind::<Array<Nullable<Text>>, _>(column(ms, |m| m.challenge_id.as_ref()))
        .bind::<Array<Text>, _>(column(ms, |m| &m.channel))
        .bind::<Array<Text>, _>(column(ms, |m| &m.destination))
        .bind::<Array<Text>, _>(column(ms, |m| &m.destination_masked))
        .bind::<Array<Nullable<Binary>>, _>(column(ms, |m| m.payload.as_ref()))
        .bind::<Array<Text>, _>(column(ms, |m| &m.state))
        .bind::<Array<BigInt>, _>(column(ms, |m| m.attempts))
        .bind::<Array<BigInt>, _>(column(ms, |m| m.next_attempt_at))
        .bind::<Array<Nullable<BigInt>>, _>(column(ms, |m| m.lease_until))
        .bind::<Array<Nullable<Text>>, _>(column(ms, |m| m.claimed_by.as_ref()))
        .bind::<Array<Nullable<Text>>, _>(column(ms, |m| m.last_error.as_ref()))
        .bind::<Array<BigInt>, _>(column(ms, |m| m.created_at))
        .bind::<Array<BigInt>, _>(column(ms, |m| m.updated_at));
    let statement = audit::bind_event_pg(statement, w.event)
        .bind::<Array<Text>, _>(w.destination_keys)
        .bind::<Array<BigInt>, _>(column(sent, |k| k.window_ms))
        .bind::<Array<BigInt>, _>(column(sent, |k| k.max));
    let written: NumericId = kept_here!(statement).get_result(conn)?;
    Ok(written.numeric_id)
}
