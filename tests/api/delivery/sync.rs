//! What a synchronous request (IsSync) waits on: the outcome of its messages.

use std::net::TcpListener;
use std::time::Duration;

use otpgate::config::ProviderSettings;
use otpgate::delivery::wait_for_outcome;

use super::{VISHNU, VISHNU_MOBILE, fast, sms_through};
use crate::both;
use crate::support::sms::{self, SmsEndpoint};
use crate::support::{smtp, *};

/// What a synchronous request (IsSync) waits on: Ok once the messages are sent; the
/// failure, masked and without the code, when every provider fails; and the timeout.
async fn synchronous_sends_report_the_outcome(b: Backend) {
    // Every provider fails: an SMS gateway that refuses, another that is down, and
    // an SMTP server that is not there.
    let refusing = SmsEndpoint::start(usize::MAX).await;
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = refusing.clone();
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.max_attempts = 2;
        let mut down = sms::json_provider("down", &r);
        if let ProviderSettings::HttpSms(h) = &mut down {
            h.url = format!("http://127.0.0.1:{closed_port}/send");
        }
        s.delivery.providers = vec![
            sms::json_provider("refusing", &r),
            down,
            smtp::provider("mail", closed_port),
        ];
        s.delivery.sms = vec!["refusing".into(), "down".into()];
        s.delivery.email = vec!["mail".into()];
    })
    .await;
    let txn = app.vishnu_login_otp().await;
    app.app.outbox_wake.notify_one();
    let rows = messages(&app.app).await;
    let sms = sms_of(&rows, &txn).id.clone();
    let email = rows
        .iter()
        .find(|r| r.channel == "email")
        .unwrap()
        .id
        .clone();
    let wait = Duration::from_secs(10);

    let e = wait_for_outcome(&app.app.db, std::slice::from_ref(&sms), wait)
        .await
        .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "the SMS message to {} could not be delivered after 2 attempts: refusing: 127.0.0.1 answered HTTP 503",
            otpgate::core::mask::phone(VISHNU_MOBILE)
        )),
        "{e}"
    );
    assert!(e.contains("; down: cannot connect to 127.0.0.1"), "{e}");
    let code = refusing.received()[0].code();
    assert!(!e.contains("9876543") && !e.contains(&code), "{e}");

    let e = wait_for_outcome(&app.app.db, &[email, sms], wait)
        .await
        .unwrap_err();
    assert!(
        e.contains("Vis*********@sy****.com")
            || e.contains(&otpgate::core::mask::phone(VISHNU_MOBILE)),
        "{e}"
    );
    assert!(!e.contains(VISHNU) && !e.contains(&code), "{e}");

    // Sent: Ok.
    let gateway = SmsEndpoint::start(0).await;
    let g = gateway.clone();
    let ok = spawn_with(b, move |s| sms_through(&mut s.delivery, &g)).await;
    let txn = ok.vishnu_login_otp().await;
    ok.app.outbox_wake.notify_one();
    let ids: Vec<String> = messages(&ok.app).await.into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(wait_for_outcome(&ok.app.db, &ids, wait).await, Ok(()));
    let code = gateway.received()[0].code();
    assert!(ok.login_app(&txn, &code, "d").await.json()["User"].is_object());

    // Still retrying when the wait ends: the answer says so.
    refusing.fail_next(usize::MAX);
    let r = refusing.clone();
    let slow = spawn_with(b, move |s| {
        s.delivery.max_attempts = 50;
        s.delivery.retry_base_ms = 60_000;
        s.delivery.max_retry_delay_ms = 60_000;
        s.delivery.providers = vec![sms::json_provider("refusing", &r)];
        s.delivery.sms = vec!["refusing".into()];
        s.otp.channels = vec!["sms".into()];
    })
    .await;
    slow.vishnu_login_otp().await;
    let ids: Vec<String> = messages(&slow.app)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    let e = wait_for_outcome(&slow.app.db, &ids, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "the SMS message to {} was not delivered within 300 ms",
            otpgate::core::mask::phone(VISHNU_MOBILE)
        )),
        "{e}"
    );
}

both!(synchronous_sends_report_the_outcome);
