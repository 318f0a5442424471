//! When the legacy server fails, clients get a clear answer in their own format and
//! dialect shape, fast; and otpgate never connects anywhere but the configured server.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::support::legacy::{Behaviour, LegacyServer, down_url, garbage_url};

async fn in_front_of(url: String, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_with(Backend::Sqlite, move |s| {
        s.upstream.summit.url = Some(url.clone());
        s.upstream.twofactor.base_url = Some(url.clone());
        s.upstream.capillary.base_url = Some(url);
        tweak(s)
    })
    .await
}

const XML: &str = "<Request><ServiceName>IM_X</ServiceName><objCommonParameters/></Request>";

#[tokio::test]
async fn an_unreachable_upstream_answers_502_in_each_dialect_and_format() {
    let app = in_front_of(down_url(LEGACY_PATH), |_| {}).await;
    let msg = "The upstream server could not be reached.";
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!((a.status, a.errors()), (502, msg.to_string()));
    let a = app.post(ENDPOINT, Some("application/xml"), XML).await;
    assert_eq!(a.status, 502);
    assert!(
        a.content_type.starts_with("application/xml"),
        "{}",
        a.content_type
    );
    assert!(
        a.text.contains(&format!("<Errors>{msg}</Errors>")),
        "{}",
        a.text
    );
    let a = app.post_json("/api/TwoFactor/GetStatus", &json!({})).await;
    assert_eq!((a.status, a.json()["Message"].clone()), (502, json!(msg)));
    let a = app.post_json("/auth/v1/user/get", &json!({})).await;
    assert_eq!(
        (a.status, a.json()),
        (
            502,
            json!({"status": {"success": false, "code": 502, "message": msg}})
        )
    );
}

#[tokio::test]
async fn garbage_redirects_and_huge_answers_are_502_and_a_slow_one_504() {
    let app = in_front_of(garbage_url(LEGACY_PATH).await, |_| {}).await;
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(
        (a.status, a.errors()),
        (
            502,
            "The upstream server sent an answer that is not valid.".to_string()
        )
    );

    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream.summit.max_answer_bytes = 64 * 1024;
        s.upstream.summit.timeout_ms = 300;
        s.upstream.summit.breaker_failures = 100;
    })
    .await;
    let other = LegacyServer::start().await;
    legacy.set(Behaviour::Redirect(format!("{}/steal", other.base)));
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(a.status, 502);
    assert!(other.received().is_empty(), "a redirect is never followed");

    legacy.set(Behaviour::Fixed(
        200,
        "application/json",
        vec![b' '; 100 * 1024],
    ));
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(
        (a.status, a.errors()),
        (
            502,
            "The upstream server's answer is larger than the 65536 bytes allowed.".to_string()
        )
    );

    legacy.set(Behaviour::Slow(Duration::from_secs(3)));
    let started = Instant::now();
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(
        (a.status, a.errors()),
        (
            504,
            "The upstream server did not answer within 300 ms.".to_string()
        )
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(legacy.received().len(), 3, "nothing is retried");
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_answer_503_at_once() {
    let legacy = LegacyServer::start().await;
    legacy.set(Behaviour::Slow(Duration::from_millis(1500)));
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream.summit.max_in_flight = 1
    })
    .await;
    let first = app.post(ENDPOINT, Some("application/json"), incident(""));
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.post(ENDPOINT, Some("application/json"), incident(""))
            .await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status, 200);
    assert_eq!(
        (second.status, second.errors()),
        (
            503,
            "Too many requests are waiting for the upstream server; try again shortly.".to_string()
        )
    );
    assert_eq!(legacy.received().len(), 1);
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_a_probe_closes_it() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream.summit.timeout_ms = 200;
        s.upstream.summit.breaker_failures = 2;
        s.upstream.summit.breaker_pause_ms = 1_000;
    })
    .await;
    legacy.set(Behaviour::Slow(Duration::from_millis(600)));
    for _ in 0..2 {
        let a = app
            .post(ENDPOINT, Some("application/json"), incident(""))
            .await;
        assert_eq!(a.status, 504);
    }
    legacy.set(Behaviour::Envelope);
    let started = Instant::now();
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(a.status, 503);
    assert!(
        a.errors()
            .starts_with("The upstream server is failing; requests to it are refused"),
        "{}",
        a.text
    );
    assert!(started.elapsed() < Duration::from_millis(150), "fails fast");
    assert_eq!(legacy.received().len(), 2, "the open circuit sends nothing");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER, "the probe went through");
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(a.status, 200, "and closed the circuit");
}

