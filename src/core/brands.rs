//! Brands: tenants with their own OTP policy, channels, validities and payload
//! signing, and the sessions opened for one identifier of a brand (a mobile number, an
//! e-mail address or a login name) that its codes are issued and verified under.

pub use crate::db::capillary_brands::Brand;
pub use crate::db::capillary_sessions::CapSession as BrandSession;

use crate::config::PolicySettings;
use crate::core::channel::Channel;
use crate::core::keys;
use crate::core::otp::Policy;
use crate::delivery::templates;
use crate::error::{Error, Result};

/// The purpose of the challenges issued under brand sessions (each session is a
/// subject). Stored with each challenge, so its value stays what it has always been;
/// the index of a session's latest challenge (`challenges_capillary_latest`, read by
/// `db::challenges::latest_capillary`) names it too.
pub const PURPOSE: &str = "capillary";

/// What a session was opened for: the kind of identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierKind {
    Mobile,
    Email,
    Username,
}

impl IdentifierKind {
    /// The name stored with a session.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Mobile => "MOBILE",
            IdentifierKind::Email => "EMAIL",
            IdentifierKind::Username => "USERNAME",
        }
    }
}

/// An identifier, normalised: the digits of a mobile number, a lower-case e-mail
/// address or login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub value: String,
}

/// The subject of a session's challenges.
pub fn subject(session_id: &str) -> String {
    format!("capillary:{session_id}")
}

/// The brand's sends to an address count apart from other brands' and other APIs'.
pub fn limit_scope(brand: &Brand) -> String {
    format!("capillary:{}", brand.brand_key)
}

/// The brand's policy: its code length, validity and retries; its OTP limit, or the
/// gateway's (`otp.max_sends` per `otp.send_window_seconds`) when the brand has none,
/// so that codes cannot be sent, and guessed, without end; no resend cooldown, which
/// brand sessions do not have.
pub fn policy(defaults: &PolicySettings, brand: &Brand) -> Policy {
    let mut p = Policy::from_settings(defaults);
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

/// A request made within a session: the brand, route family, device and identifier
/// it names, and the session it names.
pub struct SessionRequest {
    pub brand: Brand,
    /// Came in on the web routes.
    pub web: bool,
    pub device_id: Option<String>,
    pub identifier: Identifier,
    pub session_id: String,
}

/// The session, if it is open and was opened for this request's brand, route family,
/// device and identifier; each mismatch has its own error.
pub fn check_session(
    session: Option<BrandSession>,
    req: &SessionRequest,
    now: i64,
) -> Result<BrandSession> {
    let s = match session {
        Some(s) if s.expires_at > now && s.validated_at.is_none() && s.web == req.web => s,
        _ => return Err(Error::InvalidSession),
    };
    if s.brand_key != req.brand.brand_key {
        return Err(Error::BrandMismatch);
    }
    if !req.web && s.device_id != req.device_id {
        return Err(Error::DeviceMismatch);
    }
    let id = &req.identifier;
    if s.identifier_type != id.kind.as_str() {
        return Err(Error::IdentifierMismatch);
    }
    if s.identifier_value != id.value {
        return Err(match id.kind {
            IdentifierKind::Mobile => Error::MobileMismatch,
            _ => Error::IdentifierMismatch,
        });
    }
    Ok(s)
}

// The checks of a brand before it is stored (the command line stores brands).
impl Brand {
    /// What is wrong with it, if anything.
    pub fn check(&self) -> Result<(), String> {
        let mut problems: Vec<String> = Vec::new();
        if self.name.is_empty() || self.name.len() > 100 {
            problems.push("the name must be 1 to 100 characters".into());
        }
        if self.org_id < 0 {
            problems.push("the org id must not be negative".into());
        }
        if self.otp_max_count == Some(0) {
            // Capillary's own rule, code 1535.
            problems.push("maximum OTP count per customer cannot be 0 (it has to be >= 1)".into());
        }
        if self
            .otp_max_count
            .is_some_and(|n| !(1..=10_000).contains(&n))
        {
            problems.push("otp max count must be 1 to 10000".into());
        }
        if self
            .otp_timeout_minutes
            .is_some_and(|n| !(1..=10_080).contains(&n))
        {
            problems.push("otp timeout must be 1 minute to 7 days".into());
        }
        if self.otp_max_count.is_some() != self.otp_timeout_minutes.is_some() {
            problems.push("give otp max count and otp timeout together (or neither)".into());
        }
        if !(1..=100).contains(&self.max_otp_retries) {
            problems.push("max OTP retries must be 1 to 100".into());
        }
        if !(4..=10).contains(&self.otp_length) {
            problems.push("OTP length must be 4 to 10 digits".into());
        }
        for (what, v) in [
            ("OTP validity", self.otp_validity_seconds),
            ("session validity", self.session_validity_seconds),
            ("token validity", self.token_validity_seconds),
            ("key validity", self.key_validity_seconds),
        ] {
            if !(60..=30 * 86_400).contains(&v) {
                problems.push(format!("{what} must be 1 minute to 30 days"));
            }
        }
        let listed: Vec<&str> = self.channels.split(',').map(str::trim).collect();
        if listed.is_empty() || listed.iter().any(|c| Channel::parse(c).is_none()) {
            problems.push("channels must be sms, email or both (comma-separated)".into());
        }
        if let Some(t) = &self.sms_template
            && let Err(e) = templates::check_template(t, templates::MESSAGE_PLACEHOLDERS, true)
        {
            problems.push(format!("the SMS template {e}"));
        }
        if let Some(k) = &self.hash_key
            && let Err(e) = keys::parse_key(k, 32)
        {
            problems.push(format!("the hash key {e}"));
        }
        if !(1..=86_400).contains(&self.hash_window_seconds) {
            problems.push("the hash window must be 1 second to 1 day".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
