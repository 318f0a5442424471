//! The Prometheus endpoint: every family moves as the matching request or delivery
//! happens, hostile input makes no new series, the bearer token and the separate
//! listener, the JSON access line, and promtool's checks of a real scrape, the alert
//! rules and the dashboard.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::both;
use crate::support::legacy::down_url;
use crate::support::sms::{self, SmsEndpoint};
use crate::support::*;

/// Set (as .ci/run does) to make a missing promtool fail the suite rather than skip
/// its checks.
const REQUIRE_PROMTOOL: &str = "OTPGATE_TEST_REQUIRE_PROMTOOL";

/// A scrape as series name with labels → value.
type Scrape = BTreeMap<String, f64>;

fn parse(text: &str) -> Scrape {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

impl TestApp {
    async fn scrape_text(&self) -> String {
        let a = self
            .request(reqwest::Method::GET, "/metrics", &[], String::new())
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(
            a.content_type.starts_with("text/plain"),
            "{}",
            a.content_type
        );
        a.text
    }

    async fn scrape(&self) -> Scrape {
        parse(&self.scrape_text().await)
    }
}

/// The sum of every series of `name` whose labels contain all of `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|(k, _)| {
            let base = k.split('{').next().unwrap_or(k);
            base == name
                && labels
                    .iter()
                    .all(|(l, v)| k.contains(&format!("{l}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .sum()
}

fn moved(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

/// The label values a scrape holds for `label`, across every series.
fn label_values(s: &Scrape, label: &str) -> BTreeSet<String> {
    let key = format!("{label}=\"");
    s.keys()
        .filter_map(|k| {
            let start = k.find(&key)? + key.len();
            let end = k[start..].find('"')? + start;
            Some(k[start..end].to_string())
        })
        .collect()
}

fn wrong_form(user: &str) -> serde_json::Value {
    json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
        "AuthType": "FORM", "UserName": user, "Password": "wrong", "ReturnType": "JSON"}}})
}

