//! The gateways a run drives: `otpgate serve` started as a child (the default), or
//! gateways started elsewhere (`--target URL`, repeatable), whose CPU time and memory
//! are known only when their process ids are given (`--target-pid`).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::gateway::{GatewayProcess, ProcStats, check_loopback};
use crate::config::Settings;

pub(super) enum Gateways {
    Child(GatewayProcess),
    Targets { bases: Vec<String>, pids: Vec<u32> },
}

/// The base URLs of `--target`s (`http://127.0.0.1:8080`, no trailing slash), each
/// on a loopback address: the load generator only runs against this machine.
pub(super) fn parse(targets: &[String]) -> Result<Vec<String>, String> {
    targets
        .iter()
        .map(|t| {
            let url = reqwest::Url::parse(t).map_err(|e| format!("--target {t}: {e}"))?;
            if url.scheme() != "http" {
                return Err(format!("--target {t}: only http:// is supported"));
            }
            let host = url.host_str().unwrap_or_default();
            if host != "localhost" {
                let ip: IpAddr = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("--target {t}: not a loopback address"))?;
                check_loopback(ip)?;
            }
            Ok(t.trim_end_matches('/').to_string())
        })
        .collect()
}

impl Gateways {
    /// Starts the child gateway on `settings`, or, with `targets`, waits until each of
    /// them answers /healthz.
    pub(super) async fn start(
        settings: &Settings,
        dir: &Path,
        http: &reqwest::Client,
        targets: Vec<String>,
        pids: &[u32],
    ) -> Result<Gateways, String> {
        if targets.is_empty() {
            return Ok(Gateways::Child(
                GatewayProcess::start(settings, dir, http).await?,
            ));
        }
        for base in &targets {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match http.get(format!("{base}/healthz")).send().await {
                    Ok(r) if r.status().is_success() => break,
                    _ if Instant::now() > deadline => {
                        return Err(format!("--target {base} did not answer /healthz"));
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        Ok(Gateways::Targets {
            bases: targets,
            pids: pids.to_vec(),
        })
    }

    pub(super) fn bases(&self) -> Vec<String> {
        match self {
            Gateways::Child(g) => vec![format!("http://{}", g.addr)],
            Gateways::Targets { bases, .. } => bases.clone(),
        }
    }

    /// The gateways' process ids, as far as they are known.
    pub(super) fn pids(&self) -> Vec<u32> {
        match self {
            Gateways::Child(g) => vec![g.pid()],
            Gateways::Targets { pids, .. } => pids.clone(),
        }
    }

    /// CPU time and peak memory of the gateways, summed; None when a process id is
    /// unknown or its /proc entry cannot be read.
    pub(super) fn stats(&self) -> Option<ProcStats> {
        let pids = self.pids();
        if pids.is_empty() {
            return None;
        }
        let mut sum = ProcStats::default();
        for pid in pids {
            let s = ProcStats::read(&pid.to_string())?;
            sum.cpu_seconds += s.cpu_seconds;
            sum.peak_rss_kib += s.peak_rss_kib;
            sum.rss_kib += s.rss_kib;
        }
        Some(sum)
    }

    /// Fails when the child gateway died during `phase`.
    pub(super) fn check_alive(&mut self, phase: &str) -> Result<(), String> {
        match self {
            Gateways::Child(g) => match g.alive() {
                true => Ok(()),
                false => Err(format!(
                    "the gateway died during the {phase} phase:\n{}",
                    g.log_tail()
                )),
            },
            Gateways::Targets { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_loopback_http_urls() {
        assert_eq!(
            parse(&["http://127.0.0.1:8080/".into(), "http://localhost:9".into()]).unwrap(),
            ["http://127.0.0.1:8080", "http://localhost:9"]
        );
        assert!(parse(&["http://[::1]:8080".into()]).is_ok());
        for bad in [
            "http://10.1.2.3:8080",
            "https://127.0.0.1",
            "example.com",
            "http://example.com",
        ] {
            assert!(parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
