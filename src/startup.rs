//! Builds the HTTP app and the server, for `otpgate serve` and for the tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::web::{self, Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod observe;

use crate::delivery::Dispatcher;
use crate::dialects::DIALECTS;
use crate::state::AppState;
use crate::upstream::Upstreams;
use crate::wire::routes::{Match, Route};

/// Threads for tokio's blocking work (file writes, recordings): a few. Database work
/// has threads of its own (one per pooled connection, or SQLite's writer), and so
/// has password hashing (one per hashing slot). Under load, tokio's default of up to
/// 512 blocking threads cost context switches and a malloc arena each.
pub const BLOCKING_THREADS: usize = 4;

/// Raises this process's soft limit of open files to the hard limit (once): each
/// client connection is a file, and the usual soft limit of 1,024 would be reached long
/// before the connection cap. Returns the soft limit in force.
pub fn raise_open_file_limit() -> u64 {
    static RAISED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *RAISED.get_or_init(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "the open-file limit could not be raised");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    })
}

/// The connection cap: `max_connections`, or the open-file limit less a reserve for
/// the database pool, the log, upstream and provider sockets (at most 25,000).
fn max_connections(settings: &crate::config::Settings) -> usize {
    if settings.max_connections > 0 {
        return settings.max_connections;
    }
    let files = usize::try_from(raise_open_file_limit()).unwrap_or(usize::MAX);
    files.saturating_sub(256).clamp(64, 25_000)
}

/// The client connections open in this process, against the cap: the cap itself is
/// actix's (per worker); this count is what tells the operator it was reached.
struct OpenConnections {
    count: AtomicUsize,
    cap: usize,
    warned: std::sync::Mutex<Option<Instant>>,
}

/// Held in a connection's extensions: dropped, with them, when the connection closes.
struct Connection(Arc<OpenConnections>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OpenConnections {
    fn new(cap: usize) -> OpenConnections {
        tracing::info!(max_connections = cap, "connection cap");
        OpenConnections {
            count: AtomicUsize::new(0),
            cap,
            warned: std::sync::Mutex::new(None),
        }
    }

    fn opened(self: &Arc<Self>) -> Connection {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.cap {
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                *warned = Some(Instant::now());
                tracing::warn!(
                    open = n,
                    max_connections = self.cap,
                    "connection cap reached: new clients wait until a connection closes"
                );
            }
        }
        Connection(self.clone())
    }
}

/// A running gateway: the HTTP server and the outbox dispatcher.
pub struct Gateway {
    pub port: u16,
    server: actix_web::dev::Server,
    handle: actix_web::dev::ServerHandle,
    /// The outbox dispatcher and housekeeping, with the switch that stops them.
    background: Option<(watch::Sender<bool>, Vec<JoinHandle<()>>)>,
    recording: Option<crate::record::Recording>,
    /// Forgets the throttle's idle buckets while the server runs.
    throttle_cleanup: JoinHandle<()>,
    /// Refreshes the metrics read from the database, when metrics are on.
    metrics_refresh: Option<JoinHandle<()>>,
    /// The `metrics.bind` listener's server and port, when there is one.
    metrics_server: Option<actix_web::dev::ServerHandle>,
    pub metrics_port: Option<u16>,
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
        let upstream = &app.settings.upstream;
        crate::dialects::check_routes(upstream).map_err(std::io::Error::other)?;
        let upstreams = Data::new(
            Upstreams::from_settings(upstream)
                .map_err(std::io::Error::other)?
                .with_metrics(&app.metrics),
        );
        let data = Data::new(app.clone());
        let watched = upstreams.clone();
        let max_body = app.settings.max_body_bytes;
        let recording = crate::record::Recording::start(&app.settings)?;
        let capture = recording.as_ref().map(crate::record::Recording::capture);
        raise_open_file_limit();
        let workers = match app.settings.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let open = Arc::new(OpenConnections::new(max_connections(&app.settings)));
        let per_worker = open.cap.div_ceil(workers).max(1);
        let counted = open.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .wrap(crate::record::middleware(capture.clone()))
                .wrap(actix_web::middleware::from_fn(observe::middleware))
                .wrap(actix_web::middleware::from_fn(
                    crate::wire::request_id::middleware,
                ))
                .app_data(data.clone())
                .app_data(upstreams.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .default_service(web::to(route))
        })
        .on_connect(move |_, ext| {
            ext.insert(counted.opened());
        })
        .workers(workers)
        .max_connections(per_worker)
        .keep_alive(Duration::from_secs(app.settings.keep_alive_seconds))
        .shutdown_timeout(30)
        .listen(listener)?;
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
        let (mut metrics_refresh, mut metrics_server, mut metrics_port) = (None, None, None);
        let metrics = &app.settings.metrics;
        if metrics.enabled {
            metrics_refresh = Some(tokio::spawn(observe::refresh(
                app.clone(),
                watched,
                Duration::from_secs(metrics.refresh_seconds),
            )));
            if let Some(bind) = &metrics.bind {
                let listener = TcpListener::bind(bind).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("metrics.bind {bind}: {e}"))
                })?;
                metrics_port = Some(listener.local_addr()?.port());
                let server = observe::separate_server(app.clone(), listener)?;
                metrics_server = Some(server.handle());
                tokio::spawn(server);
            }
        }
        let throttle_cleanup = tokio::spawn(
            app.throttle
                .clone()
                .forget_idle_every(Duration::from_secs(60)),
        );
        Ok(Gateway {
            port,
            server,
            handle,
            background,
            recording,
            throttle_cleanup,
            metrics_refresh,
            metrics_server,
            metrics_port,
        })
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }

    /// The recorder, when `record.dir` is set.
    pub fn recording(&self) -> Option<&crate::record::Recording> {
        self.recording.as_ref()
    }

    /// Serves until the server stops (SIGINT/SIGTERM: in-flight requests finish
    /// first), then lets the dispatcher finish its batch.
    pub async fn run(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.throttle_cleanup.abort();
        if let Some(t) = self.metrics_refresh {
            t.abort();
        }
        if let Some(h) = self.metrics_server {
            h.stop(true).await;
        }
        if let Some((tx, tasks)) = self.background {
            let _ = tx.send(true);
            let all = futures_util::future::join_all(tasks);
            let _ = tokio::time::timeout(Duration::from_secs(30), all).await;
        }
        if let Some(r) = self.recording {
            r.finish().await;
        }
        result
    }
}

