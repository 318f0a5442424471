//! A circuit breaker: after `threshold` consecutive failures the upstream is left
//! alone for `pause`, and requests fail at once; then one request probes it, and its
//! outcome closes the circuit or opens it for another pause.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    threshold: u32,
    pause: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// A probe is out: others keep failing fast until it reports.
    probing: bool,
}

/// Leave to send one request; report how it went with [`Permit::succeeded`] or
/// [`Permit::failed`]. Dropped without a report (the client went away), it frees the
/// probe slot and counts as nothing.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub fn new(threshold: u32, pause: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            pause,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few counters, consistent after every statement: a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit, or how long the circuit stays open.
    pub fn admit(&self) -> Result<Permit<'_>, Duration> {
        let mut s = self.state();
        let Some(until) = s.open_until else {
            return Ok(self.permit(false));
        };
        let now = Instant::now();
        if now < until {
            return Err(until - now);
        }
        if s.probing {
            return Err(Duration::ZERO);
        }
        s.probing = true;
        Ok(self.permit(true))
    }

    fn permit(&self, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            probe,
            reported: false,
        }
    }

    /// Whether requests are refused now.
    pub fn is_open(&self) -> bool {
        self.state().open_until.is_some_and(|t| Instant::now() < t)
    }
}

impl Permit<'_> {
    pub fn succeeded(mut self) {
        self.reported = true;
        let mut s = self.breaker.state();
        *s = State::default();
    }

    pub fn failed(mut self) {
        self.reported = true;
        let b = self.breaker;
        let mut s = b.state();
        s.failures = s.failures.saturating_add(1);
        if self.probe || s.failures >= b.threshold {
            let now = Instant::now();
            s.open_until = Some(now.checked_add(b.pause).unwrap_or(now));
            s.probing = false;
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.state().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let b = Breaker::new(3, Duration::from_secs(60));
        b.admit().unwrap().failed();
        b.admit().unwrap().failed();
        b.admit().unwrap().succeeded();
        b.admit().unwrap().failed();
        b.admit().unwrap().failed();
        assert!(!b.is_open());
        b.admit().unwrap().failed();
        assert!(b.is_open());
        let wait = b.admit().err().unwrap();
        assert!(wait > Duration::from_secs(50));
    }

    #[test]
    fn after_the_pause_one_probe_decides() {
        let b = Breaker::new(1, Duration::from_millis(20));
        b.admit().unwrap().failed();
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.admit().unwrap();
        // While the probe is out, the others still fail fast.
        assert!(b.admit().is_err());
        probe.failed();
        assert!(b.admit().is_err(), "a failed probe opens the circuit again");
        std::thread::sleep(Duration::from_millis(30));
        b.admit().unwrap().succeeded();
        assert!(b.admit().is_ok());
        assert!(b.admit().is_ok(), "a good probe closes it");
    }

    #[test]
    fn an_abandoned_probe_frees_its_slot() {
        let b = Breaker::new(1, Duration::from_millis(10));
        b.admit().unwrap().failed();
        std::thread::sleep(Duration::from_millis(15));
        drop(b.admit().unwrap());
        assert!(b.admit().is_ok());
    }
}
