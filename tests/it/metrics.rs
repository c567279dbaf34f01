//! `/metrics` and `/readyz` (issue 12): the counters move with what
//! happens, the scrape is refused to whom it must be, and readiness follows
//! the store.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::json;

use crate::harness::*;

const METRICS_TOKEN: &str = "metrics-secret-0123456789";

/// The value of one series (`name{labels}` exactly as exposed), or 0 when
/// it is not exposed yet.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse::<f64>().expect("a number"))
        .unwrap_or(0.0)
}

async fn scrape(srv: &Server) -> String {
    let r = srv.get("/metrics").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.header("content-type")
    );
    r.text()
}

async fn login_status(srv: &Server, path: &str, body: serde_json::Value) -> StatusCode {
    srv.post(path).json(&body).send().await.status
}

const V1_OK: &str = r#"latchkey_sign_ins_total{document="v1",outcome="success"}"#;
const V1_BAD: &str = r#"latchkey_sign_ins_total{document="v1",outcome="invalid_credentials"}"#;
const TENANT_BAD: &str =
    r#"latchkey_sign_ins_total{document="tenant-login-and-s2s",outcome="invalid_credentials"}"#;
const LOGIN_LATENCY: &str =
    r#"latchkey_http_request_duration_seconds_count{method="POST",route="/api/v1/auth/login"}"#;

#[tokio::test]
async fn sign_ins_move_their_counters_by_document_and_outcome() {
    let srv = Server::start().await;
    let before = scrape(&srv).await;
    let ok = json!({ "username": ADMIN, "password": ADMIN_PASSWORD });
    let bad = json!({ "username": ADMIN, "password": "not the password" });
    assert_eq!(
        login_status(&srv, "/api/v1/auth/login", ok.clone()).await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&srv, "/api/v1/auth/login", ok).await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&srv, "/api/v1/auth/login", bad).await,
        StatusCode::UNAUTHORIZED
    );
    // That document answers a wrong password with 422.
    let tenant_bad = json!({ "email": ADMIN_EMAIL, "password": "not the password" });
    assert_eq!(
        login_status(&srv, "/login", tenant_bad).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let after = scrape(&srv).await;
    assert_eq!(value(&after, V1_OK) - value(&before, V1_OK), 2.0, "{after}");
    assert_eq!(
        value(&after, V1_BAD) - value(&before, V1_BAD),
        1.0,
        "{after}"
    );
    assert_eq!(
        value(&after, TENANT_BAD) - value(&before, TENANT_BAD),
        1.0,
        "{after}"
    );
    // Each login was timed under its route's pattern.
    assert_eq!(
        value(&after, LOGIN_LATENCY) - value(&before, LOGIN_LATENCY),
        3.0,
        "{after}"
    );
}

#[tokio::test]
async fn rate_limits_lockouts_and_authentications_are_counted() {
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(2),
        rate_login_per_account: Some(4),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "carol", PASSWORD, &["user"]).await;
    let before = scrape(&srv).await;
    let bad = json!({ "username": "carol", "password": "not the password" });
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(login_status(&srv, "/api/v1/auth/login", bad.clone()).await);
    }
    // Two failures lock; the next two are refused as locked; the fifth
    // is over the identifier's four a minute.
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // One access token accepted, one bogus token and one API-key-shaped
    // string refused.
    assert_eq!(srv.me_status(&admin).await, StatusCode::OK);
    assert_eq!(
        srv.me_status("eyJ.bogus.token").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        srv.me_status("sk_live_nosuchkey_0000").await,
        StatusCode::UNAUTHORIZED
    );
    let after = scrape(&srv).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved(r#"latchkey_locked_out_total{check="login"}"#),
        2.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"latchkey_rate_limited_total{check="login"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"latchkey_sign_ins_total{document="v1",outcome="locked"}"#),
        2.0
    );
    assert_eq!(
        moved(r#"latchkey_authentications_total{kind="access_token",outcome="success"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"latchkey_authentications_total{kind="access_token",outcome="refused"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"latchkey_authentications_total{kind="api_key",outcome="refused"}"#),
        1.0,
        "{after}"
    );
}

