use diesel::prelude::*;

use super::DbConnection;
use super::audit::AuditEvent;
use super::kept::kept_here;
use super::native::Native;
use super::schema::challenges;
use super::sessions::Opening;
use super::users::User;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = challenges)]
// None is written as NULL, so the INSERT is the same SQL every time and stays prepared.
#[diesel(treat_none_as_default_value = false)]
pub struct Challenge {
    pub id: String,
    pub reference: String,
    pub subject: String,
    pub purpose: String,
    pub user_id: Option<i64>,
    pub org_id: i64,
    pub channels: String,
    pub destination_masked: String,
    pub device_id: Option<String>,
    pub code_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub consumed_at: Option<i64>,
    pub superseded_at: Option<i64>,
    /// The short numeric Id TwoFactor callers see. Written by [`insert`], which on
    /// PostgreSQL draws it from the sequence in the same statement.
    #[diesel(skip_insertion)]
    pub numeric_id: Option<i64>,
    /// Handed back by a TwoFactor validation that asks for one.
    pub change_request_id: Option<String>,
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Challenge>> {
    crate::per_backend!(conn, |c| challenges::table
        .find(id)
        .select(Challenge::as_select())
        .get_result(c))
    .optional()
}

/// Inserts `c` with a new numeric Id, and returns the Id: on PostgreSQL the
/// sequence's next value, drawn by the INSERT itself; on SQLite the largest plus one,
/// safe under the write lock every issue holds. `c.numeric_id` is not read.
pub fn insert(conn: &mut DbConnection, c: &Challenge) -> QueryResult<i64> {
    if let DbConnection::Pg(pg) = conn {
        return diesel::insert_into(challenges::table)
            .values((
                c,
                challenges::numeric_id.eq(nextval("challenge_numeric_id").nullable()),
            ))
            .returning(challenges::numeric_id.assume_not_null())
            .get_result::<i64>(pg);
    }
    let id = next_numeric_id(conn)?;
    diesel::insert_into(challenges::table)
        .values((c, challenges::numeric_id.eq(id)))
        .exec(conn)?;
    Ok(id)
}

/// Why the queued messages of a superseded challenge were cancelled.
pub(super) const SUPERSEDED: &str = "cancelled: a newer code superseded it";

/// Closes the open challenge of a subject and purpose, if any: its code stops working,
/// and its messages still waiting in the outbox are cancelled.
pub fn supersede_open(
    conn: &mut DbConnection,
    subject: &str,
    purpose: &str,
    now: i64,
) -> QueryResult<usize> {
    let open: Vec<String> = kept_here!(
        diesel::update(
            challenges::table
                .filter(challenges::subject.eq(subject))
                .filter(challenges::purpose.eq(purpose))
                .filter(challenges::consumed_at.is_null())
                .filter(challenges::superseded_at.is_null()),
        )
        .set(challenges::superseded_at.eq(now))
        .returning(challenges::id),
    )
    .all(conn)?;
    if open.is_empty() {
        return Ok(0);
    }
    super::outbox::cancel_queued(conn, &open, SUPERSEDED, now)?;
    Ok(open.len())
}

/// Spends one attempt, and consumes the challenge when `correct`, in one conditional
/// statement: it only touches a challenge that is still open, unexpired and has an
/// attempt left. Returns whether it did. Concurrent callers can therefore never spend
/// more than `max_attempts`, and at most one of them consumes the challenge.
pub fn spend_attempt(
    conn: &mut DbConnection,
    id: &str,
    correct: bool,
    now: i64,
) -> QueryResult<bool> {
    let target = challenges::table
        .filter(challenges::id.eq(id))
        .filter(challenges::consumed_at.is_null())
        .filter(challenges::superseded_at.is_null())
        .filter(challenges::expires_at.gt(now))
        .filter(challenges::attempts.lt(challenges::max_attempts));
    let spent = if correct {
        let spend = diesel::update(target).set((
            challenges::attempts.eq(challenges::attempts + 1),
            challenges::consumed_at.eq(now),
        ));
        kept_here!(spend.returning(challenges::id)).one::<String>(conn)
    } else {
        let spend = diesel::update(target).set(challenges::attempts.eq(challenges::attempts + 1));
        kept_here!(spend.returning(challenges::id)).one::<String>(conn)
    };
    Ok(spent.optional()?.is_some())
}

/// Who may verify a challenge, as [`consume_right_code`] checks it: the subject, when
/// given; one or two purposes; the device a challenge bound to one was issued for.
pub struct Claimant<'a> {
    pub subject: Option<&'a str>,
    pub purposes: (&'a str, &'a str),
    pub device_id: Option<&'a str>,
}

