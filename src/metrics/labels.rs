//! The label sets of the metrics and every value their labels may take: small fixed
//! sets, so that what a client sends never becomes a series.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;

use crate::error::Error;

/// The value of a label whose real value is not one of its known set.
pub const UNKNOWN: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub dialect: &'static str,
    pub operation: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OperationLabels {
    pub(super) dialect: &'static str,
    pub(super) operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabel {
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StateLabel {
    pub(super) state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabel {
    pub(super) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ProviderLabel {
    pub(super) provider: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ProviderResult {
    pub(super) provider: Arc<str>,
    pub(super) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ProviderReason {
    pub(super) provider: Arc<str>,
    pub(super) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ChannelLabel {
    pub(super) channel: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct UpstreamLabel {
    pub(super) upstream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct UpstreamError {
    pub(super) upstream: &'static str,
    pub(super) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuildLabels {
    pub(super) version: &'static str,
    pub(super) backend: &'static str,
}

/// What an OTP request came to, as `otpgate_otp_events_total{outcome}` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpEvent {
    Issued,
    Verified,
    WrongCode,
    Expired,
    Used,
    Superseded,
    AttemptsExhausted,
    SendLimited,
    CooledDown,
    Throttled,
}

impl OtpEvent {
    pub const ALL: [OtpEvent; 10] = [
        OtpEvent::Issued,
        OtpEvent::Verified,
        OtpEvent::WrongCode,
        OtpEvent::Expired,
        OtpEvent::Used,
        OtpEvent::Superseded,
        OtpEvent::AttemptsExhausted,
        OtpEvent::SendLimited,
        OtpEvent::CooledDown,
        OtpEvent::Throttled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OtpEvent::Issued => "issued",
            OtpEvent::Verified => "verified",
            OtpEvent::WrongCode => "wrong_code",
            OtpEvent::Expired => "expired",
            OtpEvent::Used => "used",
            OtpEvent::Superseded => "superseded",
            OtpEvent::AttemptsExhausted => "attempts_exhausted",
            OtpEvent::SendLimited => "send_limited",
            OtpEvent::CooledDown => "cooled_down",
            OtpEvent::Throttled => "throttled",
        }
    }

    /// The event an error of an OTP operation is, if it is one of them.
    pub fn of_error(e: &Error) -> Option<OtpEvent> {
        Some(match e {
            Error::WrongCode { .. } => OtpEvent::WrongCode,
            Error::CodeExpired => OtpEvent::Expired,
            Error::CodeAlreadyUsed => OtpEvent::Used,
            Error::CodeSuperseded => OtpEvent::Superseded,
            Error::TooManyAttempts => OtpEvent::AttemptsExhausted,
            Error::SendLimitReached { .. } => OtpEvent::SendLimited,
            Error::ResendCooldown { .. } => OtpEvent::CooledDown,
            Error::Throttled { .. } => OtpEvent::Throttled,
            _ => return None,
        })
    }
}

/// Why a provider did not take a message, in a few classes.
pub fn failure_reason(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("timed out") || e.contains("timeout") || e.contains("no answer within") {
        "timeout"
    } else if e.contains("connect") || e.contains("refused") || e.contains("dns") {
        "connect"
    } else if e.contains("status") || e.contains("rejected") || e.contains("answered") {
        "rejected"
    } else {
        "other"
    }
}

/// The outbox's open states, as `otpgate_outbox_messages{state}` shows them
/// (`db::outbox::OPEN_STATES`). Sent messages are counted as they go, by
/// `otpgate_delivery_attempts_total{result="sent"}`.
pub const OUTBOX_STATES: [&str; 3] = ["queued", "sending", "failed"];

/// The kinds of database work `otpgate_db_transaction_duration_seconds` tells apart
/// (`Db::run_as`); everything else is `other`.
pub const TRANSACTION_KINDS: [&str; 12] = [
    "issue",
    "verify",
    "login",
    "login_record",
    "outbox_claim",
    "outbox_record",
    "outbox_sweep",
    "housekeeping",
    "group_commit",
    "metrics",
    "ready",
    "other",
];

/// What a password login came to.
pub const LOGIN_OUTCOMES: [&str; 4] = ["ok", "failed", "locked", "busy"];
