//! SIGHUP reloads of the real binary: a renewed certificate reaches new TLS
//! clients while a request in flight on an old connection completes; a bad
//! certificate or settings file changes nothing; reloaded rate limits,
//! lockout and trusted proxies apply to the next request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// The environment every server here gets besides its flags.
fn env(data: &str) -> Vec<(&str, &str)> {
    let mut env = proc_env(data);
    env.push(("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD));
    env
}

/// Sends SIGHUP and waits until the log shows that reload's outcome: the
/// `count`-th line containing `outcome`.
async fn reload(p: &Proc, outcome: &str, count: usize) -> String {
    p.signal(libc::SIGHUP);
    until(&format!("{outcome:?} (#{count}) in the log"), || {
        p.stderr().matches(outcome).count() >= count
    })
    .await;
    p.stderr()
}

/// A TLS connection to `addr` trusting only `pki`'s CA, and the leaf
/// certificate the server showed.
async fn connect(
    addr: std::net::SocketAddr,
    pki: &TestPki,
) -> std::io::Result<(tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>)> {
    let mut config = (*pki.client_config()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1")
        .expect("name")
        .to_owned();
    let tls = connector.connect(name, tcp).await?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    Ok((tls, leaf))
}

/// The DER of the first certificate in a PEM file.
fn leaf_der(pem: &Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(pem)
        .expect("pem")
        .next()
        .expect("a certificate")
        .expect("parse")
        .as_ref()
        .to_vec()
}

/// A server on TLS whose certificate and key sit at `tls/cert.pem` and
/// `tls/key.pem`, named in its settings file, first holding `pki`'s pair.
struct TlsServer {
    proc: Proc,
    cert: PathBuf,
    key: PathBuf,
}

fn start_tls(dir: &Path, pki: &TestPki) -> TlsServer {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let cert = tls.join("cert.pem");
    let key = tls.join("key.pem");
    std::fs::copy(&pki.cert, &cert).unwrap();
    std::fs::copy(&pki.key, &key).unwrap();
    let config = dir.join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "tls_cert = {:?}\ntls_key = {:?}\n",
            cert.to_str().unwrap(),
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let proc = Proc::spawn(
        &["--config", config.to_str().unwrap()],
        &env(data.to_str().unwrap()),
    );
    TlsServer { proc, cert, key }
}

/// A fresh directory with room for an `old` and a `new` pair, and a
/// server on TLS first holding the `old` one.
fn start_tls_fresh() -> (tempfile::TempDir, TestPki, TlsServer) {
    let dir = tempfile::tempdir().unwrap();
    for pair in ["old", "new"] {
        std::fs::create_dir_all(dir.path().join(pair)).unwrap();
    }
    let old = TestPki::new(&dir.path().join("old"));
    let srv = start_tls(dir.path(), &old);
    (dir, old, srv)
}

/// Asserts that a new client trusting `pki` still gets `pki`'s leaf.
async fn still_serves(addr: std::net::SocketAddr, pki: &TestPki) {
    let (_, shown) = connect(addr, pki)
        .await
        .expect("old certificate still served");
    assert_eq!(shown, leaf_der(&pki.cert));
}

/// Reads one HTTP/1.1 response (Connection: close) to its end.
async fn response(stream: &mut tokio_rustls::client::TlsStream<TcpStream>) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_clients_while_a_request_in_flight_completes() {
    let (dir, old, srv) = start_tls_fresh();
    let addr = srv.proc.addr;

    // A login whose body is half sent: in flight across the reload.
    let body = json!({ "username": ADMIN, "password": ADMIN_PASSWORD }).to_string();
    let (mut in_flight, shown) = connect(addr, &old).await.expect("old handshake");
    assert_eq!(shown, leaf_der(&old.cert));
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(first.as_bytes()).await.unwrap();
    in_flight.flush().await.unwrap();

    // The renewal: a certificate from another CA, written over the files.
    let new = TestPki::new(&dir.path().join("new"));
    std::fs::copy(&new.cert, &srv.cert).unwrap();
    std::fs::copy(&new.key, &srv.key).unwrap();
    reload(&srv.proc, "reloaded", 1).await;

    // A new client sees the new certificate, and one that trusts only the
    // old CA is refused.
    let (mut fresh, shown) = connect(addr, &new).await.expect("new handshake");
    assert_eq!(shown, leaf_der(&new.cert));
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(response(&mut fresh).await.starts_with("HTTP/1.1 200"));
    assert!(connect(addr, &old).await.is_err());

    // The request begun before the reload completes on its connection.
    in_flight.write_all(rest.as_bytes()).await.unwrap();
    in_flight.flush().await.unwrap();
    let answer = response(&mut in_flight).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"refreshToken\""), "{answer}");
}

#[tokio::test]
async fn a_bad_certificate_on_reload_keeps_the_one_in_use_and_says_why() {
    let (dir, old, srv) = start_tls_fresh();
    let addr = srv.proc.addr;

    // A certificate whose key is not the one beside it.
    let other = TestPki::new(&dir.path().join("new"));
    std::fs::copy(&other.cert, &srv.cert).unwrap();
    let log = reload(&srv.proc, "reload refused", 1).await;
    assert!(log.contains("do not form a usable pair"), "{log}");
    still_serves(addr, &old).await;

    // An unreadable one: the same.
    std::fs::write(&srv.cert, "not a certificate").unwrap();
    let log = reload(&srv.proc, "reload refused", 2).await;
    assert!(log.contains("no certificate found"), "{log}");
    still_serves(addr, &old).await;
    assert!(connect(addr, &other).await.is_err());
    assert_eq!(srv.proc.stderr().matches("reloaded").count(), 0);
}

/// `count` failed logins for `who`; their statuses.
async fn failures(p: &Proc, who: &str, count: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let r = p.at().try_login(who, "not the password").await;
        statuses.push(r.status);
    }
    statuses
}

