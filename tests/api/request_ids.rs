//! Request ids: every answer carries one, the client's own when it is a sane token.

use std::collections::HashSet;

use serde_json::json;

use crate::both;
use crate::support::*;

/// Answers of every kind (a dialect's answer, a 404, the gateway's own routes) carry a
/// new id each when the client sent none.
async fn every_answer_carries_a_new_request_id(b: Backend) {
    let app = spawn(b).await;
    let mut seen = HashSet::new();
    let answers = [
        app.summit(json!({"ServiceName": "NoSuchService"})).await,
        app.post_json("/auth/v1/otp/validate", &json!({})).await,
        app.post("/no/such/path", None, "").await,
        app.request(reqwest::Method::GET, "/healthz", &[], String::new())
            .await,
    ];
    for a in answers {
        let id = a
            .request_id
            .unwrap_or_else(|| panic!("no X-Request-Id: {}", a.text));
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert!(seen.insert(id), "ids are not reused");
    }
}

/// A sane id from the client is kept and sent back; anything else (too long, spaces,
/// markup, control characters) is replaced by a new one.
async fn a_clients_sane_request_id_is_kept_and_a_hostile_one_replaced(b: Backend) {
    let app = spawn(b).await;
    let ask = |id: String| {
        let app = &app;
        async move {
            app.request(
                reqwest::Method::GET,
                "/healthz",
                &[("x-request-id", Some(id.as_str()))],
                String::new(),
            )
            .await
            .request_id
            .unwrap()
        }
    };
    for sane in ["4bf92f3577b34da6a3ce929d0e0e4736", "req-1_2.3:4", "a"] {
        assert_eq!(ask(sane.to_string()).await, sane);
    }
    for hostile in [
        "x".repeat(65),
        "two words".into(),
        "<script>alert(1)</script>".into(),
        "a\tb".into(),
        "../../etc/passwd".into(),
    ] {
        let got = ask(hostile.clone()).await;
        assert_ne!(got, hostile);
        assert_eq!(got.len(), 32, "{got}");
    }
}

both!(
    every_answer_carries_a_new_request_id,
    a_clients_sane_request_id_is_kept_and_a_hostile_one_replaced
);
