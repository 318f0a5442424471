//! CreateTwoFactorSmsOtp: an SMS code for a customer to a phone number, under a stored
//! OTP configuration (or the gateway's defaults) whose limits the request may narrow,
//! never loosen: the route is open, and a caller must not lift the limits its operator
//! set. Sends per number are counted in the database.

use std::time::Duration;

use crate::core::ids::ChallengeId;
use crate::core::mask;
use crate::core::otp::{self, Channel, Destination, IssueRequest, Policy};
use crate::db::{now_ms, twofactor_configs};
use crate::error::{Error, Result};
use crate::state::AppState;

pub struct Input {
    /// The customer: a canonical GUID.
    pub customer: String,
    pub phone: String,
    /// A stored configuration; None uses the gateway's defaults.
    pub configuration_id: Option<i64>,
    pub max_sends: Option<i64>,
    pub send_window_minutes: Option<i64>,
    pub expiry_minutes: Option<i64>,
    /// Wait for the provider to take the message, and say so if none did.
    pub wait_for_delivery: bool,
}

pub struct Outcome {
    pub numeric_id: i64,
    pub transaction_id: ChallengeId,
    pub reference: String,
    /// The code, when the configuration hands it back to the caller.
    pub code: Option<String>,
    pub remaining_seconds: i64,
    pub phone_masked: String,
    /// A synchronous send that no provider accepted: the OTP exists all the same.
    pub delivery_failed: bool,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let config = match input.configuration_id {
        None => None,
        Some(id) => Some(
            state
                .db
                .run(move |c| twofactor_configs::find(c, id)?.ok_or(Error::ConfigurationNotFound))
                .await?,
        ),
    };
    // The configuration's settings, or the gateway's defaults; then the request's.
    let mut policy = Policy::from_settings(&state.settings.otp);
    policy.channels = vec![Channel::Sms];
    if let Some(c) = &config {
        policy.length = c.code_length as u32;
        policy.expiry_ms = c.expiry_seconds * 1000;
        policy.max_attempts = c.max_attempts;
        policy.max_sends = c.max_sms_count;
        policy.send_window_ms = c.max_sms_interval_seconds * 1000;
    }
    let policy = policy.narrowed(
        input.max_sends,
        input.send_window_minutes.map(|m| m * 60_000),
        input.expiry_minutes.map(|m| m * 60_000),
    );
    let destination = Destination {
        channel: Channel::Sms,
        address: input.phone.clone(),
    };
    let mut request = IssueRequest::new(
        format!("customer:{}", input.customer),
        "twofactor",
        policy,
        vec![destination],
    );
    request.sms_template = config.as_ref().and_then(|c| c.sms_template.clone());
    request.reveal_code = config.as_ref().is_some_and(|c| c.return_code);
    let issued = super::issuing(state, move |c, keys, templates| {
        otp::issue(c, keys, templates, &request)
    })
    .await?;
    let delivered = match input.wait_for_delivery {
        true => {
            crate::delivery::wait_for_outcome(
                &state.db,
                &issued.outbox_ids,
                Duration::from_secs(15),
            )
            .await
        }
        false => Ok(()),
    };
    if let Err(reason) = &delivered {
        // The reason names providers and server details: for the log, not the caller.
        tracing::warn!(otp_id = issued.numeric_id, %reason, "synchronous SMS send failed");
    }
    Ok(Outcome {
        numeric_id: issued.numeric_id,
        transaction_id: issued.transaction_id,
        reference: issued.reference,
        code: issued.code,
        remaining_seconds: ((issued.expires_at - now_ms()) / 1000).max(0),
        phone_masked: mask::phone(&input.phone),
        delivery_failed: delivered.is_err(),
    })
}
