//! The Summit answer: the legacy envelope
//! `{Errors, Message, Output, TokenID, OrgID, OutputObject, OutputID, Input}` in that
//! order, as JSON or XML (plain, or in the request's SOAP envelope).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::wire::Format;
use crate::wire::xml::{self, EncodeOptions, SoapVersion};

/// The XML element that holds an answer (WCF's name for the operation's result).
pub const XML_ROOT: &str = "CommonWS_JsonObjCallResult";

/// How the answer is written.
#[derive(Clone, Copy)]
pub struct Out {
    pub format: Format,
    pub soap: Option<SoapVersion>,
    /// Answer XML as `text/xml` when the request used it.
    pub text_xml: bool,
}

impl Out {
    pub fn for_request(req: &HttpRequest, body: &[u8]) -> Out {
        let format = Format::from_accept(req).unwrap_or_else(|| Format::of_request(req, body));
        let text_xml = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/xml"));
        Out {
            format,
            soap: None,
            text_xml,
        }
    }
}

/// The envelope with its legacy field order.
pub fn envelope(errors: &str, token_id: Option<String>, output_object: Value) -> Value {
    let mut m = Map::new();
    m.insert("Errors".into(), Value::String(errors.to_string()));
    m.insert("Message".into(), Value::String(String::new()));
    m.insert("Output".into(), Value::String(String::new()));
    m.insert(
        "TokenID".into(),
        token_id.map_or(Value::Null, Value::String),
    );
    m.insert("OrgID".into(), json!(0));
    m.insert("OutputObject".into(), output_object);
    m.insert("OutputID".into(), json!(0));
    m.insert("Input".into(), Value::Null);
    Value::Object(m)
}

/// `body` (an envelope, or a document that replaces it) in the answer's format: JSON
/// written straight from it, XML through a `Value`.
pub fn answer<T: Serialize + ?Sized>(status: StatusCode, body: &T, out: Out) -> HttpResponse {
    let mut resp = HttpResponse::build(status);
    match out.format {
        Format::Json => match serde_json::to_vec(body) {
            Ok(bytes) => resp
                .content_type("application/json; charset=utf-8")
                .body(bytes),
            Err(e) => unwritable(e, out),
        },
        Format::Xml => {
            let body = match serde_json::to_value(body) {
                Ok(v) => v,
                Err(e) => return unwritable(e, out),
            };
            let text = xml::encode(
                XML_ROOT,
                &body,
                &EncodeOptions {
                    namespace: None,
                    declare_xsi: true,
                    soap: out.soap,
                },
            );
            let ct = match out.soap {
                Some(v) => v.content_type(),
                None if out.text_xml => "text/xml; charset=utf-8",
                None => "application/xml; charset=utf-8",
            };
            resp.content_type(ct).body(text)
        }
    }
}

/// The fault for an answer that could not be written (no type the gateway answers
/// with fails to serialise; the reason goes to the log, not to the client).
fn unwritable(e: serde_json::Error, out: Out) -> HttpResponse {
    tracing::error!(error = %e, "a Summit answer could not be written");
    let (status, text) = super::errors::answer(&crate::error::Error::internal(e));
    fault(status, &text, out)
}

/// An envelope with `Errors` set and nothing else.
pub fn fault(status: StatusCode, message: &str, out: Out) -> HttpResponse {
    answer(status, &envelope(message, None, Value::Null), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_keeps_the_legacy_order() {
        let e = envelope("", None, json!({"A": 1}));
        assert_eq!(
            e.to_string(),
            r#"{"Errors":"","Message":"","Output":"","TokenID":null,"OrgID":0,"OutputObject":{"A":1},"OutputID":0,"Input":null}"#
        );
    }
}
