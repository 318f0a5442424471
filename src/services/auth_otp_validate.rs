//! /auth/v1/otp/validate (and /web/): checks the code of an open session's latest
//! OTP. A right code closes the session (in the same transaction that spends the
//! code) and answers a USER token; on mobile also an AUTH key and the user block, on
//! the web `key` and `user` are null. `otp` may be a string or a number (a
//! number is padded with leading zeros to the brand's code length). The wrong code
//! that uses up the retries (1518) ends the session.

use serde_json::{Value, json};

use crate::core::otp::{self, VerifyRequest};
use crate::db::{capillary_sessions, challenges, now_ms, users};
use crate::dialects::capillary::protocol::{self as capillary, Call, Failure, Operation};
use crate::error::Error;
use crate::state::AppState;

const OP: Operation = Operation::OtpValidate;

pub async fn call(app: &AppState, call: &Call) -> Result<Value, Failure> {
    let brand = capillary::brand(app, OP, &call.brand_name()?).await?;
    let now = now_ms();
    capillary::check_hash(&brand, call, now)?;
    let device_id = call.device_id()?;
    let id = call.identifier()?;
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

    let sid = session_id.clone();
    let session = app
        .db
        .run(move |c| Ok(capillary_sessions::find(c, &sid)?))
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    let session = capillary::check_session(session, call, &brand, device_id.as_deref(), &id, now)?;

    let keys = app.keys.clone();
    let subject = capillary::subject(&session.id);
    let user_id = session.user_id;
    let outcome = app
        .db
        .run(move |c| {
            let Some(latest) = challenges::latest_for_subject(c, &subject, capillary::PURPOSE)?
            else {
                return Ok(Err(Failure::of(1537)));
            };
            let req = VerifyRequest {
                transaction_id: latest.id,
                code,
                device_id: None,
                subject: Some(subject),
                purposes: &[capillary::PURPOSE],
                allow_revalidate: false,
            };
            let verified = otp::verify_then(c, &keys, &req, |c, _| {
                // A concurrent validation of the same session got there first.
                if !capillary_sessions::mark_validated(c, &session_id, now_ms())? {
                    return Err(Error::InvalidSession);
                }
                let user = match user_id {
                    Some(u) => users::find_by_id(c, u)?,
                    None => None,
                };
                Ok(user.is_some_and(|u| u.password_hash.is_some()))
            });
            match verified {
                Ok((_, with_password)) => Ok(Ok(with_password)),
                Err(e) if e.is_server_fault() => Err(e),
                // 1518 ends the session: a new code on it would bring fresh retries.
                Err(e @ (Error::WrongCode { remaining: 0 } | Error::TooManyAttempts)) => {
                    capillary_sessions::end(c, &session_id, now_ms())?;
                    Ok(Err(Failure::from_core(OP, e)))
                }
                Err(e) => Ok(Err(Failure::from_core(OP, e))),
            }
        })
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    let with_password = outcome?;

    let now = now_ms();
    let token = capillary::sign(
        app,
        OP,
        &session,
        &brand,
        "USER",
        now,
        brand.token_validity_seconds,
    )?;
    if call.web {
        return Ok(capillary::success(json!({
            "auth": {"token": token, "key": null},
            "user": null,
        })));
    }
    let key = capillary::sign(
        app,
        OP,
        &session,
        &brand,
        "AUTH",
        now,
        brand.key_validity_seconds,
    )?;
    Ok(capillary::success(json!({
        "auth": {"token": token, "key": key},
        "user": {
            "appRegistered": session.user_id.is_some(),
            "sessionId": null,
            "role": "USER",
            "userRegisteredForPassword": with_password,
        },
    })))
}
