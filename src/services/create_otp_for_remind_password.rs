//! CreateOtpForRemindPassword: an SMS code to the mobile of a directory user named by
//! login name or e-mail, under the user's organisation policy. The code is then
//! checked with ValidateTwoFactorSmsOtp (with a password change request id).

use crate::core::ids::{ChallengeId, UserId};
use crate::core::mask;
use crate::core::otp::{self, Channel, IssueRequest, Policy};
use crate::core::users;
use crate::db::{now_ms, users as user_rows};
use crate::error::{Error, Result};
use crate::state::AppState;

pub struct Input {
    pub login: String,
}

pub struct Outcome {
    pub numeric_id: i64,
    pub transaction_id: ChallengeId,
    pub reference: String,
    pub remaining_seconds: i64,
    /// The number the SMS goes to, masked as ValidateTwoFactorSmsOtp will show it.
    pub phone_masked: String,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let login = input.login;
    let user = state
        .db
        .run(move |c| Ok(user_rows::find_by_login(c, &login)?))
        .await?
        .ok_or(Error::UserNotFound)?;
    let mut policy = Policy::for_org(&state.settings, user.org_id);
    policy.channels = vec![Channel::Sms];
    let destinations = users::destinations(&user, &policy);
    let Some(first) = destinations.first() else {
        return Err(Error::NoDestination);
    };
    let phone_masked = mask::phone(&first.address);
    let request = IssueRequest::new(
        format!("user:{}", user.id),
        "remind_password",
        policy,
        destinations,
    )
    .for_user(UserId(user.id), user.org_id);
    let issued = super::issuing(state, move |c, keys, templates| {
        otp::issue(c, keys, templates, request)
    })
    .await?;
    Ok(Outcome {
        numeric_id: issued.numeric_id,
        transaction_id: issued.transaction_id,
        reference: issued.reference,
        remaining_seconds: ((issued.expires_at - now_ms()) / 1000).max(0),
        phone_masked,
    })
}
