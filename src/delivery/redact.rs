//! Error texts from providers end up in the outbox, in logs and in answers to
//! synchronous requests. Providers echo what they were sent (`550 <ann@example.com>:
//! unknown user`, `{"error": "invalid number +919876543219"}`), so every such text is
//! scrubbed here before it is kept anywhere: the destination is masked, and the
//! message's text and every number in it (the code among them) are removed.

use super::Outgoing;
use crate::core::mask;

/// Longest error text kept.
const MAX_CHARS: usize = 300;

pub fn scrub(text: &str, m: &Outgoing) -> String {
    let mut out = one_line(text);
    for t in [&m.message.text, m.message.subject.as_deref().unwrap_or("")] {
        if t.trim().chars().count() >= 4 {
            out = replace_ignore_case(&out, t.trim(), "[message]");
        }
    }
    // Numbers of four digits or more taken from the message: the code, and anything
    // else in it that the error could echo.
    let numbers: Vec<&str> = digit_runs(&m.message.text)
        .into_iter()
        .filter(|r| r.len() >= 4)
        .collect();
    out = map_digit_runs(&out, |run| {
        numbers.contains(&run).then(|| "*".repeat(run.len()))
    });
    out = mask_destination(&out, &m.to);
    truncate(&out, MAX_CHARS)
}

/// Masks `destination` wherever it appears in `text`: an e-mail address without case;
/// a phone number in any of its written forms (with or without `+` and country code,
/// any run of seven or more of its last digits).
pub fn mask_destination(text: &str, destination: &str) -> String {
    let destination = destination.trim();
    if destination.contains('@') {
        return replace_ignore_case(text, destination, &mask::email(destination));
    }
    let digits: String = destination.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 {
        return if digits.is_empty() {
            text.to_string()
        } else {
            map_digit_runs(text, |run| (run == digits).then(|| mask::phone(run)))
        };
    }
    // Seven or more of the number's last digits, or the number with a prefix.
    map_digit_runs(text, |run| {
        (run.len() >= 7 && (digits.ends_with(run) || run.ends_with(&digits)))
            .then(|| mask::phone(run))
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn digit_runs(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|r| !r.is_empty())
        .collect()
}

/// Rewrites each whole run of digits (never part of a longer number) for which `f`
/// gives a replacement.
fn map_digit_runs(text: &str, f: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let len = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let run = &after[..len];
        match f(run) {
            Some(replacement) => out.push_str(&replacement),
            None => out.push_str(run),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn replace_ignore_case(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_string();
    }
    let lower_text = text.to_lowercase();
    let lower_needle = needle.to_lowercase();
    // Lower-casing may change byte lengths outside ASCII; fall back to an exact match.
    if lower_text.len() != text.len() || lower_needle.len() != needle.len() {
        return text.replace(needle, with);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = lower_text[at..].find(&lower_needle) {
        out.push_str(&text[at..at + i]);
        out.push_str(with);
        at += i + needle.len();
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::channel::Channel;
    use crate::delivery::Message;

    fn sms(to: &str, text: &str) -> Outgoing {
        Outgoing {
            id: "m1".into(),
            channel: Channel::Sms,
            to: to.into(),
            to_masked: mask::phone(to),
            transaction_id: None,
            message: Message {
                subject: None,
                text: text.into(),
            },
            from: None,
            sender: None,
        }
    }

    #[test]
    fn phone_numbers_are_masked_in_every_written_form() {
        let m = sms("+919876543219", "483920 is your code. Ref AB2345.");
        for echoed in [
            "+919876543219",
            "919876543219",
            "9876543219",
            "0919876543219",
        ] {
            let e = scrub(&format!("invalid number {echoed} (code 21211)"), &m);
            assert!(!e.contains("9876543"), "{echoed}: {e}");
            assert!(e.ends_with("219 (code 21211)"), "{e}");
        }
    }

    #[test]
    fn the_code_and_the_text_are_removed() {
        let m = sms("+919876543219", "483920 is your code. Ref AB2345.");
        let e = scrub(
            r#"HTTP 400: {"message": "483920 is your code. Ref AB2345.", "otp": "483920", "n": 4839201}"#,
            &m,
        );
        assert_eq!(
            e,
            r#"HTTP 400: {"message": "[message]", "otp": "******", "n": 4839201}"#
        );
        assert!(!scrub("AB2345 rejected", &m).contains("2345"));
    }

    #[test]
    fn e_mail_addresses_are_masked_without_case_and_texts_are_one_short_line() {
        let mut m = sms("Ann.Lee@Example.com", "Your code is 1234");
        m.channel = Channel::Email;
        let e = scrub("550 5.1.1 <ann.lee@example.com>:\r\n  unknown user", &m);
        assert_eq!(e, "550 5.1.1 <Ann****@Ex*****.com>: unknown user");
        assert_eq!(scrub(&"x".repeat(400), &m).chars().count(), 301);
    }
}
