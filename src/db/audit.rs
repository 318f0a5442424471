use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;

/// One audited outcome. Never holds a code or a full destination.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub user_id: Option<i64>,
    pub transaction_id: Option<String>,
    pub destination_masked: Option<String>,
    pub channel: Option<String>,
}

pub fn insert(conn: &mut DbConnection, e: &AuditEvent) -> QueryResult<usize> {
    diesel::insert_into(audit_events::table)
        .values(e)
        .execute(conn)
}

/// How many `event`s with `outcome` a user had since `since`, and the oldest of them.
pub fn count_since(
    conn: &mut DbConnection,
    user_id: i64,
    event: &str,
    outcome: &str,
    since: i64,
) -> QueryResult<(i64, Option<i64>)> {
    audit_events::table
        .filter(audit_events::user_id.eq(user_id))
        .filter(audit_events::event.eq(event))
        .filter(audit_events::outcome.eq(outcome))
        .filter(audit_events::at.gt(since))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(audit_events::at),
        ))
        .first(conn)
}
