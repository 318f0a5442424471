//! Expected texts with holes: `{{shape}}` matches a volatile value by its shape,
//! `{{name:shape}}` also captures it into a variable, and `${name}` (resolved before
//! matching) stands for a value captured by an earlier step. Everything else must
//! match byte for byte.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

/// Captured values, by name.
pub type Vars = BTreeMap<String, String>;

/// The shapes a hole can take, with the text each matches.
pub const SHAPES: &[(&str, &str)] = &[
    // A GUID as otpgate writes it: lower-case, hyphenated.
    (
        "uuid",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ),
    // A GUID in either case.
    (
        "guid",
        "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
    ),
    ("hex", "[0-9A-Fa-f]+"),
    ("digits", "[0-9]+"),
    ("int", "-?[0-9]+"),
    ("number", "-?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"),
    ("base64", "[A-Za-z0-9+/_=-]+"),
    // A host name or address with an optional port: the target's, echoed in a URL.
    (
        "host",
        "[A-Za-z0-9.-]+(?::[0-9]+)?|\\[[0-9A-Fa-f:.]+\\](?::[0-9]+)?",
    ),
    (
        "timestamp",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?",
    ),
    // Any text inside a JSON string or an XML element: no quote, no markup.
    ("text", "[^\"<>]*"),
];

fn shape_pattern(shape: &str) -> Option<&'static str> {
    SHAPES.iter().find(|(n, _)| *n == shape).map(|(_, p)| *p)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Hole { name: Option<String>, shape: String },
}

/// An expected text, parsed.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    regex: Regex,
}

/// Replaces every `${name}` with its captured value.
pub fn substitute(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {:?}", excerpt(&rest[i..])))?;
        let name = &after[..end];
        let value = vars.get(name).ok_or_else(|| {
            format!("${{{name}}} is used before a step captured it (captured so far: {vars:?})")
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn excerpt(s: &str) -> String {
    s.chars().take(40).collect()
}

impl Template {
    /// Parses a text whose `${…}` have already been substituted.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            if i > 0 {
                pieces.push(Piece::Text(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in {:?}", excerpt(&rest[i..])))?;
            let inner = after[..end].trim();
            let (name, shape) = match inner.split_once(':') {
                Some((n, s)) => (Some(n.trim().to_string()), s.trim().to_string()),
                None => (None, inner.to_string()),
            };
            if shape_pattern(&shape).is_none() {
                let known: Vec<&str> = SHAPES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown shape {{{{{inner}}}}}: the shapes are {}",
                    known.join(", ")
                ));
            }
            if let Some(n) = &name
                && (n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(format!(
                    "{{{{{inner}}}}}: a variable name is letters, digits and _"
                ));
            }
            pieces.push(Piece::Hole { name, shape });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let mut pattern = String::from("\\A");
        for p in &pieces {
            match p {
                Piece::Text(t) => pattern.push_str(&regex::escape(t)),
                Piece::Hole { shape, .. } => {
                    pattern.push('(');
                    pattern.push_str(shape_pattern(shape).unwrap_or_default());
                    pattern.push(')');
                }
            }
        }
        pattern.push_str("\\z");
        let regex = Regex::new(&pattern).map_err(|e| format!("template: {e}"))?;
        Ok(Template { pieces, regex })
    }

    pub fn has_holes(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Hole { .. }))
    }

    /// The names of the named holes.
    pub fn names(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Hole { name: Some(n), .. } => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The values of the named holes when `actual` matches, or None.
    pub fn matches(&self, actual: &str) -> Option<Vars> {
        let caps = self.regex.captures(actual)?;
        let mut vars = Vars::new();
        let holes = self.pieces.iter().filter_map(|p| match p {
            Piece::Hole { name, .. } => Some(name),
            Piece::Text(_) => None,
        });
        for (i, name) in holes.enumerate() {
            if let (Some(name), Some(m)) = (name, caps.get(i + 1)) {
                vars.insert(name.clone(), m.as_str().to_string());
            }
        }
        Some(vars)
    }

    /// The names of the named holes, each with the field (JSON member or XML element)
    /// it stands in, in order.
    fn named_fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut before = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => before.push_str(t),
                Piece::Hole { name, .. } => {
                    if let (Some(name), Some(field)) = (name, last_field(&before)) {
                        out.push((field, name.clone()));
                    }
                    before.push_str("{{}}");
                }
            }
        }
        out
    }
}

