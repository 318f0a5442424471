//! Where a code goes: the channel (e-mail or SMS) and the address on it.

use crate::core::keys::{Keys, sha256_hex};
use crate::core::mask;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" | "e-mail" | "mail" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}

/// Where a code goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub channel: Channel,
    pub address: String,
}

impl Destination {
    pub fn masked(&self) -> String {
        match self.channel {
            Channel::Email => mask::email(&self.address),
            Channel::Sms => mask::phone(&self.address),
        }
    }

    /// The address as limits and the audit know it: the channel, then the address
    /// without case or surrounding spaces (e-mail) or its digits alone (SMS, so
    /// `+91 98765-43219` and `919876543219` are one number).
    pub fn normalised(&self) -> String {
        let normal: String = match self.channel {
            Channel::Email => self.address.trim().to_lowercase(),
            Channel::Sms => self
                .address
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect(),
        };
        format!("{}:{normal}", self.channel.as_str())
    }

    /// What an operator types to find a destination: an e-mail address when it holds
    /// an `@`, else a phone number.
    pub fn parse_any(text: &str) -> Destination {
        let channel = if text.contains('@') {
            Channel::Email
        } else {
            Channel::Sms
        };
        Destination {
            channel,
            address: text.trim().to_string(),
        }
    }

    /// The key send limits are counted under: the [normalised](Self::normalised)
    /// address, in the request's limit scope if it has one, hashed so the limit tables
    /// hold no addresses.
    pub(crate) fn limit_key(&self, scope: Option<&str>) -> String {
        let key = self.normalised();
        match scope {
            Some(scope) => sha256_hex(format!("scope:{scope}:{key}").as_bytes()),
            None => sha256_hex(key.as_bytes()),
        }
    }

    /// The keyed hash the audit finds this destination's events by.
    pub fn audit_key(&self, keys: &Keys) -> String {
        keys.destination_key(&self.normalised())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(channel: Channel, address: &str) -> Destination {
        Destination {
            channel,
            address: address.into(),
        }
    }

    #[test]
    fn limit_keys_ignore_formatting_but_not_channel() {
        let a = to(Channel::Sms, "+91 98765-43219");
        let b = to(Channel::Sms, "919876543219");
        assert_eq!(a.limit_key(None), b.limit_key(None));
        let e1 = to(Channel::Email, "A@B.com ");
        let e2 = to(Channel::Email, "a@b.com");
        assert_eq!(e1.limit_key(None), e2.limit_key(None));
        assert_ne!(a.limit_key(None), e2.limit_key(None));
        // A scope counts apart from the address alone and from other scopes.
        assert_eq!(a.limit_key(Some("t:x")), b.limit_key(Some("t:x")));
        assert_ne!(a.limit_key(Some("t:x")), a.limit_key(None));
        assert_ne!(a.limit_key(Some("t:x")), a.limit_key(Some("t:y")));
    }

    #[test]
    fn audit_keys_are_keyed_and_ignore_formatting() {
        let k = Keys::from_secrets(&[7; 32], &[]);
        let other = Keys::from_secrets(&[8; 32], &[]);
        let typed = Destination::parse_any(" +91 (98765) 43219 ");
        assert_eq!(typed.channel, Channel::Sms);
        let a = to(Channel::Sms, "+919876543219").audit_key(&k);
        assert_eq!(typed.audit_key(&k), a);
        assert_ne!(typed.audit_key(&other), a, "another secret, another key");
        assert_ne!(a, sha256_hex(b"sms:919876543219"), "not a plain hash");
        let mail = Destination::parse_any("Ann@Example.com");
        assert_eq!(mail.channel, Channel::Email);
        assert_eq!(
            mail.audit_key(&k),
            to(Channel::Email, "ann@example.com").audit_key(&k)
        );
    }
}
