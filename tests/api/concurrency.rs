//! Verification and limits under parallel requests: what the database guarantees,
//! not what one process happens to serialise.

use futures_util::future::join_all;

use crate::both;
use crate::support::*;

async fn parallel_wrong_codes_never_exceed_max_attempts(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    let bad = wrong(&code);
    let answers = join_all((0..24).map(|_| app.login_app(&txn, &bad, "d"))).await;
    let errors: Vec<String> = answers.iter().map(|a| a.errors()).collect();
    let invalid = errors
        .iter()
        .filter(|e| e.starts_with("Invalid OTP."))
        .count();
    let locked = errors
        .iter()
        .filter(|e| e.starts_with("Maximum number of OTP attempts exceeded"))
        .count();
    assert_eq!((invalid, locked), (3, 21), "{errors:?}");
    assert_eq!(
        app.login_app(&txn, &code, "d").await.errors(),
        "Maximum number of OTP attempts exceeded. Please generate a new OTP."
    );
}

async fn parallel_right_codes_succeed_exactly_once(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    let answers = join_all((0..24).map(|_| app.login_app(&txn, &code, "d"))).await;
    let ok = answers
        .iter()
        .filter(|a| a.json()["User"].is_object())
        .count();
    let used = answers
        .iter()
        .filter(|a| {
            a.json()["Errors"] == "The OTP has already been used. Please generate a new OTP."
        })
        .count();
    assert_eq!((ok, used), (1, 23));
    assert_eq!(app.count("sessions").await, 1);
}

async fn parallel_generates_respect_the_send_limit(b: Backend) {
    let app = spawn_with(b, |s| s.otp.max_sends = 3).await;
    app.vishnu().await;
    let answers =
        join_all((0..12).map(|_| app.summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))))
            .await;
    let ok = answers.iter().filter(|a| a.json()["Errors"] == "").count();
    let limited = answers
        .iter()
        .filter(|a| a.errors().starts_with("The OTP limit for this destination"))
        .count();
    assert_eq!(
        (ok, limited),
        (3, 9),
        "{:?}",
        answers.iter().map(|a| a.errors()).collect::<Vec<_>>()
    );
    assert_eq!(app.count("challenges").await, 3);
    assert_eq!(app.count("outbox").await, 6);
    // Of the three, only the last is open: each superseded the one before.
    let open = app.count("challenges WHERE superseded_at IS NULL").await;
    assert_eq!(open, 1);
}

both!(
    parallel_wrong_codes_never_exceed_max_attempts,
    parallel_right_codes_succeed_exactly_once,
    parallel_generates_respect_the_send_limit,
);
