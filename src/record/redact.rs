//! What a recording never holds: which field names are secrets, codes, chain ids or
//! phone numbers, and the fake e-mail addresses and phone numbers that replace the
//! real ones, the same fake for the same real one throughout a scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use rand::Rng;
use regex::Regex;

use crate::core::mask;

/// A field name without case, `_` or `-`: `Session_Id`, `sessionId` and `SESSIONID`
/// are one name.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Names whose values are secrets: passwords, API keys, tokens (TokenID), session ids,
/// credentials of any kind.
pub fn is_secret(normalized: &str) -> bool {
    const ENDINGS: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "secret",
        "apikey",
        "token",
        "tokenid",
        "sessionid",
        "sessiontoken",
        "sessionkey",
        "authorization",
        "cookie",
        "hashkey",
        "accesskey",
        "privatekey",
        "credential",
        "credentials",
    ];
    const EXACT: &[&str] = &["key", "pin", "mpin", "auth", "signature"];
    ENDINGS.iter().any(|e| normalized.ends_with(e))
        || normalized.starts_with("password")
        || EXACT.contains(&normalized)
}

/// Names whose values are one-time codes. `Code` alone is a code in a request only:
/// the answers use it for their result codes.
pub fn is_code(normalized: &str, in_request: bool) -> bool {
    normalized == "otp"
        || normalized.ends_with("otpcode")
        || normalized == "otpvalue"
        || normalized == "verificationcode"
        || (in_request && normalized == "code")
}

/// Names whose values may be phone numbers (when they look like one).
pub fn is_phone_name(normalized: &str) -> bool {
    ["gsm", "mobile", "phone", "msisdn"]
        .iter()
        .any(|p| normalized.contains(p))
        || normalized == "identifiervalue"
}

/// A value that looks like a phone number: 6 to 15 digits with `+`, spaces, dashes,
/// dots or brackets.
pub fn looks_like_phone(value: &str) -> bool {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    (6..=15).contains(&digits)
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'))
}

/// The names an answer's transaction or session ids are given, and the variable each
/// is captured into when a later request uses it.
pub fn id_variable(normalized: &str) -> Option<&'static str> {
    match normalized {
        "transactionid" => Some("txn"),
        "otpidreference" | "referenceid" => Some("ref"),
        "id" | "otpid" => Some("id"),
        "sessionid" => Some("sid"),
        "tokenid" => Some("tok"),
        _ => None,
    }
}

/// What stands in a request for a secret: zeros for digits (a code, a PIN: the field
/// keeps its shape), else `redacted`.
pub fn placeholder(value: &str) -> String {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        "0".repeat(value.len())
    } else {
        "redacted".into()
    }
}

/// The fake e-mail addresses and phone numbers of one scenario.
#[derive(Debug, Default)]
pub struct Faker {
    /// Real e-mail address (lower case) -> fake.
    emails: BTreeMap<String, String>,
    /// Real phone number's digits -> fake digits (as many).
    phones: BTreeMap<String, String>,
    /// The fakes handed out, so a fake met again is kept.
    fakes: BTreeSet<String>,
}

#[allow(
    clippy::expect_used,
    reason = "constant patterns, exercised by the tests"
)]
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+").expect("email pattern")
});

#[allow(
    clippy::expect_used,
    reason = "constant patterns, exercised by the tests"
)]
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?[0-9]{10,15}").expect("phone pattern"));

impl Faker {
    /// The fake for a real e-mail address.
    pub fn email(&mut self, real: &str) -> String {
        let key = real.to_lowercase();
        if self.fakes.contains(&key) {
            return real.to_string();
        }
        if let Some(f) = self.emails.get(&key) {
            return f.clone();
        }
        let mut n = self.emails.len() + 1;
        let fake = loop {
            let f = format!("person{n}@example.org");
            if f != key && !self.fakes.contains(&f) {
                break f;
            }
            n += 1;
        };
        self.emails.insert(key, fake.clone());
        self.fakes.insert(fake.clone());
        fake
    }

    /// The fake for a real phone number: as many digits, the first two kept (a country
    /// code, often), the last three different, the formatting kept.
    pub fn phone(&mut self, real: &str) -> String {
        let digits: String = real.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() || self.fakes.contains(&digits) {
            return real.to_string();
        }
        let fake_digits = match self.phones.get(&digits) {
            Some(f) => f.clone(),
            None => {
                let f = self.new_phone(&digits);
                self.phones.insert(digits.clone(), f.clone());
                self.fakes.insert(f.clone());
                f
            }
        };
        let mut fake = fake_digits.chars();
        real.chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    fake.next().unwrap_or(c)
                } else {
                    c
                }
            })
            .collect()
    }

    fn new_phone(&self, digits: &str) -> String {
        let keep = if digits.len() > 6 { 2 } else { 0 };
        let mut rng = rand::rng();
        loop {
            let tail: String = (keep..digits.len())
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            let f = format!("{}{tail}", &digits[..keep]);
            let tail_differs = digits.len() < 3 || f[f.len() - 3..] != digits[digits.len() - 3..];
            if f != digits && tail_differs && !self.fakes.contains(&f) {
                return f;
            }
        }
    }

    /// Finds the e-mail addresses and phone numbers in a text and gives each a fake, so
    /// the masked forms of all of them are known before any answer is rewritten.
    pub fn learn(&mut self, text: &str) {
        let _ = self.contacts(text);
    }

    /// The text with every e-mail address, phone number (10 to 15 digits, or one met
    /// before), and the masked form of one met before, replaced by its fake.
    pub fn contacts(&mut self, text: &str) -> String {
        let mut out = self.masks(text);
        if out.contains('@') {
            out = EMAIL
                .replace_all(&out, |c: &regex::Captures| self.email(&c[0]))
                .into_owned();
        }
        out = replace_bounded(&out, &PHONE, |m| self.phone(m));
        // Numbers met in a phone field, wherever else they appear.
        let known: Vec<(String, String)> = self
            .phones
            .iter()
            .map(|(r, f)| (r.clone(), f.clone()))
            .collect();
        for (real, fake) in known {
            if real.len() >= 6 && out.contains(&real) {
                out = replace_literal_bounded(&out, &real, &fake);
            }
        }
        out
    }

    /// Masked forms (`Vis*********@sy****.com`, `*******219`) of known addresses and
    /// numbers, replaced by the masked forms of their fakes.
    fn masks(&self, text: &str) -> String {
        if !text.contains('*') {
            return text.to_string();
        }
        let mut out = text.to_string();
        for (real, fake) in &self.emails {
            let (m, f) = (mask::email(real), mask::email(fake));
            out = replace_literal_bounded(&out, &m, &f);
        }
        for (real, fake) in &self.phones {
            let (m, f) = (mask::phone(real), mask::phone(fake));
            if m.chars().any(|c| c.is_ascii_digit()) {
                out = replace_literal_bounded(&out, &m, &f);
            }
        }
        out
    }
}

