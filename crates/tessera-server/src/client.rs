//! Who is at the other end of a request: the client's address, seen through the proxies
//! the operator trusts, and its user agent. Sign-in throttling and the sessions list
//! both rely on it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::Deserialize;

use crate::state::AppState;

/// An address block such as `10.0.0.0/8`, `fd00::/8` or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .trim()
            .split_once('/')
            .map_or((s.trim(), None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or address block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        // An IPv4-mapped block (`::ffff:10.0.0.0/104`) is the IPv4 block it maps.
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
            && prefix >= 96
        {
            return Ok(Self {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Ok(Self { addr, prefix })
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = bits - prefix;
    shift >= bits || (a >> shift) == (b >> shift)
}

/// The client's address. The TCP peer, unless it is a trusted proxy: then the
/// `X-Forwarded-For` hops are read from the right (the ones our proxies appended) and
/// the first address that is not a trusted proxy is the client. Anything left of it was
/// written by the client and is ignored.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !trusted.iter().any(|n| n.contains(client)) {
        return Some(client);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = hop_address(hop) else {
            // Unreadable: keep the last address we could vouch for.
            break;
        };
        client = ip.to_canonical();
        if !trusted.iter().any(|n| n.contains(client)) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` hop: an address, which some proxies write with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`) or in brackets (`[2001:db8::1]`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
}

/// Who signs in, from where.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn of(state: &AppState, parts: &Parts) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Self {
            ip: client_address(peer, &parts.headers, &state.config.trusted_proxies),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|u| u.chars().take(256).collect()),
        }
    }

    /// What sign-in throttling counts failures against: the address, or for IPv6 its
    /// /64 (one host is commonly given a whole /64).
    pub fn throttle_scope(&self) -> String {
        match self.ip {
            None => "unknown".into(),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => {
                let net = u128::from(ip) >> 64 << 64;
                format!("{}/64", std::net::Ipv6Addr::from(net))
            }
        }
    }
}

impl Origin {
    /// For IPv6 clients, the /48 around them (a whole site is commonly given one): a
    /// wider scope for limits that one holder of many /64s must not multiply.
    pub fn site_scope(&self) -> Option<String> {
        match self.ip {
            Some(IpAddr::V6(ip)) => {
                let net = u128::from(ip) >> 80 << 80;
                Some(format!("{}/48", std::net::Ipv6Addr::from(net)))
            }
            _ => None,
        }
    }
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::of(state, parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn blocks_parse_and_match() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(
            n.contains("::ffff:10.1.2.3".parse().unwrap()),
            "IPv4-mapped"
        );
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_hops_are_read_only_through_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 198.51.100.4, 10.0.0.2"),
        );
        let proxy = Some("10.0.0.1".parse().unwrap());
        // Through our proxies: the first untrusted hop from the right; the forged
        // left-most entry is ignored.
        assert_eq!(
            client_address(proxy, &h, &trusted),
            Some("198.51.100.4".parse().unwrap())
        );
        // A client talking to us directly cannot claim another address.
        let direct = Some("203.0.113.5".parse().unwrap());
        assert_eq!(client_address(direct, &h, &trusted), direct);
        // No proxies trusted: the peer, whatever the header says.
        assert_eq!(client_address(proxy, &h, &[]), proxy);
        // Hops written with ports or brackets are read as addresses.
        for written in ["198.51.100.4:443", "[2001:db8::4]:443", "[2001:db8::4]"] {
            h.insert("x-forwarded-for", HeaderValue::from_str(written).unwrap());
            assert!(
                client_address(proxy, &h, &trusted) == Some("198.51.100.4".parse().unwrap())
                    || client_address(proxy, &h, &trusted) == Some("2001:db8::4".parse().unwrap()),
                "{written}"
            );
        }
        let mapped: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert!(mapped.contains("10.9.9.9".parse().unwrap()));
        // Garbage in the header: the last address we could vouch for.
        h.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(client_address(proxy, &h, &trusted), proxy);
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_64() {
        let a = Origin {
            ip: Some("2001:db8:1:2:aaaa::1".parse().unwrap()),
            user_agent: None,
        };
        let b = Origin {
            ip: Some("2001:db8:1:2:bbbb::9".parse().unwrap()),
            user_agent: None,
        };
        assert_eq!(a.throttle_scope(), b.throttle_scope());
        assert_eq!(a.throttle_scope(), "2001:db8:1:2::/64");
        assert_eq!(a.site_scope().as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(Origin::default().throttle_scope(), "unknown");
    }
}
