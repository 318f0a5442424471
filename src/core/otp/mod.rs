//! One-time passwords: generation, keyed storage, delivery hand-off, verification.
//!
//! Everything here is synchronous and takes a database connection; callers run it with
//! `Db::run`, off the async threads. Each operation is one database transaction.

pub mod decoy;
mod issue;
mod policy;
pub mod sends;
mod verify;

pub use crate::core::channel::{Channel, Destination};
pub use decoy::Decoy;
pub use issue::issue;
pub use policy::Policy;
pub use verify::{verify, verify_login, verify_then};

use rand::Rng;

use crate::core::ids::{ChallengeId, UserId};

/// What to issue: built with [`IssueRequest::new`], then the optional parts set.
pub struct IssueRequest {
    /// Who the code is for (`user:836`); one open challenge per subject and purpose.
    pub subject: String,
    pub purpose: &'static str,
    pub user_id: Option<UserId>,
    pub org_id: i64,
    pub destinations: Vec<Destination>,
    pub device_id: Option<String>,
    /// The language of the message, where the dialect carries one.
    pub language: Option<String>,
    /// An SMS text of the caller's own (a TwoFactorConfiguration's), instead of the
    /// organisation's template.
    pub sms_template: Option<String>,
    /// Hand the code back to the caller (a TwoFactorConfiguration that allows it).
    pub reveal_code: bool,
    pub policy: Policy,
    /// Count the policy's send limit apart from other sends to the same address: under
    /// this scope (e.g. a tenant's name) instead of per address alone. None counts
    /// every send to the address together.
    pub limit_scope: Option<String>,
    /// Issue a decoy, for this reason, instead of a code: everything a code takes but
    /// a code anyone could enter, and nothing queued for delivery ([`decoy`]).
    pub decoy: Option<Decoy>,
}

#[derive(Debug)]
pub struct Issued {
    pub transaction_id: ChallengeId,
    pub numeric_id: i64,
    /// The code, only when the request asked to reveal it.
    pub code: Option<String>,
    pub reference: String,
    pub expires_at: i64,
    /// The destinations written to the outbox, in request order (a decoy's, which
    /// were not).
    pub destinations: Vec<Destination>,
    /// The messages queued (none for a decoy, whose rows are cancelled from the start).
    pub outbox_ids: Vec<String>,
}

pub struct VerifyRequest {
    pub transaction_id: ChallengeId,
    pub code: String,
    pub device_id: Option<String>,
    /// When given, the challenge must be this subject's; another's reads as unknown.
    pub subject: Option<String>,
    /// The purposes the caller may verify (each operation sees only its own kind of
    /// challenge); any other reads as unknown.
    pub purposes: &'static [&'static str],
    /// Accept the right code again for a challenge already verified, while unexpired.
    pub allow_revalidate: bool,
}

#[derive(Debug, Clone)]
pub struct Verified {
    pub transaction_id: ChallengeId,
    pub numeric_id: Option<i64>,
    pub destination_masked: String,
    /// The challenge had been verified before (an allowed re-validation).
    pub revalidated: bool,
    pub user_id: Option<UserId>,
    pub subject: String,
    pub purpose: String,
    pub org_id: i64,
}

impl IssueRequest {
    /// A code for `subject` (`user:836`, `customer:<guid>`…) and `purpose`, to
    /// `destinations`, under `policy`: no user, organisation 0, no device binding, the
    /// organisation's templates, the code kept secret, limits counted per address.
    pub fn new(
        subject: String,
        purpose: &'static str,
        policy: Policy,
        destinations: Vec<Destination>,
    ) -> IssueRequest {
        IssueRequest {
            subject,
            purpose,
            user_id: None,
            org_id: 0,
            destinations,
            device_id: None,
            language: None,
            sms_template: None,
            reveal_code: false,
            policy,
            limit_scope: None,
            decoy: None,
        }
    }

    /// A decoy for `reason` ([`decoy`]) to `destinations`, stored under `subject`.
    pub fn decoy(
        subject: String,
        purpose: &'static str,
        policy: Policy,
        destinations: Vec<Destination>,
        reason: Decoy,
    ) -> IssueRequest {
        let mut r = IssueRequest::new(subject, purpose, policy, destinations);
        r.decoy = Some(reason);
        r
    }

    /// For a directory user: their id and organisation.
    pub fn for_user(mut self, user_id: UserId, org_id: i64) -> IssueRequest {
        self.user_id = Some(user_id);
        self.org_id = org_id;
        self
    }
}

/// `length` digits, each drawn uniformly from a CSPRNG.
pub fn generate_code(length: u32) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A short reference shown with the code, from letters and digits that are hard to
/// confuse.
pub fn generate_reference() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_of_the_policy_length_and_vary() {
        for len in 4..=10 {
            let c = generate_code(len);
            assert_eq!(c.len(), len as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        let many: std::collections::HashSet<String> = (0..200).map(|_| generate_code(8)).collect();
        assert!(many.len() > 190);
    }

    #[test]
    fn every_digit_turns_up() {
        let all: String = (0..100).map(|_| generate_code(10)).collect();
        for d in '0'..='9' {
            assert!(all.contains(d));
        }
    }

    #[test]
    fn references_are_six_unambiguous_characters() {
        let r = generate_reference();
        assert_eq!(r.len(), 6);
        assert!(!r.contains(['0', 'O', '1', 'I']));
    }
}
