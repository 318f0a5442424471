//! The ASP.NET Web API TwoFactor controller: POST {any prefix}/api/TwoFactor/{action}.
//!
//! Bodies: JSON (`application/json`, `text/json`), XML (`application/xml`, `text/xml`;
//! any member order, with or without the BusinessLayer.Dto.Request namespace) or
//! `application/x-www-form-urlencoded` (request.rs). Answers as Json.NET writes them
//! (members in declaration order, the Code enum as its number) or as
//! DataContractSerializer does (root named after the DTO, the
//! BusinessLayer.Dto.Response namespace, members in ordinal order, enums by member
//! name, null as `i:nil="true"`): XML when the request was XML or Accept asks for it
//! (dto.rs). Every core error has its Code (errors.rs). Unknown actions and other
//! methods answer Web API's own `{"Message": …}` errors.

pub mod dto;
pub mod errors;
mod request;

use std::net::IpAddr;

use actix_web::http::{StatusCode, header};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

pub use self::dto::{Dto, to_json, to_xml};
use self::request::{Body, body_kind};
use crate::core::mask;
use crate::error::{Error, Result};
use crate::services::{self, throttle};
use crate::state::AppState;
use crate::upstream::{RouteTo, Upstreams};
use crate::wire::fields::Fields;
use crate::wire::routes::Route;
use crate::wire::xml::{self, EncodeOptions};
use crate::wire::{BodyLimits, Format, read_body};

/// The four actions, also served as ServiceNames of the Summit envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Validate,
    ValidateByReference,
    RemindPassword,
}

const ACTIONS: [(&str, Operation); 4] = [
    ("CreateTwoFactorSmsOtp", Operation::Create),
    ("ValidateTwoFactorSmsOtp", Operation::Validate),
    (
        "ValidateTwoFactorSmsOtoByReferenceId",
        Operation::ValidateByReference,
    ),
    ("CreateOtpForRemindPassword", Operation::RemindPassword),
];

impl Operation {
    /// The action of a name, compared without case.
    pub fn named(name: &str) -> Option<Operation> {
        let name = name.trim();
        ACTIONS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, op)| *op)
    }

    /// The action's name, as the route spells it.
    pub fn name(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("", |(n, _)| n)
    }
}

pub const ROUTES: &[Route] = &Route::post_suffixes([
    "/api/TwoFactor/CreateTwoFactorSmsOtp",
    "/api/TwoFactor/ValidateTwoFactorSmsOtp",
    "/api/TwoFactor/ValidateTwoFactorSmsOtoByReferenceId",
    "/api/TwoFactor/CreateOtpForRemindPassword",
]);

const PREFIX: &str = "/api/twofactor/";

/// Whether a path is under the TwoFactor controller.
pub fn is_area(path: &str) -> bool {
    path.to_ascii_lowercase().contains(PREFIX)
}

/// The action a path names.
fn operation(path: &str) -> Option<Operation> {
    let lower = path.to_ascii_lowercase();
    let start = lower.rfind(PREFIX)? + PREFIX.len();
    Operation::named(lower[start..].trim_end_matches('/'))
}

/// Runs an action on its request fields for the client at `client`: its DTO, success
/// or business failure; a fault of the server or the throttle's refusal stays an error
/// (the caller gives it its HTTP status).
pub async fn run(state: &AppState, op: Operation, params: &Value, client: IpAddr) -> Result<Dto> {
    let result = match Fields::new("the request", params) {
        Ok(f) => call(state, op, &f, client).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(dto) => Ok(dto),
        Err(e) if crate::wire::fault_status(&e) != StatusCode::OK => Err(e),
        Err(e) => {
            // A failure of CreateTwoFactorSmsOtp names the number masked, when it is one.
            let gsm = match op {
                Operation::Create => Fields::new("the request", params)
                    .and_then(|f| request::gsm_number(&f, "GsmNumber"))
                    .ok()
                    .map(|g| mask::phone(&g)),
                _ => None,
            };
            Ok(errors::failure(op, &e, gsm.as_deref()))
        }
    }
}