/// The JSON member name or XML element name a value that follows `before` belongs to.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, exercised by the tests"
)]
fn last_field(before: &str) -> Option<String> {
    static FIELD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?:"([^"\\]+)"\s*:\s*"?|<(?:[\w.-]+:)?([\w.-]+)(?:\s[^<>]*)?>)\z"#)
            .expect("field pattern")
    });
    let caps = FIELD.captures(before)?;
    caps.get(1)
        .or_else(|| caps.get(2))
        .map(|m| m.as_str().to_string())
}

/// Fields whose values are short random codes of letters and digits: one value may
/// look like hex or digits, and the next not.
const CODE_FIELDS: &[&str] = &["ReferenceCode"];

/// The shape of a volatile field's value: its field's, when the field's values vary in
/// shape, else the value's own.
fn shape_for(field: &str, value: &str) -> &'static str {
    let base64 = Regex::new(&format!(
        "\\A(?:{})\\z",
        shape_pattern("base64").unwrap_or("")
    ));
    if CODE_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(field))
        && base64.is_ok_and(|re| re.is_match(value))
    {
        return "base64";
    }
    shape_of(value)
}

/// The most specific shape a volatile value has.
pub fn shape_of(value: &str) -> &'static str {
    for shape in [
        "uuid",
        "guid",
        "digits",
        "int",
        "hex",
        "timestamp",
        "base64",
    ] {
        let re = Regex::new(&format!("\\A(?:{})\\z", shape_pattern(shape).unwrap_or("")));
        if re.is_ok_and(|re| re.is_match(value)) {
            return shape;
        }
    }
    "text"
}

/// Writes `actual` as a template: the value of each volatile field (by JSON member or
/// XML element name) and every timestamp become holes; a hole that `previous` named
/// for the same field keeps its name, so later steps still find their variables.
#[allow(
    clippy::expect_used,
    reason = "constant patterns around escaped names, exercised by the tests"
)]
pub fn record(actual: &str, volatile: &[String], previous: Option<&Template>) -> String {
    static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            "\\b{}\\b",
            shape_pattern("timestamp").unwrap_or_default()
        ))
        .expect("timestamp pattern")
    });
    let mut names: Vec<(String, String)> = previous.map(Template::named_fields).unwrap_or_default();
    let alternatives: Vec<String> = volatile.iter().map(|n| regex::escape(n)).collect();
    let escaped = escape_braces(actual);
    let text = if alternatives.is_empty() {
        escaped
    } else {
        let names_re = alternatives.join("|");
        let re = Regex::new(&format!(
            r#""({names_re})"(\s*:\s*)(?:"([^"\\]+)"|(-?[0-9]+(?:\.[0-9]+)?))|<((?:[\w.-]+:)?({names_re}))((?:\s[^<>/]*)?)>([^<]+)</"#
        ))
        .expect("volatile pattern");
        re.replace_all(&escaped, |c: &regex::Captures| {
            let (field, value) = match (c.get(1), c.get(6)) {
                (Some(f), _) => (
                    f.as_str(),
                    c.get(3).or_else(|| c.get(4)).map_or("", |m| m.as_str()),
                ),
                (None, Some(f)) => (f.as_str(), c.get(8).map_or("", |m| m.as_str())),
                _ => return c[0].to_string(),
            };
            // Zero is what failures answer in these fields: kept, it pins them.
            if value == "0" {
                return c[0].to_string();
            }
            let name = names
                .iter()
                .position(|(f, _)| f == field)
                .map(|i| names.remove(i).1);
            let hole = match name {
                Some(n) => format!("{{{{{n}:{}}}}}", shape_for(field, value)),
                None => format!("{{{{{}}}}}", shape_for(field, value)),
            };
            if c.get(1).is_some() {
                let sep = &c[2];
                if c.get(3).is_some() {
                    format!("\"{field}\"{sep}\"{hole}\"")
                } else {
                    format!("\"{field}\"{sep}{hole}")
                }
            } else {
                format!("<{}{}>{hole}</", &c[5], &c[7])
            }
        })
        .into_owned()
    };
    TIMESTAMP.replace_all(&text, "{{timestamp}}").into_owned()
}