#[tokio::test]
async fn no_header_path_or_body_chooses_another_target() {
    let legacy = LegacyServer::start().await;
    let other = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |_| {}).await;
    let evil = other.base.trim_start_matches("http://").to_string();
    let body = incident(&format!(r#","Url":"http://{evil}/x","Host":"{evil}""#));
    app.request(
        reqwest::Method::POST,
        ENDPOINT,
        &[
            ("content-type", Some("application/json")),
            ("host", Some(&evil)),
            ("x-forwarded-host", Some(&evil)),
            ("forwarded", Some(&format!("host={evil}"))),
        ],
        body,
    )
    .await;
    // Paths that try to climb out of the configured base.
    for path in [
        "/api/TwoFactor/../../steal",
        "/api/TwoFactor/%2e%2e/%2e%2e/steal",
        "/auth/v1/..%2f..%2fsteal",
    ] {
        let a = app.post(path, Some("application/json"), "{}").await;
        assert_ne!(a.status, 200, "{path}: {}", a.text);
    }
    // An authority-looking path stays a path on the configured server.
    let a = app
        .post("/auth/v1//@evil.example/x", Some("application/json"), "{}")
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert_eq!(
        legacy.received().pop().unwrap().path,
        "/legacy/auth/v1//@evil.example/x"
    );
    assert!(other.received().is_empty());
    for r in legacy.received() {
        assert!(
            r.path.starts_with("/legacy/") || r.path.starts_with(LEGACY_PATH),
            "{}",
            r.path
        );
        assert!(!r.path.contains("steal"), "{}", r.path);
    }
}

#[tokio::test]
async fn answers_a_client_asked_for_do_not_open_the_circuit() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream.summit.breaker_failures = 2;
        s.upstream.summit.max_answer_bytes = 2048;
    })
    .await;
    legacy.set(Behaviour::Redirect("http://elsewhere.example/".into()));
    for _ in 0..3 {
        assert_eq!(
            app.post(ENDPOINT, Some("application/json"), incident(""))
                .await
                .status,
            502
        );
    }
    legacy.set(Behaviour::Fixed(200, "application/json", vec![b' '; 4096]));
    for _ in 0..3 {
        assert_eq!(
            app.post(ENDPOINT, Some("application/json"), incident(""))
                .await
                .status,
            502
        );
    }
    legacy.set(Behaviour::Envelope);
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER, "the circuit stayed closed");
}

#[tokio::test]
async fn a_body_naming_two_service_names_is_not_forwarded() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream
            .summit
            .routes
            .insert("IM_DeleteAll".into(), otpgate::config::RouteTo::Refuse);
    })
    .await;
    let json =
        r#"{"ServiceName":"IM_GetIncident","servicename":"IM_DeleteAll","objCommonParameters":{}}"#;
    let a = app.post(ENDPOINT, Some("application/json"), json).await;
    assert_eq!(
        (a.status, a.errors()),
        (
            400,
            "The request names more than one ServiceName.".to_string()
        )
    );
    let soap = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><CommonWS_JsonObjCall><ServiceName>IM_GetIncident</ServiceName><request><ServiceName>IM_DeleteAll</ServiceName><objCommonParameters/></request></CommonWS_JsonObjCall></s:Body></s:Envelope>"#;
    let a = app.post(ENDPOINT, Some("text/xml"), soap).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(legacy.received().is_empty());
    // Refused routes on the other dialects hold however the path is spelled.
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream
            .twofactor
            .routes
            .insert("DeleteUser".into(), otpgate::config::RouteTo::Refuse);
        s.upstream
            .capillary
            .routes
            .insert("/user/get/".into(), otpgate::config::RouteTo::Refuse);
    })
    .await;
    for path in [
        "/api/TwoFactor/Delete%55ser",
        "/api/TwoFactor/DeleteUser/1",
        "/auth/v1/user/g%65t",
        "/auth/v1/user//get",
        "/auth/v1/USER/GET",
    ] {
        let a = app.post(path, Some("application/json"), "{}").await;
        assert_eq!(a.status, 403, "{path}: {}", a.text);
    }
    let a = app
        .post("/auth/v1/..;/..;/admin", Some("application/json"), "{}")
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    assert!(legacy.received().is_empty());
}

/// An https upstream under a private CA: trusted with `ca_file`, unreachable without.
#[tokio::test]
async fn a_private_ca_file_makes_an_https_upstream_trusted() {
    let legacy = LegacyServer::start().await;
    let https = crate::support::legacy::https_front(&legacy).await;
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/ca.pem");
    let url = format!("{https}{LEGACY_PATH}");
    let trusted = in_front_of(url.clone(), |s| s.upstream.summit.ca_file = Some(ca.into())).await;
    let a = trusted
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert_eq!(legacy.only().path, LEGACY_PATH);
    let untrusted = in_front_of(url, |_| {}).await;
    let a = untrusted
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(
        (a.status, a.errors()),
        (502, "The upstream server could not be reached.".to_string())
    );
    assert_eq!(legacy.received().len(), 1);
}
