//! Builds the HTTP app and the server, for `otpgate serve` and for the tests.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::web::{self, Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::delivery::Dispatcher;
use crate::dialects::{capillary, summit, twofactor};
use crate::state::AppState;

/// Threads for blocking work (database calls, password hashing, file writes): one
/// per pooled connection and hashing slot, and a few for the rest. A blocking task
/// beyond these would only wait for a connection or a slot, as a thread of its own:
/// under load, tokio's default of up to 512 such threads cost context switches and a
/// malloc arena each.
pub fn blocking_threads(settings: &crate::config::Settings) -> usize {
    settings.pool_connections() as usize + settings.password_hashing.max_concurrent + 4
}

/// A running gateway: the HTTP server and the outbox dispatcher.
pub struct Gateway {
    pub port: u16,
    server: actix_web::dev::Server,
    handle: actix_web::dev::ServerHandle,
    /// The outbox dispatcher and housekeeping, with the switch that stops them.
    background: Option<(watch::Sender<bool>, Vec<JoinHandle<()>>)>,
}

impl Gateway {
    /// Serves on the listener; with `background`, also runs the outbox dispatcher and
    /// housekeeping.
    pub fn build(
        app: AppState,
        listener: TcpListener,
        background: bool,
    ) -> std::io::Result<Gateway> {
        let port = listener.local_addr()?.port();
        let data = Data::new(app.clone());
        let max_body = app.settings.max_body_bytes;
        let mut server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .default_service(web::to(route))
        })
        .shutdown_timeout(30)
        .listen(listener)?;
        if app.settings.workers > 0 {
            server = server.workers(app.settings.workers);
        }
        let server = server.run();
        let handle = server.handle();
        let background = background.then(|| {
            let (tx, rx) = watch::channel(false);
            let d = Dispatcher::new(
                app.db.clone(),
                app.keys.clone(),
                &app.settings.delivery,
                app.outbox_wake.clone(),
            );
            let housekeeping = crate::core::housekeeping::run_periodically(
                app.db.clone(),
                app.settings.clone(),
                Duration::from_secs(300),
                rx.clone(),
            );
            (
                tx,
                vec![tokio::spawn(d.run(rx)), tokio::spawn(housekeeping)],
            )
        });
        Ok(Gateway {
            port,
            server,
            handle,
            background,
        })
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }

    /// Serves until the server stops (SIGINT/SIGTERM: in-flight requests finish
    /// first), then lets the dispatcher finish its batch.
    pub async fn run(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some((tx, tasks)) = self.background {
            let _ = tx.send(true);
            let all = futures_util::future::join_all(tasks);
            let _ = tokio::time::timeout(Duration::from_secs(30), all).await;
        }
        result
    }
}

/// What serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    Health,
    Ready,
    OpenApi,
    Schema,
    Summit,
    TwoFactor,
    Capillary,
}

/// How a request path is matched against a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The path itself.
    Exact,
    /// Any path under the route's path up to its `{…}` parameter.
    Prefix,
    /// Any path that ends with the route's path, without case and with or without a
    /// final `/`: legacy clients reach the dialects under various prefixes.
    Suffix,
}

/// One route the gateway serves.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// The path as the OpenAPI document lists it.
    pub path: &'static str,
    pub matching: Match,
    pub serve: Serve,
}

const fn route_(method: &'static str, path: &'static str, matching: Match, serve: Serve) -> Route {
    Route {
        method,
        path,
        matching,
        serve,
    }
}