/// A literal `{{` in an answer cannot be told from a hole; no answer of the dialects
/// has one, and a recorded one is spaced apart so the template still parses.
fn escape_braces(text: &str) -> String {
    text.replace("{{", "{ {")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference code that happens to be all hex digits (or all digits) is still
    /// recorded as a code: the next one may have other letters.
    #[test]
    fn reference_codes_are_recorded_as_codes_whatever_they_look_like() {
        for code in ["ABC123", "123456", "CT78BC"] {
            let body = format!(r#"{{"ReferenceCode":"{code}","TokenID":"ABCDEF0123"}}"#);
            let t = record(&body, &["ReferenceCode".into(), "TokenID".into()], None);
            assert_eq!(
                t, r#"{"ReferenceCode":"{{base64}}","TokenID":"{{hex}}"}"#,
                "{code}"
            );
        }
    }

    #[test]
    fn holes_match_by_shape_and_capture_by_name() {
        let t = Template::parse(r#"{"TransactionID":"{{txn:uuid}}","Id":{{int}},"E":""}"#).unwrap();
        let vars = t
            .matches(r#"{"TransactionID":"36d97a51-07ee-480e-a50e-e6fb53baf14f","Id":12,"E":""}"#)
            .unwrap();
        assert_eq!(vars["txn"], "36d97a51-07ee-480e-a50e-e6fb53baf14f");
        // An upper-case GUID is not a uuid; the text outside holes is exact.
        assert!(
            t.matches(r#"{"TransactionID":"36D97A51-07EE-480E-A50E-E6FB53BAF14F","Id":12,"E":""}"#)
                .is_none()
        );
        assert!(
            t.matches(
                r#"{"TransactionID":"36d97a51-07ee-480e-a50e-e6fb53baf14f","Id":12,"E":" "}"#
            )
            .is_none()
        );
        assert!(Template::parse("{{nope}}").is_err());
        assert!(Template::parse("{{a b:uuid}}").is_err());
    }

    #[test]
    fn variables_are_substituted_and_unknown_ones_refused() {
        let mut vars = Vars::new();
        vars.insert("code".into(), "123456".into());
        assert_eq!(
            substitute("<OtpCode>${code}</OtpCode>", &vars).unwrap(),
            "<OtpCode>123456</OtpCode>"
        );
        assert!(substitute("${txn}", &vars).unwrap_err().contains("${txn}"));
    }

    #[test]
    fn recording_makes_volatile_fields_holes_and_keeps_capture_names() {
        let previous = Template::parse(r#"{"TransactionID":"{{txn:uuid}}"}"#).unwrap();
        let volatile = vec!["TransactionID".to_string(), "Id".to_string()];
        let got = record(
            r#"{"Id":41,"TransactionID":"36d97a51-07ee-480e-a50e-e6fb53baf14f","Message":"at 2026-01-02T03:04:05.678Z"}"#,
            &volatile,
            Some(&previous),
        );
        assert_eq!(
            got,
            r#"{"Id":{{digits}},"TransactionID":"{{txn:uuid}}","Message":"at {{timestamp}}"}"#
        );
        assert_eq!(record(r#"{"Id":0}"#, &volatile, None), r#"{"Id":0}"#);
        let xml = record(
            "<R><Id>7</Id><Success>true</Success><TransactionID i:nil=\"true\" /></R>",
            &volatile,
            None,
        );
        assert_eq!(
            xml,
            "<R><Id>{{digits}}</Id><Success>true</Success><TransactionID i:nil=\"true\" /></R>"
        );
    }
}
