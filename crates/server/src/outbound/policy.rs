//! What outbound requests may reach: the classification of internal
//! addresses, the operator's `outbound_allow` entries, and the check of a
//! client-supplied URL.

use std::{
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use url::{Host, Url};

/// Why an address counts as internal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Internal {
    Loopback,
    LinkLocal,
    Private,
    SharedCgnat,
    Multicast,
    Unspecified,
    Reserved,
}

impl Internal {
    pub fn as_str(self) -> &'static str {
        match self {
            Internal::Loopback => "loopback",
            Internal::LinkLocal => "link-local",
            Internal::Private => "private",
            Internal::SharedCgnat => "shared (CGNAT)",
            Internal::Multicast => "multicast",
            Internal::Unspecified => "unspecified",
            Internal::Reserved => "reserved",
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Internal> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some(Internal::Loopback)
    } else if o[0] == 0 {
        // 0.0.0.0/8, "this network": 0.0.0.0 itself reaches the local host.
        Some(Internal::Unspecified)
    } else if ip.is_link_local() {
        Some(Internal::LinkLocal)
    } else if ip.is_private() {
        Some(Internal::Private)
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some(Internal::SharedCgnat)
    } else if ip.is_multicast() {
        Some(Internal::Multicast)
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        // 192.0.0.0/24 (IETF protocol assignments) and 198.18.0.0/15
        // (benchmarking): never a public service.
        Some(Internal::Reserved)
    } else if o[0] >= 240 {
        // 240.0.0.0/4 and the broadcast address.
        Some(Internal::Reserved)
    } else {
        None
    }
}

/// The kind of internal address `ip` is, or `None` for a public one.
/// IPv6 forms that embed an IPv4 address (mapped `::ffff:0:0/96`,
/// translated `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
/// are judged by that address; local-use NAT64 `64:ff9b:1::/48` is
/// private.
pub fn classify(ip: IpAddr) -> Option<Internal> {
    let v6 = match ip {
        IpAddr::V4(v4) => return classify_v4(v4),
        IpAddr::V6(v6) => v6,
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = v6.segments();
    let low_v4 = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return classify_v4(low_v4);
    }
    if s[0] == 0x2002 {
        // 6to4: the IPv4 address is in bits 16..48.
        return classify_v4(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        return Some(Internal::Private);
    }
    if v6.is_loopback() {
        Some(Internal::Loopback)
    } else if v6.is_unspecified() {
        Some(Internal::Unspecified)
    } else if s[..6] == [0; 6] {
        // The deprecated IPv4-compatible ::a.b.c.d.
        Some(Internal::Reserved)
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some(Internal::LinkLocal)
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        // Unique local fc00::/7 and the deprecated site-local fec0::/10.
        Some(Internal::Private)
    } else if s[0] & 0xff00 == 0xff00 {
        Some(Internal::Multicast)
    } else {
        None
    }
}

/// A network such as `10.20.0.0/16` or `fd00::/8`: the one CIDR type,
/// shared with `trusted_proxies`.
pub use crate::client_ip::Cidr;

/// One entry of `outbound_allow`: a host name (matched exactly, any
/// address it resolves to is accepted) or a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    Host(String),
    Net(Cidr),
}

impl FromStr for Allowed {
    type Err = String;
    fn from_str(s: &str) -> Result<Allowed, String> {
        let s = s.trim();
        if s.contains('/') || s.parse::<IpAddr>().is_ok() {
            return s.parse().map(Allowed::Net);
        }
        let host = s.trim_end_matches('.').to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(Allowed::Host(host))
        } else {
            Err(format!("{s:?} is not a host name, IP address or network"))
        }
    }
}

/// Where outbound requests may go.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    /// Loopback targets (and http to them) are allowed: the issuer itself
    /// is http on a loopback host (development).
    pub loopback: bool,
    /// The operator's exceptions (`outbound_allow`).
    pub allow: Vec<Allowed>,
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

impl OutboundPolicy {
    /// May a connection go to `ip`, reached by the name `host`?
    pub fn permits(&self, host: Option<&str>, ip: IpAddr) -> Result<(), Internal> {
        let Some(kind) = classify(ip) else {
            return Ok(());
        };
        if kind == Internal::Loopback && self.loopback {
            return Ok(());
        }
        let host = host.map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        let listed = self.allow.iter().any(|a| match a {
            Allowed::Host(h) => host.as_deref() == Some(h.as_str()),
            Allowed::Net(n) => n.contains(ip),
        });
        if listed {
            Ok(())
        } else {
            Err(kind)
        }
    }

