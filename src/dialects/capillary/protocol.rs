//! What the three operations of the Capillary auth API (/auth/v1) share: the status
//! codes and their published messages, the reading of request fields (with the older
//! `mobile` shape and the `cap_*` headers), brands, sessions, the optional payload
//! hash and the signed tokens.
//!
//! Every answer carries `{"status":{"success","code","message"}}`; a business failure
//! is `success:false` with a 15xx code (HTTP 200), see schemas/capillary/codes.md.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::db::capillary_brands::{self, Brand};
use crate::db::capillary_sessions::CapSession;
use crate::error::Error;
use crate::state::AppState;
use crate::wire::fields::Fields;

/// The published codes used by otpgate, with their published messages.
pub const CODES: &[(i64, &str)] = &[
    (1502, "Unable to validate OTP."),
    (1503, "Unable to generate OTP."),
    (1504, "Unable to generate token."),
    (1505, "Invalid session."),
    (1506, "Invalid OTP."),
    (
        1507,
        "Mobile number does not match with the mobile number used to generate token/session.",
    ),
    (
        1508,
        "Device ID does not match with the device ID used to generate token/session.",
    ),
    (
        1509,
        "Brand name does not match with the brand name used to generate token/session.",
    ),
    (1515, "User does not exist."),
    (
        1518,
        "Reached the maximum allowed OTP retry attempts, Authenticate form the start.",
    ),
    (1519, "Invalid details passed."),
    (
        1534,
        "Reached the maximum number of OTPs allowed per customer.",
    ),
    (
        1537,
        "OTP is not generated for the provided details. Please generate OTP and try again.",
    ),
    (1540, "Either mobile or email is required to send OTP."),
    (
        1541,
        "Identifier used to generate session does not match with the identifier used to generate or validate OTP.",
    ),
    (1546, "Invalid identifierType passed."),
    (5004, "Response tampered"),
];

/// The purpose of the challenges this API issues (each session is a subject).
pub const PURPOSE: &str = "capillary";

/// The three operations; each has its own code for a fault of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    TokenGenerate,
    OtpGenerate,
    OtpValidate,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::TokenGenerate => "token/generate",
            Operation::OtpGenerate => "otp/generate",
            Operation::OtpValidate => "otp/validate",
        }
    }

    fn fault_code(self) -> i64 {
        match self {
            Operation::TokenGenerate => 1504,
            Operation::OtpGenerate => 1503,
            Operation::OtpValidate => 1502,
        }
    }
}

/// A failed call: its code, message and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i64,
    pub message: String,
    pub http: u16,
}

fn published(code: i64) -> &'static str {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("Invalid details passed.", |(_, m)| m)
}

impl Failure {
    /// A business failure with its published message.
    pub fn of(code: i64) -> Failure {
        Failure {
            code,
            message: published(code).to_string(),
            http: 200,
        }
    }

    /// 1519 with the reason after the published message.
    pub fn invalid(reason: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1519,
            message: format!("{} {reason}", published(1519)),
            http: 200,
        }
    }

    /// The failure an outcome of the core stands for, in an operation.
    pub fn from_core(op: Operation, e: Error) -> Failure {
        match e {
            Error::InvalidRequest(reason) => Failure::invalid(reason),
            Error::SendLimitReached { .. } | Error::ResendCooldown { .. } => Failure::of(1534),
            Error::NoDestination => Failure::of(1540),
            // The attempt that used up the retries tells the client to start again.
            Error::WrongCode { remaining: 0 } | Error::TooManyAttempts => Failure::of(1518),
            Error::WrongCode { .. } => Failure::of(1506),
            Error::CodeExpired
            | Error::CodeSuperseded
            | Error::CodeAlreadyUsed
            | Error::UnknownTransaction => Failure::of(1537),
            Error::DeviceMismatch => Failure::of(1508),
            Error::UserNotFound => Failure::of(1515),
            Error::InvalidSession => Failure::of(1505),
            Error::Unavailable => Failure {
                http: 503,
                ..Failure::of(op.fault_code())
            },
            e => {
                tracing::error!(operation = op.name(), error = ?e, "capillary request failed");
                Failure {
                    http: 500,
                    ..Failure::of(op.fault_code())
                }
            }
        }
    }

    pub fn body(&self) -> Value {
        json!({"status": {"success": false, "code": self.code, "message": self.message}})
    }
}

/// A success answer: the status, then `rest` in its order.
pub fn success(rest: Value) -> Value {
    let mut out = Map::new();
    out.insert(
        "status".into(),
        json!({"success": true, "code": 200, "message": "SUCCESS"}),
    );
    if let Value::Object(m) = rest {
        out.extend(m);
    }
    Value::Object(out)
}

/// The `cap_*` headers clients send alongside (or instead of) body fields.
#[derive(Debug, Clone, Default)]
pub struct CapHeaders {
    pub brand: Option<String>,
    pub device_id: Option<String>,
    pub mobile: Option<String>,
}

/// One request as the dialect decoded it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The JSON body, an object.
    pub body: Value,
    /// Came in on a /web/ route.
    pub web: bool,
    pub headers: CapHeaders,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    Mobile,
    Email,
    Username,
}