const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const LIMITED: StatusCode = StatusCode::TOO_MANY_REQUESTS;

#[tokio::test]
async fn reloaded_limits_lockout_and_proxies_apply_to_the_next_request_and_a_bad_file_changes_nothing()
 {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("latchkey.toml");
    let write = |text: &str| std::fs::write(&config, text).unwrap();
    write("rate_login_per_ip = 1000\nrate_login_per_account = 2\nlockout_threshold = 100\n");
    let data = dir.path().join("data");
    let p = Proc::spawn(
        &["--config", config.to_str().unwrap()],
        &env(data.to_str().unwrap()),
    );
    assert_eq!(
        failures(&p, "ghost1", 3).await,
        [UNAUTHORIZED, UNAUTHORIZED, LIMITED]
    );

    // A file with an unknown key is refused whole: its higher limit does
    // not apply either.
    write(
        "rate_login_per_ip = 1000\nrate_login_per_account = 100\nlockout_threshold = 100\nno_such_setting = 1\n",
    );
    let log = reload(&p, "reload refused", 1).await;
    assert!(log.contains("no_such_setting"), "{log}");
    assert_eq!(
        failures(&p, "ghost2", 3).await,
        [UNAUTHORIZED, UNAUTHORIZED, LIMITED]
    );

    // The same file without it applies.
    write("rate_login_per_ip = 1000\nrate_login_per_account = 100\nlockout_threshold = 100\n");
    reload(&p, "reloaded", 1).await;
    assert_eq!(failures(&p, "ghost3", 3).await, [UNAUTHORIZED; 3]);

    // A lower lockout threshold locks the next account that reaches it.
    write("rate_login_per_ip = 1000\nrate_login_per_account = 100\nlockout_threshold = 2\n");
    reload(&p, "reloaded", 2).await;
    assert_eq!(failures(&p, ADMIN, 2).await, [UNAUTHORIZED; 2]);
    let r = p.at().try_login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("locked"), "{}", r.text());

    // Trusting loopback as a proxy: a request from it that names no client
    // is now refused rather than taken for the proxy's own.
    let healthz = p.at().get("/healthz").send().await;
    assert_eq!(healthz.status, StatusCode::OK);
    write(
        "rate_login_per_ip = 1000\nrate_login_per_account = 100\nlockout_threshold = 2\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    );
    reload(&p, "reloaded", 3).await;
    assert_eq!(
        p.at().get("/healthz").send().await.status,
        StatusCode::BAD_REQUEST
    );
    let forwarded = p
        .at()
        .get("/healthz")
        .header("x-forwarded-for", "192.0.2.7")
        .send()
        .await;
    assert_eq!(forwarded.status, StatusCode::OK);
    assert!(!p.stderr().contains("next restart"), "{}", p.stderr());

    // The log filter: access lines off from the next request on. Each
    // request's access line is written before its answer, and the log is
    // read in order, so once a later reload's line is in, an access line
    // for the probe would be too.
    let base = "rate_login_per_ip = 1000\nrate_login_per_account = 100\nlockout_threshold = 2\n";
    write(base);
    reload(&p, "reloaded", 4).await;
    p.at().get("/probe-before").send().await;
    write(&format!(
        "{base}log_level = \"info,latchkey::access=off\"\n"
    ));
    reload(&p, "reloaded", 5).await;
    assert_eq!(
        p.at().get("/probe-after").send().await.status,
        StatusCode::NOT_FOUND
    );
    let log = reload(&p, "reloaded", 6).await;
    assert!(log.contains("/probe-before"), "{log}");
    assert!(!log.contains("/probe-after"), "{log}");

    // A setting that needs a restart is named as such.
    write(&format!("{base}access_ttl = 60\n"));
    let log = reload(&p, "reloaded", 7).await;
    assert!(log.contains("take effect at the next restart"), "{log}");
}