/// Every route the gateway serves: the router dispatches by this list, and a test
/// compares it with the OpenAPI document (schemas/openapi.json).
pub const ROUTES: &[Route] = &[
    route_("GET", "/healthz", Match::Exact, Serve::Health),
    route_("GET", "/readyz", Match::Exact, Serve::Ready),
    route_("GET", "/openapi.json", Match::Exact, Serve::OpenApi),
    route_("GET", "/schemas/{path}", Match::Prefix, Serve::Schema),
    route_(
        "POST",
        "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall",
        Match::Suffix,
        Serve::Summit,
    ),
    route_(
        "POST",
        "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall_JSON",
        Match::Suffix,
        Serve::Summit,
    ),
    route_(
        "POST",
        "/api/TwoFactor/CreateTwoFactorSmsOtp",
        Match::Suffix,
        Serve::TwoFactor,
    ),
    route_(
        "POST",
        "/api/TwoFactor/ValidateTwoFactorSmsOtp",
        Match::Suffix,
        Serve::TwoFactor,
    ),
    route_(
        "POST",
        "/api/TwoFactor/ValidateTwoFactorSmsOtoByReferenceId",
        Match::Suffix,
        Serve::TwoFactor,
    ),
    route_(
        "POST",
        "/api/TwoFactor/CreateOtpForRemindPassword",
        Match::Suffix,
        Serve::TwoFactor,
    ),
    route_(
        "POST",
        "/auth/v1/token/generate",
        Match::Suffix,
        Serve::Capillary,
    ),
    route_(
        "POST",
        "/auth/v1/otp/generate",
        Match::Suffix,
        Serve::Capillary,
    ),
    route_(
        "POST",
        "/auth/v1/otp/validate",
        Match::Suffix,
        Serve::Capillary,
    ),
    route_(
        "POST",
        "/auth/v1/web/token/generate",
        Match::Suffix,
        Serve::Capillary,
    ),
    route_(
        "POST",
        "/auth/v1/web/otp/generate",
        Match::Suffix,
        Serve::Capillary,
    ),
    route_(
        "POST",
        "/auth/v1/web/otp/validate",
        Match::Suffix,
        Serve::Capillary,
    ),
];

impl Route {
    pub fn matches(&self, path: &str) -> bool {
        match self.matching {
            Match::Exact => path == self.path,
            Match::Prefix => {
                let prefix = self.path.split('{').next().unwrap_or(self.path);
                path.len() > prefix.len() && path.starts_with(prefix)
            }
            Match::Suffix => {
                let p = path.trim_end_matches('/').to_ascii_lowercase();
                p.ends_with(&self.path.to_ascii_lowercase())
            }
        }
    }
}

/// Routes by ROUTES. A dialect answers for its whole area (wrong methods, unknown
/// operations) in its own shape; anything else is a JSON 404.
async fn route(req: HttpRequest, payload: Payload, app: Data<AppState>) -> HttpResponse {
    let path = req.path();
    if let Some(r) = ROUTES.iter().find(|r| r.matches(path)) {
        let method_ok = req.method().as_str() == r.method
            || (r.method == "GET" && req.method() == Method::HEAD);
        match r.serve {
            Serve::Summit if method_ok => return summit::handle(req, payload, app).await,
            Serve::Summit => return summit::not_routed(&req),
            Serve::TwoFactor => return twofactor::handle(req, payload, app).await,
            Serve::Capillary => return capillary::handle(req, payload, app).await,
            _ if !method_ok => {
                return HttpResponse::MethodNotAllowed()
                    .insert_header((actix_web::http::header::ALLOW, r.method))
                    .json(json!({"error": "method not allowed", "allow": r.method}));
            }
            Serve::Health => return healthz().await,
            Serve::Ready => return readyz(app).await,
            Serve::OpenApi => return crate::schemas::openapi(),
            Serve::Schema => return crate::schemas::file(path.trim_start_matches("/schemas/")),
        }
    }
    if summit::is_area(path) {
        return summit::not_routed(&req);
    }
    if twofactor::is_area(path) {
        return twofactor::handle(req, payload, app).await;
    }
    if capillary::is_area(path) {
        return capillary::handle(req, payload, app).await;
    }
    not_found(path)
}

pub(crate) fn not_found(path: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found", "path": path}))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(app: Data<AppState>) -> HttpResponse {
    use diesel::connection::SimpleConnection;
    let backend = app.db.backend();
    match app.db.run(|c| Ok(c.batch_execute("SELECT 1")?)).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": backend})),
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "database": backend}))
        }
    }
}