/// Requests, OTP outcomes, logins and lockouts, hashing, the pool and transactions,
/// and build info move as the requests happen.
async fn request_and_otp_families_move(b: Backend) {
    let app = spawn_with(b, |s| {
        s.otp.max_attempts = 2;
        s.login.max_failures = 2;
    })
    .await;
    app.vishnu().await;
    let before = app.scrape().await;
    assert_eq!(
        value(
            &before,
            "otpgate_build_info",
            &[(
                "backend",
                match b {
                    Backend::Sqlite => "sqlite",
                    Backend::Postgres => "postgres",
                }
            )]
        ),
        1.0
    );

    // Issued, then a wrong code, then verified.
    let txn = app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    let code = app.code(&txn, "email").await;
    app.login_app(&txn, &wrong(&code), "d").await;
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
    // Used, then attempts exhausted on a new code.
    app.login_app(&txn, &code, "d").await;
    let txn2 = app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    let code2 = app.code(&txn2, "email").await;
    // Superseded: the first code of the pair is replaced by the second.
    let txn3 = app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    app.login_app(&txn2, &code2, "d").await;
    let code3 = app.code(&txn3, "email").await;
    app.login_app(&txn3, &wrong(&code3), "d").await;
    app.login_app(&txn3, &wrong(&code3), "d").await;
    app.login_app(&txn3, &code3, "d").await;
    // Password logins: two failures lock the address out, the third is refused.
    for _ in 0..3 {
        app.summit(wrong_form("vishnu")).await;
    }
    let after = app.scrape().await;

    let otp = |outcome| {
        moved(
            &before,
            &after,
            "otpgate_otp_events_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(otp("issued"), 3.0);
    assert_eq!(otp("verified"), 1.0);
    assert!(otp("wrong_code") >= 2.0, "{after:?}");
    assert_eq!(otp("used"), 1.0);
    assert_eq!(otp("superseded"), 1.0);
    assert!(otp("attempts_exhausted") >= 1.0, "{after:?}");
    let requests = moved(
        &before,
        &after,
        "otpgate_http_requests_total",
        &[
            ("dialect", "summit"),
            ("operation", "ADM_GenerateOTP"),
            ("outcome", "ok"),
        ],
    );
    assert_eq!(requests, 3.0);
    assert!(
        moved(
            &before,
            &after,
            "otpgate_http_request_duration_seconds_count",
            &[("dialect", "summit"), ("operation", "LoginApp")]
        ) >= 6.0
    );
    let login = |outcome| {
        moved(
            &before,
            &after,
            "otpgate_password_logins_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!((login("failed"), login("locked")), (2.0, 1.0));
    assert_eq!(
        moved(&before, &after, "otpgate_login_lockouts_total", &[]),
        1.0
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "otpgate_password_hash_queue_wait_seconds_count",
            &[]
        ),
        2.0
    );
    for kind in ["issue", "verify", "login"] {
        assert!(
            moved(
                &before,
                &after,
                "otpgate_db_transaction_duration_seconds_count",
                &[("kind", kind)]
            ) >= 1.0,
            "{kind}"
        );
    }
    assert!(moved(&before, &after, "otpgate_db_pool_wait_seconds_count", &[]) >= 10.0);
    // What the work sent. On PostgreSQL, one transaction per issue, each with its
    // BEGIN, its COMMIT and the statements between; on SQLite, a savepoint per issue
    // in the writer's batches, whose transactions are counted as group_commit.
    let sent = |family, kind| moved(&before, &after, family, &[("kind", kind)]);
    let statements = sent("otpgate_db_statements_total", "issue");
    assert!(statements >= 9.0, "{statements}");
    let transactions = sent("otpgate_db_transactions_total", "issue");
    let batches = sent("otpgate_db_transactions_total", "group_commit");
    match b {
        Backend::Postgres => assert_eq!((transactions, batches), (3.0, 0.0)),
        Backend::Sqlite => {
            assert_eq!(transactions, 0.0);
            assert!(batches >= 3.0, "{batches}");
            assert!(sent("otpgate_db_statements_total", "group_commit") >= 2.0 * batches);
        }
    }
}

/// On PostgreSQL a LoginApp with the right code is one statement and no transaction:
/// the code spent, its audit event and the new session, all or nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_codes_login_is_one_statement_on_postgres() {
    if postgres_url().is_none() {
        return;
    }
    let app = spawn(Backend::Postgres).await;
    app.vishnu().await;
    let txn = app.login_otp("Vishnu.kumar@syntel.com", "dev-1").await;
    let code = app.code(&txn, "sms").await;
    let before = app.scrape().await;
    assert!(app.login_app(&txn, &code, "dev-1").await.json()["User"].is_object());
    let after = app.scrape().await;
    let sent = |family| moved(&before, &after, family, &[("kind", "verify")]);
    assert_eq!(
        (
            sent("otpgate_db_statements_total"),
            sent("otpgate_db_transactions_total")
        ),
        (1.0, 0.0)
    );
    assert_eq!(app.count("sessions WHERE user_id = 836").await, 1);
    let audited = "audit_events WHERE event = 'otp.verify' AND outcome = 'ok'";
    assert_eq!(app.count(audited).await, 1);
}

/// Send limits, cool-downs and the throttle count as OTP outcomes.
async fn limits_and_throttle_are_counted(b: Backend) {
    let app = spawn_with(b, |s| {
        s.otp.max_sends = 1;
        s.otp.resend_cooldown_seconds = 0;
    })
    .await;
    app.vishnu().await;
    let before = app.scrape().await;
    app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    app.summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))
        .await;
    let after = app.scrape().await;
    let otp = |outcome| {
        moved(
            &before,
            &after,
            "otpgate_otp_events_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(otp("send_limited"), 1.0, "{after:?}");

    let app = spawn_with(b, |s| s.otp.resend_cooldown_seconds = 600).await;
    app.vishnu().await;
    app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    app.summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))
        .await;
    let s = app.scrape().await;
    assert_eq!(
        value(
            &s,
            "otpgate_otp_events_total",
            &[("outcome", "cooled_down")]
        ),
        1.0
    );

    let app = spawn_with(b, |s| {
        s.security.throttle.enabled = true;
        s.security.throttle.generate.per_address.per_minute = 1;
        s.security.throttle.generate.per_address.burst = 1;
    })
    .await;
    app.vishnu().await;
    for _ in 0..3 {
        app.summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))
            .await;
    }
    let s = app.scrape().await;
    assert!(value(&s, "otpgate_otp_events_total", &[("outcome", "throttled")]) >= 1.0);
    assert!(
        value(
            &s,
            "otpgate_http_requests_total",
            &[("outcome", "throttled")]
        ) >= 1.0,
        "{s:?}"
    );
}

