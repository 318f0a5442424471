//! The outbox across failures and processes: a failed message and the operator's
//! retry, requeueing only while the code works, restarts, and two dispatchers.

use diesel::prelude::*;
use otpgate::db::schema::outbox as outbox_t;

use super::{VISHNU_MOBILE, fast, sms_through, sorted};
use crate::both;
use crate::support::sms::SmsEndpoint;
use crate::support::*;

/// After the last attempt the message is failed, with the provider's error kept,
/// masked and without the code. `otpgate outbox list` shows it; `otpgate outbox retry`
/// sends it once the provider is back.
async fn a_message_fails_after_the_last_attempt_and_an_operator_retries_it(b: Backend) {
    let gateway = SmsEndpoint::start(usize::MAX).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        sms_through(&mut s.delivery, &g);
    })
    .await;
    let txn = app.vishnu_login_otp().await;
    let rows = outbox_until(&app.app, |r| r.iter().any(|m| m.state == "failed")).await;
    let sms = sms_of(&rows, &txn).clone();
    assert_eq!((sms.state.as_str(), sms.attempts), ("failed", 3));
    let error = sms.last_error.clone().unwrap();
    let code = gateway.received()[0].code();
    assert!(
        error.starts_with("gateway: 127.0.0.1 answered HTTP 503: {\"error\":\"try later\""),
        "{error}"
    );
    // The provider echoed the request: number and text are gone from what is kept.
    assert!(error.contains("*219"), "{error}");
    assert!(
        !error.contains("9876543") && !error.contains(&code),
        "{error}"
    );
    assert_eq!(gateway.received().len(), 3);

    let dir = tempfile::tempdir().unwrap();
    let url = app.app.settings.database_url.clone();
    let cli = |args: &[&str]| run_otpgate(&url, dir.path(), args);
    let (ok, listing) = tokio::task::block_in_place(|| cli(&["outbox", "list"]));
    assert!(ok, "{listing}");
    let line = listing
        .lines()
        .find(|l| l.starts_with(&sms.id))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.contains("failed")
            && line.contains(&otpgate::core::mask::phone(VISHNU_MOBILE))
            && line.contains("gateway: 127.0.0.1 answered HTTP 503"),
        "{line}"
    );
    assert!(listing.starts_with("ID "), "{listing}");
    assert!(
        !listing.contains("9876543") && !listing.contains("Vishnu.kumar"),
        "{listing}"
    );
    assert!(!listing.contains(&code), "{listing}");

    gateway.fail_next(0);
    let (ok, said) = tokio::task::block_in_place(|| cli(&["outbox", "retry", &sms.id]));
    assert!(ok, "{said}");
    assert!(said.contains("is queued again"), "{said}");
    let rows = outbox_until(&app.app, |r| r.iter().all(|m| m.state == "sent")).await;
    let sms = sms_of(&rows, &txn);
    assert_eq!(
        (sms.attempts, sms.provider.as_deref()),
        (1, Some("gateway"))
    );
    assert!(
        app.login_app(&txn, &gateway.received()[3].code(), "d")
            .await
            .json()["User"]
            .is_object()
    );

    let (ok, said) = tokio::task::block_in_place(|| cli(&["outbox", "retry", &sms.id]));
    assert!(
        !ok && said.contains("is sent; only failed messages are retried"),
        "{said}"
    );
    let (ok, said) = tokio::task::block_in_place(|| cli(&["outbox", "list", "--state", "sent"]));
    assert!(
        ok && said.contains(&sms.id) && said.contains("SM4"),
        "{said}"
    );
}

/// A failed message can be retried while its code works; once the code is replaced
/// it cannot, and its sealed text is dropped.
async fn failed_messages_are_retried_only_while_their_code_works(b: Backend) {
    use otpgate::db::outbox::{Requeue, drop_dead_payloads, requeue_failed};
    let (app, _db, _dir) = open_app(b).await;
    let number = vec!["+15550003000".to_string()];
    let db = app.db.clone();
    let fail_all = move || {
        let db = db.clone();
        async move {
            db.run(|c| {
                diesel::update(outbox_t::table)
                    .set(outbox_t::state.eq("failed"))
                    .execute(c)?;
                Ok(())
            })
            .await
            .unwrap()
        }
    };
    let old = issue_codes(&app, &number).await.remove(0);
    fail_all().await;
    // A newer code for the same user: the old one stops working.
    let new = issue_codes(&app, &number).await.remove(0);
    fail_all().await;
    let (o, n) = (old.clone(), new.clone());
    let (old_after, new_after, payloads) = app
        .db
        .run(move |c| {
            let now = otpgate::db::now_ms();
            assert_eq!(drop_dead_payloads(c, now)?, 1);
            let payloads: Vec<(String, bool)> = outbox_t::table
                .select((outbox_t::id, outbox_t::payload.is_not_null()))
                .order(outbox_t::id)
                .load(c)?;
            Ok((
                requeue_failed(c, &o, now)?,
                requeue_failed(c, &n, now)?,
                payloads,
            ))
        })
        .await
        .unwrap();
    assert_eq!(old_after, Requeue::CodeGone);
    assert_eq!(new_after, Requeue::Requeued);
    let mut expected = vec![(old, false), (new.clone(), true)];
    expected.sort();
    assert_eq!(payloads, expected);
    let rows = messages(&app).await;
    let requeued = rows.iter().find(|r| r.id == new).unwrap();
    assert_eq!((requeued.state.as_str(), requeued.attempts), ("queued", 0));
}

