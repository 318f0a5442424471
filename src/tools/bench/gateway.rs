//! The gateway under test: `otpgate serve` as a child process, so that its CPU time and
//! memory can be read from /proc, separately from the load generator's.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Settings;

/// A running `otpgate serve`; killed when dropped.
pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl GatewayProcess {
    /// Writes `settings` to `dir/gateway.toml` and starts `otpgate serve` on it, with
    /// no OTPGATE_* variable of this process leaking into its configuration. Returns
    /// once /healthz answers.
    pub async fn start(
        settings: &Settings,
        dir: &Path,
        client: &reqwest::Client,
    ) -> Result<GatewayProcess, String> {
        let addr: SocketAddr = settings
            .bind
            .parse()
            .map_err(|e| format!("bind '{}': {e}", settings.bind))?;
        let config = dir.join("gateway.toml");
        let text = toml::to_string(settings)
            .map_err(|e| format!("cannot write the gateway's configuration: {e}"))?;
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        let log = dir.join("gateway.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find otpgate: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--config").arg(&config).arg("serve");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy()
                .to_ascii_uppercase()
                .starts_with("OTPGATE_")
                || k == "RUST_LOG"
            {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start the gateway: {e}"))?;
        let mut gateway = GatewayProcess { child, addr, log };
        let url = format!("http://{addr}/healthz");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = gateway.child.try_wait() {
                return Err(format!(
                    "the gateway exited ({status}) before answering:\n{}",
                    gateway.log_tail()
                ));
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(gateway);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the gateway did not answer /healthz within 30 s:\n{}",
                    gateway.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the gateway is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines the gateway logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time and memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User plus system CPU seconds of every thread so far.
    pub cpu_seconds: f64,
    /// Peak resident set size so far (VmHWM), in KiB.
    pub peak_rss_kib: u64,
    /// Resident set size now (VmRSS), in KiB.
    pub rss_kib: u64,
}

impl ProcStats {
    /// `pid` "self" for this process.
    pub fn read(pid: &str) -> Option<ProcStats> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, in clock ticks of
        // USER_HZ, which Linux fixes at 100 for user space.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Some(ProcStats {
            cpu_seconds: ticks as f64 / 100.0,
            peak_rss_kib: kib("VmHWM:"),
            rss_kib: kib("VmRSS:"),
        })
    }
}

/// A free port on a loopback address.
pub fn free_loopback_addr(host: IpAddr) -> Result<SocketAddr, String> {
    check_loopback(host)?;
    let l = TcpListener::bind((host, 0)).map_err(|e| format!("cannot bind {host}: {e}"))?;
    l.local_addr().map_err(|e| e.to_string())
}

/// The load generator only ever targets this machine.
pub fn check_loopback(host: IpAddr) -> Result<(), String> {
    if host.is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "{host} is not a loopback address: the benchmark only runs against this machine (127.0.0.1 or ::1)"
        ))
    }
}

/// The system's load averages over 1, 5 and 15 minutes.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(check_loopback("127.0.0.1".parse().unwrap()).is_ok());
        assert!(check_loopback("::1".parse().unwrap()).is_ok());
        assert!(check_loopback("10.0.0.5".parse().unwrap()).is_err());
        assert!(check_loopback("0.0.0.0".parse().unwrap()).is_err());
    }

    #[test]
    fn this_process_has_stats() {
        let s = ProcStats::read("self").expect("/proc/self");
        assert!(s.peak_rss_kib > 0 && s.peak_rss_kib >= s.rss_kib);
    }
}