/// The outbox families: attempts and failures by provider and reason, delivery
/// latency, cool-downs, and the gauges the refresh task reads.
async fn delivery_families_move(b: Backend) {
    let broken = SmsEndpoint::start(usize::MAX).await;
    let backup = SmsEndpoint::start(0).await;
    let (x, y) = (broken.clone(), backup.clone());
    let app = spawn_with(b, move |s| {
        s.metrics.refresh_seconds = 1;
        s.delivery.max_attempts = 3;
        s.delivery.retry_base_ms = 10;
        s.delivery.provider_cooldown_seconds = 600;
        s.delivery.providers = vec![
            sms::json_provider("primary", &x),
            sms::json_provider("backup", &y),
        ];
        s.delivery.sms = vec!["primary".into(), "backup".into()];
    })
    .await;
    let before = app.scrape().await;
    app.vishnu_login_otp().await;
    let after = eventually(Duration::from_secs(10), || async {
        let s = app.scrape().await;
        let sent = moved(
            &before,
            &s,
            "otpgate_delivery_attempts_total",
            &[("result", "sent")],
        );
        let waiting = value(&s, "otpgate_outbox_messages", &[]);
        let oldest = value(&s, "otpgate_outbox_oldest_queued_age_seconds", &[]);
        if sent >= 2.0 && waiting == 0.0 && oldest == 0.0 {
            Ok(s)
        } else {
            Err(format!("sent {sent}, waiting {waiting}, oldest {oldest}"))
        }
    })
    .await;
    let attempts = |provider, result| {
        moved(
            &before,
            &after,
            "otpgate_delivery_attempts_total",
            &[("provider", provider), ("result", result)],
        )
    };
    assert_eq!(attempts("primary", "failed"), 1.0, "{after:?}");
    assert_eq!(attempts("backup", "sent"), 1.0);
    assert_eq!(attempts("file", "sent"), 1.0);
    assert_eq!(
        moved(
            &before,
            &after,
            "otpgate_delivery_failures_total",
            &[("provider", "primary")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "otpgate_provider_cooldowns_total",
            &[("provider", "primary")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "otpgate_delivery_latency_seconds_count",
            &[("channel", "sms")]
        ),
        1.0
    );
    assert!(value(&after, "otpgate_db_pool_connections", &[]) >= 1.0);
}

/// The outbox gauge counts the messages that wait or failed, by state; sent ones are
/// counted by the delivery attempts, and no series holds them.
async fn the_outbox_gauge_shows_failed_messages_and_not_sent_ones(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let not_a_file = dir.path().to_path_buf();
    let gateway = SmsEndpoint::start(0).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        s.metrics.refresh_seconds = 1;
        s.delivery.file_path = not_a_file;
        s.delivery.max_attempts = 1;
        s.delivery.providers = vec![sms::json_provider("gateway", &g)];
        s.delivery.sms = vec!["gateway".into()];
    })
    .await;
    app.vishnu_login_otp().await;
    let s = eventually(Duration::from_secs(10), || async {
        let s = app.scrape().await;
        let failed = value(&s, "otpgate_outbox_messages", &[("state", "failed")]);
        let sent = value(
            &s,
            "otpgate_delivery_attempts_total",
            &[("provider", "gateway"), ("result", "sent")],
        );
        if failed == 1.0 && sent == 1.0 {
            Ok(s)
        } else {
            Err(format!("failed {failed}, sent {sent}"))
        }
    })
    .await;
    assert_eq!(value(&s, "otpgate_outbox_messages", &[]), 1.0, "{s:?}");
    let series: Vec<&String> = s
        .keys()
        .filter(|k| k.starts_with("otpgate_outbox_messages{"))
        .collect();
    assert_eq!(
        series,
        [
            r#"otpgate_outbox_messages{state="failed"}"#,
            r#"otpgate_outbox_messages{state="queued"}"#,
            r#"otpgate_outbox_messages{state="sending"}"#,
        ]
    );
}

