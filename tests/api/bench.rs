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
