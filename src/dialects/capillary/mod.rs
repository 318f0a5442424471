//! The Capillary auth API: POST {any prefix}/auth/v1/{token/generate, otp/generate,
//! otp/validate} and their /auth/v1/web/… twins, JSON only, path compared without
//! case.
//!
//! Every answer, errors included, is `{"status":{"success","code","message"}}` (plus
//! `auth` and `user` where the operation has them). Business failures answer HTTP 200
//! with their 15xx code (codes.rs); transport faults keep the shape with the HTTP
//! status as the code (404, 405, 413) or 1519 (HTTP 400, an unreadable body); faults of
//! the server answer 500/503 with the operation's 1502/1503/1504.

pub mod codes;
pub mod hash;
mod operations;
pub mod request;
pub mod tokens;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use self::codes::{Failure, Operation};
use self::request::{Call, CapHeaders};
use crate::error::Error;
use crate::services;
use crate::state::AppState;
use crate::upstream::{RouteTo, Upstreams};
use crate::wire::routes::Route;
use crate::wire::{BodyError, BodyLimits, json_object, read_body};

pub const ROUTES: &[Route] = &Route::post_suffixes([
    "/auth/v1/token/generate",
    "/auth/v1/otp/generate",
    "/auth/v1/otp/validate",
    "/auth/v1/web/token/generate",
    "/auth/v1/web/otp/generate",
    "/auth/v1/web/otp/validate",
]);

const AREA: &str = "/auth/v1";

/// Whether a path is under /auth/v1 (after any prefix).
pub fn is_area(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("/auth/v1/") || lower.ends_with(AREA)
}

/// The operation a path names, and whether it is the web twin.
fn operation(path: &str) -> Option<(Operation, bool)> {
    let lower = path.to_ascii_lowercase();
    let rest = &lower[lower.rfind(AREA)? + AREA.len()..];
    let rest = rest.trim_end_matches('/');
    let (web, rest) = match rest.strip_prefix("/web") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let op = match rest {
        "/token/generate" => Operation::TokenGenerate,
        "/otp/generate" => Operation::OtpGenerate,
        "/otp/validate" => Operation::OtpValidate,
        _ => return None,
    };
    Some((op, web))
}

fn answer(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(crate::wire::json_bytes(body))
}

fn transport(status: StatusCode, message: &str) -> HttpResponse {
    answer(
        status,
        &json!({"status": {"success": false, "code": status.as_u16(), "message": message}}),
    )
}

fn header_text(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Everything under /auth/v1: the operations, other paths (404) and methods (405).
pub async fn handle(req: HttpRequest, payload: Payload, state: Data<AppState>) -> HttpResponse {
    if let Some(upstreams) = req.app_data::<Data<Upstreams>>() {
        let side = &upstreams.capillary;
        let suffix = crate::upstream::after(req.path(), AREA);
        let name = &crate::upstream::routes::name_of(suffix);
        match side.decide(&[name], operation(req.path()).is_some()) {
            RouteTo::Local => {}
            RouteTo::Refuse => {
                return transport(
                    StatusCode::FORBIDDEN,
                    &format!("The route '{name}' is not available."),
                );
            }
            RouteTo::Upstream => {
                return crate::upstream::relay(&req, payload, side, suffix, &state.settings)
                    .await
                    .unwrap_or_else(|(status, msg)| transport(status, &msg));
            }
        }
    }
    let Some((op, web)) = operation(req.path()) else {
        return transport(
            StatusCode::NOT_FOUND,
            "No such operation: POST token/generate, otp/generate or otp/validate under /auth/v1/ or /auth/v1/web/.",
        );
    };
    if req.method() != actix_web::http::Method::POST {
        return crate::wire::allow_post(transport(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only POST is allowed on this path.",
        ));
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
            let (status, message) = e.answer(limit);
            return match e {
                // The status as the code, like the other transport faults.
                BodyError::TooLarge | BodyError::TimedOut => transport(status, &message),
                BodyError::Unreadable => answer(status, &Failure::invalid(message).body()),
            };
        }
    };
    let decoded = if body.iter().all(u8::is_ascii_whitespace) {
        Err("The request body is empty.".to_string())
    } else {
        json_object(&body, state.settings.max_depth)
    };
    let body = match decoded {
        Ok(v) => v,
        Err(reason) => {
            return answer(StatusCode::BAD_REQUEST, &Failure::invalid(reason).body());
        }
    };
    let call = Call {
        body,
        web,
        headers: CapHeaders {
            brand: header_text(&req, "cap_brand"),
            device_id: header_text(&req, "cap_device_id"),
            mobile: header_text(&req, "cap_mobile"),
        },
    };
    let client = crate::wire::client::address(&req, &state.trusted_proxies);
    let run = async { Ok(operations::run(state.get_ref(), op, &call, client).await) };
    let (result, elapsed_ms) = services::contained(run).await;
    // A panic inside an operation is a fault of the server, not a dropped connection.
    let result = result.unwrap_or_else(|e: Error| Err(Failure::from_core(op, e)));
    let (status, body, code) = match &result {
        Ok(v) => (StatusCode::OK, v.clone(), 200),
        Err(f) => (
            StatusCode::from_u16(f.http).unwrap_or(StatusCode::OK),
            f.body(),
            f.code,
        ),
    };
    tracing::info!(
        operation = op.name(),
        web,
        code,
        elapsed_ms,
        "capillary request"
    );
    let mut resp = answer(status, &body);
    if let Err(Failure {
        retry_after: Some(secs),
        ..
    }) = result
    {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(secs),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_found_after_any_prefix_in_any_case() {
        assert_eq!(
            operation("/auth/v1/token/generate"),
            Some((Operation::TokenGenerate, false))
        );
        assert_eq!(
            operation("/mobile/Auth/V1/web/OTP/validate/"),
            Some((Operation::OtpValidate, true))
        );
        assert_eq!(
            operation("/x/auth/v1/otp/generate"),
            Some((Operation::OtpGenerate, false))
        );
        assert_eq!(operation("/auth/v1/password/validate"), None);
        assert_eq!(operation("/auth/v1/web/web/otp/generate"), None);
        assert!(is_area("/gw/auth/v1/anything"));
        assert!(!is_area("/api/TwoFactor/CreateTwoFactorSmsOtp"));
    }
}
