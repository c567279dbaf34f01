//! Per-request context: the client's address and a request id.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Attached to every request the handler sees.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's address: the peer, or the right-most untrusted
    /// X-Forwarded-For entry when the peer is a trusted proxy.
    pub client_ip: IpAddr,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// Unpredictable id, echoed as `X-Request-Id` and logged with the
    /// request.
    pub request_id: RequestId,
}

/// Addresses allowed to speak for a client through X-Forwarded-For.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    /// Networks of trusted proxies; empty trusts none.
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses addresses and CIDR ranges.
    pub fn parse(items: &[String]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("not an address or CIDR range: {item}"))?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` with these headers.
    /// Walks X-Forwarded-For from the right, skipping trusted proxies; the
    /// first untrusted address is the client. A peer that is not trusted is
    /// the client, whatever headers it sends.
    ///
    /// A request from a trusted proxy is never keyed by the proxy's own
    /// address: that would put every client behind it in one rate-limit
    /// bucket. So a trusted peer that sends no X-Forwarded-For, or one whose
    /// chain holds an entry that is not an address before the walk reaches
    /// an untrusted one, is refused ([`Unforwarded`]) rather than guessed
    /// at: a per-request identity would give whoever can reach the server
    /// from a trusted address unlimited attempts. When every entry is a
    /// trusted address, the left-most is the client (an internal host
    /// speaking through the proxy).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, Unforwarded> {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return Ok(peer);
        }
        let mut client = None;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().map_err(|_| Unforwarded))
            .collect::<Result<Vec<_>, _>>()?;
        let hops = hops
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        // Bounded by the head size hyper allows; no extra cap is needed.
        for hop in hops.into_iter().rev() {
            let ip = canonical(parse_hop(hop).ok_or(Unforwarded)?);
            if !self.trusts(ip) {
                return Ok(ip);
            }
            client = Some(ip);
        }
        client.ok_or(Unforwarded)
    }
}

/// A trusted proxy sent a request without a usable X-Forwarded-For.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unforwarded;

/// One X-Forwarded-For entry: an address, an IPv4 address with a port
/// (`203.0.113.7:5555`), or a bracketed IPv6 address with or without a
/// port (`[2001:db8::7]:443`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip = inside.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some(IpAddr::V6(ip)),
            port => port
                .strip_prefix(':')
                .filter(|p| p.parse::<u16>().is_ok())
                .map(|_| IpAddr::V6(ip)),
        };
    }
    // An unbracketed IPv6 address never takes a port: its colons would be
    // ambiguous, so only the IPv4 form is read here.
    hop.parse::<std::net::SocketAddrV4>()
        .ok()
        .map(|s| IpAddr::V4(*s.ip()))
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A request's id: 16 characters of `[a-z0-9]`, unique within a process
/// and not predictable from the ids a client has seen.
///
/// It is a keyed hash (SipHash, std's `RandomState`, whose key comes from
/// the operating system once per process) of a per-process counter, so
/// making one costs no system call and no allocation, where drawing 16
/// characters from the OS's random source cost a `getrandom` call per
/// request. An id is a correlation tag, never a credential: nothing is
/// granted to whoever knows one, and the key only keeps ids from telling a
/// client how many requests others made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// The next id of this process.
    pub fn next() -> RequestId {
        static KEY: OnceLock<std::hash::RandomState> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let key = KEY.get_or_init(std::hash::RandomState::new);
        let mut out = [0u8; 16];
        for (half, chunk) in out.chunks_mut(8).enumerate() {
            // 36^8 is below 2^42: eight base-36 digits of a 64-bit hash,
            // each as nearly uniform as the hash itself.
            let mut h = key.hash_one((n, half));
            for c in chunk {
                *c = ALPHABET[(h % 36) as usize];
                h /= 36;
            }
        }
        RequestId(out)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Every byte is from ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RequestContext {
    /// The context of a request from `peer`; refused when a trusted proxy
    /// did not say whom it forwards for.
    pub fn new(
        peer: SocketAddr,
        tls: bool,
        headers: &HeaderMap,
        proxies: &TrustedProxies,
    ) -> Result<Self, Unforwarded> {
        Ok(RequestContext {
            client_ip: proxies.client_ip(peer.ip(), headers)?,
            peer,
            tls,
            request_id: RequestId::next(),
        })
    }

    /// The context of a refused request: the peer is all that is known, and
    /// it goes only into the access log line of the refusal.
    pub fn of_peer(peer: SocketAddr, tls: bool) -> Self {
        RequestContext {
            client_ip: canonical(peer.ip()),
            peer,
            tls,
            request_id: RequestId::next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sixteen_lowercase_alphanumerics_and_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..100_000)
            .map(|_| RequestId::next().to_string())
            .collect();
        assert_eq!(ids.len(), 100_000);
        for id in ids.iter().take(1000) {
            assert_eq!(id.len(), 16);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{id}"
            );
        }
        // Consecutive ids share no prefix a counter would leave.
        let (a, b) = (RequestId::next().to_string(), RequestId::next().to_string());
        assert_ne!(a[..6], b[..6]);
    }

    /// `expected` is an address, or `None` for a refused request.
    fn check(trusted: &[&str], peer: &str, xff: Option<&str>, expected: Option<&str>) {
        let proxies =
            TrustedProxies::parse(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let mut headers = HeaderMap::new();
        if let Some(x) = xff {
            headers.insert("x-forwarded-for", x.parse().unwrap());
        }
        let got = proxies.client_ip(peer.parse().unwrap(), &headers).ok();
        assert_eq!(
            got,
            expected.map(|e| e.parse::<IpAddr>().unwrap()),
            "{trusted:?} {peer} {xff:?}"
        );
    }

    #[test]
    fn forwarded_for() {
        // Untrusted peer: header ignored, even garbage or none.
        check(&[], "10.0.0.5", Some("1.2.3.4"), Some("10.0.0.5"));
        check(&[], "10.0.0.5", Some("junk"), Some("10.0.0.5"));
        check(&[], "10.0.0.5", None, Some("10.0.0.5"));
        // Trusted proxy: right-most untrusted entry.
        check(
            &["10.0.0.0/8"],
            "10.0.0.5",
            Some("1.2.3.4"),
            Some("1.2.3.4"),
        );
        check(
            &["10.0.0.0/8"],
            "10.0.0.5",
            Some("6.6.6.6, 1.2.3.4, 10.0.0.9"),
            Some("1.2.3.4"),
        );
        // Forged left-most entries do not matter, garbage included.
        check(
            &["10.0.0.5"],
            "10.0.0.5",
            Some("127.0.0.1, 9.9.9.9"),
            Some("9.9.9.9"),
        );
        check(
            &["10.0.0.5"],
            "10.0.0.5",
            Some("junk, 9.9.9.9"),
            Some("9.9.9.9"),
        );
        // Only trusted addresses: the left-most is an internal client.
        check(
            &["10.0.0.0/8"],
            "10.0.0.5",
            Some("10.1.1.1, 10.0.0.9"),
            Some("10.1.1.1"),
        );
        // IPv4-mapped peers and entries.
        check(
            &["127.0.0.1"],
            "::ffff:127.0.0.1",
            Some("2.2.2.2"),
            Some("2.2.2.2"),
        );
        check(
            &["127.0.0.1"],
            "127.0.0.1",
            Some("::ffff:2.2.2.2"),
            Some("2.2.2.2"),
        );
    }

    #[test]
    fn forwarded_for_with_ports() {
        let proxy = &["10.0.0.5"][..];
        for (xff, client) in [
            ("203.0.113.7:5555", "203.0.113.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            ("198.51.100.9", "198.51.100.9"),
            ("192.0.2.1, 203.0.113.7:5555", "203.0.113.7"),
            ("[::ffff:203.0.113.7]:80", "203.0.113.7"),
            // A trusted hop with a port is skipped like one without.
            ("203.0.113.7, 10.0.0.5:8080", "203.0.113.7"),
        ] {
            check(proxy, "10.0.0.5", Some(xff), Some(client));
        }
    }

    #[test]
    fn a_trusted_proxy_is_never_its_own_client() {
        let proxy = &["10.0.0.0/8"][..];
        for xff in [
            None,
            Some(""),
            Some("junk"),
            Some("1.1.1.1, junk"),
            Some("junk, 10.0.0.9"),
            Some("203.0.113.7:99999"),
            Some("203.0.113.7:"),
            Some("[2001:db8::7]x"),
            Some("[2001:db8::7]:"),
            Some("[203.0.113.7]:80"),
            Some("unknown"),
        ] {
            check(proxy, "10.0.0.5", xff, None);
        }
    }
}
