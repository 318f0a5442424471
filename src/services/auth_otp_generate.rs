//! /auth/v1/otp/generate (and /web/): sends a code to the identifier of an open
//! session: a MOBILE by SMS, an EMAIL by e-mail, a USERNAME to the directory user's
//! mobile and/or e-mail, on the brand's channels. The brand's otpMaxCount per
//! otpTimeOut minutes (else the gateway's send limit) is counted in the database per
//! brand and destination; a new code supersedes the session's previous one.

use serde_json::{Value, json};

use crate::core::otp::{Channel, Destination, IssueRequest, Policy};
use crate::db::capillary_brands::Brand;
use crate::db::capillary_sessions;
use crate::db::{now_ms, users};
use crate::dialects::capillary::protocol::{self as capillary, Call, Failure, IdType, Operation};
use crate::state::AppState;

const OP: Operation = Operation::OtpGenerate;

pub async fn call(app: &AppState, call: &Call) -> Result<Value, Failure> {
    let brand = capillary::brand(app, OP, &call.brand_name()?).await?;
    let now = now_ms();
    capillary::check_hash(&brand, call, now)?;
    let device_id = call.device_id()?;
    let id = call.identifier()?;
    let session_id = call.session_id()?;
    let session = app
        .db
        .run(move |c| Ok(capillary_sessions::find(c, &session_id)?))
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    let session = capillary::check_session(session, call, &brand, device_id.as_deref(), &id, now)?;

    let channels = brand.channels();
    let destinations = match id.kind {
        IdType::Mobile if channels.contains(&Channel::Sms) => vec![Destination {
            channel: Channel::Sms,
            address: format!("+{}", id.value),
        }],
        IdType::Email if channels.contains(&Channel::Email) => vec![Destination {
            channel: Channel::Email,
            address: id.value.clone(),
        }],
        IdType::Username => {
            let user_id = session.user_id;
            let user = app
                .db
                .run(move |c| match user_id {
                    Some(u) => Ok(users::find_by_id(c, u)?),
                    None => Ok(None),
                })
                .await
                .map_err(|e| Failure::from_core(OP, e))?
                .ok_or_else(|| Failure::of(1515))?;
            super::auth::destinations(&user, &policy(app, &brand))
        }
        _ => Vec::new(),
    };
    if destinations.is_empty() {
        return Err(Failure::of(1540));
    }
    let request = IssueRequest {
        subject: capillary::subject(&session.id),
        purpose: capillary::PURPOSE,
        user_id: session.user_id,
        org_id: brand.org_id,
        destinations,
        device_id: None,
        language: None,
        sms_template: brand.sms_template.clone(),
        reveal_code: false,
        policy: policy(app, &brand),
        limit_scope: Some(limit_scope(&brand)),
    };
    super::issue(app, request)
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    Ok(capillary::success(json!({})))
}

/// The brand's policy: its code length, validity and retries; its OTP limit, or the
/// gateway's (`otp.max_sends` per `otp.send_window_seconds`) when the brand has none,
/// so that codes cannot be sent, and guessed, without end; no resend cooldown, which
/// the Capillary contract does not have.
fn policy(app: &AppState, brand: &Brand) -> Policy {
    let mut p = Policy::from_settings(&app.settings.otp);
    p.length = brand.otp_length as u32;
    p.expiry_ms = brand.otp_validity_seconds * 1000;
    p.max_attempts = brand.max_otp_retries;
    p.cooldown_ms = 0;
    p.channels = brand.channels();
    if let Some((count, minutes)) = brand.otp_limit() {
        p.max_sends = count;
        p.send_window_ms = minutes * 60_000;
    }
    p
}

/// The brand's sends to an address count apart from other brands' and other APIs'.
fn limit_scope(brand: &Brand) -> String {
    format!("capillary:{}", brand.brand_key)
}
