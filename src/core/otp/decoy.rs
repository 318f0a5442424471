//! Decoys: what a code request for an identifier nobody is registered under gets when
//! answers may not reveal who is registered (`security.reveal_unknown_users` false).
//!
//! A decoy is issued like a code, through [`issue`](super::issue) with
//! [`IssueRequest::decoy`](super::IssueRequest) set: the same send limits and resend
//! cooldown on its destinations, the subject's open challenge superseded, a challenge
//! stored, the sends counted, the messages rendered and sealed, the issue audited. It
//! differs in what nobody outside can see: its stored hash is random bytes no code
//! can match (so verifying it fails as a wrong code does, attempts counting down to
//! the same lockout), its messages are written as cancelled rows that the dispatcher
//! never claims (without the sealed text or the address), and the audit trail says why
//! (`unknown_user`, `no_destination`).
//!
//! Its subject and its mobile number come from a keyed hash of the identifier, so the
//! same probe always gets the same masked number.

use super::{Channel, Destination};
use crate::core::keys::Keys;

/// The note on a decoy's messages (`last_error`), for the operator who lists the outbox.
pub const NOTE: &str = "never sent: a decoy, for a request naming nobody who can get a code";

/// Why a request got a decoy instead of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoy {
    /// Nobody is registered under the identifier.
    UnknownUser,
    /// The user has no address on any channel the code could go to.
    NoDestination,
}

impl Decoy {
    /// The outcome of the issue in the audit trail.
    pub fn outcome(self) -> &'static str {
        match self {
            Decoy::UnknownUser => "unknown_user",
            Decoy::NoDestination => "no_destination",
        }
    }
}

/// The subject a decoy for `identifier` is stored under: one per identifier, as a
/// user has one, so a second probe supersedes the first.
pub fn subject(keys: &Keys, identifier: &str) -> String {
    format!("decoy:{}", keys.decoy_tag(identifier))
}

/// Where a decoy for `identifier` "goes", on each of `channels`: the identifier itself
/// by e-mail, and by SMS its made-up number ([`Keys::decoy_number`]) after
/// `country_code` (a made-up one of two digits when None), as a user's international
/// number. Nothing is ever sent there: the addresses count the send limits, as a
/// user's do, and are masked for the answer.
pub fn destinations(
    keys: &Keys,
    identifier: &str,
    channels: &[Channel],
    country_code: Option<&str>,
) -> Vec<Destination> {
    channels
        .iter()
        .map(|&channel| Destination {
            channel,
            address: match channel {
                Channel::Email => identifier.trim().to_string(),
                Channel::Sms => international(keys, identifier, country_code),
            },
        })
        .collect()
}

/// The decoy number of `identifier` as an international number, `+` and its digits.
pub fn international(keys: &Keys, identifier: &str, country_code: Option<&str>) -> String {
    let cc = match country_code.map(|c| c.trim().trim_start_matches('+')) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => keys.decoy_country_code(identifier),
    };
    format!("+{cc}{}", keys.decoy_number(identifier))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::mask;

    #[test]
    fn destinations_follow_the_channels_and_stay_put() {
        let k = Keys::from_secrets(&[9u8; 32], &[]);
        let d = destinations(
            &k,
            " Nobody@Nowhere.com",
            &[Channel::Email, Channel::Sms],
            Some("91"),
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].address, "Nobody@Nowhere.com");
        assert_eq!(d[0].masked(), "Nob***@No*****.com");
        let sms = &d[1].address;
        assert!(sms.starts_with("+91") && sms.len() == 13, "{sms}");
        assert_eq!(mask::phone(sms), format!("*********{}", &sms[10..]));
        let again = destinations(&k, "nobody@nowhere.com", &[Channel::Sms], Some("+91"));
        assert_eq!(again[0].address, *sms);
        let bare = international(&k, "nobody", None);
        assert_eq!(
            bare.len(),
            13,
            "a two-digit country code and ten digits: {bare}"
        );
        assert_eq!(bare, international(&k, "NOBODY", Some("")));
        assert_eq!(subject(&k, "nobody"), subject(&k, " Nobody"));
        assert!(subject(&k, "nobody").starts_with("decoy:"));
    }
}
