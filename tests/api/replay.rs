//! The recorded scenarios of fixtures/scenarios are the regression suite: each is
//! replayed against otpgate on a fresh database, set up as fixtures/environment says,
//! and any byte of an answer that is not a hole in its template fails with a diff.
//!
//! OTPGATE_TEST_RECORD=1 writes the answers received as the new expected ones (review
//! them with `git diff` before committing).

use std::path::{Path, PathBuf};

use otpgate::db::capillary_brands::Brand;
use otpgate::db::twofactor_configs::TwoFactorConfig;
use otpgate::tools::replay::{self, Replayer, Scenario};

use crate::both;
use crate::schemas::validate;
use crate::support::environment::{configs, environment, expected_brands, prepared};
use crate::support::*;

/// Every scenario file, sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    let files = replay::collect(&[root().join("fixtures/scenarios")]).expect("scenarios");
    assert!(!files.is_empty(), "no scenarios found");
    files
}

async fn replay_one(b: Backend, path: &Path, record: bool) -> Result<(), String> {
    let scenario = Scenario::load(path)?;
    let app = prepared(b).await;
    let replayer = Replayer::new(&app.base, Some(app.sink.clone()))?;
    let outcome = replayer.run(&scenario).await;
    if outcome.passed() {
        return check_schemas(&scenario, &outcome.actual);
    }
    if record && outcome.actual.len() == scenario.steps.len() {
        replayer.write_recorded(&scenario, &outcome)?;
    }
    Err(format!(
        "{} ({}): {}\n{}",
        scenario.label(),
        scenario.title,
        if record { "recorded" } else { "differs" },
        outcome.report()
    ))
}