#[tokio::test]
async fn gauges_read_the_domain_and_routes_are_labelled_by_pattern() {
    let srv = Server::start().await;
    let before = scrape(&srv).await;
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let token = login["token"].as_str().expect("token");
    let missing = "/api/v1/admin/users/6f1c1a0e-1b9e-4a57-9d7e-123456789abc";
    let r = srv.get(missing).bearer(token).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = srv.get("/no/such/path/for-anyone").send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let during = scrape(&srv).await;
    assert_eq!(
        value(&during, "latchkey_live_sessions") - value(&before, "latchkey_live_sessions"),
        1.0,
        "{during}"
    );
    assert!(
        value(&during, "latchkey_store_size_bytes") > 0.0,
        "{during}"
    );
    assert_eq!(value(&during, "latchkey_hash_pool_running"), 0.0);
    assert_eq!(value(&during, "latchkey_hash_pool_queued"), 0.0);
    assert!(during.contains("# TYPE latchkey_hash_pool_refused_total counter"));
    assert!(
        during.contains(&format!(
            r#"latchkey_build_info{{version="{}",revision="{}"}} 1"#,
            env!("CARGO_PKG_VERSION"),
            latchkey::ops::GIT_REVISION
        )),
        "{during}"
    );
    // Paths become their route's pattern; no raw path is a label.
    let by_id = r#"latchkey_http_request_duration_seconds_count{method="GET",route="/api/v1/admin/users/{id}"}"#;
    assert_eq!(value(&during, by_id), 1.0, "{during}");
    let unmatched =
        r#"latchkey_http_request_duration_seconds_count{method="GET",route="unmatched"}"#;
    assert_eq!(value(&during, unmatched), 1.0, "{during}");
    assert!(!during.contains("6f1c1a0e"), "{during}");
    assert!(!during.contains("for-anyone"), "{during}");
    // Logging out ends the session.
    let r = srv.post("/api/v1/auth/logout").bearer(token).send().await;
    assert_eq!(r.status, StatusCode::OK);
    let after = scrape(&srv).await;
    assert_eq!(
        value(&after, "latchkey_live_sessions"),
        value(&before, "latchkey_live_sessions")
    );
}

/// A trusted proxy on loopback speaks for a client elsewhere: that client
/// is refused, while a loopback client behind the same proxy is served.
#[tokio::test]
async fn metrics_are_refused_to_a_client_off_loopback() {
    let srv = Server::start_with(Layer {
        trusted_proxies: Some(vec!["127.0.0.1".into()]),
        ..Layer::default()
    })
    .await;
    let r = srv
        .get("/metrics")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.json()["error"].as_str().is_some());
    assert!(!r.text().contains("latchkey_"));
    let r = srv
        .get("/metrics")
        .header("x-forwarded-for", "127.0.0.1")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("latchkey_build_info"));
}

#[tokio::test]
async fn with_a_token_set_metrics_need_it_from_everyone() {
    let srv = Server::start_with(Layer {
        trusted_proxies: Some(vec!["127.0.0.1".into()]),
        metrics_token: Some(METRICS_TOKEN.parse().expect("secret")),
        ..Layer::default()
    })
    .await;
    let loopback = || srv.get("/metrics").header("x-forwarded-for", "127.0.0.1");
    let remote = || srv.get("/metrics").header("x-forwarded-for", "203.0.113.9");
    // Without it, or with another, even from loopback: refused.
    for r in [
        loopback().send().await,
        loopback().bearer("metrics-secret-0123456788").send().await,
        remote().bearer(&METRICS_TOKEN[..20]).send().await,
    ] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert!(r.json()["error"].as_str().is_some());
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="metrics""#)
        );
    }
    // An access token of an admin is not the metrics token.
    let login = srv
        .post("/api/v1/auth/login")
        .header("x-forwarded-for", "127.0.0.1")
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await;
    let admin = login.json()["token"].as_str().expect("token").to_string();
    let r = loopback().bearer(&admin).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // With it, from anywhere.
    for r in [
        loopback().bearer(METRICS_TOKEN).send().await,
        remote().bearer(METRICS_TOKEN).send().await,
    ] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.text().contains("latchkey_sign_ins_total"));
    }
}

