//! Error texts from providers end up in the outbox, in logs and in answers to
//! synchronous requests. Providers echo what they were sent (`550 <ann@example.com>:
//! unknown user`, `{"error": "invalid number +919876543219"}`), so every such text is
//! scrubbed here before it is kept anywhere: the destination is masked, and the
//! message's text and every number in it (the code among them) are removed.
//!
//! Numbers are read as a reader would: any Unicode decimal digit (fullwidth `４`,
//! Arabic-Indic `٤`…) counts as its ASCII value, and a few separators between digits
//! (spaces of any width, dashes, dots, commas) do not end the number, so `2 9 4 5 7 0`,
//! `294-570` and `２９４５７０` are all the code 294570. A number whose digits contain the
//! code, another number of the message or the destination is masked whole.

use super::Outgoing;
use crate::core::mask;

/// Longest error text kept.
const MAX_CHARS: usize = 300;

/// Most separator characters between two digits of one number (`2 - 9` has three).
const MAX_SEPARATORS: usize = 3;

/// How many of a phone number's last digits identify it.
const PHONE_TAIL: usize = 7;

pub fn scrub(text: &str, m: &Outgoing) -> String {
    let mut out = one_line(text);
    for t in [&m.message.text, m.message.subject.as_deref().unwrap_or("")] {
        if t.trim().chars().count() >= 4 {
            out = replace_ignore_case(&out, t.trim(), "[message]");
        }
    }
    // Numbers of four digits or more taken from the message: the code, and anything
    // else in it that the error could echo.
    let numbers = message_numbers(&m.message.text);
    out = map_numbers(&out, |digits| {
        numbers
            .iter()
            .any(|n| digits.contains(n.as_str()))
            .then(|| "*".repeat(digits.len()))
    });
    out = mask_destination(&out, &m.to);
    truncate(&out, MAX_CHARS)
}

/// Masks `destination` wherever it appears in `text`: an e-mail address without case;
/// a phone number in any of its written forms (with or without `+` and country code,
/// spaced, dashed or in other digits: any number holding its last seven digits).
pub fn mask_destination(text: &str, destination: &str) -> String {
    let destination = destination.trim();
    if destination.contains('@') {
        return replace_ignore_case(text, destination, &mask::email(destination));
    }
    let digits: String = destination.chars().filter_map(ascii_digit).collect();
    if digits.is_empty() {
        return text.to_string();
    }
    if digits.len() < PHONE_TAIL {
        return map_numbers(text, |run| (run == digits).then(|| mask::phone(run)));
    }
    let tail = &digits[digits.len() - PHONE_TAIL..];
    map_numbers(text, |run| run.contains(tail).then(|| mask::phone(run)))
}

/// The numbers of four digits or more in a message: each plain run of digits, and
/// each number written with separators.
fn message_numbers(text: &str) -> Vec<String> {
    let mut numbers: Vec<String> = Vec::new();
    let plain = text
        .split(|c: char| ascii_digit(c).is_none())
        .map(|r| r.chars().filter_map(ascii_digit).collect::<String>());
    let spelled = numbers_in(text).into_iter().map(|n| n.digits);
    for n in plain.chain(spelled) {
        if n.len() >= 4 && !numbers.contains(&n) {
            numbers.push(n);
        }
    }
    numbers
}

/// Whether `c` may be part of a number (a digit or a separator) or of a word: a text
/// cut short should not end in one, or the masking could miss what it cut.
pub(super) fn continues_a_token(c: char) -> bool {
    c.is_alphanumeric() || ascii_digit(c).is_some() || is_separator(c)
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

/// A number as written in a text: its bytes `start..end` (first digit to last) and
/// its digits in ASCII.
struct Number {
    start: usize,
    end: usize,
    digits: String,
}

/// Every maximal number of `text`: digits with at most `MAX_SEPARATORS` separators
/// between two of them.
fn numbers_in(text: &str) -> Vec<Number> {
    let mut found = Vec::new();
    let mut current: Option<Number> = None;
    let mut separators = 0;
    for (i, c) in text.char_indices() {
        if let Some(d) = ascii_digit(c) {
            match &mut current {
                Some(n) => n.digits.push(d),
                None => {
                    current = Some(Number {
                        start: i,
                        end: i,
                        digits: d.to_string(),
                    })
                }
            }
            if let Some(n) = &mut current {
                n.end = i + c.len_utf8();
            }
            separators = 0;
        } else if current.is_some() && is_separator(c) && separators < MAX_SEPARATORS {
            separators += 1;
        } else {
            found.extend(current.take());
            separators = 0;
        }
    }
    found.extend(current);
    found
}

/// Rewrites each whole number of `text` (never part of a longer one) for which `f`,
/// given its ASCII digits, gives a replacement.
fn map_numbers(text: &str, f: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for n in numbers_in(text) {
        if let Some(replacement) = f(&n.digits) {
            out.push_str(&text[at..n.start]);
            out.push_str(&replacement);
            at = n.end;
        }
    }
    out.push_str(&text[at..]);
    out
}

/// Spaces of any width, zero-width characters, dashes, dots and commas: what is
/// written between the digits of one number.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            // zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
            // dashes and minus signs
            | '-' | '_' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}'
            // dots
            | '.' | '\u{00B7}' | '\u{2024}' | '\u{2027}' | '\u{2219}' | '\u{30FB}'
            | '\u{FF0E}' | '\u{3002}' | '\u{FF61}'
            // commas and the Arabic decimal and thousands separators
            | ',' | '\u{060C}' | '\u{066B}' | '\u{066C}' | '\u{FF0C}'
        )
}

