use std::process::ExitCode;

use clap::Parser;
use otpgate::cli::{self, Cli};

fn main() -> ExitCode {
    // Before anything touches TLS: OpenSSL without its atexit clean-up (see db::ConnectionManager).
    openssl_sys::init();
    cli::run(Cli::parse())
}
