//! The per-client throttle: token buckets per client address and per identifier for
//! each kind of request (issuing a code, checking one, a password login), held in this
//! process's memory (governor's GCRA). It comes before the database-counted send
//! limits, which stay global; with N processes a client may get up to N times these
//! rates.
//!
//! Identifiers are kept as a keyed 64-bit hash (a random key per process), never as
//! the e-mail or number itself; an IPv6 client counts by its /64, which one subscriber
//! usually holds whole.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{Buckets, Rate, ThrottleSettings};
use crate::error::{Error, Result};

/// What a request does, each with its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Issues a code (or opens the session one is issued under).
    Generate,
    /// Checks a code.
    Verify,
    /// Checks a password.
    Login,
}

/// What one request asks of the throttle: each action it performs, with the identifier
/// it performs it on (an empty identifier counts against the address alone).
pub type Ask<'a> = Vec<(Action, &'a str)>;

/// A failed API key costs its address this many requests of the action it came with,
/// so a script guessing keys is stopped long before one that uses a good key.
pub const FAILED_KEY_COST: u32 = 5;

pub struct Throttle {
    enabled: bool,
    exempt: Vec<ipnet::IpNet>,
    generate: ActionBuckets,
    verify: ActionBuckets,
    login: ActionBuckets,
    hasher: std::collections::hash_map::RandomState,
    clock: DefaultClock,
}

struct ActionBuckets {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_identifier: Option<DefaultKeyedRateLimiter<u64>>,
}

impl ActionBuckets {
    fn new(b: &Buckets) -> ActionBuckets {
        ActionBuckets {
            per_address: quota(b.per_address).map(DefaultKeyedRateLimiter::keyed),
            per_identifier: quota(b.per_identifier).map(DefaultKeyedRateLimiter::keyed),
        }
    }
}

/// The quota of a rate: `burst` at once (at least one), one more every
/// 60/`per_minute` seconds. None when the rate is off.
fn quota(rate: Rate) -> Option<Quota> {
    if rate.is_off() {
        return None;
    }
    let period = Duration::from_secs_f64(60.0 / f64::from(rate.per_minute));
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).map(|q| q.allow_burst(burst))
}

impl Throttle {
    /// The throttle of the settings; an `exempt` entry that is not a network is
    /// ignored here (start-up validation refuses it).
    pub fn new(s: &ThrottleSettings) -> Throttle {
        Throttle {
            enabled: s.enabled,
            exempt: s.exempt_networks().unwrap_or_default(),
            generate: ActionBuckets::new(&s.generate),
            verify: ActionBuckets::new(&s.verify),
            login: ActionBuckets::new(&s.login),
            hasher: std::collections::hash_map::RandomState::new(),
            clock: DefaultClock::default(),
        }
    }

    fn buckets(&self, action: Action) -> &ActionBuckets {
        match action {
            Action::Generate => &self.generate,
            Action::Verify => &self.verify,
            Action::Login => &self.login,
        }
    }

    /// Takes one request from each bucket `ask` touches: the client's address for each
    /// action, and each identifier. `Error::Throttled` with the wait until the emptied
    /// bucket has a request again; nothing further is taken once one refuses.
    pub fn admit(&self, client: IpAddr, ask: &Ask<'_>) -> Result<()> {
        if !self.applies_to(client) {
            return Ok(());
        }
        let address = address_key(client);
        for (action, identifier) in ask {
            let b = self.buckets(*action);
            if let Some(l) = &b.per_address {
                l.check_key(&address).map_err(|n| self.refused(n))?;
            }
            let identifier = identifier_key(identifier);
            if let (Some(l), false) = (&b.per_identifier, identifier.is_empty()) {
                let key = self.hasher.hash_one(&identifier);
                l.check_key(&key).map_err(|n| self.refused(n))?;
            }
        }
        Ok(())
    }

    /// Charges the client's address `cost` more requests of `action`: what a failed
    /// API key costs beyond the request that carried it.
    pub fn charge(&self, client: IpAddr, action: Action, cost: u32) {
        if !self.applies_to(client) {
            return;
        }
        if let Some(l) = &self.buckets(action).per_address {
            let address = address_key(client);
            for _ in 0..cost {
                if l.check_key(&address).is_err() {
                    break;
                }
            }
        }
    }

    fn applies_to(&self, client: IpAddr) -> bool {
        self.enabled && !self.exempt.iter().any(|net| net.contains(&client))
    }

