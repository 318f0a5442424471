//! Reading: an XML request body to an [`XmlDocument`], with the safety limits
//! (no DTDs, bounded depth and attribute count, an explicit parse stack) and
//! SOAP 1.1 / 1.2 Body unwrapping.

use std::borrow::Cow;
use std::collections::HashMap;

use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use serde_json::{Map, Value};

use super::names::decode_name;
use super::{ITEM, SoapVersion, XmlDocument, XmlError};

/// Parses an XML body (UTF-8, optional BOM and XML declaration) into a
/// [`XmlDocument`], unwrapping a SOAP 1.1 / 1.2 envelope when there is one.
///
/// Depth is counted on the document as sent: the outermost element (the SOAP
/// `Envelope` when there is one) is depth 1, and an element deeper than
/// `max_depth` fails with [`XmlError::TooDeep`].
///
/// Line breaks are normalised as XML requires (`\r\n` and a lone `\r` read as
/// `\n`); a carriage return written as `&#xD;` is kept.
pub fn decode(bytes: &[u8], max_depth: usize) -> Result<XmlDocument, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = utf8_str(bytes)?;
    let text = normalize_input(text)?;
    Decoder::new(max_depth).run(&text)
}

/// Rejects characters XML 1.0 does not allow in a document and applies the
/// end-of-line handling of XML 1.0 section 2.11.
fn normalize_input(text: &str) -> Result<Cow<'_, str>, XmlError> {
    if text.chars().any(|c| !is_xml_char(c)) {
        return Err(XmlError::Malformed);
    }
    if !text.contains('\r') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Ok(Cow::Owned(out))
}

/// The `Char` production of XML 1.0.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

fn is_xml_whitespace(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// What an open element means for SOAP unwrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    /// The document element, a SOAP envelope.
    Envelope,
    /// The envelope's (first) `Body`.
    Body,
}

/// A finished element as seen by its parent.
#[derive(Debug)]
struct Node {
    name: String,
    namespace: Option<String>,
    value: Value,
}

/// An element that is open on the explicit parse stack.
#[derive(Debug)]
struct Frame {
    name: String,
    namespace: Option<String>,
    role: Role,
    nil: bool,
    text: String,
    children: Vec<Node>,
}

struct Decoder {
    max_depth: usize,
    stack: Vec<Frame>,
    /// The finished document element, once its end tag was read.
    root: Option<Node>,
    soap: Option<SoapVersion>,
    body_seen: bool,
    /// The first child element of the SOAP Body.
    soap_payload: Option<Node>,
    /// Whether any event came before (an XML declaration must come first).
    started: bool,
}

impl Decoder {
    fn new(max_depth: usize) -> Self {
        Decoder {
            max_depth,
            stack: Vec::new(),
            root: None,
            soap: None,
            body_seen: false,
            soap_payload: None,
            started: false,
        }
    }

