//! otp/generate: sends a code to the identifier of an open session: a mobile number by
//! SMS, an e-mail address by e-mail, a login name to the directory user's mobile
//! and/or e-mail, on the brand's channels. The brand's OTP limit (else the gateway's
//! send limit) is counted in the database per brand and destination; a new code
//! supersedes the session's previous one.
//!
//! A login name that names nobody (a session opened while the settings do not reveal
//! unknown users), or a user with no address on the brand's channels, gets a decoy
//! unless the settings reveal unknown users: answered alike, nothing sent, under the
//! same limits ([`decoy`]).

use crate::core::brands::{self, IdentifierKind, SessionRequest};
use crate::core::ids::UserId;
use crate::core::otp::{self, Channel, Decoy, Destination, IssueRequest, decoy};
use crate::core::users;
use crate::db::{capillary_sessions, now_ms, users as user_rows};
use crate::error::{Error, Result};
use crate::state::AppState;

pub async fn call(state: &AppState, input: SessionRequest) -> Result<()> {
    let now = now_ms();
    let reveal = state.settings.security.reveal_unknown_users;
    let brand = input.brand.clone();
    let policy = brands::policy(&state.settings.otp, &brand);
    let mut request = IssueRequest::new(String::new(), brands::PURPOSE, policy, Vec::new());
    request.org_id = brand.org_id;
    request.sms_template = brand.sms_template.clone();
    request.limit_scope = Some(brands::limit_scope(&brand));
    let channels = brand.channels();
    super::issuing(state, move |c, keys, templates| {
        let session = capillary_sessions::find(c, &input.session_id)?;
        let session = brands::check_session(session, &input, now)?;
        let id = &input.identifier;
        let destinations = match id.kind {
            IdentifierKind::Mobile if channels.contains(&Channel::Sms) => vec![Destination {
                channel: Channel::Sms,
                address: format!("+{}", id.value),
            }],
            IdentifierKind::Email if channels.contains(&Channel::Email) => vec![Destination {
                channel: Channel::Email,
                address: id.value.clone(),
            }],
            IdentifierKind::Username => {
                // A session of no user looks up no user, in the same one statement.
                let user = user_rows::find_by_id(c, session.user_id.unwrap_or(0))?;
                let destinations = user
                    .as_ref()
                    .map(|u| users::destinations(u, &request.policy))
                    .unwrap_or_default();
                match (&user, destinations.is_empty(), reveal) {
                    (_, false, _) => destinations,
                    (None, true, true) => return Err(Error::UserNotFound),
                    (Some(_), true, true) => return Err(Error::NoDestination),
                    (found, true, false) => {
                        request.decoy = Some(match found {
                            None => Decoy::UnknownUser,
                            Some(_) => Decoy::NoDestination,
                        });
                        decoy::destinations(keys, &id.value, &channels, None)
                    }
                }
            }
            _ => Vec::new(),
        };
        if destinations.is_empty() {
            return Err(Error::NoDestination);
        }
        request.subject = brands::subject(&session.id);
        request.user_id = session.user_id.map(UserId);
        request.destinations = destinations;
        otp::issue(c, keys, templates, &request)?;
        Ok(())
    })
    .await
}