#[tokio::test]
async fn a_metrics_listener_serves_metrics_and_nothing_else() {
    let srv = Server::start_with(Layer {
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..Layer::default()
    })
    .await;
    let own = At(srv.running().metrics_addr().expect("a metrics listener"));
    assert_ne!(own.0, srv.addr);
    let r = own.get("/metrics").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("latchkey_build_info"));
    // The API is not on it, and the metrics are not on the API's.
    let r = own.get("/api/v1/auth/me").send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = own
        .post("/api/v1/auth/login")
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = srv.get("/metrics").send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(r.json(), json!({ "error": "Not found" }));
}

#[tokio::test]
async fn readyz_follows_whether_the_store_takes_a_write() {
    let srv = Server::start().await;
    let r = srv.get("/readyz").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({ "status": "ready", "checks": { "store": { "ok": true }, "signing_key": { "ok": true } } })
    );
    // Another writer holds the store (as a stuck disk would hold a
    // commit): no write can begin until it lets go.
    let store = srv.running().core().store().clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        store.write(|_| {
            let _ = held_tx.send(());
            let _ = release_rx.recv();
            Ok::<_, latchkey::store::StoreError>(())
        })
    });
    held_rx.recv().expect("the writer holds the store");
    let r = srv.get("/readyz").send().await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["store"]["ok"], false);
    assert!(body["checks"]["store"]["error"].as_str().is_some());
    assert_eq!(body["checks"]["signing_key"]["ok"], true);
    // The first probe's write still waits: the next is refused at once
    // rather than queueing another.
    let r = srv.get("/readyz").send().await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json()["checks"]["store"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("still waiting")),
        "{}",
        r.text()
    );
    // Liveness is another question: the process still answers.
    assert_eq!(srv.get("/healthz").send().await.status, StatusCode::OK);
    release_tx.send(()).expect("release");
    holder.join().expect("holder").expect("its write");
    // Ready again once the writer let go: the probe that waited for it
    // may still be answering, so ask until one answers 200 (bounded).
    let deadline = tokio::time::Instant::now() + crate::harness::PATIENCE;
    while srv.get("/readyz").send().await.status != StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready again once the writer let go"
        );
    }
}

/// The hashing pool's gauges read the pool itself: one sign-in hashing
/// shows as running, one waiting for the worker as queued, and one refused
/// for want of a place (503) as refused and as a busy sign-in.
#[tokio::test]
async fn the_hashing_pool_is_read_as_it_is() {
    let srv = Server::start_with(Layer {
        argon2_memory_kib: Some(32 * 1024),
        argon2_iterations: Some(4),
        hash_workers: Some(1),
        hash_queue: Some(1),
        ..Layer::default()
    })
    .await;
    let before = scrape(&srv).await;
    assert_eq!(value(&before, "latchkey_hash_pool_running"), 0.0);
    let login = || {
        srv.post("/api/v1/auth/login")
            .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
            .send()
    };
    let first = srv.login_in_flight(ADMIN, ADMIN_PASSWORD).await;
    let second = tokio::spawn(login());
    srv.until_hashes_in_flight(2).await;
    let third = login().await;
    assert_eq!(
        third.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        third.text()
    );
    let during = scrape(&srv).await;
    assert_eq!(
        value(&during, "latchkey_hash_pool_running"),
        1.0,
        "{during}"
    );
    assert_eq!(value(&during, "latchkey_hash_pool_queued"), 1.0, "{during}");
    assert_eq!(first.await.expect("first login").status, StatusCode::OK);
    assert_eq!(second.await.expect("second login").status, StatusCode::OK);
    let after = scrape(&srv).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved("latchkey_hash_pool_refused_total"), 1.0, "{after}");
    assert_eq!(
        moved(r#"latchkey_sign_ins_total{document="v1",outcome="busy"}"#),
        1.0
    );
    assert_eq!(value(&after, "latchkey_hash_pool_running"), 0.0);
    assert_eq!(value(&after, "latchkey_hash_pool_queued"), 0.0);
}

/// `--help` shows each variable's value; never the metrics token's.
#[test]
fn help_does_not_show_the_metrics_token() {
    let (code, out) = run_to_end(
        &["serve", "--help"],
        &[("LATCHKEY_METRICS_TOKEN", METRICS_TOKEN)],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("LATCHKEY_METRICS_TOKEN"), "{out}");
    assert!(!out.contains(METRICS_TOKEN), "{out}");
}