    fn run(mut self, text: &str) -> Result<XmlDocument, XmlError> {
        let mut reader = NsReader::from_str(text);
        reader.config_mut().check_comments = true;
        loop {
            let (resolved, event) = reader.read_resolved_event().map_err(map_parse_error)?;
            let namespace = match resolved {
                ResolveResult::Bound(ns) => {
                    let raw = utf8_str(ns.into_inner())?;
                    Some(unescape(raw)?.into_owned()).filter(|ns| !ns.is_empty())
                }
                // An undeclared prefix is tolerated: the element simply has no
                // namespace.
                ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
            };
            let first = !self.started;
            self.started = true;
            match event {
                Event::Start(start) => self.open(&start, namespace)?,
                Event::Empty(start) => {
                    self.open(&start, namespace)?;
                    self.close()?;
                }
                Event::End(_) => self.close()?,
                Event::Text(t) => {
                    let raw = utf8(t.into_inner())?;
                    self.text(&raw)?;
                }
                Event::CData(c) => {
                    let raw = utf8(c.into_inner())?;
                    match self.stack.last_mut() {
                        Some(frame) => frame.text.push_str(&raw),
                        None => return Err(XmlError::Malformed),
                    }
                }
                Event::Decl(_) if first => {}
                Event::Decl(_) => return Err(XmlError::Malformed),
                Event::DocType(_) => return Err(XmlError::Dtd),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        self.finish()
    }

    fn open(&mut self, start: &BytesStart<'_>, namespace: Option<String>) -> Result<(), XmlError> {
        if self.stack.is_empty() && self.root.is_some() {
            // A second document element.
            return Err(XmlError::Malformed);
        }
        if self.stack.len() >= self.max_depth {
            return Err(XmlError::TooDeep(self.max_depth));
        }
        let local = utf8_str(start.local_name().into_inner())?;
        if local.is_empty() {
            return Err(XmlError::Malformed);
        }
        let name = decode_name(local);
        let nil = has_nil_attribute(start)?;

        let role = match self.stack.last() {
            None => match namespace.as_deref().and_then(SoapVersion::from_namespace) {
                Some(version) if name == "Envelope" => {
                    self.soap = Some(version);
                    Role::Envelope
                }
                _ => Role::Plain,
            },
            Some(parent)
                if parent.role == Role::Envelope
                    && !self.body_seen
                    && name == "Body"
                    && (namespace.is_none() || namespace == parent.namespace) =>
            {
                self.body_seen = true;
                Role::Body
            }
            Some(_) => Role::Plain,
        };

        self.stack.push(Frame {
            name,
            namespace,
            role,
            nil,
            text: String::new(),
            children: Vec::new(),
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), XmlError> {
        let frame = self.stack.pop().ok_or(XmlError::Malformed)?;
        match frame.role {
            Role::Body => {
                self.soap_payload = frame.children.into_iter().next();
            }
            Role::Envelope => {
                // Only the Body matters; the envelope itself has no value.
                self.root = Some(Node {
                    name: frame.name,
                    namespace: frame.namespace,
                    value: Value::Null,
                });
            }
            Role::Plain => {
                let node = Node {
                    value: frame_value(frame.nil, frame.text, frame.children),
                    name: frame.name,
                    namespace: frame.namespace,
                };
                match self.stack.last_mut() {
                    None => self.root = Some(node),
                    Some(parent) => match parent.role {
                        // Header and other envelope children are ignored.
                        Role::Envelope => {}
                        // Only the first child of Body is the payload.
                        Role::Body if !parent.children.is_empty() => {}
                        Role::Body | Role::Plain => parent.children.push(node),
                    },
                }
            }
        }
        Ok(())
    }

    fn text(&mut self, raw: &str) -> Result<(), XmlError> {
        match self.stack.last_mut() {
            None if is_xml_whitespace(raw) => Ok(()),
            None => Err(XmlError::Malformed),
            Some(frame) => {
                let text = unescape(raw)?;
                if frame.children.is_empty() {
                    frame.text.push_str(&text);
                }
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<XmlDocument, XmlError> {
        if !self.stack.is_empty() {
            return Err(XmlError::Malformed);
        }
        let root = self.root.ok_or(XmlError::Malformed)?;
        // In a SOAP envelope the document is the Body's first child.
        let document = match self.soap {
            Some(_) => self.soap_payload.ok_or(XmlError::EmptySoapBody)?,
            None => root,
        };
        Ok(XmlDocument {
            root_name: document.name,
            root_namespace: document.namespace,
            soap: self.soap,
            value: document.value,
        })
    }
}

fn utf8_str(bytes: &[u8]) -> Result<&str, XmlError> {
    std::str::from_utf8(bytes).map_err(|_| XmlError::Malformed)
}

fn utf8(bytes: Cow<'_, [u8]>) -> Result<Cow<'_, str>, XmlError> {
    match bytes {
        Cow::Borrowed(b) => utf8_str(b).map(Cow::Borrowed),
        Cow::Owned(b) => String::from_utf8(b)
            .map(Cow::Owned)
            .map_err(|_| XmlError::Malformed),
    }
}

/// Maps a parser error to the client-facing error, without its details.
fn map_parse_error(err: QxError) -> XmlError {
    match err {
        QxError::Syntax(SyntaxError::UnclosedDoctype)
        | QxError::IllFormed(IllFormedError::MissingDoctypeName) => XmlError::Dtd,
        _ => XmlError::Malformed,
    }
}

/// More attributes than any request element needs; past it the element is refused
/// before the (quadratic) duplicate check runs.
const MAX_ATTRIBUTES: usize = 32;

/// Whether the element carries `nil="true"` under any prefix. Also checks the
/// attributes are well-formed (no duplicates, quoted values, known entities).
fn has_nil_attribute(start: &BytesStart<'_>) -> Result<bool, XmlError> {
    if start
        .attributes()
        .with_checks(false)
        .nth(MAX_ATTRIBUTES)
        .is_some()
    {
        return Err(XmlError::Malformed);
    }
    let mut nil = false;
    for attr in start.attributes() {
        let attr = attr.map_err(|_| XmlError::Malformed)?;
        let raw = utf8_str(&attr.value)?;
        if raw.contains('<') {
            return Err(XmlError::Malformed);
        }
        let value = unescape(raw)?;
        let key = attr.key;
        let is_ns_decl =
            key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns");
        if !is_ns_decl && key.local_name().as_ref() == b"nil" && value.trim() == "true" {
            nil = true;
        }
    }
    Ok(nil)
}

/// The value of a finished element.
fn frame_value(nil: bool, text: String, children: Vec<Node>) -> Value {
    if nil {
        return Value::Null;
    }
    if children.is_empty() {
        return Value::String(text);
    }
    if children.iter().all(|c| c.name == ITEM) {
        return Value::Array(children.into_iter().map(|c| c.value).collect());
    }
    // Group repeated names at the position of their first occurrence.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for child in children {
        match index.get(&child.name) {
            Some(&i) => {
                if let Some(group) = groups.get_mut(i) {
                    group.1.push(child.value);
                }
            }
            None => {
                index.insert(child.name.clone(), groups.len());
                groups.push((child.name, vec![child.value]));
            }
        }
    }
    let mut map = Map::with_capacity(groups.len());
    for (name, mut values) in groups {
        let value = if values.len() == 1 {
            values.pop().unwrap_or(Value::Null)
        } else {
            Value::Array(values)
        };
        map.insert(name, value);
    }
    Value::Object(map)
}

/// Expands the five predefined entities and numeric character references;
/// any other reference is an error (there is no DTD to define one).
fn unescape(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let end = after.find(';').ok_or(XmlError::Malformed)?;
        let reference = &after[..end];
        let c = match reference {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => match reference.strip_prefix('#') {
                Some(number) => char_reference(number)?,
                None => return Err(XmlError::Malformed),
            },
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// The character of `&#NNN;` / `&#xHHH;` (given without `&#` and `;`).
///
/// Control characters are accepted here (WCF's writer emits them as
/// character references) except U+0000.
fn char_reference(number: &str) -> Result<char, XmlError> {
    let (digits, radix) = match number.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (number, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(XmlError::Malformed);
    }
    let code = u32::from_str_radix(digits, radix).map_err(|_| XmlError::Malformed)?;
    match char::from_u32(code) {
        Some(c) if c != '\0' => Ok(c),
        _ => Err(XmlError::Malformed),
    }
}

#[cfg(test)]
mod tests;
