//! XML dialect: DataContractSerializer-style XML bodies (optionally wrapped in
//! a SOAP 1.1 / 1.2 envelope) converted to and from `serde_json::Value` trees.
//!
//! Decoding turns an XML request body into a `Value` so the same field-lookup
//! code serves JSON and XML requests:
//!
//! * an element without child elements becomes a string (its text, untrimmed);
//! * an element with child elements becomes an object, in document order, and
//!   repeated child names are gathered into an array;
//! * an element whose children are all named `Item` becomes an array;
//! * an element carrying `nil="true"` (any prefix) becomes `null`.
//!
//! Encoding writes an ordered `Value` back out the way .NET's
//! DataContractSerializer/XmlWriter does: no declaration, no indentation,
//! `i:nil="true"` for nulls, `<Item>` elements for array members, and names
//! escaped with `XmlConvert.EncodeLocalName` rules.
//!
//! The decoder never expands anything but the five predefined entities and
//! numeric character references, rejects every DOCTYPE, and walks the
//! document with an explicit stack, so hostile input cannot blow up memory
//! through entity expansion or overflow the call stack.

use std::borrow::Cow;
use std::collections::HashMap;

use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use serde_json::{Map, Value};

const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Element name used for array members, both when writing and when reading.
const ITEM: &str = "Item";

/// SOAP envelope version found around a request, echoed on the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    /// The envelope namespace URI of this SOAP version.
    pub fn namespace(self) -> &'static str {
        match self {
            SoapVersion::V11 => SOAP11_NS,
            SoapVersion::V12 => SOAP12_NS,
        }
    }

    /// The `Content-Type` a response in this SOAP version is sent with.
    pub fn content_type(self) -> &'static str {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8",
            SoapVersion::V12 => "application/soap+xml; charset=utf-8",
        }
    }

    fn from_namespace(ns: &str) -> Option<Self> {
        match ns {
            SOAP11_NS => Some(SoapVersion::V11),
            SOAP12_NS => Some(SoapVersion::V12),
            _ => None,
        }
    }
}

/// Why an XML body was refused. The messages are shown to API clients, so
/// they never carry parser internals.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the XML is not well-formed")]
    Malformed,
    #[error("DTDs and entity declarations are not accepted")]
    Dtd,
    #[error("the XML is nested more than {0} levels deep")]
    TooDeep(usize),
    #[error("the SOAP envelope has an empty Body")]
    EmptySoapBody,
}

/// A decoded XML body.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlDocument {
    /// Local name (prefix stripped, `_xHHHH_` decoded) of the document root,
    /// after SOAP unwrapping.
    pub root_name: String,
    /// Namespace URI of that root element, if any.
    pub root_namespace: Option<String>,
    /// The SOAP version of the envelope the root was found in, if any.
    pub soap: Option<SoapVersion>,
    /// The root element's content.
    pub value: Value,
}

/// How [`encode`] writes the document element.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeOptions<'a> {
    /// Default `xmlns` on the root element.
    pub namespace: Option<&'a str>,
    /// Write `xmlns:i="http://www.w3.org/2001/XMLSchema-instance"` on the root
    /// (before `xmlns`, as .NET does).
    pub declare_xsi: bool,
    /// Wrap the document in `<s:Envelope><s:Body>` of this SOAP version.
    pub soap: Option<SoapVersion>,
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

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
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::Malformed)?;
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
                    let raw =
                        std::str::from_utf8(ns.into_inner()).map_err(|_| XmlError::Malformed)?;
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
        let local = std::str::from_utf8(start.local_name().into_inner())
            .map_err(|_| XmlError::Malformed)?;
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
        match self.soap {
            Some(version) => {
                let payload = self.soap_payload.ok_or(XmlError::EmptySoapBody)?;
                Ok(XmlDocument {
                    root_name: payload.name,
                    root_namespace: payload.namespace,
                    soap: Some(version),
                    value: payload.value,
                })
            }
            None => Ok(XmlDocument {
                root_name: root.name,
                root_namespace: root.namespace,
                soap: None,
                value: root.value,
            }),
        }
    }
}

fn utf8(bytes: Cow<'_, [u8]>) -> Result<Cow<'_, str>, XmlError> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| XmlError::Malformed),
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
        let raw = std::str::from_utf8(&attr.value).map_err(|_| XmlError::Malformed)?;
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

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Writes `value` as the XML document `<root_name>…</root_name>` the way
/// DataContractSerializer and .NET's XmlWriter lay it out (see the module
/// documentation). The output has no XML declaration and no whitespace
/// between elements.
pub fn encode(root_name: &str, value: &Value, opts: &EncodeOptions) -> String {
    let mut out = String::new();
    if let Some(version) = opts.soap {
        out.push_str("<s:Envelope xmlns:s=\"");
        escape_attribute(&mut out, version.namespace());
        out.push_str("\"><s:Body>");
    }

    let mut root_attrs = String::new();
    if opts.declare_xsi {
        root_attrs.push_str(" xmlns:i=\"");
        root_attrs.push_str(XSI_NS);
        root_attrs.push('"');
    }
    if let Some(ns) = opts.namespace {
        root_attrs.push_str(" xmlns=\"");
        escape_attribute(&mut root_attrs, ns);
        root_attrs.push('"');
    }

    let mut writer = Writer {
        out,
        stack: Vec::new(),
        xsi_declared: opts.declare_xsi,
    };
    writer.element(element_name(root_name), value, &root_attrs);
    writer.run();
    let mut out = writer.out;

    if opts.soap.is_some() {
        out.push_str("</s:Body></s:Envelope>");
    }
    out
}

/// Work left to do, kept on an explicit stack so deep values cannot overflow
/// the call stack.
enum Task<'v> {
    Members(serde_json::map::Iter<'v>),
    Items(std::slice::Iter<'v, Value>),
    Close(String),
}

struct Writer<'v> {
    out: String,
    stack: Vec<Task<'v>>,
    xsi_declared: bool,
}

impl<'v> Writer<'v> {
    fn run(&mut self) {
        while let Some(task) = self.stack.pop() {
            match task {
                Task::Members(mut members) => {
                    if let Some((key, value)) = members.next() {
                        self.stack.push(Task::Members(members));
                        self.element(element_name(key), value, "");
                    }
                }
                Task::Items(mut items) => {
                    if let Some(value) = items.next() {
                        self.stack.push(Task::Items(items));
                        self.element(ITEM.to_owned(), value, "");
                    }
                }
                Task::Close(name) => {
                    self.out.push_str("</");
                    self.out.push_str(&name);
                    self.out.push('>');
                }
            }
        }
    }