    fn refused(&self, n: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Error {
        let wait = n.wait_time_from(self.clock.now());
        Error::Throttled {
            retry_after_secs: i64::try_from(wait.as_millis().div_ceil(1000))
                .unwrap_or(i64::MAX)
                .max(1),
        }
    }

    /// Forgets the buckets that have refilled (they are as good as new), so memory
    /// follows the clients of the last minutes rather than every client ever seen.
    pub fn forget_idle(&self) {
        for b in [&self.generate, &self.verify, &self.login] {
            if let Some(l) = &b.per_address {
                l.retain_recent();
                l.shrink_to_fit();
            }
            if let Some(l) = &b.per_identifier {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }

    /// Forgets idle buckets every `every`, for as long as the task runs.
    pub async fn forget_idle_every(self: std::sync::Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.forget_idle();
        }
    }

    /// The buckets held, for tests and the logs.
    pub fn len(&self) -> usize {
        [&self.generate, &self.verify, &self.login]
            .iter()
            .map(|b| {
                b.per_address.as_ref().map_or(0, |l| l.len())
                    + b.per_identifier.as_ref().map_or(0, |l| l.len())
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An IPv4 address as it is (an IPv4-mapped IPv6 address too); IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// An identifier as it names a person: without surrounding space or case, a number
/// without its formatting (`+44 7700-900123` and `447700900123` are one).
fn identifier_key(identifier: &str) -> String {
    let t = identifier.trim();
    let looks_like_number = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && t.chars().any(|c| c.is_ascii_digit());
    if looks_like_number {
        t.chars().filter(char::is_ascii_digit).collect()
    } else {
        t.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_minute: u32, burst: u32) -> ThrottleSettings {
        let b = Buckets {
            per_address: Rate::new(per_minute, burst),
            per_identifier: Rate::new(per_minute, burst),
        };
        ThrottleSettings {
            enabled: true,
            exempt: Vec::new(),
            generate: b,
            verify: b,
            login: b,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_bucket_refuses_with_the_wait() {
        let t = Throttle::new(&settings(1, 3));
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            t.admit(a, &vec![(Action::Generate, "")]).unwrap();
        }
        match t.admit(a, &vec![(Action::Generate, "")]) {
            Err(Error::Throttled { retry_after_secs }) => {
                assert!((55..=60).contains(&retry_after_secs), "{retry_after_secs}")
            }
            other => panic!("{other:?}"),
        }
        // Another address and another action have their own buckets.
        t.admit(ip("192.0.2.2"), &vec![(Action::Generate, "")])
            .unwrap();
        t.admit(a, &vec![(Action::Verify, "")]).unwrap();
    }

    #[test]
    fn an_identifier_is_counted_whatever_address_asks() {
        let b = Buckets {
            per_address: Rate::new(0, 0),
            per_identifier: Rate::new(1, 2),
        };
        let t = Throttle::new(&ThrottleSettings {
            enabled: true,
            generate: b,
            ..settings(0, 0)
        });
        let ask = |id| vec![(Action::Generate, id)];
        t.admit(ip("192.0.2.1"), &ask("Ann@Example.com")).unwrap();
        t.admit(ip("192.0.2.2"), &ask(" ann@example.com")).unwrap();
        assert!(t.admit(ip("192.0.2.3"), &ask("ANN@example.com")).is_err());
        t.admit(ip("192.0.2.3"), &ask("bob@example.com")).unwrap();
        // Numbers count by their digits.
        t.admit(ip("192.0.2.1"), &ask("+44 7700-900123")).unwrap();
        t.admit(ip("192.0.2.1"), &ask("447700900123")).unwrap();
        assert!(t.admit(ip("192.0.2.1"), &ask("(44) 7700 900123")).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let t = Throttle::new(&settings(1, 1));
        t.admit(ip("2001:db8:1:2::1"), &vec![(Action::Login, "")])
            .unwrap();
        assert!(
            t.admit(ip("2001:db8:1:2:ffff::9"), &vec![(Action::Login, "")])
                .is_err()
        );
        t.admit(ip("2001:db8:1:3::1"), &vec![(Action::Login, "")])
            .unwrap();
        // An IPv4-mapped address is its IPv4 address.
        t.admit(ip("192.0.2.7"), &vec![(Action::Login, "")])
            .unwrap();
        assert!(
            t.admit(ip("::ffff:192.0.2.7"), &vec![(Action::Login, "")])
                .is_err()
        );
    }

    #[test]
    fn a_failed_key_costs_its_address_more() {
        let t = Throttle::new(&settings(1, 10));
        let a = ip("192.0.2.1");
        t.admit(a, &vec![(Action::Generate, "key")]).unwrap();
        t.charge(a, Action::Generate, FAILED_KEY_COST);
        t.admit(a, &vec![(Action::Generate, "key2")]).unwrap();
        t.charge(a, Action::Generate, FAILED_KEY_COST);
        // 1 + 5 + 1 + 5 > 10: the next one waits.
        assert!(t.admit(a, &vec![(Action::Generate, "key3")]).is_err());
    }

    #[test]
    fn exempt_clients_are_never_throttled() {
        let mut s = settings(1, 1);
        s.exempt = vec!["10.0.0.0/8".into()];
        let t = Throttle::new(&s);
        for _ in 0..10 {
            t.admit(ip("10.1.2.3"), &vec![(Action::Generate, "x")])
                .unwrap();
        }
        assert!(t.is_empty());
        t.admit(ip("192.0.2.1"), &vec![(Action::Generate, "y")])
            .unwrap();
        assert!(
            t.admit(ip("192.0.2.1"), &vec![(Action::Generate, "z")])
                .is_err()
        );
    }

    #[test]
    fn off_means_off() {
        let mut s = settings(1, 1);
        s.enabled = false;
        let t = Throttle::new(&s);
        for _ in 0..10 {
            t.admit(ip("192.0.2.1"), &vec![(Action::Login, "x")])
                .unwrap();
        }
        let t = Throttle::new(&settings(0, 0));
        for _ in 0..10 {
            t.admit(ip("192.0.2.1"), &vec![(Action::Login, "x")])
                .unwrap();
        }
        assert!(t.is_empty());
    }
}
