//! `otpgate bench`, briefly: the load generator drives real cycles through the real
//! binary and fails when a cycle fails. (The full benchmark is run by hand; see docs/performance.md.)

use std::process::{Command, Output};

use serde_json::Value;

use crate::both;
use crate::support::*;

fn bench(db_url: &str, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("bench")
        .args(["--database-url", db_url])
        .args(args)
        .current_dir(dir)
        .env_remove("OTPGATE_CONFIG")
        // Cheap password hashing for the storm's logins in a debug build.
        .env("OTPGATE_PASSWORD_HASHING__MEMORY_KIB", "8192")
        .env("OTPGATE_PASSWORD_HASHING__ITERATIONS", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("otpgate bench runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn a_short_run_completes_every_kind_of_cycle(b: Backend) {
    let db = TestDb::new(b);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let (url, path, report) = (db.url.clone(), dir.path().to_path_buf(), json.clone());
    let o = tokio::task::spawn_blocking(move || {
        bench(
            &url,
            &path,
            &[
                "--clients",
                "3",
                "--duration",
                "2",
                "--healthz-duration",
                "0.5",
                "--storm-clients",
                "1",
                "--json",
                report.to_str().unwrap(),
            ],
        )
    })
    .await
    .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("no errors"), "{out}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let phases = report["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["healthz", "summit", "twofactor", "storm", "forward"]
    );
    assert!(phases[0]["requests"].as_u64().unwrap() > 0, "{out}");
    // The forward phase went through otpgate to the stub legacy server, and says
    // what that added.
    let forward = &phases[4];
    assert!(forward["requests"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(
        forward["operations"]["IM_* forwarded"]["count"], forward["requests"],
        "{out}"
    );
    assert!(
        forward["operations"]["IM_* to the stub"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(forward["added_p99_ms"].is_number(), "{out}");
    assert!(out.contains("forward: forwarding adds"), "{out}");
    for p in &phases[1..4] {
        assert!(p["cycles"].as_u64().unwrap() > 0, "{out}");
        assert_eq!(p["cycles_failed"], 0, "{out}");
        assert!(p["gateway_cpu_seconds"].as_f64().unwrap() > 0.0, "{out}");
        assert!(p["gateway_peak_rss_mib"].as_f64().unwrap() > 0.0, "{out}");
    }
    let summit = &phases[1]["operations"];
    for op in ["ADM_GenerateOTP", "SMS delivery", "LoginApp OTP"] {
        assert_eq!(summit[op]["count"], phases[1]["cycles"], "{op}: {out}");
    }
    let storm = &phases[3]["operations"];
    assert!(
        storm["LoginApp FORM (storm)"]["count"].as_u64().unwrap() > 0,
        "{out}"
    );
}

both!(a_short_run_completes_every_kind_of_cycle);

#[test]
fn only_loopback_is_a_target() {
    let (dir, url) = scratch_sqlite("x.db");
    let o = bench(
        &url,
        dir.path(),
        &["--host", "192.0.2.7", "--duration", "1"],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("192.0.2.7 is not a loopback address"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_count_bounds_the_run() {
    let (dir, url) = scratch_sqlite("x.db");
    let json = dir.path().join("r.json");
    let o = bench(
        &url,
        dir.path(),
        &[
            "--phases",
            "summit",
            "--clients",
            "2",
            "--cycles",
            "5",
            "--duration",
            "60",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["phases"][0]["cycles"], 5, "{}", text(&o));
}

/// The unknown phase times each operation for known and unknown identifiers alike,
/// and every request of it succeeds.
#[test]
fn the_unknown_phase_compares_known_and_unknown_identifiers() {
    let (dir, url) = scratch_sqlite("x.db");
    let json = dir.path().join("r.json");
    let o = bench(
        &url,
        dir.path(),
        &[
            "--phases",
            "unknown",
            "--clients",
            "2",
            "--cycles",
            "4",
            "--duration",
            "60",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no errors"), "{}", text(&o));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let phase = &report["phases"][0];
    assert_eq!(
        (&phase["name"], &phase["cycles"], &phase["cycles_failed"]),
        (&Value::from("unknown"), &Value::from(4), &Value::from(0)),
        "{}",
        text(&o)
    );
    for op in [
        "ADM_GenerateOTP",
        "CreateOtpForRemindPassword",
        "token/generate",
        "otp/generate",
    ] {
        for side in ["known", "unknown"] {
            let name = format!("{op} {side}");
            assert_eq!(
                phase["operations"][&name]["count"],
                4,
                "{name}: {}",
                text(&o)
            );
        }
        assert!(
            text(&o).contains(&format!("unknown: {op}: median")),
            "{}",
            text(&o)
        );
    }
}

/// How many rows `table` holds.
fn rows(db_url: &str, table: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let n: N = if db_url.starts_with("postgres") {
        let mut c = diesel::PgConnection::establish(db_url).unwrap();
        diesel::sql_query(sql).get_result(&mut c).unwrap()
    } else {
        let mut c =
            diesel::SqliteConnection::establish(db_url.trim_start_matches("sqlite://")).unwrap();
        diesel::sql_query(sql).get_result(&mut c).unwrap()
    };
    n.n
}

/// A prefill is built once, with the history of every cycle, and a second run with the
/// same numbers reuses it instead of building it again.
async fn a_prefill_is_built_once_and_reused(b: Backend) {
    let db = TestDb::new(b);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--prefill-users",
        "200",
        "--prefill-days",
        "1",
        "--phases",
        "summit",
        "--clients",
        "2",
        "--cycles",
        "4",
    ];
    let run = |url: String, path: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || bench(&url, &path, &args))
    };
    let first = run(db.url.clone(), dir.path().into()).await.unwrap();
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    // 200 users at 200 a day for a day: 200 cycles, each a code, its message, an
    // otp.generate with its destination row and an otp.verify.
    assert!(out.contains("prefill: built in"), "{out}");
    for counted in [
        "users 200,",
        "challenges 200,",
        "outbox 200,",
        "audit_events 400,",
        "audit_destinations 200,",
    ] {
        assert!(out.contains(counted), "{counted}: {out}");
    }
    // The run's own 2 clients and the storm's user came on top of the 200.
    assert_eq!(rows(&db.url, "users"), 203);
    assert!(rows(&db.url, "challenges") >= 204);
    assert!(rows(&db.url, "audit_destinations") >= 204);
    assert!(rows(&db.url, "send_limits") > 0);

    let second = run(db.url.clone(), dir.path().into()).await.unwrap();
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert!(
        out.contains("prefill: reusing the prefilled database"),
        "{out}"
    );
    assert!(!out.contains("prefill: built in"), "{out}");
    assert_eq!(rows(&db.url, "users"), 206, "built again: {out}");
    // The phases began once the gateway's housekeeping at start (which deletes what
    // aged since the last run) had finished.
    assert!(
        out.contains("s for the gateways' housekeeping at start"),
        "{out}"
    );

    // Other numbers on the same database are refused, not mixed in.
    let (url, path) = (db.url.clone(), dir.path().to_path_buf());
    let other = tokio::task::spawn_blocking(move || {
        bench(
            &url,
            &path,
            &["--prefill-users", "300", "--prefill-days", "1"],
        )
    })
    .await
    .unwrap();
    assert!(!other.status.success());
    assert!(
        text(&other).contains("holds a prefill of 200 users"),
        "{}",
        text(&other)
    );
}

both!(a_prefill_is_built_once_and_reused);

/// The housekeeping phase has the gateway run its housekeeping (SIGUSR1) during its
/// cycles and says how often, what it removed and how long a run took.
#[test]
fn the_housekeeping_phase_reports_its_runs() {
    let (dir, url) = scratch_sqlite("x.db");
    let json = dir.path().join("r.json");
    let o = bench(
        &url,
        dir.path(),
        &[
            "--phases",
            "summit,housekeeping",
            "--clients",
            "2",
            "--cycles",
            "6",
            "--duration",
            "60",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (summit, phase) = (&report["phases"][0], &report["phases"][1]);
    assert!(summit["housekeeping"].is_null(), "{out}");
    assert_eq!(phase["name"], "housekeeping");
    assert_eq!(phase["cycles"], 6, "{out}");
    let h = &phase["housekeeping"];
    assert!(h["runs"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(h["failed_runs"], 0, "{out}");
    assert!(h["rows_removed"].is_u64(), "{out}");
    assert_eq!(h["run_by"], "gateway", "{out}");
    assert!(h["mean_run_ms"].as_f64().unwrap() > 0.0, "{out}");
    assert!(
        out.contains("housekeeping: housekeeping (run by the gateway) ran"),
        "{out}"
    );
    // The per-cycle columns: CPU is known for the child gateway.
    assert!(phase["gateway_cpu_ms_per_cycle"].is_number(), "{out}");
}

/// `--target` drives a gateway started elsewhere: the bench adds its users to the
/// gateway's database, the gateway sends its codes to the bench's SMS listener, and
/// without a process id its CPU and memory are unknown.
async fn a_gateway_started_elsewhere_is_a_target(b: Backend) {
    let db = TestDb::new(b);
    let dir = tempfile::tempdir().unwrap();
    let sms_port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[otp]
channels = ["sms"]
resend_cooldown_seconds = 0
max_sends = 1000

[security.throttle]
exempt = ["127.0.0.1"]

[delivery]
sms = ["bench"]

[[delivery.providers]]
name = "bench"
kind = "http_sms"
url = "http://127.0.0.1:{sms_port}/sms"
body = {{ to = "{{to_digits}}", text = "{{text}}" }}
"#
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let (gateway, base) = serve(&db.url, dir.path(), "warn", &[("OTPGATE_CONFIG", &config)]).await;
    let pid = gateway.id().unwrap().to_string();
    let json = dir.path().join("r.json");
    let run = |extra: Vec<String>| {
        let (url, path, base, json) = (
            db.url.clone(),
            dir.path().to_path_buf(),
            base.clone(),
            json.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let mut args: Vec<String> = [
                "--target",
                &base,
                "--sms-port",
                &sms_port.to_string(),
                "--phases",
                "summit",
                "--clients",
                "2",
                "--cycles",
                "4",
                "--json",
                json.to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            bench(&url, &path, &args)
        })
    };
    let o = run(Vec::new()).await.unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("SMS listener at http://127.0.0.1:{sms_port}/sms")),
        "{out}"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["gateways"][0], base.as_str(), "{out}");
    let phase = &report["phases"][0];
    assert_eq!(phase["cycles"], 4, "{out}");
    assert!(phase["gateway_cpu_seconds"].is_null(), "{out}");
    assert!(phase["gateway_peak_rss_mib"].is_null(), "{out}");
    assert!(out.contains('–'), "{out}");

    let o = run(vec!["--target-pid".into(), pid]).await.unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let phase = &report["phases"][0];
    assert!(
        phase["gateway_peak_rss_mib"].as_f64().unwrap() > 0.0,
        "{out}"
    );
    stop(gateway).await;
}

both!(a_gateway_started_elsewhere_is_a_target);

#[test]
fn a_target_needs_the_gateways_database() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["bench", "--target", "http://127.0.0.1:9"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("--database-url"), "{}", text(&o));
}
