//! Every core error as each TwoFactor action answers it: the action's failure DTO with
//! its Code enum member and an ExceptionMessage. Business failures answer HTTP 200; a
//! busy server 503 and an internal fault 500, with the same DTO.

use serde_json::json;

use super::Operation;
use super::dto::{CREATE_CODES, Dto, VALIDATE_CODES, by_reference};
use crate::error::Error;

/// The failure DTO of an action for an error. `gsm_number` is what a failure names,
/// masked, if anything.
pub fn failure(op: Operation, e: &Error, gsm_number: Option<&str>) -> Dto {
    let message = message(op, e);
    match op {
        Operation::Create => Dto::new(
            "CreateTwoFactorSmsOtpResponse",
            CREATE_CODES,
            json!({
                "Id": 0, "OtpIdReference": null, "ReferenceCode": null, "OtpCode": null,
                "RemainingExpirationSeconds": 0, "GsmNumber": gsm_number, "ExceptionMessage": message,
                "Success": false, "Code": create_code(e),
            }),
        ),
        Operation::RemindPassword => Dto::new(
            "CreateOtpForRemindPasswordResponse",
            CREATE_CODES,
            json!({
                "Success": false, "OtpIdReference": null, "ReferenceCode": null, "RemainingSeconds": 0,
                "GsmNumber": gsm_number, "OtpCode": null, "Code": create_code(e), "UserType": 0,
            }),
        ),
        Operation::ValidateByReference => by_reference(false, Some(&message), validate_code(e)),
        Operation::Validate => Dto::new(
            "ValidateTwoFactorSmsOtpResponse",
            VALIDATE_CODES,
            json!({
                "IsValid": false, "ExceptionMessage": message, "GsmNumber": gsm_number,
                "Code": validate_code(e), "PasswordChangeRequestId": null, "UserType": 0,
            }),
        ),
    }
}

/// How this API answers an error: its `CreateTwoFactorSmsOtpResponseCode`, its
/// `ValidateTwoFactorSmsOtpResponseCode`, and its own words where it names things
/// differently (an OTP is named by OtpIdReference or OtpId, not TransactionID).
struct Answer {
    create: i64,
    validate: i64,
    text: Option<&'static str>,
}

const fn codes(create: i64, validate: i64) -> Answer {
    Answer {
        create,
        validate,
        text: None,
    }
}

const fn worded(create: i64, validate: i64, text: &'static str) -> Answer {
    Answer {
        create,
        validate,
        text: Some(text),
    }
}

fn answer(e: &Error) -> Answer {
    match e {
        Error::InvalidRequest(_) => codes(4002, 6007),
        Error::UnknownTransaction => worded(
            4002,
            6005,
            "No OTP was found for this OtpIdReference or OtpId.",
        ),
        Error::CodeExpired => codes(4002, 6002),
        Error::CodeAlreadyUsed => codes(4002, 6003),
        Error::CodeSuperseded => codes(4002, 6006),
        Error::TooManyAttempts => codes(4002, 6004),
        Error::WrongCode { .. } => codes(4002, 6000),
        Error::DeviceMismatch => worded(
            4002,
            6007,
            "The DeviceId does not match the device the OTP was generated for.",
        ),
        Error::SendLimitReached { .. } => codes(4000, 6007),
        Error::ResendCooldown { .. } => codes(4006, 6007),
        Error::NoDestination => codes(4002, 6007),
        Error::InvalidCredentials => codes(4002, 6007),
        Error::LoginLocked { .. } => codes(4002, 6007),
        Error::InvalidSession => worded(
            4002,
            6007,
            "The TokenID is invalid or has expired. Please log in again.",
        ),
        Error::InvalidApiKey => codes(4002, 6007),
        Error::ApiKeyExpired => codes(4002, 6007),
        Error::PasswordAuthDisabled => codes(4002, 6007),
        Error::UserNotFound => codes(4004, 6007),
        Error::UserMismatch => codes(4002, 6007),
        Error::ConfigurationNotFound => worded(
            4003,
            6007,
            "No configuration with this TwoFactorConfigurationId exists.",
        ),
        Error::NotValidated => codes(4002, 6008),
        Error::BrandMismatch => codes(4002, 6007),
        Error::MobileMismatch => codes(4002, 6007),
        Error::IdentifierMismatch => codes(4002, 6007),
        Error::PayloadRejected => codes(4002, 6007),
        Error::DeliveryFailed(_) => codes(4005, 6007),
        // Over the limit of requests: for an OTP, as its own send limit; for a check,
        // "try again later" (the OTP itself is not used up).
        Error::Throttled { .. } => codes(4000, 6009),
        Error::Unavailable => codes(4007, 6009),
        Error::Internal(_) => codes(4007, 6009),
    }
}

fn message(op: Operation, e: &Error) -> String {
    match (op, e) {
        (Operation::ValidateByReference, Error::UnknownTransaction) => {
            "No OTP with this OtpIdReference was created for this user.".to_string()
        }
        _ => answer(e).text.map_or_else(|| e.to_string(), str::to_string),
    }
}

fn create_code(e: &Error) -> i64 {
    answer(e).create
}