/// A message nobody can send stays queued: the oldest queued age grows.
async fn a_stuck_outbox_shows_its_oldest_message(b: Backend) {
    let broken = SmsEndpoint::start(usize::MAX).await;
    let app = spawn_with(b, move |s| {
        s.metrics.refresh_seconds = 1;
        s.otp.channels = vec!["sms".into()];
        s.delivery.retry_base_ms = 60_000;
        s.delivery.max_retry_delay_ms = 60_000;
        s.delivery.providers = vec![sms::json_provider("down", &broken)];
        s.delivery.sms = vec!["down".into()];
    })
    .await;
    app.vishnu_login_otp().await;
    eventually(Duration::from_secs(10), || async {
        let s = app.scrape().await;
        let queued = value(&s, "otpgate_outbox_messages", &[("state", "queued")]);
        let age = value(&s, "otpgate_outbox_oldest_queued_age_seconds", &[]);
        if queued >= 1.0 && age >= 1.0 {
            Ok(())
        } else {
            Err(format!("queued {queued}, oldest {age}"))
        }
    })
    .await;
}

/// The upstream's latency, errors by kind and circuit state.
async fn upstream_families_move(b: Backend) {
    let url = down_url("/SummitAI/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall");
    let app = spawn_with(b, move |s| {
        s.metrics.refresh_seconds = 1;
        s.upstream.summit.url = Some(url);
        s.upstream.summit.breaker_failures = 2;
        s.upstream.summit.breaker_pause_ms = 60_000;
    })
    .await;
    let before = app.scrape().await;
    for _ in 0..3 {
        let a = app
            .summit(json!({"ServiceName": "IM_LogOrUpdateIncident", "objCommonParameters": {}}))
            .await;
        assert!(a.status >= 500, "{}", a.text);
    }
    let after = eventually(Duration::from_secs(5), || async {
        let s = app.scrape().await;
        match value(
            &s,
            "otpgate_upstream_circuit_open",
            &[("upstream", "summit")],
        ) {
            1.0 => Ok(s),
            v => Err(format!("circuit {v}")),
        }
    })
    .await;
    let errors = |kind| {
        moved(
            &before,
            &after,
            "otpgate_upstream_errors_total",
            &[("upstream", "summit"), ("kind", kind)],
        )
    };
    assert_eq!((errors("unreachable"), errors("circuit_open")), (2.0, 1.0));
    assert_eq!(
        moved(
            &before,
            &after,
            "otpgate_upstream_request_duration_seconds_count",
            &[]
        ),
        3.0
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "otpgate_http_requests_total",
            &[("dialect", "summit"), ("operation", "forwarded")]
        ),
        3.0
    );
}

/// Unknown ServiceNames, random paths and odd methods map to fixed label values: the
/// set of series is the same after them as after one request of each kind.
async fn hostile_input_creates_no_new_series(b: Backend) {
    let app = spawn(b).await;
    let probe = |i: usize| {
        let app = &app;
        async move {
            app.summit(json!({"ServiceName": format!("Evil_{i}_<x>"), "objCommonParameters": {}}))
                .await;
            app.post(&format!("/random/{i}/path"), None, "").await;
            app.post(&format!("/api/TwoFactor/Nope{i}"), None, "").await;
            app.post(&format!("/auth/v1/nope/{i}"), None, "").await;
            app.post(&format!("/x/Summit_RESTWCF.svc/other{i}"), None, "")
                .await;
            app.request(
                reqwest::Method::from_bytes(format!("ODD{i}").as_bytes()).unwrap(),
                &format!("/healthz/{i}"),
                &[],
                String::new(),
            )
            .await;
            app.request(reqwest::Method::DELETE, "/healthz", &[], String::new())
                .await;
        }
    };
    probe(0).await;
    // The first scrape is counted as it ends: the series of scrapes exist from the
    // second one on.
    app.scrape().await;
    let first: BTreeSet<String> = app.scrape().await.into_keys().collect();
    for i in 1..20 {
        probe(i).await;
    }
    let later: BTreeSet<String> = app.scrape().await.into_keys().collect();
    let new: Vec<&String> = later.difference(&first).collect();
    assert!(new.is_empty(), "new series: {new:?}");
    let s = app.scrape().await;
    for (label, allowed) in [
        (
            "dialect",
            &["summit", "twofactor", "capillary", "gateway", "none"][..],
        ),
        ("outcome", &[][..]),
    ] {
        for v in label_values(&s, label) {
            assert!(
                allowed.is_empty() || allowed.contains(&v.as_str()),
                "{label}={v}"
            );
            assert!(!v.contains("Evil") && !v.contains("random"), "{label}={v}");
        }
    }
    for v in label_values(&s, "operation") {
        assert!(
            !v.contains("Evil") && !v.contains("Nope") && !v.contains("random"),
            "{v}"
        );
    }
}