/// The gateway's own routes; each dialect declares its own.
const GATEWAY_ROUTES: &[(Route, Own)] = &[
    (get("/healthz", Match::Exact), Own::Health),
    (get("/readyz", Match::Exact), Own::Ready),
    (get("/openapi.json", Match::Exact), Own::OpenApi),
    (get("/schemas/{path}", Match::Prefix), Own::Schema),
];

#[derive(Debug, Clone, Copy)]
enum Own {
    Health,
    Ready,
    OpenApi,
    Schema,
}

const fn get(path: &'static str, matching: Match) -> Route {
    Route {
        method: "GET",
        path,
        matching,
    }
}

/// Every route the gateway serves: its own and each dialect's. A test compares this
/// list with the OpenAPI document (schemas/openapi.json).
pub fn routes() -> Vec<Route> {
    GATEWAY_ROUTES
        .iter()
        .map(|(r, _)| *r)
        .chain(DIALECTS.iter().flat_map(|d| d.routes.iter().copied()))
        .collect()
}

/// Routes a request: the gateway's own routes, then each dialect, which answers for
/// its whole area (wrong methods, unknown operations) in its own shape; anything else
/// is a JSON 404.
async fn route(req: HttpRequest, payload: Payload, state: Data<AppState>) -> HttpResponse {
    let path = req.path();
    if path == observe::PATH && observe::on_main_listener(&state) {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return HttpResponse::MethodNotAllowed()
                .insert_header((actix_web::http::header::ALLOW, "GET"))
                .json(json!({"error": "method not allowed", "allow": "GET"}));
        }
        return observe::scrape(&req, &state);
    }
    if let Some((r, own)) = GATEWAY_ROUTES.iter().find(|(r, _)| r.matches(path)) {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return HttpResponse::MethodNotAllowed()
                .insert_header((actix_web::http::header::ALLOW, r.method))
                .json(json!({"error": "method not allowed", "allow": r.method}));
        }
        let served = match own {
            Own::Health => Some(healthz()),
            Own::Ready => Some(readyz(state).await),
            Own::OpenApi => crate::schemas::openapi(),
            Own::Schema => crate::schemas::file(path.trim_start_matches("/schemas/")),
        };
        return served.unwrap_or_else(|| not_found(path));
    }
    let dialect = DIALECTS
        .iter()
        .find(|d| d.routes.iter().any(|r| r.matches(path)))
        .or_else(|| DIALECTS.iter().find(|d| (d.is_area)(path)));
    match dialect {
        Some(d) => (d.handle)(req, payload, state).await,
        None => not_found(path),
    }
}

fn not_found(path: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found", "path": path}))
}

fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the database answers within a second: a load balancer asking must get
/// its answer quickly, whatever the database is doing.
async fn readyz(state: Data<AppState>) -> HttpResponse {
    let backend = state.db.backend();
    if state.db.ready(Duration::from_millis(900)).await {
        HttpResponse::Ok().json(json!({"status": "ready", "database": backend}))
    } else {
        tracing::warn!(
            database = backend,
            "readiness check failed: the database did not answer"
        );
        HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "database": backend}))
    }
}
