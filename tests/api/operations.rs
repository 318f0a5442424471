//! Operating the gateway: request ids on audit rows and log lines, `otpgate audit`
//! with each filter, the audit's query plans, and `otpgate status`.

use std::time::Duration;

use diesel::prelude::*;
use otpgate::core::users::NewUser;
use otpgate::db::DbConnection;
use otpgate::db::audit::{self, Search};
use otpgate::db::schema::{audit_events, provider_status};
use serde_json::Value;

use crate::both;
use crate::support::sms::{self, SmsEndpoint};
use crate::support::*;

const MOBILE: &str = "9876543219";
const EMAIL: &str = "Vishnu.kumar@syntel.com";

/// Posts a Summit envelope with `X-Request-Id: id`.
async fn summit_as(app: &TestApp, id: &str, body: Value) -> Answer {
    app.request(
        reqwest::Method::POST,
        ENDPOINT,
        &[
            ("content-type", Some("application/json")),
            ("x-request-id", Some(id)),
        ],
        body.to_string(),
    )
    .await
}

/// `otpgate ARGS` on the app's database, with its settings as the configuration
/// file (so the binary knows the same providers); its exit code and standard output.
fn otpgate_on(app: &TestApp, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("otpgate.toml");
    std::fs::write(&config, toml::to_string(&*app.app.settings).unwrap()).unwrap();
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend(args);
    let o = otpgate(&app.app.settings.database_url, dir.path(), &all);
    assert!(
        o.status.code().is_some_and(|c| c < 2),
        "{}",
        output_text(&o)
    );
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).to_string(),
    )
}

fn audit_json(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json"];
    all.extend(args);
    let (code, out) = otpgate_on(app, &all);
    assert_eq!(code, Some(0), "{out}");
    match serde_json::from_str(&out) {
        Ok(Value::Array(v)) => v,
        _ => panic!("not a JSON array: {out}"),
    }
}