/// With `metrics.token`, /metrics answers 401 without it or with a wrong one.
async fn the_bearer_token_is_required_when_set(b: Backend) {
    let token = "s3cret-token-for-scrapes";
    let app = spawn_with(b, |s| s.metrics.token = Some(token.into())).await;
    let ask = |auth: Option<String>| {
        let app = &app;
        async move {
            app.request(
                reqwest::Method::GET,
                "/metrics",
                &[("authorization", auth.as_deref())],
                String::new(),
            )
            .await
        }
    };
    assert_eq!(ask(None).await.status, 401);
    assert_eq!(ask(Some("Bearer wrong-token".into())).await.status, 401);
    assert_eq!(ask(Some(token.into())).await.status, 401);
    let ok = ask(Some(format!("Bearer {token}"))).await;
    assert_eq!(ok.status, 200);
    assert!(ok.text.contains("otpgate_build_info"));
}

/// With `metrics.bind`, /metrics is served there and not on the main listener; with
/// `metrics.enabled = false`, nowhere.
async fn a_separate_listener_serves_the_metrics(b: Backend) {
    let app = spawn_with(b, |s| s.metrics.bind = Some("127.0.0.1:0".into())).await;
    let main = app
        .request(reqwest::Method::GET, "/metrics", &[], String::new())
        .await;
    assert_eq!(main.status, 404);
    let port = app.metrics_port.expect("a metrics port");
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("otpgate_http_requests_total"), "{text}");

    let app = spawn_with(b, |s| s.metrics.enabled = false).await;
    let off = app
        .request(reqwest::Method::GET, "/metrics", &[], String::new())
        .await;
    assert_eq!(off.status, 404);
}

