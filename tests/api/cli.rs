//! The command line, as an operator runs it: the real binary.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

use crate::support::*;

#[test]
fn configuration_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let o = otpgate("mysql://root@localhost/x", dir.path(), &["migrate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        output_text(&o).contains("database_url: unsupported scheme 'mysql://'; use sqlite://PATH"),
        "{}",
        output_text(&o)
    );

    let o = Command::new(BIN)
        .args(["migrate"])
        .current_dir(dir.path())
        .env("OTPGATE_OTP__LENGTH", "3")
        .env("OTPGATE_BIND", "nowhere")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = output_text(&o);
    assert!(t.contains("otp.length: 3 is outside 4 to 10 digits"), "{t}");
    assert!(t.contains("bind: 'nowhere' is not an address"), "{t}");

    let o = Command::new(BIN)
        .args(["migrate"])
        .current_dir(dir.path())
        .env(
            "OTPGATE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/none",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        output_text(&o).contains("secrets.otp_key: required with PostgreSQL"),
        "{}",
        output_text(&o)
    );

    let cfg = dir.path().join("otpgate.toml");
    std::fs::write(&cfg, "[otp]\nlenght = 6\n").unwrap();
    let o = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "migrate"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        output_text(&o).contains("unknown field: found `lenght`"),
        "{}",
        output_text(&o)
    );
}