/// A character that continues a token: a match next to one is part of something
/// longer (an id, a hex string, a masked number) and is left alone.
fn continues(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*' | '/' | '%' | '+')
}

fn replace_bounded(text: &str, re: &Regex, mut f: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for m in re.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        if before.is_some_and(continues) || after.is_some_and(|c| continues(c) && c != '.') {
            continue;
        }
        out.push_str(&text[copied..m.start()]);
        out.push_str(&f(m.as_str()));
        copied = m.end();
    }
    out.push_str(&text[copied..]);
    out
}

/// Replaces `needle` where it stands alone (not inside a longer token), without case
/// for letters.
fn replace_literal_bounded(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_string();
    }
    let re = match Regex::new(&format!("(?i){}", regex::escape(needle))) {
        Ok(re) => re,
        Err(_) => return text.to_string(),
    };
    let starts_with_star = needle.starts_with('*');
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for m in re.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let bad_before = before.is_some_and(|c| {
            if starts_with_star {
                c == '*' || c.is_ascii_alphanumeric()
            } else {
                c.is_ascii_alphanumeric() || c == '_'
            }
        });
        let bad_after = after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if bad_before || bad_after {
            continue;
        }
        out.push_str(&text[copied..m.start()]);
        out.push_str(with);
        copied = m.end();
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_without_case() {
        for secret in [
            "Password",
            "NewPassword",
            "TokenID",
            "token",
            "sessionId",
            "Session_Id",
            "X-Api-Key",
            "apiKey",
            "Authorization",
            "Cookie",
            "key",
            "PasswordChangeRequestId",
        ] {
            assert!(is_secret(&normalize(secret)), "{secret}");
        }
        for plain in [
            "SessionIdleTimeout",
            "AuthType",
            "UserId",
            "DeviceId",
            "Code",
            "MobileVersion",
            "identifierType",
        ] {
            assert!(!is_secret(&normalize(plain)), "{plain}");
        }
        assert!(is_code("otpcode", false) && is_code("otp", false));
        assert!(is_code("code", true) && !is_code("code", false));
        assert!(is_phone_name(&normalize("GsmNumber")) && is_phone_name("capmobile"));
        assert!(looks_like_phone("+90 (532) 123-45-67") && !looks_like_phone("5.10.3"));
        assert_eq!(placeholder("123456"), "000000");
        assert_eq!(placeholder("S3cret!"), "redacted");
        assert_eq!(id_variable(&normalize("OtpIdReference")), Some("ref"));
    }

    #[test]
    fn contacts_get_the_same_fake_throughout_and_their_masks_follow() {
        let mut f = Faker::default();
        let a = f.contacts("mail Vishnu.Kumar@Syntel.com and +905321234567 or 905321234567.");
        assert!(!a.to_lowercase().contains("vishnu"), "{a}");
        assert!(!a.contains("5321234567"), "{a}");
        let fake_mail = f.email("vishnu.kumar@syntel.com");
        let fake_phone = f.phone("905321234567");
        assert_eq!(
            a,
            format!("mail {fake_mail} and +{fake_phone} or {fake_phone}.")
        );
        assert_eq!(fake_phone.len(), 12);
        assert!(fake_phone.starts_with("90") && !fake_phone.ends_with("567"));
        // Fakes are kept when met again; formatting is kept.
        assert_eq!(f.contacts(&a), a);
        assert_eq!(
            f.phone("+90 532 123 45 67")
                .chars()
                .filter(|c| *c == ' ')
                .count(),
            4
        );
        // The masks of the real values become the masks of the fakes.
        let masked = f.contacts("OTP sent to Vis*********@sy****.com and *********567");
        assert_eq!(
            masked,
            format!(
                "OTP sent to {} and {}",
                mask::email(&fake_mail),
                mask::phone(&fake_phone)
            )
        );
        // Ids, hex and GUIDs are not phone numbers.
        let ids = "3698b76f-a5c0-4b04-b579-bc0840190095 00000000-1111-4222-8333-444444444444 ab12345678901";
        assert_eq!(f.contacts(ids), ids);
    }
}