/// A right code, as its one statement checks and records it: the challenge's id, the
/// code's keyed hash, who claims it, and the audit event of its success.
pub struct RightCode<'a> {
    pub id: &'a str,
    pub code_hash: Vec<u8>,
    pub who: Claimant<'a>,
    pub event: AuditEvent,
}

/// A right code's whole check in one statement: consumes the challenge (one attempt
/// spent) when `code.code_hash` is the hash it stores and it is open, unexpired, has an
/// attempt left and is the claimant's, and writes `code.event`, the audit event of its
/// success, whose user, transaction and masked destination are taken from the
/// challenge. Returns it as consumed; `None` when any condition fails, having changed
/// nothing, so that the caller can find out which. On PostgreSQL the event is written
/// by the same statement (one round trip rather than two).
///
/// The hash compared here is keyed: its bytes tell nothing without the key, so a
/// comparison whose time depends on them gives nothing away.
pub fn consume_right_code(
    conn: &mut DbConnection,
    code: &RightCode<'_>,
    now: i64,
) -> QueryResult<Option<Challenge>> {
    if let DbConnection::Pg(c) = conn {
        return consume_right_code_pg(c, code, now);
    }
    let RightCode {
        id,
        code_hash,
        who,
        event,
    } = code;
    use diesel::IntoSql;
    use diesel::sql_types::{Nullable, Text};
    let target = challenges::table
        .filter(challenges::id.eq(id))
        .filter(challenges::code_hash.eq(code_hash.as_slice()))
        .filter(challenges::consumed_at.is_null())
        .filter(challenges::superseded_at.is_null())
        .filter(challenges::expires_at.gt(now))
        .filter(challenges::attempts.lt(challenges::max_attempts))
        .filter(
            (who.subject.into_sql::<Nullable<Text>>().is_null())
                .or(challenges::subject.nullable().eq(who.subject)),
        )
        .filter(
            challenges::purpose
                .eq(who.purposes.0)
                .or(challenges::purpose.eq(who.purposes.1)),
        )
        .filter(
            challenges::device_id
                .is_null()
                .or(challenges::device_id.eq(who.device_id)),
        );
    let consume = diesel::update(target).set((
        challenges::attempts.eq(challenges::attempts + 1),
        challenges::consumed_at.eq(now),
    ));
    let DbConnection::Sqlite(c) = conn else {
        unreachable!("PostgreSQL returned above")
    };
    let consumed = kept_here!(consume.returning(Challenge::as_returning()))
        .get_result(c)
        .optional()?;
    if let Some(challenge) = &consumed {
        let event = AuditEvent {
            user_id: challenge.user_id,
            transaction_id: Some(challenge.id.clone()),
            destination_masked: Some(challenge.destination_masked.clone()),
            ..event.clone()
        };
        super::audit::insert(conn, &event, &[])?;
    }
    Ok(consumed)
}