impl IdType {
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::Mobile => "MOBILE",
            IdType::Email => "EMAIL",
            IdType::Username => "USERNAME",
        }
    }

    pub fn parse(s: &str) -> Option<IdType> {
        match s.trim().to_ascii_uppercase().as_str() {
            "MOBILE" => Some(IdType::Mobile),
            "EMAIL" => Some(IdType::Email),
            "USERNAME" => Some(IdType::Username),
            _ => None,
        }
    }
}

/// The identifier a request names, normalised: the digits of a mobile number, a
/// lower-case e-mail address or login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub kind: IdType,
    pub value: String,
}

fn nonblank(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Call {
    pub fn fields(&self) -> Result<Fields<'_>, Failure> {
        Fields::new("the request", &self.body).map_err(Failure::invalid)
    }

    fn text(&self, key: &str) -> Result<Option<String>, Failure> {
        self.fields()?
            .text(key)
            .map(nonblank)
            .map_err(Failure::invalid)
    }

    /// `brand`, else the `cap_brand` header.
    pub fn brand_name(&self) -> Result<String, Failure> {
        self.text("brand")?
            .or_else(|| nonblank(self.headers.brand.clone()))
            .ok_or_else(|| Failure::invalid("brand is required."))
    }

    /// `deviceId`, else the `cap_device_id` header; required on the mobile routes, not
    /// used on the web ones.
    pub fn device_id(&self) -> Result<Option<String>, Failure> {
        if self.web {
            return Ok(None);
        }
        let d = self
            .text("deviceId")?
            .or_else(|| nonblank(self.headers.device_id.clone()))
            .ok_or_else(|| Failure::invalid("deviceId is required by the mobile API."))?;
        if d.len() > 200 {
            return Err(Failure::invalid("deviceId is longer than 200 characters."));
        }
        Ok(Some(d))
    }

    pub fn session_id(&self) -> Result<String, Failure> {
        self.text("sessionId")?
            .ok_or_else(|| Failure::invalid("sessionId is required."))
    }

    /// `identifierType` + `identifierValue`; or, in the older shape, `mobile`,
    /// `mobile_temp`, `mobileTemp` or the `cap_mobile` header as a MOBILE identifier.
    pub fn identifier(&self) -> Result<Identifier, Failure> {
        let kind = self.text("identifierType")?;
        let value = self.text("identifierValue")?;
        let (kind, value) = match kind {
            Some(k) => (
                IdType::parse(&k).ok_or_else(|| Failure::of(1546))?,
                value.ok_or_else(|| Failure::invalid("identifierValue is required."))?,
            ),
            None => {
                let mut alias = None;
                for key in ["mobile", "mobile_temp", "mobileTemp"] {
                    alias = alias.or(self.text(key)?);
                }
                match alias.or_else(|| nonblank(self.headers.mobile.clone())) {
                    Some(m) => (IdType::Mobile, m),
                    None if value.is_some() => {
                        return Err(Failure::invalid(
                            "identifierType is required with identifierValue.",
                        ));
                    }
                    None => {
                        return Err(Failure::invalid(
                            "identifierType and identifierValue are required.",
                        ));
                    }
                }
            }
        };
        Ok(Identifier {
            kind,
            value: normalise(kind, &value)?,
        })
    }
}

fn normalise(kind: IdType, value: &str) -> Result<String, Failure> {
    let v = value.trim();
    match kind {
        IdType::Mobile => {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            let allowed = v
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            if !allowed || !(6..=15).contains(&digits.len()) {
                return Err(Failure::invalid(
                    "identifierValue must be a mobile number of 6 to 15 digits.",
                ));
            }
            Ok(digits)
        }
        IdType::Email => {
            let ok = v.len() <= 254
                && !v.chars().any(char::is_whitespace)
                && v.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.contains('@')
                });
            if !ok {
                return Err(Failure::invalid(
                    "identifierValue must be an e-mail address.",
                ));
            }
            Ok(v.to_lowercase())
        }
        IdType::Username => {
            if v.len() > 254 {
                return Err(Failure::invalid(
                    "identifierValue is longer than 254 characters.",
                ));
            }
            Ok(crate::db::users::key(v))
        }
    }
}

/// The brand a request names; an unknown one is invalid details.
pub async fn brand(app: &AppState, op: Operation, name: &str) -> Result<Brand, Failure> {
    let lookup = name.to_string();
    match app
        .db
        .run(move |c| Ok(capillary_brands::find(c, &lookup)?))
        .await
    {
        Ok(Some(b)) => Ok(b),
        Ok(None) => {
            let shown: String = name.chars().take(100).collect();
            Err(Failure::invalid(format!(
                "The brand '{shown}' is not configured."
            )))
        }
        Err(e) => Err(Failure::from_core(op, e)),
    }
}

