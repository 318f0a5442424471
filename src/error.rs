//! The one error type of the core.
//!
//! Policy: every variant but `Internal` and `Unavailable` is a business outcome. Its
//! `Display` text is plain English for an API client, stable, and never contains a
//! code, a full destination, internal detail or a legacy field name: each dialect maps
//! every variant to its own wire answer with an exhaustive `match` (no wildcard arm,
//! so a new variant cannot slip through unmapped), and uses this text where its wire
//! has no text of its own. `Internal` keeps its source for the server log only;
//! dialects answer it with a generic text. `kind()` names each variant for the audit
//! trail and the logs.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error, strum::EnumCount)]
pub enum Error {
    /// A request field is missing or malformed; the text names the field.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("No OTP was generated with this transaction id.")]
    UnknownTransaction,
    #[error("The OTP has expired. Please generate a new OTP.")]
    CodeExpired,
    #[error("The OTP has already been used. Please generate a new OTP.")]
    CodeAlreadyUsed,
    #[error("A newer OTP has been sent for this user. Please use the latest OTP.")]
    CodeSuperseded,
    #[error("Maximum number of OTP attempts exceeded. Please generate a new OTP.")]
    TooManyAttempts,
    #[error("{}", WrongCodeText(*remaining))]
    WrongCode { remaining: i64 },
    #[error("The device does not match the device the OTP was generated for.")]
    DeviceMismatch,
    #[error(
        "The OTP limit for this destination has been reached. Please try again in {retry_after_secs} seconds."
    )]
    SendLimitReached { retry_after_secs: i64 },
    #[error(
        "An OTP was sent to this destination a moment ago. Please wait {retry_after_secs} seconds before requesting another."
    )]
    ResendCooldown { retry_after_secs: i64 },
    #[error("No e-mail address or mobile number is registered for this user.")]
    NoDestination,
    #[error("Invalid user name or password.")]
    InvalidCredentials,
    #[error(
        "Too many failed logins for this user. Please try again in {retry_after_secs} seconds."
    )]
    LoginLocked { retry_after_secs: i64 },
    #[error("The session is invalid or has expired. Please log in again.")]
    InvalidSession,
    /// An API key that is unknown or revoked.
    #[error("Invalid API key.")]
    InvalidApiKey,
    #[error("The API key has expired.")]
    ApiKeyExpired,
    /// A user name and password where the settings allow API keys only.
    #[error("Username and password authentication is disabled. Use an API key.")]
    PasswordAuthDisabled,
    #[error("No user is registered with these details.")]
    UserNotFound,
    #[error("The user details do not match the authenticated user.")]
    UserMismatch,
    #[error("No such OTP configuration exists.")]
    ConfigurationNotFound,
    #[error("The OTP has not been validated.")]
    NotValidated,
    /// A session is used with another brand than the one it was opened for.
    #[error("The brand does not match the brand the session was opened for.")]
    BrandMismatch,
    /// A session is used for another mobile number than the one it was opened for.
    #[error("The mobile number does not match the one the session was opened for.")]
    MobileMismatch,
    /// A session is used for another identifier (or kind of identifier).
    #[error("The identifier does not match the one the session was opened for.")]
    IdentifierMismatch,
    /// A signed request whose signature is wrong or whose time stamp is stale.
    #[error("The request signature is invalid or stale.")]
    PayloadRejected,
    /// The message could not be handed to any provider (a synchronous send).
    #[error("The OTP could not be sent: {0}")]
    DeliveryFailed(String),
    /// One client (an address, or an identifier) sent more requests than the throttle
    /// allows; nothing was done.
    #[error("Too many requests. Please try again in {retry_after_secs} seconds.")]
    Throttled { retry_after_secs: i64 },
    #[error("The service is busy. Please try again.")]
    Unavailable,
    #[error("The request could not be processed. Please try again later.")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

struct WrongCodeText(i64);

impl fmt::Display for WrongCodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("Invalid OTP. No attempts are left; please generate a new OTP."),
            1 => f.write_str("Invalid OTP. 1 attempt is left."),
            n => write!(f, "Invalid OTP. {n} attempts are left."),
        }
    }
}

