//! The ServiceNames the envelope serves, compared without case as the legacy endpoint
//! does, and how each one runs: decode `objCommonParameters`, call the service, encode.

use std::net::IpAddr;

use serde_json::Value;

use super::{adm_generate_otp, login_app, user_document};
use crate::dialects::twofactor;
use crate::error::Result;
use crate::services::{self, throttle};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GenerateOtp,
    LoginApp,
    /// A TwoFactor action sent as a ServiceName: its DTO is the OutputObject.
    TwoFactor(twofactor::Operation),
}

const NAMES: &[(&str, Operation)] = &[
    ("ADM_GenerateOTP", Operation::GenerateOtp),
    ("LoginApp", Operation::LoginApp),
];

impl Operation {
    /// The ServiceName as otpgate spells it (a metrics label).
    pub fn name(self) -> &'static str {
        match self {
            Operation::TwoFactor(op) => op.name(),
            op => NAMES
                .iter()
                .find(|(_, o)| *o == op)
                .map_or(crate::wire::access::UNKNOWN, |(n, _)| *n),
        }
    }
}

/// The operation of a ServiceName.
pub fn find(service_name: &str) -> Option<Operation> {
    let name = service_name.trim();
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, op)| *op)
        .or_else(|| twofactor::Operation::named(name).map(Operation::TwoFactor))
}

/// What an operation answers in the envelope.
pub enum Reply {
    /// The envelope's TokenID and OutputObject.
    Envelope {
        token_id: Option<String>,
        output_object: Value,
    },
    /// A document that replaces the envelope (LoginApp's `{"User": …}`).
    Document(Box<user_document::Document>),
    /// A TwoFactor DTO as the OutputObject; a failure also fills `Errors`.
    Dto(twofactor::Dto),
}

/// Runs an operation on `objCommonParameters` for the client at `client`: Ok with its
/// reply, or the error (a business failure, the throttle's refusal or a fault) the
/// envelope answers.
pub async fn run(state: &AppState, op: Operation, params: &Value, client: IpAddr) -> Result<Reply> {
    match op {
        Operation::GenerateOtp => {
            let (input, form) = adm_generate_otp::decode(state, params, client)?;
            throttle::admit(state, client, &input)?;
            let outcome = services::adm_generate_otp::call(state, input)
                .await
                .inspect_err(|e| throttle::after_failure(state, client, e))?;
            let (token_id, output_object) = adm_generate_otp::encode(outcome, form);
            Ok(Reply::Envelope {
                token_id,
                output_object,
            })
        }
        Operation::LoginApp => {
            let input = login_app::decode(state, params, client)?;
            throttle::admit(state, client, &input)?;
            let outcome = services::login_app::call(state, input).await?;
            Ok(Reply::Document(Box::new(login_app::encode(
                state, &outcome,
            ))))
        }
        Operation::TwoFactor(op) => {
            Ok(Reply::Dto(twofactor::run(state, op, params, client).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_found_without_case() {
        assert_eq!(find(" adm_generateotp "), Some(Operation::GenerateOtp));
        assert_eq!(find("LOGINAPP"), Some(Operation::LoginApp));
        assert_eq!(
            find("createtwofactorsmsotp"),
            Some(Operation::TwoFactor(twofactor::Operation::Create))
        );
        assert_eq!(find("IM_LogOrUpdateIncident"), None);
    }
}
