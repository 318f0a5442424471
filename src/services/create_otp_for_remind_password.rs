//! CreateOtpForRemindPassword: an SMS code to the mobile of a directory user named by
//! login name or e-mail, under the user's organisation policy. The code is then
//! checked with ValidateTwoFactorSmsOtp (with a password change request id).
//!
//! Unless the settings reveal unknown users, a login that names nobody, or a user with
//! no mobile, gets a decoy answered alike: nothing is sent, and no code validates it
//! ([`decoy`]). Someone asking for a reset they cannot receive learns nothing a
//! stranger could not; the audit trail tells the operator which it was.

use crate::core::ids::{ChallengeId, UserId};
use crate::core::mask;
use crate::core::otp::{self, Channel, Decoy, IssueRequest, Policy, decoy};
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

const PURPOSE: &str = "remind_password";

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let settings = state.settings.clone();
    let reveal = settings.security.reveal_unknown_users;
    let login = input.login;
    // The look-up and the issue in one piece of database work, as for a decoy.
    let (issued, phone_masked) = super::issuing(state, move |c, keys, templates| {
        let user = user_rows::find_by_login(c, &login)?;
        let request = match user {
            Some(user) => {
                let mut policy = Policy::for_org(&settings, user.org_id);
                policy.channels = vec![Channel::Sms];
                let destinations = users::destinations(&user, &policy);
                match destinations.first() {
                    None if reveal => return Err(Error::NoDestination),
                    None => decoy_for(keys, &settings, &login, Decoy::NoDestination)
                        .for_user(UserId(user.id), user.org_id),
                    Some(_) => IssueRequest::new(
                        format!("user:{}", user.id),
                        PURPOSE,
                        policy,
                        destinations,
                    )
                    .for_user(UserId(user.id), user.org_id),
                }
            }
            None if reveal => return Err(Error::UserNotFound),
            None => decoy_for(keys, &settings, &login, Decoy::UnknownUser),
        };
        let phone_masked = request
            .destinations
            .first()
            .map(|d| mask::phone(&d.address))
            .unwrap_or_default();
        let issued = otp::issue(c, keys, templates, &request)?;
        Ok((issued, phone_masked))
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

/// A decoy by SMS to the login's made-up international number, under the default
/// policy.
fn decoy_for(
    keys: &crate::core::keys::Keys,
    settings: &crate::config::Settings,
    login: &str,
    reason: Decoy,
) -> IssueRequest {
    let mut policy = Policy::for_org(settings, 0);
    policy.channels = vec![Channel::Sms];
    let destinations = decoy::destinations(keys, login, &policy.channels, None);
    IssueRequest::decoy(
        decoy::subject(keys, login),
        PURPOSE,
        policy,
        destinations,
        reason,
    )
}
