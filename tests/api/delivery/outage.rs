//! A provider outage: messages are retried, with capped backoff, for as long as their
//! code can be used, and fail only when it cannot; `max_attempts` bounds them if set.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use otpgate::db::outbox::CODE_EXPIRED;
use otpgate::db::schema::outbox as outbox_t;

use super::{VISHNU_MOBILE, sms_through};
use crate::both;
use crate::support::sms::SmsEndpoint;
use crate::support::*;

/// The provider is down for longer than five attempts of every message (and at least
/// two seconds): once it is back, every message goes out, each after more than five
/// attempts, with one idempotency key per message.
async fn every_message_is_delivered_after_an_outage_longer_than_the_old_retry_budget(b: Backend) {
    let gateway = SmsEndpoint::start(usize::MAX).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        s.delivery.retry_base_ms = 50;
        s.delivery.max_retry_delay_ms = 200;
        s.delivery.provider_cooldown_seconds = 0;
        sms_through(&mut s.delivery, &g);
    })
    .await;
    assert_eq!(app.app.settings.delivery.max_attempts, 0);
    let down = Instant::now();
    let numbers: Vec<String> = (0..3).map(|i| format!("+1555000030{i}")).collect();
    let ids = issue_codes(&app.app, &numbers).await;
    let per_message = |e: &SmsEndpoint| {
        let mut n: BTreeMap<String, usize> = BTreeMap::new();
        for k in e.idempotency_keys() {
            *n.entry(k).or_default() += 1;
        }
        n
    };
    eventually(Duration::from_secs(30), || async {
        let n = per_message(&gateway);
        if n.len() == 3 && n.values().all(|&k| k >= 6) && down.elapsed() >= Duration::from_secs(2) {
            Ok(())
        } else {
            Err(format!("attempts so far: {n:?}"))
        }
    })
    .await;
    let rows = messages(&app.app).await;
    assert!(rows.iter().all(|r| r.state != "failed"), "{rows:#?}");
    gateway.fail_next(0);

    let rows = eventually(Duration::from_secs(30), || async {
        let rows = messages(&app.app).await;
        if rows.len() == 3 && rows.iter().all(|r| r.state == "sent") {
            Ok(rows)
        } else {
            Err(format!("not all sent: {rows:#?}"))
        }
    })
    .await;
    for r in &rows {
        assert!(ids.contains(&r.id));
        assert!(r.attempts > 5, "{r:#?}");
        assert_eq!(r.last_error, None);
    }
    let sent: Vec<_> = gateway
        .received()
        .into_iter()
        .filter(|r| r.code().len() == 6)
        .collect();
    assert!(sent.len() > 15);
    assert_eq!(per_message(&gateway).len(), 3);
}

/// A message whose code expires while the provider is down ends failed, saying so,
/// without its text, and is not sent once the provider is back.
async fn a_message_whose_code_expires_during_an_outage_fails_and_is_never_sent(b: Backend) {
    let gateway = SmsEndpoint::start(usize::MAX).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        s.otp.expiry_seconds = 2;
        s.delivery.retry_base_ms = 50;
        s.delivery.max_retry_delay_ms = 200;
        s.delivery.provider_cooldown_seconds = 0;
        sms_through(&mut s.delivery, &g);
    })
    .await;
    let id = issue_codes(&app.app, &[VISHNU_MOBILE.to_string()])
        .await
        .remove(0);
    let rows = outbox_until(&app.app, |r| r.iter().any(|m| m.state == "failed")).await;
    let sms = rows.iter().find(|r| r.id == id).unwrap();
    let error = sms.last_error.clone().unwrap();
    assert!(error.starts_with(CODE_EXPIRED), "{error}");
    assert!(
        error.contains("; last attempt: gateway: 127.0.0.1 answered HTTP 503"),
        "{error}"
    );
    assert!(sms.attempts > 1, "{sms:#?}");
    let tried = gateway.received().len();
    let i = id.clone();
    let text: Option<Vec<u8>> = app
        .app
        .db
        .run(move |c| {
            Ok(outbox_t::table
                .find(&i)
                .select(outbox_t::payload)
                .first(c)?)
        })
        .await
        .unwrap();
    assert_eq!(text, None, "the text of a dead code is dropped");

    gateway.fail_next(0);
    // Many polls and retry delays later, it is still failed and was never sent again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let rows = messages(&app.app).await;
    let sms = rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(sms.state, "failed");
    assert_eq!(gateway.received().len(), tried);
}

/// An operator's positive `max_attempts` still stops a message after that many
/// attempts, although its code has long to live.
async fn a_positive_max_attempts_still_bounds_the_retries(b: Backend) {
    let gateway = SmsEndpoint::start(usize::MAX).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        s.delivery.max_attempts = 4;
        s.delivery.retry_base_ms = 10;
        s.delivery.max_retry_delay_ms = 50;
        s.delivery.provider_cooldown_seconds = 0;
        sms_through(&mut s.delivery, &g);
    })
    .await;
    let id = issue_codes(&app.app, &[VISHNU_MOBILE.to_string()])
        .await
        .remove(0);
    let rows = outbox_until(&app.app, |r| r.iter().any(|m| m.state == "failed")).await;
    let sms = rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(sms.attempts, 4);
    let error = sms.last_error.clone().unwrap();
    assert!(
        error.starts_with("gateway: 127.0.0.1 answered HTTP 503"),
        "{error}"
    );
    assert_eq!(gateway.received().len(), 4);
}

both!(
    every_message_is_delivered_after_an_outage_longer_than_the_old_retry_budget,
    a_message_whose_code_expires_during_an_outage_fails_and_is_never_sent,
    a_positive_max_attempts_still_bounds_the_retries,
);