    /// Writes the start of an element (and, for scalars, all of it); the
    /// content of objects and arrays is queued on the stack.
    fn element(&mut self, name: String, value: &'v Value, attrs: &str) {
        self.out.push('<');
        self.out.push_str(&name);
        self.out.push_str(attrs);
        match value {
            Value::Null => {
                self.out.push_str(" i:nil=\"true\"");
                if !self.xsi_declared {
                    self.out.push_str(" xmlns:i=\"");
                    self.out.push_str(XSI_NS);
                    self.out.push('"');
                }
                self.out.push_str(" />");
            }
            Value::Object(map) if map.is_empty() => self.out.push_str(" />"),
            Value::Array(items) if items.is_empty() => self.out.push_str(" />"),
            Value::Object(map) => {
                self.out.push('>');
                self.stack.push(Task::Close(name));
                self.stack.push(Task::Members(map.iter()));
            }
            Value::Array(items) => {
                self.out.push('>');
                self.stack.push(Task::Close(name));
                self.stack.push(Task::Items(items.iter()));
            }
            Value::String(s) => self.leaf(&name, s),
            Value::Number(n) => self.leaf(&name, &n.to_string()),
            Value::Bool(b) => self.leaf(&name, if *b { "true" } else { "false" }),
        }
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.out.push('>');
        escape_text(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
}

/// The element name for a key: [`encode_name`], except that an empty key
/// (which has no XML spelling) is written as `_`.
fn element_name(key: &str) -> String {
    if key.is_empty() {
        "_".to_owned()
    } else {
        encode_name(key)
    }
}

/// Escapes element text as WCF's text writer does: `&`, `<`, `>`, and control
/// characters other than tab and line feed as hexadecimal references (so a
/// `\r` survives the reader's line-break normalisation). U+FFFE and U+FFFF,
/// which XML does not allow raw, are written as references too.
fn escape_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' => out.push(c),
            c if c < '\u{20}' || matches!(c, '\u{FFFE}' | '\u{FFFF}') => push_char_ref(out, c),
            c => out.push(c),
        }
    }
}

/// Escapes an attribute value: `&`, `<`, `"`, all control characters, and
/// U+FFFE / U+FFFF.
fn escape_attribute(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            c if c < '\u{20}' || matches!(c, '\u{FFFE}' | '\u{FFFF}') => push_char_ref(out, c),
            c => out.push(c),
        }
    }
}

fn push_char_ref(out: &mut String, c: char) {
    out.push_str(&format!("&#x{:X};", u32::from(c)));
}

// ---------------------------------------------------------------------------
// XmlConvert name escaping
// ---------------------------------------------------------------------------

/// `XmlConvert.EncodeLocalName`: every character that may not stand at its
/// position in an NCName (XML 1.0 fourth-edition character classes, as .NET
/// uses for this function), `:` included, becomes `_xHHHH_` (`_xHHHHHHHH_`
/// beyond the BMP), and an underscore that would start a literal `_xHHHH_`
/// sequence is written as `_x005F_`.
pub fn encode_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len());
    for (i, &c) in chars.iter().enumerate() {
        let allowed = if i == 0 {
            is_nc_name_start_char(c)
        } else {
            is_nc_name_char(c)
        };
        let escapes_underscore = c == '_' && escape_sequence_at(&chars, i).is_some();
        if allowed && !escapes_underscore {
            out.push(c);
        } else {
            let code = u32::from(c);
            if code > 0xFFFF {
                out.push_str(&format!("_x{code:08X}_"));
            } else {
                out.push_str(&format!("_x{code:04X}_"));
            }
        }
    }
    out
}

/// `XmlConvert.DecodeName`: turns every `_xHHHH_` / `_xHHHHHHHH_` sequence
/// back into its character (a pair of escaped UTF-16 surrogates included).
/// Sequences that do not name a character are left as written.
pub fn decode_name(name: &str) -> String {
    if !name.contains('_') {
        return name.to_owned();
    }
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let Some((code, len)) = escape_sequence_at(&chars, i) else {
            out.push(c);
            i += 1;
            continue;
        };
        if (0xD800..0xDC00).contains(&code)
            && let Some((low, low_len)) = escape_sequence_at(&chars, i + len)
            && (0xDC00..0xE000).contains(&low)
            && let Some(decoded) =
                char::from_u32(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
        {
            out.push(decoded);
            i += len + low_len;
            continue;
        }
        match char::from_u32(code) {
            Some(decoded) => out.push(decoded),
            // A lone surrogate or a value beyond U+10FFFF stays as written.
            None => out.extend(chars.iter().skip(i).take(len)),
        }
        i += len;
    }
    out
}

/// Matches `_[Xx]([0-9a-fA-F]{4}|[0-9a-fA-F]{8})_` at `chars[i..]`, returning
/// the hexadecimal value and the length of the match.
fn escape_sequence_at(chars: &[char], i: usize) -> Option<(u32, usize)> {
    let rest = chars.get(i..)?;
    if rest.first() != Some(&'_') || !matches!(rest.get(1), Some('x' | 'X')) {
        return None;
    }
    let hex_value = |digits: &[char]| -> Option<u32> {
        digits
            .iter()
            .try_fold(0u32, |acc, c| Some(acc.checked_mul(16)? + c.to_digit(16)?))
    };
    for width in [4, 8] {
        let Some(digits) = rest.get(2..2 + width) else {
            continue;
        };
        if rest.get(2 + width) != Some(&'_') {
            continue;
        }
        if let Some(value) = hex_value(digits) {
            return Some((value, width + 3));
        }
    }
    None
}

fn is_nc_name_start_char(c: char) -> bool {
    in_ranges(NC_NAME_START_XML4E, c)
}

fn is_nc_name_char(c: char) -> bool {
    in_ranges(NC_NAME_CHAR_XML4E, c)
}

