//! What operators watch: the access line and request metrics of every request, the
//! `/metrics` scrape (on the main listener or its own), and the task that refreshes
//! the gauges read from the database.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::GATEWAY_ROUTES;
use crate::dialects::DIALECTS;
use crate::metrics::RequestLabels;
use crate::state::AppState;
use crate::upstream::Upstreams;
use crate::wire::access::{self, Operation, Outcome, UNKNOWN};

/// The path of the scrape.
pub const PATH: &str = "/metrics";

/// The dialect and operation a path names, from the route tables alone: what the
/// client sent never becomes a label.
fn route_labels(path: &str) -> (&'static str, &'static str) {
    if path == PATH {
        return ("gateway", PATH);
    }
    if let Some((r, _)) = GATEWAY_ROUTES.iter().find(|(r, _)| r.matches(path)) {
        return ("gateway", r.path);
    }
    for d in DIALECTS {
        if let Some(r) = d.routes.iter().find(|r| r.matches(path)) {
            return (d.name, r.path);
        }
    }
    match DIALECTS.iter().find(|d| (d.is_area)(path)) {
        Some(d) => (d.name, UNKNOWN),
        None => ("none", UNKNOWN),
    }
}

/// The outcome of an answer whose dialect said nothing of it.
fn outcome_of_status(status: u16) -> &'static str {
    match status {
        200..=399 => "ok",
        429 => "throttled",
        503 => "unavailable",
        400..=499 => "refused",
        _ => "error",
    }
}

/// Counts and times every request, and writes its access line when the log is JSON.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<Data<AppState>>().cloned();
    let (dialect, routed) = route_labels(req.path());
    let res = next.call(req).await;
    let Some(state) = state else {
        return res;
    };
    let seconds = started.elapsed().as_secs_f64();
    let (status, operation, outcome, request) = match &res {
        Ok(r) => {
            let status = r.status().as_u16();
            let ext = r.request().extensions();
            let operation = ext.get::<Operation>().map_or(routed, |o| o.0);
            let outcome = ext
                .get::<Outcome>()
                .map_or_else(|| outcome_of_status(status), |o| o.0);
            (status, operation, outcome, Some(r.request().clone()))
        }
        Err(_) => (500, routed, "error", None),
    };
    state.metrics.request(
        RequestLabels {
            dialect,
            operation,
            outcome,
        },
        seconds,
    );
    if state.settings.log.format == "json" {
        let client = request.as_ref().map_or_else(
            || UNKNOWN.to_string(),
            |r| access::masked(crate::wire::client::address(r, &state.trusted_proxies)),
        );
        let request_id = crate::core::request_id::current();
        tracing::info!(
            target: "otpgate::access",
            request_id = request_id.as_ref().map_or(UNKNOWN, |r| r.as_str()),
            dialect,
            operation,
            outcome,
            status,
            latency_ms = seconds * 1000.0,
            client = %client,
            "access"
        );
    }
    res
}

/// Whether the request carries the configured bearer token (or none is configured).
/// The comparison is of two digests, in constant time.
fn authorized(req: &HttpRequest, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (Sha256::digest(given.trim()), Sha256::digest(token));
    bool::from(a.as_slice().ct_eq(b.as_slice())) && !given.is_empty()
}

/// `GET /metrics`.
pub fn scrape(req: &HttpRequest, state: &AppState) -> HttpResponse {
    if !authorized(req, state.settings.metrics.token.as_deref()) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .json(serde_json::json!({"error": "a bearer token is required"}));
    }
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(state.metrics.encode())
}

/// Whether the main listener serves `/metrics`.
pub fn on_main_listener(state: &AppState) -> bool {
    state.settings.metrics.enabled && state.settings.metrics.bind.is_none()
}

/// The listener of `metrics.bind`: `/metrics` alone, on one worker.
pub fn separate_server(
    state: AppState,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let data = Data::new(state);
    Ok(actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .default_service(actix_web::web::to(
                |req: HttpRequest, state: Data<AppState>| async move {
                    if req.path() == PATH && req.method() == actix_web::http::Method::GET {
                        scrape(&req, &state)
                    } else {
                        HttpResponse::NotFound().json(serde_json::json!({"error": "not found"}))
                    }
                },
            ))
    })
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

/// Refreshes the gauges that are read rather than counted, every `every`, until
/// the task is aborted: the outbox by state and its oldest queued message (one query, by this
/// task alone, never by a scrape), the pool and the upstreams' circuits.
pub async fn refresh(state: AppState, upstreams: Data<Upstreams>, every: Duration) {
    loop {
        let m = &state.metrics;
        let (in_use, idle) = state.db.pool_state();
        m.pool(in_use, idle);
        for (name, open) in upstreams.circuits() {
            m.circuit(name, open);
        }
        match state
            .db
            .run_as("metrics", |c| Ok(crate::db::outbox::gauges(c)?))
            .await
        {
            Ok((counts, oldest)) => {
                let age_ms = oldest.map_or(0, |t| crate::db::now_ms() - t);
                m.outbox(&counts, age_ms as f64 / 1000.0);
            }
            Err(e) => tracing::warn!(error = %e, "the outbox metrics could not be read"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gauge shows, by name, each state the refresh counts: a state counted and not
    /// shown, or shown and not counted, would read 0 for ever.
    #[test]
    fn the_outbox_gauge_shows_the_states_counted() {
        assert_eq!(
            crate::metrics::OUTBOX_STATES,
            crate::db::outbox::OPEN_STATES
        );
    }

    #[test]
    fn labels_come_from_the_route_tables_alone() {
        assert_eq!(route_labels("/healthz"), ("gateway", "/healthz"));
        assert_eq!(
            route_labels("/x/api/TwoFactor/CreateTwoFactorSmsOtp"),
            ("twofactor", "/api/TwoFactor/CreateTwoFactorSmsOtp")
        );
        assert_eq!(route_labels("/api/TwoFactor/Nope"), ("twofactor", UNKNOWN));
        assert_eq!(route_labels("/random/../x"), ("none", UNKNOWN));
    }
}
