//! Who the client is: the connection's peer, or, when the peer is one of the
//! `security.trusted_proxies`, the address that proxy reports in `X-Forwarded-For`.
//!
//! The list is read from the right, where each proxy appends the address it was
//! connected from: the first hop that is not a trusted proxy is the client. Anything to
//! its left was written by the client itself and is never believed. A request from a
//! peer that is not trusted is that peer's, whatever headers it sends.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client's address for `req`, believing `X-Forwarded-For` only from `trusted`.
pub fn address(req: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip().to_canonical());
    let headers = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    resolve(peer, headers, trusted)
}

fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is not an address ends what can be believed: the last proxy
        // that reported it is as far as the chain goes.
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// An address as proxies write it: bare, or with a port (`192.0.2.1:5000`,
/// `[2001:db8::1]:5000`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .unwrap()
            })
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let t = nets(&["10.0.0.0/8"]);
        let got = resolve(ip("203.0.113.9"), ["198.51.100.1"].into_iter(), &t);
        assert_eq!(got, ip("203.0.113.9"));
        assert_eq!(
            resolve(ip("203.0.113.9"), [].into_iter(), &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = nets(&["10.0.0.0/8", "192.0.2.10"]);
        // The client claims to be 1.1.1.1; the outer proxy saw 198.51.100.7.
        let xff = ["1.1.1.1, 198.51.100.7", "10.1.2.3"];
        let got = resolve(ip("192.0.2.10"), xff.into_iter(), &t);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost_and_garbage_stops_the_walk() {
        let t = nets(&["10.0.0.0/8"]);
        let got = resolve(ip("10.0.0.1"), ["10.9.9.9, 10.0.0.2"].into_iter(), &t);
        assert_eq!(got, ip("10.9.9.9"));
        let got = resolve(ip("10.0.0.1"), ["nonsense, 10.0.0.2"].into_iter(), &t);
        assert_eq!(got, ip("10.0.0.2"));
        let got = resolve(ip("10.0.0.1"), [].into_iter(), &t);
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn hops_with_ports_and_mapped_addresses_are_read() {
        let t = nets(&["::1"]);
        let got = resolve(ip("::1"), ["[2001:db8::5]:443"].into_iter(), &t);
        assert_eq!(got, ip("2001:db8::5"));
        let got = resolve(ip("::1"), ["192.0.2.4:1234"].into_iter(), &t);
        assert_eq!(got, ip("192.0.2.4"));
        let got = resolve(ip("::1"), ["::ffff:192.0.2.4"].into_iter(), &t);
        assert_eq!(got, ip("192.0.2.4"));
    }
}
