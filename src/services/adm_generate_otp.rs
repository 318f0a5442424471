//! ADM_GenerateOTP: issue a code and send it to the user's e-mail and/or mobile.
//!
//! Two forms:
//! - a second factor for a caller who proved who they are, with a password, a live
//!   session or an API key; the user the request names must be that caller. Answers
//!   the session (the one it came with, or a new one).
//! - a login code for the user registered with an e-mail address (and country), bound
//!   to the device that asked for it. An address that names nobody (or nobody with an
//!   address to send to) gets a decoy answered alike, unless the settings reveal
//!   unknown users ([`decoy`]).

use crate::config::Settings;
use crate::core::ids::{ChallengeId, UserId};
use crate::core::keys::Keys;
use crate::core::otp::{self, Channel, Decoy, IssueRequest, Policy, decoy};
use crate::core::users::{self, User};
use crate::core::{mask, sessions};
use crate::db::users as user_rows;
use crate::error::{Error, Result};
use crate::state::AppState;

pub enum Input {
    SecondFactor { caller: Caller, claimed: Claimed },
    Login(LoginCode),
}

pub use super::caller::Caller;

/// The user the request says it is about; each field given must be the caller's.
#[derive(Debug, Default)]
pub struct Claimed {
    pub user_id: Option<UserId>,
    pub domain_id: Option<i64>,
    pub login_uid: Option<String>,
    pub user_name: Option<String>,
}

pub struct LoginCode {
    /// A country calling code, digits only.
    pub country_code: String,
    pub email: String,
    pub device_id: String,
}

pub struct Outcome {
    pub transaction_id: ChallengeId,
    /// The caller's session (a second factor only): the one it came with, or a new one.
    pub session_token: Option<String>,
    /// Where the code went, masked as the user knows the addresses (the national number).
    pub sent_to: Vec<String>,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    match input {
        Input::SecondFactor { caller, claimed } => second_factor(state, caller, claimed).await,
        Input::Login(l) => login_code(state, l).await,
    }
}

async fn second_factor(state: &AppState, caller: Caller, claimed: Claimed) -> Result<Outcome> {
    let (user, existing_token) = super::caller::authenticate(state, caller).await?;
    check_same_user(&user, &claimed)?;
    let policy = Policy::for_org(&state.settings, user.org_id);
    let request = IssueRequest::new(
        format!("user:{}", user.id),
        "second_factor",
        policy.clone(),
        users::destinations(&user, &policy),
    )
    .for_user(UserId(user.id), user.org_id);
    let session_settings = state.settings.session.clone();
    let user_id = user.id;
    let (issued, token) = super::issuing(state, move |c, keys, templates| {
        let issued = otp::issue(c, keys, templates, &request)?;
        let token = match existing_token.clone() {
            Some(t) => t,
            None => sessions::create(c, user_id, None, &session_settings)?,
        };
        Ok((issued, token))
    })
    .await?;
    Ok(Outcome {
        transaction_id: issued.transaction_id,
        session_token: Some(token),
        sent_to: Vec::new(),
    })
}

/// Each identifying field the request gives must be the authenticated user's.
fn check_same_user(user: &User, claimed: &Claimed) -> Result<()> {
    if claimed.user_id.is_some_and(|id| id.0 != user.id)
        || claimed.domain_id.is_some_and(|d| d != user.domain_id)
        || claimed
            .login_uid
            .as_deref()
            .is_some_and(|uid| uid.trim() != user.login_uid)
    {
        return Err(Error::UserMismatch);
    }
    if let Some(name) = &claimed.user_name {
        let k = user_rows::key(name);
        if k != user_rows::key(&user.user_name) && k != user.login_key && k != user.email_key {
            return Err(Error::UserMismatch);
        }
    }
    Ok(())
}

async fn login_code(state: &AppState, l: LoginCode) -> Result<Outcome> {
    let settings = state.settings.clone();
    let reveal = settings.security.reveal_unknown_users;
    // The look-up and the issue in one piece of database work (`Db::run`).
    let (issued, sent_to) = super::issuing(state, move |c, keys, templates| {
        let user = user_rows::find_by_email(c, &l.email)?
            // The request identifies the user; it never decides where the code goes.
            .filter(|u| u.country_code.is_empty() || u.country_code == l.country_code);
        let (mut request, sent_to) = match user {
            Some(user) => {
                let policy = Policy::for_org(&settings, user.org_id);
                let destinations = users::destinations(&user, &policy);
                if destinations.is_empty() && !reveal {
                    let (request, sent_to) = decoy_for(keys, &settings, &l, Decoy::NoDestination);
                    (request.for_user(UserId(user.id), user.org_id), sent_to)
                } else {
                    // Named as the user knows the addresses: the national number; the
                    // e-mail as typed when answers may not tell whether it is
                    // registered (the stored one may differ in case).
                    let email = if reveal { &user.email } else { &l.email };
                    let sent_to = destinations
                        .iter()
                        .map(|d| match d.channel {
                            Channel::Email => mask::email(email),
                            Channel::Sms => mask::phone(&user.mobile),
                        })
                        .collect();
                    let request = IssueRequest::new(
                        format!("user:{}", user.id),
                        "login",
                        policy,
                        destinations,
                    )
                    .for_user(UserId(user.id), user.org_id);
                    (request, sent_to)
                }
            }
            None if reveal => return Err(Error::UserNotFound),
            None => decoy_for(keys, &settings, &l, Decoy::UnknownUser),
        };
        request.device_id = Some(l.device_id.clone());
        let issued = otp::issue(c, keys, templates, &request)?;
        Ok((issued, sent_to))
    })
    .await?;
    Ok(Outcome {
        transaction_id: issued.transaction_id,
        session_token: None,
        sent_to,
    })
}

/// A decoy for an address that names nobody who can get a code: on the channels of
/// the default policy, as a user with both an e-mail and a mobile would get it; the
/// answer names the e-mail as given and the made-up national number.
fn decoy_for(
    keys: &Keys,
    settings: &Settings,
    l: &LoginCode,
    reason: Decoy,
) -> (IssueRequest, Vec<String>) {
    let policy = Policy::for_org(settings, 0);
    let destinations = decoy::destinations(keys, &l.email, &policy.channels, Some(&l.country_code));
    let sent_to = destinations
        .iter()
        .map(|d| match d.channel {
            Channel::Email => mask::email(&l.email),
            Channel::Sms => mask::phone(&keys.decoy_number(&l.email)),
        })
        .collect();
    let subject = decoy::subject(keys, &l.email);
    let request = IssueRequest::decoy(subject, "login", policy, destinations, reason);
    (request, sent_to)
}
