//! The three operations on the wire: decode the call into the service's input (in the
//! order the legacy API checks a request: brand, payload hash, device, identifier,
//! session, code), run it, and write the answer with its tokens.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::codes::{Failure, Operation, success};
use super::request::Call;
use super::{hash, tokens};
use crate::core::brands::{Brand, SessionRequest};
use crate::core::now_ms;
use crate::services::{self, auth_otp_generate, auth_otp_validate, auth_token_generate, throttle};
use crate::state::AppState;

/// Runs an operation for the client at `client`.
pub async fn run(
    state: &AppState,
    op: Operation,
    call: &Call,
    client: IpAddr,
) -> Result<Value, Failure> {
    let name = call.brand_name()?;
    let brand = services::brand::find(state, &name)
        .await
        .map_err(|e| Failure::from_core(op, e))?;
    match op {
        Operation::TokenGenerate => token_generate(state, call, brand, client).await,
        Operation::OtpGenerate => otp_generate(state, call, brand, client).await,
        Operation::OtpValidate => otp_validate(state, call, brand, client).await,
    }
}

/// Takes the input's requests from the client's buckets, or fails as 429.
fn admit(
    state: &AppState,
    op: Operation,
    client: IpAddr,
    input: &impl throttle::Throttled,
) -> Result<(), Failure> {
    throttle::admit(state, client, input).map_err(|e| Failure::from_core(op, e))
}

/// Opens a session; answers its sessionId with a VIEW token.
async fn token_generate(
    state: &AppState,
    call: &Call,
    brand: Brand,
    client: IpAddr,
) -> Result<Value, Failure> {
    const OP: Operation = Operation::TokenGenerate;
    let input = auth_token_generate::Input {
        brand: brand.clone(),
        web: call.web,
        device_id: call.device_id()?,
        identifier: call.identifier()?,
    };
    admit(state, OP, client, &input)?;
    let now = now_ms();
    let o = auth_token_generate::call(state, input)
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    let validity = brand.session_validity_seconds;
    let token = tokens::sign(state, OP, &o.session, &brand, "VIEW", now, validity)?;
    Ok(success(json!({
        "auth": {"token": token, "key": null},
        "user": {
            "appRegistered": o.user_registered,
            "sessionId": o.session.id,
            "role": "VIEW",
            "userRegisteredForPassword": o.user_has_password,
        },
    })))
}

async fn otp_generate(
    state: &AppState,
    call: &Call,
    brand: Brand,
    client: IpAddr,
) -> Result<Value, Failure> {
    const OP: Operation = Operation::OtpGenerate;
    hash::check_hash(&brand, call, now_ms())?;
    let input = SessionRequest {
        web: call.web,
        device_id: call.device_id()?,
        identifier: call.identifier()?,
        session_id: call.session_id()?,
        brand,
    };
    admit(state, OP, client, &input)?;
    auth_otp_generate::call(state, input)
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    Ok(success(json!({})))
}

/// A right code answers a USER token; on mobile also an AUTH key and the user block,
/// on the web `key` and `user` are null. `otp` may be a string or a number (a number
/// is padded with leading zeros to the brand's code length).
async fn otp_validate(
    state: &AppState,
    call: &Call,
    brand: Brand,
    client: IpAddr,
) -> Result<Value, Failure> {
    const OP: Operation = Operation::OtpValidate;
    hash::check_hash(&brand, call, now_ms())?;
    let device_id = call.device_id()?;
    let identifier = call.identifier()?;
    let session_id = call.session_id()?;
    let f = call.fields()?;
    let mut code = f
        .text("otp")
        .map_err(Failure::invalid)?
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::invalid("otp is required."))?;
    // A code sent as a number has lost its leading zeros: give them back.
    if f.get("otp").is_some_and(Value::is_u64) {
        code = format!("{code:0>width$}", width = brand.otp_length as usize);
    }
    if code.len() > 20 {
        return Err(Failure::of(1506));
    }
    let input = auth_otp_validate::Input {
        session: SessionRequest {
            brand: brand.clone(),
            web: call.web,
            device_id,
            identifier,
            session_id,
        },
        code,
    };
    admit(state, OP, client, &input)?;
    let o = auth_otp_validate::call(state, input)
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    let now = now_ms();
    let token_validity = brand.token_validity_seconds;
    let token = tokens::sign(state, OP, &o.session, &brand, "USER", now, token_validity)?;
    if call.web {
        return Ok(success(json!({
            "auth": {"token": token, "key": null},
            "user": null,
        })));
    }
    let key_validity = brand.key_validity_seconds;
    let key = tokens::sign(state, OP, &o.session, &brand, "AUTH", now, key_validity)?;
    Ok(success(json!({
        "auth": {"token": token, "key": key},
        "user": {
            "appRegistered": o.session.user_id.is_some(),
            "sessionId": null,
            "role": "USER",
            "userRegisteredForPassword": o.user_has_password,
        },
    })))
}
