//! The binary itself: first start, settings precedence, refusing unsafe
//! set-ups, signals, and what its logs may not contain.

use http::StatusCode;
use serde_json::json;

use crate::harness::*;

const LIGHT: [(&str, &str); 2] = [
    ("LATCHKEY_ARGON2_MEMORY_KIB", "256"),
    ("LATCHKEY_ARGON2_ITERATIONS", "1"),
];

fn env_with<'a>(dir: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("LATCHKEY_DATA_DIR", dir),
        ("LATCHKEY_LISTEN", "127.0.0.1:0"),
    ];
    env.extend_from_slice(&LIGHT);
    env.extend_from_slice(extra);
    env
}

#[tokio::test]
async fn first_start_prints_a_generated_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let mut p = Proc::spawn(&[], &env_with(data, &[]));
    let err = p.stderr();
    let password = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed: {err}"))
        .to_string();
    assert!(password.len() >= 16);
    let r = p.at().try_login("admin", &password).await;
    assert_eq!(r.status, StatusCode::OK);
    p.signal(libc::SIGTERM);
    assert!(p.wait().success());

    // A later start, even with admin variables set, neither prints nor
    // changes anything.
    let mut p = Proc::spawn(
        &[],
        &env_with(data, &[("LATCHKEY_ADMIN_PASSWORD", "another password")]),
    );
    let r = p.at().try_login("admin", &password).await;
    assert_eq!(r.status, StatusCode::OK);
    p.signal(libc::SIGTERM);
    p.wait();
    assert!(!p.stderr().contains("password:"), "{}", p.stderr());
}

#[tokio::test]
async fn first_admin_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = Proc::spawn(
        &[],
        &env_with(
            data.to_str().unwrap(),
            &[
                ("LATCHKEY_ADMIN_USERNAME", "root"),
                ("LATCHKEY_ADMIN_EMAIL", "root@example.org"),
                ("LATCHKEY_ADMIN_PASSWORD", "a long enough password"),
            ],
        ),
    );
    assert!(!p.stderr().contains("password:"));
    let r = p
        .at()
        .try_login("root@example.org", "a long enough password")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["user"]["username"], "root");
}

#[test]
fn a_short_first_admin_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, err) = run_to_end(
        &["serve"],
        &env_with(
            data.to_str().unwrap(),
            &[("LATCHKEY_ADMIN_PASSWORD", "short")],
        ),
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("LATCHKEY_ADMIN_PASSWORD: password must be at least 8 characters"),
        "{err}"
    );
}

#[test]
fn plain_http_off_loopback_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (code, err) = run_to_end(
        &["serve", "--listen", "0.0.0.0:0"],
        &[("LATCHKEY_DATA_DIR", data)],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("refusing to serve plain HTTP on 0.0.0.0:0"),
        "{err}"
    );
    assert!(err.contains("--insecure-http"), "{err}");
    assert!(!std::path::Path::new(data).exists(), "nothing was created");

    let mut env: Vec<(&str, &str)> = LIGHT.to_vec();
    env.push(("LATCHKEY_DATA_DIR", data));
    let p = Proc::spawn(&["--listen", "0.0.0.0:0", "--insecure-http"], &env);
    assert!(p.addr.ip().is_unspecified());
}

#[test]
fn tls_needs_both_files() {
    let (code, err) = run_to_end(&["serve", "--tls-cert", "/nonexistent.pem"], &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--tls-cert and --tls-key must be given together"),
        "{err}"
    );
}

#[test]
fn help_documents_every_setting() {
    let (code, help) = run_to_end(&["serve", "--help"], &[]);
    assert_eq!(code, Some(0));
    for name in [
        "LATCHKEY_DATA_DIR",
        "LATCHKEY_LISTEN",
        "LATCHKEY_TLS_CERT",
        "LATCHKEY_TLS_KEY",
        "LATCHKEY_ACCESS_TTL",
        "LATCHKEY_REFRESH_TTL",
        "LATCHKEY_SESSION_TTL",
        "LATCHKEY_INSECURE_HTTP",
        "LATCHKEY_CONFIG",
        "LATCHKEY_ADMIN_USERNAME",
        "LATCHKEY_ADMIN_EMAIL",
        "LATCHKEY_ADMIN_PASSWORD",
        "LATCHKEY_MAX_BODY_BYTES",
        "LATCHKEY_HASH_QUEUE",
    ] {
        assert!(help.contains(name), "--help does not mention {name}");
    }
    assert!(help.contains("127.0.0.1:8080"));
    assert!(help.contains("./latchkey-data"));
}