/// (event, outcome) of each line, in order.
fn events(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["event"].as_str().unwrap().to_string(),
                l["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The events a request causes carry its id: the client's X-Request-Id when sane, the
/// one it was given otherwise (the same the answer carries).
async fn audit_rows_carry_the_request_id(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let a = summit_as(&app, "req-generate-1", login_otp_request(EMAIL, "d")).await;
    let txn = transaction_id(&a.json());
    let code = app.code(&txn, "sms").await;
    let a = summit_as(&app, "req-login-1", login_app_request(&txn, &code, "d")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = summit_as(&app, "not a <sane> id", login_otp_request(EMAIL, "d")).await;
    let given = a.request_id.clone().unwrap();
    assert_eq!(given.len(), 32);
    let rows: Vec<(String, String, Option<String>)> = app
        .app
        .db
        .run(|c| {
            Ok(audit_events::table
                .order(audit_events::at)
                .select((
                    audit_events::event,
                    audit_events::outcome,
                    audit_events::request_id,
                ))
                .load(c)?)
        })
        .await
        .unwrap();
    let expected = vec![
        (
            "otp.generate".into(),
            "ok".into(),
            Some("req-generate-1".into()),
        ),
        ("otp.verify".into(), "ok".into(), Some("req-login-1".into())),
        ("otp.generate".into(), "ok".into(), Some(given)),
    ];
    assert_eq!(rows, expected);
}

/// Every log line of a request names its id (the `request` span), and none holds
/// the code or the number: the real binary's log.
async fn log_lines_carry_the_request_id(b: Backend) {
    let db = TestDb::new(b);
    let dir = tempfile::tempdir().unwrap();
    let o = otpgate(
        &db.url,
        dir.path(),
        &[
            "user",
            "add",
            "--login-uid",
            "836",
            "--user-name",
            "Vishnu",
            "--email",
            EMAIL,
            "--mobile",
            MOBILE,
            "--country-code",
            "91",
        ],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let (child, base) = serve(&db.url, dir.path(), "info", &[]).await;
    let answer = reqwest::Client::new()
        .post(format!("{base}{ENDPOINT}"))
        .header("x-request-id", "req-log-7")
        .json(&login_otp_request(EMAIL, "d"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let txn = transaction_id(&serde_json::from_str(&answer).unwrap());
    let code = sink_code(&dir.path().join("otpgate-deliveries.jsonl"), &txn, None).await;
    let log = stop(child).await;
    let served: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("summit request"))
        .collect();
    assert_eq!(served.len(), 1, "{log}");
    assert!(served[0].contains("request_id=req-log-7"), "{log}");
    assert!(!log.contains(MOBILE) && !log.contains(&code), "{log}");
}

/// Two users' codes, verified, refused and delivered; each filter of `otpgate audit`
/// finds exactly its events, and the table shows them in words, masked.
async fn each_audit_filter_finds_its_events(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    app.add_user(NewUser {
        user_id: Some(900),
        login_uid: "ann-1".into(),
        user_name: "Ann Lee".into(),
        email: "ann@example.com".into(),
        org_id: 1,
        ..NewUser::default()
    })
    .await;
    let a = summit_as(&app, "r-gen", login_otp_request(EMAIL, "d")).await;
    let txn = transaction_id(&a.json());
    let code = app.code(&txn, "sms").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    summit_as(&app, "r-wrong", login_app_request(&txn, wrong, "d")).await;
    summit_as(&app, "r-right", login_app_request(&txn, &code, "d")).await;
    let a = summit_as(&app, "r-ann", login_otp_request("ann@example.com", "d")).await;
    let ann_txn = transaction_id(&a.json());
    outbox_until(&app.app, |rows| rows.len() == 3 && all_final(rows)).await;

    let vishnu = [
        ("otp.verify", "ok"),
        ("otp.verify", "wrong_code"),
        ("otp.delivery", "sent"),
        ("otp.delivery", "sent"),
        ("otp.generate", "ok"),
    ]
    .map(|(e, o)| (e.to_string(), o.to_string()))
    .to_vec();
    for user in ["vishnu", "1xxxx4", "836"] {
        assert_eq!(
            events(&audit_json(&app, &["--user", user])),
            vishnu,
            "{user}"
        );
    }
    for to in [
        "+91 98765 43219",
        "919876543219",
        "+91-98765-43219",
        " vishnu.KUMAR@syntel.com ",
    ] {
        assert_eq!(
            events(&audit_json(&app, &["--destination", to])),
            vishnu,
            "{to}"
        );
    }
    assert!(audit_json(&app, &["--destination", "+91 98765 43210"]).is_empty());
    let ann = audit_json(&app, &["--transaction", &ann_txn]);
    assert_eq!(
        events(&ann),
        [("otp.delivery", "sent"), ("otp.generate", "ok")].map(|(e, o)| (e.into(), o.into()))
    );
    assert_eq!(ann[0]["provider"], "file");
    let masked = ann[0]["destination"].as_str().unwrap();
    assert!(masked.contains('*') && !masked.contains("ann@"), "{masked}");
    assert_eq!(ann[1]["user_id"], 900);
    let wrong_one = audit_json(&app, &["--request-id", "r-wrong"]);
    assert_eq!(
        events(&wrong_one),
        [("otp.verify".into(), "wrong_code".into())]
    );
    assert_eq!(wrong_one[0]["transaction_id"], txn.as_str());
    assert_eq!(wrong_one[0]["what"], "not verified: wrong code");
    assert_eq!(
        events(&audit_json(&app, &["--event", "otp.verify"])).len(),
        2
    );
    assert_eq!(
        events(&audit_json(
            &app,
            &["--event", "otp.verify", "--outcome", "wrong_code"]
        )),
        [("otp.verify".into(), "wrong_code".into())]
    );
    assert_eq!(
        events(&audit_json(
            &app,
            &["--outcome", "ok", "--event", "otp.generate"]
        )),
        [("otp.generate", "ok"), ("otp.generate", "ok")].map(|(e, o)| (e.into(), o.into()))
    );
    let delivered = audit_json(&app, &["--event", "otp.delivery"]);
    assert_eq!(delivered.len(), 3);
    assert!(delivered.iter().all(|d| d["what"] == "delivered by file"));
    assert_eq!(audit_json(&app, &["--since", "1h"]).len(), 4 + 3);
    assert!(audit_json(&app, &["--until", "1h"]).is_empty());
    assert!(audit_json(&app, &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    let newest = audit_json(&app, &["--limit", "1"]);
    assert_eq!(events(&newest)[0], ("otp.delivery".into(), "sent".into()));
    assert_eq!(newest.last().unwrap()["transaction_id"], ann_txn.as_str());

    let (code, table) = otpgate_on(&app, &["audit", "--user", "vishnu"]);
    assert_eq!(code, Some(0));
    for words in [
        "TIME",
        "REQUEST",
        "issued",
        "delivered by file",
        "verified",
        "not verified: wrong code",
        "*********219",
        "r-gen",
    ] {
        assert!(table.contains(words), "{words}: {table}");
    }
    assert!(
        !table.contains(MOBILE) && !table.to_lowercase().contains("vishnu.kumar@"),
        "{table}"
    );
}

/// Every statement `otpgate audit` runs, for each filter, reads an index on a table
/// filled and analysed like a busy one; and so does the lookup of a code's deliveries.
async fn every_audit_filter_is_answered_from_an_index(b: Backend) {
    let (app, _db, _dir) = open_app(b).await;
    let plans = app
        .db
        .run(|c| {
            let series = match c {
                DbConnection::Sqlite(_) => {
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000) \
                     SELECT i FROM n"
                }
                DbConnection::Pg(_) => "SELECT i FROM generate_series(1, 30000) AS g(i)",
            };
            diesel::sql_query(format!(
                "INSERT INTO audit_events (id, at, event, outcome, user_id, transaction_id, \
                 destination_masked, channel, request_id) \
                 SELECT 'e' || i, 1700000000000 + i * 1000, \
                 CASE i % 3 WHEN 0 THEN 'otp.generate' WHEN 1 THEN 'otp.verify' ELSE 'login.password' END, \
                 CASE i % 11 WHEN 0 THEN 'wrong_code' ELSE 'ok' END, \
                 i % 3000, 't' || (i / 3), '*******219', 'sms', 'r' || i FROM ({series}) AS s"
            ))
            .execute(c)?;
            diesel::sql_query(
                "INSERT INTO audit_destinations (destination_key, at, event_id, transaction_id) \
                 SELECT 'k' || (at % 5000), at, id, transaction_id FROM audit_events",
            )
            .execute(c)?;
            diesel::sql_query(format!(
                "INSERT INTO outbox (id, challenge_id, channel, destination, destination_masked, \
                 state, attempts, next_attempt_at, created_at, updated_at) \
                 SELECT 'o' || i, NULL, 'sms', '+1555', '*555', 'sent', 1, 0, i, i FROM ({series}) AS s"
            ))
            .execute(c)?;
            diesel::sql_query("ANALYZE").execute(c)?;
            let range = |s: Search| Search {
                since: Some(1_700_000_000_000 + 5_000_000),
                until: Some(1_700_000_000_000 + 25_000_000),
                ..s
            };
            let text = |v: &str| Some(v.to_string());
            let searches = [
                Search::default(),
                Search { user_id: Some(7), ..Search::default() },
                range(Search { user_id: Some(7), ..Search::default() }),
                Search { destination_key: text("k42"), ..Search::default() },
                range(Search { destination_key: text("k42"), ..Search::default() }),
                Search { transaction_id: text("t100"), ..Search::default() },
                Search { request_id: text("r100"), ..Search::default() },
                range(Search::default()),
                range(Search { event: text("otp.verify"), ..Search::default() }),
                range(Search { event: text("otp.verify"), outcome: text("wrong_code"), ..Search::default() }),
                range(Search { outcome: text("wrong_code"), ..Search::default() }),
                Search { outcome: text("wrong_code"), ..Search::default() },
            ];
            let mut plans = Vec::new();
            for s in searches {
                let s = Search { limit: 50, ..s };
                plans.extend(audit::explain(c, &s)?.into_iter().map(|p| (format!("{s:?}"), p)));
            }
            let deliveries = "SELECT id FROM outbox WHERE challenge_id IN ('t1', 't2')";
            let plan: Vec<String> = match c {
                DbConnection::Sqlite(c) => {
                    #[derive(QueryableByName)]
                    struct Plan {
                        #[diesel(sql_type = diesel::sql_types::Text)]
                        detail: String,
                    }
                    diesel::sql_query(format!("EXPLAIN QUERY PLAN {deliveries}"))
                        .load::<Plan>(c)?
                        .into_iter()
                        .map(|p| p.detail)
                        .collect()
                }
                DbConnection::Pg(c) => {
                    #[derive(QueryableByName)]
                    struct Plan {
                        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
                        line: String,
                    }
                    diesel::sql_query(format!("EXPLAIN {deliveries}"))
                        .load::<Plan>(c)?
                        .into_iter()
                        .map(|p| p.line)
                        .collect()
                }
            };
            plans.push(("deliveries".into(), format!("{deliveries}\n{}", plan.join("\n"))));
            Ok(plans)
        })
        .await
        .unwrap();
    assert_eq!(plans.len(), 12 + 2 * 2 + 1);
    for (search, plan) in plans {
        let lines: Vec<&str> = plan.lines().skip(1).collect();
        match b {
            Backend::Sqlite => {
                assert!(
                    lines.iter().any(|l| l.contains(" USING ")),
                    "no index: {search}\n{plan}"
                );
                assert!(
                    !lines
                        .iter()
                        .any(|l| l.starts_with("SCAN") && !l.contains(" USING ")),
                    "a full scan: {search}\n{plan}"
                );
            }
            Backend::Postgres => {
                assert!(
                    lines.iter().any(|l| l.contains("Index")),
                    "no index: {search}\n{plan}"
                );
                assert!(
                    !lines.iter().any(|l| l.contains("Seq Scan")),
                    "a full scan: {search}\n{plan}"
                );
            }
        }
    }
}

/// A gateway whose codes went out: status says all is well and exits 0.
async fn status_is_quiet_on_a_healthy_gateway(b: Backend) {
    let app = spawn(b).await;
    app.vishnu_login_otp().await;
    outbox_until(&app.app, |rows| rows.len() == 2 && all_final(rows)).await;
    provider_written(&app, "file").await;
    let (code, out) = otpgate_on(&app, &["status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("OK: nothing needs attention"), "{out}");
    assert!(out.contains("migrations: all applied"), "{out}");
    let (code, out) = otpgate_on(&app, &["status", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["problems"], serde_json::json!([]), "{s}");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        s["backend"],
        match b {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    assert_eq!(s["pending_migrations"], serde_json::json!([]));
    assert_eq!(s["outbox"]["by_state"]["sent"], 2);
    assert_eq!(s["outbox"]["oldest_queued_seconds"], Value::Null);
    let file = &s["providers"][0];
    assert_eq!(file["name"], "file", "{s}");
    assert_eq!(file["state"], "ok", "{s}");
    assert!(file["last_success"].is_string(), "{s}");
    assert_eq!(s["lockouts"]["refused"], 0);
}

/// The only SMS provider fails and its message waits in the outbox: status exits 1,
/// naming the provider first (the cause), then the outbox backing up; nothing it
/// prints holds the number.
async fn status_puts_a_failing_provider_and_a_stuck_outbox_first(b: Backend) {
    let endpoint = SmsEndpoint::start(usize::MAX).await;
    let e = endpoint.clone();
    let app = spawn_with(b, move |s| {
        s.delivery.providers = vec![sms::json_provider("gateway", &e)];
        s.delivery.sms = vec!["gateway".into()];
        s.delivery.provider_cooldown_seconds = 600;
        s.delivery.retry_base_ms = 600_000;
        s.delivery.max_retry_delay_ms = 600_000;
    })
    .await;
    app.vishnu_login_otp().await;
    provider_written(&app, "gateway").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, out) = otpgate_on(&app, &["status", "--json", "--max-queue-age", "1"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains(MOBILE), "{out}");
    let s: Value = serde_json::from_str(&out).unwrap();
    let problems = s["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{s}");
    assert_eq!(problems[0]["severity"], "critical");
    let first = problems[0]["what"].as_str().unwrap();
    assert!(
        first.starts_with("SMS provider gateway is failing, and no other works"),
        "{first}"
    );
    assert!(first.contains("cooling down"), "{first}");
    let second = problems[1]["what"].as_str().unwrap();
    assert!(second.starts_with("the outbox is backing up"), "{second}");
    let gateway = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "gateway")
        .unwrap();
    assert_eq!(gateway["state"], "cooling down", "{s}");
    assert_eq!(gateway["last_success"], Value::Null);
    assert!(gateway["failures"].as_i64().unwrap() >= 1);
    assert_eq!(s["outbox"]["by_state"]["queued"], 1, "{s}");

    let (code, out) = otpgate_on(&app, &["status", "--max-queue-age", "1"]);
    assert_eq!(code, Some(1), "{out}");
    let first_line = out.lines().nth(2).unwrap();
    assert!(
        first_line.contains("1. [critical] SMS provider gateway"),
        "{out}"
    );
    // Without a stuck outbox (a longer allowance), the provider alone needs attention.
    let (code, _) = otpgate_on(&app, &["status"]);
    assert_eq!(code, Some(1));
}

/// Waits until the dispatcher has written what `provider` did.
async fn provider_written(app: &TestApp, provider: &'static str) {
    eventually(Duration::from_secs(10), || async {
        let n: i64 = app
            .app
            .db
            .run(move |c| {
                Ok(provider_status::table
                    .filter(provider_status::provider.eq(provider))
                    .count()
                    .get_result(c)?)
            })
            .await
            .unwrap();
        if n == 1 {
            Ok(())
        } else {
            Err(format!("no status written for {provider}"))
        }
    })
    .await
}

both!(
    audit_rows_carry_the_request_id,
    log_lines_carry_the_request_id,
    each_audit_filter_finds_its_events,
    every_audit_filter_is_answered_from_an_index,
    status_is_quiet_on_a_healthy_gateway,
    status_puts_a_failing_provider_and_a_stuck_outbox_first,
);
