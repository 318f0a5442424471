//! The operations, one file each, found by their ServiceName. Each takes the request's
//! parameters as a field tree (decoded from JSON or XML by a dialect) and returns a
//! reply the dialect writes in its own shape.

pub mod adm_generate_otp;
mod auth;
pub mod auth_otp_generate;
pub mod auth_otp_validate;
pub mod auth_token_generate;
pub mod create_otp_for_remind_password;
pub mod create_two_factor_sms_otp;
pub mod login_app;
pub mod validate_two_factor_sms_oto_by_reference_id;
pub mod validate_two_factor_sms_otp;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::dialects::twofactor::dto as twofactor;
use crate::error::Result;
use crate::state::AppState;

/// What an operation answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The standard envelope's payload: its TokenID and OutputObject.
    Envelope {
        token_id: Option<String>,
        output_object: Value,
    },
    /// A document that replaces the envelope (LoginApp's `{"User": …}`).
    Document(Value),
    /// A TwoFactor response DTO, success or failure.
    Dto(twofactor::Dto),
}

pub type Handler = fn(AppState, Value) -> BoxFuture<'static, Result<Reply>>;

/// Every ServiceName the gateway serves.
pub const SERVICES: &[(&str, Handler)] = &[
    ("ADM_GenerateOTP", adm_generate_otp::call),
    ("LoginApp", login_app::call),
    (twofactor::CREATE, create_two_factor_sms_otp::call),
    (twofactor::VALIDATE, validate_two_factor_sms_otp::call),
    (
        twofactor::VALIDATE_BY_REFERENCE,
        validate_two_factor_sms_oto_by_reference_id::call,
    ),
    (
        twofactor::REMIND_PASSWORD,
        create_otp_for_remind_password::call,
    ),
];

/// Runs an operation; a panic inside it becomes an internal error rather than a
/// dropped connection. Also returns how long it took, in milliseconds.
pub async fn run(handler: Handler, app: AppState, params: Value) -> (Result<Reply>, f64) {
    use futures_util::FutureExt;
    let started = std::time::Instant::now();
    let result = std::panic::AssertUnwindSafe(handler(app, params))
        .catch_unwind()
        .await;
    let result =
        result.unwrap_or_else(|_| Err(crate::error::Error::internal("the operation panicked")));
    (result, started.elapsed().as_secs_f64() * 1000.0)
}

/// Issues a code and wakes the outbox dispatcher to send it.
pub(crate) async fn issue(
    app: &AppState,
    request: crate::core::otp::IssueRequest,
) -> Result<crate::core::otp::Issued> {
    let (keys, templates) = (app.keys.clone(), app.templates.clone());
    let issued = app
        .db
        .run(move |c| crate::core::otp::issue(c, &keys, &templates, request))
        .await?;
    app.outbox_wake.notify_one();
    Ok(issued)
}

/// The operation of a ServiceName, compared without regard to case.
pub fn find(service_name: &str) -> Option<Handler> {
    let name = service_name.trim();
    SERVICES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, h)| *h)
}