#[test]
fn users_are_added_and_imported_with_a_report_per_record() {
    let (dir, url) = scratch_sqlite("cli.db");
    let o = otpgate(&url, dir.path(), &["migrate"]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(output_text(&o).contains("database is up to date (sqlite)"));

    let o = otpgate(
        &url,
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
            "ann-password",
            "--profile",
            "TimezoneMins=330",
        ],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(output_text(&o).contains("added user Ann Lee (UserId 1001, login ann@example.com)"));
    let o = otpgate(
        &url,
        dir.path(),
        &[
            "user",
            "add",
            "--login-uid",
            "1001",
            "--user-name",
            "Again",
            "--email",
            "ann@example.com",
        ],
    );
    assert!(!o.status.success());
    assert!(
        output_text(&o).contains("a user with this login_name already exists"),
        "{}",
        output_text(&o)
    );

    let import = dir.path().join("users.json");
    std::fs::write(
        &import,
        json!([
            {"login_uid": "2001", "user_name": "Bo", "email": "bo@example.com", "mobile": "9876500001", "country_code": "91", "password": "bo-password"},
            {"login_uid": "2002", "user_name": "", "email": "bad"},
            {"login_uid": "2003", "user_name": "Cy", "email": "cy@example.com", "profile": {"Designation": "Lead"}},
            {"login_uid": "2004", "user_name": "Di", "email": "ann@example.com"},
            {"login_uid": "2005", "user_name": "Ed", "email": "ed@example.com", "colour": "blue"}
        ])
        .to_string(),
    )
    .unwrap();
    let o = otpgate(
        &url,
        dir.path(),
        &["user", "import", import.to_str().unwrap()],
    );
    let t = output_text(&o);
    assert!(
        !o.status.success(),
        "a failed record makes the exit status say so"
    );
    assert!(t.contains("2 users added, 3 failed"), "{t}");
    assert!(
        t.contains("record 2: user_name is required; email 'bad' is not an e-mail address"),
        "{t}"
    );
    assert!(
        t.contains("record 4: a user with this login_name already exists"),
        "{t}"
    );
    assert!(t.contains("record 5: unknown field `colour`"), "{t}");
}

/// `otpgate serve --demo`: the README's walk-through, then a graceful stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_runs_the_whole_flow_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = tokio::process::Command::new(BIN)
        .args(["serve", "--demo"])
        .current_dir(dir.path())
        .env("OTPGATE_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let client = reqwest::Client::new();
    let r: serde_json::Value = client
        .post(format!("{base}{ENDPOINT}"))
        .json(&login_otp_request("demo@example.com", "my-phone"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let txn = transaction_id(&r);
    let sink = dir.path().join("otpgate-deliveries.jsonl");
    let code = sink_code(&sink, &txn, None).await;
    let r: serde_json::Value = client
        .post(format!("{base}{ENDPOINT}"))
        .json(&login_app_request(&txn, &code, "my-phone"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["User"]["UserDetails"][0]["EmailId"], "demo@example.com",
        "{r}"
    );

    let pid = child.id().unwrap().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("stops")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("demo: user demo@example.com / password demo-password"));
    assert!(
        stdout.contains(&format!(
            "[delivery] sms to *********219: {code} is your otpgate OTP"
        )),
        "{stdout}"
    );
    // The log (stderr) never carries the code or the full number.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(&code) && !stderr.contains("9876543219"),
        "{stderr}"
    );
}

/// The README's "Try it" steps, its own shell blocks as written, pasted in order on a
/// fresh `otpgate serve --demo` (only the port differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_try_it_steps_work_pasted_in_order() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## Try it").expect("a Try it section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 5, "{section}");

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _child = tokio::process::Command::new(BIN)
        .args(["serve", "--demo"])
        .current_dir(dir.path())
        .env("OTPGATE_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    // A person pastes the next step a moment later: the SMS is in the file by then.
    let script: String = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "sleep 1\necho; echo '--- step {i}'\n{}",
                b.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            )
        })
        .collect();
    let out = tokio::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<&str> = text.split("--- step ").skip(1).collect();
    assert_eq!(steps.len(), 5, "{text}");
    let expect = [
        vec![
            r#""Errors":"""#,
            "OTP sent to dem*@ex*****.com and *******219",
        ],
        vec![
            r#"{"User":{"UserDetails":[{"#,
            r#""EmailId":"demo@example.com""#,
        ],
        vec![r#""Success":true"#, r#""Code":4001"#],
        vec![r#""IsValid":true"#, r#""Code":6001"#],
        vec![r#""Errors":"""#, r#""AuthenticationType":"password""#],
    ];
    for (i, (step, wanted)) in steps.iter().zip(expect).enumerate() {
        for w in wanted {
            assert!(step.contains(w), "step {}: no {w} in:\n{step}", i + 1);
        }
    }
}

/// `otpgate serve` on the SQLite file `otpgate.db` in `dir`, logging at `rust_log`.
async fn serve_sqlite(dir: &std::path::Path, rust_log: &str) -> (tokio::process::Child, String) {
    serve(&sqlite_url(dir, "otpgate.db"), dir, rust_log, &[]).await
}

/// The database holds password hashes, e-mail addresses and phone numbers: the SQLite
/// file and its -wal and -shm files are created readable by their owner alone, by a
/// command and by the server alike.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_are_created_readable_by_their_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("otpgate.db");
    let o = otpgate(
        &sqlite_url(dir.path(), "otpgate.db"),
        dir.path(),
        &["migrate"],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    assert_eq!(mode(&db), 0o600, "after migrate");

    std::fs::remove_file(&db).unwrap();
    let (child, base) = serve_sqlite(dir.path(), "warn").await;
    // A request that reads and writes the database while the server holds it open.
    reqwest::Client::new()
        .post(format!("{base}{ENDPOINT}"))
        .json(&login_otp_request("nobody@example.com", "d"))
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("otpgate.db{suffix}"));
        assert!(p.exists(), "{} while serving", p.display());
        assert_eq!(mode(&p), 0o600, "{} while serving", p.display());
        seen.push(suffix);
    }
    assert_eq!(seen.len(), 3);
    stop(child).await;
}

/// Requests a client got wrong at the HTTP level (a control byte in a header value, a
/// space in a header name, an unknown HTTP version) are answered 400 and logged at
/// debug, each counted: none is an ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_logged_at_debug_and_never_as_an_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve_sqlite(dir.path(), "warn,otpgate::http=debug").await;
    let addr = base.trim_start_matches("http://").to_string();
    let malformed: [&[u8]; 3] = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: b\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    ];
    for request in malformed {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
            .await
            .expect("the server answers and closes")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    // The server still serves, and a well-formed request logs nothing.
    assert!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let log = stop(child).await;
    assert!(!log.contains("ERROR"), "{log}");
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("a client's request was refused"))
        .collect();
    assert_eq!(refused.len(), 3, "{log}");
    assert!(refused.iter().all(|l| l.contains("DEBUG")), "{log}");
    assert!(refused[0].contains("invalid Header provided"), "{log}");
    assert!(refused[2].contains("malformed_requests=3"), "{log}");
}

