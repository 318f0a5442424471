//! The ASP.NET Web API TwoFactor controller: POST {any prefix}/api/TwoFactor/{operation}.
//!
//! Bodies: JSON (`application/json`, `text/json`), XML (`application/xml`, `text/xml`;
//! any member order, with or without the BusinessLayer.Dto.Request namespace) or
//! `application/x-www-form-urlencoded`. Answers as Json.NET writes them (members in
//! declaration order, the Code enum as its number) or as DataContractSerializer does
//! (root named after the DTO, the BusinessLayer.Dto.Response namespace, members in
//! ordinal order, enums by member name, null as `i:nil="true"`): XML when the request
//! was XML or Accept asks for it. Unknown operations and other methods answer Web
//! API's own `{"Message": …}` errors.

pub mod dto;

use actix_web::http::{StatusCode, header};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use self::dto::{self as twofactor, Dto};
use crate::error::Error;
use crate::services::{self, Reply};
use crate::state::AppState;
use crate::wire::xml::{self, EncodeOptions};
use crate::wire::{BodyError, Format, read_body};

const PREFIX: &str = "/api/twofactor/";
pub const RESPONSE_NS: &str = "http://schemas.datacontract.org/2004/07/BusinessLayer.Dto.Response";
const OPERATIONS: [&str; 4] = [
    twofactor::CREATE,
    twofactor::VALIDATE,
    twofactor::VALIDATE_BY_REFERENCE,
    twofactor::REMIND_PASSWORD,
];

/// Whether a path is under the TwoFactor controller.
pub fn is_area(path: &str) -> bool {
    path.to_ascii_lowercase().contains(PREFIX)
}

/// The operation a path names, in its canonical spelling.
fn operation(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let start = lower.rfind(PREFIX)? + PREFIX.len();
    let name = lower[start..].trim_end_matches('/');
    OPERATIONS
        .into_iter()
        .find(|op| op.eq_ignore_ascii_case(name))
}

/// What the body is, by Content-Type; without one, by its first byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    Json,
    Xml,
    Form,
}

fn body_kind(req: &HttpRequest, body: &[u8]) -> Body {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Body::Form;
    }
    match Format::from_content_type(ct).unwrap_or_else(|| Format::sniff(body)) {
        Format::Xml => Body::Xml,
        Format::Json
            if ct.is_empty()
                && body.contains(&b'=')
                && !body.trim_ascii_start().starts_with(b"{") =>
        {
            Body::Form
        }
        Format::Json => Body::Json,
    }
}

pub async fn handle(req: HttpRequest, payload: Payload, app: Data<AppState>) -> HttpResponse {
    let Some(op) = operation(req.path()) else {
        let uri = req.connection_info().scheme().to_string()
            + "://"
            + req.connection_info().host()
            + req.path();
        let msg = format!("No HTTP resource was found that matches the request URI '{uri}'.");
        return web_api_error(&req, StatusCode::NOT_FOUND, &msg);
    };
    if req.method() != actix_web::http::Method::POST {
        let msg = format!(
            "The requested resource does not support http method '{}'.",
            req.method()
        );
        let mut r = web_api_error(&req, StatusCode::METHOD_NOT_ALLOWED, &msg);
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return r;
    }
    let body = match read_body(&req, payload, app.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            let e = Error::invalid(format!(
                "The request body is larger than {} bytes.",
                app.settings.max_body_bytes
            ));
            return answer(
                &req,
                b"",
                StatusCode::PAYLOAD_TOO_LARGE,
                &twofactor::failure(op, &e, None),
            );
        }
        Err(BodyError::Unreadable) => {
            let e = Error::invalid("The request body could not be read.");
            return answer(
                &req,
                b"",
                StatusCode::BAD_REQUEST,
                &twofactor::failure(op, &e, None),
            );
        }
    };
    let params = match decode(&req, &body, app.settings.max_depth) {
        Ok(v) => v,
        Err(msg) => {
            return answer(
                &req,
                &body,
                StatusCode::BAD_REQUEST,
                &twofactor::failure(op, &Error::invalid(msg), None),
            );
        }
    };
    let Some(handler) = services::find(op) else {
        return answer(
            &req,
            &body,
            StatusCode::NOT_FOUND,
            &twofactor::failure(op, &Error::UnknownTransaction, None),
        );
    };
    let (result, elapsed_ms) = services::run(handler, app.get_ref().clone(), params).await;
    match result {
        Ok(Reply::Dto(dto)) => {
            let outcome = if dto.ok() { "ok" } else { "failed" };
            tracing::info!(operation = op, outcome, elapsed_ms, "twofactor request");
            answer(&req, &body, StatusCode::OK, &dto)
        }
        Ok(_) => {
            tracing::error!(
                operation = op,
                "a TwoFactor operation answered a non-DTO reply"
            );
            answer(
                &req,
                &body,
                StatusCode::INTERNAL_SERVER_ERROR,
                &twofactor::failure(op, &Error::internal("reply"), None),
            )
        }
        Err(e) => {
            let status = match &e {
                Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                e if e.is_server_fault() => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            if e.is_server_fault() {
                tracing::error!(operation = op, error = ?e, elapsed_ms, "twofactor request failed");
            }
            answer(&req, &body, status, &twofactor::failure(op, &e, None))
        }
    }
}

