//! Outbound HTTPS for the identity providers: one request per connection,
//! TLS with rustls (ring) against Mozilla's roots plus any extra CAs the
//! operator configures, a deadline on the whole exchange, a cap on the
//! response size, and no redirects followed. Plain `http://` only to
//! loopback hosts (for tests and local stand-ins).
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
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::domain::external::{Fetch, FetchError, OutboundRequest, OutboundResponse};

/// Largest provider response read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The real client.
pub struct HttpsClient {
    /// TLS settings with the trusted roots.
    tls: Arc<rustls::ClientConfig>,
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
        Ok(HttpsClient {
            tls: Arc::new(tls),
            timeout,
        })
    }

    async fn exchange(&self, request: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let uri: Uri = request
            .url
            .parse()
            .map_err(|_| FetchError::BadAnswer("bad provider URL".into()))?;
        let target = Target::of(&uri).map_err(FetchError::Unreachable)?;
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut builder = Request::builder()
            .method(Method::from_bytes(request.method.as_bytes()).unwrap_or(Method::GET))
            .uri(path)
            .header(http::header::HOST, target.authority.clone())
            .header(http::header::USER_AGENT, "latchkey")
            .header(http::header::ACCEPT, "application/json");
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        let req = builder
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| FetchError::BadAnswer(format!("request: {e}")))?;
        if target.tls {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| FetchError::Unreachable("bad provider host name".into()))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, stream)
                .await
                .map_err(|e| FetchError::Unreachable(format!("TLS: {e}")))?;
            send(TokioIo::new(tls), req).await
        } else {
            send(TokioIo::new(stream), req).await
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

async fn send<T>(io: TokioIo<T>, req: Request<Full<Bytes>>) -> Result<OutboundResponse, FetchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let response = sender
        .send_request(req)
        .await
        .map_err(|e| FetchError::BadAnswer(e.to_string()));
    let result = match response {
        Ok(response) => {
            let status = response.status();
            if status.is_redirection() {
                Err(FetchError::BadAnswer(format!(
                    "redirect ({status}), which is not followed"
                )))
            } else {
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
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

/// Where a URL points, and whether it may be used.
struct Target {
    host: String,
    port: u16,
    tls: bool,
    /// `host[:port]` for the Host header.
    authority: String,
}

impl Target {
    fn of(uri: &Uri) -> Result<Target, String> {
        let host = uri
            .host()
            .ok_or("provider URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if is_loopback(&host) => false,
            Some("http") => return Err("plain http is allowed only to loopback hosts".into()),
            _ => return Err("provider URLs must be https".into()),
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| host.clone());
        Ok(Target {
            host,
            port,
            tls,
            authority,
        })
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
    Target::of(&uri).map(|_| ())
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
