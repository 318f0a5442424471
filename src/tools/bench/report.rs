//! What a run measured, as a table for people and as JSON for comparing runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

pub use super::housekeeping::HousekeepingReport;

/// What one virtual client saw; merged into a phase's tally at the end.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latencies in microseconds, per operation.
    pub latencies: BTreeMap<&'static str, Vec<u32>>,
    pub errors: BTreeMap<String, u64>,
    pub cycles_ok: u64,
    pub cycles_failed: u64,
    /// HTTP requests sent to the gateway.
    pub requests: u64,
}

impl Tally {
    pub fn time(&mut self, op: &'static str, d: Duration) {
        let us = d.as_micros().min(u32::MAX as u128) as u32;
        self.latencies.entry(op).or_default().push(us);
    }

    pub fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        for (op, mut v) in other.latencies {
            self.latencies.entry(op).or_default().append(&mut v);
        }
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.cycles_ok += other.cycles_ok;
        self.cycles_failed += other.cycles_failed;
        self.requests += other.requests;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut us: Vec<u32>) -> Latency {
        us.sort_unstable();
        let at = |q: f64| -> f64 {
            if us.is_empty() {
                return 0.0;
            }
            // Nearest rank.
            let rank = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len());
            us[rank - 1] as f64 / 1000.0
        };
        Latency {
            count: us.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: us.last().map_or(0.0, |m| *m as f64 / 1000.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub seconds: f64,
    pub clients: usize,
    pub cycles: u64,
    pub cycles_failed: u64,
    pub cycles_per_second: f64,
    pub requests: u64,
    pub requests_per_second: f64,
    /// This phase's request rate over GET /healthz's, when both ran.
    pub ratio_to_healthz: Option<f64>,
    pub operations: BTreeMap<&'static str, Latency>,
    pub errors: BTreeMap<String, u64>,
    /// CPU seconds of the gateway processes (summed); null when their ids are unknown
    /// (`--target` without `--target-pid`).
    pub gateway_cpu_seconds: Option<f64>,
    /// The gateways' peak resident memory since they started (summed), at the end of
    /// the phase; null when unknown.
    pub gateway_peak_rss_mib: Option<f64>,
    /// Gateway CPU milliseconds per cycle; null when unknown or no cycle ran.
    pub gateway_cpu_ms_per_cycle: Option<f64>,
    /// SQL statements per cycle, as the gateways count them
    /// (`otpgate_db_statements_total`); null when they do not export it.
    pub statements_per_cycle: Option<f64>,
    /// Database transactions per cycle (`otpgate_db_transactions_total`).
    pub transactions_per_cycle: Option<f64>,
    /// The housekeeping phase: what the forced housekeeping did.
    pub housekeeping: Option<HousekeepingReport>,
    pub bench_cpu_seconds: f64,
    /// Load averages (1, 5, 15 min) at the end of the phase.
    pub load_average: Option<[f64; 3]>,
    /// Forward phase: p99 through otpgate minus p99 straight to the stub.
    pub added_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub backend: String,
    pub clients: usize,
    pub cpus: usize,
    /// The gateways' base URLs.
    pub gateways: Vec<String>,
    /// The started gateway's HTTP workers and pool size; null for --target gateways.
    pub gateway_workers: Option<usize>,
    pub pool_size: Option<u32>,
    pub load_average_at_start: Option<[f64; 3]>,
    pub phases: Vec<PhaseReport>,
}

/// A measure that may be unknown: "–" then.
fn maybe(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.decimals$}"))
}

