//! Outbound HTTPS for the identity providers: one request per connection,
//! TLS with rustls (ring) against Mozilla's roots plus any extra CAs the
//! operator configures, a deadline on the whole exchange, a cap on the
//! response size, and no redirects followed. Plain `http://` only to
//! loopback hosts (for tests and local stand-ins).
//!
//! Connections are made by `hyper-rustls` (ring provider only, default
//! features off, so no aws-lc-rs) under hyper-util's legacy client with
//! its pool off. Why: it replaced a connector of our own over
//! `tokio-rustls` (TCP connect, server name, TLS handshake, HTTP/1
//! handshake, the connection task's life) and this file went from 234
//! lines (187 of code) to 211 (148 of code). What stays ours is only the
//! rules (the roots, the deadline, the size cap, no redirects, plain http
//! only to loopback); the connecting is the rustls and hyper projects'
//! own code that most of the ecosystem runs. The cost is two small crates
//! in the lock (`hyper-rustls`, `tower-service`) and hyper-util's
//! `client-legacy` feature, whose other dependencies were already there.
//!
//! It implements the domain's [`Fetch`] trait, so the domain sees only its
//! own plain request and response types: no hyper type crosses into it.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::domain::external::{Fetch, FetchError, OutboundRequest, OutboundResponse};

/// Largest provider response read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The real client.
pub struct HttpsClient {
    /// hyper's client over rustls, with the trusted roots and no pool.
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Deadline for the whole exchange.
    timeout: Duration,
}

impl HttpsClient {
    /// Trusts Mozilla's roots and the certificates in `extra_ca_pem` files.
    pub fn new(
        extra_ca_files: &[std::path::PathBuf],
        timeout: Duration,
    ) -> Result<HttpsClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for file in extra_ca_files {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("cannot read CA file {}: {e}", file.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cannot parse CA file {}: {e}", file.display()))?;
            if certs.is_empty() {
                return Err(format!("no certificate in CA file {}", file.display()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("unusable CA certificate in {}: {e}", file.display()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        // Which scheme a URL may use is decided by `check` before any
        // request, so the connector itself takes both.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(HttpsClient { client, timeout })
    }

    async fn exchange(&self, request: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let uri: Uri = request
            .url
            .parse()
            .map_err(|_| FetchError::BadAnswer("bad provider URL".into()))?;
        check(&uri).map_err(FetchError::Unreachable)?;
        let mut builder = Request::builder()
            .method(Method::from_bytes(request.method.as_bytes()).unwrap_or(Method::GET))
            .uri(uri)
            .header(http::header::USER_AGENT, "latchkey")
            .header(http::header::ACCEPT, "application/json");
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        let req = builder
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| FetchError::BadAnswer(format!("request: {e}")))?;
        let response = self.client.request(req).await.map_err(|e| {
            // A connection that never carried the request (refused, TLS
            // refused) is unreachable; one that failed later answered badly.
            if e.is_connect() {
                FetchError::Unreachable(causes(&e))
            } else {
                FetchError::BadAnswer(causes(&e))
            }
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::BadAnswer(format!(
                "redirect ({status}), which is not followed"
            )));
        }
        match Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
        {
            Ok(body) => Ok(OutboundResponse {
                status: status.as_u16(),
                body: body.to_bytes().to_vec(),
            }),
            Err(_) => Err(FetchError::BadAnswer(format!(
                "response over {MAX_RESPONSE_BYTES} bytes or cut short"
            ))),
        }
    }
}

impl Fetch for HttpsClient {
    fn fetch(
        &self,
        request: OutboundRequest,
    ) -> Pin<Box<dyn Future<Output = Result<OutboundResponse, FetchError>> + Send + '_>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.exchange(request)).await {
                Ok(result) => result,
                Err(_) => Err(FetchError::Timeout),
            }
        })
    }
}

/// An error and its causes on one line, for the operator's log: hyper's
/// own text ("client error (Connect)") says too little alone.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// Whether a URL may be used: https, or http to a loopback host.
fn check(uri: &Uri) -> Result<(), String> {
    let host = uri.host().ok_or("provider URL has no host")?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err("plain http is allowed only to loopback hosts".into()),
        _ => Err("provider URLs must be https".into()),
    }
}

/// `localhost`, 127.0.0.0/8 and ::1.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a provider URL the way requests will: https, or http to a
/// loopback host.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|_| format!("not a URL: {url}"))?;
    check(&uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://oauth2.googleapis.com/tokeninfo").is_ok());
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        assert!(check_url("http://[::1]:9/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://example.com/x").is_err());
        assert!(check_url("ftp://example.com/x").is_err());
        assert!(check_url("http://127.0.0.1.evil.com/x").is_err());
    }
}
