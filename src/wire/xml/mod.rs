//! XML codec shared by the dialects: DataContractSerializer-style XML bodies
//! (optionally wrapped in a SOAP 1.1 / 1.2 envelope) converted to and from
//! `serde_json::Value` trees.
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
//!
//! Reading lives in `decode`, writing in `encode`, and the XmlConvert name
//! escaping both use in `names`; the tests here go both ways.

mod decode;
mod encode;
mod names;

use serde_json::Value;

pub use decode::decode;
pub use encode::encode;
pub use names::{decode_name, encode_name};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    /// Shorthand for the encoder's options, shared with the encoder's tests.
    pub(super) fn opts<'a>(
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

    // ----- decode and encode together -----

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
}
