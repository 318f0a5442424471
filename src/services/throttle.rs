//! What each operation asks of the per-client throttle (core/throttle.rs): the kind
//! of request it is, and the identifier it is about. A dialect admits a decoded input
//! with [`admit`] before it runs the operation, so a throttled request does nothing
//! and stores nothing.

use std::net::IpAddr;

use crate::core::brands::SessionRequest;
use crate::core::throttle::{Action, Ask, FAILED_KEY_COST};
use crate::error::{Error, Result};
use crate::services::caller::Caller;
use crate::services::{
    adm_generate_otp, auth_otp_validate, auth_token_generate, create_otp_for_remind_password,
    create_two_factor_sms_otp, login_app, validate_two_factor_sms_oto_by_reference_id,
    validate_two_factor_sms_otp,
};
use crate::state::AppState;

/// An operation's input, as the throttle counts it.
pub trait Throttled {
    fn ask(&self) -> Ask<'_>;
}

/// Takes the input's requests from the client's buckets, or answers
/// `Error::Throttled`.
pub fn admit(state: &AppState, client: IpAddr, input: &impl Throttled) -> Result<()> {
    let ask = input.ask();
    let admitted = state.throttle.admit(client, &ask);
    if admitted.is_err() && ask.iter().any(|(a, _)| *a != Action::Login) {
        state.metrics.otp(crate::metrics::OtpEvent::Throttled);
    }
    admitted
}

/// What an operation's failure costs its client beyond the request: a key that is no
/// key (unknown, revoked or expired) is charged as several requests, so a script
/// guessing keys is stopped long before a client that uses a good one.
pub fn after_failure(state: &AppState, client: IpAddr, e: &Error) {
    if matches!(e, Error::InvalidApiKey | Error::ApiKeyExpired) {
        state
            .throttle
            .charge(client, Action::Generate, FAILED_KEY_COST);
    }
}

/// A caller's proof counts against what it names: a login name as a password login
/// too, a session or an API key by itself.
fn caller_ask(caller: &Caller) -> Ask<'_> {
    match caller {
        Caller::Password { login, .. } => vec![(Action::Login, login), (Action::Generate, login)],
        Caller::Session { token } => vec![(Action::Generate, token)],
        Caller::ApiKey { key } => vec![(Action::Generate, key)],
    }
}

impl Throttled for adm_generate_otp::Input {
    fn ask(&self) -> Ask<'_> {
        match self {
            adm_generate_otp::Input::SecondFactor { caller, .. } => caller_ask(caller),
            adm_generate_otp::Input::Login(l) => vec![(Action::Generate, &l.email)],
        }
    }
}

impl Throttled for login_app::Input {
    fn ask(&self) -> Ask<'_> {
        match self {
            login_app::Input::Code { transaction_id, .. } => {
                vec![(Action::Verify, transaction_id.as_str())]
            }
            login_app::Input::Password { login, .. } => vec![(Action::Login, login)],
        }
    }
}

impl Throttled for create_two_factor_sms_otp::Input {
    fn ask(&self) -> Ask<'_> {
        vec![(Action::Generate, &self.phone)]
    }
}

impl Throttled for validate_two_factor_sms_otp::Input {
    fn ask(&self) -> Ask<'_> {
        match &self.otp {
            validate_two_factor_sms_otp::OtpRef::Transaction(id) => {
                vec![(Action::Verify, id.as_str())]
            }
            // Guessing codes of a customer's numeric ids counts against the customer.
            validate_two_factor_sms_otp::OtpRef::Numeric { customer, .. } => {
                vec![(Action::Verify, customer)]
            }
        }
    }
}

impl Throttled for validate_two_factor_sms_oto_by_reference_id::Input {
    fn ask(&self) -> Ask<'_> {
        vec![(Action::Verify, self.transaction_id.as_str())]
    }
}

impl Throttled for create_otp_for_remind_password::Input {
    fn ask(&self) -> Ask<'_> {
        vec![(Action::Generate, &self.login)]
    }
}

/// Opening a session tells about its identifier, so it counts as a request for a
/// code.
impl Throttled for auth_token_generate::Input {
    fn ask(&self) -> Ask<'_> {
        vec![(Action::Generate, &self.identifier.value)]
    }
}

/// otp/generate.
impl Throttled for SessionRequest {
    fn ask(&self) -> Ask<'_> {
        vec![(Action::Generate, &self.identifier.value)]
    }
}

/// otp/validate: guesses count against the identifier, whichever session they use.
impl Throttled for auth_otp_validate::Input {
    fn ask(&self) -> Ask<'_> {
        vec![(Action::Verify, &self.session.identifier.value)]
    }
}
