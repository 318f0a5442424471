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