/// The request as a field tree.
fn decode(req: &HttpRequest, body: &[u8], max_depth: usize) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("The request body is empty.".into());
    }
    match body_kind(req, body) {
        Body::Json => crate::wire::json_object(body, max_depth),
        Body::Xml => {
            let doc = xml::decode(body, max_depth).map_err(|e| match e {
                xml::XmlError::Malformed => "The request body is not well-formed XML.".to_string(),
                other => format!("The XML request was refused: {other}."),
            })?;
            match doc.value {
                v @ Value::Object(_) => Ok(v),
                Value::String(s) if s.trim().is_empty() => Ok(Value::Object(Map::new())),
                _ => Err("The XML request must hold the DTO's members as elements.".into()),
            }
        }
        Body::Form => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|_| "The request body is not valid form data.".to_string())?;
            Ok(Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ))
        }
    }
}

/// XML when the request was XML or Accept prefers it; JSON otherwise. Without a body
/// (too large, unreadable), the Content-Type alone tells.
fn wants_xml(req: &HttpRequest, body: &[u8]) -> bool {
    match Format::from_accept(req) {
        Some(f) => f == Format::Xml,
        None => {
            body_kind(req, body) == Body::Xml
                && (!body.is_empty() || has_header(req, header::CONTENT_TYPE, "xml"))
        }
    }
}

fn has_header(req: &HttpRequest, name: header::HeaderName, needle: &str) -> bool {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
}

fn answer(req: &HttpRequest, body: &[u8], status: StatusCode, dto: &Dto) -> HttpResponse {
    if wants_xml(req, body) {
        // text/xml when the client asked for it or spoke it.
        let text_xml = has_header(req, header::ACCEPT, "text/xml")
            || (Format::from_accept(req).is_none()
                && has_header(req, header::CONTENT_TYPE, "text/xml"));
        let ct = if text_xml {
            "text/xml; charset=utf-8"
        } else {
            "application/xml; charset=utf-8"
        };
        HttpResponse::build(status)
            .content_type(ct)
            .body(to_xml(dto))
    } else {
        HttpResponse::build(status)
            .content_type("application/json; charset=utf-8")
            .body(to_json(dto))
    }
}

/// As Json.NET writes the DTO: declaration order, Code as a number.
pub fn to_json(dto: &Dto) -> String {
    Value::Object(dto.fields.clone()).to_string()
}

/// As DataContractSerializer writes the DTO.
pub fn to_xml(dto: &Dto) -> String {
    let mut members: Vec<(&String, &Value)> = dto.fields.iter().collect();
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let sorted: Map<String, Value> = members
        .into_iter()
        .map(|(k, v)| {
            let v = match (k.as_str(), v.as_i64()) {
                ("Code", Some(n)) => dto.code_name(n).map_or(v.clone(), |name| json!(name)),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    xml::encode(
        dto.name,
        &Value::Object(sorted),
        &EncodeOptions {
            namespace: Some(RESPONSE_NS),
            declare_xsi: true,
            soap: None,
        },
    )
}

/// Web API's own error body: `{"Message": …}` or `<Error><Message>…</Message></Error>`.
fn web_api_error(req: &HttpRequest, status: StatusCode, message: &str) -> HttpResponse {
    if Format::from_accept(req) == Some(Format::Xml) {
        let body = xml::encode(
            "Error",
            &json!({"Message": message}),
            &EncodeOptions::default(),
        );
        HttpResponse::build(status)
            .content_type("application/xml; charset=utf-8")
            .body(body)
    } else {
        HttpResponse::build(status)
            .content_type("application/json; charset=utf-8")
            .body(json!({"Message": message}).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_found_by_suffix_in_any_case() {
        assert_eq!(
            operation("/api/TwoFactor/CreateTwoFactorSmsOtp"),
            Some(twofactor::CREATE)
        );
        assert_eq!(
            operation("/cs/API/twofactor/validatetwofactorsmsotp/"),
            Some(twofactor::VALIDATE)
        );
        assert_eq!(
            operation("/api/TwoFactor/ValidateTwoFactorSmsOtoByReferenceId"),
            Some(twofactor::VALIDATE_BY_REFERENCE)
        );
        assert_eq!(
            operation("/api/TwoFactor/ValidateTwoFactorSmsOtpByReferenceId"),
            None
        );
        assert_eq!(operation("/api/TwoFactor/"), None);
    }
}
