//! The database going away: readiness answers within a second, requests get their
//! 503 in the dialect's shape without waiting out the pool's timeout, and everything
//! works again once the database is back. PostgreSQL is reached through a proxy the
//! test can cut (its port then refuses connections).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::*;

/// A TCP proxy to the PostgreSQL server; `cut` closes its port and every connection.
struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(addr: SocketAddr, upstream: String) -> Proxy {
        let listener = TcpListener::bind(addr).await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    break;
                };
                let upstream = upstream.clone();
                links.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Proxy { addr, accept }
    }

    /// Closes the port and every connection through it (the JoinSet of links is
    /// dropped with the accepting task, which aborts them).
    async fn cut(self) -> SocketAddr {
        self.accept.abort();
        let _ = self.accept.await;
        self.addr
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let at = url
        .find('@')
        .map_or(url.find("://").unwrap() + 3, |i| i + 1);
    let rest = &url[at..];
    let end = rest.find('/').unwrap_or(rest.len());
    format!("{}{addr}{}", &url[..at], &rest[end..])
}

fn server_of(url: &str) -> String {
    let at = url
        .find('@')
        .map_or(url.find("://").unwrap() + 3, |i| i + 1);
    let rest = &url[at..];
    rest[..rest.find('/').unwrap_or(rest.len())].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_reported_at_once_and_comes_back() {
    if postgres_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let upstream = server_of(&db.url);
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(&through(&db.url, proxy.addr), dir.path());
    settings.validate().unwrap();
    let Gatewayed { app, port, handle } = start_gateway(settings).await;
    let base = format!("http://127.0.0.1:{port}");
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let ready = quick.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let addr = proxy.cut().await;
    // A request needing the database gets its 503 in the envelope, without waiting
    // out the pool's ten seconds (the client would give up after three).
    let body = login_otp_request("someone@example.com", "d").to_string();
    let ask = || {
        quick
            .post(format!("{base}{ENDPOINT}"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let a = ask().await.expect("answered while the database is down");
    assert_eq!(a.status(), 503);
    let v: serde_json::Value = a.json().await.unwrap();
    assert_eq!(v["Errors"], "The service is busy. Please try again.");
    assert_eq!(ask().await.expect("answered again").status(), 503);
    // Readiness says so within its second.
    let ready = quick
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readiness answers while the database is down");
    assert_eq!(ready.status(), 503);

    // Back again: the same address, the same answers as before.
    let _proxy = Proxy::start(addr, upstream).await;
    eventually(Duration::from_secs(30), || async {
        match quick.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let a = ask().await.unwrap();
    assert_eq!(a.status(), 200);
    handle.stop(false).await;
    drop(app);
}
