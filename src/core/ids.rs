//! Identifiers that cross layers, as types of their own so that one cannot stand in for
//! another: a challenge's transaction id and a directory user's id. GUIDs are parsed
//! here and only here.

use std::fmt;

/// A GUID in any spelling .NET writes (hyphenated or not, in braces or parentheses, any
/// case), as its canonical lower-case hyphenated text.
pub fn parse_guid(text: &str) -> Option<String> {
    uuid::Uuid::try_parse(text.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// Whether a canonical GUID is the nil one (what .NET sends for "none").
pub fn is_nil_guid(guid: &str) -> bool {
    uuid::Uuid::try_parse(guid).is_ok_and(|u| u.is_nil())
}

/// The id of a challenge (one generated code): the TransactionID, OtpIdReference or
/// the like of the dialects. A v4 UUID, lower-case and hyphenated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChallengeId(String);

impl ChallengeId {
    pub fn new() -> ChallengeId {
        ChallengeId(uuid::Uuid::new_v4().to_string())
    }

    /// Any spelling of a GUID names the same challenge.
    pub fn parse(text: &str) -> Option<ChallengeId> {
        parse_guid(text).map(ChallengeId)
    }

    /// An id as the database holds it (already canonical).
    pub fn from_stored(id: String) -> ChallengeId {
        ChallengeId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Default for ChallengeId {
    fn default() -> Self {
        ChallengeId::new()
    }
}

impl fmt::Display for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The numeric id of a directory user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_guid_names_one_challenge() {
        let canonical = "3f0c6a4e-8a7b-4c1d-9e2f-0a1b2c3d4e5f";
        for s in [
            canonical,
            "3F0C6A4E8A7B4C1D9E2F0A1B2C3D4E5F",
            "{3f0c6a4e-8a7b-4c1d-9e2f-0a1b2c3d4e5f}",
            " 3F0C6A4E-8A7B-4C1D-9E2F-0A1B2C3D4E5F ",
        ] {
            assert_eq!(
                ChallengeId::parse(s).map(ChallengeId::into_string),
                Some(canonical.to_string()),
                "{s}"
            );
        }
        assert_eq!(ChallengeId::parse("not-a-guid"), None);
        assert!(is_nil_guid("00000000-0000-0000-0000-000000000000"));
        assert!(!is_nil_guid(canonical));
    }
}
