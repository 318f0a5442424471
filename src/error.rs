//! The one error type of the core.
//!
//! Policy: every variant but `Internal` and `Unavailable` is a business outcome whose
//! `Display` text is written for the API client, is stable (fixtures pin it) and never
//! contains a code, a full destination or internal detail. `Internal` keeps its source
//! for the server log only; dialects answer it with a generic text.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or malformed; the text names the field.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Invalid TransactionID: no OTP was generated with this TransactionID.")]
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
    #[error("The DeviceId does not match the device the OTP was generated for.")]
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
    #[error("The TokenID is invalid or has expired. Please log in again.")]
    InvalidSession,
    #[error("No user is registered with these details.")]
    UserNotFound,
    #[error("The user details do not match the authenticated user.")]
    UserMismatch,
    #[error("No configuration with this TwoFactorConfigurationId exists.")]
    ConfigurationNotFound,
    #[error("The OTP has not been validated.")]
    NotValidated,
    /// The message could not be handed to any provider (a synchronous send).
    #[error("The OTP could not be sent: {0}")]
    DeliveryFailed(String),
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
            Error::UserNotFound => "user_not_found",
            Error::UserMismatch => "user_mismatch",
            Error::ConfigurationNotFound => "configuration_not_found",
            Error::NotValidated => "not_validated",
            Error::DeliveryFailed(_) => "delivery_failed",
            Error::Unavailable => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// True for faults of the server rather than outcomes of the request.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Error::Internal(_) | Error::Unavailable)
    }
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
