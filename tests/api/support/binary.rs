//! The real binary, run as an operator runs it.

use super::TEST_KEY;

pub const BIN: &str = env!("CARGO_BIN_EXE_otpgate");

/// Runs `otpgate ARGS` on `db_url` in `dir`.
pub fn otpgate(db_url: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    command(db_url, dir, args).output().expect("otpgate runs")
}

/// Runs `otpgate ARGS` with `input` on its standard input.
pub fn otpgate_with_stdin(
    db_url: &str,
    dir: &std::path::Path,
    args: &[&str],
    input: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = command(db_url, dir, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("otpgate starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("otpgate runs")
}

fn command(db_url: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .env_remove("OTPGATE_CONFIG")
        .env("OTPGATE_DATABASE_URL", db_url)
        .env("OTPGATE_PASSWORD_HASHING__MEMORY_KIB", "8192")
        .env("OTPGATE_PASSWORD_HASHING__ITERATIONS", "1")
        .env("OTPGATE_SECRETS__OTP_KEY", TEST_KEY)
        // Variables of the test suite are not configuration keys.
        .env("OTPGATE_TEST_MARKER", "1")
        .env("RUST_LOG", "warn");
    c
}

/// Whether `otpgate ARGS` succeeded, and what it said.
pub fn run_otpgate(db_url: &str, dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = otpgate(db_url, dir, args);
    (o.status.success(), output_text(&o))
}

/// What a command said (stdout, then stderr), with its exit status when it failed.
pub fn output_text(o: &std::process::Output) -> String {
    let mut said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if !o.status.success() {
        said.push_str(&format!("\n[{}]", o.status));
    }
    said
}

/// `otpgate serve` on `db_url` in `dir`, configured as the commands above are plus
/// `env`, logging at `rust_log` to a pipe; answers once it is ready, with its base URL.
/// Stop it with [`stop`] to read what it logged.
pub async fn serve(
    db_url: &str,
    dir: &std::path::Path,
    rust_log: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let port = free_port();
    let mut c = command(db_url, dir, &["serve"]);
    c.env("OTPGATE_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = tokio::process::Command::from(c)
        .kill_on_drop(true)
        .spawn()
        .expect("otpgate serve starts");
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    (child, base)
}

/// Stops a `serve` with SIGTERM and returns what it logged.
pub async fn stop(child: tokio::process::Child) -> String {
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("stops")
        .unwrap();
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the gateway at `base` answers `/readyz`.
pub async fn wait_ready(base: &str) {
    super::eventually(std::time::Duration::from_secs(30), || async {
        match reqwest::get(format!("{base}/readyz")).await {
            Ok(r) if r.status().is_success() => Ok(()),
            _ => Err(format!("{base} did not become ready")),
        }
    })
    .await;
}
