//! `otpgate bench`: a load generator for the whole OTP cycle, end to end over HTTP on
//! loopback.
//!
//! It starts `otpgate serve` as a child process on a scratch database, with an HTTP
//! SMS provider that points back at a listener of its own: the codes reach the virtual
//! clients the way they reach real ones, by SMS, never through a side door. Then, in
//! phases, it measures:
//! - `healthz`: GET /healthz as fast as it goes, the ceiling of the HTTP stack here;
//! - `summit`: ADM_GenerateOTP (LOGIN_OTP) → the SMS → LoginApp with the code;
//! - `twofactor`: CreateTwoFactorSmsOtp → the SMS → ValidateTwoFactorSmsOtp;
//! - `storm`: the summit cycle while other clients log in with passwords (Argon2id);
//! - `forward`: a ServiceName otpgate does not serve, forwarded to a stub legacy
//!   server on loopback; the same requests straight to the stub first, so the
//!   report can say what forwarding adds at p99;
//! - `unknown` (only when asked for): the requests that name a user, for known and for
//!   unknown identifiers, one at a time, to compare their medians (unknown.rs);
//! - `housekeeping` (only when asked for): the summit cycle while the bench runs the
//!   gateway's housekeeping over and over against the same database (housekeeping.rs).
//!
//! `--prefill-users` runs it all on a large database built once (prefill/), and
//! `--target` drives gateways started elsewhere instead of a child (target.rs). Before
//! and after each phase it reads the gateway's count of SQL statements and transactions
//! from /metrics (scrape.rs).

mod clients;
mod gateway;
mod housekeeping;
mod phases;
pub mod prefill;
mod report;
mod scrape;
mod setup;
mod target;
mod unknown;

use clients::*;
use setup::*;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

pub use gateway::{ProcStats, check_loopback};
use gateway::{free_loopback_addr, load_average};
pub use report::{HousekeepingReport, Latency, PhaseReport, Report, Tally};

use crate::config::{HttpSmsSettings, ProviderSettings, Settings};
use crate::core::users::NewUser;
use crate::state::AppState;

const SUMMIT_PATH: &str = "/API/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";
const TWOFACTOR_PATH: &str = "/customerservice/api/TwoFactor";
/// The forward phase's operations: through otpgate, and straight to the stub.
const FORWARD_OP: &str = "IM_* forwarded";
const DIRECT_OP: &str = "IM_* to the stub";
/// How long a client waits for its SMS before counting the cycle as failed.
const SMS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Healthz,
    Summit,
    Twofactor,
    Storm,
    Forward,
    Unknown,
    Housekeeping,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Healthz => "healthz",
            Phase::Summit => "summit",
            Phase::Twofactor => "twofactor",
            Phase::Storm => "storm",
            Phase::Forward => "forward",
            Phase::Unknown => "unknown",
            Phase::Housekeeping => "housekeeping",
        }
    }
}

