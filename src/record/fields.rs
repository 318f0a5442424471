//! The scalar fields of a recorded body, whatever its format: JSON members, XML
//! elements and attributes (any prefix), form pairs. [`rewrite`] visits each one and
//! replaces the values its callback returns, leaving every other byte as it was, so a
//! recorded body stays the body the client sent or the gateway answered. String values
//! that hold a body of their own (JSON in a JSON string, XML in a text node) are
//! visited too.

use std::sync::LazyLock;

use regex::Regex;

/// How a value is written in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A JSON string (the value is unescaped; a replacement is escaped).
    JsonString,
    /// A JSON number (a replacement is written as it is).
    JsonNumber,
    /// An XML text node or attribute value (the value is unescaped; a replacement is
    /// written as it is: callers replace with text that needs no escaping).
    Xml,
    /// A form value (the value is decoded; a replacement is encoded, but for `${…}`).
    Form,
}

/// One scalar field.
#[derive(Debug)]
pub struct Field<'a> {
    /// The name as written, without an XML prefix.
    pub name: &'a str,
    /// The value, decoded.
    pub value: &'a str,
    pub slot: Slot,
}

/// The formats a body is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
    Form,
    Text,
}

/// The format of a body: from its first character, or a form when its Content-Type
/// says so or it looks like one.
pub fn format_of(text: &str, content_type: Option<&str>) -> Format {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        Format::Json
    } else if t.starts_with('<') {
        Format::Xml
    } else if content_type.is_some_and(|c| c.to_ascii_lowercase().contains("x-www-form-urlencoded"))
        || looks_like_form(t)
    {
        Format::Form
    } else {
        Format::Text
    }
}

#[allow(
    clippy::expect_used,
    reason = "a constant pattern, exercised by the tests"
)]
fn looks_like_form(text: &str) -> bool {
    static FORM: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\A[\w.%+\-\[\]]+=[^&\s]*(?:&[\w.%+\-\[\]]+=[^&\s]*)*&?\z").expect("form")
    });
    FORM.is_match(text.trim())
}

/// The scalar fields of a body, in order, with their values decoded.
pub fn list(text: &str, content_type: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    rewrite(text, content_type, &mut |f: &Field| {
        out.push((f.name.to_string(), f.value.to_string()));
        None
    });
    out
}

/// The body with each field's value replaced by what `f` returns for it (None: kept).
pub fn rewrite(
    text: &str,
    content_type: Option<&str>,
    f: &mut dyn FnMut(&Field) -> Option<String>,
) -> String {
    rewrite_depth(text, format_of(text, content_type), f, 0)
}

/// Bodies nested deeper than this in string values are not looked into.
const MAX_NESTING: usize = 4;

fn rewrite_depth(
    text: &str,
    format: Format,
    f: &mut dyn FnMut(&Field) -> Option<String>,
    depth: usize,
) -> String {
    match format {
        Format::Json => json(text, f, depth),
        Format::Xml => xml(text, f, depth),
        Format::Form => form(text, f, depth),
        Format::Text => text.to_string(),
    }
}

/// A value that holds a body of its own, rewritten; None when it holds none or
/// nothing in it changed.
fn nested(
    value: &str,
    f: &mut dyn FnMut(&Field) -> Option<String>,
    depth: usize,
) -> Option<String> {
    if depth >= MAX_NESTING {
        return None;
    }
    let format = match format_of(value, None) {
        Format::Json | Format::Xml => format_of(value, None),
        // A plain value with a `=` in it is not taken for a form unless it has `&`.
        Format::Form if value.contains('&') => Format::Form,
        _ => return None,
    };
    let out = rewrite_depth(value, format, f, depth + 1);
    (out != value).then_some(out)
}

// --- JSON: a small scanner that knows strings, so a `"…":` inside a string is never
// taken for a member.

fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn unescape_json(literal: &str) -> String {
    serde_json::from_str::<String>(literal).unwrap_or_else(|_| {
        literal
            .get(1..literal.len().saturating_sub(1))
            .unwrap_or("")
            .to_string()
    })
}

