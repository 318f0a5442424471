//! SMS through an HTTP API, described entirely by configuration: method, URL, query,
//! headers, a JSON or form body with `{to}`, `{to_digits}`, `{text}`, `{sender}` and
//! `{id}` filled in, and what counts as accepted (the status, and optionally a field
//! of the JSON answer). Enough for Twilio, Vonage, Plivo, MessageBird and the many
//! "POST a JSON object" gateways without code.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::templates::fill;
use super::{Outgoing, Receipt, Transport};
use crate::config::HttpSmsSettings;

pub struct HttpSmsTransport {
    name: String,
    client: reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    s: HttpSmsSettings,
}

impl HttpSmsTransport {
    pub fn new(s: &HttpSmsSettings) -> Result<HttpSmsTransport, String> {
        let url = reqwest::Url::parse(&s.url).map_err(|e| format!("url: {e}"))?;
        let method = reqwest::Method::from_bytes(s.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("method: '{}' is not an HTTP method", s.method))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(s.timeout_seconds))
            .connect_timeout(Duration::from_secs(s.timeout_seconds.min(10)))
            .user_agent(concat!("otpgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client set-up failed: {e}"))?;
        Ok(HttpSmsTransport {
            name: s.name.clone(),
            client,
            method,
            url,
            s: s.clone(),
        })
    }

    fn host(&self) -> &str {
        self.url.host_str().unwrap_or("the provider")
    }

    /// Why a request that got no answer failed, without the URL (its query may hold
    /// the destination or a key).
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!(
                "no answer from {} within {} s",
                self.host(),
                self.s.timeout_seconds
            );
        }
        let mut cause = String::new();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        let what = if e.is_connect() {
            "cannot connect to"
        } else {
            "request failed to"
        };
        if cause.is_empty() {
            format!("{what} {}", self.host())
        } else {
            format!("{what} {}: {cause}", self.host())
        }
    }
}

/// Fills the placeholders of every string in a JSON value.
fn fill_value(v: &Value, values: &[(&str, &str)]) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, values)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_value(x, values)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_value(x, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Transport for HttpSmsTransport {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Receipt, String>> {
        Box::pin(async move {
            let to = m.to.trim();
            let to_digits: String = to.chars().filter(char::is_ascii_digit).collect();
            let sender = m.sender.as_deref().unwrap_or(&self.s.sender);
            let values = [
                ("to", to),
                ("to_digits", to_digits.as_str()),
                ("text", m.message.text.as_str()),
                ("sender", sender),
                ("id", m.id.as_str()),
            ];
            let mut req = self.client.request(self.method.clone(), self.url.clone());
            if !self.s.query.is_empty() {
                let query: Vec<(&str, String)> = self
                    .s
                    .query
                    .iter()
                    .map(|(k, v)| (k.as_str(), fill(v, &values)))
                    .collect();
                req = req.query(&query);
            }
            for (k, v) in &self.s.headers {
                req = req.header(k.as_str(), fill(v, &values));
            }
            if let Some(auth) = &self.s.basic_auth {
                req = req.basic_auth(&auth.username, Some(&auth.password));
            }
            if let Some(body) = &self.s.body {
                let body = fill_value(body, &values);
                req = if self.s.encoding == "form" {
                    let pairs: Vec<(String, String)> = body
                        .as_object()
                        .map(|o| o.iter().map(|(k, v)| (k.clone(), plain(v))).collect())
                        .unwrap_or_default();
                    req.form(&pairs)
                } else {
                    req.json(&body)
                };
            }
            let answer = req.send().await.map_err(|e| self.describe(&e))?;
            let status = answer.status();
            let bytes = answer.bytes().await.map_err(|e| self.describe(&e))?;
            let json: Option<Value> = serde_json::from_slice(&bytes).ok();
            let accepted = if self.s.success_status.is_empty() {
                status.is_success()
            } else {
                self.s.success_status.contains(&status.as_u16())
            };
            let excerpt = || {
                let text = String::from_utf8_lossy(&bytes);
                let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                // Long enough for the provider's reason; the dispatcher masks what it
                // echoes and shortens it. A number cut in two (`2 9 4` of `2 9 4 5 7 0`)
                // would escape the masking, so the excerpt never ends inside one.
                let cut: String = text.chars().take(1000).collect();
                let cut = if cut.len() < text.len() {
                    cut.trim_end_matches(super::redact::continues_a_token)
                } else {
                    &cut
                };
                if cut.is_empty() {
                    String::new()
                } else {
                    format!(": {cut}")
                }
            };
            if !accepted {
                return Err(format!(
                    "{} answered HTTP {}{}",
                    self.host(),
                    status.as_u16(),
                    excerpt()
                ));
            }
            if let Some(pointer) = self.s.success_field.as_deref().filter(|p| !p.is_empty()) {
                let field = json.as_ref().and_then(|j| j.pointer(pointer));
                let ok = match field {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                    Some(v) if self.s.success_values.is_empty() => !plain(v).is_empty(),
                    Some(v) => self.s.success_values.iter().any(|want| *want == plain(v)),
                };
                if !ok {
                    let got = field
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "missing".into());
                    return Err(format!(
                        "{} answered HTTP {} but {pointer} is {got}{}",
                        self.host(),
                        status.as_u16(),
                        excerpt()
                    ));
                }
            }
            let reference = self
                .s
                .message_id_field
                .as_deref()
                .and_then(|p| json.as_ref()?.pointer(p))
                .map(plain)
                .filter(|r| !r.is_empty())
                .map(|r| r.chars().take(200).collect());
            Ok(Receipt { reference })
        })
    }
}
