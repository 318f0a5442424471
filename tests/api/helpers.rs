//! Starts the real gateway on a fresh database for each test: a temporary SQLite file,
//! or a new PostgreSQL database when OTPGATE_TEST_POSTGRES_URL is set.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use otpgate::config::Settings;
use otpgate::core::users::NewUser;
use otpgate::db::users::User;
use otpgate::startup::Gateway;
use otpgate::state::AppState;
use serde_json::{Value, json};

pub const ENDPOINT: &str = "/API/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";
pub const PG_ENV: &str = "OTPGATE_TEST_POSTGRES_URL";
pub const TEST_KEY: &str = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend: `both!(name)` makes `name::sqlite` and
/// `name::postgres` from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_url().is_some() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        }
    )*};
}

/// The PostgreSQL server for tests, or None (said once on the output) when unset.
pub fn postgres_url() -> Option<String> {
    static SAID: Once = Once::new();
    let url = std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty());
    if url.is_none() {
        SAID.call_once(|| {
            // Straight to stderr, past the test harness's capture.
            let _ = writeln!(
                std::io::stderr(),
                "note: PostgreSQL tests skipped: {PG_ENV} is not set \
                 (e.g. {PG_ENV}=postgres://postgres@127.0.0.1:5432/test runs them)"
            );
        });
    }
    url
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("otpgate.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_url().expect("PostgreSQL URL");
                let name = format!("otpgate_t_{}", uuid::Uuid::new_v4().simple());
                let mut c = diesel::PgConnection::establish(&admin)
                    .expect("connect to the test PostgreSQL server");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .expect("create test database");
                TestDb {
                    url: with_database(&admin, &name),
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg
            && let Ok(mut c) = diesel::PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c);
        }
    }
}

/// The same server URL with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let server = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    format!("{server}/{name}{query}")
}

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
    s
}

pub struct TestApp {
    pub base: String,
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
    let app = tokio::task::spawn_blocking(move || AppState::new(settings))
        .await
        .unwrap()
        .expect("app starts");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let gateway = Gateway::build(app.clone(), listener, true).expect("gateway builds");
    let port = gateway.port;
    let handle = gateway.handle();
    tokio::spawn(gateway.run());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
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
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Answer {
            status,
            content_type,
            text: resp.text().await.expect("body"),
        }
    }

    /// Posts a JSON envelope to the Summit endpoint.
    pub async fn summit(&self, body: Value) -> Answer {
        self.post(ENDPOINT, Some("application/json"), body.to_string())
            .await
    }

    pub async fn add_user(&self, user: NewUser) -> User {
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || otpgate::cli::add_user(&app, &user))
            .await
            .unwrap()
            .expect("user added")
    }

    /// The standard test user: Vishnu, e-mail and mobile, password "Secret#123".
    pub async fn vishnu(&self) -> User {
        self.add_user(NewUser {
            user_id: Some(836),
            login_uid: "1xxxx4".into(),
            login_name: Some("vishnu".into()),
            user_name: "Vishnu Kumar".into(),
            email: "Vishnu.kumar@syntel.com".into(),
            mobile: "9876543219".into(),
            country_code: "91".into(),
            password: Some("Secret#123".into()),
            org_id: 1,
            org_name: "xyz".into(),
            domain_id: 1,
            profile: Default::default(),
        })
        .await
    }

    /// Every message the delivery sink received, oldest first.
    pub fn deliveries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.sink)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("sink lines are JSON"))
            .collect()
    }

    /// Waits for the message of `transaction_id` on `channel` and returns the code in it.
    pub async fn code(&self, transaction_id: &str, channel: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self
                .deliveries()
                .into_iter()
                .find(|m| m["transaction_id"] == transaction_id && m["channel"] == channel)
            {
                return first_digits(m["text"].as_str().unwrap_or(""));
            }
            assert!(
                Instant::now() < deadline,
                "no {channel} message for {transaction_id}: {:?}",
                self.deliveries()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// ADM_GenerateOTP, pre-login form; returns the TransactionID.
    pub async fn login_otp(&self, email: &str, device: &str) -> String {
        let a = self.summit(login_otp_request(email, device)).await;
        let v = a.json();
        assert_eq!(v["Errors"], "", "generate failed: {}", a.text);
        v["OutputObject"]["OTP_Communication"][0]["TransactionID"]
            .as_str()
            .expect("TransactionID")
            .to_string()
    }

    pub async fn login_app(&self, transaction_id: &str, code: &str, device: &str) -> Answer {
        self.summit(login_app_request(transaction_id, code, device))
            .await
    }

    /// Rows in a table, straight from the database.
    pub async fn count(&self, table: &'static str) -> i64 {
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

pub fn login_otp_request(email: &str, device: &str) -> Value {
    json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"objUserInformation": {
        "AuthType": "LOGIN_OTP", "CountryCode": "91", "EncryptedEmailID": email, "DeviceId": device}}})
}

pub fn login_app_request(transaction_id: &str, code: &str, device: &str) -> Value {
    json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
        "SAASOrgID": "0", "ProxyID": 0, "MobileVersion": "1.7.1", "TokenID": null, "LoginUID": 0, "OrgID": "0",
        "ReturnType": "JSON", "Password": code, "RequestType": "mobile", "AuthType": "OTP", "UserName": "",
        "TransactionID": transaction_id, "DeviceId": device}}})
}

pub fn first_digits(text: &str) -> String {
    text.chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect()
}

/// A fixture file's text.
pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A wrong code of the same length as `code`.
pub fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                char::from(c as u8 + 1)
            }
        })
        .collect()
}

/// The real binary, as an operator runs it, on `db_url` in `dir`.
pub fn otpgate(db_url: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("OTPGATE_CONFIG")
        .env("OTPGATE_DATABASE_URL", db_url)
        .env("OTPGATE_PASSWORD_HASHING__MEMORY_KIB", "8192")
        .env("OTPGATE_PASSWORD_HASHING__ITERATIONS", "1")
        .env("OTPGATE_SECRETS__OTP_KEY", TEST_KEY)
        // Variables of the test suite are not configuration keys.
        .env("OTPGATE_TEST_MARKER", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("otpgate runs")
}

pub fn output_text(o: &std::process::Output) -> String {
    let mut said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if !o.status.success() {
        said.push_str(&format!("\n[{}]", o.status));
    }
    said
}
