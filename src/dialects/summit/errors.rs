//! Every core error as the envelope answers it: business outcomes HTTP 200 with the
//! text in `Errors`; a busy server 503 and an internal fault 500, the same envelope
//! with a text that reveals nothing. The texts are the legacy-facing ones, naming the
//! envelope's own fields (TransactionID, TokenID, DeviceId).

use actix_web::http::StatusCode;

use crate::error::Error;

/// The HTTP status and the `Errors` text of an error.
pub fn answer(e: &Error) -> (StatusCode, String) {
    let core = || e.to_string();
    let text = match e {
        Error::UnknownTransaction => {
            "Invalid TransactionID: no OTP was generated with this TransactionID.".to_string()
        }
        Error::InvalidSession => {
            "The TokenID is invalid or has expired. Please log in again.".to_string()
        }
        Error::DeviceMismatch => {
            "The DeviceId does not match the device the OTP was generated for.".to_string()
        }
        Error::ConfigurationNotFound => {
            "No configuration with this TwoFactorConfigurationId exists.".to_string()
        }
        Error::InvalidRequest(_) => core(),
        Error::CodeExpired => core(),
        Error::CodeAlreadyUsed => core(),
        Error::CodeSuperseded => core(),
        Error::TooManyAttempts => core(),
        Error::WrongCode { .. } => core(),
        Error::SendLimitReached { .. } => core(),
        Error::ResendCooldown { .. } => core(),
        Error::NoDestination => core(),
        Error::InvalidCredentials => core(),
        Error::LoginLocked { .. } => core(),
        Error::InvalidApiKey => core(),
        Error::ApiKeyExpired => core(),
        Error::PasswordAuthDisabled => core(),
        Error::UserNotFound => core(),
        Error::UserMismatch => core(),
        Error::NotValidated => core(),
        Error::BrandMismatch => core(),
        Error::MobileMismatch => core(),
        Error::IdentifierMismatch => core(),
        Error::PayloadRejected => core(),
        Error::DeliveryFailed(_) => core(),
        Error::Throttled { .. } => core(),
        Error::Unavailable => core(),
        Error::Internal(_) => core(),
    };
    (crate::wire::fault_status(e), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's wire answer, pinned.
    #[test]
    fn every_error_has_its_envelope_answer() {
        let expected: &[(&str, u16, &str)] = &[
            ("invalid_request", 200, "UserId is required."),
            (
                "unknown_transaction",
                200,
                "Invalid TransactionID: no OTP was generated with this TransactionID.",
            ),
            (
                "expired",
                200,
                "The OTP has expired. Please generate a new OTP.",
            ),
            (
                "already_used",
                200,
                "The OTP has already been used. Please generate a new OTP.",
            ),
            (
                "superseded",
                200,
                "A newer OTP has been sent for this user. Please use the latest OTP.",
            ),
            (
                "too_many_attempts",
                200,
                "Maximum number of OTP attempts exceeded. Please generate a new OTP.",
            ),
            ("wrong_code", 200, "Invalid OTP. 2 attempts are left."),
            (
                "device_mismatch",
                200,
                "The DeviceId does not match the device the OTP was generated for.",
            ),
            (
                "send_limit",
                200,
                "The OTP limit for this destination has been reached. Please try again in 60 seconds.",
            ),
            (
                "resend_cooldown",
                200,
                "An OTP was sent to this destination a moment ago. Please wait 30 seconds before requesting another.",
            ),
            (
                "no_destination",
                200,
                "No e-mail address or mobile number is registered for this user.",
            ),
            ("invalid_credentials", 200, "Invalid user name or password."),
            (
                "login_locked",
                200,
                "Too many failed logins for this user. Please try again in 900 seconds.",
            ),
            (
                "invalid_session",
                200,
                "The TokenID is invalid or has expired. Please log in again.",
            ),
            ("invalid_api_key", 200, "Invalid API key."),
            ("api_key_expired", 200, "The API key has expired."),
            (
                "password_auth_disabled",
                200,
                "Username and password authentication is disabled. Use an API key.",
            ),
            (
                "user_not_found",
                200,
                "No user is registered with these details.",
            ),
            (
                "user_mismatch",
                200,
                "The user details do not match the authenticated user.",
            ),
            (
                "configuration_not_found",
                200,
                "No configuration with this TwoFactorConfigurationId exists.",
            ),
            ("not_validated", 200, "The OTP has not been validated."),
            (
                "brand_mismatch",
                200,
                "The brand does not match the brand the session was opened for.",
            ),
            (
                "mobile_mismatch",
                200,
                "The mobile number does not match the one the session was opened for.",
            ),
            (
                "identifier_mismatch",
                200,
                "The identifier does not match the one the session was opened for.",
            ),
            (
                "payload_rejected",
                200,
                "The request signature is invalid or stale.",
            ),
            (
                "delivery_failed",
                200,
                "The OTP could not be sent: no provider accepted the message.",
            ),
            (
                "throttled",
                429,
                "Too many requests. Please try again in 12 seconds.",
            ),
            ("unavailable", 503, "The service is busy. Please try again."),
            (
                "internal",
                500,
                "The request could not be processed. Please try again later.",
            ),
        ];
        let all = crate::error::every_variant();
        assert_eq!(all.len(), expected.len());
        for e in all {
            let (kind, status, text) = expected
                .iter()
                .find(|(k, _, _)| *k == e.kind())
                .unwrap_or_else(|| panic!("no expected answer for {}", e.kind()));
            let (s, t) = answer(&e);
            assert_eq!((s.as_u16(), t.as_str()), (*status, *text), "{kind}");
        }
    }
}
