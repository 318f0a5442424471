//! What is recorded: `names`, `sample`, the body limit, and a full queue that drops
//! instead of making requests wait.

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::StreamExt;
use serde_json::json;

use super::*;
use crate::both;

/// `names` picks the operations that start a scenario; a request that continues one
/// is recorded whatever its name; the rest is not.
async fn names_choose_what_is_recorded(b: Backend) {
    let mut r = recorder(b, |s| {
        s.record.names = vec!["createtwofactorsmsotp".into(), "/token/generate".into()]
    })
    .await;
    r.json(
        &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
        &json!({"UserId":CUSTOMER,"GsmNumber":"905321234567","TwoFactorConfigurationId":3}),
    )
    .await;
    r.json(
        SUMMIT,
        &json!({"ServiceName":"ADM_GenerateOTP","objCommonParameters":{"objUserInformation":{
            "AuthType":"LOGIN_OTP","EncryptedEmailID":"Vishnu.kumar@syntel.com","DeviceId":"d"}}}),
    )
    .await;
    let id = json!({"identifierType":"MOBILE","identifierValue":"919876543219","brand":"DocDemo","deviceId":"d"});
    let a = r.json("/auth/v1/web/token/generate", &id).await;
    let mut with_session = id.clone();
    with_session["sessionId"] = a["user"]["sessionId"].clone();
    r.json("/auth/v1/web/otp/generate", &with_session).await;
    // Names an id, but none recorded: not kept.
    r.json(
        &format!("{TWOFACTOR}/ValidateTwoFactorSmsOtoByReferenceId"),
        &json!({"UserId":CUSTOMER,"OtpIdReference":"36d97a51-07ee-480e-a50e-e6fb53baf14f"}),
    )
    .await;
    let files = r.stop().await;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].contains("-twofactor-CreateTwoFactorSmsOtp-"),
        "{names:?}"
    );
    assert!(
        names[1].contains("-capillary-web-token-generate-"),
        "{names:?}"
    );
    let s = scenarios(&files);
    assert_eq!(s[1].steps.len(), 2, "otp/generate continued the session");
}

both!(names_choose_what_is_recorded);

/// `sample = 0` records nothing; a body over `max_body_bytes` is answered as ever and
/// not recorded.
async fn sampling_and_the_body_limit(b: Backend) {
    let mut r = recorder(b, |s| s.record.sample = 0.0).await;
    for _ in 0..3 {
        r.json(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &json!({"UserId":CUSTOMER,"GsmNumber":"905321234567","TwoFactorConfigurationId":3}),
        )
        .await;
    }
    assert!(r.stop().await.is_empty());
    assert_eq!(r.stats.captured(), 0);
    assert!(r.dir.is_dir(), "the directory is created at start");

    let mut r = recorder(b, |_| {}).await;
    let big = format!(
        r#"{{"UserId":"{CUSTOMER}","GsmNumber":"905321234567","TwoFactorConfigurationId":3,"Source":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let (status, _) = r
        .send(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &[("content-type", "application/json")],
            big,
        )
        .await;
    assert_eq!(status, 413);
    let (status, text) = r
        .send(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &[("content-type", "application/json")],
            json!({"UserId":CUSTOMER,"GsmNumber":"905321234567","TwoFactorConfigurationId":3})
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let files = r.stop().await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(r.stats.captured(), 1);
}

both!(sampling_and_the_body_limit);

/// A queue of one and a burst of requests: every request is answered, what the writer
/// could not take is dropped and counted, and everything taken is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let mut r = recorder(Backend::Sqlite, |s| s.record.queue = 1).await;
    const N: u32 = 400;
    let answered = AtomicU32::new(0);
    futures_util::stream::iter(0..N)
        .for_each_concurrent(64, |i| {
            let r = &r;
            let answered = &answered;
            async move {
                let (status, _) = r
                    .send(
                        &format!("{TWOFACTOR}/NoSuchOperation{i}"),
                        &[("content-type", "application/json")],
                        "{}",
                    )
                    .await;
                assert_eq!(status, 404);
                answered.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await;
    assert_eq!(answered.load(Ordering::Relaxed), N);
    let files = r.stop().await;
    let (captured, dropped) = (r.stats.captured(), r.stats.dropped());
    assert!(dropped > 0, "a queue of one never filled up");
    assert_eq!(captured + dropped, u64::from(N));
    assert_eq!(files.len() as u64, captured);
    assert_eq!(r.stats.written(), captured);
}

/// A forwarded exchange is recorded like a local one: the legacy server's answer as
/// the expected body, the client's API key redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_exchanges_are_recorded_too() {
    let legacy = crate::support::legacy::LegacyServer::start().await;
    let url = format!(
        "{}/SummitAI/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall",
        legacy.base
    );
    let mut r = recorder(Backend::Sqlite, |s| s.upstream.summit.url = Some(url)).await;
    let key = "P9DYAvNptCmTgmVLTllwuIUfAJGk83TiSftXIYR/fkQ=";
    let body = json!({"ServiceName": "IM_LogOrUpdateIncident", "objCommonParameters": {
        "_ProxyDetails": {"AuthType": "APIKEY", "APIKey": key},
        "objIncident": {"Description": "printer on fire"}}});
    let answer = r.json(SUMMIT, &body).await;
    assert_eq!(answer["Message"], "answered by the legacy server");
    let files = r.stop().await;
    assert_eq!(legacy.received().len(), 1);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("IM_LogOrUpdateIncident"), "{text}");
    assert!(text.contains("answered by the legacy server"), "{text}");
    assert!(!text.contains(key), "{text}");
    assert_eq!(scenarios(&files).len(), 1);
}
