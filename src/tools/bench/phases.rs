//! One phase of a run: its load, then what the gateways did meanwhile (CPU time and
//! memory from /proc, statements and transactions from /metrics).

use super::target::Gateways;
use super::*;

/// What every phase of a run shares.
pub(super) struct Run<'a> {
    pub args: &'a BenchArgs,
    pub http: &'a reqwest::Client,
    /// The gateways' base URLs.
    pub bases: &'a [String],
    pub sms_addr: SocketAddr,
    pub run_id: &'a str,
    /// The storm's login and password.
    pub storm: (&'a str, &'a str),
    /// The gateway's settings (housekeeping follows them).
    pub settings: &'a Settings,
    /// SMS to numbers no client has, since the last phase.
    pub stray: &'a AtomicU64,
}

impl Run<'_> {
    /// Runs `phase` with `clients`; returns them and the phase's report.
    pub(super) async fn phase(
        &self,
        phase: Phase,
        mut clients: Vec<VirtualClient>,
        gateways: &Gateways,
        healthz_rate: Option<f64>,
    ) -> (Vec<VirtualClient>, PhaseReport) {
        let args = self.args;
        let work_before = scrape::read(self.http, self.bases).await;
        let before = gateways.stats();
        let me_before = ProcStats::read("self").unwrap_or_default();
        let started = Instant::now();
        let mut added_p99_ms = None;
        let mut housekeeping = None;
        let (mut tally, seconds, clients_n) = match phase {
            Phase::Forward => {
                let (tally, seconds, added) = self.forward(started).await;
                added_p99_ms = added;
                (tally, seconds, args.clients)
            }
            Phase::Healthz => {
                let deadline = started + Duration::from_secs_f64(args.healthz_duration);
                let tally = healthz(self.http, self.bases, args.clients, deadline).await;
                (tally, started.elapsed().as_secs_f64(), args.clients)
            }
            Phase::Unknown => {
                let deadline = started + Duration::from_secs_f64(args.duration);
                let tally = unknown::unknown_users(
                    &mut clients,
                    self.http,
                    &self.bases[0],
                    (self.run_id, self.storm.0),
                    deadline,
                    args.cycles,
                )
                .await;
                (tally, started.elapsed().as_secs_f64(), 1)
            }
            Phase::Summit | Phase::Twofactor | Phase::Storm | Phase::Housekeeping => {
                let deadline = started + Duration::from_secs_f64(args.duration);
                let storm = (phase == Phase::Storm)
                    .then(|| (args.storm_clients, self.storm.0.into(), self.storm.1.into()));
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let forced = (phase == Phase::Housekeeping).then(|| {
                    let (settings, stop) = (self.settings.clone(), stop.clone());
                    let pids = gateways.pids();
                    let (http, bases) = (self.http.clone(), self.bases.to_vec());
                    tokio::spawn(async move {
                        match pids.is_empty() {
                            true => housekeeping::run_until(&settings, stop).await,
                            false => housekeeping::signal_until(http, bases, pids, stop).await,
                        }
                    })
                });
                let kind = match phase {
                    Phase::Twofactor => Phase::Twofactor,
                    _ => Phase::Summit,
                };
                let (back, mut tally, seconds) = cycles(
                    clients,
                    kind,
                    deadline,
                    args.cycles,
                    storm,
                    self.http,
                    self.bases,
                )
                .await;
                clients = back;
                stop.store(true, Ordering::Relaxed);
                if let Some(task) = forced {
                    match task.await {
                        Ok((report, errors)) => {
                            errors.into_iter().for_each(|e| tally.error(e));
                            housekeeping = Some(report);
                        }
                        Err(e) => tally.error(format!("housekeeping: {e}")),
                    }
                }
                (tally, seconds, args.clients)
            }
        };
        let after = gateways.stats();
        let me_after = ProcStats::read("self").unwrap_or_default();
        let work = scrape::read(self.http, self.bases)
            .await
            .per_cycle(work_before, tally.cycles_ok);
        let strays = self.stray.swap(0, Ordering::Relaxed);
        if strays > 0 {
            tally.error(format!("SMS to a number no client has ({strays})"));
        }
        let requests_per_second = tally.requests as f64 / seconds;
        let cycles = tally.cycles_ok;
        let gateway_cpu_seconds = before
            .zip(after)
            .map(|(b, a)| a.cpu_seconds - b.cpu_seconds);
        let report = PhaseReport {
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
            gateway_cpu_seconds,
            gateway_peak_rss_mib: after.map(|a| a.peak_rss_kib as f64 / 1024.0),
            gateway_cpu_ms_per_cycle: gateway_cpu_seconds
                .filter(|_| cycles > 0)
                .map(|s| s * 1000.0 / cycles as f64),
            statements_per_cycle: work.statements,
            transactions_per_cycle: work.transactions,
            housekeeping,
            bench_cpu_seconds: me_after.cpu_seconds - me_before.cpu_seconds,
            added_p99_ms,
            load_average: load_average(),
        };
        (clients, report)
    }

    /// The stub alone first, then the same load through the gateways: the tally of
    /// both, the seconds through them, and what they add at p99.
    async fn forward(&self, started: Instant) -> (Tally, f64, Option<f64>) {
        let args = self.args;
        let direct_until = started + Duration::from_secs_f64(args.duration / 2.0);
        let stub = [format!("http://{}{LEGACY_PATH}", self.sms_addr)];
        let direct = forwarded(self.http, &stub, args.clients, direct_until, DIRECT_OP).await;
        let through_started = Instant::now();
        let until = through_started + Duration::from_secs_f64(args.duration);
        let urls: Vec<String> = self
            .bases
            .iter()
            .map(|b| format!("{b}{SUMMIT_PATH}"))
            .collect();
        let mut tally = forwarded(self.http, &urls, args.clients, until, FORWARD_OP).await;
        let seconds = through_started.elapsed().as_secs_f64();
        let p99 = |t: &Tally, op| t.latencies.get(op).map(|v| Latency::of(v.clone()).p99_ms);
        let added = p99(&tally, FORWARD_OP)
            .zip(p99(&direct, DIRECT_OP))
            .map(|(through, straight)| through - straight);
        let requests = tally.requests;
        tally.merge(direct);
        tally.requests = requests;
        (tally, seconds, added)
    }
}
