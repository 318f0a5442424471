//! The command line: `main` parses [`Cli`] and hands it to [`run`], which loads the
//! settings and calls the command's group, one file each.

mod apikey;
pub mod args;
pub mod audit;
mod brand;
mod logging;
mod migrate;
mod outbox;
mod serve;
pub mod status;
mod tools;
mod twofactor_config;
mod user;

use std::process::ExitCode;

pub use args::{Cli, Command};
pub use brand::{BrandSettings, format_brands, save_brand};
pub use outbox::{format_outbox, outbox_list, outbox_retry};
pub use serve::{DEMO_LOGIN, DEMO_PASSWORD, ensure_demo_user};
pub use user::{ImportReport, add_user, import_users};

use crate::config::Settings;

/// Runs one command line: exit code 0 when it succeeded, 2 when the configuration is
/// invalid, 1 for any other failure (said on standard error); `status` exits 1 when
/// something needs attention.
pub fn run(cli: Cli) -> ExitCode {
    // A client of any gateway: the local gateway's configuration is not its concern.
    let command = match cli.command {
        Command::Replay(a) => return exit_code(tools::run_replay(a)),
        command => command,
    };
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("otpgate: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    logging::init(&settings);
    if let Command::Status(args) = command {
        return status::run(args, settings);
    }
    exit_code(dispatch(command, settings))
}

fn exit_code(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otpgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command, settings: Settings) -> Result<(), String> {
    match command {
        Command::Serve { demo } => serve::run(settings, demo),
        Command::Migrate => migrate::run(settings),
        Command::User(c) => user::run(c, settings),
        Command::ApiKey(c) => apikey::run(c, settings),
        Command::Outbox(c) => outbox::run(c, settings),
        Command::Audit(a) => audit::run(a, settings),
        Command::Status(a) => {
            status::run(a, settings);
            Ok(())
        }
        Command::TwoFactorConfig(c) => twofactor_config::run(c, settings),
        Command::Brand(c) => brand::run(c, settings),
        Command::Replay(a) => tools::run_replay(a),
        Command::Bench(args) => tools::run_bench(args, settings),
    }
}
