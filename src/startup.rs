//! Builds the HTTP app and the server, for `otpgate serve` and for the tests.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::web::{self, Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::delivery::Dispatcher;
use crate::dialects::{summit, twofactor};

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
    pub fn build(app: App, listener: TcpListener, background: bool) -> std::io::Result<Gateway> {
        let port = listener.local_addr()?.port();
        let data = Data::new(app.clone());
        let max_body = app.settings.max_body_bytes;
        let mut server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
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
            let housekeeping = crate::housekeeping::run_periodically(
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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(app: Data<App>) -> HttpResponse {
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

/// Every path the dialects serve, matched by suffix and without case, as legacy
/// clients with their various prefixes need.
async fn route(req: HttpRequest, payload: Payload, app: Data<App>) -> HttpResponse {
    let path = req.path();
    if summit::is_endpoint(path) && req.method() == Method::POST {
        return summit::handle(req, payload, app).await;
    }
    if summit::is_area(path) {
        return summit::not_routed(&req);
    }
    if twofactor::is_area(path) {
        return twofactor::handle(req, payload, app).await;
    }
    HttpResponse::NotFound().json(json!({"error": "not found", "path": path}))
}
