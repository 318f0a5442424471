//! `[security]`: what answers may reveal, which proxies are believed about the
//! client's address, and the per-client throttle (docs/security.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[allow(
    clippy::derivable_impls,
    reason = "every default of the section spelled out, as for the throttle below"
)]
impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            reveal_unknown_users: false,
            trusted_proxies: Vec::new(),
            throttle: ThrottleSettings::default(),
        }
    }
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        // A person asks for a code or types one a few times a minute; a back end
        // serving many people from one address gets a second or two of steady traffic.
        ThrottleSettings {
            enabled: true,
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
