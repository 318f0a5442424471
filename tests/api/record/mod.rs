//! Recording live traffic (`[record]`, docs/recording.md): the real gateway with the
//! scenario environment and recording on; each test sends traffic, stops the gateway
//! (which writes what is still open) and reads the recorded files.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use otpgate::config::Settings;
use otpgate::record::Stats;
use otpgate::startup::Gateway;
use otpgate::state::AppState;
use otpgate::tools::replay::{self, Scenario};
use serde_json::Value;

use crate::support::environment::{brands, configs, environment, environment_settings};
use crate::support::*;

mod chaining;
mod filters;
mod redaction;

/// otpgate with the scenarios' environment, recording into `dir`.
pub struct Recorder {
    pub base: String,
    pub client: reqwest::Client,
    pub sink: PathBuf,
    pub dir: PathBuf,
    pub stats: Arc<Stats>,
    handle: actix_web::dev::ServerHandle,
    run: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: tempfile::TempDir,
    _db: TestDb,
}

pub async fn recorder(b: Backend, tweak: impl FnOnce(&mut Settings)) -> Recorder {
    let tmp = tempfile::tempdir().unwrap();
    let db = TestDb::new(b);
    let mut s = test_settings(&db.url, tmp.path());
    environment_settings(&mut s);
    let dir = tmp.path().join("recorded");
    s.record.dir = Some(dir.clone());
    tweak(&mut s);
    s.validate().expect("recording settings are valid");
    let sink = s.delivery.file_path.clone();
    let app = tokio::task::spawn_blocking(move || AppState::new(s))
        .await
        .unwrap()
        .expect("app starts");
    provision(&app).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = Gateway::build(app.clone(), listener, true).expect("gateway builds");
    let stats = gateway.recording().expect("recording is on").stats();
    let (port, handle) = (gateway.port, gateway.handle());
    let run = tokio::spawn(gateway.run());
    Recorder {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        sink,
        dir,
        stats,
        handle,
        run: Some(run),
        _tmp: tmp,
        _db: db,
    }
}

/// The users, TwoFactor configurations and brands of fixtures/environment.
async fn provision(app: &AppState) {
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let report = otpgate::cli::import_users(&a, &environment().join("users.json"), false)
            .expect("users.json imports");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        // The brands' names, in the order brands() reads them.
        let text = std::fs::read_to_string(environment().join("capillary-brands.json")).unwrap();
        let records: Vec<Value> = serde_json::from_str(&text).unwrap();
        for (record, brand) in records.iter().zip(brands()) {
            let name = record["name"].as_str().expect("a brand's name");
            otpgate::cli::save_brand(&a, name, &brand.settings(), false).expect("brand");
        }
    })
    .await
    .unwrap();
    for c in configs() {
        app.db
            .run(move |conn| Ok(otpgate::db::twofactor_configs::upsert(conn, &c)?))
            .await
            .unwrap();
    }
}

impl Recorder {
    /// Sends a request; returns the status and the answer's text.
    pub async fn send(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<String>,
    ) -> (u16, String) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.into());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request sent");
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn json(&self, path: &str, body: &Value) -> Value {
        let (status, text) = self
            .send(
                path,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await;
        assert!(status < 500, "{status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Waits for the code of a transaction in the sink.
    pub async fn code(&self, transaction: &str) -> String {
        sink_code(&self.sink, transaction, None).await
    }

    /// Stops the gateway (in-flight requests finish, the recorder writes what it holds)
    /// and returns the recorded files, sorted.
    pub async fn stop(&mut self) -> Vec<PathBuf> {
        self.handle.stop(true).await;
        if let Some(run) = self.run.take() {
            run.await.unwrap().unwrap();
        }
        recorded(&self.dir)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        std::mem::drop(self.handle.stop(false));
    }
}

/// The scenario files in a directory, sorted.
pub fn recorded(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    replay::collect(&[dir.to_path_buf()]).unwrap()
}

/// Each file parses as a scenario.
pub fn scenarios(files: &[PathBuf]) -> Vec<Scenario> {
    files
        .iter()
        .map(|f| Scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

pub const SUMMIT: &str = "/API/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";
pub const TWOFACTOR: &str = "/customerservice/api/TwoFactor";
pub const CUSTOMER: &str = "3698b76f-a5c0-4b04-b579-bc084019fb95";
