//! What each delivery provider last did, as the dispatchers saw it: written by them
//! (at most once a second per provider and process), read by `otpgate status`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::DbConnection;
use super::schema::provider_status;

#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = provider_status)]
pub struct ProviderStatus {
    pub provider: String,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    /// Scrubbed of destinations and codes.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub failures: i64,
    pub cooling_until: Option<i64>,
    pub updated_at: i64,
}

/// Merges what one process saw since its last write into the provider's row: a
/// success in it resets the failures and the cool-down to what followed it; without
/// one, its failures add to those already counted.
pub fn record(conn: &mut DbConnection, s: &ProviderStatus) -> QueryResult<()> {
    // The same SQL on both backends but for the placeholders.
    const SQL: &str = "INSERT INTO provider_status \
        (provider, last_success_at, last_failure_at, last_error, failures, cooling_until, updated_at) \
        VALUES (?, ?, ?, ?, ?, ?, ?) \
        ON CONFLICT (provider) DO UPDATE SET \
        last_success_at = COALESCE(excluded.last_success_at, provider_status.last_success_at), \
        last_failure_at = COALESCE(excluded.last_failure_at, provider_status.last_failure_at), \
        last_error = COALESCE(excluded.last_error, provider_status.last_error), \
        failures = CASE WHEN excluded.last_success_at IS NOT NULL THEN excluded.failures \
            ELSE provider_status.failures + excluded.failures END, \
        cooling_until = CASE WHEN excluded.last_success_at IS NOT NULL THEN excluded.cooling_until \
            ELSE COALESCE(excluded.cooling_until, provider_status.cooling_until) END, \
        updated_at = excluded.updated_at";
    macro_rules! bind_all {
        ($q:expr) => {
            $q.bind::<Text, _>(&s.provider)
                .bind::<Nullable<BigInt>, _>(s.last_success_at)
                .bind::<Nullable<BigInt>, _>(s.last_failure_at)
                .bind::<Nullable<Text>, _>(s.last_error.as_deref())
                .bind::<BigInt, _>(s.failures)
                .bind::<Nullable<BigInt>, _>(s.cooling_until)
                .bind::<BigInt, _>(s.updated_at)
        };
    }
    match conn {
        DbConnection::Sqlite(c) => bind_all!(diesel::sql_query(SQL)).execute(c)?,
        DbConnection::Pg(c) => {
            bind_all!(diesel::sql_query(super::numbered_placeholders(SQL))).execute(c)?
        }
    };
    Ok(())
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<ProviderStatus>> {
    crate::per_backend!(conn, |c| provider_status::table
        .order(provider_status::provider)
        .select(ProviderStatus::as_select())
        .load(c))
}