fn json(text: &str, f: &mut dyn FnMut(&Field) -> Option<String>, depth: usize) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let end = string_end(bytes, i);
        let after = skip_ws(bytes, end);
        if bytes.get(after) != Some(&b':') {
            // A string that is not a member name: an array element, say.
            if let Some(new) = string_value(&text[i..end], None, f, depth) {
                out.push_str(&text[copied..i]);
                out.push_str(&new);
                copied = end;
            }
            i = end;
            continue;
        }
        let name = unescape_json(&text[i..end]);
        let v = skip_ws(bytes, after + 1);
        match bytes.get(v) {
            Some(b'"') => {
                let vend = string_end(bytes, v);
                if let Some(new) = string_value(&text[v..vend], Some(&name), f, depth) {
                    out.push_str(&text[copied..v]);
                    out.push_str(&new);
                    copied = vend;
                }
                i = vend;
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let mut vend = v + 1;
                while vend < bytes.len()
                    && matches!(bytes[vend], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    vend += 1;
                }
                let field = Field {
                    name: &name,
                    value: &text[v..vend],
                    slot: Slot::JsonNumber,
                };
                if let Some(new) = f(&field) {
                    out.push_str(&text[copied..v]);
                    out.push_str(&new);
                    copied = vend;
                }
                i = vend;
            }
            _ => i = v,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// A JSON string literal rewritten: by `f` when it is a member's value, or the body
/// it holds.
fn string_value(
    literal: &str,
    name: Option<&str>,
    f: &mut dyn FnMut(&Field) -> Option<String>,
    depth: usize,
) -> Option<String> {
    let value = unescape_json(literal);
    if let Some(name) = name {
        let field = Field {
            name,
            value: &value,
            slot: Slot::JsonString,
        };
        if let Some(new) = f(&field) {
            return Some(json_string(&new));
        }
    }
    nested(&value, f, depth).map(|new| json_string(&new))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

// --- XML: elements whose content is text (or CDATA), and attributes of start tags.

#[allow(
    clippy::expect_used,
    reason = "constant patterns, exercised by the tests"
)]
fn xml(text: &str, f: &mut dyn FnMut(&Field) -> Option<String>, depth: usize) -> String {
    static ELEMENT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?s)<(?:[\w.-]+:)?([\w.-]+)(\s[^<>]*?)?>((?:[^<]|<!\[CDATA\[.*?\]\]>)*)</(?:[\w.-]+:)?([\w.-]+)\s*>",
        )
        .expect("element pattern")
    });
    static TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"<[A-Za-z_][^<>]*>").expect("tag pattern"));
    static ATTRIBUTE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(\s(?:[\w.-]+:)?([\w.-]+)\s*=\s*)(?:"([^"]*)"|'([^']*)')"#)
            .expect("attribute pattern")
    });
    // Attributes first, inside start tags only.
    let text = TAG.replace_all(text, |c: &regex::Captures| {
        ATTRIBUTE
            .replace_all(&c[0], |a: &regex::Captures| {
                let raw = a.get(3).or_else(|| a.get(4)).map_or("", |m| m.as_str());
                let value = unescape_xml(raw);
                let field = Field {
                    name: &a[2],
                    value: &value,
                    slot: Slot::Xml,
                };
                match f(&field) {
                    Some(new) => format!("{}\"{}\"", &a[1], escape_xml_attribute(&new)),
                    None => a[0].to_string(),
                }
            })
            .into_owned()
    });
    ELEMENT
        .replace_all(&text, |c: &regex::Captures| {
            let self_closing = c
                .get(2)
                .is_some_and(|a| a.as_str().trim_end().ends_with('/'));
            if c[1] != c[4] || self_closing {
                // Not one element (`<a/>x</b>`): left as it is.
                return c[0].to_string();
            }
            let raw = &c[3];
            let value = xml_text(raw);
            let field = Field {
                name: &c[1],
                value: &value,
                slot: Slot::Xml,
            };
            let new = f(&field).or_else(|| nested(&value, f, depth).map(|n| escape_xml(&n)));
            match new {
                Some(new) => {
                    let whole = &c[0];
                    let start =
                        c.get(3).map_or(0, |m| m.start()) - c.get(0).map_or(0, |m| m.start());
                    format!("{}{}{}", &whole[..start], new, &whole[start + raw.len()..])
                }
                None => c[0].to_string(),
            }
        })
        .into_owned()
}

/// The text of an element's content: CDATA sections as they are, the rest unescaped.
fn xml_text(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find("<![CDATA[") {
        out.push_str(&unescape_xml(&rest[..i]));
        let after = &rest[i + 9..];
        let end = after.find("]]>").unwrap_or(after.len());
        out.push_str(&after[..end]);
        rest = after.get(end + 3..).unwrap_or("");
    }
    out.push_str(&unescape_xml(rest));
    out
}

