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
//! - `storm`: the summit cycle while other clients log in with passwords (Argon2id).

mod gateway;
mod report;

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
/// How long a client waits for its SMS before counting the cycle as failed.
const SMS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Healthz,
    Summit,
    Twofactor,
    Storm,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Healthz => "healthz",
            Phase::Summit => "summit",
            Phase::Twofactor => "twofactor",
            Phase::Storm => "storm",
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
    /// The phases to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "healthz,summit,twofactor,storm"
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
        let (tally, seconds, clients_n) = match phase {
            Phase::Healthz => {
                let deadline = started + Duration::from_secs_f64(args.healthz_duration);
                let tally = healthz(&client, &base_url, args.clients, deadline).await;
                (tally, started.elapsed().as_secs_f64(), args.clients)
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

/// The digits of a hex string's characters, for numbers unique to a run.
fn numeric(s: &str) -> String {
    s.bytes().map(|b| char::from(b'0' + b % 10)).collect()
}

/// The gateway's configuration: `base`, with the bench's address, database, log level
/// and SMS provider, one channel (SMS) and send limits that a load of this many cycles
/// per user does not reach. The limits are still checked on every request.
fn gateway_settings(
    args: &BenchArgs,
    mut s: Settings,
    database_url: &str,
    sms: SocketAddr,
    dir: &std::path::Path,
) -> Result<Settings, String> {
    s.bind = free_loopback_addr(args.host)?.to_string();
    s.database_url = database_url.to_string();
    if let Some(n) = args.pool_size {
        s.pool_size = n;
    }
    if let Some(n) = args.workers {
        s.workers = n;
    }
    s.log.level = "warn".into();
    s.log.format = "text".into();
    s.secrets.otp_key = Some(hex::encode(crate::core::keys::random_bytes::<32>()));
    s.secrets.previous_otp_keys.clear();
    s.secrets.key_file = dir.join("otpgate.key");
    s.otp.channels = vec!["sms".into()];
    s.otp.max_sends = 1_000_000_000;
    s.otp.resend_cooldown_seconds = 0;
    s.orgs.clear();
    s.field_cipher = Default::default();
    s.delivery.console = false;
    s.delivery.sms = vec!["bench".into()];
    s.delivery.email = vec!["file".into()];
    s.delivery.file_path = dir.join("deliveries.jsonl");
    s.delivery.sms_template = "{code} is your {app} code.".into();
    s.delivery.templates.clear();
    s.delivery.orgs.clear();
    s.delivery.providers = vec![ProviderSettings::HttpSms(HttpSmsSettings {
        name: "bench".into(),
        url: format!("http://{sms}/sms"),
        method: "POST".into(),
        headers: Default::default(),
        basic_auth: None,
        query: Default::default(),
        encoding: "json".into(),
        body: Some(json!({"to": "{to_digits}", "text": "{text}", "id": "{id}"})),
        sender: "BENCH".into(),
        success_status: vec![],
        success_field: None,
        success_values: vec![],
        message_id_field: None,
        timeout_seconds: 10,
    })];
    s.validate()?;
    Ok(s)
}

/// Adds one user per client (no password: they log in by OTP) and the storm's user
/// (with one), through the library, before the gateway starts.
fn provision(
    settings: Settings,
    run_id: &str,
    identities: &[Identity],
    storm_login: &str,
    storm_password: &str,
) -> Result<(), String> {
    let app = AppState::new(settings)?;
    let user = |n: usize, id: Option<&Identity>| NewUser {
        user_id: None,
        login_uid: format!("bench-{run_id}-{n}"),
        login_name: match id {
            Some(_) => None,
            None => Some(storm_login.to_string()),
        },
        user_name: format!("Bench Client {n}"),
        email: id.map_or(format!("{storm_login}@bench.example.com"), |i| {
            i.email.clone()
        }),
        mobile: id.map_or(String::new(), |i| i.mobile.clone()),
        country_code: "91".into(),
        password: match id {
            Some(_) => None,
            None => Some(storm_password.to_string()),
        },
        org_id: 1,
        org_name: "bench".into(),
        domain_id: 1,
        profile: Default::default(),
    };
    for (n, id) in identities.iter().enumerate() {
        add_user(&app, &user(n, Some(id)))?;
    }
    add_user(&app, &user(identities.len(), None))?;
    Ok(())
}

fn add_user(app: &AppState, new: &NewUser) -> Result<(), String> {
    let fields = crate::dialects::summit::user_document::profile_fields();
    crate::core::users::add(&app.db, &app.passwords, new, &fields).map(drop)
}

/// The SMS provider: takes `{"to", "text"}`, hands the text to the client whose
/// number it is. Returns its address and handle.
fn sms_listener(
    host: IpAddr,
    inbox: Inbox,
    stray: Arc<AtomicU64>,
) -> Result<(SocketAddr, actix_web::dev::ServerHandle), String> {
    use actix_web::{HttpResponse, web};
    let listener = std::net::TcpListener::bind((host, 0)).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = actix_web::HttpServer::new(move || {
        let (inbox, stray) = (inbox.clone(), stray.clone());
        actix_web::App::new().route(
            "/sms",
            web::post().to(move |body: web::Json<Value>| {
                let (inbox, stray) = (inbox.clone(), stray.clone());
                async move {
                    let to = body["to"].as_str().unwrap_or_default();
                    let text = body["text"].as_str().unwrap_or_default().to_string();
                    let sender = inbox.lock().ok().and_then(|m| m.get(to).cloned());
                    match sender {
                        Some(tx) => {
                            let _ = tx.send(text);
                        }
                        None => {
                            stray.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    HttpResponse::Ok().json(json!({"status": "accepted"}))
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((addr, handle))
}

async fn healthz(client: &reqwest::Client, base: &str, n: usize, deadline: Instant) -> Tally {
    let url = format!("{base}/healthz");
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut t = Tally::default();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    t.requests += 1;
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            t.time("GET /healthz", started.elapsed());
                        }
                        Ok(r) => t.error(format!("GET /healthz: HTTP {}", r.status().as_u16())),
                        Err(e) => t.error(format!("GET /healthz: {}", transport_error(&e))),
                    }
                }
                t
            })
        })
        .collect();
    let mut all = Tally::default();
    for t in futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
    {
        all.merge(t);
    }
    all
}

struct VirtualClient {
    http: reqwest::Client,
    base: String,
    identity: Identity,
    sms: mpsc::UnboundedReceiver<String>,
}

/// Runs the clients through cycles of `phase` until the deadline or `max` cycles in
/// all; with `storm`, password logins run alongside. Returns the clients, the tally
/// of the cycles (storm logins under their own operation name) and the seconds taken.
async fn cycles(
    clients: Vec<VirtualClient>,
    phase: Phase,
    deadline: Instant,
    max: Option<u64>,
    storm: Option<(usize, String, String)>,
    http: &reqwest::Client,
    base: &str,
) -> (Vec<VirtualClient>, Tally, f64) {
    let started = Instant::now();
    let tickets = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let tickets = tickets.clone();
            tokio::spawn(async move {
                let mut t = Tally::default();
                while Instant::now() < deadline
                    && max.is_none_or(|m| tickets.fetch_add(1, Ordering::Relaxed) < m)
                {
                    let result = match phase {
                        Phase::Twofactor => c.twofactor_cycle(&mut t).await,
                        _ => c.summit_cycle(&mut t).await,
                    };
                    match result {
                        Ok(()) => t.cycles_ok += 1,
                        Err(kind) => {
                            t.cycles_failed += 1;
                            t.error(kind);
                        }
                    }
                }
                (c, t)
            })
        })
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storm_tasks: Vec<_> = storm
        .into_iter()
        .flat_map(|(n, login, password)| {
            (0..n).map(move |_| (login.clone(), password.clone()))
        })
        .map(|(login, password)| {
            let (http, url, stop) = (http.clone(), format!("{base}{SUMMIT_PATH}"), stop.clone());
            tokio::spawn(async move {
                let mut t = Tally::default();
                let body = json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
                    "AuthType": "FORM", "UserName": login, "Password": password, "ReturnType": "JSON"}}});
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let started = Instant::now();
                    t.requests += 1;
                    match post(&http, &url, &body).await {
                        Ok(v) if v["User"].is_object() => {
                            t.time("LoginApp FORM (storm)", started.elapsed())
                        }
                        Ok(v) => t.error(format!("storm LoginApp FORM: {}", summit_error(&v))),
                        Err(e) => t.error(format!("storm LoginApp FORM: {e}")),
                    }
                }
                t
            })
        })
        .collect();
    let mut all = Tally::default();
    let mut back = Vec::new();
    for (c, t) in futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
    {
        all.merge(t);
        back.push(c);
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut logins = Tally::default();
    for t in futures_util::future::join_all(storm_tasks)
        .await
        .into_iter()
        .flatten()
    {
        logins.merge(t);
    }
    // Storm logins are requests and latencies of the phase, not cycles.
    all.requests += logins.requests;
    logins.requests = 0;
    all.merge(logins);
    (back, all, seconds)
}

