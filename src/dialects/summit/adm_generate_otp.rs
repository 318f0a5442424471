//! ADM_GenerateOTP on the envelope (seeds 000 and 001):
//! - authenticated: `_ProxyDetails` with AuthType FORM (UserName + Password), APIKEY
//!   (APIKey) or a live TokenID (caller.rs); `objUserInformation` names the user and
//!   must match. Answers a TokenID.
//! - pre-login: `objUserInformation.AuthType` LOGIN_OTP with CountryCode,
//!   EncryptedEmailID (plain or field-encrypted) and DeviceId; no `_ProxyDetails`.
//!
//! Both answer `OutputObject.OTP_Communication`.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::core::ids::UserId;
use crate::error::{Error, Result};
use crate::services::adm_generate_otp::{Claimed, Input, LoginCode, Outcome};
use crate::state::AppState;
use crate::wire::fields::Fields;

/// What the answer says of the form that was asked.
pub enum Form {
    Authenticated,
    PreLogin,
}

pub fn decode(state: &AppState, params: &Value, client: IpAddr) -> Result<(Input, Form)> {
    let p = Fields::new("objCommonParameters", params)?;
    let info = p.required_object("objUserInformation")?;
    let login_otp = info
        .text("AuthType")?
        .is_some_and(|a| a.trim().eq_ignore_ascii_case("LOGIN_OTP"));
    if login_otp {
        return Ok((Input::Login(pre_login(state, info)?), Form::PreLogin));
    }
    let Some(proxy) = p.object("_ProxyDetails")? else {
        return Err(Error::invalid(
            "_ProxyDetails is required in objCommonParameters unless objUserInformation.AuthType is LOGIN_OTP.",
        ));
    };
    let caller = super::caller::decode(&proxy, client)?;
    // 0 (or "0") is how the legacy clients say "not given".
    let given = |v: Option<i64>| v.filter(|n| *n != 0);
    let claimed = Claimed {
        user_id: given(info.int("UserID")?).map(UserId),
        domain_id: given(info.int("DomainId")?),
        login_uid: info.text("LoginUID")?.filter(|u| u.trim() != "0"),
        user_name: info.text("UserName")?,
    };
    Ok((Input::SecondFactor { caller, claimed }, Form::Authenticated))
}

fn pre_login(state: &AppState, info: Fields<'_>) -> Result<LoginCode> {
    let country = info.required_text("CountryCode")?;
    let email_field = info.required_text("EncryptedEmailID")?;
    let device = info.required_text("DeviceId")?;
    let email = state
        .plain_field(&email_field, |s| s.contains('@'))
        .ok_or_else(|| {
            Error::invalid(if state.field_cipher.is_some() {
                "EncryptedEmailID could not be decrypted to an e-mail address."
            } else {
                "EncryptedEmailID is not an e-mail address, and no field cipher is configured to decrypt it."
            })
        })?;
    let country = country.trim().trim_start_matches('+');
    if !(1..=4).contains(&country.len()) || !country.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            "CountryCode in objUserInformation must be a country calling code, e.g. 91.",
        ));
    }
    Ok(LoginCode {
        country_code: country.to_string(),
        email,
        device_id: device.trim().to_string(),
    })
}

/// The envelope's TokenID and OutputObject.
pub fn encode(outcome: Outcome, form: Form) -> (Option<String>, Value) {
    let (message, authentication_type) = match form {
        Form::Authenticated => (String::new(), "password"),
        Form::PreLogin => (
            format!("OTP sent to {}", outcome.sent_to.join(" and ")),
            "otp",
        ),
    };
    let communication = json!({
        "OTP_Communication": [{
            "Message": message,
            "AuthenticationType": authentication_type,
            "TransactionID": outcome.transaction_id.as_str(),
        }]
    });
    (outcome.session_token, communication)
}
