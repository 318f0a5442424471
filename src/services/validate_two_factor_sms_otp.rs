//! ValidateTwoFactorSmsOtp: checks a code, by OtpIdReference or OtpId. With a UserId,
//! only that customer's OTPs are found. IsReValidate lets an OTP that was already
//! validated be validated again with its code while it has not expired;
//! IsReturnChangeRequestId hands back a PasswordChangeRequestId. `Email` is accepted
//! and not used.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::Reply;
use crate::core::otp::{self, VerifyRequest};
use crate::db::challenges;
use crate::dialects::twofactor::dto::{self as twofactor, VALIDATE};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::wire::fields::Fields;

pub fn call(app: AppState, params: Value) -> BoxFuture<'static, Result<Reply>> {
    Box::pin(async move { twofactor::answer(VALIDATE, &params, None, |f| run(&app, f)).await })
}

async fn run(app: &AppState, f: Fields<'_>) -> Result<twofactor::Dto> {
    let customer = twofactor::guid(&f, "UserId")?;
    f.text("Email")?;
    let reference = f.text("OtpIdReference")?;
    let otp_id = f.int("OtpId")?.filter(|n| *n != 0);
    let code = f.required_text("OtpCode")?;
    let revalidate = f.bool("IsReValidate")?.unwrap_or(false);
    let want_change_id = f.bool("IsReturnChangeRequestId")?.unwrap_or(false);
    let reference = match reference {
        Some(r) => Some(
            uuid::Uuid::try_parse(r.trim())
                .map_err(|_| Error::invalid("OtpIdReference must be a GUID."))?
                .hyphenated()
                .to_string(),
        ),
        None => None,
    };
    if reference.is_none() && otp_id.is_none() {
        return Err(Error::invalid("OtpIdReference or OtpId is required."));
    }
    // Numeric ids are sequential: found by one, the OTP must also be the caller's, or
    // anyone could spend other customers' attempts.
    if reference.is_none() && customer.is_none() {
        return Err(Error::invalid(
            "UserId is required when the OTP is named by OtpId.",
        ));
    }
    let keys = app.keys.clone();
    let (verified, change_id) = app
        .db
        .run(move |c| {
            let transaction_id = match (reference, otp_id) {
                (Some(r), _) => r,
                (None, Some(n)) => {
                    challenges::find_by_numeric_id(c, n)?
                        .ok_or(Error::UnknownTransaction)?
                        .id
                }
                (None, None) => return Err(Error::UnknownTransaction),
            };
            let req = VerifyRequest {
                transaction_id,
                code,
                device_id: None,
                subject: customer.map(|u| format!("customer:{u}")),
                purposes: &["twofactor", "remind_password"],
                allow_revalidate: revalidate,
            };
            otp::verify_then(c, &keys, &req, |c, v| {
                if !want_change_id {
                    return Ok(None);
                }
                let proposed = uuid::Uuid::new_v4().to_string();
                Ok(Some(challenges::change_request_id(
                    c,
                    &v.transaction_id,
                    &proposed,
                )?))
            })
        })
        .await?;
    Ok(twofactor::validate_response(
        &verified.destination_masked,
        change_id,
    ))
}
