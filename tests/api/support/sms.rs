//! A fake HTTP SMS API on loopback that keeps what it receives, and fails a given
//! number of times before it accepts.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use otpgate::config::{HttpSmsSettings, ProviderSettings};
use serde_json::{Value, json};

use super::first_digits;

/// One request as the SMS endpoint received it.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    pub method: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl SmsRequest {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The code in a JSON request's text.
    pub fn code(&self) -> String {
        first_digits(self.json()["text"].as_str().unwrap_or(""))
    }

    /// A form-encoded body's fields.
    pub fn form(&self) -> BTreeMap<String, String> {
        self.body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (form_decode(k), form_decode(v)))
            .collect()
    }
}

fn form_decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

struct SmsState {
    /// Requests still to be refused (503, echoing what they were sent).
    failures_left: AtomicUsize,
    /// Every request is refused with 400 and the code spelled with spaces.
    spells_the_code: bool,
    received: Mutex<Vec<SmsRequest>>,
    /// A number whose messages get no answer until `release`.
    held: Mutex<Option<String>>,
    released: tokio::sync::watch::Sender<bool>,
}

/// An HTTP SMS API: answers 503 while it has failures left, then 201 with
/// `{"sid": "SM<n>", "status": "queued"}`.
#[derive(Clone)]
pub struct SmsEndpoint {
    pub url: String,
    state: Arc<SmsState>,
}

impl SmsEndpoint {
    pub async fn start(failures: usize) -> SmsEndpoint {
        Self::serve(failures, false).await
    }

    /// An API that refuses every message with 400 and echoes its code spelled with
    /// spaces: `{"spaced": "2 9 4 5 7 0"}`.
    pub async fn spelling_the_code() -> SmsEndpoint {
        Self::serve(0, true).await
    }

    async fn serve(failures: usize, spells_the_code: bool) -> SmsEndpoint {
        use actix_web::{HttpRequest, HttpResponse, web};
        let state = Arc::new(SmsState {
            failures_left: AtomicUsize::new(failures),
            spells_the_code,
            received: Mutex::new(Vec::new()),
            held: Mutex::new(None),
            released: tokio::sync::watch::channel(false).0,
        });
        let shared = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .default_service(web::to(
                    |req: HttpRequest, body: web::Bytes, state: web::Data<SmsState>| async move {
                        let request = SmsRequest {
                            method: req.method().to_string(),
                            query: req.query_string().to_string(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.to_string(), v.to_str().unwrap_or_default().to_string())
                                })
                                .collect(),
                            body: String::from_utf8_lossy(&body).to_string(),
                        };
                        let n = {
                            let mut all = state.received.lock().unwrap();
                            all.push(request.clone());
                            all.len()
                        };
                        let held = state.held.lock().unwrap().clone();
                        if held.is_some_and(|to| request.json()["to"] == to.as_str()) {
                            let mut released = state.released.subscribe();
                            let _ = released.wait_for(|r| *r).await;
                        }
                        if state.spells_the_code {
                            let spaced: Vec<String> =
                                request.code().chars().map(String::from).collect();
                            return HttpResponse::BadRequest()
                                .json(json!({"spaced": spaced.join(" ")}));
                        }
                        let failing = state
                            .failures_left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                            .is_ok();
                        if failing {
                            HttpResponse::ServiceUnavailable()
                                .json(json!({"error": "try later", "request": request.body}))
                        } else {
                            HttpResponse::Created()
                                .json(json!({"sid": format!("SM{n}"), "status": "queued"}))
                        }
                    },
                ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        SmsEndpoint {
            url: format!("http://127.0.0.1:{port}/2010-04-01/Accounts/AC1/Messages.json"),
            state,
        }
    }

    pub fn received(&self) -> Vec<SmsRequest> {
        self.state.received.lock().unwrap().clone()
    }

    /// The Idempotency-Key of every request received, sorted.
    pub fn idempotency_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .received()
            .iter()
            .map(|r| r.headers["idempotency-key"].clone())
            .collect();
        keys.sort();
        keys
    }

    /// Messages to `to` (E.164) get no answer until [`SmsEndpoint::release`].
    pub fn hold(&self, to: &str) {
        *self.state.held.lock().unwrap() = Some(to.to_string());
    }

    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    pub fn fail_next(&self, n: usize) {
        self.state.failures_left.store(n, Ordering::SeqCst);
    }
}

/// A generic JSON SMS API, as in docs/delivery.md.
pub fn json_provider(name: &str, endpoint: &SmsEndpoint) -> ProviderSettings {
    ProviderSettings::HttpSms(HttpSmsSettings {
        name: name.into(),
        url: endpoint.url.clone(),
        method: "POST".into(),
        headers: BTreeMap::from([
            ("Authorization".into(), "Bearer test-token".into()),
            ("Idempotency-Key".into(), "{id}".into()),
        ]),
        basic_auth: None,
        query: BTreeMap::new(),
        encoding: "json".into(),
        body: Some(json!({"to": "{to}", "text": "{text}", "from": "{sender}"})),
        sender: "OTPGTE".into(),
        success_status: vec![],
        success_field: Some("/status".into()),
        success_values: vec!["queued".into()],
        message_id_field: Some("/sid".into()),
        timeout_seconds: 5,
    })
}
