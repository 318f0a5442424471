//! What a dialect tells the access log and the metrics about the request it served:
//! the operation (a name otpgate serves, never the client's spelling of one it does
//! not) and what it came to, kept in the request's extensions until the answer leaves.

use std::net::IpAddr;

use actix_web::HttpMessage;
use actix_web::HttpRequest;

/// The operation of a request otpgate does not serve.
pub const UNKNOWN: &str = "unknown";
/// The operation of a request passed on to the legacy server.
pub const FORWARDED: &str = "forwarded";

/// The operation a dialect found in the request.
#[derive(Clone, Copy, Debug)]
pub struct Operation(pub &'static str);

/// What the request came to, in the dialect's judgement (a business failure is
/// answered 200 in some dialects).
#[derive(Clone, Copy, Debug)]
pub struct Outcome(pub &'static str);

pub fn operation(req: &HttpRequest, name: &'static str) {
    req.extensions_mut().insert(Operation(name));
}

pub fn outcome(req: &HttpRequest, kind: &'static str) {
    req.extensions_mut().insert(Outcome(kind));
}

/// A client address as logs may hold it: its network, not the host (`203.0.113.0/24`,
/// `2001:db8:1::/48`).
pub fn masked(address: IpAddr) -> String {
    let prefix = match address {
        IpAddr::V4(_) => 24,
        IpAddr::V6(_) => 48,
    };
    ipnet::IpNet::new(address, prefix)
        .map(|n| n.trunc().to_string())
        .unwrap_or_else(|_| UNKNOWN.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_to_their_network() {
        assert_eq!(masked("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            masked("2001:db8:1:2::99".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }
}
