//! SMS through HTTP APIs: retries with one idempotency key, handing over to the next
//! provider, and a form-encoded provider with basic auth.

use std::collections::BTreeMap;

use base64::Engine;
use otpgate::config::ProviderSettings;
use serde_json::json;

use super::{VISHNU, VISHNU_MOBILE, any_sms_sent, fast, sms_through};
use crate::both;
use crate::support::sms::{self, SmsEndpoint};
use crate::support::*;

/// A provider that fails twice: the message is retried with backoff and sent on the
/// third attempt, with the same idempotency key each time.
async fn http_sms_is_retried_until_the_provider_takes_it(b: Backend) {
    let gateway = SmsEndpoint::start(2).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.max_attempts = 5;
        s.delivery.provider_cooldown_seconds = 0;
        sms_through(&mut s.delivery, &g);
    })
    .await;
    let txn = app.vishnu_login_otp().await;
    let rows = outbox_until(&app.app, any_sms_sent).await;
    let sms = sms_of(&rows, &txn);
    assert_eq!(sms.attempts, 3);
    assert_eq!(sms.provider.as_deref(), Some("gateway"));
    assert_eq!(sms.provider_ref.as_deref(), Some("SM3"));
    assert_eq!(sms.last_error, None);

    let got = gateway.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.headers["idempotency-key"], sms.id);
        assert_eq!(r.headers["authorization"], "Bearer test-token");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.json()["to"], VISHNU_MOBILE);
        assert_eq!(r.json()["from"], "OTPGTE");
    }
    let code = got[2].code();
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
}

/// The first provider fails: the second sends the message in the same attempt. The
/// failed one is then skipped while it cools down.
async fn a_failing_provider_hands_over_to_the_next_and_cools_down(b: Backend) {
    let broken = SmsEndpoint::start(usize::MAX).await;
    let backup = SmsEndpoint::start(0).await;
    let (x, y) = (broken.clone(), backup.clone());
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.providers = vec![
            sms::json_provider("primary", &x),
            sms::json_provider("backup", &y),
        ];
        s.delivery.sms = vec!["primary".into(), "backup".into()];
    })
    .await;
    let first = app.vishnu_login_otp().await;
    let rows = outbox_until(&app.app, any_sms_sent).await;
    let sms = sms_of(&rows, &first);
    assert_eq!((sms.attempts, sms.provider.as_deref()), (1, Some("backup")));

    let second = app.login_otp(VISHNU, "d").await;
    let rows = outbox_until(&app.app, |r| {
        r.iter()
            .filter(|m| m.channel == "sms" && m.state == "sent")
            .count()
            == 2
    })
    .await;
    assert_eq!(sms_of(&rows, &second).provider.as_deref(), Some("backup"));
    assert_eq!(
        broken.received().len(),
        1,
        "the failed provider is cooling down"
    );
    assert_eq!(backup.received().len(), 2);
    let code = backup.received()[1].code();
    assert!(app.login_app(&second, &code, "d").await.json()["User"].is_object());
}

/// A Twilio-style provider: form encoding, basic auth, success by status code only.
async fn form_encoded_sms_with_basic_auth(b: Backend) {
    let gateway = SmsEndpoint::start(0).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        let mut twilio = sms::json_provider("twilio", &g);
        if let ProviderSettings::HttpSms(h) = &mut twilio {
            h.headers.clear();
            h.basic_auth = Some(otpgate::config::BasicAuth {
                username: "AC1".into(),
                password: "auth-token".into(),
            });
            h.encoding = "form".into();
            h.body = Some(json!({"To": "{to}", "From": "{sender}", "Body": "{text}"}));
            h.query = BTreeMap::from([("digits".into(), "{to_digits}".into())]);
            h.success_status = vec![201];
            h.success_field = None;
            h.sender = "+15005550006".into();
        }
        s.delivery.providers = vec![twilio];
        s.delivery.sms = vec!["twilio".into()];
    })
    .await;
    let txn = app.vishnu_login_otp().await;
    outbox_until(&app.app, any_sms_sent).await;
    let r = &gateway.received()[0];
    assert_eq!(
        r.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("AC1:auth-token");
    assert_eq!(r.headers["authorization"], format!("Basic {basic}"));
    assert_eq!(r.query, "digits=919876543219");
    let form = r.form();
    assert_eq!(form["To"], VISHNU_MOBILE);
    assert_eq!(form["From"], "+15005550006");
    let code = first_digits(&form["Body"]);
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
}

/// A provider that refuses the message and echoes its code spelled with spaces: the
/// outbox keeps its answer with no spelling of the code left in it.
async fn a_code_spelled_in_a_providers_answer_is_not_kept(b: Backend) {
    let gateway = SmsEndpoint::spelling_the_code().await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.max_attempts = 2;
        s.delivery.provider_cooldown_seconds = 0;
        sms_through(&mut s.delivery, &g);
    })
    .await;
    let txn = app.vishnu_login_otp().await;
    let rows = outbox_until(&app.app, |r| {
        r.iter().any(|m| m.channel == "sms" && m.state == "failed")
    })
    .await;
    let sms = sms_of(&rows, &txn);
    let got = gateway.received();
    assert_eq!(got.len(), 2);
    let code = got[0].code();
    assert_eq!(code.len(), 6, "{code}");
    let error = sms
        .last_error
        .clone()
        .expect("the provider's answer is kept");
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(error.contains(r#"{"spaced":"******"}"#), "{error}");
    let digits: String = error.chars().filter(char::is_ascii_digit).collect();
    assert!(!digits.contains(&code), "{code} in {error}");
}

both!(
    a_code_spelled_in_a_providers_answer_is_not_kept,
    http_sms_is_retried_until_the_provider_takes_it,
    a_failing_provider_hands_over_to_the_next_and_cools_down,
    form_encoded_sms_with_basic_auth,
);
