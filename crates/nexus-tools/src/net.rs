//! The SSRF guard: which addresses a tool may connect to.
//!
//! A URL's host is resolved first and **every** address it resolves to must be public (a name
//! that resolves to one public and one private address is refused: an attacker controls which
//! one a later connection would use). The caller then connects to the checked addresses only,
//! never resolving again (no DNS rebinding), and checks each redirect's target the same way.
//! IPv4 addresses inside IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are judged as
//! the IPv4 address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refused {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud metadata service (`169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`).
    Metadata,
    /// `100.64/10` (carrier-grade NAT).
    SharedAddressSpace,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `224/4`, `ff00::/8`, `255.255.255.255`.
    Multicast,
    /// Documentation, benchmarking, protocol-assignment and reserved ranges.
    Reserved,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::Loopback => "a loopback address",
            Refused::Private => "a private network address",
            Refused::LinkLocal => "a link-local address",
            Refused::Metadata => "a cloud metadata service",
            Refused::SharedAddressSpace => "a carrier-grade NAT address",
            Refused::Unspecified => "an unspecified address",
            Refused::Multicast => "a multicast or broadcast address",
            Refused::Reserved => "a reserved address",
        })
    }
}

/// An address range such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A malformed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address range like 10.0.0.0/8 or fd00::/8")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in the range (IPv4 ranges match only IPv4 addresses, after unwrapping).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, unwrap_v4(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// The IPv4 address an IPv6 address carries (mapped or NAT64), else the address itself.
fn unwrap_v4(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            // 64:ff9b::/96, the well-known NAT64 prefix.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

/// Why `ip` must not be reached, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<Refused> {
    match unwrap_v4(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refused> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return Some(Refused::Metadata);
    }
    Some(match (a, b, c) {
        (0, _, _) => Refused::Unspecified,
        (127, _, _) => Refused::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Refused::Private,
        (169, 254, _) => Refused::LinkLocal,
        (100, 64..=127, _) => Refused::SharedAddressSpace,
        (224..=239, _, _) | (255, 255, 255) => Refused::Multicast,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => {
            Refused::Reserved
        }
        (240..=255, _, _) => Refused::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refused> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Refused::Metadata);
    }
    if ip.is_unspecified() {
        return Some(Refused::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refused::Loopback);
    }
    Some(match s[0] {
        0xfe80..=0xfebf => Refused::LinkLocal,
        0xfc00..=0xfdff => Refused::Private,
        0xff00..=0xffff => Refused::Multicast,
        0x2001 if s[1] == 0x0db8 => Refused::Reserved,
        // 100::/64, the discard prefix; ::/96 (IPv4-compatible, deprecated).
        0x0100 if s[1..4] == [0, 0, 0] => Refused::Reserved,
        0 if s[1..6] == [0, 0, 0, 0, 0] => Refused::Reserved,
        _ => return None,
    })
}

/// A refused connection, for the tool's result (the model reads it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The host resolves to an address tools may not reach.
    #[error("refused: {host} resolves to {addr}, {reason}; tools may only reach public addresses")]
    Refused {
        /// The host asked for.
        host: String,
        /// The offending address.
        addr: IpAddr,
        /// Why.
        reason: Refused,
    },
    /// The host does not resolve.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host asked for.
        host: String,
        /// What the resolver said.
        message: String,
    },
}

/// Which addresses tools may reach: public ones, plus the ranges the operator allowlists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkGuard {
    allow: Vec<Cidr>,
}

impl NetworkGuard {
    /// Public addresses only.
    pub fn public_only() -> Self {
        NetworkGuard::default()
    }

    /// Public addresses and the `allow`ed ranges (e.g. an internal wiki's subnet).
    pub fn allowing(allow: Vec<Cidr>) -> Self {
        NetworkGuard { allow }
    }

    /// Whether `ip` may be reached, and why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        match classify(ip) {
            Some(_) if self.allow.iter().any(|c| c.contains(ip)) => Ok(()),
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    /// Resolves `host` and checks every address; the addresses to connect to (and only
    /// those: resolving again could answer differently).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| GuardError::Resolve {
                    host: host.to_owned(),
                    message: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(GuardError::Resolve {
                host: host.to_owned(),
                message: "no addresses".to_owned(),
            });
        }
        for addr in &addrs {
            if let Err(reason) = self.check(addr.ip()) {
                return Err(GuardError::Refused {
                    host: host.to_owned(),
                    addr: addr.ip(),
                    reason,
                });
            }
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused_with_their_reason() {
        for (addr, reason) in [
            ("127.0.0.1", Refused::Loopback),
            ("::1", Refused::Loopback),
            ("10.1.2.3", Refused::Private),
            ("172.31.255.255", Refused::Private),
            ("192.168.0.1", Refused::Private),
            ("fd12::1", Refused::Private),
            ("169.254.169.254", Refused::Metadata),
            ("fd00:ec2::254", Refused::Metadata),
            ("100.100.100.200", Refused::Metadata),
            ("169.254.1.1", Refused::LinkLocal),
            ("fe80::1", Refused::LinkLocal),
            ("100.64.0.1", Refused::SharedAddressSpace),
            ("0.0.0.0", Refused::Unspecified),
            ("::", Refused::Unspecified),
            ("224.0.0.1", Refused::Multicast),
            ("255.255.255.255", Refused::Multicast),
            ("ff02::1", Refused::Multicast),
            ("192.0.2.1", Refused::Reserved),
            ("2001:db8::1", Refused::Reserved),
            ("240.0.0.1", Refused::Reserved),
        ] {
            assert_eq!(classify(ip(addr)), Some(reason), "{addr}");
        }
    }

    #[test]
    fn ipv4_hidden_in_ipv6_is_judged_as_ipv4() {
        assert_eq!(classify(ip("::ffff:127.0.0.1")), Some(Refused::Loopback));
        assert_eq!(
            classify(ip("::ffff:169.254.169.254")),
            Some(Refused::Metadata)
        );
        assert_eq!(classify(ip("64:ff9b::10.0.0.1")), Some(Refused::Private));
        assert_eq!(classify(ip("::ffff:93.184.216.34")), None);
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn allowlisted_ranges_pass_and_others_stay_refused() {
        let guard =
            NetworkGuard::allowing(vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        assert_eq!(guard.check(ip("10.9.8.7")), Ok(()));
        assert_eq!(guard.check(ip("::1")), Ok(()));
        assert_eq!(guard.check(ip("192.168.1.1")), Err(Refused::Private));
        assert_eq!(guard.check(ip("169.254.169.254")), Err(Refused::Metadata));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!(
            "172.16.0.0/12".parse::<Cidr>().unwrap().to_string(),
            "172.16.0.0/12"
        );
    }

    #[tokio::test]
    async fn resolving_checks_every_address_before_any_connection() {
        let guard = NetworkGuard::public_only();
        let err = guard.resolve("localhost", 80).await.unwrap_err();
        assert!(
            matches!(
                err,
                GuardError::Refused {
                    reason: Refused::Loopback,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = guard.resolve("169.254.169.254", 80).await.unwrap_err();
        assert!(
            matches!(
                err,
                GuardError::Refused {
                    reason: Refused::Metadata,
                    ..
                }
            ),
            "{err}"
        );
        let err = guard.resolve("[::1]", 80).await.unwrap_err();
        assert!(matches!(err, GuardError::Refused { .. }), "{err}");
        let allowed =
            NetworkGuard::allowing(vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        let addrs = allowed.resolve("localhost", 8080).await.unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
    }
}