async fn call(state: &AppState, op: Operation, f: &Fields<'_>, client: IpAddr) -> Result<Dto> {
    Ok(match op {
        Operation::Create => {
            let input = request::create(f)?;
            throttle::admit(state, client, &input)?;
            dto::created(&services::create_two_factor_sms_otp::call(state, input).await?)
        }
        Operation::Validate => {
            let input = request::validate(f)?;
            throttle::admit(state, client, &input)?;
            dto::validated(&services::validate_two_factor_sms_otp::call(state, input).await?)
        }
        Operation::ValidateByReference => {
            let input = request::by_reference(f)?;
            throttle::admit(state, client, &input)?;
            services::validate_two_factor_sms_oto_by_reference_id::call(state, input).await?;
            dto::by_reference(true, None, 6001)
        }
        Operation::RemindPassword => {
            let input = request::remind_password(f)?;
            throttle::admit(state, client, &input)?;
            let outcome = services::create_otp_for_remind_password::call(state, input).await?;
            dto::remind_password_created(&outcome)
        }
    })
}

/// Everything under the controller: the actions, unknown actions (404) and other
/// methods (405).
pub async fn handle(req: HttpRequest, payload: Payload, state: Data<AppState>) -> HttpResponse {
    if let Some(upstreams) = req.app_data::<Data<Upstreams>>() {
        let side = &upstreams.twofactor;
        let suffix = crate::upstream::after(req.path(), "/api/TwoFactor");
        // The operation is the first segment (`{action}/{id}` routes take more).
        let decoded = crate::upstream::routes::name_of(suffix);
        let name = decoded.split('/').next().unwrap_or_default();
        match side.decide(&[name], operation(req.path()).is_some()) {
            RouteTo::Local => {}
            RouteTo::Refuse => {
                let msg = format!("The operation '{name}' is not available.");
                return web_api_error(&req, StatusCode::FORBIDDEN, &msg);
            }
            RouteTo::Upstream => {
                return crate::upstream::relay(&req, payload, side, suffix, &state.settings)
                    .await
                    .unwrap_or_else(|(status, msg)| web_api_error(&req, status, &msg));
            }
        }
    }
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
        return crate::wire::allow_post(web_api_error(&req, StatusCode::METHOD_NOT_ALLOWED, &msg));
    }
    let limit = state.settings.max_body_bytes;
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
            let dto = errors::failure(op, &Error::invalid(msg), None);
            return answer(&req, b"", status, &dto);
        }
    };
    let params = match request::decode(&req, &body, state.settings.max_depth) {
        Ok(v) => v,
        Err(msg) => {
            let dto = errors::failure(op, &Error::invalid(msg), None);
            return answer(&req, &body, StatusCode::BAD_REQUEST, &dto);
        }
    };
    let client = crate::wire::client::address(&req, &state.trusted_proxies);
    let (result, elapsed_ms) = services::contained(run(state.get_ref(), op, &params, client)).await;
    match result {
        Ok(dto) => {
            let outcome = if dto.ok() { "ok" } else { "failed" };
            tracing::info!(
                operation = op.name(),
                outcome,
                elapsed_ms,
                "twofactor request"
            );
            answer(&req, &body, StatusCode::OK, &dto)
        }
        Err(e) => {
            if e.is_server_fault() {
                tracing::error!(operation = op.name(), error = ?e, elapsed_ms, "twofactor request failed");
            } else {
                tracing::info!(
                    operation = op.name(),
                    outcome = e.kind(),
                    elapsed_ms,
                    "twofactor request"
                );
            }
            let dto = errors::failure(op, &e, None);
            let status = crate::wire::fault_status(&e);
            crate::wire::retry_after(answer(&req, &body, status, &dto), &e)
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
    fn actions_are_found_by_suffix_in_any_case() {
        assert_eq!(
            operation("/api/TwoFactor/CreateTwoFactorSmsOtp"),
            Some(Operation::Create)
        );
        assert_eq!(
            operation("/cs/API/twofactor/validatetwofactorsmsotp/"),
            Some(Operation::Validate)
        );
        assert_eq!(
            operation("/api/TwoFactor/ValidateTwoFactorSmsOtoByReferenceId"),
            Some(Operation::ValidateByReference)
        );
        assert_eq!(
            operation("/api/TwoFactor/ValidateTwoFactorSmsOtpByReferenceId"),
            None
        );
        assert_eq!(operation("/api/TwoFactor/"), None);
    }
}
