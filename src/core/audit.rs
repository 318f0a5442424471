//! The audit trail: every generate, verify and password login outcome, with who, what,
//! when, the masked destination and the request that caused it; never a code or an
//! address (destinations are found by their keyed hash, [`Destination::audit_key`]).
//!
//! [`Destination::audit_key`]: crate::core::channel::Destination::audit_key

use crate::core::ids::UserId;
use crate::core::request_id;
use crate::db::DbConnection;
use crate::db::audit::{self, AuditEvent};
use crate::error::Result;

/// One audited outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct Event<'a> {
    /// `otp.generate`, `otp.verify`, `login.password`.
    pub event: &'a str,
    /// `ok`, or the error's kind.
    pub outcome: &'a str,
    pub user_id: Option<UserId>,
    pub transaction_id: Option<&'a str>,
    pub destination_masked: Option<&'a str>,
    pub channel: Option<&'a str>,
    /// The keyed hashes of the destinations, for `otpgate audit --destination`.
    pub destination_keys: &'a [String],
}

/// Writes the event, naming the request being served (carried into `Db::run`).
pub fn record(conn: &mut DbConnection, e: Event<'_>, now: i64) -> Result<()> {
    audit::insert(conn, &row(e, now), e.destination_keys)?;
    Ok(())
}

/// The row `record` writes for `e` (its destination keys are written beside it).
pub fn row(e: Event<'_>, now: i64) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        at: now,
        event: e.event.to_string(),
        outcome: e.outcome.to_string(),
        user_id: e.user_id.map(|u| u.0),
        transaction_id: e.transaction_id.map(str::to_string),
        destination_masked: e.destination_masked.map(str::to_string),
        channel: e.channel.map(str::to_string),
        request_id: request_id::current().map(|r| r.as_str().to_string()),
    }
}
