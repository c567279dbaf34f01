//! Password rules and the bounded hashing pool, seen from the wire.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::json;

use crate::harness::*;

async fn login_status(srv: &Server, username: &str, password: &str) -> StatusCode {
    srv.try_login(username, password).await.status
}

#[tokio::test]
async fn equivalent_unicode_forms_of_a_password_match() {
    // U+00C5 (Å) when set; U+212B (ANGSTROM SIGN) and the decomposed
    // A + U+030A at login. NFKC makes all three the same password.
    let srv =
        Server::start_with_admin_password(Layer::default(), "\u{00C5}ngstr\u{00F6}m-2024").await;
    for variant in [
        "\u{212B}ngstr\u{00F6}m-2024",
        "A\u{030A}ngstro\u{0308}m-2024",
    ] {
        assert_eq!(
            login_status(&srv, ADMIN, variant).await,
            StatusCode::OK,
            "{variant:?}"
        );
    }
    assert_eq!(
        login_status(&srv, ADMIN, "Angstrom-2024").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn long_passphrases_are_kept_whole() {
    let long: String = "correct horse battery staple ".repeat(20); // 580 characters
    let srv = Server::start_with_admin_password(Layer::default(), &long).await;
    assert_eq!(login_status(&srv, ADMIN, &long).await, StatusCode::OK);
    // Never truncated: a difference in the last character matters.
    let mut almost = long.clone();
    almost.pop();
    almost.push('!');
    assert_eq!(
        login_status(&srv, ADMIN, &almost).await,
        StatusCode::UNAUTHORIZED
    );
    // 128 characters is fine too.
    let srv = Server::start_with_admin_password(Layer::default(), &"p".repeat(128)).await;
    assert_eq!(
        login_status(&srv, ADMIN, &"p".repeat(128)).await,
        StatusCode::OK
    );
}

/// Two slow logins fill a pool of one worker and one queue slot.
async fn saturated() -> (Server, Vec<tokio::task::JoinHandle<StatusCode>>) {
    let srv = Server::start_with(Layer {
        hash_workers: Some(1),
        hash_queue: Some(1),
        argon2_memory_kib: Some(19456),
        argon2_iterations: Some(120),
        ..Default::default()
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let call = srv
            .post("/api/v1/auth/login")
            .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }));
        slow.push(tokio::spawn(async move { call.send().await.status }));
    }
    // Both are in the pool, one hashing and one queued.
    srv.until_hashes_in_flight(2).await;
    (srv, slow)
}

#[tokio::test]
async fn a_full_hashing_pool_answers_503_with_retry_after() {
    let (srv, slow) = saturated().await;
    let r = srv.try_login(ADMIN, "some wrong password").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["error"].is_string());

    // An unknown account goes through the same pool: it costs a hash too.
    assert_eq!(
        login_status(&srv, "nobody-at-all", "some wrong password").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Token-authenticated requests are not held up by the flood.
    assert_eq!(srv.get("/healthz").send().await.status, StatusCode::OK);

    // The admitted logins finish, and the pool takes work again.
    for h in slow {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        login_status(&srv, ADMIN, ADMIN_PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_absurdly_long_password_is_refused_before_any_hash() {
    let (srv, slow) = saturated().await;
    // The pool is full, so anything that reached it would get 503; this
    // answer comes without touching it.
    let r = srv.try_login(ADMIN, &"x".repeat(5000)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    for h in slow {
        h.await.unwrap();
    }
}
