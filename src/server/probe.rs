//! `latchkey healthcheck`'s probe: one `GET` to the configured listener,
//! over TLS when the server speaks it, reading only the status line.
//!
//! The probe sends no credential and reads nothing but a status code, so
//! over TLS it does not check the certificate: it asks whether this
//! machine's server answers, not who it is (a certificate issued for a
//! public name would not match the loopback address anyway).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The whole probe's deadline.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest status line read.
const MAX_STATUS_LINE: u64 = 1024;

/// The status `GET path` gets from the server listening on `listen`.
pub async fn status(listen: SocketAddr, tls: bool, path: &str) -> Result<u16, String> {
    tokio::time::timeout(TIMEOUT, ask(listen, tls, path))
        .await
        .map_err(|_| format!("no answer from {listen} within {} s", TIMEOUT.as_secs()))?
}

async fn ask(listen: SocketAddr, tls: bool, path: &str) -> Result<u16, String> {
    // A wildcard listener is reached on the loopback address of its family.
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    let addr = SocketAddr::new(ip, listen.port());
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    if !tls {
        return exchange(tcp, path).await;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::IpAddress(ip.into());
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr} failed: {e}"))?;
    exchange(stream, path).await
}

async fn exchange(mut io: impl AsyncRead + AsyncWrite + Unpin, path: &str) -> Result<u16, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    io.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut line = Vec::new();
    BufReader::new(&mut io)
        .take(MAX_STATUS_LINE)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let line = String::from_utf8_lossy(&line);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err("the answer is not HTTP".into()),
    }
}

/// Accepts any certificate; see the module comment for why that is enough
/// here. Signatures are still checked, so the handshake is a real one.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