fn unescape_xml(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &after[1..e];
            match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let code = if let Some(h) = entity.strip_prefix("#x") {
                        u32::from_str_radix(h, 16).ok()
                    } else if let Some(d) = entity.strip_prefix('#') {
                        d.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                }
            }
        });
        match (decoded, end) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escape_xml_attribute(s: &str) -> String {
    escape_xml(s).replace('"', "&quot;")
}

// --- Forms: `name=value&…`, each value decoded for the callback.

fn form(text: &str, f: &mut dyn FnMut(&Field) -> Option<String>, depth: usize) -> String {
    text.split('&')
        .map(|pair| {
            let Some((k, v)) = pair.split_once('=') else {
                return pair.to_string();
            };
            let name = decode_form(k);
            let value = decode_form(v);
            let field = Field {
                name: &name,
                value: &value,
                slot: Slot::Form,
            };
            match f(&field).or_else(|| nested(&value, f, depth)) {
                Some(new) => format!("{k}={}", encode_form(&new)),
                None => pair.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn decode_form(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a form value; `${name}` stays as it is, for the replayer to substitute.
fn encode_form(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'*' => {
                out.push(b as char)
            }
            b'$' | b'{' | b'}' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper_secret(text: &str, ct: Option<&str>) -> String {
        rewrite(text, ct, &mut |f: &Field| {
            f.name
                .eq_ignore_ascii_case("password")
                .then(|| "X".to_string())
        })
    }

    #[test]
    fn json_members_are_found_outside_strings_and_nested_bodies_inside_them() {
        let body =
            r#"{ "a":"\"Password\":\"no\"", "Password" : "s3\"cret", "n":[ "x" ], "PASSWORD":12 }"#;
        assert_eq!(
            upper_secret(body, None),
            r#"{ "a":"\"Password\":\"no\"", "Password" : "X", "n":[ "x" ], "PASSWORD":X }"#
        );
        let nested = r#"{"objCommonParameters":"{\"Password\":\"s3cret\",\"k\":1}"}"#;
        assert_eq!(
            upper_secret(nested, None),
            r#"{"objCommonParameters":"{\"Password\":\"X\",\"k\":1}"}"#
        );
        let fields = list(r#"{"a":{"b":"c","d":-1.5e3},"e":true,"f":null}"#, None);
        assert_eq!(
            fields,
            vec![("b".into(), "c".into()), ("d".into(), "-1.5e3".into())]
        );
    }

    #[test]
    fn xml_elements_with_any_prefix_attributes_and_cdata() {
        let body = r#"<s:Envelope xmlns:s="x"><s:Body><a:Password>p&amp;w</a:Password><Password><![CDATA[c<d]]></Password><Other password='q' b="1"/><Password i:nil="true" /></s:Body></s:Envelope>"#;
        assert_eq!(
            upper_secret(body, None),
            r#"<s:Envelope xmlns:s="x"><s:Body><a:Password>X</a:Password><Password>X</Password><Other password="X" b="1"/><Password i:nil="true" /></s:Body></s:Envelope>"#
        );
        let fields = list("<a><b>x &lt; y</b><c><![CDATA[z]]></c></a>", None);
        assert_eq!(
            fields,
            vec![("b".into(), "x < y".into()), ("c".into(), "z".into())]
        );
        // JSON inside a text node (written back with the escapes text needs).
        let body = "<p>{&quot;Password&quot;:&quot;s&amp;&quot;}</p>";
        assert_eq!(upper_secret(body, None), r#"<p>{"Password":"X"}</p>"#);
    }

    #[test]
    fn form_pairs_are_decoded_and_replacements_encoded() {
        let body = "UserId=1&password=a%26b+c&GsmNumber=%2B905321234567&v=${x}";
        assert_eq!(
            upper_secret(body, Some("application/x-www-form-urlencoded")),
            "UserId=1&password=X&GsmNumber=%2B905321234567&v=${x}"
        );
        let fields = list(body, None);
        assert_eq!(fields[1], ("password".into(), "a&b c".into()));
        assert_eq!(fields[2], ("GsmNumber".into(), "+905321234567".into()));
        let replaced = rewrite(body, None, &mut |f: &Field| {
            (f.name == "GsmNumber").then(|| "+90 555".to_string())
        });
        assert!(replaced.contains("GsmNumber=%2B90+555"), "{replaced}");
        assert_eq!(format_of("just text", None), Format::Text);
        assert_eq!(decode_form("%zz%4"), "%zz%4");
    }
}
