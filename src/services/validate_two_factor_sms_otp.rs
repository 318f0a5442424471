//! ValidateTwoFactorSmsOtp: checks a code, by the OTP's transaction id or its numeric
//! id. With a customer, only that customer's OTPs are found. Re-validation lets an OTP
//! that was already validated be validated again with its code while it has not
//! expired; a password change request id may be handed back.

use crate::core::ids::ChallengeId;
use crate::core::otp::{self, VerifyRequest};
use crate::db::challenges;
use crate::error::{Error, Result};
use crate::metrics::OtpEvent;
use crate::state::AppState;

/// How the request names the OTP.
pub enum OtpRef {
    Transaction(ChallengeId),
    /// The sequential numeric id: only with a customer, or anyone could spend other
    /// customers' attempts.
    Numeric {
        id: i64,
        customer: String,
    },
}

pub struct Input {
    /// The customer (canonical GUID), when the request names one.
    pub customer: Option<String>,
    pub otp: OtpRef,
    pub code: String,
    pub allow_revalidate: bool,
    pub want_change_request_id: bool,
}

pub struct Outcome {
    pub destination_masked: String,
    pub change_request_id: Option<String>,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let keys = state.keys.clone();
    let customer = match (&input.otp, input.customer) {
        (OtpRef::Numeric { customer, .. }, _) => Some(customer.clone()),
        (OtpRef::Transaction(_), customer) => customer,
    };
    let result = state
        .db
        .run_as("verify", move |c| {
            let transaction_id = match &input.otp {
                OtpRef::Transaction(id) => id.clone(),
                OtpRef::Numeric { id, .. } => ChallengeId::from_stored(
                    challenges::find_by_numeric_id(c, *id)?
                        .ok_or(Error::UnknownTransaction)?
                        .id,
                ),
            };
            let req = VerifyRequest {
                transaction_id,
                code: input.code.clone(),
                device_id: None,
                subject: customer.as_ref().map(|u| format!("customer:{u}")),
                purposes: &["twofactor", "remind_password"],
                allow_revalidate: input.allow_revalidate,
            };
            if !input.want_change_request_id {
                return otp::verify(c, &keys, &req).map(|v| (v, None));
            }
            otp::verify_then(c, &keys, &req, |c, v| {
                let proposed = uuid::Uuid::new_v4().to_string();
                Ok(Some(challenges::change_request_id(
                    c,
                    v.transaction_id.as_str(),
                    &proposed,
                )?))
            })
        })
        .await;
    state.metrics.otp_result(OtpEvent::Verified, &result);
    let (verified, change_request_id) = result?;
    Ok(Outcome {
        destination_masked: verified.destination_masked,
        change_request_id,
    })
}
