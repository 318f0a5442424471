//! fixtures/environment: the users, TwoFactor configurations, Capillary brands and
//! settings the recorded scenarios expect of the gateway they run against.

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use otpgate::cli::BrandSettings;
use otpgate::config::Settings;
use otpgate::db::capillary_brands::Brand;
use otpgate::db::twofactor_configs::TwoFactorConfig;
use serde::Deserialize;

use super::{Backend, TestApp, root, spawn_with};

pub fn environment() -> PathBuf {
    root().join("fixtures/environment")
}

/// A TwoFactorConfiguration as twofactor-configs.json holds it: the options of
/// `otpgate twofactor-config add`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigRecord {
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

/// A Capillary brand as capillary-brands.json holds it: its name and the options of
/// `otpgate brand add` (the ones not given keep their defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandRecord {
    name: String,
    otp_max_count: Option<i64>,
    otp_timeout: Option<i64>,
    max_otp_retries: Option<i64>,
    otp_length: Option<i64>,
    otp_validity: Option<i64>,
    session_validity: Option<i64>,
    token_validity: Option<i64>,
    key_validity: Option<i64>,
    channels: Option<String>,
    org_id: Option<i64>,
    sms_template: Option<String>,
    hash_key: Option<String>,
    hash_window: Option<i64>,
}

impl BrandRecord {
    pub fn settings(&self) -> BrandSettings {
        BrandSettings {
            otp_max_count: self.otp_max_count.map(|n| n.to_string()),
            otp_timeout: self.otp_timeout.map(|n| n.to_string()),
            max_otp_retries: self.max_otp_retries,
            otp_length: self.otp_length,
            otp_validity: self.otp_validity,
            session_validity: self.session_validity,
            token_validity: self.token_validity,
            key_validity: self.key_validity,
            channels: self.channels.clone(),
            org_id: self.org_id,
            sms_template: self.sms_template.clone(),
            hash_key: self.hash_key.clone(),
            hash_window: self.hash_window,
        }
    }
}

pub fn brands() -> Vec<BrandRecord> {
    let text = std::fs::read_to_string(environment().join("capillary-brands.json")).unwrap();
    serde_json::from_str(&text).expect("capillary-brands.json")
}

/// The brands capillary-brands.json describes, as stored (times zero).
pub fn expected_brands() -> Vec<Brand> {
    let mut out: Vec<Brand> = brands()
        .iter()
        .map(|r| {
            let mut b = Brand::new(&r.name, 0);
            r.settings().apply(&mut b).expect("capillary-brands.json");
            b
        })
        .collect();
    out.sort_by(|a, b| a.brand_key.cmp(&b.brand_key));
    out
}

/// The test's settings with the environment's file merged over them; the test keeps
/// its own database, port, delivery file and fast password hashing.
pub fn environment_settings(s: &mut Settings) {
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
        otpgate::cli::import_users(&a, &environment().join("users.json"), false)
    })
    .await
    .unwrap()
    .expect("users.json imports");
    assert!(report.failed.is_empty(), "users.json: {:?}", report.failed);
    for c in configs() {
        app.save_twofactor_config(c).await;
    }
    for r in brands() {
        app.add_brand(&r.name, r.settings()).await;
    }
    app
}
