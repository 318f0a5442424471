//! Removal of rows that no longer count for anything: sends outside every window,
//! idle send-limit rows, dead sessions, and challenges and messages past the
//! retention period. Audit events are kept.

use crate::config::Settings;
use crate::db::{
    DbConnection, capillary_brands, capillary_sessions, challenges, limits, login_failures, outbox,
    sessions, write_transaction,
};
use crate::error::Result;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub sends: usize,
    /// Idle rows of `send_limits`.
    pub limit_rows: usize,
    pub sessions: usize,
    /// Expired sessions of the Capillary auth API.
    pub capillary_sessions: usize,
    pub challenges: usize,
    pub messages: usize,
    /// Failed password logins older than the lockout window.
    pub login_failures: usize,
}

/// Sends count for the longest window of any policy: TwoFactor windows (stored
/// configurations, requests) reach a day, and a Capillary brand's otpTimeOut (stored
/// in the database) up to 7 days.
fn keep_sends_ms(settings: &Settings, longest_brand_minutes: Option<i64>) -> i64 {
    let brand_seconds = longest_brand_minutes.unwrap_or(0).saturating_mul(60);
    settings
        .longest_send_window_seconds()
        .max(86_400)
        .max(brand_seconds)
        .saturating_mul(1000)
}

pub fn run(conn: &mut DbConnection, settings: &Settings, now: i64) -> Result<Removed> {
    let keep_ms = settings.retention_days * 86_400_000;
    Ok(write_transaction(
        conn,
        |c| -> diesel::QueryResult<Removed> {
            let keep_sends =
                keep_sends_ms(settings, capillary_brands::longest_otp_timeout_minutes(c)?);
            Ok(Removed {
                sends: limits::prune(c, now - keep_sends)?,
                limit_rows: limits::prune_idle(c, now - keep_sends)?,
                sessions: sessions::delete_expired(c, now)?,
                capillary_sessions: capillary_sessions::delete_expired(c, now)?,
                messages: outbox::delete_final_before(c, now - keep_ms)?,
                challenges: challenges::delete_expired_before(c, now - keep_ms)?,
                login_failures: login_failures::prune(
                    c,
                    now - settings.login.lockout_seconds * 1000,
                )?,
            })
        },
    )?)
}

/// Runs [`run`] at start and then every `every`, until `shutdown` turns true.
pub async fn run_periodically(
    db: crate::db::Db,
    settings: std::sync::Arc<Settings>,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let s = settings.clone();
        match db.run(move |c| run(c, &s, crate::db::now_ms())).await {
            Ok(removed) if removed != Removed::default() => {
                tracing::info!(?removed, "housekeeping")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "housekeeping failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