/// Whether a session is open and was opened for this request's brand, device and
/// identifier; each mismatch has its own code.
pub fn check_session(
    session: Option<CapSession>,
    call: &Call,
    brand: &Brand,
    device_id: Option<&str>,
    id: &Identifier,
    now: i64,
) -> Result<CapSession, Failure> {
    let s = match session {
        Some(s) if s.expires_at > now && s.validated_at.is_none() && s.web == call.web => s,
        _ => return Err(Failure::of(1505)),
    };
    if s.brand_key != brand.brand_key {
        return Err(Failure::of(1509));
    }
    if !call.web && s.device_id.as_deref() != device_id {
        return Err(Failure::of(1508));
    }
    if s.identifier_type != id.kind.as_str() {
        return Err(Failure::of(1541));
    }
    if s.identifier_value != id.value {
        return Err(Failure::of(match id.kind {
            IdType::Mobile => 1507,
            _ => 1541,
        }));
    }
    Ok(s)
}

/// The subject of a session's challenges.
pub fn subject(session_id: &str) -> String {
    format!("capillary:{session_id}")
}

type HmacSha256 = Hmac<Sha256>;

/// The body as the payload hash covers it: the `hash` member left out, object members
/// sorted by name at every level, no white space.
pub fn canonical(body: &Value) -> String {
    fn sorted(v: &Value, top: bool) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m
                    .keys()
                    .filter(|k| !(top && k.eq_ignore_ascii_case("hash")))
                    .collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k], false)))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| sorted(x, false)).collect()),
            other => other.clone(),
        }
    }
    sorted(body, true).to_string()
}

/// The `hash` of a body: lower-case hex of HMAC-SHA-256 under the brand's hash key,
/// over [`canonical`] (which includes `timeStamp`).
pub fn payload_hash(key: &[u8], body: &Value) -> String {
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(canonical(body).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The brand's payload check, when it has one: `hash` must be the HMAC of the body
/// and `timeStamp` (epoch milliseconds) within the brand's window of now. Anything
/// else answers 5004. Without a hash key, a `hash` is accepted and ignored.
pub fn check_hash(brand: &Brand, call: &Call, now: i64) -> Result<(), Failure> {
    let Some(key) = &brand.hash_key else {
        return Ok(());
    };
    let key = crate::core::keys::parse_key(key, 32).map_err(|_| {
        tracing::error!(brand = %brand.name, "the brand's hash key is unreadable");
        Failure::of(5004)
    })?;
    let f = call.fields()?;
    let hash = f.text("hash").ok().flatten().map(|h| h.trim().to_string());
    let stamp = f.int("timeStamp").ok().flatten();
    let (Some(hash), Some(stamp)) = (hash, stamp) else {
        return Err(Failure::of(5004));
    };
    // abs_diff: a timeStamp at either end of the range must not overflow.
    if now.abs_diff(stamp) > brand.hash_window_seconds.unsigned_abs() * 1000 {
        return Err(Failure::of(5004));
    }
    let Ok(given) = hex::decode(hash.to_ascii_lowercase()) else {
        return Err(Failure::of(5004));
    };
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(&key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(canonical(&call.body).as_bytes());
    mac.verify_slice(&given).map_err(|_| Failure::of(5004))
}

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
pub fn jwt_key(app: &AppState) -> Vec<u8> {
    app.settings
        .secrets
        .capillary_jwt_key
        .as_deref()
        .and_then(|k| crate::core::keys::parse_key(k, 32).ok())
        .unwrap_or_else(|| app.keys.derived(b"capillary jwt v1").to_vec())
}

/// A signed token for a session.
pub fn sign(
    app: &AppState,
    op: Operation,
    session: &CapSession,
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
        &jsonwebtoken::EncodingKey::from_secret(&jwt_key(app)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_body_sorts_members_and_leaves_the_hash_out() {
        let v = json!({"b": 1, "Hash": "x", "a": {"z": [2, {"y": 1, "x": 0}], "hash": "kept"}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"hash":"kept","z":[2,{"x":0,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn identifiers_are_normalised_and_checked() {
        assert_eq!(
            normalise(IdType::Mobile, "+62 812-3456-789").unwrap(),
            "628123456789"
        );
        assert_eq!(normalise(IdType::Mobile, "12ab45").unwrap_err().code, 1519);
        assert_eq!(
            normalise(IdType::Email, " A@B.com").unwrap(),
            "a@b.com".to_string()
        );
        assert!(normalise(IdType::Email, "a@b").is_err());
        assert_eq!(IdType::parse("username"), Some(IdType::Username));
        assert_eq!(IdType::parse("EXTERNALID"), None);
    }

    #[test]
    fn every_code_has_its_published_message() {
        assert_eq!(Failure::of(1506).message, "Invalid OTP.");
        assert_eq!(
            Failure::invalid("brand is required.").message,
            "Invalid details passed. brand is required."
        );
        assert_eq!(
            Failure::from_core(Operation::OtpValidate, Error::WrongCode { remaining: 2 }).code,
            1506
        );
        assert_eq!(
            Failure::from_core(Operation::OtpValidate, Error::Unavailable),
            Failure {
                code: 1502,
                message: "Unable to validate OTP.".into(),
                http: 503
            }
        );
    }
}