/// `otpgate serve` with `log.format = "json"`: one access line per request, with the
/// request id, dialect, operation, outcome, status, latency and a masked address;
/// never the code or the full number.
async fn the_json_access_line_names_the_request_and_no_secret(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(b);
    let (child, base) = serve(
        &db.url,
        dir.path(),
        "info",
        &[
            ("OTPGATE_LOG__FORMAT", "json"),
            ("OTPGATE_OTP__RESEND_COOLDOWN_SECONDS", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let (ok, said) = run_otpgate(
        &db.url,
        dir.path(),
        &[
            "user",
            "add",
            "--login-uid",
            "1001",
            "--user-name",
            "Ann Lee",
            "--email",
            "ann@example.com",
            "--mobile",
            "9876543210",
            "--country-code",
            "91",
            "--password",
            "Secret#123",
        ],
    );
    assert!(ok, "{said}");
    let answer = client
        .post(format!("{base}{ENDPOINT}"))
        .header("x-request-id", "access-line-test-1")
        .json(&json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"objUserInformation": {
            "AuthType": "LOGIN_OTP", "CountryCode": "91", "EncryptedEmailID": "ann@example.com", "DeviceId": "d"}}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let txn = transaction_id(&serde_json::from_str(&answer).unwrap());
    let code = sink_code(&dir.path().join("otpgate-deliveries.jsonl"), &txn, None).await;
    let log = stop(child).await;
    let access: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "otpgate::access")
        .collect();
    let line = access
        .iter()
        .find(|v| v["fields"]["request_id"] == "access-line-test-1")
        .unwrap_or_else(|| panic!("no access line for the request in:\n{log}\n{answer}"));
    let f = &line["fields"];
    assert!(line["timestamp"].is_string(), "{line}");
    assert_eq!(f["dialect"], "summit", "{line}");
    assert_eq!(f["operation"], "ADM_GenerateOTP", "{line}");
    assert_eq!(f["outcome"], "ok", "{line}");
    assert_eq!(f["status"], 200, "{line}");
    assert!(f["latency_ms"].as_f64().is_some(), "{line}");
    assert_eq!(f["client"], "127.0.0.0/24", "{line}");
    // One line per request: the health probes and the generate.
    assert_eq!(
        access
            .iter()
            .filter(|v| v["fields"]["request_id"] == "access-line-test-1")
            .count(),
        1
    );
    assert_eq!(code.len(), 6, "{code}");
    for secret in [code.as_str(), "9876543210", "127.0.0.1", "ann@example.com"] {
        for l in &access {
            assert!(!l.to_string().contains(secret), "{secret} in {l}");
        }
    }
}

both!(
    request_and_otp_families_move,
    limits_and_throttle_are_counted,
    delivery_families_move,
    a_stuck_outbox_shows_its_oldest_message,
    the_outbox_gauge_shows_failed_messages_and_not_sent_ones,
    upstream_families_move,
    hostile_input_creates_no_new_series,
    the_bearer_token_is_required_when_set,
    a_separate_listener_serves_the_metrics,
    the_json_access_line_names_the_request_and_no_secret,
);

fn ops_file(name: &str) -> std::path::PathBuf {
    root().join("docs/operations").join(name)
}

/// Whether promtool is here; without it the checks are skipped, unless
/// OTPGATE_TEST_REQUIRE_PROMTOOL=1 (set by .ci/run).
fn promtool() -> bool {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var(REQUIRE_PROMTOOL).is_ok_and(|v| v == "1");
        assert!(
            !required,
            "promtool is not installed and {REQUIRE_PROMTOOL}=1: install it \
             (apt-get install prometheus)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: promtool not found: the scrape and the alert rules are NOT checked \
             (install prometheus; {REQUIRE_PROMTOOL}=1 makes this an error)"
        );
    }
    found
}

/// A scrape after traffic that puts a series in every family: codes issued and
/// verified, a password refused, an SMS provider failing, a forwarded request to a
/// legacy server that is down.
async fn busy_scrape() -> String {
    let broken = SmsEndpoint::start(usize::MAX).await;
    let url = down_url("/SummitAI/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall");
    let app = spawn_with(Backend::Sqlite, move |s| {
        s.metrics.refresh_seconds = 1;
        s.delivery.provider_cooldown_seconds = 600;
        s.delivery.providers = vec![sms::json_provider("down", &broken)];
        s.delivery.sms = vec!["down".into()];
        s.upstream.summit.url = Some(url);
    })
    .await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "email").await;
    app.login_app(&txn, &code, "d").await;
    app.summit(wrong_form("vishnu")).await;
    app.summit(json!({"ServiceName": "IM_LogOrUpdateIncident", "objCommonParameters": {}}))
        .await;
    eventually(Duration::from_secs(10), || async {
        let text = app.scrape_text().await;
        let s = parse(&text);
        if value(&s, "otpgate_delivery_failures_total", &[]) >= 1.0
            && value(&s, "otpgate_delivery_latency_seconds_count", &[]) >= 1.0
        {
            Ok(text)
        } else {
            Err("no delivery yet".to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_a_real_scrape_and_the_alert_rules() {
    if !promtool() {
        return;
    }
    let text = busy_scrape().await;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(ops_file("alerts.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `otpgate_…` name the dashboard and the alert rules use is one a real scrape
/// holds (a histogram's `_bucket`, `_sum` and `_count` included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_rules_use_only_metrics_that_exist() {
    let text = busy_scrape().await;
    let mut scraped = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split(' ').skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        scraped.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                scraped.insert(format!("{name}{suffix}"));
            }
        }
    }
    let names = regex::Regex::new(r"otpgate_[a-z_]+").unwrap();
    for file in ["grafana-dashboard.json", "alerts.yml"] {
        let body = std::fs::read_to_string(ops_file(file)).unwrap();
        if file.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&body).expect("the dashboard is JSON");
        }
        let used: BTreeSet<&str> = names.find_iter(&body).map(|m| m.as_str()).collect();
        assert!(used.len() >= 8, "{file} uses {used:?}");
        for name in used {
            assert!(scraped.contains(name), "{file}: {name} is in no scrape");
        }
    }
}
