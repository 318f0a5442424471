//! Sending one request on to an upstream server and bringing its answer back, as a
//! reverse proxy does: the client's body and end-to-end headers as they came, the
//! answer's status, Content-Type and body as they come. The target is always the
//! configured server: nothing in the request chooses another (no open proxy).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use reqwest::Url;
use tokio::sync::Semaphore;

use super::breaker::Breaker;
use crate::config::Upstream;
use crate::metrics::Metrics;

/// Headers that belong to one connection, never passed on (RFC 9110 §7.6.1), and
/// those otpgate sets itself.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    // The answer's body is passed back as bytes: asking for none but the identity
    // encoding keeps it readable whatever the client accepts.
    "accept-encoding",
    "host",
    "content-length",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// One upstream server.
pub struct Forwarder {
    client: reqwest::Client,
    url: Url,
    timeout: Duration,
    max_answer: usize,
    in_flight: Arc<Semaphore>,
    pub breaker: Breaker,
    /// Which legacy server this is, as a metrics label, and the metrics.
    name: &'static str,
    metrics: Arc<Metrics>,
}

/// What the upstream answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<Vec<u8>>,
    /// Set only when the upstream encoded the body although asked not to.
    pub content_encoding: Option<Vec<u8>>,
    pub body: Bytes,
}

impl Answer {
    /// The answer for the client: the upstream's status, Content-Type and body.
    pub fn into_response(self) -> actix_web::HttpResponse {
        let mut resp = actix_web::HttpResponse::build(self.status);
        use actix_web::http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
        for (name, value) in [
            (CONTENT_TYPE, self.content_type),
            (CONTENT_ENCODING, self.content_encoding),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
                resp.insert_header((name, v));
            }
        }
        resp.body(self.body)
    }
}

/// Why there is no answer to pass back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Connection refused, reset, DNS, TLS.
    Unreachable,
    /// Not an HTTP answer, or a broken body.
    Invalid,
    /// A redirect (other than 304), which is never followed.
    Redirect,
    TooLarge(usize),
    Timeout(Duration),
    /// Too many requests already waiting for the upstream.
    Busy,
    /// The circuit is open after repeated failures; how long it stays so.
    Open(Duration),
    /// The path would leave the configured URL.
    BadPath,
}

impl Failure {
    /// Whether it says the upstream is unwell (and counts toward opening the circuit).
    /// A redirect or a large answer is what one request asked for: a client could
    /// otherwise open the circuit for everyone.
    fn counts(&self) -> bool {
        matches!(
            self,
            Failure::Unreachable | Failure::Invalid | Failure::Timeout(_)
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Unreachable | Failure::Invalid | Failure::Redirect | Failure::TooLarge(_) => {
                StatusCode::BAD_GATEWAY
            }
            Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Busy | Failure::Open(_) => StatusCode::SERVICE_UNAVAILABLE,
            Failure::BadPath => StatusCode::NOT_FOUND,
        }
    }

    /// For the client: what happened, nothing of the upstream's internals.
    pub fn message(&self) -> String {
        match self {
            Failure::Unreachable => "The upstream server could not be reached.".into(),
            Failure::Invalid | Failure::Redirect => {
                "The upstream server sent an answer that is not valid.".into()
            }
            Failure::TooLarge(n) => {
                format!("The upstream server's answer is larger than the {n} bytes allowed.")
            }
            Failure::Timeout(t) => format!(
                "The upstream server did not answer within {} ms.",
                t.as_millis()
            ),
            Failure::Busy => {
                "Too many requests are waiting for the upstream server; try again shortly.".into()
            }
            Failure::Open(t) => format!(
                "The upstream server is failing; requests to it are refused for the next {} s.",
                t.as_secs().max(1)
            ),
            Failure::BadPath => "The path cannot be forwarded.".into(),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Unreachable => "unreachable",
            Failure::Invalid => "invalid_answer",
            Failure::Redirect => "redirect",
            Failure::TooLarge(_) => "answer_too_large",
            Failure::Timeout(_) => "timeout",
            Failure::Busy => "busy",
            Failure::Open(_) => "circuit_open",
            Failure::BadPath => "bad_path",
        }
    }
}

