//! The legacy servers otpgate stands in front of. Each dialect decides, per request,
//! whether it answers itself, forwards or refuses ([`routes`]); forwarding
//! ([`forward`]) is the same for all of them: the request as it came, to the one
//! configured server, with a cap on requests in flight and a circuit breaker.
//!
//! This layer knows HTTP and the settings, and nothing of the dialects or the core.

pub mod breaker;
pub mod forward;
pub mod routes;

use crate::config::{UnknownTokens, Upstream, UpstreamSettings};

pub use self::forward::{Answer, Failure, Forwarder};
pub use self::routes::{RouteTo, Routes};

/// One dialect's upstream: where it forwards (if anywhere) and its routing table.
pub struct Side {
    pub forwarder: Option<Forwarder>,
    pub routes: Routes,
    pub service_api_key: Option<String>,
    pub unknown_tokens: UnknownTokens,
    pub max_request_bytes: usize,
}

impl Side {
    fn new(section: &str, up: &Upstream) -> Result<Side, String> {
        Ok(Side {
            forwarder: Forwarder::new(section, up)?,
            routes: Routes::new(&up.routes),
            service_api_key: up.service_api_key.clone().filter(|k| !k.trim().is_empty()),
            unknown_tokens: up.unknown_tokens,
            max_request_bytes: up.max_request_bytes,
        })
    }

    /// The largest body to read before knowing where a request goes: forwarded ones
    /// may be larger than what otpgate answers itself.
    pub fn body_limit(&self, own: usize) -> usize {
        match self.forwarder {
            Some(_) => own.max(self.max_request_bytes),
            None => own,
        }
    }

    /// Where a request goes (see [`Routes::decide`]).
    pub fn decide(&self, names: &[&str], served: bool) -> RouteTo {
        self.routes.decide(names, served, self.forwarder.is_some())
    }
}

/// Every dialect's upstream, shared by the HTTP workers.
pub struct Upstreams {
    pub summit: Side,
    pub twofactor: Side,
    pub capillary: Side,
}

impl Upstreams {
    pub fn from_settings(s: &UpstreamSettings) -> Result<Upstreams, String> {
        Ok(Upstreams {
            summit: Side::new("summit", &s.summit)?,
            twofactor: Side::new("twofactor", &s.twofactor)?,
            capillary: Side::new("capillary", &s.capillary)?,
        })
    }

    /// The same upstreams, recording their requests in `metrics`.
    pub fn with_metrics(mut self, metrics: &std::sync::Arc<crate::metrics::Metrics>) -> Upstreams {
        for (name, side) in self.sides_mut() {
            if let Some(f) = &mut side.forwarder {
                f.set_metrics(name, metrics.clone());
            }
        }
        self
    }

    fn sides_mut(&mut self) -> [(&'static str, &mut Side); 3] {
        [
            ("summit", &mut self.summit),
            ("twofactor", &mut self.twofactor),
            ("capillary", &mut self.capillary),
        ]
    }

    /// Each configured legacy server's name and whether its circuit is open now.
    pub fn circuits(&self) -> Vec<(&'static str, bool)> {
        [&self.summit, &self.twofactor, &self.capillary]
            .into_iter()
            .filter_map(|s| s.forwarder.as_ref())
            .map(|f| (f.name(), f.breaker.is_open()))
            .collect()
    }
}

/// Forwards a request whose body has not been read yet (the dialect has no need to
/// look into it): the body is read under `max_request_bytes`, then sent on. The error is the
/// status and text the dialect answers in its own shape.
pub async fn relay(
    req: &actix_web::HttpRequest,
    payload: actix_web::web::Payload,
    side: &Side,
    suffix: &str,
    settings: &crate::config::Settings,
) -> Result<actix_web::HttpResponse, (actix_web::http::StatusCode, String)> {
    let limit = side.max_request_bytes;
    let Some(forwarder) = &side.forwarder else {
        return Err((
            actix_web::http::StatusCode::NOT_FOUND,
            "No upstream server is configured.".into(),
        ));
    };
    let limits = crate::wire::BodyLimits::new(limit, settings.body_timeout_seconds);
    let body = crate::wire::read_body(req, payload, limits)
        .await
        .map_err(|e| e.answer(limit))?;
    let started = std::time::Instant::now();
    let result = forwarder.send(req, suffix, body).await;
    tracing::info!(
        path = %req.path(),
        outcome = "forwarded",
        status = result.as_ref().map_or_else(|f| f.status(), |a| a.status).as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "forwarded request"
    );
    result
        .map(Answer::into_response)
        .map_err(|f| (f.status(), f.message()))
}

/// What follows `area` (compared without case) in a path, as the client wrote it.
pub fn after<'a>(path: &'a str, area: &str) -> &'a str {
    let lower = path.to_ascii_lowercase();
    match lower.rfind(&area.to_ascii_lowercase()) {
        Some(i) => &path[i + area.len()..],
        None => "",
    }
}
