//! The Summit ITSM envelope: one RPC endpoint, the operation named by `ServiceName`.
//!
//! POST {any prefix}/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall (or
//! `…_JSON`), path compared without case. The body is
//! `{"ServiceName": …, "objCommonParameters": {…}}` as JSON, or the same as XML (plain,
//! or in a SOAP 1.1/1.2 Body). The answer is the legacy envelope
//! `{Errors, Message, Output, TokenID, OrgID, OutputObject, OutputID, Input}` in that
//! order, in the request's format unless `_ProxyDetails.ReturnType` or Accept asks for
//! the other. Business failures answer 200 with `Errors` set; transport faults use
//! their HTTP status with the same envelope.

pub mod user_document;

use actix_web::http::{StatusCode, header};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::services::{self, Reply};
use crate::state::AppState;
use crate::wire::fields::Fields;
use crate::wire::xml::{self, EncodeOptions, SoapVersion, XmlError};
use crate::wire::{BodyError, Format, json_depth, read_body};

const SUFFIXES: [&str; 2] = [
    "/rest/summit_restwcf.svc/restservice/commonws_jsonobjcall",
    "/rest/summit_restwcf.svc/restservice/commonws_jsonobjcall_json",
];

/// The XML element that holds an answer (WCF's name for the operation's result).
pub const XML_ROOT: &str = "CommonWS_JsonObjCallResult";

/// Whether a path is the envelope endpoint.
pub fn is_endpoint(path: &str) -> bool {
    let p = path.trim_end_matches('/').to_ascii_lowercase();
    SUFFIXES.iter().any(|s| p.ends_with(s))
}

/// Whether a path is under the Summit service, so its errors take the envelope shape.
pub fn is_area(path: &str) -> bool {
    path.to_ascii_lowercase().contains("/summit_restwcf.svc")
}

/// How the answer is written.
#[derive(Clone, Copy)]
struct Out {
    format: Format,
    soap: Option<SoapVersion>,
    /// Answer XML as `text/xml` when the request used it.
    text_xml: bool,
}

impl Out {
    fn for_request(req: &HttpRequest, body: &[u8]) -> Out {
        let format = Format::from_accept(req).unwrap_or_else(|| Format::of_request(req, body));
        Out {
            format,
            soap: None,
            text_xml: content_type(req).starts_with("text/xml"),
        }
    }
}

fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
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

