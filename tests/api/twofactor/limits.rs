//! Send limits, expiry, lockout after wrong codes, and a synchronous send that fails.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use super::{API, config, create};
use crate::both;
use crate::support::*;

async fn limits_expiry_and_lockout(b: Backend) {
    let app = spawn(b).await;
    config(&app, 7, |c| c.expiry_seconds = 1).await;
    // MaxSMSCount from the request: 2 per interval for this number.
    let mut req = create("905320000001", 0);
    req["MaxSMSCount"] = json!(2);
    req["MaxSMSInterval"] = json!(10);
    for _ in 0..2 {
        assert_eq!(
            app.tf("CreateTwoFactorSmsOtp", req.clone()).await.json()["Success"],
            true
        );
    }
    let a = app
        .request(
            reqwest::Method::POST,
            &format!("{API}/CreateTwoFactorSmsOtp"),
            &[
                ("content-type", Some("application/json")),
                ("accept", Some("text/xml")),
            ],
            req.to_string(),
        )
        .await;
    assert!(a.text.contains("<Code>MaxOtpRequestExceededCode</Code><ExceptionMessage>The OTP limit for this destination has been reached. Please try again in 900 seconds.</ExceptionMessage><GsmNumber>*********001</GsmNumber><Id>0</Id><OtpCode i:nil=\"true\" />"), "{}", a.text);
    assert!(a.text.contains("<Success>false</Success>"));

    // Expiry from the configuration (1 s).
    let (_, reference) = app.tf_create(create("905320000002", 7)).await;
    let code = app.code(&reference, "sms").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let v = app.tf_validate(&reference, &code).await;
    assert_eq!(
        (v["Code"].clone(), v["ExceptionMessage"].clone()),
        (
            json!(6002),
            json!("The OTP has expired. Please generate a new OTP.")
        )
    );

    // Three wrong codes lock it.
    let (_, reference) = app.tf_create(create("905320000003", 0)).await;
    let code = app.code(&reference, "sms").await;
    for _ in 0..3 {
        let v = app.tf_validate(&reference, &wrong(&code)).await;
        assert_eq!(v["Code"], 6000);
    }
    let v = app.tf_validate(&reference, &code).await;
    assert_eq!(v["Code"], 6004);
}

/// A number's sends count for every limit that covers them: a send under a short
/// window does not make the sends a longer window still counts be forgotten.
async fn a_short_window_keeps_what_a_longer_one_counts(b: Backend) {
    use diesel::prelude::*;
    use otpgate::db::schema::send_limits;
    let app = spawn(b).await;
    // 2 per hour, from the request.
    let mut hourly = create("905320000009", 0);
    hourly["MaxSMSCount"] = json!(2);
    hourly["MaxSMSInterval"] = json!(60);
    assert_eq!(
        app.tf("CreateTwoFactorSmsOtp", hourly.clone()).await.json()["Success"],
        true
    );
    // That send was 20 minutes ago.
    let then = otpgate::db::now_ms() - 20 * 60_000;
    app.app
        .db
        .run(move |c| {
            let rows = diesel::update(send_limits::table)
                .set((
                    send_limits::last_sent_at.eq(then),
                    send_limits::recent_sends.eq(then.to_string()),
                ))
                .execute(c)?;
            assert_eq!(rows, 1);
            Ok(())
        })
        .await
        .unwrap();
    // The gateway's own limit (5 per 15 minutes) does not count it, and sends.
    let plain = create("905320000009", 0);
    assert_eq!(
        app.tf("CreateTwoFactorSmsOtp", plain).await.json()["Success"],
        true
    );
    // The hourly limit still counts both: the older leaves the hour in 40 minutes.
    let v = app.tf("CreateTwoFactorSmsOtp", hourly).await.json();
    assert_eq!(
        (v["Success"].clone(), v["Code"].clone()),
        (json!(false), json!(4000)),
        "{v}"
    );
    let message = v["ExceptionMessage"].as_str().unwrap();
    assert!(
        ["2399", "2400"]
            .iter()
            .any(|s| message.contains(&format!("try again in {s} seconds"))),
        "{message}"
    );
}

/// IsSync waits for the SMS to be handed over, and reports a failure to send.
async fn synchronous_send_reports_failure(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let not_a_file = dir.path().to_path_buf();
    let app = spawn_with(b, move |s| {
        s.delivery.file_path = not_a_file;
        s.delivery.max_attempts = 1;
    })
    .await;
    let mut req = create("905321234567", 0);
    req["IsSync"] = json!(true);
    let v = app.tf("CreateTwoFactorSmsOtp", req).await.json();
    assert_eq!(
        (v["Success"].clone(), v["Code"].clone()),
        (json!(false), json!(4005)),
        "{v}"
    );
    assert!(
        v["Id"].as_i64().unwrap() > 0 && v["OtpIdReference"].is_string(),
        "the OTP exists: {v}"
    );
    // The reason stays in the log: no provider names or server paths for the caller.
    assert_eq!(
        v["ExceptionMessage"],
        "The OTP could not be sent: no SMS provider accepted the message."
    );
}

