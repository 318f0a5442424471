//! otp/generate: sends a code to the identifier of an open session: a mobile number by
//! SMS, an e-mail address by e-mail, a login name to the directory user's mobile
//! and/or e-mail, on the brand's channels. The brand's OTP limit (else the gateway's
//! send limit) is counted in the database per brand and destination; a new code
//! supersedes the session's previous one.

use crate::core::brands::{self, IdentifierKind, SessionRequest};
use crate::core::ids::UserId;
use crate::core::otp::{self, Channel, Destination, IssueRequest};
use crate::core::users;
use crate::db::{capillary_sessions, now_ms, users as user_rows};
use crate::error::{Error, Result};
use crate::state::AppState;

pub async fn call(state: &AppState, input: SessionRequest) -> Result<()> {
    let now = now_ms();
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
                let user = match session.user_id {
                    Some(u) => user_rows::find_by_id(c, u)?,
                    None => None,
                };
                users::destinations(&user.ok_or(Error::UserNotFound)?, &request.policy)
            }
            _ => Vec::new(),
        };
        if destinations.is_empty() {
            return Err(Error::NoDestination);
        }
        request.subject = brands::subject(&session.id);
        request.user_id = session.user_id.map(UserId);
        request.destinations = destinations;
        otp::issue(c, keys, templates, request)?;
        Ok(())
    })
    .await
}