fn answer(status: StatusCode, body: &Value, out: Out) -> HttpResponse {
    let mut resp = HttpResponse::build(status);
    match out.format {
        Format::Json => resp
            .content_type("application/json; charset=utf-8")
            .body(body.to_string()),
        Format::Xml => {
            let text = xml::encode(
                XML_ROOT,
                body,
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

fn fault(status: StatusCode, message: &str, out: Out) -> HttpResponse {
    answer(status, &envelope(message, None, Value::Null), out)
}

/// Answers for paths under the Summit service that are not the endpoint, and for
/// methods other than POST on it.
pub fn not_routed(req: &HttpRequest) -> HttpResponse {
    let out = Out::for_request(req, b"");
    if is_endpoint(req.path()) {
        let mut r = fault(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed: use POST.",
            out,
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return r;
    }
    fault(
        StatusCode::NOT_FOUND,
        "Unknown operation path: POST to …/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall.",
        out,
    )
}

/// The envelope endpoint.
pub async fn handle(req: HttpRequest, payload: Payload, app: Data<AppState>) -> HttpResponse {
    let body = match read_body(&req, payload, app.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            let msg = format!(
                "The request body is larger than {} bytes.",
                app.settings.max_body_bytes
            );
            return fault(
                StatusCode::PAYLOAD_TOO_LARGE,
                &msg,
                Out::for_request(&req, b""),
            );
        }
        Err(BodyError::Unreadable) => {
            return fault(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
                Out::for_request(&req, b""),
            );
        }
    };
    let mut out = Out::for_request(&req, &body);
    let (request, soap) = match decode(&req, &body, app.settings.max_depth) {
        Ok(v) => v,
        Err(msg) => return fault(StatusCode::BAD_REQUEST, &msg, out),
    };
    out.soap = soap;
    if soap.is_some() {
        // A SOAP client reads SOAP, whatever else it says it accepts.
        out.format = Format::Xml;
    }
    let top = match Fields::new("the request", &request) {
        Ok(f) if request.is_object() => f,
        _ => {
            return fault(
                StatusCode::BAD_REQUEST,
                "The request must be an object with ServiceName and objCommonParameters.",
                out,
            );
        }
    };
    let service_name = match top.text("ServiceName") {
        Ok(Some(s)) if !s.trim().is_empty() => s,
        _ => return fault(StatusCode::BAD_REQUEST, "ServiceName is required.", out),
    };
    let params = top
        .get("objCommonParameters")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(rt) = return_type(&params)
        && soap.is_none()
    {
        out.format = rt;
    }
    if !(params.is_object()
        || params.is_null()
        || params.as_str().is_some_and(|s| s.trim().is_empty()))
    {
        return answer(
            StatusCode::OK,
            &envelope("objCommonParameters must be an object.", None, Value::Null),
            out,
        );
    }
    let Some(handler) = services::find(&service_name) else {
        let msg = format!(
            "The ServiceName '{}' is not supported.",
            service_name.trim()
        );
        return answer(StatusCode::OK, &envelope(&msg, None, Value::Null), out);
    };

    let (result, elapsed_ms) = services::run(handler, app.get_ref().clone(), params).await;
    match result {
        Ok(Reply::Envelope {
            token_id,
            output_object,
        }) => {
            tracing::info!(service = %service_name.trim(), outcome = "ok", elapsed_ms, "summit request");
            answer(StatusCode::OK, &envelope("", token_id, output_object), out)
        }
        Ok(Reply::Document(doc)) => {
            tracing::info!(service = %service_name.trim(), outcome = "ok", elapsed_ms, "summit request");
            answer(StatusCode::OK, &doc, out)
        }
        Ok(Reply::Dto(dto)) => {
            // The DTO is the OutputObject; a failure also fills Errors, which is what
            // envelope clients look at.
            let errors = match dto.ok() {
                true => String::new(),
                false => dto
                    .exception_message()
                    .unwrap_or("The request failed.")
                    .to_string(),
            };
            let outcome = if dto.ok() { "ok" } else { "failed" };
            tracing::info!(service = %service_name.trim(), outcome, elapsed_ms, "summit request");
            answer(
                StatusCode::OK,
                &envelope(&errors, None, Value::Object(dto.fields)),
                out,
            )
        }
        Err(e) if e.is_server_fault() => {
            tracing::error!(service = %service_name.trim(), error = ?e, elapsed_ms, "summit request failed");
            let status = match e {
                Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            fault(status, &e.to_string(), out)
        }
        Err(e) => {
            tracing::info!(service = %service_name.trim(), outcome = e.kind(), elapsed_ms, "summit request");
            answer(
                StatusCode::OK,
                &envelope(&e.to_string(), None, Value::Null),
                out,
            )
        }
    }
}

/// The request as a field tree, and the SOAP version around it, if any.
fn decode(
    req: &HttpRequest,
    body: &[u8],
    max_depth: usize,
) -> Result<(Value, Option<SoapVersion>), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("The request body is empty.".into());
    }
    match Format::of_request(req, body) {
        Format::Json => {
            let mut v: Value = crate::wire::parse_json(body).map_err(|e| {
                if e.to_string().contains("recursion limit") {
                    format!("The JSON is nested more than {max_depth} levels deep.")
                } else {
                    "The request body is not valid JSON.".to_string()
                }
            })?;
            // Some clients send the envelope double-encoded, as a JSON string.
            if let Value::String(s) = &v {
                v = serde_json::from_str(s)
                    .map_err(|_| "The request body is not valid JSON.".to_string())?;
            }
            if json_depth(&v) > max_depth {
                return Err(format!(
                    "The JSON is nested more than {max_depth} levels deep."
                ));
            }
            Ok((v, None))
        }
        Format::Xml => {
            let doc = xml::decode(body, max_depth).map_err(|e| match e {
                XmlError::Malformed => "The request body is not well-formed XML.".to_string(),
                other => format!("The XML request was refused: {other}."),
            })?;
            Ok((unwrap_request(doc.value), doc.soap))
        }
    }
}

/// XML requests may wrap the envelope in an operation element
/// (`<CommonWS_JsonObjCall><request>…`): the envelope is the first object, breadth
/// first, that has a ServiceName.
fn unwrap_request(root: Value) -> Value {
    let mut queue = std::collections::VecDeque::from([(root.clone(), 0)]);
    while let Some((v, depth)) = queue.pop_front() {
        if let Value::Object(m) = &v {
            if m.keys().any(|k| k.eq_ignore_ascii_case("ServiceName")) {
                return v;
            }
            if depth < 3 {
                queue.extend(
                    m.values()
                        .filter(|c| c.is_object())
                        .map(|c| (c.clone(), depth + 1)),
                );
            }
        }
    }
    root
}

/// `_ProxyDetails.ReturnType`, when it names JSON or XML.
fn return_type(params: &Value) -> Option<Format> {
    let p = Fields::new("objCommonParameters", params).ok()?;
    let proxy = p.object("_ProxyDetails").ok()??;
    match proxy
        .text("ReturnType")
        .ok()??
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "JSON" => Some(Format::Json),
        "XML" => Some(Format::Xml),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_matched_by_suffix_without_case() {
        assert!(is_endpoint(
            "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall"
        ));
        assert!(is_endpoint(
            "/API/REST/Summit_RESTWCF.svc/RestService/commonws_jsonobjcall_JSON"
        ));
        assert!(is_endpoint(
            "/SummitAI/DC/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall/"
        ));
        assert!(!is_endpoint(
            "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_Other"
        ));
        assert!(is_area(
            "/x/REST/Summit_RESTWCF.svc/RESTService/CommonWS_Other"
        ));
    }

    #[test]
    fn the_envelope_keeps_the_legacy_order() {
        let e = envelope("", None, json!({"A": 1}));
        assert_eq!(
            e.to_string(),
            r#"{"Errors":"","Message":"","Output":"","TokenID":null,"OrgID":0,"OutputObject":{"A":1},"OutputID":0,"Input":null}"#
        );
    }

    #[test]
    fn wrapped_xml_requests_are_found() {
        let v = json!({"request": {"ServiceName": "LoginApp", "objCommonParameters": {}}});
        assert_eq!(unwrap_request(v)["ServiceName"], "LoginApp");
    }
}
