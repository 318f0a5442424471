//! The request-id middleware: every request is served as one id (the client's
//! `X-Request-Id` when it is a sane token, else a new one), which every answer carries
//! back and every log line of the request names.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::core::request_id::{self, RequestId};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Serves the request as its id, in a tracing span named `request`, and puts the id
/// on the answer.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::from_client)
        .unwrap_or_else(RequestId::generate);
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = request_id::scope(id.clone(), next.call(req).instrument(span)).await?;
    // A request id holds only header-safe characters.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}
