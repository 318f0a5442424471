//! The operations, one file each, named after the legacy operation (ServiceName,
//! TwoFactor action or Capillary route) that reaches it.
//!
//! The contract: an operation is `async fn call(&AppState, Input) -> Result<Outcome>`
//! with its input and outcome typed in plain Rust. A service never sees a wire format,
//! a legacy field name or a `serde_json::Value`, and never imports a dialect or the
//! wire: a dialect decodes its request into the input, and encodes the outcome, or maps
//! the error, into its own shape.

pub mod adm_generate_otp;
pub mod auth_otp_generate;
pub mod auth_otp_validate;
pub mod auth_token_generate;
pub mod brand;
pub mod caller;
pub mod create_otp_for_remind_password;
pub mod create_two_factor_sms_otp;
pub mod login_app;
pub mod throttle;
pub mod upstream_session;
pub mod validate_two_factor_sms_oto_by_reference_id;
pub mod validate_two_factor_sms_otp;

use std::future::Future;

use futures_util::FutureExt;

use crate::core::keys::Keys;
use crate::db::DbConnection;
use crate::delivery::Templates;
use crate::error::{Error, Result};
use crate::metrics::OtpEvent;
use crate::state::AppState;

/// Runs an operation; a panic inside it becomes an internal error rather than a
/// dropped connection. Also returns how long it took, in milliseconds.
pub async fn contained<T>(operation: impl Future<Output = Result<T>>) -> (Result<T>, f64) {
    let started = std::time::Instant::now();
    let result = std::panic::AssertUnwindSafe(operation)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::internal("the operation panicked")));
    (result, started.elapsed().as_secs_f64() * 1000.0)
}

/// The one way operations issue codes: `work` runs as one piece of database work
/// (typically a look-up, then `otp::issue`, then whatever belongs in the same trip),
/// and the outbox dispatcher is woken to send what it queued.
pub(crate) async fn issuing<T, F>(state: &AppState, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnMut(&mut DbConnection, &Keys, &Templates) -> Result<T> + Send + 'static,
{
    let (keys, templates) = (state.keys.clone(), state.templates.clone());
    let mut work = work;
    let result = state
        .db
        .run_as("issue", move |c| work(c, &keys, &templates))
        .await;
    state.metrics.otp_result(OtpEvent::Issued, &result);
    if result.is_ok() {
        state.outbox_wake.notify_one();
    }
    result
}
