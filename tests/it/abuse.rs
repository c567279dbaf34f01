//! Abuse resistance: login rate limits by address and by identifier,
//! lockout, trusted proxies, bounded limiter state, and floods that hurt no
//! one else.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

async fn attempt(srv: &Server, username: &str, password: &str, forwarded: Option<&str>) -> Resp {
    let mut call = srv.post("/api/v1/auth/login");
    if let Some(xff) = forwarded {
        call = call.header("x-forwarded-for", xff);
    }
    call.json(&json!({ "username": username, "password": password }))
        .send()
        .await
}

/// The admin's token, signed in through the trusted proxy for `client`.
async fn admin_token_via(srv: &Server, client: &str) -> String {
    let r = attempt(srv, ADMIN, ADMIN_PASSWORD, Some(client)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["token"].as_str().expect("token").to_string()
}

fn assert_limited(r: &Resp, retry: &str) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some(retry));
    assert_eq!(r.json(), json!({ "error": "Too many requests" }));
}

#[tokio::test]
async fn the_address_limit_trips_at_its_number_and_recovers() {
    let srv = Server::start_with(limits(5, 1000)).await;
    for i in 0..5 {
        let r = attempt(&srv, &format!("someone{i}"), "wrong password", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Over the limit, even the right password is not checked.
    let r = attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await;
    assert_limited(&r, "12");
    // Refresh exchanges a credential: the same address limit covers it.
    let r = srv
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refreshToken": "lk_rt_x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // One attempt's credit comes back every 12 s.
    srv.advance(12);
    assert_eq!(
        attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A full minute restores the whole allowance.
    srv.advance(60);
    for _ in 0..5 {
        assert_eq!(
            attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn the_identifier_limit_trips_at_its_number_and_spares_others() {
    let srv = Server::start_with(limits(1000, 3)).await;
    for _ in 0..3 {
        let r = attempt(&srv, "Alice@Example.com", "wrong password", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The identifier is normalised: case and spaces do not make a new key.
    let r = attempt(&srv, "  alice@example.COM ", "wrong password", None).await;
    assert_limited(&r, "20");
    // Another identifier from the same address is unaffected.
    assert_eq!(
        attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
        StatusCode::OK
    );
    srv.advance(20);
    assert_eq!(
        attempt(&srv, "alice@example.com", "wrong password", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_rate_limited_attempt_costs_no_hash() {
    // One worker and no queue: the slow login below fills the pool, so any
    // attempt that reached it would get 503. A limited one gets 429.
    let srv = Server::start_with(Layer {
        hash_workers: Some(1),
        hash_queue: Some(0),
        argon2_memory_kib: Some(19456),
        argon2_iterations: Some(100),
        ..limits(2, 1000)
    })
    .await;
    let slow = srv.login_in_flight(ADMIN, ADMIN_PASSWORD).await;
    // A place in the pool is taken before any allowance is charged (issue
    // 9, item 7): while it is full, attempts are busy and cost nothing.
    for _ in 0..2 {
        let r = attempt(&srv, ADMIN, "wrong password", None).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "the pool is full"
        );
    }
    assert_eq!(slow.await.unwrap().status, StatusCode::OK);
    let r = attempt(&srv, ADMIN, "wrong password", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the second of two");
    let hashes = srv.running().hash_verifications();
    let r = attempt(&srv, ADMIN, "wrong password", None).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "limited before the pool"
    );
    assert_eq!(srv.running().hash_verifications(), hashes, "and not hashed");
}

#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let srv = Server::start_with(limits(3, 1000)).await;
    for i in 0..3 {
        let r = attempt(&srv, "x", "wrong password", Some(&format!("203.0.113.{i}"))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = attempt(&srv, "x", "wrong password", Some("203.0.113.99")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // And the audit log records the real peer, not the header.
    let admin = {
        srv.advance(120);
        srv.admin_token().await
    };
    let events = srv
        .read(&admin, "/api/v1/admin/audit?event=login&outcome=failure")
        .await;
    for e in events["items"].as_array().unwrap() {
        assert_eq!(e["client_ip"], "127.0.0.1");
    }
}

#[tokio::test]
async fn a_trusted_proxy_is_believed() {
    let srv = Server::start_with(behind_proxy(limits(3, 1000))).await;
    // Each client behind the proxy has its own allowance...
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        for _ in 0..3 {
            let r = attempt(&srv, "x", "wrong password", Some(client)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{client}");
        }
        let r = attempt(&srv, "x", "wrong password", Some(client)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{client}");
    }
    // ...taken from the right-most untrusted entry: a client cannot prepend
    // an address to escape its own limit.
    let r = attempt(
        &srv,
        "x",
        "wrong password",
        Some("192.0.2.77, 198.51.100.1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    srv.advance(120);
    // Through the proxy too: a trusted proxy must name its client.
    let admin = admin_token_via(&srv, "192.0.2.200").await;
    let events = srv
        .get("/api/v1/admin/audit?event=login&outcome=failure&limit=1")
        .header("x-forwarded-for", "192.0.2.200")
        .bearer(&admin)
        .send()
        .await
        .json();
    assert_eq!(events["items"][0]["client_ip"], "198.51.100.3");
}

fn lockout(threshold: u32) -> Layer {
    Layer {
        lockout_threshold: Some(threshold),
        ..limits(1000, 1000)
    }
}

async fn locked_body(srv: &Server, username: &str, password: &str) -> Resp {
    let r = attempt(srv, username, password, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({ "error": "Account locked due to repeated failed login attempts" })
    );
    r
}

#[tokio::test]
async fn lockout_at_the_threshold_refuses_even_the_right_password_until_it_expires() {
    let srv = Server::start_with(lockout(3)).await;
    World::build(&srv).await;
    for _ in 0..3 {
        assert_eq!(
            attempt(&srv, ADMIN, "wrong password", None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = locked_body(&srv, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.header("retry-after"), Some("1800"));
    // A locked account blocks no one else.
    for other in ["reseller1", "merchant1a", "user1a"] {
        assert_eq!(
            attempt(&srv, other, WORLD_PASSWORD, None).await.status,
            StatusCode::OK
        );
    }
    srv.advance(1000);
    let r = locked_body(&srv, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.header("retry-after"), Some("800"));
    srv.advance(800);
    assert_eq!(
        attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_default_lockout_is_ten_failures_for_thirty_minutes() {
    let srv = Server::start_with(limits(1000, 1000)).await;
    for _ in 0..9 {
        attempt(&srv, ADMIN, "wrong password", None).await;
    }
    assert_eq!(
        attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
        StatusCode::OK
    );
    for _ in 0..10 {
        attempt(&srv, ADMIN, "wrong password", None).await;
    }
    let r = locked_body(&srv, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.header("retry-after"), Some("1800"));
}

#[tokio::test]
async fn a_success_resets_the_count() {
    let srv = Server::start_with(lockout(3)).await;
    for _ in 0..2 {
        attempt(&srv, ADMIN, "wrong password", None).await;
    }
    assert_eq!(
        attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        attempt(&srv, ADMIN, "wrong password", None).await;
    }
    assert_eq!(
        attempt(&srv, ADMIN, ADMIN_PASSWORD, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_identifiers_lock_the_same_way() {
    let srv = Server::start_with(lockout(3)).await;
    // Whether or not the account exists, the answers run the same course.
    for who in ["nobody@example.com", ADMIN_EMAIL] {
        for _ in 0..3 {
            let r = attempt(&srv, who, "wrong password", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{who}");
        }
        locked_body(&srv, who, "wrong password").await;
    }
    // Failures against an existing account count against the account
    // (issue 9, item 4): locked through its email, it is locked by its
    // username too.
    locked_body(&srv, ADMIN, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn an_admin_ends_a_lock_and_both_are_audited() {
    let srv = Server::start_with(lockout(3)).await;
    let w = World::build(&srv).await;
    for _ in 0..3 {
        attempt(&srv, "user1a", "wrong password", None).await;
    }
    locked_body(&srv, "user1a", WORLD_PASSWORD).await;
    let id = &w.get("user1a").id;

    // Only someone whose scope covers the account can unlock it.
    let r = srv
        .post(&format!("/api/v1/admin/users/{id}/unlock"))
        .bearer(w.token("reseller2"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    locked_body(&srv, "user1a", WORLD_PASSWORD).await;

    let r = srv
        .post(&format!("/api/v1/admin/users/{id}/unlock"))
        .bearer(w.token("merchant1a"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "was_locked": true }));
    assert_eq!(
        attempt(&srv, "user1a", WORLD_PASSWORD, None).await.status,
        StatusCode::OK
    );

    let audit = srv.read(w.token("admin"), "/api/v1/admin/audit").await;
    let events: Vec<&Value> = audit["items"].as_array().unwrap().iter().collect();
    let lock = events
        .iter()
        .find(|e| e["event"] == "lockout")
        .expect("lockout audited");
    // The lock is the account's (issue 9, item 4), so the entry names it.
    assert_eq!(lock["target"], id.as_str());
    let unlock = events
        .iter()
        .find(|e| e["event"] == "unlock")
        .expect("unlock audited");
    assert_eq!(unlock["target"], id.as_str());
    assert_eq!(unlock["actor_name"], "merchant1a");
}

#[tokio::test]
async fn locks_and_counts_survive_a_restart() {
    let mut srv = Server::start_with(lockout(3)).await;
    for _ in 0..3 {
        attempt(&srv, ADMIN, "wrong password", None).await;
    }
    for _ in 0..2 {
        attempt(&srv, "other", "wrong password", None).await;
    }
    srv.restart().await;
    locked_body(&srv, ADMIN, ADMIN_PASSWORD).await;
    // The count of two survived too: one more failure locks.
    attempt(&srv, "other", "wrong password", None).await;
    locked_body(&srv, "other", "wrong password").await;
}

#[tokio::test]
async fn every_refusal_costs_one_hash() {
    // With the pool full, every path that hashes gets 503: an unknown
    // account, a wrong password, a disabled account and a locked one all
    // pay for one verification, so none answers faster than the others.
    let srv = Server::start_with(lockout(2)).await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let disable = format!("/api/v1/admin/users/{}/disable", w.get("user2a").id);
    srv.act_as(&admin, &disable).await.assert(StatusCode::OK);
    for _ in 0..2 {
        attempt(&srv, "merchant2a", "wrong password", None).await;
    }
    locked_body(&srv, "merchant2a", WORLD_PASSWORD).await;
    assert_eq!(
        attempt(&srv, "user2a", WORLD_PASSWORD, None).await.json(),
        json!({ "error": "Account disabled" })
    );

    let mut srv = srv;
    srv.layer = Layer {
        hash_workers: Some(1),
        hash_queue: Some(0),
        argon2_memory_kib: Some(19456),
        argon2_iterations: Some(100),
        ..srv.layer.clone()
    };
    srv.restart().await;
    let slow = srv.login_in_flight("reseller1", WORLD_PASSWORD).await;
    for (who, password) in [
        ("nobody", "wrong password"),
        ("reseller2", "wrong password"),
        ("user2a", WORLD_PASSWORD),
        ("merchant2a", WORLD_PASSWORD),
    ] {
        let r = attempt(&srv, who, password, None).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{who} did not reach the pool"
        );
    }
    slow.await.unwrap();
}

#[tokio::test]
async fn a_login_flood_is_held_to_the_pool_and_others_are_served() {
    let srv = Server::start_with(Layer {
        hash_workers: Some(1),
        hash_queue: Some(2),
        argon2_memory_kib: Some(19456),
        argon2_iterations: Some(20),
        trusted_proxies: Some(vec!["127.0.0.1".into()]),
        ..limits(1000, 1000)
    })
    .await;
    let token = admin_token_via(&srv, "192.0.2.200").await;
    let mut flood = Vec::new();
    for i in 0..60 {
        let call = srv
            .post("/api/v1/auth/login")
            .header("x-forwarded-for", &format!("198.51.100.{i}"))
            .json(&json!({ "username": format!("flood{i}"), "password": "wrong password" }));
        flood.push(tokio::spawn(async move { call.send().await }));
    }
    // While the flood is on, hashing stays within its bound and token
    // requests are answered.
    for _ in 0..10 {
        assert!(srv.running().hashes_in_flight() <= 3);
        let r = srv
            .get("/api/v1/auth/me")
            .header("x-forwarded-for", "192.0.2.200")
            .bearer(&token)
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let mut busy = 0;
    for h in flood {
        let r = h.await.unwrap();
        match r.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.header("retry-after"), Some("1"));
                busy += 1;
            }
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy >= 30, "only {busy} of 60 were turned away");
    assert_eq!(srv.running().hashes_in_flight(), 0);
}

#[tokio::test]
async fn ten_thousand_distinct_usernames_leave_bounded_limiter_state() {
    let srv = Server::start_with(behind_proxy(limits(1000, 10))).await;
    // HTTP/2 would multiplex; plain sequential requests over fresh
    // connections are what a flood of scripts looks like.
    let mut handles = Vec::new();
    for batch in 0..100 {
        let calls: Vec<_> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                srv.post("/api/v1/auth/login")
                    .header(
                        "x-forwarded-for",
                        &format!("10.{}.{}.{}", n / 65536, (n / 256) % 256, n % 256),
                    )
                    .json(
                        &json!({ "username": format!("flood-{n}"), "password": "wrong password" }),
                    )
            })
            .collect();
        handles.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for c in calls {
                statuses.push(c.send().await.status);
            }
            statuses
        }));
    }
    let mut answered = 0;
    for h in handles {
        for status in h.await.unwrap() {
            assert!(
                matches!(
                    status,
                    StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
                ),
                "{status}"
            );
            answered += 1;
        }
    }
    assert_eq!(answered, 10_000);
    let (ips, ids) = srv.running().limiter_sizes();
    assert!(ips > 0 && ids > 0, "the flood was seen: {ips} {ids}");
    srv.advance(61);
    srv.running().housekeeping().await;
    assert_eq!(srv.running().limiter_sizes(), (0, 0));
}
