//! LoginApp: log in with a one-time code (the transaction it was issued under and the
//! code, from the device it was issued for) or with a password. Answers the user, the
//! policy that applies to them and a new session.

use crate::core::ids::ChallengeId;
use crate::core::otp::{self, Policy, VerifyRequest};
use crate::core::sessions;
use crate::core::users::User;
use crate::db::now_ms;
use crate::error::Result;
use crate::metrics::OtpEvent;
use crate::services::caller::{self, Caller};
use crate::state::AppState;

pub enum Input {
    Code {
        transaction_id: ChallengeId,
        code: String,
        device_id: Option<String>,
    },
    Password {
        login: String,
        password: String,
        device_id: Option<String>,
        /// The client's address: failures are counted per login and address.
        client: std::net::IpAddr,
    },
}

pub struct Outcome {
    pub user: User,
    pub policy: Policy,
    pub session_token: String,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let session_settings = state.settings.session.clone();
    let (user, session_token) = match input {
        Input::Code {
            transaction_id,
            code,
            device_id,
        } => {
            let keys = state.keys.clone();
            let req = VerifyRequest {
                transaction_id,
                code,
                device_id,
                subject: None,
                purposes: &["login", "second_factor"],
                allow_revalidate: false,
            };
            let result = state
                .db
                .run_as("verify", move |c| {
                    let device = req.device_id.as_deref();
                    let (token, opening) =
                        sessions::new_session(device, &session_settings, now_ms());
                    let user = otp::verify_login(c, &keys, &req, &opening)?;
                    Ok((user, token))
                })
                .await;
            state.metrics.otp_result(OtpEvent::Verified, &result);
            result?
        }
        Input::Password {
            login,
            password,
            device_id,
            client,
        } => {
            let (user, _) = caller::authenticate(
                state,
                Caller::Password {
                    login,
                    password,
                    client,
                },
            )
            .await?;
            let id = user.id;
            let token = state
                .db
                .run(move |c| sessions::create(c, id, device_id.as_deref(), &session_settings))
                .await?;
            (user, token)
        }
    };
    let policy = Policy::for_org(&state.settings, user.org_id);
    Ok(Outcome {
        user,
        policy,
        session_token,
    })
}