/// Codes asked at once for one customer, each to another number: no destination lock
/// is shared, so only the customer's own lock (an advisory lock on PostgreSQL, the
/// write lock on SQLite) keeps an issue from missing the open code it must supersede.
/// Exactly one code stays open.
async fn parallel_codes_for_one_customer_leave_one_open(b: Backend) {
    let app = spawn(b).await;
    let asks = (0..12).map(|i| {
        app.tf(
            "CreateTwoFactorSmsOtp",
            create(&format!("9053200001{i:02}"), 0),
        )
    });
    let answers = join_all(asks).await;
    for a in &answers {
        assert_eq!(a.json()["Success"], true, "{}", a.text);
    }
    assert_eq!(app.count("challenges").await, 12);
    let open = "challenges WHERE superseded_at IS NULL AND consumed_at IS NULL";
    assert_eq!(app.count(open).await, 1);
}

/// The customer's lock, held from a connection of the test's own (PostgreSQL).
fn hold_customer_lock(app: &TestApp) -> (diesel::PgConnection, i64) {
    use diesel::prelude::*;
    let subject = format!("subject:customer:{}:twofactor", super::CUSTOMER);
    let lock =
        otpgate::db::limits::subject_lock(&otpgate::core::keys::sha256_hex(subject.as_bytes()))
            .unwrap();
    let mut holder = PgConnection::establish(&app.app.settings.database_url).unwrap();
    diesel::sql_query(format!("SELECT pg_advisory_lock({lock})"))
        .execute(&mut holder)
        .unwrap();
    (holder, lock)
}

fn release_customer_lock((mut holder, lock): (diesel::PgConnection, i64)) {
    use diesel::prelude::*;
    diesel::sql_query(format!("SELECT pg_advisory_unlock({lock})"))
        .execute(&mut holder)
        .unwrap();
}

/// Runs `act` on the server's backends that wait for an advisory lock in the app's
/// database, as soon as there is one (within ten seconds), and answers how many it
/// acted on.
fn on_lock_waiters(app: &TestApp, act: &'static str) -> tokio::task::JoinHandle<usize> {
    use diesel::prelude::*;
    let url = app.app.settings.database_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut admin = PgConnection::establish(&url).unwrap();
        // Other tests' databases share the server: only this one's waits count.
        let waiting = format!(
            "SELECT {act} FROM pg_locks l \
             JOIN pg_database d ON d.oid = l.database \
             WHERE d.datname = current_database() \
             AND l.locktype = 'advisory' AND NOT l.granted"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = diesel::sql_query(&waiting).execute(&mut admin).unwrap();
            if found > 0 {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no issue waited for the customer's lock"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// On PostgreSQL an issue takes its customer's lock in the round trip of its BEGIN. A
/// wait for that lock that is cancelled (by an administrator, or a lock timeout) is
/// answered as the service being unavailable, and leaves no transaction behind on the
/// pooled connection: the pool's one connection issues the next code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_wait_for_the_customer_lock_leaves_the_connection_usable() {
    if postgres_url().is_none() {
        return;
    }
    let app = spawn_with(Backend::Postgres, |s| s.pool_size = 1).await;
    let held = hold_customer_lock(&app);
    let cancel = on_lock_waiters(&app, "pg_cancel_backend(l.pid)");
    let ask = app.tf("CreateTwoFactorSmsOtp", create("905320000021", 0));
    let waited = tokio::time::timeout(Duration::from_secs(15), ask)
        .await
        .expect("the cancelled issue is answered, not run again to wait anew")
        .json();
    assert_eq!(cancel.await.unwrap(), 1);
    assert_eq!(
        (waited["Success"].clone(), waited["Code"].clone()),
        (json!(false), json!(4007)),
        "{waited}"
    );
    release_customer_lock(held);
    for gsm in ["905320000021", "905320000022"] {
        let v = app.tf("CreateTwoFactorSmsOtp", create(gsm, 0)).await.json();
        assert_eq!(v["Success"], true, "{v}");
    }
    assert_eq!(app.count("challenges").await, 2);
}

/// PostgreSQL: work waits for a connection in the order it asked, and a request whose
/// turn does not come within the pool's wait (ten seconds) is answered that the
/// service is unavailable; its work is never done later. Here the pool's one
/// connection is held by an issue waiting for its customer's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_turn_never_comes_is_busy_and_never_run_later() {
    if postgres_url().is_none() {
        return;
    }
    let app = spawn_with(Backend::Postgres, |s| s.pool_size = 1).await;
    let held = hold_customer_lock(&app);
    let first = app.tf("CreateTwoFactorSmsOtp", create("905320000031", 0));
    let (first, waiting) = tokio::join!(first, async {
        assert_eq!(on_lock_waiters(&app, "l.pid").await.unwrap(), 1);
        let queued = app.tf("CreateTwoFactorSmsOtp", create("905320000032", 0));
        let v = tokio::time::timeout(Duration::from_secs(20), queued)
            .await
            .expect("a request waiting for its turn is answered within the wait")
            .json();
        release_customer_lock(held);
        v
    });
    assert_eq!(
        (waiting["Success"].clone(), waiting["Code"].clone()),
        (json!(false), json!(4007)),
        "{waiting}"
    );
    assert_eq!(first.json()["Success"], true, "{}", first.text);
    // Work asked after the one given up runs; the given-up one has not run.
    let last = app
        .tf("CreateTwoFactorSmsOtp", create("905320000033", 0))
        .await;
    assert_eq!(last.json()["Success"], true, "{}", last.text);
    assert_eq!(app.count("challenges").await, 2);
}

both!(
    limits_expiry_and_lockout,
    a_short_window_keeps_what_a_longer_one_counts,
    synchronous_send_reports_failure,
    parallel_codes_for_one_customer_leave_one_open
);
