//! TLS from PEM files, through a certificate resolver that can be swapped
//! while the server runs (certificate reload on SIGHUP builds on this).

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate in use; replaced whole on reload.
#[derive(Debug)]
pub struct ReloadableCert {
    /// Current chain and key.
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ReloadableCert {
    /// Loads the files again and, if they are good, uses them for new
    /// handshakes. A bad pair leaves the old certificate in place.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), String> {
        self.install(Self::prepare(cert, key)?);
        Ok(())
    }

    /// Reads and checks a certificate chain and its key (readable, parsed,
    /// the key matching the leaf) without using them yet, so a reload can
    /// check everything before it changes anything.
    pub fn prepare(cert: &Path, key: &Path) -> Result<PreparedCert, String> {
        Ok(PreparedCert(Arc::new(load(cert, key)?)))
    }

    /// Uses a prepared pair for every handshake from now on. Connections
    /// already established keep the certificate they were shown.
    pub fn install(&self, prepared: PreparedCert) {
        self.current.store(prepared.0);
    }
}

/// A certificate and key that loaded and matched, not yet in use.
#[derive(Debug)]
pub struct PreparedCert(Arc<CertifiedKey>);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot parse certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate found in {}", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, &provider())
        .map_err(|e| format!("certificate and key do not form a usable pair: {e}"))
}

/// Builds the rustls configuration: TLS 1.2 and 1.3 with ring's safe
/// defaults, ALPN for HTTP/2 and HTTP/1.1.
pub fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::ServerConfig>, Arc<ReloadableCert>), String> {
    let resolver = Arc::new(ReloadableCert {
        current: ArcSwap::from_pointee(load(cert, key)?),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), resolver))
}
