//! The Capillary auth API: POST {any prefix}/auth/v1/{token/generate, otp/generate,
//! otp/validate} and their /auth/v1/web/… twins, JSON only, path compared without
//! case.
//!
//! Every answer, errors included, is `{"status":{"success","code","message"}}` (plus
//! `auth` and `user` where the operation has them). Business failures answer HTTP 200
//! with their 15xx code; transport faults keep the shape with the HTTP status as the
//! code (404, 405, 413) or 1519 (HTTP 400, an unreadable body); faults of the server
//! answer 500/503 with the operation's 1502/1503/1504. See schemas/capillary/codes.md.

pub mod protocol;

use actix_web::http::{StatusCode, header};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::FutureExt;
use serde_json::{Value, json};

use crate::dialects::capillary::protocol::{Call, CapHeaders, Failure, Operation};
use crate::services::{auth_otp_generate, auth_otp_validate, auth_token_generate};
use crate::state::AppState;
use crate::wire::{BodyError, read_body};

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
        .body(body.to_string())
}

fn transport(status: StatusCode, message: &str) -> HttpResponse {
    answer(
        status,
        &json!({"status": {"success": false, "code": status.as_u16(), "message": message}}),
    )
}

fn failed(f: &Failure) -> HttpResponse {
    answer(
        StatusCode::from_u16(f.http).unwrap_or(StatusCode::OK),
        &f.body(),
    )
}

fn header_text(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub async fn handle(req: HttpRequest, payload: Payload, app: Data<AppState>) -> HttpResponse {
    let Some((op, web)) = operation(req.path()) else {
        return transport(
            StatusCode::NOT_FOUND,
            "No such operation: POST token/generate, otp/generate or otp/validate under /auth/v1/ or /auth/v1/web/.",
        );
    };
    if req.method() != actix_web::http::Method::POST {
        let mut r = transport(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only POST is allowed on this path.",
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return r;
    }
    let limit = app.settings.max_body_bytes;
    let body = match read_body(&req, payload, limit).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return transport(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The request body is larger than {limit} bytes."),
            );
        }
        Err(BodyError::Unreadable) => {
            let f = Failure::invalid("The request body could not be read.");
            return answer(StatusCode::BAD_REQUEST, &f.body());
        }
    };
    let body = match decode(&body, app.settings.max_depth) {
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
    let started = std::time::Instant::now();
    let app = app.get_ref().clone();
    let run = async {
        match op {
            Operation::TokenGenerate => auth_token_generate::call(&app, &call).await,
            Operation::OtpGenerate => auth_otp_generate::call(&app, &call).await,
            Operation::OtpValidate => auth_otp_validate::call(&app, &call).await,
        }
    };
    // A panic inside an operation is a fault of the server, not a dropped connection.
    let result = std::panic::AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(Failure::from_core(
                op,
                crate::error::Error::internal("the operation panicked"),
            ))
        });
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(v) => {
            tracing::info!(
                operation = op.name(),
                web,
                code = 200,
                elapsed_ms,
                "capillary request"
            );
            answer(StatusCode::OK, &v)
        }
        Err(f) => {
            tracing::info!(
                operation = op.name(),
                web,
                code = f.code,
                elapsed_ms,
                "capillary request"
            );
            failed(&f)
        }
    }
}

/// The body as a JSON object.
fn decode(body: &[u8], max_depth: usize) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("The request body is empty.".into());
    }
    crate::wire::json_object(body, max_depth)
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