/// Every body sent and received validates against the schema its step names; a
/// request marked `invalid` must not.
fn check_schemas(scenario: &Scenario, actual: &[replay::Actual]) -> Result<(), String> {
    let mut problems = Vec::new();
    for (step, a) in scenario.steps.iter().zip(actual) {
        let request_ct = step
            .request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map_or("", |(_, v)| v.as_str());
        if !a.request_body.is_empty() {
            match (&step.request.schema, step.request.invalid) {
                (None, _) => {
                    problems.push(format!("step {}: the request names no schema", step.name))
                }
                (Some(s), false) => {
                    if let Err(e) = validate(s, request_ct, &a.request_body) {
                        problems.push(format!(
                            "step {}: the request does not follow {s}: {e}",
                            step.name
                        ));
                    }
                }
                (Some(s), true) => {
                    if validate(s, request_ct, &a.request_body).is_ok() {
                        problems.push(format!(
                            "step {}: the request is marked invalid but follows {s}",
                            step.name
                        ));
                    }
                }
            }
        }
        if !a.body.is_empty() {
            let ct = a.headers.get("content-type").map_or("", String::as_str);
            match &step.response.schema {
                None => problems.push(format!("step {}: the response names no schema", step.name)),
                Some(s) => {
                    if let Err(e) = validate(s, ct, &a.body) {
                        problems.push(format!(
                            "step {}: the response does not follow {s}: {e}",
                            step.name
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: schemas:\n  {}",
            scenario.label(),
            problems.join("\n  ")
        ))
    }
}

/// Every scenario, each on a fresh gateway; all failures are reported together.
async fn every_scenario_replays(b: Backend) {
    let record = std::env::var("OTPGATE_TEST_RECORD").is_ok_and(|v| v == "1");
    let files = scenario_files();
    // A few at a time: each has its own gateway and database.
    use futures_util::StreamExt;
    let results: Vec<Result<(), String>> = futures_util::stream::iter(files.iter())
        .map(|f| replay_one(b, f, record))
        .buffered(4)
        .collect()
        .await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed on {b:?}:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

both!(every_scenario_replays);

/// One changed byte in an expected answer fails its step, with a diff of that member.
async fn a_changed_byte_fails_with_a_readable_diff(b: Backend) {
    let path = root().join("fixtures/scenarios/summit/login-app-attempts.replay.toml");
    let mut scenario = Scenario::load(&path).unwrap();
    let body = scenario.steps[1].response.body.as_mut().unwrap();
    assert!(body.contains("2 attempts are left."), "{body}");
    *body = body.replace("2 attempts are left.", "2 attempts are left!");
    let app = prepared(b).await;
    let replayer = Replayer::new(&app.base, Some(app.sink.clone())).unwrap();
    let outcome = replayer.run(&scenario).await;
    let report = outcome.report();
    assert_eq!(
        outcome.mismatches.len(),
        1,
        "only that step differs: {report}"
    );
    assert!(
        report.contains("-  \"Errors\":\"Invalid OTP. 2 attempts are left!\",")
            && report.contains("+  \"Errors\":\"Invalid OTP. 2 attempts are left.\","),
        "{report}"
    );
    assert_eq!(outcome.steps_run, scenario.steps.len(), "the chain went on");
}

both!(a_changed_byte_fails_with_a_readable_diff);

async fn otpgate_replay(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .arg("replay")
        .args(args)
        .env_remove("OTPGATE_CONFIG")
        // The local gateway's configuration, even a broken one, is not replay's concern.
        .env("OTPGATE_POOL_SIZE", "not-a-number")
        .output()
        .await
        .expect("otpgate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// `otpgate replay` against a running gateway: a line per scenario, a diff per
/// mismatch, the summary, the exit status; `--record` adopts the answers received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_command_reports_and_records() {
    let app = prepared(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let good = root().join("fixtures/scenarios/twofactor/create-validate-json.replay.toml");
    let text = std::fs::read_to_string(&good).unwrap();
    assert!(text.contains(r#""Code":6008}"#));
    let changed = dir.path().join("changed.replay.toml");
    std::fs::write(&changed, text.replace(r#""Code":6008}"#, r#""Code":6009}"#)).unwrap();
    let target = app.base.as_str().as_ref();
    let sink = app.sink.as_os_str();

    let (ok, out) = otpgate_replay(&[
        "--target".as_ref(),
        target,
        "--sink".as_ref(),
        sink,
        good.as_os_str(),
        changed.as_os_str(),
    ])
    .await;
    assert!(!ok, "a mismatch exits non-zero: {out}");
    assert!(
        out.contains("ok    twofactor/create-validate-json.replay.toml (7 steps)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("FAIL  {} (7 steps): ", changed.display())),
        "{out}"
    );
    assert!(
        out.contains("-  \"Code\":6009") && out.contains("+  \"Code\":6008"),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");

    // Without the sink, the codes cannot be had: said plainly.
    let (ok, out) = otpgate_replay(&["--target".as_ref(), target, good.as_os_str()]).await;
    assert!(!ok && out.contains("give --sink FILE"), "{out}");
    assert!(out.contains("stopped after step 1 of 7"), "{out}");

    // The target's address, echoed in an answer, is recorded as {{host}}.
    let routing = std::fs::read_to_string(
        root().join("fixtures/scenarios/twofactor/remind-password-and-routing.replay.toml"),
    )
    .unwrap();
    assert!(routing.contains("'http://{{host}}/customerservice"));
    let changed_routing = dir.path().join("routing.replay.toml");
    std::fs::write(
        &changed_routing,
        routing.replace(
            "'http://{{host}}/customerservice",
            "'http://gateway/customerservice",
        ),
    )
    .unwrap();

    let (ok, out) = otpgate_replay(&[
        "--record".as_ref(),
        "--target".as_ref(),
        target,
        "--sink".as_ref(),
        sink,
        changed.as_os_str(),
        changed_routing.as_os_str(),
    ])
    .await;
    assert!(!ok && out.contains("recorded"), "{out}");
    assert_eq!(std::fs::read_to_string(&changed_routing).unwrap(), routing);
    let recorded = std::fs::read_to_string(&changed).unwrap();
    assert!(recorded.contains(r#""Code":6008}"#), "{recorded}");
    assert!(
        recorded.contains("{{ref:uuid}}"),
        "capture names are kept: {recorded}"
    );
    let (ok, out) = otpgate_replay(&[
        "--target".as_ref(),
        target,
        "--sink".as_ref(),
        sink,
        dir.path().as_os_str(),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
}

/// prepare.sh provisions a real gateway's database with what the suite loads from
/// users.json, twofactor-configs.json and capillary-brands.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_sh_provisions_what_the_suite_uses() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = sqlite_url(dir.path(), "replay.db");
    let o = tokio::process::Command::new(environment().join("prepare.sh"))
        .env("OTPGATE", env!("CARGO_BIN_EXE_otpgate"))
        .env("OTPGATE_CONFIG", environment().join("otpgate.toml"))
        .env("OTPGATE_DATABASE_URL", &db_url)
        .env("OTPGATE_SECRETS__KEY_FILE", dir.path().join("otpgate.key"))
        .env("OTPGATE_DELIVERY__FILE_PATH", dir.path().join("sink.jsonl"))
        .output()
        .await
        .expect("prepare.sh runs");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut settings = test_settings(&db_url, dir.path());
    settings.secrets.otp_key = None;
    settings.secrets.key_file = dir.path().join("otpgate.key");
    let app = tokio::task::spawn_blocking(move || otpgate::state::AppState::new(settings))
        .await
        .unwrap()
        .expect("opens the prepared database");
    let stored = app
        .db
        .run(|c| Ok(otpgate::db::twofactor_configs::all(c)?))
        .await
        .unwrap();
    let strip = |c: &TwoFactorConfig| TwoFactorConfig {
        created_at: 0,
        ..c.clone()
    };
    assert_eq!(
        stored.iter().map(strip).collect::<Vec<_>>(),
        configs(),
        "prepare.sh and twofactor-configs.json disagree"
    );
    let users: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(environment().join("users.json")).unwrap())
            .unwrap();
    let n = app
        .db
        .run(|c| {
            use diesel::prelude::*;
            Ok(otpgate::db::schema::users::table
                .count()
                .get_result::<i64>(c)?)
        })
        .await
        .unwrap();
    assert_eq!(n, users.len() as i64);
    let mut stored = app
        .db
        .run(|c| Ok(otpgate::db::capillary_brands::all(c)?))
        .await
        .unwrap();
    stored.sort_by(|a, b| a.brand_key.cmp(&b.brand_key));
    let strip = |b: &Brand| Brand {
        created_at: 0,
        updated_at: 0,
        ..b.clone()
    };
    assert_eq!(
        stored.iter().map(strip).collect::<Vec<_>>(),
        expected_brands(),
        "prepare.sh and capillary-brands.json disagree"
    );
}