/// Two `otpgate serve` processes on one PostgreSQL database: a code succeeds once
/// across both, and a send limit holds over both together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_database() {
    if postgres_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone();
    let d = dir.path().to_path_buf();
    let add = tokio::task::spawn_blocking(move || {
        otpgate(
            &url,
            &d,
            &[
                "user",
                "add",
                "--login-uid",
                "7",
                "--user-name",
                "Multi",
                "--email",
                "multi@example.com",
                "--mobile",
                "9000000001",
                "--country-code",
                "91",
            ],
        )
    })
    .await
    .unwrap();
    assert!(add.status.success(), "{}", output_text(&add));
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        children.push(
            tokio::process::Command::new(BIN)
                .arg("serve")
                .current_dir(dir.path())
                .env("OTPGATE_BIND", format!("127.0.0.1:{port}"))
                .env("OTPGATE_DATABASE_URL", &db.url)
                .env("OTPGATE_SECRETS__OTP_KEY", TEST_KEY)
                .env("OTPGATE_OTP__MAX_SENDS", "4")
                .env("OTPGATE_OTP__RESEND_COOLDOWN_SECONDS", "0")
                .env("OTPGATE_DELIVERY__POLL_INTERVAL_MS", "20")
                .env("RUST_LOG", "warn")
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        );
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    for b in &bases {
        wait_ready(b).await;
    }
    let client = reqwest::Client::new();
    let post = |base: &str, body: serde_json::Value| {
        let req = client.post(format!("{base}{ENDPOINT}")).json(&body);
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let first = post(&bases[0], login_otp_request("multi@example.com", "d")).await;
    let txn = transaction_id(&first);
    let code = sink_code(&dir.path().join("otpgate-deliveries.jsonl"), &txn, None).await;
    let answers =
        join_all((0..20).map(|i| post(&bases[i % 2], login_app_request(&txn, &code, "d")))).await;
    let ok = answers.iter().filter(|a| a["User"].is_object()).count();
    assert_eq!(ok, 1, "{answers:?}");

    // One send so far; the limit of 4 allows 3 more, spread over both processes.
    let answers =
        join_all((0..10).map(|i| post(&bases[i % 2], login_otp_request("multi@example.com", "d"))))
            .await;
    let sent = answers.iter().filter(|a| a["Errors"] == "").count();
    assert_eq!(sent, 3, "{answers:?}");
    // Each message went out once, though both dispatchers were draining the outbox.
    let sink = dir.path().join("otpgate-deliveries.jsonl");
    let read_ids = || -> Vec<String> {
        std::fs::read_to_string(&sink)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    // Eight messages were queued; those of superseded codes may have been cancelled
    // before anyone sent them. Wait until all are final, then compare with the file.
    let final_states = || -> Vec<(String, String)> {
        use diesel::prelude::*;
        use otpgate::db::schema::outbox;
        let mut c = diesel::PgConnection::establish(&db.url).unwrap();
        outbox::table
            .select((outbox::id, outbox::state))
            .load(&mut c)
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rows = final_states();
    while rows.iter().any(|(_, s)| s != "sent" && s != "cancelled") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        rows = final_states();
    }
    assert_eq!(rows.len(), 8);
    let mut sent: Vec<String> = rows
        .into_iter()
        .filter(|(_, s)| s == "sent")
        .map(|(id, _)| id)
        .collect();
    sent.sort();
    let mut delivered = read_ids();
    delivered.sort();
    assert_eq!(
        delivered, sent,
        "each sent message delivered once, no cancelled one"
    );
    assert!(!sent.is_empty());
    drop(children);
}

/// A command against PostgreSQL exits cleanly every time. The pool opens a replacement
/// TLS connection in the background while the command finishes; with OpenSSL's exit
/// clean-up left on, about one run in ten died of SIGSEGV after printing its answer.
#[test]
fn commands_on_postgres_exit_cleanly_every_time() {
    if postgres_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let dir = tempfile::tempdir().unwrap();
    for run in 0..40 {
        let o = otpgate(&db.url, dir.path(), &["outbox", "list"]);
        assert!(
            o.status.success(),
            "run {run} ended with {}: {}",
            o.status,
            output_text(&o)
        );
        assert_eq!(output_text(&o).trim(), "no messages");
    }
}
