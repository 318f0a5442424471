//! Stored TwoFactorConfigurations: what a CreateTwoFactorSmsOtp request names by id.

use diesel::prelude::*;

use super::DbConnection;
use super::native::Native;
use super::schema::twofactor_configs;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = twofactor_configs)]
pub struct TwoFactorConfig {
    pub id: i64,
    pub name: String,
    pub code_length: i64,
    pub expiry_seconds: i64,
    pub max_attempts: i64,
    pub max_sms_count: i64,
    pub max_sms_interval_seconds: i64,
    pub return_code: bool,
    pub sms_template: Option<String>,
    pub created_at: i64,
}

impl TwoFactorConfig {
    /// What is wrong with it, if anything.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.id <= 0 {
            problems.push("id must be positive");
        }
        if self.name.trim().is_empty() {
            problems.push("name is required");
        }
        if !(4..=10).contains(&self.code_length) {
            problems.push("code length must be 4 to 10 digits");
        }
        if !(1..=86_400).contains(&self.expiry_seconds) {
            problems.push("expiry must be 1 second to 1 day");
        }
        if !(1..=100).contains(&self.max_attempts) {
            problems.push("max attempts must be 1 to 100");
        }
        if !(1..=1000).contains(&self.max_sms_count)
            || !(1..=86_400).contains(&self.max_sms_interval_seconds)
        {
            problems.push("max SMS count must be 1 to 1000 and its interval 1 second to 1 day");
        }
        if self
            .sms_template
            .as_deref()
            .is_some_and(|t| !t.contains("{code}"))
        {
            problems.push("the SMS template must contain {code}");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<TwoFactorConfig>> {
    crate::per_backend!(conn, |c| twofactor_configs::table
        .find(id)
        .select(TwoFactorConfig::as_select())
        .get_result(c))
    .optional()
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<TwoFactorConfig>> {
    crate::per_backend!(conn, |c| twofactor_configs::table
        .order(twofactor_configs::id)
        .select(TwoFactorConfig::as_select())
        .load(c))
}

/// Adds a configuration, or replaces the one with its id.
pub fn upsert(conn: &mut DbConnection, c: &TwoFactorConfig) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        diesel::delete(twofactor_configs::table.find(c.id)).exec(conn)?;
        diesel::insert_into(twofactor_configs::table)
            .values(c)
            .exec(conn)?;
        Ok(())
    })
}
