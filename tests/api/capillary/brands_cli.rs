//! `otpgate brand`: the operator's side of the Capillary brands.

use super::HASH_KEY;
use crate::support::*;

/// `otpgate brand add|set|list`, as an operator runs them.
#[test]
fn brands_are_managed_from_the_command_line() {
    let (dir, url) = scratch_sqlite("cli.db");
    let run = |args: &[&str]| run_otpgate(&url, dir.path(), args);
    let (ok, t) = run(&[
        "brand",
        "add",
        "DocDemo",
        "--otp-max-count",
        "3",
        "--otp-timeout",
        "10",
    ]);
    assert!(ok, "{t}");
    assert!(t.contains("brand DocDemo added"), "{t}");
    let (ok, t) = run(&["brand", "add", "docdemo"]);
    assert!(!ok && t.contains("brand 'docdemo' exists"), "{t}");
    let (ok, t) = run(&[
        "brand",
        "add",
        "Zero",
        "--otp-max-count",
        "0",
        "--otp-timeout",
        "5",
    ]);
    assert!(
        !ok && t.contains("maximum OTP count per customer cannot be 0 (it has to be >= 1)"),
        "{t}"
    );
    let (ok, t) = run(&["brand", "add", "Half", "--otp-max-count", "3"]);
    assert!(
        !ok && t.contains("give otp max count and otp timeout together"),
        "{t}"
    );
    let (ok, t) = run(&["brand", "set", "Nobody", "--max-otp-retries", "3"]);
    assert!(!ok && t.contains("no brand 'Nobody'"), "{t}");
    let (ok, t) = run(&[
        "brand",
        "set",
        "DOCDEMO",
        "--max-otp-retries",
        "3",
        "--channels",
        "email",
        "--hash-key",
        HASH_KEY,
        "--session-validity",
        "20",
    ]);
    assert!(ok, "{t}");
    let (ok, t) = run(&["brand", "list"]);
    assert!(ok, "{t}");
    let line = t
        .lines()
        .find(|l| l.starts_with("DocDemo"))
        .expect("listed");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "DocDemo", "0", "3/10min", "3", "6", "15", "20", "15", "60", "email", "on,", "300s"
        ]
    );
    assert!(!t.contains(HASH_KEY), "the hash key is not shown");
    let (ok, t) = run(&[
        "brand",
        "set",
        "DocDemo",
        "--otp-max-count",
        "none",
        "--otp-timeout",
        "none",
        "--hash-key",
        "none",
    ]);
    assert!(ok, "{t}");
    let (_, t) = run(&["brand", "list"]);
    let line = t
        .lines()
        .find(|l| l.starts_with("DocDemo"))
        .expect("listed");
    assert!(line.contains(" none ") && line.ends_with("off"), "{line}");
}