/// [`consume_right_code`]'s statement on PostgreSQL, with `$condition` added to the
/// challenge's conditions and `$then` after the audit event's insert: the consumed row is
/// `consumed`. Its parameters are `$1` to `$13`, bound by [`bind_consume!`].
macro_rules! consume_sql {
    ($condition:literal, $then:literal) => {
        concat!(
            "WITH consumed AS (\
                UPDATE challenges SET attempts = attempts + 1, consumed_at = $3 \
                WHERE id = $1 AND code_hash = $2 AND consumed_at IS NULL \
                  AND superseded_at IS NULL AND expires_at > $3 AND attempts < max_attempts \
                  AND ($4::text IS NULL OR subject = $4) AND (purpose = $5 OR purpose = $6) \
                  AND (device_id IS NULL OR device_id = $7)",
            $condition,
            " RETURNING *), \
            event AS (\
                INSERT INTO audit_events (id, at, event, outcome, user_id, transaction_id, \
                    destination_masked, channel, request_id) \
                SELECT $8, $9, $10, $11, user_id, id, destination_masked, $12, $13 FROM consumed)",
            $then
        )
    };
}

/// `sql_query($sql)` with [`consume_sql!`]'s parameters bound.
macro_rules! bind_consume {
    ($sql:expr, $code:expr, $now:expr) => {{
        use diesel::sql_types::{BigInt, Binary, Nullable, Text};
        let RightCode {
            id,
            code_hash,
            who,
            event,
        } = $code;
        diesel::sql_query($sql)
            .bind::<Text, _>(*id)
            .bind::<Binary, _>(code_hash)
            .bind::<BigInt, _>($now)
            .bind::<Nullable<Text>, _>(who.subject)
            .bind::<Text, _>(who.purposes.0)
            .bind::<Text, _>(who.purposes.1)
            .bind::<Nullable<Text>, _>(who.device_id)
            .bind::<Text, _>(&event.id)
            .bind::<BigInt, _>(event.at)
            .bind::<Text, _>(&event.event)
            .bind::<Text, _>(&event.outcome)
            .bind::<Nullable<Text>, _>(&event.channel)
            .bind::<Nullable<Text>, _>(&event.request_id)
    }};
}

/// [`consume_right_code`]'s statement on PostgreSQL: the same conditions, and the
/// audit event inserted from the consumed row.
fn consume_right_code_pg(
    c: &mut diesel::PgConnection,
    code: &RightCode<'_>,
    now: i64,
) -> QueryResult<Option<Challenge>> {
    const SQL: &str = consume_sql!("", " SELECT * FROM consumed");
    let statement = bind_consume!(SQL, code, now);
    kept_here!(statement).get_result(c).optional()
}

/// A login with a right code, on PostgreSQL, in one statement: [`consume_right_code`]
/// for a challenge issued for a user, and `session` opened for that user. Returns the
/// user; `None` when any condition fails (the code, the challenge, or a user to log
/// in), having changed nothing: a code issued for no user stays unspent. A challenge's
/// user exists while it does (deleting a user deletes their challenges).
pub fn consume_into_session(
    c: &mut diesel::PgConnection,
    code: &RightCode<'_>,
    now: i64,
    session: &Opening,
) -> QueryResult<Option<User>> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    const SQL: &str = consume_sql!(
        " AND user_id IS NOT NULL",
        ", session AS (\
            INSERT INTO sessions (token_hash, user_id, device_id, created_at, expires_at, \
                last_seen_at, idle_timeout_ms) \
            SELECT $14, user_id, $15, $16, $17, $16, $18 FROM consumed) \
        SELECT users.id, users.login_uid, users.login_name, users.login_key, users.user_name, \
            users.email, users.email_key, users.mobile, users.country_code, users.org_id, \
            users.org_name, users.domain_id, users.password_hash, users.profile, \
            users.created_at \
        FROM consumed JOIN users ON users.id = consumed.user_id"
    );
    let statement = bind_consume!(SQL, code, now)
        .bind::<Text, _>(&session.token_hash)
        .bind::<Nullable<Text>, _>(&session.device_id)
        .bind::<BigInt, _>(session.created_at)
        .bind::<BigInt, _>(session.expires_at)
        .bind::<BigInt, _>(session.idle_timeout_ms);
    kept_here!(statement).get_result(c).optional()
}

