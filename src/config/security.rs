//! `[security]`: what answers may reveal, which proxies are believed about the
//! client's address, and the per-client throttle (docs/security.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// Answer an unknown e-mail, login name or number with the legacy "no such user"
    /// texts. False (the default) answers it as a known one, and sends nothing.
    pub reveal_unknown_users: bool,
    /// Proxies (CIDRs, or single addresses) whose `X-Forwarded-For` is believed: the
    /// client is the rightmost hop that is not one of them. A request from any other
    /// peer is that peer's.
    pub trusted_proxies: Vec<String>,
    pub throttle: ThrottleSettings,
}

/// Token buckets per client address and per identifier, in each process (with N
/// processes a client may get up to N times these rates; the database-counted send
/// limits stay global).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// Clients never throttled (CIDRs, or single addresses): a back end that asks for
    /// many people's codes, a host that replays recorded traffic.
    pub exempt: Vec<String>,
    /// Requests that issue a code.
    pub generate: Buckets,
    /// Requests that check a code.
    pub verify: Buckets,
    /// Password logins; a failed API key also counts here, against its address.
    pub login: Buckets,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Buckets {
    /// Per client address (an IPv6 client by its /64).
    pub per_address: Rate,
    /// Per identifier: the e-mail, mobile number, login name, API key, transaction or
    /// session the request is about.
    pub per_identifier: Rate,
}

/// A token bucket: `burst` requests at once, refilled at `per_minute`. A zero rate
/// turns the bucket off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl SecuritySettings {
    /// `trusted_proxies` as networks: CIDRs, or single addresses. The error names the
    /// first entry that is neither.
    pub fn trusted_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        networks("security.trusted_proxies", &self.trusted_proxies)
    }
}

impl ThrottleSettings {
    /// `exempt` as networks, as [`SecuritySettings::trusted_networks`].
    pub fn exempt_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        networks("security.throttle.exempt", &self.exempt)
    }
}

fn networks(setting: &str, entries: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<ipnet::IpNet>()
                .or_else(|_| e.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{setting}: '{e}' is neither an address nor a CIDR network"))
        })
        .collect()
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        // A person asks for a code or types one a few times a minute; a back end
        // serving many people from one address gets a second or two of steady traffic.
        ThrottleSettings {
            enabled: true,
            exempt: Vec::new(),
            generate: Buckets {
                per_address: Rate::new(120, 60),
                per_identifier: Rate::new(10, 5),
            },
            verify: Buckets {
                per_address: Rate::new(240, 120),
                per_identifier: Rate::new(20, 10),
            },
            login: Buckets {
                per_address: Rate::new(60, 30),
                per_identifier: Rate::new(10, 5),
            },
        }
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            per_address: Rate::new(0, 0),
            per_identifier: Rate::new(0, 0),
        }
    }
}

impl Default for Rate {
    fn default() -> Self {
        Rate::new(0, 0)
    }
}

impl Rate {
    pub const fn new(per_minute: u32, burst: u32) -> Rate {
        Rate { per_minute, burst }
    }

    pub fn is_off(&self) -> bool {
        self.per_minute == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::load_text;

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let mut s = SecuritySettings {
            trusted_proxies: vec!["10.0.0.0/8".into(), " ::1 ".into()],
            ..Default::default()
        };
        assert_eq!(s.trusted_networks().unwrap().len(), 2);
        s.trusted_proxies = vec!["10.0.0.0/33".into()];
        let err = s.trusted_networks().unwrap_err();
        assert!(err.contains("'10.0.0.0/33'"), "{err}");
    }

    /// The security page's examples start, and a bucket given in part keeps the rest
    /// of its default.
    #[test]
    fn the_documented_examples_load_over_the_defaults() {
        let page = include_str!("../../docs/security.md");
        let blocks: Vec<&str> = page
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert_eq!(blocks.len(), 2);
        for b in &blocks {
            load_text(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
        }
        let s = load_text(blocks[1]).unwrap();
        let t = &s.security.throttle;
        assert_eq!(t.exempt, vec!["10.20.0.5".to_string()]);
        assert_eq!(t.generate.per_address, Rate::new(30, 10));
        assert_eq!(
            t.verify.per_address,
            ThrottleSettings::default().verify.per_address
        );
        let s =
            load_text("[security.throttle.login]\nper_identifier = { per_minute = 3 }\n").unwrap();
        assert_eq!(s.security.throttle.login.per_identifier, Rate::new(3, 5));
    }

    #[test]
    fn unusable_entries_stop_the_start() {
        let e = load_text(
            "[security]\ntrusted_proxies = [\"proxy.internal\"]\n[security.throttle]\nexempt = [\"10.0.0.1/99\"]\n[security.throttle.verify]\nper_address = { per_minute = 5, burst = 0 }\n",
        )
        .unwrap_err();
        assert!(
            e.contains("security.trusted_proxies: 'proxy.internal'"),
            "{e}"
        );
        assert!(e.contains("security.throttle.exempt: '10.0.0.1/99'"), "{e}");
        assert!(
            e.contains("security.throttle.verify.per_address: burst"),
            "{e}"
        );
    }
}
