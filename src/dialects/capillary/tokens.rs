//! otpgate's tokens on /auth/v1: HS256 JWTs signed with `secrets.capillary_jwt_key`,
//! else a key derived from the OTP key.

use serde::{Deserialize, Serialize};

use super::codes::{Failure, Operation};
use crate::core::brands::{Brand, BrandSession};
use crate::error::Error;
use crate::state::AppState;

/// The claims of otpgate's tokens (HS256 JWTs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Always `otpgate`.
    pub iss: String,
    /// The sessionId the token belongs to.
    pub sub: String,
    /// The brand, as configured.
    pub org: String,
    /// `<identifierType>|<normalised identifierValue>`.
    pub idv: String,
    /// The deviceId (mobile), else null.
    pub dev: Option<String>,
    /// The directory user's id, when the identifier is a known user.
    pub uid: Option<String>,
    /// `VIEW` (token/generate), `USER` (otp/validate's token) or `AUTH` (its key).
    pub rol: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

pub const ISSUER: &str = "otpgate";

/// The token key: `secrets.capillary_jwt_key`, else derived from the OTP key.
pub fn jwt_key(state: &AppState) -> Vec<u8> {
    state
        .settings
        .secrets
        .capillary_jwt_key
        .as_deref()
        .and_then(|k| crate::core::keys::parse_key(k, 32).ok())
        .unwrap_or_else(|| state.keys.derived(b"capillary jwt v1").to_vec())
}

/// A signed token for a session.
pub fn sign(
    state: &AppState,
    op: Operation,
    session: &BrandSession,
    brand: &Brand,
    role: &str,
    now_ms: i64,
    valid_seconds: i64,
) -> Result<String, Failure> {
    let iat = now_ms / 1000;
    let claims = Claims {
        iss: ISSUER.into(),
        sub: session.id.clone(),
        org: brand.name.clone(),
        idv: format!("{}|{}", session.identifier_type, session.identifier_value),
        dev: session.device_id.clone(),
        uid: session.user_id.map(|u| u.to_string()),
        rol: role.into(),
        iat,
        exp: iat + valid_seconds,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&jwt_key(state)),
    )
    .map_err(|e| Failure::from_core(op, Error::internal(e)))
}

/// The claims of a token this gateway signed with `key`, if it is valid and unexpired.
pub fn verify_token(key: &[u8], token: &str) -> Option<Claims> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, &jsonwebtoken::DecodingKey::from_secret(key), &v)
        .ok()
        .map(|d| d.claims)
}
