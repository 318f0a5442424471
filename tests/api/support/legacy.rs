//! A fake legacy server on loopback: it answers the Summit envelope (or anything else)
//! for any ServiceName or path, keeps what it received, and can be told to be slow,
//! to answer garbage, a huge body or a redirect. `down_url` is a port nobody listens on.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// One request as the legacy server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names in lower case; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How the server answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with [`LegacyServer::ANSWER`] as `application/json; charset=utf-8`.
    Envelope,
    /// The given status, Content-Type and body.
    Fixed(u16, &'static str, Vec<u8>),
    /// Waits this long, then answers the envelope.
    Slow(Duration),
    /// A 302 to another address.
    Redirect(String),
}

struct State {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
}

#[derive(Clone)]
pub struct LegacyServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<State>,
}

impl LegacyServer {
    /// The envelope the server answers, byte for byte (its spacing is its own).
    pub const ANSWER: &str = r#"{"Errors":"","Message":"answered by the legacy server","Output":"","TokenID":null,"OrgID":0,"OutputObject":{"Incident":  4711},"OutputID":0,"Input":null}"#;

    pub async fn start() -> LegacyServer {
        use actix_web::{HttpRequest, HttpResponse, web};
        let state = Arc::new(State {
            behaviour: Mutex::new(Behaviour::Envelope),
            received: Mutex::new(Vec::new()),
        });
        let shared = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(
                    |req: HttpRequest, body: web::Bytes, state: web::Data<State>| async move {
                        let mut headers: BTreeMap<String, String> = BTreeMap::new();
                        for (k, v) in req.headers() {
                            let v = String::from_utf8_lossy(v.as_bytes()).to_string();
                            headers
                                .entry(k.as_str().to_string())
                                .and_modify(|e| {
                                    e.push_str(", ");
                                    e.push_str(&v)
                                })
                                .or_insert(v);
                        }
                        state.received.lock().unwrap().push(Received {
                            method: req.method().to_string(),
                            path: req.path().to_string(),
                            query: req.query_string().to_string(),
                            headers,
                            body: body.to_vec(),
                        });
                        let behaviour = state.behaviour.lock().unwrap().clone();
                        let envelope = || {
                            HttpResponse::Ok()
                                .content_type("application/json; charset=utf-8")
                                .body(LegacyServer::ANSWER)
                        };
                        match behaviour {
                            Behaviour::Envelope => envelope(),
                            Behaviour::Fixed(status, ct, body) => HttpResponse::build(
                                actix_web::http::StatusCode::from_u16(status).unwrap(),
                            )
                            .content_type(ct)
                            .body(body),
                            Behaviour::Slow(d) => {
                                tokio::time::sleep(d).await;
                                envelope()
                            }
                            Behaviour::Redirect(to) => HttpResponse::Found()
                                .insert_header(("location", to))
                                .finish(),
                        }
                    },
                ))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        LegacyServer {
            base: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    pub fn set(&self, b: Behaviour) {
        *self.state.behaviour.lock().unwrap() = b;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The one request received; fails when there were more or none.
    pub fn only(&self) -> Received {
        let all = self.received();
        assert_eq!(
            all.len(),
            1,
            "the legacy server received {} requests",
            all.len()
        );
        all.into_iter().next().unwrap()
    }
}

/// A URL on loopback where nothing listens.
pub fn down_url(path: &str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}{path}")
}

/// A server that reads a request and answers bytes that are not HTTP; returns its URL.
pub async fn garbage_url(path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"SSH-2.0-OpenSSH_9.2 this is not HTTP\r\n\r\n")
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}{path}")
}

/// An https front for `server` on loopback, with the test CA's `localhost` certificate
/// (fixtures/tls): it terminates TLS and passes the bytes on. Returns its base URL,
/// `https://localhost:PORT`.
pub async fn https_front(server: &LegacyServer) -> String {
    let plain = server.base.trim_start_matches("http://").to_string();
    let acceptor = super::smtp::tls_acceptor();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (acceptor, plain) = (acceptor.clone(), plain.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut back) = tokio::net::TcpStream::connect(&plain).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
                }
            });
        }
    });
    format!("https://localhost:{port}")
}