impl VirtualClient {
    /// Drops SMS left over from a cycle that gave up waiting, so that a late one is
    /// not taken for the next cycle's.
    fn drain(&mut self) {
        while self.sms.try_recv().is_ok() {}
    }

    async fn wait_code(&mut self, t: &mut Tally) -> Result<String, String> {
        let started = Instant::now();
        let text = tokio::time::timeout(SMS_TIMEOUT, self.sms.recv())
            .await
            .map_err(|_| format!("no SMS within {} s", SMS_TIMEOUT.as_secs()))?
            .ok_or("the SMS listener stopped")?;
        t.time("SMS delivery", started.elapsed());
        let code: String = text.chars().take_while(char::is_ascii_digit).collect();
        if code.is_empty() {
            return Err("an SMS without a code".into());
        }
        Ok(code)
    }

    async fn call(
        &self,
        t: &mut Tally,
        op: &'static str,
        url: &str,
        body: &Value,
    ) -> Result<Value, String> {
        let started = Instant::now();
        t.requests += 1;
        let v = post(&self.http, url, body)
            .await
            .map_err(|e| format!("{op}: {e}"))?;
        t.time(op, started.elapsed());
        Ok(v)
    }

    async fn summit_cycle(&mut self, t: &mut Tally) -> Result<(), String> {
        self.drain();
        let url = format!("{}{SUMMIT_PATH}", self.base);
        let id = &self.identity;
        let generate = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"objUserInformation": {
            "AuthType": "LOGIN_OTP", "CountryCode": "91", "EncryptedEmailID": id.email, "DeviceId": id.device}}});
        let v = self.call(t, "ADM_GenerateOTP", &url, &generate).await?;
        let txn = v["OutputObject"]["OTP_Communication"][0]["TransactionID"]
            .as_str()
            .filter(|_| v["Errors"] == "")
            .ok_or_else(|| format!("ADM_GenerateOTP: {}", summit_error(&v)))?
            .to_string();
        let code = self.wait_code(t).await?;
        let id = &self.identity;
        let login = json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "OTP", "TransactionID": txn, "Password": code, "DeviceId": id.device,
            "ReturnType": "JSON", "UserName": "", "TokenID": null}}});
        let v = self.call(t, "LoginApp OTP", &url, &login).await?;
        if !v["User"].is_object() {
            return Err(format!("LoginApp OTP: {}", summit_error(&v)));
        }
        Ok(())
    }

    async fn twofactor_cycle(&mut self, t: &mut Tally) -> Result<(), String> {
        self.drain();
        let id = &self.identity;
        let create = json!({"UserId": id.customer, "GsmNumber": format!("+{}", id.sms_key()),
            "TwoFactorConfigurationId": 0, "IsSync": false, "Source": "bench"});
        let url = format!("{}{TWOFACTOR_PATH}/CreateTwoFactorSmsOtp", self.base);
        let v = self.call(t, "CreateTwoFactorSmsOtp", &url, &create).await?;
        let otp_id = v["Id"]
            .as_i64()
            .filter(|_| v["Success"] == true)
            .ok_or_else(|| format!("CreateTwoFactorSmsOtp: {}", twofactor_error(&v)))?;
        let code = self.wait_code(t).await?;
        let validate = json!({"UserId": self.identity.customer, "OtpId": otp_id, "OtpCode": code,
            "IsReValidate": false});
        let url = format!("{}{TWOFACTOR_PATH}/ValidateTwoFactorSmsOtp", self.base);
        let v = self
            .call(t, "ValidateTwoFactorSmsOtp", &url, &validate)
            .await?;
        if v["IsValid"] != true {
            return Err(format!("ValidateTwoFactorSmsOtp: {}", twofactor_error(&v)));
        }
        Ok(())
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| transport_error(&e))?;
    let status = r.status();
    let bytes = r.bytes().await.map_err(|e| transport_error(&e))?;
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    serde_json::from_slice(&bytes).map_err(|_| "an answer that is not JSON".to_string())
}

fn transport_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection error"
    }
}

fn summit_error(v: &Value) -> String {
    match v["Errors"].as_str() {
        Some(e) if !e.is_empty() => e.chars().take(120).collect(),
        _ => "an answer without the expected fields".into(),
    }
}

fn twofactor_error(v: &Value) -> String {
    format!(
        "Code {} {}",
        v["Code"],
        v["ExceptionMessage"].as_str().unwrap_or_default()
    )
}
