//! Where a code goes: the channel (e-mail or SMS) and the address on it.

use crate::core::keys::sha256_hex;
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

    /// The key send limits are counted under: the address without case, spaces or
    /// phone punctuation, in the request's limit scope if it has one, hashed so the
    /// limit tables hold no addresses.
    pub(crate) fn limit_key(&self, scope: Option<&str>) -> String {
        let normal: String = match self.channel {
            Channel::Email => self.address.trim().to_lowercase(),
            Channel::Sms => self
                .address
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect(),
        };
        let key = format!("{}:{normal}", self.channel.as_str());
        match scope {
            Some(scope) => sha256_hex(format!("scope:{scope}:{key}").as_bytes()),
            None => sha256_hex(key.as_bytes()),
        }
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
}
