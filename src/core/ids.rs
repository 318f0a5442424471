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
/// the like of the dialects. A UUID, lower-case and hyphenated, of version 7: its first
/// 48 bits are the time it was made (ms), and the rest random (a counter started at a
/// random value each millisecond keeps one process's ids in order, and 32 more bits are
/// drawn for each). Clients take it as any GUID. Being in time order, it adds its
/// entries at the end of the indexes it is looked up by (the challenges' key, the
/// outbox's and the audit's by transaction) instead of on a random page of each: on a
/// database that holds weeks of codes, a random page is seldom in the cache, and each
/// one written is a page more to log at commit (docs/performance.md). It carries no
/// secret: a code is checked against its own challenge, whose attempts are counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChallengeId(String);

impl ChallengeId {
    pub fn new() -> ChallengeId {
        ChallengeId(uuid::Uuid::now_v7().to_string())
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

    /// New challenge ids are GUIDs that any spelling parses back to, and, as text (the
    /// way the indexes order them), each comes after the one made before it.
    #[test]
    fn new_challenge_ids_are_guids_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..1000)
            .map(|_| ChallengeId::new().into_string())
            .collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for id in &ids {
            let upper = id.to_uppercase().replace('-', "");
            assert_eq!(
                ChallengeId::parse(&upper)
                    .map(ChallengeId::into_string)
                    .as_ref(),
                Some(id)
            );
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