#[tokio::test]
async fn settings_precedence_is_flag_then_env_then_file_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "access_ttl = 100\n").unwrap();
    let file = file.to_str().unwrap().to_string();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap().to_string();

    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i64);
    let cases: Vec<Case> = vec![
        (
            vec!["--config", &file, "--access-ttl", "300"],
            vec![("LATCHKEY_ACCESS_TTL", "200")],
            300,
        ),
        (
            vec!["--config", &file],
            vec![("LATCHKEY_ACCESS_TTL", "200")],
            200,
        ),
        (vec!["--config", &file], vec![], 100),
        (vec![], vec![("LATCHKEY_CONFIG", &file)], 100),
        (vec![], vec![], 900),
    ];
    for (args, extra, expected) in cases {
        let mut env = env_with(&data, &extra);
        env.push(("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD));
        let mut p = Proc::spawn(&args, &env);
        let r = p.at().try_login("admin", ADMIN_PASSWORD).await;
        assert_eq!(r.json()["expires_in"], expected, "{args:?} {extra:?}");
        p.signal(libc::SIGTERM);
        p.wait();
    }
}

#[test]
fn an_unknown_key_in_the_settings_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "acess_ttl = 100\n").unwrap();
    let (code, err) = run_to_end(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown field `acess_ttl`"), "{err}");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Slow hashing makes a login an in-flight request worth waiting for.
    let mut env = vec![
        ("LATCHKEY_DATA_DIR", data.to_str().unwrap()),
        ("LATCHKEY_LISTEN", "127.0.0.1:0"),
        ("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    env.push(("LATCHKEY_ARGON2_ITERATIONS", "40"));
    let mut p = Proc::spawn(&[], &env);
    // The login asks to continue before its body: the server's
    // `100 Continue` is what proves the request is in its hands (accepted,
    // its head read, its handler reading the body). The binary's internals
    // cannot be polled from here, and this needs no waiting at all.
    let body = json!({ "username": "admin", "password": ADMIN_PASSWORD }).to_string();
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    s.write_all(
        format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    p.signal(libc::SIGTERM);
    s.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight login finished: {answer}"
    );
    assert!(answer.contains("\"token\""), "{answer}");
    assert!(p.wait().success());
    assert!(p.stderr().contains("stopped"));
    // New connections are refused once it has stopped.
    assert!(tokio::net::TcpStream::connect(p.addr).await.is_err());
}

#[tokio::test]
async fn a_logout_survives_a_crash_right_after_its_response() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = env_with(
        data.to_str().unwrap(),
        &[("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let p = Proc::spawn(&[], &env);
    let login = p.at().try_login("admin", ADMIN_PASSWORD).await.json();
    let token = login["token"].as_str().unwrap();
    let r = p
        .at()
        .post("/api/v1/auth/logout")
        .bearer(token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    p.signal(libc::SIGKILL);
    drop(p);

    let p = Proc::spawn(&[], &env);
    let r = p.at().get("/api/v1/auth/me").bearer(token).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = p
        .at()
        .post("/api/v1/auth/refresh")
        .json(&json!({ "refreshToken": login["refreshToken"] }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = env_with(
        data.to_str().unwrap(),
        &[
            ("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("LATCHKEY_LOG", "trace"),
        ],
    );
    let mut p = Proc::spawn(&[], &env);
    let at = p.at();
    let wrong = "wrong password that is secret";
    at.try_login("admin", wrong).await;
    let login = at.try_login("admin", ADMIN_PASSWORD).await.json();
    let token = login["token"].as_str().unwrap().to_string();
    let refresh = login["refreshToken"].as_str().unwrap().to_string();
    at.get(&format!("/api/v1/auth/me?token={token}"))
        .bearer(&token)
        .send()
        .await;
    let r = at
        .post("/api/v1/auth/refresh")
        .json(&json!({ "refreshToken": refresh }))
        .send()
        .await
        .json();
    let refresh2 = r["refreshToken"].as_str().unwrap().to_string();
    at.post("/api/v1/auth/logout").bearer(&token).send().await;
    p.signal(libc::SIGTERM);
    p.wait();
    let log = p.stderr();
    assert!(
        log.contains("/api/v1/auth/login"),
        "the log is being written"
    );
    // The signature part of a JWT is the secret-bearing piece; the whole
    // token must not appear, nor any part of it long enough to replay.
    for secret in [
        ADMIN_PASSWORD,
        wrong,
        &token,
        token.rsplit('.').next().unwrap(),
        &refresh,
        &refresh2,
    ] {
        assert!(
            !log.contains(secret),
            "a secret is in the log: {}",
            &secret[..12.min(secret.len())]
        );
    }
}
