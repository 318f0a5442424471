//! `[upstream.*]`: the legacy servers otpgate stands in front of, one per dialect, and
//! which names each dialect answers itself, forwards or refuses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    pub summit: Upstream,
    pub twofactor: Upstream,
    pub capillary: Upstream,
}

/// Where a name goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTo {
    /// otpgate answers it (only names it serves).
    Local,
    /// Forwarded to the upstream server.
    Upstream,
    /// Answered with a refusal, neither served nor forwarded.
    Refuse,
}

/// What otpgate does with a TokenID it did not issue, on a forwarded call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownTokens {
    /// Forwarded unchanged: sessions the legacy server issued keep working.
    #[default]
    Forward,
    /// Answered with the TokenID error, as an invalid session.
    Refuse,
}

/// One upstream server and the routing of its dialect.
///
/// Summit: `url` is the legacy `…/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall`
/// URL. TwoFactor and Capillary: `base_url` stands for `…/api/TwoFactor` or `…/auth/v1`,
/// and what follows it in the client's path is appended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upstream {
    /// The Summit endpoint's URL.
    pub url: Option<String>,
    /// TwoFactor and Capillary: the URL standing for `…/api/TwoFactor` or `…/auth/v1`.
    pub base_url: Option<String>,
    pub connect_timeout_ms: u64,
    /// From sending the request to the last byte of the answer.
    pub timeout_ms: u64,
    /// Forwarded requests waiting for an answer at once; more answer 503 at once.
    pub max_in_flight: usize,
    /// PEM file of extra root certificates (a private CA) for an https upstream.
    pub ca_file: Option<PathBuf>,
    /// Largest answer body passed back, in bytes; a larger one answers 502.
    pub max_answer_bytes: usize,
    /// Largest request body forwarded, in bytes (attachments travel in envelopes);
    /// what otpgate answers itself keeps `max_body_bytes`.
    pub max_request_bytes: usize,
    /// Consecutive failures (unreachable, timeout, invalid answer) that open the
    /// circuit: requests then fail fast with 503 for `breaker_pause_ms`, after which
    /// one request probes the upstream again.
    pub breaker_failures: u32,
    pub breaker_pause_ms: u64,
    /// Per name, overriding the default (what otpgate serves is local, the rest goes
    /// upstream): a ServiceName or `ServiceName:AuthType` (`"LoginApp:FORM" =
    /// "upstream"`), a TwoFactor operation, a Capillary route (`otp/generate`,
    /// `web/otp/validate`). Names compare without case.
    pub routes: BTreeMap<String, RouteTo>,
    /// Summit: the APIKey put in `_ProxyDetails` when a session of a user without an
    /// upstream key of their own is forwarded.
    pub service_api_key: Option<String>,
    /// Summit: TokenIDs otpgate did not issue on forwarded calls.
    pub unknown_tokens: UnknownTokens,
}

impl Upstream {
    /// Where to forward: `url` or `base_url`, whichever is set.
    pub fn address(&self) -> Option<&str> {
        self.url.as_deref().or(self.base_url.as_deref())
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            url: None,
            base_url: None,
            connect_timeout_ms: 2_000,
            timeout_ms: 30_000,
            max_in_flight: 256,
            ca_file: None,
            max_answer_bytes: 16 * 1024 * 1024,
            max_request_bytes: 4 * 1024 * 1024,
            breaker_failures: 5,
            breaker_pause_ms: 10_000,
            routes: BTreeMap::new(),
            service_api_key: None,
            unknown_tokens: UnknownTokens::Forward,
        }
    }
}
