//! Clients that hold connections: a body that never finishes is answered 408 in the
//! dialect's shape and its connection closed; thousands of them leave the gateway
//! answering; idle keep-alive connections are closed; the connection cap holds new
//! clients back until one closes.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both;
use crate::support::*;

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Sends the headers of a POST promising 100 bytes, and one of them.
async fn start_slow_post(app: &TestApp, path: &str, content_type: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr(app)).await.expect("connects");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.expect("sent");
    s
}

/// Everything the server sends until it closes the connection (None if it does not
/// within `wait`).
async fn read_to_close(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut out = Vec::new();
    tokio::time::timeout(wait, s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

async fn a_body_that_never_finishes_is_answered_408_in_the_dialects_shape(b: Backend) {
    let app = spawn_with(b, |s| s.body_timeout_seconds = 1).await;
    let text = "The request body did not arrive in time.";

    let mut s = start_slow_post(&app, "/auth/v1/otp/validate", "application/json").await;
    let answer = read_to_close(&mut s, Duration::from_secs(20))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let v: Value = serde_json::from_str(body_of(&answer)).expect("JSON");
    assert_eq!(
        v,
        json!({"status": {"success": false, "code": 408, "message": text}})
    );

    let mut s = start_slow_post(&app, ENDPOINT, "application/json").await;
    let answer = read_to_close(&mut s, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let v: Value = serde_json::from_str(body_of(&answer)).expect("JSON");
    assert_eq!(v["Errors"], text, "{answer}");

    let path = "/customerservice/api/TwoFactor/CreateTwoFactorSmsOtp";
    let mut s = start_slow_post(&app, path, "application/xml").await;
    let answer = read_to_close(&mut s, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        body_of(&answer).contains("<CreateTwoFactorSmsOtpResponse")
            && body_of(&answer).contains(text),
        "{answer}"
    );

    // A byte now and then does not keep it alive either.
    let mut s = start_slow_post(&app, "/auth/v1/otp/generate", "application/json").await;
    let dribble = async {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if s.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    dribble.await;
    let answer = read_to_close(&mut s, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

async fn the_gateway_answers_while_two_thousand_slow_clients_wait(b: Backend) {
    let app = spawn_with(b, |s| s.body_timeout_seconds = 60).await;
    let mut slow = Vec::with_capacity(2000);
    for i in 0..2000 {
        let path = if i % 2 == 0 {
            "/auth/v1/otp/validate"
        } else {
            ENDPOINT
        };
        slow.push(start_slow_post(&app, path, "application/json").await);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let health = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(health.status(), 200);
    app.vishnu().await;
    let a = app
        .summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))
        .await;
    assert_eq!(a.errors(), "", "{}", a.text);
    drop(slow);
}

async fn idle_keep_alive_connections_are_closed(b: Backend) {
    let app = spawn_with(b, |s| s.keep_alive_seconds = 1).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut s, Duration::from_secs(20))
        .await
        .expect("closed once idle");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

async fn the_connection_cap_holds_new_clients_until_one_closes(b: Backend) {
    let app = spawn_with(b, |s| {
        s.max_connections = 4;
        s.body_timeout_seconds = 60;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(start_slow_post(&app, "/auth/v1/otp/validate", "application/json").await);
    }
    // Let the server take them in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let url = format!("{}/healthz", app.base);
    assert!(
        quick.get(&url).send().await.is_err(),
        "a fifth connection was served while four were open"
    );
    drop(held);
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let health = patient
        .get(&url)
        .send()
        .await
        .expect("served once they closed");
    assert_eq!(health.status(), 200);
}

both!(
    a_body_that_never_finishes_is_answered_408_in_the_dialects_shape,
    the_gateway_answers_while_two_thousand_slow_clients_wait,
    idle_keep_alive_connections_are_closed,
    the_connection_cap_holds_new_clients_until_one_closes,
);