    /// Checks a client-supplied URL that Gatehouse will contact (`field`
    /// names it in the message): https (http only to loopback for a
    /// development issuer), no credentials or fragment, and an IP-literal
    /// or `localhost` host that is not internal. Names are checked again
    /// on every connection, after resolution.
    pub fn check_uri(&self, field: &str, s: &str) -> Result<Url, String> {
        let u = Url::parse(s).map_err(|_| format!("{field} is not an absolute URL"))?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!("{field} must not carry credentials"));
        }
        if u.fragment().is_some() {
            return Err(format!("{field} must not contain a fragment"));
        }
        let (ip, name) = match u.host() {
            Some(Host::Ipv4(ip)) => (Some(IpAddr::V4(ip)), None),
            Some(Host::Ipv6(ip)) => (Some(IpAddr::V6(ip)), None),
            Some(Host::Domain(d)) if is_loopback_name(d) => {
                (Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), Some(d))
            }
            Some(Host::Domain(_)) => (None, None),
            None => return Err(format!("{field} has no host")),
        };
        let loopback = ip.is_some_and(|ip| classify(ip) == Some(Internal::Loopback));
        match u.scheme() {
            "https" => {}
            "http" if self.loopback && loopback => {}
            _ if self.loopback => {
                return Err(format!(
                    "{field} must use https (http only to a loopback host, for development)"
                ))
            }
            _ => return Err(format!("{field} must use https")),
        }
        if let Some(ip) = ip {
            self.permits(name, ip).map_err(|kind| {
                format!(
                    "{field} points at a {} address; Gatehouse does not contact internal hosts \
                     unless the operator lists them in outbound_allow",
                    kind.as_str()
                )
            })?;
        }
        Ok(u)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_classified() {
        for (ip, kind) in [
            ("127.0.0.1", Some(Internal::Loopback)),
            ("127.9.9.9", Some(Internal::Loopback)),
            ("::1", Some(Internal::Loopback)),
            ("::ffff:127.0.0.1", Some(Internal::Loopback)),
            ("64:ff9b::a00:1", Some(Internal::Private)),
            ("169.254.169.254", Some(Internal::LinkLocal)),
            ("fe80::1", Some(Internal::LinkLocal)),
            ("10.1.2.3", Some(Internal::Private)),
            ("172.16.0.1", Some(Internal::Private)),
            ("172.31.255.255", Some(Internal::Private)),
            ("192.168.1.1", Some(Internal::Private)),
            ("fd12::1", Some(Internal::Private)),
            ("fc00::1", Some(Internal::Private)),
            ("100.64.0.1", Some(Internal::SharedCgnat)),
            ("100.127.255.255", Some(Internal::SharedCgnat)),
            ("224.0.0.1", Some(Internal::Multicast)),
            ("ff02::1", Some(Internal::Multicast)),
            ("0.0.0.0", Some(Internal::Unspecified)),
            ("::", Some(Internal::Unspecified)),
            ("255.255.255.255", Some(Internal::Reserved)),
            ("::7f00:1", Some(Internal::Reserved)),
            // Further forms the review found (embedded IPv4, special ranges).
            ("::ffff:0:a00:1", Some(Internal::Private)),
            ("2002:a00:1::1", Some(Internal::Private)),
            ("2002:7f00:1::", Some(Internal::Loopback)),
            ("64:ff9b:1::a00:1", Some(Internal::Private)),
            ("192.0.0.8", Some(Internal::Reserved)),
            ("198.18.0.1", Some(Internal::Reserved)),
            ("198.19.255.255", Some(Internal::Reserved)),
            ("2002:808:808::1", None),
            ("198.20.0.1", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("93.184.216.34", None),
            ("2606:4700::1", None),
        ] {
            assert_eq!(classify(ip.parse().unwrap()), kind, "{ip}");
        }
    }

    #[test]
    fn networks_and_hosts_parse_and_match() {
        let n: Cidr = "10.20.0.0/16".parse().unwrap();
        assert!(n.contains("10.20.3.4".parse().unwrap()));
        assert!(n.contains("::ffff:10.20.3.4".parse().unwrap()));
        assert!(!n.contains("10.21.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("10.0.0.1".parse().unwrap()));
        let one: Cidr = "fd00::1".parse().unwrap();
        assert!(one.contains("fd00::1".parse().unwrap()));
        assert!(!one.contains("fd00::2".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "x/8", "10.0.0.0/"] {
            assert!(bad.parse::<Allowed>().is_err(), "{bad}");
        }
        assert_eq!(
            "JWKS.Internal.Example.".parse::<Allowed>().unwrap(),
            Allowed::Host("jwks.internal.example".into())
        );
        assert!("bad host!".parse::<Allowed>().is_err());
    }

    #[test]
    fn urls_are_checked_before_use() {
        let prod = OutboundPolicy::default();
        let dev = OutboundPolicy {
            loopback: true,
            allow: Vec::new(),
        };
        let listed = OutboundPolicy {
            loopback: false,
            allow: vec!["10.0.0.0/8".parse().unwrap(), "localhost".parse().unwrap()],
        };
        assert!(prod
            .check_uri("jwks_uri", "https://rp.example/jwks")
            .is_ok());
        for bad in [
            "http://rp.example/jwks",
            "https://127.0.0.1/jwks",
            "https://[::1]/jwks",
            "https://localhost/jwks",
            "https://10.0.0.5/jwks",
            "https://169.254.169.254/latest",
            "https://[::ffff:192.168.0.1]/x",
            "https://user:pw@rp.example/jwks",
            "https://rp.example/jwks#x",
            "ftp://rp.example/jwks",
            "/relative",
        ] {
            assert!(prod.check_uri("jwks_uri", bad).is_err(), "{bad}");
        }
        assert!(dev.check_uri("jwks_uri", "http://127.0.0.1:9/jwks").is_ok());
        assert!(dev.check_uri("jwks_uri", "http://localhost:9/jwks").is_ok());
        assert!(dev.check_uri("jwks_uri", "http://rp.example/jwks").is_err());
        assert!(dev.check_uri("jwks_uri", "https://10.0.0.5/jwks").is_err());
        assert!(listed
            .check_uri("jwks_uri", "https://10.0.0.5/jwks")
            .is_ok());
        assert!(listed
            .check_uri("jwks_uri", "https://localhost/jwks")
            .is_ok());
        assert!(listed
            .check_uri("jwks_uri", "https://127.0.0.1/jwks")
            .is_err());
        assert!(listed
            .check_uri("jwks_uri", "http://10.0.0.5/jwks")
            .is_err());
    }
}
