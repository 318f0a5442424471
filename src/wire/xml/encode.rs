//! Writing: a `Value` tree as the XML that .NET's DataContractSerializer and
//! XmlWriter produce, byte for byte.

use serde_json::Value;

use super::names::encode_name;
use super::{EncodeOptions, ITEM, XSI_NS};

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
        push_xsi_declaration(&mut root_attrs);
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
                    push_xsi_declaration(&mut self.out);
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

/// Where escaped text goes: the two differ in which characters must be escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Text,
    Attribute,
}

/// Escapes element text as WCF's text writer does: `&`, `<`, `>`, and control
/// characters other than tab and line feed as hexadecimal references (so a
/// `\r` survives the reader's line-break normalisation). U+FFFE and U+FFFF,
/// which XML does not allow raw, are written as references too.
fn escape_text(out: &mut String, text: &str) {
    escape(out, text, Context::Text);
}

/// Escapes an attribute value: `&`, `<`, `"`, all control characters, and
/// U+FFFE / U+FFFF.
fn escape_attribute(out: &mut String, text: &str) {
    escape(out, text, Context::Attribute);
}

fn escape(out: &mut String, text: &str, context: Context) {
    let in_text = context == Context::Text;
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' if in_text => out.push_str("&gt;"),
            '"' if !in_text => out.push_str("&quot;"),
            '\t' | '\n' if in_text => out.push(c),
            c if c < '\u{20}' || matches!(c, '\u{FFFE}' | '\u{FFFF}') => push_char_ref(out, c),
            c => out.push(c),
        }
    }
}

/// Binds the `i` prefix to the XML Schema instance namespace, as .NET does.
fn push_xsi_declaration(out: &mut String) {
    out.push_str(" xmlns:i=\"");
    out.push_str(XSI_NS);
    out.push('"');
}

fn push_char_ref(out: &mut String, c: char) {
    out.push_str(&format!("&#x{:X};", u32::from(c)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::xml::SoapVersion;
    use crate::wire::xml::tests::opts;
    use serde_json::json;

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
}
