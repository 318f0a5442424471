//! CreateOtpForRemindPassword: an SMS code to the mobile of a directory user named by
//! UserName (login name or e-mail), under the user's organisation policy. The code is
//! then checked with ValidateTwoFactorSmsOtp (IsReturnChangeRequestId for the
//! PasswordChangeRequestId).

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{Reply, auth};
use crate::core::mask;
use crate::core::otp::{Channel, IssueRequest, Policy};
use crate::db::{now_ms, users};
use crate::dialects::twofactor::dto::{self as twofactor, Created, REMIND_PASSWORD};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::wire::fields::Fields;

pub fn call(app: AppState, params: Value) -> BoxFuture<'static, Result<Reply>> {
    Box::pin(
        async move { twofactor::answer(REMIND_PASSWORD, &params, None, |f| run(&app, f)).await },
    )
}

async fn run(app: &AppState, f: Fields<'_>) -> Result<twofactor::Dto> {
    let login = f.required_text("UserName")?;
    let user = app
        .db
        .run(move |c| Ok(users::find_by_login(c, &login)?))
        .await?
        .ok_or(Error::UserNotFound)?;
    let mut policy = Policy::for_org(&app.settings, user.org_id);
    policy.channels = vec![Channel::Sms];
    let destinations = auth::destinations(&user, &policy);
    if destinations.is_empty() {
        return Err(Error::NoDestination);
    }
    // Masked as ValidateTwoFactorSmsOtp will show it: the number the SMS goes to.
    let masked = mask::phone(&destinations[0].address);
    let request = IssueRequest {
        subject: format!("user:{}", user.id),
        purpose: "remind_password",
        user_id: Some(user.id),
        org_id: user.org_id,
        destinations,
        device_id: None,
        language: None,
        sms_template: None,
        reveal_code: false,
        policy,
        limit_scope: None,
    };
    let issued = super::issue(app, request).await?;
    Ok(twofactor::remind_password_response(&Created {
        id: issued.numeric_id,
        otp_id_reference: issued.transaction_id,
        reference_code: issued.reference,
        otp_code: None,
        remaining_seconds: ((issued.expires_at - now_ms()) / 1000).max(0),
        gsm_number: masked,
    }))
}
