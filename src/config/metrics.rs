//! `[metrics]`: the Prometheus endpoint (docs/operations/README.md#metrics).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Whether metrics are kept and `/metrics` is served.
    pub enabled: bool,
    /// A separate address for `/metrics` (a private network, say); absent: the main
    /// listener serves it.
    pub bind: Option<String>,
    /// A bearer token `/metrics` asks for; absent: none.
    pub token: Option<String>,
    /// Seconds between two refreshes of the gauges read from the database (the
    /// outbox by state, its oldest queued message).
    pub refresh_seconds: u64,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            bind: None,
            token: None,
            refresh_seconds: 15,
        }
    }
}

impl MetricsSettings {
    /// Every problem with these settings, one a line.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(bind) = &self.bind
            && bind.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!(
                "metrics.bind: '{bind}' is not an address and port (e.g. 10.0.0.5:9464)"
            ));
        }
        if let Some(token) = &self.token
            && (token.len() < 16 || token.bytes().any(|b| !b.is_ascii_graphic()))
        {
            problems
                .push("metrics.token: use at least 16 printable characters without spaces".into());
        }
        if !(1..=3600).contains(&self.refresh_seconds) {
            problems.push(format!(
                "metrics.refresh_seconds: {} is outside 1 to 3600",
                self.refresh_seconds
            ));
        }
        problems
    }
}