/// The first code point of each block of ten decimal digits (Unicode 15, general
/// category Nd): ASCII, Arabic-Indic, Devanagari, …, fullwidth, mathematical.
const DIGIT_ZEROS: [u32; 68] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0,
    0x1E950, 0x1FBF0,
];

/// The ASCII digit `c` stands for: any decimal digit, and the superscript and
/// subscript digits.
fn ascii_digit(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    let cp = c as u32;
    let value = match c {
        '\u{2070}' => Some(0),
        '\u{00B9}' => Some(1),
        '\u{00B2}' | '\u{00B3}' => Some(cp - 0xB0),
        '\u{2074}'..='\u{2079}' => Some(cp - 0x2070),
        '\u{2080}'..='\u{2089}' => Some(cp - 0x2080),
        _ if cp < 0x0660 => None,
        _ => DIGIT_ZEROS
            .iter()
            .find(|&&zero| (zero..zero + 10).contains(&cp))
            .map(|zero| cp - zero),
    }?;
    char::from_digit(value, 10)
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
            r#"HTTP 400: {"message": "[message]", "otp": "******", "n": *******}"#
        );
        assert!(!scrub("AB2345 rejected", &m).contains("2345"));
        // Numbers that are not the message's stay as they were.
        let e = scrub("HTTP 400: sender 67890 unknown (code 21211, 3.5 s)", &m);
        assert_eq!(e, "HTTP 400: sender 67890 unknown (code 21211, 3.5 s)");
    }

    /// The digits a reader sees in `text`, in ASCII.
    fn digits_of(text: &str) -> String {
        text.chars().filter_map(ascii_digit).collect()
    }

    #[test]
    fn the_code_is_masked_however_it_is_spelled() {
        let m = sms("+919876543219", "294570 is your code.");
        for spelled in [
            "2 9 4 5 7 0",
            "294 570",
            "2-9-4-5-7-0",
            "294-570",
            "2 - 9 - 4 - 5 - 7 - 0",
            "2\u{2013}9\u{2013}4\u{2013}5\u{2013}7\u{2013}0",
            "2.9.4.5.7.0",
            "29.45.70",
            "2\u{2009}9\u{2009}4\u{2009}5\u{2009}7\u{2009}0",
            "2\u{202F}9\u{00A0}4\u{3000}5\u{200B}7\u{2060}0",
            "\u{FF12}\u{FF19}\u{FF14}\u{FF15}\u{FF17}\u{FF10}",
            "\u{FF12} \u{FF19} \u{FF14} \u{FF15} \u{FF17} \u{FF10}",
            "\u{0662}\u{0669}\u{0664}\u{0665}\u{0667}\u{0660}",
            "\u{0662}\u{066C}\u{0669}\u{0664}\u{0665}\u{0667}\u{0660}",
            "\u{06F2}\u{06F9}\u{06F4}\u{06F5}\u{06F7}\u{06F0}",
            "\u{0968}\u{096F}\u{096A}\u{096B}\u{096D}\u{0966}",
            "2 9 4 \u{FF15} \u{0667} 0",
            "4002 9 4 5 7 01",
        ] {
            let answer = format!(r#"HTTP 400: {{"spaced":"{spelled}"}}"#);
            let e = scrub(&answer, &m);
            assert!(!digits_of(&e).contains("294570"), "{spelled:?}: {e}");
            assert!(
                e.starts_with(r#"HTTP 400: {"spaced":"*"#),
                "{spelled:?}: {e}"
            );
            assert!(e.ends_with(r#"*"}"#), "{spelled:?}: {e}");
        }
        assert_eq!(
            scrub(r#"{"spaced":"2 9 4 5 7 0"}"#, &m),
            r#"{"spaced":"******"}"#
        );
    }

    #[test]
    fn the_phone_number_is_masked_however_it_is_spelled() {
        let m = sms("+919876543219", "294570 is your code.");
        for spelled in [
            "+91 98765 43219",
            "+91-98765-43219",
            "98765 43219",
            "987-654-3219",
            "987.654.3219",
            "+91\u{2009}98765\u{2009}43219",
            "9\u{202F}8\u{202F}7\u{202F}6\u{202F}5\u{202F}4\u{202F}3\u{202F}2\u{202F}1\u{202F}9",
            "\u{FF19}\u{FF18}\u{FF17}\u{FF16}\u{FF15}\u{FF14}\u{FF13}\u{FF12}\u{FF11}\u{FF19}",
            "+\u{0669}\u{0661}\u{0669}\u{0668}\u{0667}\u{0666}\u{0665}\u{0664}\u{0663}\u{0662}\u{0661}\u{0669}",
            "\u{06F9}\u{06F8}\u{06F7}\u{06F6}\u{06F5} \u{06F4}\u{06F3}\u{06F2}\u{06F1}\u{06F9}",
        ] {
            let e = scrub(&format!("invalid number {spelled} (code 21211)"), &m);
            assert!(!digits_of(&e).contains("6543"), "{spelled:?}: {e}");
            assert!(e.ends_with("*219 (code 21211)"), "{spelled:?}: {e}");
            assert!(e.starts_with("invalid number "), "{spelled:?}: {e}");
        }
    }

    #[test]
    fn every_decimal_digit_reads_as_its_ascii_value() {
        for zero in DIGIT_ZEROS {
            for v in 0..10 {
                let c = char::from_u32(zero + v).unwrap();
                assert_eq!(
                    ascii_digit(c),
                    char::from_digit(v, 10),
                    "U+{:04X}",
                    zero + v
                );
            }
        }
        assert_eq!(digits_of("\u{00B2}\u{2079}\u{2084}x\u{2085}"), "2945");
        assert_eq!(ascii_digit('a'), None);
        assert_eq!(ascii_digit('\u{00BD}'), None);
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
