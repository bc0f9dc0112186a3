//! The client's IP address, for throttling and audit lines: the peer
//! address, or, when the peer is one of the configured `trusted_proxies`,
//! the rightmost `X-Forwarded-For` entry that is not itself a trusted
//! proxy. Entries to the left of that one were written by the client and
//! are never believed (a client can put anything there).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use axum::http::HeaderMap;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare
/// address is a /32 (IPv4) or /128 (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) is
    /// compared as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let net = canonical(net);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length (0 to {max})"))?,
        };
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The key an anonymous caller is counted under by the per-IP limits
/// (`authorization_starts`): the IPv4 address, or the /64 an IPv6 address
/// is in (one subscriber gets a whole /64 and could otherwise use a fresh
/// address per request); `unknown` without one.
pub fn rate_key(ip: Option<IpAddr>) -> String {
    match ip {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Like [`rate_key`], with an IPv6 address counted by the /48 it is in
/// (a site's allocation, 65,536 /64s): for limits on guessing, where one
/// attacker must not multiply the budget by the /64s she holds.
pub fn wide_rate_key(ip: Option<IpAddr>) -> String {
    match ip.map(canonical) {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        other => rate_key(other),
    }
}

/// The client's address: `peer` itself unless it is a trusted proxy; then
/// `X-Forwarded-For` (all such headers, in order) read from the right,
/// skipping trusted proxies. An entry that does not parse stops the walk
/// at the last trusted hop before it. `None` only without a peer address.
pub fn resolve(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = canonical(peer?.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]` or with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    e.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn guessing_limits_count_ipv6_by_the_48() {
        let key = |s: &str| wide_rate_key(Some(s.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1::/48");
        assert_eq!(key("2001:db8:1:ffff::9"), "2001:db8:1::/48");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(wide_rate_key(None), "unknown");
    }

    #[test]
    fn ipv6_callers_are_counted_by_their_64() {
        let key = |s: &str| rate_key(Some(s.parse().unwrap()));
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(rate_key(None), "unknown");
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse().unwrap(), 4000))
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "172.18.0.0/16".parse().unwrap();
        assert!(c.contains("172.18.3.4".parse().unwrap()));
        assert!(c.contains("::ffff:172.18.3.4".parse().unwrap()));
        assert!(!c.contains("172.19.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let one: Cidr = "fd00::1".parse().unwrap();
        assert_eq!(one.to_string(), "fd00::1/128");
        for bad in ["10.0.0.0/33", "fd00::/129", "nonsense", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        // No trusted proxies: the header is ignored.
        assert_eq!(
            resolve(peer("10.0.0.2"), &xff(&["1.2.3.4"]), &[]),
            Some(ip("10.0.0.2"))
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            resolve(peer("5.6.7.8"), &xff(&["1.2.3.4"]), &trusted),
            Some(ip("5.6.7.8"))
        );
        // Spoofed entries on the left do not count; trusted hops are skipped.
        let h = xff(&["9.9.9.9, 1.2.3.4", "10.0.0.7"]);
        assert_eq!(resolve(peer("10.0.0.2"), &h, &trusted), Some(ip("1.2.3.4")));
        // Garbage stops the walk at the last trusted hop.
        let h = xff(&["1.2.3.4, garbage"]);
        assert_eq!(
            resolve(peer("10.0.0.2"), &h, &trusted),
            Some(ip("10.0.0.2"))
        );
        // Ports and brackets are tolerated.
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            resolve(peer("10.0.0.2"), &h, &trusted),
            Some(ip("2001:db8::1"))
        );
        // No header: the proxy itself.
        assert_eq!(
            resolve(peer("10.0.0.2"), &HeaderMap::new(), &trusted),
            Some(ip("10.0.0.2"))
        );
    }
}