/// Messages queued before a restart, and one claimed by a process that died while
/// sending it, are sent by the next process, each once.
async fn queued_messages_are_sent_after_a_restart(b: Backend) {
    let (before, _db, _dir) = open_app(b).await;
    let numbers: Vec<String> = (0..3).map(|i| format!("+1555000010{i}")).collect();
    let ids = issue_codes(&before, &numbers).await;
    // The last one was being sent by a process that died: its lease ran out.
    let dead = ids[2].clone();
    before
        .db
        .run(move |c| {
            diesel::update(outbox_t::table.find(&dead))
                .set((
                    outbox_t::state.eq("sending"),
                    outbox_t::claimed_by.eq("a-process-that-died"),
                    outbox_t::lease_until.eq(otpgate::db::now_ms() - 1),
                ))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        messages(&before)
            .await
            .iter()
            .map(|m| m.state.as_str())
            .collect::<Vec<_>>(),
        ["queued", "queued", "sending"]
    );

    let gateway = SmsEndpoint::start(0).await;
    let mut settings = (*before.settings).clone();
    sms_through(&mut settings.delivery, &gateway);
    let after = start_gateway(settings).await;
    let rows = outbox_until(&after.app, |r| r.iter().all(|m| m.state == "sent")).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(
        gateway.idempotency_keys(),
        sorted(ids),
        "each message sent once"
    );
    let mut to: Vec<String> = gateway
        .received()
        .iter()
        .map(|r| r.json()["to"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, numbers);
    after.handle.stop(false).await;
}

/// Two dispatchers (two processes' worth: each its own pool) drain one outbox in
/// small batches; every message is sent exactly once.
async fn two_dispatchers_send_each_message_once(b: Backend) {
    let (first, _db, _dir) = open_app(b).await;
    let numbers: Vec<String> = (0..60).map(|i| format!("+15550002{i:03}")).collect();
    let ids = issue_codes(&first, &numbers).await;
    let gateway = SmsEndpoint::start(0).await;
    let mut settings = (*first.settings).clone();
    sms_through(&mut settings.delivery, &gateway);
    settings.delivery.batch_size = 4;
    let one = start_gateway(settings.clone()).await;
    let other = start_gateway(settings).await;
    let rows = outbox_until(&one.app, |r| r.iter().all(|m| m.state == "sent")).await;
    assert_eq!(rows.len(), 60);
    assert_eq!(
        gateway.idempotency_keys(),
        sorted(ids),
        "each message sent exactly once"
    );
    assert!(rows.iter().all(|r| r.attempts == 1));
    one.handle.stop(false).await;
    other.handle.stop(false).await;
}

/// A message the provider took is recorded as sent at once, while another one, claimed
/// with it or before it, still waits for the provider: a slow message holds up no
/// other, and a process that died then would send only the unanswered one again.
async fn a_sent_message_is_recorded_while_its_batch_is_still_sending(b: Backend) {
    let gateway = SmsEndpoint::start(0).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| sms_through(&mut s.delivery, &g)).await;
    let (slow, quick) = ("+15550000401".to_string(), "+15550000402".to_string());
    gateway.hold(&slow);
    let ids = issue_codes(&app.app, &[slow.clone(), quick.clone()]).await;
    let state_of = |rows: &[otpgate::db::outbox::Listing], id: &str| {
        rows.iter().find(|r| r.id == id).map(|r| r.state.clone())
    };
    let rows = outbox_until(&app.app, |r| {
        state_of(r, &ids[1]).as_deref() == Some("sent")
    })
    .await;
    assert_eq!(
        state_of(&rows, &ids[0]).as_deref(),
        Some("sending"),
        "{rows:#?}"
    );
    assert_eq!(gateway.received().len(), 2);

    gateway.release();
    let rows = outbox_until(&app.app, |r| r.iter().all(|m| m.state == "sent")).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(gateway.received().len(), 2);
}

both!(
    a_sent_message_is_recorded_while_its_batch_is_still_sending,
    a_message_fails_after_the_last_attempt_and_an_operator_retries_it,
    failed_messages_are_retried_only_while_their_code_works,
    queued_messages_are_sent_after_a_restart,
    two_dispatchers_send_each_message_once,
);