impl Forwarder {
    /// The forwarder of a configured upstream; the error names what is wrong.
    pub fn new(section: &str, up: &Upstream) -> Result<Option<Forwarder>, String> {
        let Some(url) = up.address() else {
            return Ok(None);
        };
        let key = if up.url.is_some() { "url" } else { "base_url" };
        let url = parse_base(url).map_err(|e| format!("upstream.{section}.{key}: {e}"))?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(up.connect_timeout_ms))
            .timeout(Duration::from_millis(up.timeout_ms))
            // A redirect is passed back to nobody: the upstream is the only target.
            .redirect(reqwest::redirect::Policy::none())
            // HTTP(S)_PROXY in the environment must not divert the traffic either.
            .no_proxy()
            .pool_max_idle_per_host(up.max_in_flight.min(1024))
            .tcp_nodelay(true);
        if let Some(ca) = &up.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                format!(
                    "upstream.{section}.ca_file: cannot read {}: {e}",
                    ca.display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                format!(
                    "upstream.{section}.ca_file: {} holds no PEM certificate",
                    ca.display()
                )
            })?;
            if certs.is_empty() {
                return Err(format!(
                    "upstream.{section}.ca_file: {} holds no PEM certificate",
                    ca.display()
                ));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("upstream.{section}: the HTTP client cannot start: {e}"))?;
        Ok(Some(Forwarder {
            client,
            url,
            timeout: Duration::from_millis(up.timeout_ms),
            max_answer: up.max_answer_bytes,
            in_flight: Arc::new(Semaphore::new(up.max_in_flight.max(1))),
            breaker: Breaker::new(
                up.breaker_failures,
                Duration::from_millis(up.breaker_pause_ms),
            ),
            name: crate::metrics::UNKNOWN,
            metrics: Metrics::off(),
        }))
    }

    /// Records its requests in `metrics` as those of `name`.
    pub fn set_metrics(&mut self, name: &'static str, metrics: Arc<Metrics>) {
        self.name = name;
        self.metrics = metrics;
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The URL a request goes to: the configured one, with `suffix` appended to its
    /// path and the client's query. The result is checked to be on the same origin
    /// and under the same path.
    pub fn target(&self, suffix: &str, query: &str) -> Result<Url, Failure> {
        target(&self.url, suffix, query)
    }

    /// Sends `body` to the upstream, with the client's headers; never retried.
    pub async fn send(
        &self,
        req: &HttpRequest,
        suffix: &str,
        body: Bytes,
    ) -> Result<Answer, Failure> {
        let started = Instant::now();
        let result = self.send_counted(req, suffix, body).await;
        let failure = result.as_ref().err().map(Failure::kind);
        self.metrics
            .upstream(self.name, started.elapsed().as_secs_f64(), failure);
        result
    }

    async fn send_counted(
        &self,
        req: &HttpRequest,
        suffix: &str,
        body: Bytes,
    ) -> Result<Answer, Failure> {
        let url = self.target(suffix, req.query_string())?;
        let permit = self.breaker.admit().map_err(Failure::Open)?;
        let Ok(_slot) = self.in_flight.clone().try_acquire_owned() else {
            // Not the upstream's fault: the permit goes back unreported.
            return Err(Failure::Busy);
        };
        let started = Instant::now();
        let result = self.exchange(req, url, body).await;
        match &result {
            Ok(a) => {
                permit.succeeded();
                tracing::debug!(
                    status = a.status.as_u16(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "forwarded"
                );
            }
            Err(f) => {
                if f.counts() {
                    permit.failed();
                } else {
                    permit.succeeded();
                }
                tracing::warn!(
                    failure = f.kind(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "forwarding failed"
                );
            }
        }
        result
    }

    async fn exchange(&self, req: &HttpRequest, url: Url, body: Bytes) -> Result<Answer, Failure> {
        let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
            .map_err(|_| Failure::BadPath)?;
        let mut out = self.client.request(method, url);
        let hop: Vec<String> = connection_tokens(req);
        for (name, value) in req.headers() {
            let n = name.as_str();
            if NOT_FORWARDED.contains(&n) || hop.iter().any(|h| h == n) {
                continue;
            }
            out = out.header(n, value.as_bytes());
        }
        // What this connection was, not what the client's own X-Forwarded-* claim.
        let scheme = if req.app_config().secure() {
            "https"
        } else {
            "http"
        };
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_else(|| req.app_config().host().as_bytes().to_vec());
        let peer = req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let xff = match req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prior) if !prior.trim().is_empty() => format!("{}, {peer}", prior.trim()),
            _ => peer,
        };
        out = out
            .header("x-forwarded-for", xff)
            .header("x-forwarded-proto", scheme)
            .header("x-forwarded-host", host.as_slice());
        let mut resp = out.body(body).send().await.map_err(|e| self.classify(&e))?;
        let status = StatusCode::from_u16(resp.status().as_u16()).map_err(|_| Failure::Invalid)?;
        if status.is_informational() {
            return Err(Failure::Invalid);
        }
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            return Err(Failure::Redirect);
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_answer as u64)
        {
            return Err(Failure::TooLarge(self.max_answer));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.as_bytes().to_vec());
        let content_encoding = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .map(|v| v.as_bytes().to_vec());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(&e))? {
            if body.len() + chunk.len() > self.max_answer {
                return Err(Failure::TooLarge(self.max_answer));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            content_type,
            content_encoding,
            body: Bytes::from(body),
        })
    }

    fn classify(&self, e: &reqwest::Error) -> Failure {
        if e.is_connect() {
            // A connect timeout too: nothing answered at all.
            Failure::Unreachable
        } else if e.is_timeout() {
            Failure::Timeout(self.timeout)
        } else {
            Failure::Invalid
        }
    }
}

