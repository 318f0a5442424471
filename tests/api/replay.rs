//! The recorded scenarios of fixtures/scenarios are the regression suite: each is
//! replayed against otpgate on a fresh database, set up as fixtures/environment says,
//! and any byte of an answer that is not a hole in its template fails with a diff.
//!
//! OTPGATE_TEST_RECORD=1 writes the answers received as the new expected ones (review
//! them with `git diff` before committing).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use otpgate::config::Settings;
use otpgate::db::twofactor_configs::{TwoFactorConfig, upsert};
use otpgate::replay::{self, Replayer, Scenario};
use serde::Deserialize;

use crate::both;
use crate::helpers::*;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn environment() -> PathBuf {
    root().join("fixtures/environment")
}

/// Every scenario file, sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    let files = replay::collect(&[root().join("fixtures/scenarios")]).expect("scenarios");
    assert!(!files.is_empty(), "no scenarios found");
    files
}

/// A TwoFactorConfiguration as twofactor-configs.json holds it: the options of
/// `otpgate twofactor-config add`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecord {
    id: i64,
    name: String,
    code_length: i64,
    expiry_seconds: i64,
    max_attempts: i64,
    max_sms_count: i64,
    max_sms_interval_seconds: i64,
    return_code: bool,
    sms_template: Option<String>,
}

pub fn configs() -> Vec<TwoFactorConfig> {
    let text = std::fs::read_to_string(environment().join("twofactor-configs.json")).unwrap();
    let records: Vec<ConfigRecord> = serde_json::from_str(&text).expect("twofactor-configs.json");
    records
        .into_iter()
        .map(|r| TwoFactorConfig {
            id: r.id,
            name: r.name,
            code_length: r.code_length,
            expiry_seconds: r.expiry_seconds,
            max_attempts: r.max_attempts,
            max_sms_count: r.max_sms_count,
            max_sms_interval_seconds: r.max_sms_interval_seconds,
            return_code: r.return_code,
            sms_template: r.sms_template,
            created_at: 0,
        })
        .collect()
}

/// The test's settings with the environment's file merged over them; the test keeps
/// its own database, port, delivery file and fast password hashing.
fn environment_settings(s: &mut Settings) {
    let merged: Settings = Figment::from(Serialized::defaults(s.clone()))
        .merge(Toml::file(environment().join("otpgate.toml")))
        .extract()
        .expect("fixtures/environment/otpgate.toml");
    let (bind, db, sink, hashing) = (
        s.bind.clone(),
        s.database_url.clone(),
        s.delivery.file_path.clone(),
        s.password_hashing.clone(),
    );
    *s = merged;
    s.bind = bind;
    s.database_url = db;
    s.delivery.file_path = sink;
    s.password_hashing = hashing;
    s.delivery.poll_interval_ms = 20;
}

/// otpgate on a fresh database with the environment's users and configurations.
pub async fn prepared(b: Backend) -> TestApp {
    let app = spawn_with(b, environment_settings).await;
    let a = app.app.clone();
    let report = tokio::task::spawn_blocking(move || {
        otpgate::commands::import_users(&a, &environment().join("users.json"), false)
    })
    .await
    .unwrap()
    .expect("users.json imports");
    assert!(report.failed.is_empty(), "users.json: {:?}", report.failed);
    for c in configs() {
        c.check().expect("twofactor-configs.json");
        app.app
            .db
            .run(move |conn| Ok(upsert(conn, &c)?))
            .await
            .unwrap();
    }
    app
}

async fn replay_one(b: Backend, path: &Path, record: bool) -> Result<(), String> {
    let scenario = Scenario::load(path)?;
    let app = prepared(b).await;
    let replayer = Replayer::new(&app.base, Some(app.sink.clone()))?;
    let outcome = replayer.run(&scenario, record).await;
    if outcome.passed() {
        return Ok(());
    }
    if record && outcome.actual.len() == scenario.steps.len() {
        replayer.write_recorded(&scenario, &outcome)?;
    }
    Err(format!(
        "{} ({}): {}\n{}",
        scenario.label(),
        scenario.title,
        if record { "recorded" } else { "differs" },
        outcome.report()
    ))
}

/// Every scenario, each on a fresh gateway; all failures are reported together.
async fn every_scenario_replays(b: Backend) {
    let record = std::env::var("OTPGATE_TEST_RECORD").is_ok_and(|v| v == "1");
    let files = scenario_files();
    // A few at a time: each has its own gateway and database.
    use futures_util::StreamExt;
    let results: Vec<Result<(), String>> = futures_util::stream::iter(files.iter())
        .map(|f| replay_one(b, f, record))
        .buffered(4)
        .collect()
        .await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed on {b:?}:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

both!(every_scenario_replays);
