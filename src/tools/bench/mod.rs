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
//!   unknown identifiers, one at a time, to compare their medians (unknown.rs).

mod clients;
mod gateway;
mod report;
mod setup;
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

use gateway::{GatewayProcess, free_loopback_addr, load_average};
pub use gateway::{ProcStats, check_loopback};
pub use report::{Latency, PhaseReport, Report, Tally};

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
        }
    }
}

/// Options of `otpgate bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The gateway's database: a scratch PostgreSQL database (postgres://…), or a
    /// SQLite file; a new SQLite file in a temporary directory when absent. The run
    /// adds users, challenges and sessions to it.
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
    /// runs only when named: last, or alone.
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
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients + args.storm_clients + 8)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;

    // The SMS provider the gateway delivers to.
    let inbox: Inbox = Arc::default();
    let stray = Arc::new(AtomicU64::new(0));
    let sms_server = sms_listener(args.host, inbox.clone(), stray.clone())?;
    let sms_addr = sms_server.0;

    let settings = gateway_settings(&args, base, &database_url, sms_addr, dir.path())?;
    let (pool_size, workers) = (settings.pool_connections(), settings.workers);

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

    let mut gw = GatewayProcess::start(&settings, dir.path(), &client).await?;
    let pid = gw.pid().to_string();
    let base_url = format!("http://{}", gw.addr);
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
        .map(|(identity, sms)| VirtualClient {
            http: client.clone(),
            base: base_url.clone(),
            identity,
            sms,
        })
        .collect();

    let mut phases: Vec<PhaseReport> = Vec::new();
    let mut healthz_rate: Option<f64> = None;
    for phase in &args.phases {
        let before = ProcStats::read(&pid).unwrap_or_default();
        let me_before = ProcStats::read("self").unwrap_or_default();
        let started = Instant::now();
        let mut added_p99_ms = None;
        let (tally, seconds, clients_n) = match phase {
            Phase::Forward => {
                // The stub alone first, then the same load through otpgate.
                let direct_until = started + Duration::from_secs_f64(args.duration / 2.0);
                let stub = format!("http://{sms_addr}{LEGACY_PATH}");
                let direct = forwarded(&client, &stub, args.clients, direct_until, DIRECT_OP).await;
                let through_started = Instant::now();
                let until = through_started + Duration::from_secs_f64(args.duration);
                let url = format!("{base_url}{SUMMIT_PATH}");
                let mut tally = forwarded(&client, &url, args.clients, until, FORWARD_OP).await;
                let seconds = through_started.elapsed().as_secs_f64();
                let p99 =
                    |t: &Tally, op| t.latencies.get(op).map(|v| Latency::of(v.clone()).p99_ms);
                added_p99_ms = p99(&tally, FORWARD_OP)
                    .zip(p99(&direct, DIRECT_OP))
                    .map(|(through, straight)| through - straight);
                let requests = tally.requests;
                tally.merge(direct);
                tally.requests = requests;
                (tally, seconds, args.clients)
            }
            Phase::Healthz => {
                let deadline = started + Duration::from_secs_f64(args.healthz_duration);
                let tally = healthz(&client, &base_url, args.clients, deadline).await;
                (tally, started.elapsed().as_secs_f64(), args.clients)
            }
            Phase::Unknown => {
                let deadline = started + Duration::from_secs_f64(args.duration);
                let tally = unknown::unknown_users(
                    &mut clients,
                    &client,
                    &base_url,
                    (&run_id, &storm_login),
                    deadline,
                    args.cycles,
                )
                .await;
                (tally, started.elapsed().as_secs_f64(), 1)
            }
            Phase::Summit | Phase::Twofactor | Phase::Storm => {
                let deadline = started + Duration::from_secs_f64(args.duration);
                let storm = (*phase == Phase::Storm).then(|| {
                    (
                        args.storm_clients,
                        storm_login.clone(),
                        storm_password.clone(),
                    )
                });
                let (back, tally, seconds) = cycles(
                    clients,
                    *phase,
                    deadline,
                    args.cycles,
                    storm,
                    &client,
                    &base_url,
                )
                .await;
                clients = back;
                (tally, seconds, args.clients)
            }
        };
        let after = ProcStats::read(&pid).unwrap_or_default();
        let me_after = ProcStats::read("self").unwrap_or_default();
        let mut tally = tally;
        let strays = stray.swap(0, Ordering::Relaxed);
        if strays > 0 {
            tally.error(format!("SMS to a number no client has ({strays})"));
        }
        let requests_per_second = tally.requests as f64 / seconds;
        if *phase == Phase::Healthz {
            healthz_rate = Some(requests_per_second);
        }
        let cycles = tally.cycles_ok;
        phases.push(PhaseReport {
            name: phase.name().to_string(),
            seconds,
            clients: clients_n,
            cycles,
            cycles_failed: tally.cycles_failed,
            cycles_per_second: cycles as f64 / seconds,
            requests: tally.requests,
            requests_per_second,
            ratio_to_healthz: match phase {
                Phase::Healthz => None,
                _ => healthz_rate.map(|h| requests_per_second / h),
            },
            operations: tally
                .latencies
                .into_iter()
                .map(|(op, v)| (op, Latency::of(v)))
                .collect(),
            errors: tally.errors,
            gateway_cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            gateway_peak_rss_mib: after.peak_rss_kib as f64 / 1024.0,
            bench_cpu_seconds: me_after.cpu_seconds - me_before.cpu_seconds,
            added_p99_ms,
            load_average: load_average(),
        });
        if !gw.alive() {
            return Err(format!(
                "the gateway died during the {} phase:\n{}",
                phase.name(),
                gw.log_tail()
            ));
        }
    }
    sms_server.1.stop(false).await;
    Ok(Report {
        backend,
        clients: args.clients,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gateway_workers: workers,
        pool_size,
        load_average_at_start: load_at_start,
        phases,
    })
}
