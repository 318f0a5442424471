//! What every request handler shares.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Settings;
use crate::core::cipher::FieldCipher;
use crate::core::keys::Keys;
use crate::core::throttle::Throttle;
use crate::core::users::Passwords;
use crate::db::Db;
use crate::delivery::Templates;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub keys: Arc<Keys>,
    pub templates: Arc<Templates>,
    pub passwords: Arc<Passwords>,
    pub field_cipher: Option<Arc<FieldCipher>>,
    /// Wakes the outbox dispatcher when a message was queued.
    pub outbox_wake: Arc<Notify>,
    /// The per-client token buckets, in this process.
    pub throttle: Arc<Throttle>,
    /// The proxies whose `X-Forwarded-For` is believed (`security.trusted_proxies`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// This gateway's Prometheus metrics (recording nothing when `metrics.enabled` is
    /// false).
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Opens the database (applying migrations) and loads keys. The error says what is
    /// wrong, for the operator.
    pub fn new(settings: Settings) -> Result<AppState, String> {
        let db = Db::open(&settings.database_url, settings.pool_connections())?;
        let metrics = Arc::new(Metrics::new(settings.metrics.enabled, db.backend()));
        let db = db.with_metrics(metrics.clone());
        let keys = Keys::from_settings(&settings.secrets)?;
        let passwords = Passwords::new(&settings.password_hashing)?.with_metrics(metrics.clone());
        let field_cipher = if settings.field_cipher.enabled {
            Some(Arc::new(
                FieldCipher::from_settings(&settings.field_cipher)
                    .map_err(|e| format!("field_cipher: {e}"))?,
            ))
        } else {
            None
        };
        let trusted_proxies = settings.security.trusted_networks()?.into();
        Ok(AppState {
            throttle: Arc::new(Throttle::new(&settings.security.throttle)),
            trusted_proxies,
            templates: Arc::new(Templates::from_settings(&settings.delivery)),
            settings: Arc::new(settings),
            db,
            keys: Arc::new(keys),
            passwords: Arc::new(passwords),
            field_cipher,
            outbox_wake: Arc::new(Notify::new()),
            metrics,
        })
    }

    /// Reads a field a legacy client may send encrypted with the field cipher: the
    /// value itself when `looks_plain` accepts it, else its decryption.
    pub fn plain_field(&self, value: &str, looks_plain: impl Fn(&str) -> bool) -> Option<String> {
        let value = value.trim();
        if looks_plain(value) {
            return Some(value.to_string());
        }
        self.field_cipher
            .as_ref()?
            .decrypt(value)
            .map(|s| s.trim().to_string())
            .filter(|s| looks_plain(s))
    }
}
