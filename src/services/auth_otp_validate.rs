//! otp/validate: checks the code of an open session's latest OTP. A right code closes
//! the session in the same transaction that spends the code. The wrong code that uses
//! up the retries ends the session: a new code on it would bring fresh retries.
//! Parallel requests on one session get the answers they would get one after another.

use crate::core::brands::{self, BrandSession, SessionRequest};
use crate::core::ids::ChallengeId;
use crate::core::otp::{self, VerifyRequest};
use crate::db::{capillary_sessions, challenges, now_ms, users};
use crate::error::{Error, Result};
use crate::metrics::OtpEvent;
use crate::state::AppState;

pub struct Input {
    pub session: SessionRequest,
    pub code: String,
}

pub struct Outcome {
    /// The session the code was issued under, now closed.
    pub session: BrandSession,
    pub user_has_password: bool,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let now = now_ms();
    let keys = state.keys.clone();
    let result = state
        .db
        .run_as("verify", move |c| {
            let session = capillary_sessions::find(c, &input.session.session_id)?;
            let session = brands::check_session(session, &input.session, now)?;
            let subject = brands::subject(&session.id);
            let latest =
                challenges::latest_capillary(c, &subject)?.ok_or(Error::UnknownTransaction)?;
            let req = VerifyRequest {
                transaction_id: ChallengeId::from_stored(latest.id),
                code: input.code.clone(),
                device_id: None,
                subject: Some(subject),
                purposes: &[brands::PURPOSE],
                allow_revalidate: false,
            };
            let user_id = session.user_id;
            let verified = otp::verify_then(c, &keys, &req, |c, _| {
                // A concurrent validation of the same session got there first.
                if !capillary_sessions::mark_validated(c, &session.id, now_ms())? {
                    return Err(Error::InvalidSession);
                }
                let user = match user_id {
                    Some(u) => users::find_by_id(c, u)?,
                    None => None,
                };
                Ok(user.is_some_and(|u| u.password_hash.is_some()))
            });
            match verified {
                Ok((_, user_has_password)) => Ok(Outcome {
                    session,
                    user_has_password,
                }),
                Err(e @ Error::WrongCode { remaining: 0 }) => {
                    capillary_sessions::end(c, &session.id, now_ms())?;
                    Err(e)
                }
                // A parallel request spent the last retry, or the code, after this one
                // found the session open. Each request is answered as it would be had
                // they come one after another: only the request that spent the last
                // retry is told so (1518); those after it find the session closed.
                Err(Error::TooManyAttempts) => {
                    capillary_sessions::end(c, &session.id, now_ms())?;
                    Err(Error::InvalidSession)
                }
                Err(Error::CodeAlreadyUsed) => Err(Error::InvalidSession),
                Err(e) => Err(e),
            }
        })
        .await;
    state.metrics.otp_result(OtpEvent::Verified, &result);
    result
}
