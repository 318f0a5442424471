//! Password lockout that tells nobody who exists and locks nobody out: failures are
//! counted under the login as given, per client address, with a back-off (not a
//! refusal for the whole window) once many addresses have failed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both;
use crate::support::*;

fn form(user: &str, password: &str) -> Value {
    json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
        "AuthType": "FORM", "UserName": user, "Password": password, "ReturnType": "JSON"}}})
}

impl TestApp {
    async fn form_from(&self, forwarded_for: &str, user: &str, password: &str) -> Answer {
        self.request(
            reqwest::Method::POST,
            ENDPOINT,
            &[
                ("content-type", Some("application/json")),
                ("x-forwarded-for", Some(forwarded_for)),
            ],
            form(user, password).to_string(),
        )
        .await
    }
}

/// The answer with the seconds of a lockout text taken out.
fn without_seconds(a: &Answer) -> (u16, String) {
    let text: String = a.text.chars().filter(|c| !c.is_ascii_digit()).collect();
    (a.status, text)
}

async fn known_and_unknown_logins_get_the_same_answers(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let mut answers = Vec::new();
    for user in ["vishnu", "nobody-at-all"] {
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(without_seconds(&app.summit(form(user, "wrong")).await));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0][4].1.contains("Invalid user name or password."));
    assert!(
        answers[0][5]
            .1
            .contains("Too many failed logins for this user. Please try again in  seconds."),
        "{:?}",
        answers[0][5]
    );
    // Both are audited alike: six attempts each.
    assert_eq!(app.count("audit_events").await, 12);
}

async fn the_owner_still_logs_in_from_another_address(b: Backend) {
    let app = spawn_with(b, |s| s.security.trusted_proxies = vec!["127.0.0.1".into()]).await;
    app.vishnu().await;
    for _ in 0..5 {
        let a = app.form_from("198.51.100.66", "vishnu", "guess").await;
        assert_eq!(a.errors(), "Invalid user name or password.");
    }
    // The attacker's address is refused, even with the right password.
    let a = app.form_from("198.51.100.66", "vishnu", "Secret#123").await;
    assert!(
        a.errors()
            .starts_with("Too many failed logins for this user."),
        "{}",
        a.text
    );
    // The owner, elsewhere, is not.
    let a = app.form_from("203.0.113.5", "vishnu", "Secret#123").await;
    assert!(a.json()["User"].is_object(), "{}", a.text);
}

async fn failures_from_many_addresses_back_off_rather_than_lock(b: Backend) {
    let app = spawn_with(b, |s| {
        s.security.trusted_proxies = vec!["127.0.0.1".into()];
        s.login.global_failures = 3;
        s.login.max_backoff_seconds = 2;
    })
    .await;
    app.vishnu().await;
    for from in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let a = app.form_from(from, "vishnu", "guess").await;
        assert_eq!(a.errors(), "Invalid user name or password.");
    }
    // Right after the third failure every address waits the back-off...
    let a = app.form_from("203.0.113.5", "vishnu", "Secret#123").await;
    assert_eq!(
        a.errors(),
        "Too many failed logins for this user. Please try again in 1 seconds.",
        "{}",
        a.text
    );
    // ...and only that: a second later the owner gets in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = app.form_from("203.0.113.5", "vishnu", "Secret#123").await;
    assert!(a.json()["User"].is_object(), "{}", a.text);
}

both!(
    known_and_unknown_logins_get_the_same_answers,
    the_owner_still_logs_in_from_another_address,
    failures_from_many_addresses_back_off_rather_than_lock,
);
