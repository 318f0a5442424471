//! The database going away: readiness answers within a second, requests get their
//! 503 in the dialect's shape without waiting out the pool's timeout, and everything
//! works again once the database is back. PostgreSQL is reached through a proxy the
//! test can cut (its port then refuses connections) or sever (its connections drop,
//! new ones are accepted: as after a server restart or a firewall's idle timeout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use otpgate::db::schema::challenges;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::*;

/// A TCP proxy to the PostgreSQL server; `cut` closes its port and every connection,
/// `sever` closes every connection and keeps the port open.
struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    severed: tokio::sync::watch::Sender<u64>,
    links: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(addr: SocketAddr, upstream: String) -> Proxy {
        let listener = TcpListener::bind(addr).await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let (severed, sever_rx) = tokio::sync::watch::channel(0u64);
        let links = Arc::new(AtomicUsize::new(0));
        let opened = links.clone();
        let accept = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    break;
                };
                opened.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                let mut sever = sever_rx.clone();
                sever.mark_unchanged();
                links.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = sever.changed() => {}
                        }
                    }
                });
            }
        });
        Proxy {
            addr,
            accept,
            severed,
            links,
        }
    }

    /// Drops every connection open through the proxy, without a word to either end
    /// (their sockets are closed); the port stays open for new ones.
    fn sever(&self) {
        self.severed.send_modify(|n| *n += 1);
    }

    /// How many connections were ever opened through the proxy.
    fn opened(&self) -> usize {
        self.links.load(Ordering::SeqCst)
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
    let Gatewayed {
        app, port, handle, ..
    } = start_gateway(settings).await;
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

/// Every connection the gateway holds dies at once (the database restarted, a
/// firewall forgot them). The next requests find their connection dead before they
/// commit anything, and are answered as if nothing happened, on new connections: no
/// error reaches a client, nothing is done twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_a_connection_that_died_are_run_again_on_a_new_one() {
    if postgres_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), server_of(&db.url)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&through(&db.url, proxy.addr), dir.path());
    settings.pool_size = 4;
    // The dispatcher only runs when a code is issued, so that the requests, not the
    // dispatcher, are the first to meet the dead connections.
    settings.delivery.poll_interval_ms = 3_600_000;
    settings.validate().unwrap();
    let Gatewayed {
        app, port, handle, ..
    } = start_gateway(settings).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}{ENDPOINT}");
    let ask = |email: &str| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(login_otp_request(email, "d").to_string())
            .send()
    };
    // Two requests at once, twice: the pool holds more than one connection.
    for round in 0..2 {
        let (a, b) = tokio::join!(
            ask(&format!("warm{round}a@example.com")),
            ask(&format!("warm{round}b@example.com"))
        );
        assert_eq!(a.unwrap().status(), 200);
        assert_eq!(b.unwrap().status(), 200);
    }
    // The dispatcher has sent the warm-up codes and gone idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = proxy.opened();

    for round in 0..3 {
        proxy.sever();
        // Let the severed sockets close before the gateway next writes to them.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let email = format!("after{round}@example.com");
        let a = ask(&email).await.unwrap();
        assert_eq!(a.status(), 200, "round {round}");
        let v: serde_json::Value = a.json().await.unwrap();
        assert_eq!(v["Errors"], "", "round {round}: {v}");
        let sent = &v["OutputObject"]["OTP_Communication"][0];
        assert!(sent["TransactionID"].is_string(), "round {round}: {v}");
    }
    assert!(
        proxy.opened() > before,
        "the gateway opened new connections after losing its own"
    );
    // Each request was done once: one code issued per address asked for.
    let issued = app
        .db
        .run(|c| Ok(challenges::table.count().get_result::<i64>(c)?))
        .await
        .unwrap();
    assert_eq!(issued, 4 + 3);
    handle.stop(false).await;
    drop(app);
}
