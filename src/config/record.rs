//! `[record]`: recording the exchanges that pass through the gateway as replay
//! scenarios (docs/recording.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordSettings {
    /// The directory scenarios are written to (created 0700 if missing); absent:
    /// recording is off.
    pub dir: Option<PathBuf>,
    /// What to record: Summit ServiceNames, TwoFactor operation names and Capillary
    /// routes below /auth/v1/ (`otp/generate`), compared without case; empty: every
    /// exchange. A request that continues a recorded scenario is always recorded.
    pub names: Vec<String>,
    /// The share of the selected exchanges recorded, 0.0 to 1.0.
    pub sample: f64,
    /// Further field and header names whose values are redacted, without case (the
    /// passwords, codes, keys, tokens and session ids are always redacted).
    pub redact: Vec<String>,
    /// Exchanges waiting for the writer; when the queue is full an exchange is dropped
    /// (and counted), never waited for.
    pub queue: usize,
    /// How long a scenario whose answers carry a transaction or session id waits for a
    /// later request that uses it, after its last step, before it is written as it is.
    pub pending_seconds: u64,
}

impl Default for RecordSettings {
    fn default() -> Self {
        RecordSettings {
            dir: None,
            names: Vec::new(),
            sample: 1.0,
            redact: Vec::new(),
            queue: 1024,
            pending_seconds: 600,
        }
    }
}

impl RecordSettings {
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }
}
