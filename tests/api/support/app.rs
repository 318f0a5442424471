//! Starts the real gateway on a fresh database for each test, and speaks to it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use diesel::prelude::*;
use otpgate::cli::BrandSettings;
use otpgate::config::Settings;
use otpgate::core::users::NewUser;
use otpgate::db::twofactor_configs::TwoFactorConfig;
use otpgate::db::users::User;
use otpgate::startup::Gateway;
use otpgate::state::AppState;
use serde_json::Value;

use super::{Backend, TestDb, eventually, first_digits};

pub const TEST_KEY: &str = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";

/// Settings for tests: a port of its own, fast password hashing, no resend cooldown,
/// deliveries to a file in the test's directory.
pub fn test_settings(db_url: &str, dir: &std::path::Path) -> Settings {
    let mut s = Settings {
        bind: "127.0.0.1:0".into(),
        database_url: db_url.into(),
        pool_size: 4,
        workers: 2,
        ..Default::default()
    };
    s.otp.resend_cooldown_seconds = 0;
    s.secrets.otp_key = Some(TEST_KEY.into());
    s.password_hashing.memory_kib = 8192;
    s.password_hashing.iterations = 1;
    s.delivery.file_path = dir.join("deliveries.jsonl");
    s.delivery.poll_interval_ms = 20;
    // Tests send many requests from one address; the throttle's own tests
    // (tests/api/throttle.rs) turn it on.
    s.security.throttle.enabled = false;
    s
}

pub struct TestApp {
    pub base: String,
    /// The `metrics.bind` listener's port, when the settings name one.
    pub metrics_port: Option<u16>,
    pub app: AppState,
    pub client: reqwest::Client,
    pub sink: PathBuf,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let h = self.handle.clone();
        // Stop the server so the database can be dropped.
        std::mem::drop(h.stop(false));
    }
}

/// The app's state on a fresh database, without a server or dispatcher.
pub async fn open_app(backend: Backend) -> (AppState, TestDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDb::new(backend);
    let settings = test_settings(&db.url, dir.path());
    let app = tokio::task::spawn_blocking(move || AppState::new(settings))
        .await
        .unwrap()
        .expect("app opens");
    (app, db, dir)
}

/// A gateway process (server and outbox dispatcher) on the database `settings` name.
pub struct Gatewayed {
    pub app: AppState,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub handle: actix_web::dev::ServerHandle,
}

pub async fn start_gateway(settings: Settings) -> Gatewayed {
    let app = tokio::task::spawn_blocking(move || AppState::new(settings))
        .await
        .unwrap()
        .expect("app starts");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let gateway = Gateway::build(app.clone(), listener, true).expect("gateway builds");
    let (port, handle, metrics_port) = (gateway.port, gateway.handle(), gateway.metrics_port);
    tokio::spawn(gateway.run());
    Gatewayed {
        app,
        port,
        metrics_port,
        handle,
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDb::new(backend);
    let mut settings = test_settings(&db.url, dir.path());
    tweak(&mut settings);
    settings.validate().expect("test settings are valid");
    let sink = settings.delivery.file_path.clone();
    let Gatewayed {
        app,
        port,
        metrics_port,
        handle,
    } = start_gateway(settings).await;
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        metrics_port,
        app,
        client: reqwest::Client::new(),
        sink,
        handle,
        _dir: dir,
        _db: db,
    }
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    /// The `Retry-After` header, when there is one.
    pub retry_after: Option<String>,
    /// The `X-Request-Id` header, when there is one.
    pub request_id: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The XML answer as a value tree, through the gateway's own decoder.
    pub fn xml(&self) -> otpgate::wire::xml::XmlDocument {
        otpgate::wire::xml::decode(self.text.as_bytes(), 64)
            .unwrap_or_else(|e| panic!("not XML ({e}): {}", self.text))
    }

    pub fn errors(&self) -> String {
        self.json()["Errors"]
            .as_str()
            .unwrap_or_else(|| panic!("no Errors: {}", self.text))
            .to_string()
    }
}

impl TestApp {
    pub async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<String>,
    ) -> Answer {
        self.request(
            reqwest::Method::POST,
            path,
            &[("content-type", content_type)],
            body.into(),
        )
        .await
    }

    /// Posts `body` as JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post(path, Some("application/json"), body.to_string())
            .await
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, Option<&str>)],
        body: String,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .body(body);
        for (k, v) in headers {
            if let Some(v) = v {
                req = req.header(*k, *v);
            }
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let request_id = header("x-request-id");
        Answer {
            status,
            content_type,
            retry_after,
            request_id,
            text: resp.text().await.expect("body"),
        }
    }

    pub async fn add_user(&self, user: NewUser) -> User {
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || otpgate::cli::add_user(&app, &user))
            .await
            .unwrap()
            .expect("user added")
    }

    /// `otpgate brand add`.
    pub async fn add_brand(&self, name: &str, settings: BrandSettings) {
        self.save_brand(name, settings, false).await;
    }

    /// `otpgate brand set`.
    pub async fn set_brand(&self, name: &str, settings: BrandSettings) {
        self.save_brand(name, settings, true).await;
    }

    async fn save_brand(&self, name: &str, settings: BrandSettings, set: bool) {
        let (app, name) = (self.app.clone(), name.to_string());
        tokio::task::spawn_blocking(move || {
            otpgate::cli::save_brand(&app, &name, &settings, set)
                .unwrap_or_else(|e| panic!("brand {name} not saved: {e}"))
        })
        .await
        .unwrap();
    }

    /// Stores a TwoFactorConfiguration, after the checks `otpgate twofactor-config`
    /// makes.
    pub async fn save_twofactor_config(&self, config: TwoFactorConfig) {
        config
            .check()
            .unwrap_or_else(|e| panic!("configuration {}: {e}", config.id));
        self.app
            .db
            .run(move |conn| Ok(otpgate::db::twofactor_configs::upsert(conn, &config)?))
            .await
            .unwrap();
    }

    /// Every message the delivery sink received, oldest first.
    pub fn deliveries(&self) -> Vec<Value> {
        sink_messages(&self.sink)
    }

    /// Waits for the message of `transaction_id` on `channel` and returns the code in it.
    pub async fn code(&self, transaction_id: &str, channel: &str) -> String {
        sink_code(&self.sink, transaction_id, Some(channel)).await
    }

    /// Rows in a table (`"challenges WHERE …"`: those that meet a condition), straight
    /// from the database.
    pub async fn count(&self, table: impl Into<String>) -> i64 {
        let table = table.into();
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        self.app
            .db
            .run(move |c| {
                Ok(
                    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                        .get_result::<N>(c)?
                        .n,
                )
            })
            .await
            .expect("count")
    }
}

/// The messages of a delivery file, oldest first: whole lines only, as a gateway in
/// another process may be writing the last one.
pub fn sink_messages(sink: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(sink).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).expect("sink lines are JSON"))
        .collect()
}

/// Waits for the message of `transaction_id` (on `channel`, or any) in a delivery file
/// and returns the code in it.
pub async fn sink_code(
    sink: &std::path::Path,
    transaction_id: &str,
    channel: Option<&str>,
) -> String {
    eventually(Duration::from_secs(10), || async {
        let all = sink_messages(sink);
        all.iter()
            .find(|m| {
                m["transaction_id"] == transaction_id && channel.is_none_or(|c| m["channel"] == c)
            })
            .map(|m| first_digits(m["text"].as_str().unwrap_or("")))
            .ok_or_else(|| {
                format!(
                    "no {} message for {transaction_id}: {all:?}",
                    channel.unwrap_or("")
                )
            })
    })
    .await
}
