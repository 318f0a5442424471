//! /auth/v1/token/generate (and /web/): opens a session for an identifier of a brand
//! and answers its sessionId with a VIEW token. A USERNAME must be a directory user;
//! a MOBILE or EMAIL need not be (`appRegistered` says whether it is).

use serde_json::{Value, json};

use crate::db::capillary_sessions::{self, CapSession};
use crate::db::{now_ms, users};
use crate::dialects::capillary::protocol::{self as capillary, Call, Failure, IdType, Operation};
use crate::state::AppState;

const OP: Operation = Operation::TokenGenerate;

pub async fn call(app: &AppState, call: &Call) -> Result<Value, Failure> {
    let brand = capillary::brand(app, OP, &call.brand_name()?).await?;
    let device_id = call.device_id()?;
    let id = call.identifier()?;
    let now = now_ms();
    let session = CapSession {
        id: format!("P-{}", uuid::Uuid::new_v4()),
        brand_key: brand.brand_key.clone(),
        web: call.web,
        identifier_type: id.kind.as_str().to_string(),
        identifier_value: id.value.clone(),
        device_id,
        user_id: None,
        created_at: now,
        expires_at: now + brand.session_validity_seconds * 1000,
        validated_at: None,
    };
    let opened = app
        .db
        .run(move |c| {
            let user = match id.kind {
                IdType::Mobile => users::find_by_mobile_digits(c, &id.value)?,
                IdType::Email => users::find_by_email(c, &id.value)?,
                IdType::Username => users::find_by_login(c, &id.value)?,
            };
            if id.kind == IdType::Username && user.is_none() {
                return Ok(None);
            }
            let session = CapSession {
                user_id: user.as_ref().map(|u| u.id),
                ..session
            };
            capillary_sessions::insert(c, &session)?;
            Ok(Some((session, user)))
        })
        .await
        .map_err(|e| Failure::from_core(OP, e))?;
    // Only a USERNAME that is nobody's opens no session.
    let Some((session, user)) = opened else {
        return Err(Failure::of(1515));
    };
    let token = capillary::sign(
        app,
        OP,
        &session,
        &brand,
        "VIEW",
        now,
        brand.session_validity_seconds,
    )?;
    Ok(capillary::success(json!({
        "auth": {"token": token, "key": null},
        "user": {
            "appRegistered": user.is_some(),
            "sessionId": session.id,
            "role": "VIEW",
            "userRegisteredForPassword": user.is_some_and(|u| u.password_hash.is_some()),
        },
    })))
}