impl Error {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(e.into())
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidRequest(msg.into())
    }

    /// A stable machine name, used in the audit trail and by dialects that map
    /// outcomes to their own codes.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::UnknownTransaction => "unknown_transaction",
            Error::CodeExpired => "expired",
            Error::CodeAlreadyUsed => "already_used",
            Error::CodeSuperseded => "superseded",
            Error::TooManyAttempts => "too_many_attempts",
            Error::WrongCode { .. } => "wrong_code",
            Error::DeviceMismatch => "device_mismatch",
            Error::SendLimitReached { .. } => "send_limit",
            Error::ResendCooldown { .. } => "resend_cooldown",
            Error::NoDestination => "no_destination",
            Error::InvalidCredentials => "invalid_credentials",
            Error::LoginLocked { .. } => "login_locked",
            Error::InvalidSession => "invalid_session",
            Error::InvalidApiKey => "invalid_api_key",
            Error::ApiKeyExpired => "api_key_expired",
            Error::PasswordAuthDisabled => "password_auth_disabled",
            Error::UserNotFound => "user_not_found",
            Error::UserMismatch => "user_mismatch",
            Error::ConfigurationNotFound => "configuration_not_found",
            Error::NotValidated => "not_validated",
            Error::BrandMismatch => "brand_mismatch",
            Error::MobileMismatch => "mobile_mismatch",
            Error::IdentifierMismatch => "identifier_mismatch",
            Error::PayloadRejected => "payload_rejected",
            Error::DeliveryFailed(_) => "delivery_failed",
            Error::Throttled { .. } => "throttled",
            Error::Unavailable => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// True for faults of the server rather than outcomes of the request.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Error::Internal(_) | Error::Unavailable)
    }

    /// How long the client should wait before asking again, for an error that says
    /// so on the wire (`Retry-After`): the throttle's.
    pub fn retry_after_secs(&self) -> Option<i64> {
        match self {
            Error::Throttled { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

/// One of each variant, for the dialects' tests that pin every variant's wire answer;
/// `every_variant_is_listed` fails when a variant is missing here.
#[cfg(test)]
pub(crate) fn every_variant() -> Vec<Error> {
    vec![
        Error::InvalidRequest("UserId is required.".into()),
        Error::UnknownTransaction,
        Error::CodeExpired,
        Error::CodeAlreadyUsed,
        Error::CodeSuperseded,
        Error::TooManyAttempts,
        Error::WrongCode { remaining: 2 },
        Error::DeviceMismatch,
        Error::SendLimitReached {
            retry_after_secs: 60,
        },
        Error::ResendCooldown {
            retry_after_secs: 30,
        },
        Error::NoDestination,
        Error::InvalidCredentials,
        Error::LoginLocked {
            retry_after_secs: 900,
        },
        Error::InvalidSession,
        Error::InvalidApiKey,
        Error::ApiKeyExpired,
        Error::PasswordAuthDisabled,
        Error::UserNotFound,
        Error::UserMismatch,
        Error::ConfigurationNotFound,
        Error::NotValidated,
        Error::BrandMismatch,
        Error::MobileMismatch,
        Error::IdentifierMismatch,
        Error::PayloadRejected,
        Error::DeliveryFailed("no provider accepted the message.".into()),
        Error::Throttled {
            retry_after_secs: 12,
        },
        Error::Unavailable,
        Error::internal("disk on fire"),
    ]
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::internal(e)
    }
}

impl From<r2d2::Error> for Error {
    fn from(_: r2d2::Error) -> Self {
        // Only raised when no pooled connection frees up within the timeout.
        Error::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_listed() {
        let kinds: std::collections::BTreeSet<&str> =
            every_variant().iter().map(Error::kind).collect();
        assert_eq!(kinds.len(), <Error as strum::EnumCount>::COUNT);
        assert_eq!(every_variant().len(), <Error as strum::EnumCount>::COUNT);
    }

    #[test]
    fn texts_carry_no_internal_detail() {
        assert_eq!(
            Error::internal("disk on fire").to_string(),
            "The request could not be processed. Please try again later."
        );
        assert_eq!(
            Error::WrongCode { remaining: 1 }.to_string(),
            "Invalid OTP. 1 attempt is left."
        );
    }
}