/// Header names the client's Connection header lists: hop-by-hop too.
fn connection_tokens(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all("connection")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_base(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("'{text}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{text}' must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{text}' has no host"));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "'{text}' must not carry a query, a fragment or credentials"
        ));
    }
    Ok(url)
}

fn target(base: &Url, suffix: &str, query: &str) -> Result<Url, Failure> {
    // The suffix is what followed the dialect's own path in the client's request:
    // `_JSON` or `/…` (or nothing). A segment that climbs out (`..`, `..;`, encoded
    // dots, slashes or backslashes), path parameters, or anything that is not a plain
    // path, is refused.
    let lower = suffix.to_ascii_lowercase();
    let plain = suffix.is_empty() || suffix.starts_with('/') || lower.starts_with("_json");
    if !plain
        || ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e))
        || suffix.contains(['?', '#', ';', '\\'])
        || suffix
            .split('/')
            .any(|seg| seg == "." || seg.starts_with(".."))
    {
        return Err(Failure::BadPath);
    }
    let mut url = base.clone();
    let base_path = base.path().trim_end_matches('/');
    let path = format!("{base_path}{suffix}");
    url.set_path(if path.is_empty() { "/" } else { &path });
    url.set_query((!query.is_empty()).then_some(query));
    let p = url.path();
    let under = p == base_path
        || p.strip_prefix(base_path).is_some_and(|rest| {
            rest.starts_with('/') || rest.to_ascii_lowercase().starts_with("_json")
        });
    if url.origin() != base.origin() || !(under || base_path.is_empty()) {
        return Err(Failure::BadPath);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_stays_on_the_configured_server() {
        let base = parse_base("https://legacy.example/Summit/CommonWS_JsonObjCall").unwrap();
        assert_eq!(
            target(&base, "_JSON", "a=1").unwrap().as_str(),
            "https://legacy.example/Summit/CommonWS_JsonObjCall_JSON?a=1"
        );
        assert_eq!(
            target(&base, "", "").unwrap().as_str(),
            "https://legacy.example/Summit/CommonWS_JsonObjCall"
        );
        let tf = parse_base("http://10.0.0.5:8080/api/TwoFactor").unwrap();
        assert_eq!(
            target(&tf, "/SomeOperation", "").unwrap().as_str(),
            "http://10.0.0.5:8080/api/TwoFactor/SomeOperation"
        );
        for climbing in [
            "/..;/..;/actuator/env",
            "_Internal/Op",
            "/a;jsessionid=1",
            "/%2e%2e/x",
        ] {
            assert_eq!(
                target(&tf, climbing, ""),
                Err(Failure::BadPath),
                "{climbing}"
            );
        }
        for evil in [
            "/../../admin",
            "/./x",
            "@evil.example/x",
            "//evil.example/x",
            "/x?u=http://evil",
            "\\\\evil",
            "/..;/..;/actuator/env",
            "_Internal/Op",
            "/a;jsessionid=1",
        ] {
            match target(&tf, evil, "") {
                Err(Failure::BadPath) => {}
                Ok(u) => assert_eq!(u.host_str(), Some("10.0.0.5"), "{evil} -> {u}"),
                Err(other) => panic!("{evil}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_plain_http_urls_are_accepted_as_upstreams() {
        assert!(parse_base("ftp://x/y").is_err());
        assert!(parse_base("http://user:pw@x/y").is_err());
        assert!(parse_base("http://x/y?z=1").is_err());
        assert!(parse_base("https://:secret@x/y").is_err());
        assert!(parse_base("not a url").is_err());
        assert!(parse_base("https://x:8443/a").is_ok());
    }
}
