//! LoginApp on the envelope: AuthType OTP (TransactionID + the code in Password +
//! DeviceId) or FORM (UserName + Password). Success answers the user document of seed
//! 001 instead of the envelope.

use std::net::IpAddr;

use serde_json::Value;

use super::user_document;
use crate::core::ids::ChallengeId;
use crate::error::{Error, Result};
use crate::services::login_app::{Input, Outcome};
use crate::state::AppState;
use crate::wire::fields::Fields;

/// The input of a request from the client at `client`.
pub fn decode(state: &AppState, params: &Value, client: IpAddr) -> Result<Input> {
    let p = Fields::new("objCommonParameters", params)?;
    let proxy = p.required_object("_ProxyDetails")?;
    let auth_type = proxy.required_text("AuthType")?;
    let device_id = proxy
        .text("DeviceId")?
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    match auth_type.trim().to_ascii_uppercase().as_str() {
        "OTP" | "LOGIN_OTP" => {
            let txn = proxy.required_text("TransactionID")?;
            let code = proxy.required_text("Password")?;
            // The TransactionID may come field-encrypted; any spelling of a GUID names
            // the same one; anything else names no OTP.
            let transaction_id = state
                .plain_field(&txn, |s| ChallengeId::parse(s).is_some())
                .and_then(|s| ChallengeId::parse(&s))
                .ok_or(Error::UnknownTransaction)?;
            // A code the client sent encrypted is decrypted; anything else is compared as given.
            let code = state
                .plain_field(&code, |s| {
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
                })
                .unwrap_or(code);
            Ok(Input::Code {
                transaction_id,
                code,
                device_id,
            })
        }
        "FORM" => Ok(Input::Password {
            login: proxy.required_text("UserName")?,
            password: proxy.required_text("Password")?,
            device_id,
            client,
        }),
        other => Err(Error::invalid(format!(
            "AuthType '{other}' is not supported by LoginApp: use OTP (TransactionID and the code in Password) or FORM (UserName and Password)."
        ))),
    }
}

/// The document that replaces the envelope.
pub fn encode(state: &AppState, outcome: &Outcome) -> user_document::Document {
    user_document::document(
        &outcome.user,
        &outcome.policy,
        &state.settings,
        &outcome.session_token,
    )
}