fn load(l: Option<[f64; 3]>) -> String {
    l.map_or("unknown".into(), |[a, b, c]| {
        format!("{a:.2}, {b:.2}, {c:.2}")
    })
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "otpgate bench: {} backend, {} clients, {} CPUs, gateway workers {}, pool {}; load average at start {}",
            self.backend,
            self.clients,
            self.cpus,
            match self.gateway_workers {
                Some(0) => "one per core".to_string(),
                Some(n) => n.to_string(),
                None => "–".to_string(),
            },
            self.pool_size.map_or("–".to_string(), |n| n.to_string()),
            load(self.load_average_at_start)
        );
        if self.gateway_workers.is_none() {
            let _ = writeln!(out, "gateways: {}", self.gateways.join(", "));
        }
        let _ = writeln!(
            out,
            "\n{:<12} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>8} {:>7}  load avg",
            "phase",
            "seconds",
            "cycles",
            "cycles/s",
            "req/s",
            "/healthz",
            "gw CPU s",
            "gw RSS MB",
            "bench CPU",
            "failed"
        );
        for p in &self.phases {
            let _ = writeln!(
                out,
                "{:<12} {:>7.1} {:>9} {:>9.0} {:>9.0} {:>9} {:>10} {:>9} {:>8.2} {:>7}  {}",
                p.name,
                p.seconds,
                p.cycles,
                p.cycles_per_second,
                p.requests_per_second,
                p.ratio_to_healthz
                    .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                maybe(p.gateway_cpu_seconds, 2),
                maybe(p.gateway_peak_rss_mib, 1),
                p.bench_cpu_seconds,
                p.cycles_failed,
                load(p.load_average)
            );
        }
        let _ = writeln!(
            out,
            "\n{:<12} {:>11} {:>11} {:>14}",
            "per cycle", "statements", "transactions", "gw CPU ms"
        );
        for p in self.phases.iter().filter(|p| p.cycles > 0) {
            let _ = writeln!(
                out,
                "{:<12} {:>11} {:>11} {:>14}",
                p.name,
                maybe(p.statements_per_cycle, 2),
                maybe(p.transactions_per_cycle, 2),
                maybe(p.gateway_cpu_ms_per_cycle, 3)
            );
        }
        for p in &self.phases {
            if let Some(h) = &p.housekeeping {
                let _ = writeln!(
                    out,
                    "\n{}: housekeeping (run by the {}) ran {} times ({} failed), removed {} rows, {:.1} ms a run on average{}",
                    p.name,
                    h.run_by,
                    h.runs,
                    h.failed_runs,
                    h.rows_removed,
                    h.mean_run_ms,
                    h.longest_run_ms
                        .map_or(String::new(), |l| format!(", longest {l:.1} ms"))
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{:<12} {:<34} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "phase", "operation", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for p in &self.phases {
            for (op, l) in &p.operations {
                let _ = writeln!(
                    out,
                    "{:<12} {:<34} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                    p.name, op, l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
                );
            }
        }
        for p in &self.phases {
            if let Some(added) = p.added_p99_ms {
                let _ = writeln!(
                    out,
                    "\n{}: forwarding adds {added:.2} ms at p99, at {:.0} forwarded requests/s",
                    p.name, p.requests_per_second
                );
            }
        }
        for p in &self.phases {
            out.push_str(&p.known_and_unknown());
        }
        let errors: Vec<_> = self
            .phases
            .iter()
            .flat_map(|p| p.errors.iter().map(move |(k, n)| (&p.name, k, n)))
            .collect();
        if errors.is_empty() {
            let _ = writeln!(out, "\nno errors");
        } else {
            let _ = writeln!(out, "\n{:<12} {:>8}  error", "phase", "count");
            for (phase, kind, n) in errors {
                let _ = writeln!(out, "{phase:<12} {n:>8}  {kind}");
            }
        }
        out
    }

    pub fn failed_cycles(&self) -> u64 {
        self.phases.iter().map(|p| p.cycles_failed).sum()
    }
}

impl PhaseReport {
    /// The medians of each operation timed for known and for unknown identifiers
    /// (`<op> known`, `<op> unknown`), side by side.
    fn known_and_unknown(&self) -> String {
        let mut out = String::new();
        for (op, k) in &self.operations {
            let Some(name) = op.strip_suffix(" known") else {
                continue;
            };
            let Some(u) = self.operations.get(format!("{name} unknown").as_str()) else {
                continue;
            };
            let _ = writeln!(
                out,
                "\n{}: {name}: median {:.2} ms known, {:.2} ms unknown ({:+.2} ms); p95 {:.2} / {:.2} ms",
                self.name,
                k.p50_ms,
                u.p50_ms,
                u.p50_ms - k.p50_ms,
                k.p95_ms,
                u.p95_ms,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).map(|n| n * 1000).collect());
        assert_eq!(
            (l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        let one = Latency::of(vec![2500]);
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (2.5, 2.5, 2.5));
        assert_eq!(Latency::of(Vec::new()).count, 0);
    }
}
