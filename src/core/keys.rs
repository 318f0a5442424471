//! Server secrets: the keyed hash of codes, the sealing of outbox messages, and the
//! keyed hash behind decoys.
//!
//! Codes are stored as HMAC-SHA-256(code key, transaction id ‖ 0 ‖ code), so a database
//! dump alone does not reveal them; older keys stay accepted after a rotation. Outbox
//! messages (which carry the code until sent) are sealed with AES-256-GCM. Both keys
//! are derived from the configured secret with HKDF, one per purpose.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::SecretSettings;

type HmacSha256 = Hmac<Sha256>;

struct KeySet {
    code: [u8; 32],
    seal: Aes256Gcm,
}

pub struct Keys {
    /// The current key first, then the previous ones.
    sets: Vec<KeySet>,
    /// HKDF of the current secret, for keys of other purposes.
    current: hkdf::Hkdf<Sha256>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} key sets, redacted)", self.sets.len())
    }
}

/// A key given as hex or base64, at least `min_len` bytes.
pub fn parse_key(text: &str, min_len: usize) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let bytes = if t.len().is_multiple_of(2) && t.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(t).map_err(|_| "is not valid hex".to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(|_| "is neither hex nor base64".to_string())?
    };
    if bytes.len() < min_len {
        return Err(format!(
            "is {} bytes long; at least {min_len} are needed",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn derive(secret: &[u8]) -> KeySet {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"otpgate"), secret);
    let mut code = [0u8; 32];
    let mut seal = [0u8; 32];
    // Infallible for 32-byte outputs of SHA-256.
    let _ = hk.expand(b"code hash v1", &mut code);
    let _ = hk.expand(b"outbox seal v1", &mut seal);
    KeySet {
        code,
        seal: Aes256Gcm::new(&seal.into()),
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

impl Keys {
    pub fn from_secrets(current: &[u8], previous: &[Vec<u8>]) -> Keys {
        let mut sets = vec![derive(current)];
        sets.extend(previous.iter().map(|p| derive(p)));
        Keys {
            sets,
            current: hkdf::Hkdf::<Sha256>::new(Some(b"otpgate"), current),
        }
    }

    /// From configuration; without a configured key, the key file is read, or created
    /// (mode 0600) on first start.
    pub fn from_settings(s: &SecretSettings) -> Result<Keys, String> {
        let current = match &s.otp_key {
            Some(k) => parse_key(k, 32).map_err(|e| format!("secrets.otp_key {e}"))?,
            None => load_or_create_key_file(&s.key_file)?,
        };
        let previous = s
            .previous_otp_keys
            .iter()
            .map(|k| parse_key(k, 32))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("secrets.previous_otp_keys: a key {e}"))?;
        Ok(Keys::from_secrets(&current, &previous))
    }

    /// A 32-byte key for another purpose (`info` names it), derived from the current
    /// secret with HKDF-SHA-256: it changes when the secret is rotated.
    pub fn derived(&self, info: &[u8]) -> [u8; 32] {
        let mut key = [0u8; 32];
        // Infallible for a 32-byte output of SHA-256.
        let _ = self.current.expand(info, &mut key);
        key
    }

    fn mac(code_key: &[u8; 32], challenge_id: &str, code: &str) -> [u8; 32] {
        // new_from_slice only fails for invalid key lengths, which HMAC does not have.
        let mut mac = match <HmacSha256 as Mac>::new_from_slice(code_key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(challenge_id.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The stored form of a code, under the current key.
    pub fn code_hash(&self, challenge_id: &str, code: &str) -> Vec<u8> {
        Self::mac(&self.sets[0].code, challenge_id, code).to_vec()
    }

    /// Whether `code` is the one behind `stored`, under any accepted key; each
    /// comparison takes the same time whatever the bytes.
    pub fn code_matches(&self, challenge_id: &str, code: &str, stored: &[u8]) -> bool {
        let mut found = subtle::Choice::from(0u8);
        for set in &self.sets {
            found |= Self::mac(&set.code, challenge_id, code).ct_eq(stored);
        }
        found.into()
    }

    /// The keyed hash behind a decoy (an answer given for an identifier nobody is
    /// registered under): HMAC-SHA-256 of `domain` ‖ 0 ‖ the identifier without case or
    /// surrounding spaces, under a key of its own. The same identifier always gives the
    /// same bytes (while the secret is unchanged); nobody without the key can tell them
    /// from a real user's.
    fn decoy_mac(&self, domain: &str, identifier: &str) -> [u8; 32] {
        let key = self.derived(b"decoy number v1");
        Self::mac(&key, domain, &identifier.trim().to_lowercase())
    }

    /// The keyed hash of a destination as audit events store it (hex): HMAC-SHA-256 of
    /// the normalised destination under a key of its own, so the audit can be searched
    /// by address while holding none, and a dump cannot be matched against a list of
    /// phone numbers without the secret. It changes when the secret is rotated.
    pub fn destination_key(&self, normalised: &str) -> String {
        let key = self.derived(b"audit destination v1");
        hex::encode(Self::mac(&key, "destination", normalised))
    }

    /// A made-up but plausible national mobile number for an identifier nobody is
    /// registered under: ten digits, the first 6 to 9, stable per identifier.
    pub fn decoy_number(&self, identifier: &str) -> String {
        let mac = self.decoy_mac("number", identifier);
        let mut head = [0u8; 16];
        head.copy_from_slice(&mac[..16]);
        let mut n = u128::from_be_bytes(head);
        let first = 6 + (n % 4) as u8;
        n /= 4;
        let rest = n % 1_000_000_000;
        format!("{}{rest:09}", char::from(b'0' + first))
    }

    /// A country calling code of two digits (10 to 99) for a decoy number, when the
    /// request names none; stable per identifier.
    pub fn decoy_country_code(&self, identifier: &str) -> String {
        let mac = self.decoy_mac("country", identifier);
        (10 + u16::from_be_bytes([mac[0], mac[1]]) % 90).to_string()
    }

    /// A stable keyed tag for an identifier nobody is registered under (hex, 32
    /// characters): what its decoy challenges are stored under, in place of a user.
    pub fn decoy_tag(&self, identifier: &str) -> String {
        hex::encode(&self.decoy_mac("subject", identifier)[..16])
    }

    /// Seals a message: a random 96-bit nonce followed by the ciphertext.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<12>();
        let mut out = nonce.to_vec();
        // Encryption with a valid key and nonce does not fail for in-memory buffers.
        if let Ok(ct) = self.sets[0]
            .seal
            .encrypt(Nonce::from_slice(&nonce), plaintext)
        {
            out.extend(ct);
        }
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(12);
        self.sets
            .iter()
            .find_map(|s| s.seal.decrypt(Nonce::from_slice(nonce), ct).ok())
    }
}

fn load_or_create_key_file(path: &Path) -> Result<Vec<u8>, String> {
    let read = |p: &Path| -> Result<Vec<u8>, String> {
        let text = std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read key file {}: {e}", p.display()))?;
        parse_key(&text, 32).map_err(|e| format!("key file {} {e}", p.display()))
    };
    if path.exists() {
        return read(path);
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => {
            let key = random_bytes::<32>();
            writeln!(f, "{}", hex::encode(key))
                .map_err(|e| format!("cannot write key file {}: {e}", path.display()))?;
            tracing::warn!(
                key_file = %path.display(),
                "created a new code key; set secrets.otp_key (the same on every process) for production"
            );
            Ok(key.to_vec())
        }
        // Another process created it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(format!("cannot create key file {}: {e}", path.display())),
    }
}

/// SHA-256, hex: how tokens and destinations are stored and looked up.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_only_their_own_challenge_and_survive_rotation() {
        let old = Keys::from_secrets(&[1u8; 32], &[]);
        let stored = old.code_hash("t1", "123456");
        assert!(old.code_matches("t1", "123456", &stored));
        assert!(!old.code_matches("t1", "123457", &stored));
        assert!(!old.code_matches("t2", "123456", &stored));
        let rotated = Keys::from_secrets(&[2u8; 32], &[vec![1u8; 32]]);
        assert!(rotated.code_matches("t1", "123456", &stored));
        let forgotten = Keys::from_secrets(&[2u8; 32], &[]);
        assert!(!forgotten.code_matches("t1", "123456", &stored));
        assert_ne!(stored, rotated.code_hash("t1", "123456"));
    }

    #[test]
    fn sealed_messages_open_only_with_an_accepted_key() {
        let k = Keys::from_secrets(&[3u8; 32], &[]);
        let sealed = k.seal(b"123456 is your code");
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_eq!(
            k.open(&sealed).as_deref(),
            Some(&b"123456 is your code"[..])
        );
        let rotated = Keys::from_secrets(&[4u8; 32], &[vec![3u8; 32]]);
        assert!(rotated.open(&sealed).is_some());
        assert!(Keys::from_secrets(&[4u8; 32], &[]).open(&sealed).is_none());
        assert!(k.open(&sealed[..10]).is_none());
    }

    #[test]
    fn decoys_are_stable_plausible_and_keyed() {
        let k = Keys::from_secrets(&[5u8; 32], &[]);
        let n = k.decoy_number("nobody@nowhere.com");
        assert_eq!(n.len(), 10);
        assert!(n.bytes().all(|b| b.is_ascii_digit()));
        assert!(matches!(n.as_bytes()[0], b'6'..=b'9'), "{n}");
        assert_eq!(
            n,
            k.decoy_number(" Nobody@Nowhere.com "),
            "case and spaces aside"
        );
        assert_ne!(n, k.decoy_number("somebody@nowhere.com"));
        let other = Keys::from_secrets(&[6u8; 32], &[]);
        assert_ne!(n, other.decoy_number("nobody@nowhere.com"), "keyed");
        let cc = k.decoy_country_code("nobody");
        assert!(cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_digit()) && !cc.starts_with('0'));
        assert_eq!(k.decoy_tag("x").len(), 32);
        assert_eq!(k.decoy_tag("x"), k.decoy_tag("X"));
        assert_ne!(k.decoy_tag("x"), k.decoy_tag("y"));
        let many: std::collections::HashSet<String> =
            (0..500).map(|i| k.decoy_number(&format!("u{i}"))).collect();
        assert_eq!(many.len(), 500);
    }

    #[test]
    fn keys_parse_from_hex_or_base64_with_a_minimum_length() {
        assert_eq!(parse_key(&"ab".repeat(32), 32).map(|k| k.len()), Ok(32));
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(parse_key(&b64, 32), Ok(vec![7u8; 32]));
        assert!(parse_key("abcd", 32).is_err());
        assert!(parse_key("not a key!", 32).is_err());
    }
}
