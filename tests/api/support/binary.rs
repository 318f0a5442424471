//! The real binary, run as an operator runs it.

use super::TEST_KEY;

pub const BIN: &str = env!("CARGO_BIN_EXE_otpgate");

/// Runs `otpgate ARGS` on `db_url` in `dir`.
pub fn otpgate(db_url: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("OTPGATE_CONFIG")
        .env("OTPGATE_DATABASE_URL", db_url)
        .env("OTPGATE_PASSWORD_HASHING__MEMORY_KIB", "8192")
        .env("OTPGATE_PASSWORD_HASHING__ITERATIONS", "1")
        .env("OTPGATE_SECRETS__OTP_KEY", TEST_KEY)
        // Variables of the test suite are not configuration keys.
        .env("OTPGATE_TEST_MARKER", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("otpgate runs")
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
