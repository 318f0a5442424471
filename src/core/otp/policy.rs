use crate::config::{PolicySettings, Settings};

/// What governs one challenge: code length, lifetime, attempts and send limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub length: u32,
    pub expiry_ms: i64,
    pub max_attempts: i64,
    pub max_sends: i64,
    pub send_window_ms: i64,
    pub cooldown_ms: i64,
    pub channels: Vec<super::Channel>,
}

impl Policy {
    pub fn from_settings(p: &PolicySettings) -> Policy {
        Policy {
            length: p.length,
            expiry_ms: p.expiry_seconds * 1000,
            max_attempts: p.max_attempts,
            max_sends: p.max_sends,
            send_window_ms: p.send_window_seconds * 1000,
            cooldown_ms: p.resend_cooldown_seconds * 1000,
            channels: p
                .channels
                .iter()
                .filter_map(|c| super::Channel::parse(c))
                .collect(),
        }
    }

    /// The policy of an organisation: the defaults with its overrides.
    pub fn for_org(settings: &Settings, org_id: i64) -> Policy {
        match settings.orgs.get(&org_id.to_string()) {
            Some(o) => Policy::from_settings(&o.apply(&settings.otp)),
            None => Policy::from_settings(&settings.otp),
        }
    }

    /// Narrows the policy with limits a request carries; a request can tighten its
    /// policy but never loosen it.
    pub fn narrowed(
        mut self,
        max_sends: Option<i64>,
        send_window_ms: Option<i64>,
        expiry_ms: Option<i64>,
    ) -> Policy {
        if let Some(n) = max_sends.filter(|n| *n > 0) {
            self.max_sends = self.max_sends.min(n);
        }
        if let Some(w) = send_window_ms.filter(|w| *w > 0) {
            self.send_window_ms = self.send_window_ms.max(w);
        }
        if let Some(e) = expiry_ms.filter(|e| *e > 0) {
            self.expiry_ms = self.expiry_ms.min(e);
        }
        self
    }

    pub fn expiry_minutes(&self) -> i64 {
        (self.expiry_ms + 59_999) / 60_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design_and_orgs_override_them() {
        let mut s = Settings::default();
        let p = Policy::for_org(&s, 1);
        assert_eq!(
            (
                p.length,
                p.expiry_ms,
                p.max_attempts,
                p.max_sends,
                p.send_window_ms
            ),
            (6, 600_000, 3, 5, 900_000)
        );
        s.orgs.insert(
            "7".into(),
            crate::config::PolicyOverride {
                length: Some(4),
                ..Default::default()
            },
        );
        assert_eq!(Policy::for_org(&s, 7).length, 4);
        assert_eq!(Policy::for_org(&s, 8).length, 6);
    }

    #[test]
    fn requests_only_tighten() {
        let p = Policy::from_settings(&PolicySettings::default());
        let n = p.clone().narrowed(Some(2), Some(60_000), Some(1_200_000));
        assert_eq!(n.max_sends, 2);
        assert_eq!(n.send_window_ms, 900_000);
        assert_eq!(n.expiry_ms, 600_000);
        let n = p.narrowed(Some(50), Some(3_600_000), Some(60_000));
        assert_eq!(
            (n.max_sends, n.send_window_ms, n.expiry_ms),
            (5, 3_600_000, 60_000)
        );
    }
}
