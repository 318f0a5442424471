//! The Summit ITSM envelope: one RPC endpoint, the operation named by `ServiceName`.
//!
//! POST {any prefix}/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall (or
//! `…_JSON`), path compared without case. The body is
//! `{"ServiceName": …, "objCommonParameters": {…}}` as JSON, or the same as XML (plain,
//! or in a SOAP 1.1/1.2 Body). The answer is the legacy envelope (envelope.rs), in the
//! request's format unless `_ProxyDetails.ReturnType` or Accept asks for the other.
//! Business failures answer 200 with `Errors` set (errors.rs); transport faults use
//! their HTTP status with the same envelope.

mod adm_generate_otp;
mod caller;
pub mod envelope;
pub mod errors;
mod forward;
mod login_app;
pub mod registry;
mod request;
pub mod user_document;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use self::envelope::{Out, answer, envelope, fault};
use self::registry::Reply;
use crate::services;
use crate::state::AppState;
use crate::upstream::{RouteTo, Upstreams};
use crate::wire::fields::Fields;
use crate::wire::routes::Route;
use crate::wire::splice;
use crate::wire::{BodyLimits, Format, read_body};

/// The envelope endpoint, in its two spellings.
pub const ROUTES: &[Route] = &Route::post_suffixes([
    "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall",
    "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall_JSON",
]);

/// Whether a path is under the Summit service, so its errors take the envelope shape.
pub fn is_area(path: &str) -> bool {
    path.to_ascii_lowercase().contains("/summit_restwcf.svc")
}

fn is_endpoint(path: &str) -> bool {
    ROUTES.iter().any(|r| r.matches(path))
}

/// Everything under the Summit service: the endpoint, other paths (404) and other
/// methods (405), each answered with the envelope.
pub async fn handle(req: HttpRequest, payload: Payload, state: Data<AppState>) -> HttpResponse {
    if !is_endpoint(req.path()) {
        return fault(
            StatusCode::NOT_FOUND,
            "Unknown operation path: POST to …/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall.",
            Out::for_request(&req, b""),
        );
    }
    if req.method() != actix_web::http::Method::POST {
        let out = Out::for_request(&req, b"");
        return crate::wire::allow_post(fault(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed: use POST.",
            out,
        ));
    }
    let upstreams = req.app_data::<Data<Upstreams>>().cloned();
    let own_limit = state.settings.max_body_bytes;
    let limit = upstreams
        .as_ref()
        .map_or(own_limit, |u| u.summit.body_limit(own_limit));
    let body = match read_body(
        &req,
        payload,
        BodyLimits::new(limit, state.settings.body_timeout_seconds),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            let (status, msg) = e.answer(limit);
            return fault(status, &msg, Out::for_request(&req, b""));
        }
    };
    let mut out = Out::for_request(&req, &body);
    let (request, soap) = match request::decode(&req, &body, state.settings.max_depth) {
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
    let service_name = service_name.trim();
    let params = top
        .get("objCommonParameters")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(rt) = request::return_type(&params)
        && soap.is_none()
    {
        out.format = rt;
    }
    let op = registry::find(service_name);
    crate::wire::access::operation(&req, op.map_or(crate::wire::access::UNKNOWN, |o| o.name()));
    if let Some(upstreams) = &upstreams {
        let side = &upstreams.summit;
        let specific = request::auth_type(&params).map(|a| format!("{service_name}:{a}"));
        let names: Vec<&str> = specific
            .iter()
            .map(String::as_str)
            .chain([service_name])
            .collect();
        match side.decide(&names, op.is_some()) {
            RouteTo::Local => {}
            RouteTo::Refuse => {
                tracing::info!(service = %service_name, outcome = "refused", "summit request");
                let msg = format!("The ServiceName '{service_name}' is not available.");
                return fault(StatusCode::OK, &msg, out);
            }
            RouteTo::Upstream => {
                crate::wire::access::operation(&req, crate::wire::access::FORWARDED);
                let started = std::time::Instant::now();
                let format = Format::of_request(&req, &body);
                // Routed by one ServiceName, the body must not name another that the
                // legacy server might read instead (a refused one, say).
                let names = match format {
                    Format::Json => splice::json_member_count(&body, "ServiceName"),
                    Format::Xml => splice::xml_element_count(&body, "ServiceName"),
                };
                if names.is_some_and(|n| n > 1) {
                    let msg = "The request names more than one ServiceName.";
                    return fault(StatusCode::BAD_REQUEST, msg, out);
                }
                let resp = forward::forward(&req, &state, side, body, &params, format, out).await;
                tracing::info!(
                    service = %service_name,
                    outcome = "forwarded",
                    status = resp.status().as_u16(),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "summit request"
                );
                return resp;
            }
        }
    }
    if body.len() > own_limit {
        let (status, msg) = crate::wire::BodyError::TooLarge.answer(own_limit);
        return fault(status, &msg, out);
    }
    if !(params.is_object()
        || params.is_null()
        || params.as_str().is_some_and(|s| s.trim().is_empty()))
    {
        return fault(
            StatusCode::OK,
            "objCommonParameters must be an object.",
            out,
        );
    }
    let Some(op) = op else {
        crate::wire::access::outcome(&req, "unknown_operation");
        let msg = format!("The ServiceName '{service_name}' is not supported.");
        return fault(StatusCode::OK, &msg, out);
    };

    let client = crate::wire::client::address(&req, &state.trusted_proxies);
    let (result, elapsed_ms) =
        services::contained(registry::run(state.get_ref(), op, &params, client)).await;
    match result {
        Ok(reply) => {
            let outcome = match &reply {
                Reply::Dto(dto) if !dto.ok() => "failed",
                _ => "ok",
            };
            tracing::info!(service = %service_name, outcome, elapsed_ms, "summit request");
            crate::wire::access::outcome(&req, outcome);
            match reply {
                Reply::Envelope {
                    token_id,
                    output_object,
                } => answer(StatusCode::OK, &envelope("", token_id, output_object), out),
                Reply::Document(doc) => answer(StatusCode::OK, &*doc, out),
                Reply::Dto(dto) => {
                    // The DTO is the OutputObject; a failure also fills Errors, which is
                    // what envelope clients look at.
                    let errors = match dto.ok() {
                        true => String::new(),
                        false => dto
                            .exception_message()
                            .unwrap_or("The request failed.")
                            .to_string(),
                    };
                    let body = envelope(&errors, None, Value::Object(dto.fields));
                    answer(StatusCode::OK, &body, out)
                }
            }
        }
        Err(e) => {
            if e.is_server_fault() {
                tracing::error!(service = %service_name, error = ?e, elapsed_ms, "summit request failed");
            } else {
                tracing::info!(service = %service_name, outcome = e.kind(), elapsed_ms, "summit request");
            }
            crate::wire::access::outcome(&req, e.kind());
            let (status, text) = errors::answer(&e);
            crate::wire::retry_after(fault(status, &text, out), &e)
        }
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
}
