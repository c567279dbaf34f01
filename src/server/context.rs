//! Per-request context: the client's address and a request id.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

use crate::domain::secrets::random_id;

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
    /// Random id, echoed as `X-Request-Id` and logged with the request.
    pub request_id: String,
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

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` with these headers.
    /// Walks X-Forwarded-For from the right, skipping trusted proxies; the
    /// first untrusted address is the client. A peer that is not trusted is
    /// the client, whatever headers it sends.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // Garbage in the chain: stop at the last address we could
                // vouch for rather than trust anything further left.
                Err(_) => return client,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl RequestContext {
    pub fn new(peer: SocketAddr, tls: bool, headers: &HeaderMap, proxies: &TrustedProxies) -> Self {
        RequestContext {
            client_ip: proxies.client_ip(peer.ip(), headers),
            peer,
            tls,
            request_id: random_id(16),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(trusted: &[&str], peer: &str, xff: Option<&str>, expected: &str) {
        let proxies =
            TrustedProxies::parse(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let mut headers = HeaderMap::new();
        if let Some(x) = xff {
            headers.insert("x-forwarded-for", x.parse().unwrap());
        }
        let got = proxies.client_ip(peer.parse().unwrap(), &headers);
        assert_eq!(
            got,
            expected.parse::<IpAddr>().unwrap(),
            "{trusted:?} {peer} {xff:?}"
        );
    }

    #[test]
    fn forwarded_for() {
        // Untrusted peer: header ignored.
        check(&[], "10.0.0.5", Some("1.2.3.4"), "10.0.0.5");
        // Trusted proxy: right-most untrusted entry.
        check(&["10.0.0.0/8"], "10.0.0.5", Some("1.2.3.4"), "1.2.3.4");
        check(
            &["10.0.0.0/8"],
            "10.0.0.5",
            Some("6.6.6.6, 1.2.3.4, 10.0.0.9"),
            "1.2.3.4",
        );
        // Forged left-most entries do not matter.
        check(
            &["10.0.0.5"],
            "10.0.0.5",
            Some("127.0.0.1, 9.9.9.9"),
            "9.9.9.9",
        );
        // No header from a trusted proxy: the proxy is the client.
        check(&["10.0.0.5"], "10.0.0.5", None, "10.0.0.5");
        // Garbage stops the walk.
        check(
            &["10.0.0.0/8"],
            "10.0.0.5",
            Some("1.1.1.1, junk"),
            "10.0.0.5",
        );
        // IPv4-mapped peers.
        check(
            &["127.0.0.1"],
            "::ffff:127.0.0.1",
            Some("2.2.2.2"),
            "2.2.2.2",
        );
    }
}