fn validate_code(e: &Error) -> i64 {
    answer(e).validate
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's answer, pinned: (kind, HTTP status, create code, validate code,
    /// ExceptionMessage of ValidateTwoFactorSmsOtp).
    #[test]
    fn every_error_has_its_codes_and_message() {
        let expected: &[(&str, u16, i64, i64, &str)] = &[
            ("invalid_request", 200, 4002, 6007, "UserId is required."),
            (
                "unknown_transaction",
                200,
                4002,
                6005,
                "No OTP was found for this OtpIdReference or OtpId.",
            ),
            (
                "expired",
                200,
                4002,
                6002,
                "The OTP has expired. Please generate a new OTP.",
            ),
            (
                "already_used",
                200,
                4002,
                6003,
                "The OTP has already been used. Please generate a new OTP.",
            ),
            (
                "superseded",
                200,
                4002,
                6006,
                "A newer OTP has been sent for this user. Please use the latest OTP.",
            ),
            (
                "too_many_attempts",
                200,
                4002,
                6004,
                "Maximum number of OTP attempts exceeded. Please generate a new OTP.",
            ),
            (
                "wrong_code",
                200,
                4002,
                6000,
                "Invalid OTP. 2 attempts are left.",
            ),
            (
                "device_mismatch",
                200,
                4002,
                6007,
                "The DeviceId does not match the device the OTP was generated for.",
            ),
            (
                "send_limit",
                200,
                4000,
                6007,
                "The OTP limit for this destination has been reached. Please try again in 60 seconds.",
            ),
            (
                "resend_cooldown",
                200,
                4006,
                6007,
                "An OTP was sent to this destination a moment ago. Please wait 30 seconds before requesting another.",
            ),
            (
                "no_destination",
                200,
                4002,
                6007,
                "No e-mail address or mobile number is registered for this user.",
            ),
            (
                "invalid_credentials",
                200,
                4002,
                6007,
                "Invalid user name or password.",
            ),
            (
                "login_locked",
                200,
                4002,
                6007,
                "Too many failed logins for this user. Please try again in 900 seconds.",
            ),
            (
                "invalid_session",
                200,
                4002,
                6007,
                "The TokenID is invalid or has expired. Please log in again.",
            ),
            ("invalid_api_key", 200, 4002, 6007, "Invalid API key."),
            (
                "api_key_expired",
                200,
                4002,
                6007,
                "The API key has expired.",
            ),
            (
                "password_auth_disabled",
                200,
                4002,
                6007,
                "Username and password authentication is disabled. Use an API key.",
            ),
            (
                "user_not_found",
                200,
                4004,
                6007,
                "No user is registered with these details.",
            ),
            (
                "user_mismatch",
                200,
                4002,
                6007,
                "The user details do not match the authenticated user.",
            ),
            (
                "configuration_not_found",
                200,
                4003,
                6007,
                "No configuration with this TwoFactorConfigurationId exists.",
            ),
            (
                "not_validated",
                200,
                4002,
                6008,
                "The OTP has not been validated.",
            ),
            (
                "brand_mismatch",
                200,
                4002,
                6007,
                "The brand does not match the brand the session was opened for.",
            ),
            (
                "mobile_mismatch",
                200,
                4002,
                6007,
                "The mobile number does not match the one the session was opened for.",
            ),
            (
                "identifier_mismatch",
                200,
                4002,
                6007,
                "The identifier does not match the one the session was opened for.",
            ),
            (
                "payload_rejected",
                200,
                4002,
                6007,
                "The request signature is invalid or stale.",
            ),
            (
                "delivery_failed",
                200,
                4005,
                6007,
                "The OTP could not be sent: no provider accepted the message.",
            ),
            (
                "throttled",
                429,
                4000,
                6009,
                "Too many requests. Please try again in 12 seconds.",
            ),
            (
                "unavailable",
                503,
                4007,
                6009,
                "The service is busy. Please try again.",
            ),
            (
                "internal",
                500,
                4007,
                6009,
                "The request could not be processed. Please try again later.",
            ),
        ];
        let all = crate::error::every_variant();
        assert_eq!(all.len(), expected.len());
        for e in all {
            let (kind, http, create, validate, text) = expected
                .iter()
                .find(|x| x.0 == e.kind())
                .unwrap_or_else(|| panic!("no expected answer for {}", e.kind()));
            let c = failure(Operation::Create, &e, None);
            let v = failure(Operation::Validate, &e, None);
            let r = failure(Operation::RemindPassword, &e, None);
            let b = failure(Operation::ValidateByReference, &e, None);
            assert_eq!(crate::wire::fault_status(&e).as_u16(), *http, "{kind}");
            assert_eq!(c.fields["Code"], *create, "{kind}");
            assert_eq!(r.fields["Code"], *create, "{kind}");
            assert_eq!(v.fields["Code"], *validate, "{kind}");
            assert_eq!(b.fields["Code"], *validate, "{kind}");
            assert_eq!(v.exception_message(), Some(*text), "{kind}");
            assert!(!c.ok() && !v.ok() && !r.ok() && !b.ok(), "{kind}");
        }
        assert_eq!(
            failure(
                Operation::ValidateByReference,
                &Error::UnknownTransaction,
                None
            )
            .exception_message(),
            Some("No OTP with this OtpIdReference was created for this user.")
        );
    }
}
