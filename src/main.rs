use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use otpgate::cli;
use otpgate::config::Settings;
use otpgate::core::users::NewUser;
use otpgate::startup::Gateway;
use otpgate::state::AppState;

/// A legacy-compatible OTP gateway.
#[derive(Parser)]
#[command(name = "otpgate", version)]
struct Cli {
    /// TOML configuration file; OTPGATE_* environment variables override it.
    #[arg(long, global = true, env = "OTPGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once; the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Create a demo user and print every message on the console too.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the user directory.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect outgoing messages and retry failed ones (destinations masked).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Manage the TwoFactorConfigurations CreateTwoFactorSmsOtp names by id.
    #[command(subcommand, name = "twofactor-config")]
    TwoFactorConfig(TwoFactorConfigCommand),
    /// Manage the brands of the Capillary auth API (/auth/v1).
    #[command(subcommand)]
    Brand(BrandCommand),
    /// Replay recorded exchanges (fixtures/scenarios) against a running gateway.
    Replay(ReplayArgs),
    /// Load-test the full OTP cycle against a gateway it starts on loopback.
    Bench(otpgate::tools::bench::BenchArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// The gateway to send every request to (scheme, host and port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// The gateway's file sink (delivery.file_path), where codes are read from.
    #[arg(long)]
    sink: Option<PathBuf>,
    /// Write the answers received as the new expected ones (review the diff first).
    #[arg(long)]
    record: bool,
    /// Scenario files, or directories searched for *.replay.toml.
    #[arg(required = true)]
    fixtures: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum BrandCommand {
    /// Add a brand, with the defaults for what is not given.
    Add {
        /// The brand name requests send in `brand` (matched without case).
        name: String,
        #[command(flatten)]
        settings: cli::BrandSettings,
    },
    /// Change settings of a brand.
    Set {
        name: String,
        #[command(flatten)]
        settings: cli::BrandSettings,
    },
    /// List the brands.
    List,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Messages queued, being sent or failed, and the others of the last 24 hours.
    List {
        /// Only messages in this state: queued, sending, sent, failed, cancelled.
        #[arg(long)]
        state: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue a failed message again (while its code still works).
    Retry { id: String },
}

#[derive(Subcommand)]
enum TwoFactorConfigCommand {
    /// Add a configuration, or replace the one with this id.
    Add(AddTwoFactorConfig),
    /// List the configurations.
    List,
}

#[derive(Args)]
struct AddTwoFactorConfig {
    /// The TwoFactorConfigurationId requests use.
    #[arg(long)]
    id: i64,
    #[arg(long)]
    name: String,
    #[arg(long, default_value_t = 6)]
    code_length: i64,
    #[arg(long, default_value_t = 180)]
    expiry_seconds: i64,
    #[arg(long, default_value_t = 3)]
    max_attempts: i64,
    /// Sends to one GsmNumber per interval, unless a request gives MaxSMSCount.
    #[arg(long, default_value_t = 5)]
    max_sms_count: i64,
    #[arg(long, default_value_t = 900)]
    max_sms_interval_seconds: i64,
    /// Return the code to the caller in OtpCode (for callers that send it themselves).
    #[arg(long)]
    return_code: bool,
    /// The SMS text, with {code}, {minutes}, {reference}, {app}; default: the organisation's.
    #[arg(long)]
    sms_template: Option<String>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum UserCommand {
    /// Add one user.
    Add(AddUser),
    /// Import users from a JSON array (the fields of `user add`, snake_case).
    Import { file: PathBuf },
}

#[derive(Args)]
struct AddUser {
    #[arg(long)]
    login_uid: String,
    #[arg(long)]
    user_name: String,
    /// The form login (Frm_UID); defaults to the e-mail.
    #[arg(long)]
    login_name: Option<String>,
    #[arg(long, default_value = "")]
    email: String,
    #[arg(long, default_value = "")]
    mobile: String,
    #[arg(long, default_value = "")]
    country_code: String,
    /// The password (visible to other local users: prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    #[arg(long, default_value_t = 1)]
    org_id: i64,
    #[arg(long, default_value = "")]
    org_name: String,
    #[arg(long, default_value_t = 1)]
    domain_id: i64,
    /// The numeric UserId; the next free one when absent.
    #[arg(long)]
    user_id: Option<i64>,
    /// A LoginApp profile field, e.g. --profile TimezoneMins=330 (repeatable).
    #[arg(long = "profile", value_name = "KEY=VALUE")]
    profile: Vec<String>,
}

fn main() -> ExitCode {
    // Before anything touches TLS: OpenSSL without its atexit clean-up (see db::ConnectionManager).
    openssl_sys::init();
    let cli = Cli::parse();
    // A client of any gateway: the local gateway's configuration is not its concern.
    if let Command::Replay(a) = cli.command {
        return match replay(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("otpgate: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("otpgate: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otpgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, mut settings: Settings) -> Result<(), String> {
    match command {
        Command::Serve { demo } => {
            settings.delivery.console |= demo;
            serve(settings, demo)
        }
        Command::Migrate => {
            // App::new applies pending migrations.
            let app = AppState::new(settings)?;
            println!("database is up to date ({})", app.db.backend());
            Ok(())
        }
        Command::User(UserCommand::Add(a)) => {
            let app = AppState::new(settings)?;
            let password = if a.password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| format!("cannot read the password: {e}"))?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                a.password
            };
            let mut profile = serde_json::Map::new();
            for kv in &a.profile {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--profile '{kv}' is not KEY=VALUE"))?;
                profile.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            let user = cli::add_user(
                &app,
                &NewUser {
                    user_id: a.user_id,
                    login_uid: a.login_uid,
                    login_name: a.login_name,
                    user_name: a.user_name,
                    email: a.email,
                    mobile: a.mobile,
                    country_code: a.country_code,
                    password,
                    org_id: a.org_id,
                    org_name: a.org_name,
                    domain_id: a.domain_id,
                    profile,
                },
            )?;
            println!(
                "added user {} (UserId {}, login {})",
                user.user_name, user.id, user.login_name
            );
            Ok(())
        }
        Command::Outbox(c) => outbox(c, settings),
        Command::Brand(c) => brand(c, settings),
        Command::Replay(a) => replay(a),
        Command::Bench(args) => otpgate::tools::bench::run(args, settings).map(|_| ()),
        Command::TwoFactorConfig(TwoFactorConfigCommand::Add(a)) => {
            let app = AppState::new(settings)?;
            let config = otpgate::db::twofactor_configs::TwoFactorConfig {
                id: a.id,
                name: a.name,
                code_length: a.code_length,
                expiry_seconds: a.expiry_seconds,
                max_attempts: a.max_attempts,
                max_sms_count: a.max_sms_count,
                max_sms_interval_seconds: a.max_sms_interval_seconds,
                return_code: a.return_code,
                sms_template: a.sms_template,
                created_at: otpgate::db::now_ms(),
            };
            config.check()?;
            let mut conn = app.db.get().map_err(|e| e.to_string())?;
            otpgate::db::twofactor_configs::upsert(&mut conn, &config)
                .map_err(|e| e.to_string())?;
            println!(
                "TwoFactorConfiguration {} ({}) saved",
                config.id, config.name
            );
            Ok(())
        }
        Command::TwoFactorConfig(TwoFactorConfigCommand::List) => {
            let app = AppState::new(settings)?;
            let mut conn = app.db.get().map_err(|e| e.to_string())?;
            let all = otpgate::db::twofactor_configs::all(&mut conn).map_err(|e| e.to_string())?;
            println!(
                "{:>6}  {:<20} {:>6} {:>8} {:>8} {:>10} {:>6}  template",
                "id", "name", "digits", "expiry_s", "attempts", "sms/window", "return"
            );
            for c in all {
                println!(
                    "{:>6}  {:<20} {:>6} {:>8} {:>8} {:>10} {:>6}  {}",
                    c.id,
                    c.name,
                    c.code_length,
                    c.expiry_seconds,
                    c.max_attempts,
                    format!("{}/{}s", c.max_sms_count, c.max_sms_interval_seconds),
                    if c.return_code { "yes" } else { "no" },
                    c.sms_template.as_deref().unwrap_or("(organisation's)")
                );
            }
            Ok(())
        }
        Command::User(UserCommand::Import { file }) => {
            let app = AppState::new(settings)?;
            let report = cli::import_users(
                &app,
                &file,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            for (n, e) in &report.failed {
                eprintln!("record {n}: {e}");
            }
            println!(
                "{} users added, {} failed",
                report.added,
                report.failed.len()
            );
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(format!("{} records were not imported", report.failed.len()))
            }
        }
    }
}

fn outbox(command: OutboxCommand, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    match command {
        OutboxCommand::List { state, limit } => {
            let rows = cli::outbox_list(&app, state.as_deref(), limit)?;
            if rows.is_empty() {
                println!("no messages");
            } else {
                print!("{}", cli::format_outbox(&rows));
            }
            Ok(())
        }
        OutboxCommand::Retry { id } => {
            cli::outbox_retry(&app, &id)?;
            println!("message {} is queued again", id.trim());
            Ok(())
        }
    }
}

fn brand(command: BrandCommand, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    match command {
        BrandCommand::Add { name, settings } => {
            let b = cli::save_brand(&app, &name, &settings, false)?;
            println!("brand {} added", b.name);
        }
        BrandCommand::Set { name, settings } => {
            let b = cli::save_brand(&app, &name, &settings, true)?;
            println!("brand {} saved", b.name);
        }
        BrandCommand::List => {
            let mut conn = app.db.get().map_err(|e| e.to_string())?;
            let all = otpgate::db::capillary_brands::all(&mut conn).map_err(|e| e.to_string())?;
            print!("{}", cli::format_brands(&all));
        }
    }
    Ok(())
}

fn replay(a: ReplayArgs) -> Result<(), String> {
    let files = otpgate::tools::replay::collect(&a.fixtures)?;
    if files.is_empty() {
        return Err("no *.replay.toml scenarios among the paths given".into());
    }
    let replayer = otpgate::tools::replay::Replayer::new(&a.target, a.sink)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (passed, failed) = runtime.block_on(otpgate::tools::replay::replay_all(
        &replayer,
        &files,
        a.record,
        &mut std::io::stdout(),
    ))?;
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else if a.record {
        Err(format!("{failed} scenarios differed and were recorded"))
    } else {
        Err(format!("{failed} scenarios did not match"))
    }
}

fn serve(settings: Settings, demo: bool) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(otpgate::startup::blocking_threads(&settings))
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let bind = settings.bind.clone();
        let file_sink = settings.delivery.file_path.clone();
        let uses_file = settings.delivery.uses_file();
        let app = AppState::new(settings)?;
        if demo {
            cli::ensure_demo_user(&app)?;
        }
        let listener = std::net::TcpListener::bind(&bind).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
        let gateway = Gateway::build(app.clone(), listener, true).map_err(|e| format!("cannot start: {e}"))?;
        tracing::info!(bind = %bind, database = app.db.backend(), "otpgate is listening");
        if uses_file {
            tracing::warn!(file = %file_sink.display(), "messages are delivered to the file transport: configure a real provider for production");
        }
        if demo {
            println!(
                "demo: user {} / password {} (mobile 9876543219, country code 91); codes are printed below and written to {}",
                cli::DEMO_LOGIN,
                cli::DEMO_PASSWORD,
                file_sink.display()
            );
        }
        gateway.run().await.map_err(|e| format!("server error: {e}"))
    })
}

fn init_logging(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