/// Options of `otpgate bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The gateway's database: a scratch PostgreSQL database (postgres://…), or a
    /// SQLite file; a new SQLite file in a temporary directory when absent (with
    /// --prefill-users: a file in the cache directory). The run adds users,
    /// challenges and sessions to it.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Concurrent virtual clients, each with a user of its own.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds each cycle phase runs at most.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Cycles each cycle phase runs at most (no limit when absent).
    #[arg(long)]
    pub cycles: Option<u64>,
    /// Seconds of GET /healthz.
    #[arg(long, default_value_t = 3.0)]
    pub healthz_duration: f64,
    /// The phases to run, in order. `unknown` (known and unknown identifiers compared)
    /// runs only when named: last, or alone. `housekeeping` (the summit cycle while the
    /// bench runs housekeeping over and over) runs only when named.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "healthz,summit,twofactor,storm,forward"
    )]
    pub phases: Vec<Phase>,
    /// Clients logging in with a password (AuthType FORM) throughout the storm phase.
    #[arg(long, default_value_t = 16)]
    pub storm_clients: usize,
    /// The gateway's connection pool size (else its configuration's).
    #[arg(long)]
    pub pool_size: Option<u32>,
    /// The gateway's HTTP worker threads (else its configuration's; 0: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// The loopback address the gateway and the SMS listener use.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run on a database of N users and --prefill-days of history, built once (every
    /// user with the one password `prefill-password`, hashed once) and reused by later
    /// runs with the same N, D and R. Without --database-url it is a SQLite file under
    /// $XDG_CACHE_HOME/otpgate/bench (else ~/.cache/otpgate/bench) named after them.
    #[arg(long, value_name = "N")]
    pub prefill_users: Option<u64>,
    /// Days of history in the prefill.
    #[arg(
        long,
        value_name = "D",
        default_value_t = 7,
        requires = "prefill_users"
    )]
    pub prefill_days: u32,
    /// Cycles of history per second in the prefill; default N/86400, so that each
    /// user has about one code a day.
    #[arg(long, value_name = "R", requires = "prefill_users")]
    pub prefill_rate: Option<f64>,
    /// Drive the gateway at this URL (http://127.0.0.1:PORT), started elsewhere,
    /// instead of starting one; repeatable, the clients spread round-robin. Needs
    /// --database-url, the gateways' database, to add the run's users. Point their HTTP
    /// SMS provider at the listener the bench prints at start (see --sms-port).
    #[arg(long = "target", value_name = "URL", requires = "database_url")]
    pub targets: Vec<String>,
    /// The process id of a --target gateway, for its CPU time and memory in the
    /// report (repeatable; summed). Without it they are unknown.
    #[arg(long = "target-pid", value_name = "PID", requires = "targets")]
    pub target_pids: Vec<u32>,
    /// The port of the bench's SMS listener (which also serves the forward phase's
    /// stub legacy server); 0: a free one.
    #[arg(long, default_value_t = 0)]
    pub sms_port: u16,
}