/// Deletes at most `limit` challenges that expired before `before`.
pub fn delete_expired_before(
    conn: &mut DbConnection,
    before: i64,
    limit: i64,
) -> QueryResult<usize> {
    let table = ("challenges", "id");
    super::delete_batch(conn, table, ("expires_at", "<"), None, before, limit)
}

pub fn find_by_numeric_id(
    conn: &mut DbConnection,
    numeric_id: i64,
) -> QueryResult<Option<Challenge>> {
    crate::per_backend!(conn, |c| challenges::table
        .filter(challenges::numeric_id.eq(numeric_id))
        .select(Challenge::as_select())
        .get_result(c))
    .optional()
}

diesel::define_sql_function! {
    /// PostgreSQL's `nextval(sequence)`.
    fn nextval(sequence: diesel::sql_types::Text) -> diesel::sql_types::BigInt;
}

/// A numeric Id no challenge has: the sequence's next value on PostgreSQL; on SQLite,
/// the largest plus one, safe under the write lock every issue holds.
pub fn next_numeric_id(conn: &mut DbConnection) -> QueryResult<i64> {
    match conn {
        DbConnection::Pg(c) => diesel::select(nextval("challenge_numeric_id")).get_result(c),
        DbConnection::Sqlite(c) => challenges::table
            .select(diesel::dsl::max(challenges::numeric_id))
            .get_result::<Option<i64>>(c)
            .map(|max| max.unwrap_or(0) + 1),
    }
}

/// Spends an attempt on a challenge that was already validated (a re-validation):
/// only while it is unexpired, not superseded and has attempts left.
pub fn spend_revalidation_attempt(
    conn: &mut DbConnection,
    id: &str,
    now: i64,
) -> QueryResult<bool> {
    let target = challenges::table
        .filter(challenges::id.eq(id))
        .filter(challenges::superseded_at.is_null())
        .filter(challenges::expires_at.gt(now))
        .filter(challenges::attempts.lt(challenges::max_attempts));
    let spend = diesel::update(target).set(challenges::attempts.eq(challenges::attempts + 1));
    let spent = kept_here!(spend.returning(challenges::id)).one::<String>(conn);
    Ok(spent.optional()?.is_some())
}

/// The challenge's PasswordChangeRequestId: `proposed` if it has none yet, else the
/// one it has. The conditional update makes concurrent callers agree on one.
pub fn change_request_id(conn: &mut DbConnection, id: &str, proposed: &str) -> QueryResult<String> {
    diesel::update(
        challenges::table
            .find(id)
            .filter(challenges::change_request_id.is_null()),
    )
    .set(challenges::change_request_id.eq(proposed))
    .exec(conn)?;
    challenges::table
        .find(id)
        .select(challenges::change_request_id)
        .one::<Option<String>>(conn)
        .map(|c| c.unwrap_or_else(|| proposed.to_string()))
}

/// The newest Capillary challenge of a subject, open or not (the one not superseded,
/// should two carry the same millisecond). The purpose is written into the statement:
/// the index it reads holds Capillary's challenges alone, and a partial index is
/// chosen only for a condition the statement itself states.
pub fn latest_capillary(conn: &mut DbConnection, subject: &str) -> QueryResult<Option<Challenge>> {
    use diesel::dsl::sql;
    use diesel::sql_types::Text;
    crate::per_backend!(conn, |c| challenges::table
        .filter(challenges::subject.eq(subject))
        .filter(challenges::purpose.eq(sql::<Text>("'capillary'")))
        .order((
            challenges::created_at.desc(),
            challenges::superseded_at.is_null().desc(),
        ))
        .select(Challenge::as_select())
        .first(c)
        .optional())
}