fn in_ranges(ranges: &[(u16, u16)], c: char) -> bool {
    let Ok(code) = u16::try_from(u32::from(c)) else {
        // The fourth-edition classes contain no character beyond the BMP.
        return false;
    };
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < code {
                std::cmp::Ordering::Less
            } else if lo > code {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

// Name character classes of XML 1.0 (fourth edition), appendix B, which .NET's
// XmlConvert.EncodeLocalName still applies: NCName start characters are
// Letter | '_', NCName characters are Letter | Digit | '.' | '-' | '_' |
// CombiningChar | Extender. Adjacent ranges are merged.
#[rustfmt::skip]
const NC_NAME_START_XML4E: &[(u16, u16)] = &[
    (0x0041, 0x005A), (0x005F, 0x005F), (0x0061, 0x007A), (0x00C0, 0x00D6), (0x00D8, 0x00F6),
    (0x00F8, 0x0131), (0x0134, 0x013E), (0x0141, 0x0148), (0x014A, 0x017E), (0x0180, 0x01C3),
    (0x01CD, 0x01F0), (0x01F4, 0x01F5), (0x01FA, 0x0217), (0x0250, 0x02A8), (0x02BB, 0x02C1),
    (0x0386, 0x0386), (0x0388, 0x038A), (0x038C, 0x038C), (0x038E, 0x03A1), (0x03A3, 0x03CE),
    (0x03D0, 0x03D6), (0x03DA, 0x03DA), (0x03DC, 0x03DC), (0x03DE, 0x03DE), (0x03E0, 0x03E0),
    (0x03E2, 0x03F3), (0x0401, 0x040C), (0x040E, 0x044F), (0x0451, 0x045C), (0x045E, 0x0481),
    (0x0490, 0x04C4), (0x04C7, 0x04C8), (0x04CB, 0x04CC), (0x04D0, 0x04EB), (0x04EE, 0x04F5),
    (0x04F8, 0x04F9), (0x0531, 0x0556), (0x0559, 0x0559), (0x0561, 0x0586), (0x05D0, 0x05EA),
    (0x05F0, 0x05F2), (0x0621, 0x063A), (0x0641, 0x064A), (0x0671, 0x06B7), (0x06BA, 0x06BE),
    (0x06C0, 0x06CE), (0x06D0, 0x06D3), (0x06D5, 0x06D5), (0x06E5, 0x06E6), (0x0905, 0x0939),
    (0x093D, 0x093D), (0x0958, 0x0961), (0x0985, 0x098C), (0x098F, 0x0990), (0x0993, 0x09A8),
    (0x09AA, 0x09B0), (0x09B2, 0x09B2), (0x09B6, 0x09B9), (0x09DC, 0x09DD), (0x09DF, 0x09E1),
    (0x09F0, 0x09F1), (0x0A05, 0x0A0A), (0x0A0F, 0x0A10), (0x0A13, 0x0A28), (0x0A2A, 0x0A30),
    (0x0A32, 0x0A33), (0x0A35, 0x0A36), (0x0A38, 0x0A39), (0x0A59, 0x0A5C), (0x0A5E, 0x0A5E),
    (0x0A72, 0x0A74), (0x0A85, 0x0A8B), (0x0A8D, 0x0A8D), (0x0A8F, 0x0A91), (0x0A93, 0x0AA8),
    (0x0AAA, 0x0AB0), (0x0AB2, 0x0AB3), (0x0AB5, 0x0AB9), (0x0ABD, 0x0ABD), (0x0AE0, 0x0AE0),
    (0x0B05, 0x0B0C), (0x0B0F, 0x0B10), (0x0B13, 0x0B28), (0x0B2A, 0x0B30), (0x0B32, 0x0B33),
    (0x0B36, 0x0B39), (0x0B3D, 0x0B3D), (0x0B5C, 0x0B5D), (0x0B5F, 0x0B61), (0x0B85, 0x0B8A),
    (0x0B8E, 0x0B90), (0x0B92, 0x0B95), (0x0B99, 0x0B9A), (0x0B9C, 0x0B9C), (0x0B9E, 0x0B9F),
    (0x0BA3, 0x0BA4), (0x0BA8, 0x0BAA), (0x0BAE, 0x0BB5), (0x0BB7, 0x0BB9), (0x0C05, 0x0C0C),
    (0x0C0E, 0x0C10), (0x0C12, 0x0C28), (0x0C2A, 0x0C33), (0x0C35, 0x0C39), (0x0C60, 0x0C61),
    (0x0C85, 0x0C8C), (0x0C8E, 0x0C90), (0x0C92, 0x0CA8), (0x0CAA, 0x0CB3), (0x0CB5, 0x0CB9),
    (0x0CDE, 0x0CDE), (0x0CE0, 0x0CE1), (0x0D05, 0x0D0C), (0x0D0E, 0x0D10), (0x0D12, 0x0D28),
    (0x0D2A, 0x0D39), (0x0D60, 0x0D61), (0x0E01, 0x0E2E), (0x0E30, 0x0E30), (0x0E32, 0x0E33),
    (0x0E40, 0x0E45), (0x0E81, 0x0E82), (0x0E84, 0x0E84), (0x0E87, 0x0E88), (0x0E8A, 0x0E8A),
    (0x0E8D, 0x0E8D), (0x0E94, 0x0E97), (0x0E99, 0x0E9F), (0x0EA1, 0x0EA3), (0x0EA5, 0x0EA5),
    (0x0EA7, 0x0EA7), (0x0EAA, 0x0EAB), (0x0EAD, 0x0EAE), (0x0EB0, 0x0EB0), (0x0EB2, 0x0EB3),
    (0x0EBD, 0x0EBD), (0x0EC0, 0x0EC4), (0x0F40, 0x0F47), (0x0F49, 0x0F69), (0x10A0, 0x10C5),
    (0x10D0, 0x10F6), (0x1100, 0x1100), (0x1102, 0x1103), (0x1105, 0x1107), (0x1109, 0x1109),
    (0x110B, 0x110C), (0x110E, 0x1112), (0x113C, 0x113C), (0x113E, 0x113E), (0x1140, 0x1140),
    (0x114C, 0x114C), (0x114E, 0x114E), (0x1150, 0x1150), (0x1154, 0x1155), (0x1159, 0x1159),
    (0x115F, 0x1161), (0x1163, 0x1163), (0x1165, 0x1165), (0x1167, 0x1167), (0x1169, 0x1169),
    (0x116D, 0x116E), (0x1172, 0x1173), (0x1175, 0x1175), (0x119E, 0x119E), (0x11A8, 0x11A8),
    (0x11AB, 0x11AB), (0x11AE, 0x11AF), (0x11B7, 0x11B8), (0x11BA, 0x11BA), (0x11BC, 0x11C2),
    (0x11EB, 0x11EB), (0x11F0, 0x11F0), (0x11F9, 0x11F9), (0x1E00, 0x1E9B), (0x1EA0, 0x1EF9),
    (0x1F00, 0x1F15), (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57),
    (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4),
    (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3),
    (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2126, 0x2126),
    (0x212A, 0x212B), (0x212E, 0x212E), (0x2180, 0x2182), (0x3007, 0x3007), (0x3021, 0x3029),
    (0x3041, 0x3094), (0x30A1, 0x30FA), (0x3105, 0x312C), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3),
];

#[rustfmt::skip]
const NC_NAME_CHAR_XML4E: &[(u16, u16)] = &[
    (0x002D, 0x002E), (0x0030, 0x0039), (0x0041, 0x005A), (0x005F, 0x005F), (0x0061, 0x007A),
    (0x00B7, 0x00B7), (0x00C0, 0x00D6), (0x00D8, 0x00F6), (0x00F8, 0x0131), (0x0134, 0x013E),
    (0x0141, 0x0148), (0x014A, 0x017E), (0x0180, 0x01C3), (0x01CD, 0x01F0), (0x01F4, 0x01F5),
    (0x01FA, 0x0217), (0x0250, 0x02A8), (0x02BB, 0x02C1), (0x02D0, 0x02D1), (0x0300, 0x0345),
    (0x0360, 0x0361), (0x0386, 0x038A), (0x038C, 0x038C), (0x038E, 0x03A1), (0x03A3, 0x03CE),
    (0x03D0, 0x03D6), (0x03DA, 0x03DA), (0x03DC, 0x03DC), (0x03DE, 0x03DE), (0x03E0, 0x03E0),
    (0x03E2, 0x03F3), (0x0401, 0x040C), (0x040E, 0x044F), (0x0451, 0x045C), (0x045E, 0x0481),
    (0x0483, 0x0486), (0x0490, 0x04C4), (0x04C7, 0x04C8), (0x04CB, 0x04CC), (0x04D0, 0x04EB),
    (0x04EE, 0x04F5), (0x04F8, 0x04F9), (0x0531, 0x0556), (0x0559, 0x0559), (0x0561, 0x0586),
    (0x0591, 0x05A1), (0x05A3, 0x05B9), (0x05BB, 0x05BD), (0x05BF, 0x05BF), (0x05C1, 0x05C2),
    (0x05C4, 0x05C4), (0x05D0, 0x05EA), (0x05F0, 0x05F2), (0x0621, 0x063A), (0x0640, 0x0652),
    (0x0660, 0x0669), (0x0670, 0x06B7), (0x06BA, 0x06BE), (0x06C0, 0x06CE), (0x06D0, 0x06D3),
    (0x06D5, 0x06E8), (0x06EA, 0x06ED), (0x06F0, 0x06F9), (0x0901, 0x0903), (0x0905, 0x0939),
    (0x093C, 0x094D), (0x0951, 0x0954), (0x0958, 0x0963), (0x0966, 0x096F), (0x0981, 0x0983),
    (0x0985, 0x098C), (0x098F, 0x0990), (0x0993, 0x09A8), (0x09AA, 0x09B0), (0x09B2, 0x09B2),
    (0x09B6, 0x09B9), (0x09BC, 0x09BC), (0x09BE, 0x09C4), (0x09C7, 0x09C8), (0x09CB, 0x09CD),
    (0x09D7, 0x09D7), (0x09DC, 0x09DD), (0x09DF, 0x09E3), (0x09E6, 0x09F1), (0x0A02, 0x0A02),
    (0x0A05, 0x0A0A), (0x0A0F, 0x0A10), (0x0A13, 0x0A28), (0x0A2A, 0x0A30), (0x0A32, 0x0A33),
    (0x0A35, 0x0A36), (0x0A38, 0x0A39), (0x0A3C, 0x0A3C), (0x0A3E, 0x0A42), (0x0A47, 0x0A48),
    (0x0A4B, 0x0A4D), (0x0A59, 0x0A5C), (0x0A5E, 0x0A5E), (0x0A66, 0x0A74), (0x0A81, 0x0A83),
    (0x0A85, 0x0A8B), (0x0A8D, 0x0A8D), (0x0A8F, 0x0A91), (0x0A93, 0x0AA8), (0x0AAA, 0x0AB0),
    (0x0AB2, 0x0AB3), (0x0AB5, 0x0AB9), (0x0ABC, 0x0AC5), (0x0AC7, 0x0AC9), (0x0ACB, 0x0ACD),
    (0x0AE0, 0x0AE0), (0x0AE6, 0x0AEF), (0x0B01, 0x0B03), (0x0B05, 0x0B0C), (0x0B0F, 0x0B10),
    (0x0B13, 0x0B28), (0x0B2A, 0x0B30), (0x0B32, 0x0B33), (0x0B36, 0x0B39), (0x0B3C, 0x0B43),
    (0x0B47, 0x0B48), (0x0B4B, 0x0B4D), (0x0B56, 0x0B57), (0x0B5C, 0x0B5D), (0x0B5F, 0x0B61),
    (0x0B66, 0x0B6F), (0x0B82, 0x0B83), (0x0B85, 0x0B8A), (0x0B8E, 0x0B90), (0x0B92, 0x0B95),
    (0x0B99, 0x0B9A), (0x0B9C, 0x0B9C), (0x0B9E, 0x0B9F), (0x0BA3, 0x0BA4), (0x0BA8, 0x0BAA),
    (0x0BAE, 0x0BB5), (0x0BB7, 0x0BB9), (0x0BBE, 0x0BC2), (0x0BC6, 0x0BC8), (0x0BCA, 0x0BCD),
    (0x0BD7, 0x0BD7), (0x0BE7, 0x0BEF), (0x0C01, 0x0C03), (0x0C05, 0x0C0C), (0x0C0E, 0x0C10),
    (0x0C12, 0x0C28), (0x0C2A, 0x0C33), (0x0C35, 0x0C39), (0x0C3E, 0x0C44), (0x0C46, 0x0C48),
    (0x0C4A, 0x0C4D), (0x0C55, 0x0C56), (0x0C60, 0x0C61), (0x0C66, 0x0C6F), (0x0C82, 0x0C83),
    (0x0C85, 0x0C8C), (0x0C8E, 0x0C90), (0x0C92, 0x0CA8), (0x0CAA, 0x0CB3), (0x0CB5, 0x0CB9),
    (0x0CBE, 0x0CC4), (0x0CC6, 0x0CC8), (0x0CCA, 0x0CCD), (0x0CD5, 0x0CD6), (0x0CDE, 0x0CDE),
    (0x0CE0, 0x0CE1), (0x0CE6, 0x0CEF), (0x0D02, 0x0D03), (0x0D05, 0x0D0C), (0x0D0E, 0x0D10),
    (0x0D12, 0x0D28), (0x0D2A, 0x0D39), (0x0D3E, 0x0D43), (0x0D46, 0x0D48), (0x0D4A, 0x0D4D),
    (0x0D57, 0x0D57), (0x0D60, 0x0D61), (0x0D66, 0x0D6F), (0x0E01, 0x0E2E), (0x0E30, 0x0E3A),
    (0x0E40, 0x0E4E), (0x0E50, 0x0E59), (0x0E81, 0x0E82), (0x0E84, 0x0E84), (0x0E87, 0x0E88),
    (0x0E8A, 0x0E8A), (0x0E8D, 0x0E8D), (0x0E94, 0x0E97), (0x0E99, 0x0E9F), (0x0EA1, 0x0EA3),
    (0x0EA5, 0x0EA5), (0x0EA7, 0x0EA7), (0x0EAA, 0x0EAB), (0x0EAD, 0x0EAE), (0x0EB0, 0x0EB9),
    (0x0EBB, 0x0EBD), (0x0EC0, 0x0EC4), (0x0EC6, 0x0EC6), (0x0EC8, 0x0ECD), (0x0ED0, 0x0ED9),
    (0x0F18, 0x0F19), (0x0F20, 0x0F29), (0x0F35, 0x0F35), (0x0F37, 0x0F37), (0x0F39, 0x0F39),
    (0x0F3E, 0x0F47), (0x0F49, 0x0F69), (0x0F71, 0x0F84), (0x0F86, 0x0F8B), (0x0F90, 0x0F95),
    (0x0F97, 0x0F97), (0x0F99, 0x0FAD), (0x0FB1, 0x0FB7), (0x0FB9, 0x0FB9), (0x10A0, 0x10C5),
    (0x10D0, 0x10F6), (0x1100, 0x1100), (0x1102, 0x1103), (0x1105, 0x1107), (0x1109, 0x1109),
    (0x110B, 0x110C), (0x110E, 0x1112), (0x113C, 0x113C), (0x113E, 0x113E), (0x1140, 0x1140),
    (0x114C, 0x114C), (0x114E, 0x114E), (0x1150, 0x1150), (0x1154, 0x1155), (0x1159, 0x1159),
    (0x115F, 0x1161), (0x1163, 0x1163), (0x1165, 0x1165), (0x1167, 0x1167), (0x1169, 0x1169),
    (0x116D, 0x116E), (0x1172, 0x1173), (0x1175, 0x1175), (0x119E, 0x119E), (0x11A8, 0x11A8),
    (0x11AB, 0x11AB), (0x11AE, 0x11AF), (0x11B7, 0x11B8), (0x11BA, 0x11BA), (0x11BC, 0x11C2),
    (0x11EB, 0x11EB), (0x11F0, 0x11F0), (0x11F9, 0x11F9), (0x1E00, 0x1E9B), (0x1EA0, 0x1EF9),
    (0x1F00, 0x1F15), (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57),
    (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4),
    (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3),
    (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x20D0, 0x20DC),
    (0x20E1, 0x20E1), (0x2126, 0x2126), (0x212A, 0x212B), (0x212E, 0x212E), (0x2180, 0x2182),
    (0x3005, 0x3005), (0x3007, 0x3007), (0x3021, 0x302F), (0x3031, 0x3035), (0x3041, 0x3094),
    (0x3099, 0x309A), (0x309D, 0x309E), (0x30A1, 0x30FA), (0x30FC, 0x30FE), (0x3105, 0x312C),
    (0x4E00, 0x9FA5), (0xAC00, 0xD7A3),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts<'a>(
        namespace: Option<&'a str>,
        declare_xsi: bool,
        soap: Option<SoapVersion>,
    ) -> EncodeOptions<'a> {
        EncodeOptions {
            namespace,
            declare_xsi,
            soap,
        }
    }

    fn dec(xml: &str) -> Result<XmlDocument, XmlError> {
        decode(xml.as_bytes(), 64)
    }

    // ----- encoding -----

    #[test]
    fn elements_with_too_many_attributes_are_refused() {
        let many: String = (0..10_000).map(|i| format!(" a{i}=\"\"")).collect();
        let doc = format!("<R{many}/>");
        assert_eq!(decode(doc.as_bytes(), 64).unwrap_err(), XmlError::Malformed);
        let few: String = (0..32).map(|i| format!(" a{i}=\"\"")).collect();
        assert!(decode(format!("<R{few}/>").as_bytes(), 64).is_ok());
    }

    #[test]
    fn encodes_data_contract_bytes_exactly() {
        let value = json!({
            "Org_Id": 4000,
            "OTP_Communication": "",
            "Feedback_IM&SR": null,
            "Active": true,
            "Name": "a < b & c > d",
        });
        let xml = encode(
            "ValidateResponse",
            &value,
            &opts(
                Some("http://schemas.datacontract.org/2004/07/Otp"),
                true,
                None,
            ),
        );
        assert_eq!(
            xml,
            concat!(
                r#"<ValidateResponse xmlns:i="http://www.w3.org/2001/XMLSchema-instance" "#,
                r#"xmlns="http://schemas.datacontract.org/2004/07/Otp">"#,
                "<Org_Id>4000</Org_Id>",
                "<OTP_Communication></OTP_Communication>",
                r#"<Feedback_IM_x0026_SR i:nil="true" />"#,
                "<Active>true</Active>",
                "<Name>a &lt; b &amp; c &gt; d</Name>",
                "</ValidateResponse>"
            )
        );
    }

    #[test]
    fn encodes_arrays_empty_containers_and_local_xsi() {
        let value = json!({
            "Codes": ["1", 2, null, [], {"A": "x"}],
            "None": [],
            "Empty": {},
            "Flag": false,
            "Ratio": 0.5,
        });
        let xml = encode("R", &value, &opts(None, false, None));
        assert_eq!(
            xml,
            concat!(
                "<R><Codes><Item>1</Item><Item>2</Item>",
                r#"<Item i:nil="true" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" />"#,
                "<Item /><Item><A>x</A></Item></Codes>",
                "<None /><Empty /><Flag>false</Flag><Ratio>0.5</Ratio></R>"
            )
        );
    }

    #[test]
    fn encodes_scalar_and_null_roots() {
        assert_eq!(
            encode("Code", &json!("12 & 3"), &opts(None, false, None)),
            "<Code>12 &amp; 3</Code>"
        );
        assert_eq!(
            encode("Code", &json!(7), &opts(Some("urn:x"), false, None)),
            r#"<Code xmlns="urn:x">7</Code>"#
        );
        assert_eq!(
            encode("Code", &json!(""), &opts(None, false, None)),
            "<Code></Code>"
        );
        assert_eq!(
            encode("Code", &json!(null), &opts(Some("urn:x"), true, None)),
            r#"<Code xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="urn:x" i:nil="true" />"#
        );
        assert_eq!(
            encode("Code", &json!(null), &opts(None, false, None)),
            r#"<Code i:nil="true" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" />"#
        );
        assert_eq!(
            encode("Code", &json!({}), &opts(Some("urn:x"), false, None)),
            r#"<Code xmlns="urn:x" />"#
        );
        assert_eq!(
            encode("Code", &json!([]), &opts(None, false, None)),
            "<Code />"
        );
    }

    #[test]
    fn encodes_soap_envelopes() {
        let value = json!({"Result": "OK"});
        assert_eq!(
            encode(
                "GenerateResponse",
                &value,
                &opts(Some("http://tempuri.org/"), false, Some(SoapVersion::V11))
            ),
            concat!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>"#,
                r#"<GenerateResponse xmlns="http://tempuri.org/"><Result>OK</Result></GenerateResponse>"#,
                "</s:Body></s:Envelope>"
            )
        );
        assert_eq!(
            encode("R", &json!("x"), &opts(None, true, Some(SoapVersion::V12))),
            concat!(
                r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>"#,
                r#"<R xmlns:i="http://www.w3.org/2001/XMLSchema-instance">x</R>"#,
                "</s:Body></s:Envelope>"
            )
        );
    }

    #[test]
    fn escapes_attributes_and_control_characters() {
        let xml = encode(
            "R",
            &json!("a\r\nb\tc\u{1}"),
            &opts(Some("urn:a&b<\"c\""), false, None),
        );
        assert_eq!(
            xml,
            "<R xmlns=\"urn:a&amp;b&lt;&quot;c&quot;\">a&#xD;\nb\tc&#x1;</R>"
        );
        let doc = decode(xml.as_bytes(), 8).unwrap();
        assert_eq!(doc.value, json!("a\r\nb\tc\u{1}"));
        assert_eq!(doc.root_namespace.as_deref(), Some("urn:a&b<\"c\""));
    }

    #[test]
    fn soap_version_metadata() {
        assert_eq!(
            SoapVersion::V11.namespace(),
            "http://schemas.xmlsoap.org/soap/envelope/"
        );
        assert_eq!(
            SoapVersion::V12.namespace(),
            "http://www.w3.org/2003/05/soap-envelope"
        );
        assert_eq!(SoapVersion::V11.content_type(), "text/xml; charset=utf-8");
        assert_eq!(
            SoapVersion::V12.content_type(),
            "application/soap+xml; charset=utf-8"
        );
    }

    // ----- round trip -----

    #[test]
    fn round_trips_nested_object() {
        let value = json!({
            "Org_Id": 4000,
            "User": {"Name": "Zoë <admin>", "Enabled": true, "Score": 0, "Note": ""},
            "Feedback_IM&SR": "yes",
            "Missing": null,
            "Codes": ["a", "b"],
            "Single": ["only"],
            "Nested": [["x", null], {"K": "v"}],
            "NoCodes": [],
            "1st": "digit first",
            "a:b": "colon",
            "_x0041_": "literal escape",
        });
        let xml = encode(
            "Request",
            &value,
            &opts(Some("http://tempuri.org/"), true, Some(SoapVersion::V11)),
        );
        let doc = decode(xml.as_bytes(), 64).unwrap();
        assert_eq!(doc.root_name, "Request");
        assert_eq!(doc.root_namespace.as_deref(), Some("http://tempuri.org/"));
        assert_eq!(doc.soap, Some(SoapVersion::V11));
        // Numbers and booleans come back as strings, empty arrays as "".
        let expected = json!({
            "Org_Id": "4000",
            "User": {"Name": "Zoë <admin>", "Enabled": "true", "Score": "0", "Note": ""},
            "Feedback_IM&SR": "yes",
            "Missing": null,
            "Codes": ["a", "b"],
            "Single": ["only"],
            "Nested": [["x", null], {"K": "v"}],
            "NoCodes": "",
            "1st": "digit first",
            "a:b": "colon",
            "_x0041_": "literal escape",
        });
        assert_eq!(doc.value, expected);
        let keys: Vec<&String> = doc.value.as_object().unwrap().keys().collect();
        let expected_keys: Vec<&String> = expected.as_object().unwrap().keys().collect();
        assert_eq!(keys, expected_keys);
        // And the re-encoded string-valued tree is stable.
        let again = encode(
            "Request",
            &doc.value,
            &opts(Some("http://tempuri.org/"), true, None),
        );
        assert_eq!(decode(again.as_bytes(), 64).unwrap().value, expected);
    }

    // ----- decoding -----

    #[test]
    fn decodes_plain_document() {
        let doc = dec(r#"<?xml version="1.0" encoding="utf-8"?>
            <!-- leading comment -->
            <a:Req xmlns:a="urn:otp" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
                <a:Org_Id>42</a:Org_Id>
                <a:Feedback_IM_x0026_SR> spaced </a:Feedback_IM_x0026_SR>
                <a:Empty/>
                <a:Empty2></a:Empty2>
                <a:Gone i:nil="true"/>
                <?pi ignored?>
            </a:Req>
            "#)
        .unwrap();
        assert_eq!(doc.root_name, "Req");
        assert_eq!(doc.root_namespace.as_deref(), Some("urn:otp"));
        assert_eq!(doc.soap, None);
        assert_eq!(
            doc.value,
            json!({"Org_Id": "42", "Feedback_IM&SR": " spaced ", "Empty": "", "Empty2": "", "Gone": null})
        );
    }

    #[test]
    fn accepts_bom_and_strips_prefixes() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(b"<p:R xmlns:p='urn:p'><q:X xmlns:q='urn:q'>1</q:X><undeclared:Y>2</undeclared:Y></p:R>");
        let doc = decode(&bytes, 4).unwrap();
        assert_eq!(doc.root_name, "R");
        assert_eq!(doc.value, json!({"X": "1", "Y": "2"}));
        let doc = dec("<R xmlns='urn:default'/>").unwrap();
        assert_eq!(doc.root_namespace.as_deref(), Some("urn:default"));
        assert_eq!(doc.value, json!(""));
        assert_eq!(dec("<R/>").unwrap().root_namespace, None);
    }

    #[test]
    fn nil_attribute_with_any_prefix() {
        let doc = dec(concat!(
            r#"<R xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:p2="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<A xsi:nil="true"/><B p2:nil="true"></B><C xsi:nil="false">text</C><D i:nil="true">ignored</D></R>"#
        ))
        .unwrap();
        assert_eq!(
            doc.value,
            json!({"A": null, "B": null, "C": "text", "D": null})
        );
        assert_eq!(dec(r#"<R i:nil="true"/>"#).unwrap().value, Value::Null);
    }

    #[test]
    fn repeated_children_become_arrays() {
        let doc = dec("<R><A>1</A><B>x</B><A>2</A>\n<A>3</A><C><Item>only</Item></C><D><Item>1</Item><Other/></D></R>").unwrap();
        assert_eq!(
            doc.value,
            json!({"A": ["1", "2", "3"], "B": "x", "C": ["only"], "D": {"Item": "1", "Other": ""}})
        );
        let keys: Vec<&String> = doc.value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["A", "B", "C", "D"]);
        assert_eq!(
            dec("<R><Item>a</Item><Item/></R>").unwrap().value,
            json!(["a", ""])
        );
        // `item` is not `Item`.
        assert_eq!(
            dec("<R><item>a</item></R>").unwrap().value,
            json!({"item": "a"})
        );
    }

    #[test]
    fn text_entities_and_cdata() {
        let doc = dec("<R><T>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42;&#x1F600;</T><C><![CDATA[<raw> & ]]>tail</C><M>x<!-- c -->y</M></R>").unwrap();
        assert_eq!(
            doc.value,
            json!({"T": "a <b> & \"c\" 'd' AB\u{1F600}", "C": "<raw> & tail", "M": "xy"})
        );
        // Text mixed with child elements is ignored.
        assert_eq!(
            dec("<R>junk<A>1</A>more</R>").unwrap().value,
            json!({"A": "1"})
        );
        // Line breaks are normalised; an escaped carriage return survives.
        assert_eq!(
            dec("<R>a\r\nb\rc&#13;</R>").unwrap().value,
            json!("a\nb\nc\r")
        );
        // Whitespace-only text is kept for leaf elements.
        assert_eq!(dec("<R>  </R>").unwrap().value, json!("  "));
    }

    #[test]
    fn bad_references_are_malformed() {
        assert_eq!(dec("<R>&nbsp;</R>"), Err(XmlError::Malformed));
        assert_eq!(dec("<R>&undefined;</R>"), Err(XmlError::Malformed));
        assert_eq!(dec("<R>a & b</R>"), Err(XmlError::Malformed));
        assert_eq!(dec("<R>&#;</R>"), Err(XmlError::Malformed));
        assert_eq!(dec("<R>&#x;</R>"), Err(XmlError::Malformed));
        assert_eq!(dec("<R>&#0;</R>"), Err(XmlError::Malformed));
        assert_eq!(dec("<R>&#xD800;</R>"), Err(XmlError::Malformed));
        assert_eq!(dec("<R>&#x110000;</R>"), Err(XmlError::Malformed));
        assert_eq!(
            dec("<R>&#99999999999999999999;</R>"),
            Err(XmlError::Malformed)
        );
        assert_eq!(dec("<R>&#+65;</R>"), Err(XmlError::Malformed));
        assert_eq!(dec(r#"<R a="&bogus;"/>"#), Err(XmlError::Malformed));
    }

    #[test]
    fn doctype_is_rejected() {
        let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"#;
        assert_eq!(dec(billion_laughs), Err(XmlError::Dtd));
        assert_eq!(dec("<!DOCTYPE R><R/>"), Err(XmlError::Dtd));
        assert_eq!(dec("<!doctype R><R/>"), Err(XmlError::Dtd));
        assert_eq!(
            dec(r#"<!DOCTYPE R SYSTEM "file:///etc/passwd"><R>&xxe;</R>"#),
            Err(XmlError::Dtd)
        );
        assert_eq!(dec("<!DOCTYPE R [ <!ENTITY x 'y'>"), Err(XmlError::Dtd));
        assert_eq!(dec("<R><!DOCTYPE R></R>"), Err(XmlError::Dtd));
    }

    #[test]
    fn depth_limit() {
        assert!(decode(b"<a><b><c>x</c></b></a>", 3).is_ok());
        assert_eq!(
            decode(b"<a><b><c>x</c></b></a>", 2),
            Err(XmlError::TooDeep(2))
        );
        assert_eq!(decode(b"<a><b><c/></b></a>", 2), Err(XmlError::TooDeep(2)));
        assert_eq!(decode(b"<a/>", 0), Err(XmlError::TooDeep(0)));
        // The SOAP envelope counts: Envelope=1, Body=2, payload=3.
        let soap =
            format!(r#"<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body><R>x</R></s:Body></s:Envelope>"#);
        assert!(decode(soap.as_bytes(), 3).is_ok());
        assert_eq!(decode(soap.as_bytes(), 2), Err(XmlError::TooDeep(2)));
    }

    #[test]
    fn very_deep_documents_do_not_crash() {
        let n = 100_000;
        let deep = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert_eq!(decode(deep.as_bytes(), 64), Err(XmlError::TooDeep(64)));
        let unclosed = "<a>".repeat(n);
        assert_eq!(decode(unclosed.as_bytes(), 64), Err(XmlError::TooDeep(64)));
        // Even with a limit above the nesting, the explicit stack copes.
        let shallow_n = 5_000;
        let deep = format!("{}x{}", "<a>".repeat(shallow_n), "</a>".repeat(shallow_n));
        let doc = decode(deep.as_bytes(), shallow_n).unwrap();
        assert_eq!(doc.root_name, "a");
        // Encoding a deep value does not recurse either.
        // (Built by hand: `json!` would clone the value recursively.)
        let mut value = Value::String("leaf".to_owned());
        for _ in 0..shallow_n {
            let mut map = Map::new();
            map.insert("a".to_owned(), value);
            value = Value::Object(map);
        }
        let xml = encode("a", &value, &EncodeOptions::default());
        assert!(xml.starts_with("<a><a><a>") && xml.ends_with("</a></a></a>"));
        // Dropping these nested values recursively is serde_json's business;
        // keep them shallow enough for the test thread's stack.
        std::mem::forget(value);
        std::mem::forget(doc);
    }

    #[test]
    fn malformed_inputs() {
        let cases: &[&[u8]] = &[
            b"",
            b"   \n ",
            b"<!-- only a comment -->",
            b"<R>",
            b"<R><A>1</A>",
            b"<R><A>1</R>",
            b"<R></A>",
            b"</R>",
            b"<R/><S/>",
            b"<R></R><R></R>",
            b"text<R/>",
            b"<R/>text",
            b"<R/>&amp;",
            b"<![CDATA[x]]><R/>",
            b"<R attr=unquoted/>",
            b"<R a='1' a='2'/>",
            b"<R a='<'/>",
            b"<R",
            b"<R><![CDATA[open</R>",
            b"<R><!-- open </R>",
            b"\x00\x01\x02\x03",
            b"\xFF\xFE<\x00R\x00/\x00>\x00",
            b"<R>\xC3\x28</R>",
            b"<R>\x01</R>",
            b"<R/><?xml version='1.0'?>",
            b" <?xml version='1.0'?><R/>",
            b"garbage",
            b"<>",
            b"< />",
        ];
        for case in cases {
            assert_eq!(
                decode(case, 64),
                Err(XmlError::Malformed),
                "input {:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn soap11_unwrapping_with_header_and_prefixes() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tem="http://tempuri.org/">
  <soapenv:Header>
    <tem:Auth><tem:Token>secret</tem:Token></tem:Auth>
  </soapenv:Header>
  <soapenv:Body>
    <tem:ValidateOtp>
      <tem:Org_Id>4000</tem:Org_Id>
      <tem:Otp>123456</tem:Otp>
    </tem:ValidateOtp>
  </soapenv:Body>
</soapenv:Envelope>"#;
        let doc = dec(xml).unwrap();
        assert_eq!(doc.soap, Some(SoapVersion::V11));
        assert_eq!(doc.root_name, "ValidateOtp");
        assert_eq!(doc.root_namespace.as_deref(), Some("http://tempuri.org/"));
        assert_eq!(doc.value, json!({"Org_Id": "4000", "Otp": "123456"}));

        let xml = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><GetStatus xmlns="urn:otp"/></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        let doc = dec(xml).unwrap();
        assert_eq!(
            (doc.root_name.as_str(), doc.root_namespace.as_deref()),
            ("GetStatus", Some("urn:otp"))
        );
        assert_eq!(doc.value, json!(""));
    }

    #[test]
    fn soap12_unwrapping_with_default_namespace() {
        let xml = r#"<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope">
  <Header><Action>urn:x</Action></Header>
  <Body>
    <Generate xmlns="http://tempuri.org/"><Org_Id>7</Org_Id></Generate>
    <Ignored xmlns="urn:other"/>
  </Body>
</Envelope>"#;
        let doc = dec(xml).unwrap();
        assert_eq!(doc.soap, Some(SoapVersion::V12));
        assert_eq!(doc.root_name, "Generate");
        assert_eq!(doc.root_namespace.as_deref(), Some("http://tempuri.org/"));
        assert_eq!(doc.value, json!({"Org_Id": "7"}));

        let xml = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><m:Item xmlns:m="urn:m"><m:Item>1</m:Item></m:Item></env:Body></env:Envelope>"#;
        let doc = dec(xml).unwrap();
        assert_eq!(doc.root_name, "Item");
        assert_eq!(doc.value, json!(["1"]));
    }

    #[test]
    fn empty_or_missing_soap_body() {
        let ns = SOAP11_NS;
        for xml in [
            format!(r#"<s:Envelope xmlns:s="{ns}"><s:Body/></s:Envelope>"#),
            format!(r#"<s:Envelope xmlns:s="{ns}"><s:Body>  text only </s:Body></s:Envelope>"#),
            format!(r#"<s:Envelope xmlns:s="{ns}"><s:Header><X/></s:Header></s:Envelope>"#),
            format!(r#"<s:Envelope xmlns:s="{ns}"></s:Envelope>"#),
        ] {
            assert_eq!(dec(&xml), Err(XmlError::EmptySoapBody), "{xml}");
        }
        // A malformed envelope is malformed, not empty.
        assert_eq!(
            dec(&format!(r#"<s:Envelope xmlns:s="{ns}"><s:Body/>"#)),
            Err(XmlError::Malformed)
        );
    }

    #[test]
    fn envelope_in_another_namespace_is_not_soap() {
        let doc =
            dec(r#"<Envelope xmlns="urn:not-soap"><Body><X>1</X></Body></Envelope>"#).unwrap();
        assert_eq!(doc.soap, None);
        assert_eq!(doc.root_name, "Envelope");
        assert_eq!(doc.value, json!({"Body": {"X": "1"}}));
    }

    #[test]
    fn error_messages_are_client_safe() {
        assert_eq!(
            XmlError::Malformed.to_string(),
            "the XML is not well-formed"
        );
        assert_eq!(
            XmlError::Dtd.to_string(),
            "DTDs and entity declarations are not accepted"
        );
        assert_eq!(
            XmlError::TooDeep(64).to_string(),
            "the XML is nested more than 64 levels deep"
        );
        assert_eq!(
            XmlError::EmptySoapBody.to_string(),
            "the SOAP envelope has an empty Body"
        );
    }

    // ----- names -----

    #[test]
    fn encode_name_matches_xml_convert() {
        assert_eq!(encode_name("Feedback_IM&SR"), "Feedback_IM_x0026_SR");
        assert_eq!(encode_name("1abc"), "_x0031_abc");
        assert_eq!(encode_name("OTP_Communication"), "OTP_Communication");
        assert_eq!(encode_name("Org_Id"), "Org_Id");
        assert_eq!(encode_name("a:b"), "a_x003A_b");
        assert_eq!(encode_name(":a"), "_x003A_a");
        assert_eq!(encode_name("a b"), "a_x0020_b");
        assert_eq!(encode_name("-a.b-c9"), "_x002D_a.b-c9");
        assert_eq!(encode_name("_x0041_"), "_x005F_x0041_");
        assert_eq!(encode_name("a_X00410042_b"), "a_x005F_X00410042_b");
        assert_eq!(encode_name("a_x41_"), "a_x41_");
        assert_eq!(encode_name("_x0041__x0042_"), "_x005F_x0041__x005F_x0042_");
        assert_eq!(encode_name("Zoë"), "Zoë");
        assert_eq!(encode_name("·a"), "_x00B7_a");
        assert_eq!(encode_name("a·"), "a·");
        assert_eq!(encode_name("a\u{1F600}"), "a_x0001F600_");
        assert_eq!(encode_name("\u{20AC}"), "_x20AC_");
        assert_eq!(encode_name(""), "");
        // .NET only protects underscores that already start an escape in the
        // original name, so this one does not survive decode_name (same there).
        assert_eq!(encode_name("_x0031#"), "_x0031_x0023_");
        assert_eq!(decode_name("_x0031_x0023_"), "1x0023_");
    }

    #[test]
    fn decode_name_matches_xml_convert() {
        assert_eq!(decode_name("Feedback_IM_x0026_SR"), "Feedback_IM&SR");
        assert_eq!(decode_name("_x0031_abc"), "1abc");
        assert_eq!(decode_name("_X0031_abc"), "1abc");
        assert_eq!(decode_name("_x005F_x0041_"), "_x0041_");
        assert_eq!(decode_name("a_x0001F600_"), "a\u{1F600}");
        assert_eq!(decode_name("a_xD83D__xDE00_"), "a\u{1F600}");
        assert_eq!(decode_name("_xD83D_"), "_xD83D_");
        assert_eq!(decode_name("_x00110000_"), "_x00110000_");
        assert_eq!(decode_name("_x004_"), "_x004_");
        assert_eq!(decode_name("_x00G1_"), "_x00G1_");
        assert_eq!(decode_name("_x0041"), "_x0041");
        assert_eq!(decode_name("Org_Id"), "Org_Id");
        for name in [
            "Feedback_IM&SR",
            "1abc",
            "_x0041_",
            "a:b c",
            "é\u{1F600}x",
            "__x__",
            "_x0041__x0042_",
        ] {
            assert_eq!(decode_name(&encode_name(name)), name, "{name}");
        }
    }
}