/// Runs the benchmark on `base` (the configuration loaded as for `serve`; its
/// database is not used unless `--database-url` names it), prints the table and
/// returns the report. Fails when the set-up fails or when any cycle failed.
pub fn run(args: BenchArgs, base: Settings) -> Result<Report, String> {
    check_loopback(args.host)?;
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if !(args.duration > 0.0 && args.healthz_duration > 0.0) {
        return Err("--duration and --healthz-duration must be positive".into());
    }
    if args.prefill_users == Some(0) || args.prefill_days == 0 {
        return Err("--prefill-users and --prefill-days must be at least 1".into());
    }
    if args
        .prefill_rate
        .is_some_and(|r| !(r > 0.0 && r.is_finite()))
    {
        return Err("--prefill-rate must be positive".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = runtime.block_on(run_async(args.clone(), base))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    match report.failed_cycles() {
        0 => Ok(report),
        n => Err(format!("{n} cycles failed")),
    }
}

/// The longest the phases wait for the gateways' housekeeping at start.
const START_HOUSEKEEPING: Duration = Duration::from_secs(300);

/// One virtual client's identity.
#[derive(Debug, Clone)]
struct Identity {
    email: String,
    /// The national number of the user record; SMS go to +91 and this.
    mobile: String,
    device: String,
    customer: String,
}

impl Identity {
    fn sms_key(&self) -> String {
        format!("91{}", self.mobile)
    }
}

/// Routes each SMS the gateway sends to the client it is for, by number.
type Inbox = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>;

async fn run_async(args: BenchArgs, base: Settings) -> Result<Report, String> {
    let load_at_start = load_average();
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let prefill = args.prefill_users.map(|users| prefill::Spec {
        users,
        days: args.prefill_days,
        rate: args.prefill_rate.unwrap_or(users as f64 / 86_400.0),
    });
    let database_url = match (&args.database_url, prefill) {
        (Some(url), _) => url.clone(),
        (None, Some(spec)) => spec.cached_url()?,
        (None, None) => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let targets = target::parse(&args.targets)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients + args.storm_clients + 8)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;

    // The SMS provider the gateway delivers to.
    let inbox: Inbox = Arc::default();
    let stray = Arc::new(AtomicU64::new(0));
    let sms_server = sms_listener(args.host, args.sms_port, inbox.clone(), stray.clone())?;
    let sms_addr = sms_server.0;
    if !targets.is_empty() {
        println!(
            "otpgate bench: SMS listener at http://{sms_addr}/sms (the gateways' HTTP SMS provider, \
             JSON body {{\"to\": \"{{to_digits}}\", \"text\": \"{{text}}\"}}); \
             stub legacy server at http://{sms_addr}{LEGACY_PATH}"
        );
    }

    let settings = gateway_settings(&args, base, &database_url, sms_addr, dir.path())?;
    if let Some(spec) = prefill {
        let (s, url) = (settings.clone(), database_url.clone());
        let said = tokio::task::spawn_blocking(move || prefill::ensure(spec, &s, &url))
            .await
            .map_err(|e| e.to_string())??;
        println!("{said}");
    }
    let (pool_size, workers) = match targets.is_empty() {
        true => (Some(settings.pool_connections()), Some(settings.workers)),
        false => (None, None),
    };

    let identities: Vec<Identity> = (0..args.clients)
        .map(|i| Identity {
            email: format!("client{i}.{run_id}@bench.example.com"),
            mobile: format!("7{}{i:05}", &numeric(&run_id)[..4]),
            device: format!("bench-device-{i}"),
            customer: uuid::Uuid::new_v4().to_string(),
        })
        .collect();
    let storm_login = format!("storm.{run_id}");
    let storm_password = uuid::Uuid::new_v4().simple().to_string();
    {
        let (settings, identities, login, password) = (
            settings.clone(),
            identities.clone(),
            storm_login.clone(),
            storm_password.clone(),
        );
        let run_id = run_id.clone();
        tokio::task::spawn_blocking(move || {
            provision(settings, &run_id, &identities, &login, &password)
        })
        .await
        .map_err(|e| e.to_string())??;
    }

    let mut gateways =
        target::Gateways::start(&settings, dir.path(), &client, targets, &args.target_pids).await?;
    let bases = gateways.bases();
    if let Some(waited) = housekeeping::started(&client, &bases, START_HOUSEKEEPING).await {
        println!(
            "otpgate bench: waited {:.1} s for the gateways' housekeeping at start",
            waited.as_secs_f64()
        );
    }
    let backend = crate::db::DatabaseUrl::parse(&database_url)?
        .backend()
        .to_string();

    let mut receivers = Vec::new();
    for id in &identities {
        let (tx, rx) = mpsc::unbounded_channel();
        inbox
            .lock()
            .map_err(|_| "inbox poisoned")?
            .insert(id.sms_key(), tx);
        receivers.push(rx);
    }
    let mut clients: Vec<VirtualClient> = identities
        .into_iter()
        .zip(receivers)
        .enumerate()
        .map(|(i, (identity, sms))| VirtualClient {
            http: client.clone(),
            base: bases[i % bases.len()].clone(),
            identity,
            sms,
        })
        .collect();

    let run = phases::Run {
        args: &args,
        http: &client,
        bases: &bases,
        sms_addr,
        run_id: &run_id,
        storm: (&storm_login, &storm_password),
        settings: &settings,
        stray: &stray,
    };
    let mut phases: Vec<PhaseReport> = Vec::new();
    let mut healthz_rate: Option<f64> = None;
    for phase in &args.phases {
        let (back, report) = run.phase(*phase, clients, &gateways, healthz_rate).await;
        clients = back;
        if *phase == Phase::Healthz {
            healthz_rate = Some(report.requests_per_second);
        }
        phases.push(report);
        gateways.check_alive(phase.name())?;
    }
    sms_server.1.stop(false).await;
    Ok(Report {
        backend,
        clients: args.clients,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gateways: bases,
        gateway_workers: workers,
        pool_size,
        load_average_at_start: load_at_start,
        phases,
    })
}
