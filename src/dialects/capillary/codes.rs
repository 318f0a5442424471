//! The status of every answer, `{"status":{"success","code","message"}}`: the
//! published codes and messages, and every core error as its code (an exhaustive
//! `match`). A business failure is `success:false` with its code and HTTP 200.
//!
//! | code | message | when |
//! |---|---|---|
//! | 1502/1503/1504 | Unable to validate/generate OTP, generate token | a fault of the server (HTTP 500/503) |
//! | 1505 | Invalid session. | unknown, expired, closed or other-family session |
//! | 1506 | Invalid OTP. | a wrong code with retries left |
//! | 1507/1508/1509/1541 | … does not match … | the session was opened for another mobile, device, brand, identifier |
//! | 1515 | User does not exist. | a USERNAME that is nobody's |
//! | 1518 | Reached the maximum allowed OTP retry attempts … | the retries are used up |
//! | 1519 | Invalid details passed. | a request that cannot be read, with the reason |
//! | 1534 | Reached the maximum number of OTPs … | the send limit |
//! | 1537 | OTP is not generated … | no, an expired, a used or a superseded code |
//! | 1540 | Either mobile or email is required … | no destination on the brand's channels |
//! | 1546 | Invalid identifierType passed. | |
//! | 5004 | Response tampered | a payload hash that is wrong or stale |
//! | 429 | Rate limit exceeded. | the client's throttle (HTTP 429, Retry-After) |

use serde_json::{Map, Value, json};

use crate::error::Error;

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
    // Capillary's general code for too many requests (its success-and-error-codes page),
    // answered with HTTP 429 and Retry-After.
    (429, "Rate limit exceeded."),
];

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

/// A failed call: its code, message and HTTP status, and the seconds a throttled
/// client should wait (`Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i64,
    pub message: String,
    pub http: u16,
    pub retry_after: Option<i64>,
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
            retry_after: None,
        }
    }

    /// 1519 with the reason after the published message.
    pub fn invalid(reason: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1519,
            message: format!("{} {reason}", published(1519)),
            http: 200,
            retry_after: None,
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
            Error::MobileMismatch => Failure::of(1507),
            Error::BrandMismatch => Failure::of(1509),
            Error::IdentifierMismatch => Failure::of(1541),
            Error::UserNotFound => Failure::of(1515),
            Error::InvalidSession => Failure::of(1505),
            Error::PayloadRejected => Failure::of(5004),
            Error::Throttled { retry_after_secs } => Failure {
                http: 429,
                retry_after: Some(retry_after_secs),
                ..Failure::of(429)
            },
            Error::Unavailable => Failure {
                http: 503,
                ..Failure::of(op.fault_code())
            },
            // Outcomes of the other dialects' operations, never of these three: if one
            // turns up, it is a fault of the server.
            e @ (Error::InvalidCredentials
            | Error::LoginLocked { .. }
            | Error::InvalidApiKey
            | Error::ApiKeyExpired
            | Error::PasswordAuthDisabled
            | Error::UserMismatch
            | Error::ConfigurationNotFound
            | Error::NotValidated
            | Error::DeliveryFailed(_)
            | Error::Internal(_)) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_published_message() {
        assert_eq!(Failure::of(1506).message, "Invalid OTP.");
        assert_eq!(
            Failure::invalid("brand is required.").message,
            "Invalid details passed. brand is required."
        );
        assert_eq!(
            Failure::from_core(Operation::OtpValidate, Error::Unavailable),
            Failure {
                code: 1502,
                message: "Unable to validate OTP.".into(),
                http: 503,
                retry_after: None,
            }
        );
    }

    /// Every variant's answer on otp/validate, pinned: (kind, code, HTTP status).
    #[test]
    fn every_error_has_its_code() {
        let expected: &[(&str, i64, u16)] = &[
            ("invalid_request", 1519, 200),
            ("unknown_transaction", 1537, 200),
            ("expired", 1537, 200),
            ("already_used", 1537, 200),
            ("superseded", 1537, 200),
            ("too_many_attempts", 1518, 200),
            ("wrong_code", 1506, 200),
            ("device_mismatch", 1508, 200),
            ("send_limit", 1534, 200),
            ("resend_cooldown", 1534, 200),
            ("no_destination", 1540, 200),
            ("invalid_credentials", 1502, 500),
            ("login_locked", 1502, 500),
            ("invalid_session", 1505, 200),
            ("invalid_api_key", 1502, 500),
            ("api_key_expired", 1502, 500),
            ("password_auth_disabled", 1502, 500),
            ("user_not_found", 1515, 200),
            ("user_mismatch", 1502, 500),
            ("configuration_not_found", 1502, 500),
            ("not_validated", 1502, 500),
            ("brand_mismatch", 1509, 200),
            ("mobile_mismatch", 1507, 200),
            ("identifier_mismatch", 1541, 200),
            ("payload_rejected", 5004, 200),
            ("delivery_failed", 1502, 500),
            ("throttled", 429, 429),
            ("unavailable", 1502, 503),
            ("internal", 1502, 500),
        ];
        let all = crate::error::every_variant();
        assert_eq!(all.len(), expected.len());
        for e in all {
            let kind = e.kind();
            let (_, code, http) = expected
                .iter()
                .find(|x| x.0 == kind)
                .unwrap_or_else(|| panic!("no expected answer for {kind}"));
            let f = Failure::from_core(Operation::OtpValidate, e);
            assert_eq!((f.code, f.http), (*code, *http), "{kind}");
            assert!(f.message.starts_with(published(f.code)), "{kind}");
        }
        // The wrong code that uses up the retries says to start again.
        let last = Failure::from_core(Operation::OtpValidate, Error::WrongCode { remaining: 0 });
        assert_eq!(last.code, 1518);
        assert_eq!(
            Failure::from_core(Operation::TokenGenerate, Error::internal("x")).code,
            1504
        );
        assert_eq!(
            Failure::from_core(Operation::OtpGenerate, Error::Unavailable).code,
            1503
        );
    }
}
