//! The dedicated hashing threads: a stream of logins runs on the same
//! `hash_workers` threads, each hashing into the one argon2 memory block it
//! allocated, so neither threads nor memory grow with the number of logins.
//! Proved by counting what the pool started and allocated.

use hyper::StatusCode;
use latchkey::config::Layer;
use serde_json::json;

use crate::harness::{PASSWORD, Server};

/// Logins sent, of each kind (right password, wrong one, unknown account).
const ROUNDS: usize = 12;
/// Logins in flight at once, more than the workers so both stay busy.
const AT_ONCE: usize = 6;

#[tokio::test]
async fn many_logins_reuse_the_same_threads_and_memory() {
    let srv = Server::start_with(Layer {
        hash_workers: Some(2),
        hash_queue: Some(16),
        rate_login_per_ip: Some(100_000),
        rate_login_per_account: Some(100_000),
        lockout_threshold: Some(100_000),
        ..Default::default()
    })
    .await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "alice", PASSWORD, &["user"]).await;
    let before = srv.running().hash_verifications();

    let attempts: Vec<(&str, &str, StatusCode)> = (0..ROUNDS)
        .flat_map(|_| {
            [
                ("alice", PASSWORD, StatusCode::OK),
                ("alice", "not the password", StatusCode::UNAUTHORIZED),
                ("nobody", PASSWORD, StatusCode::UNAUTHORIZED),
            ]
        })
        .collect();
    for batch in attempts.chunks(AT_ONCE) {
        let calls: Vec<_> = batch
            .iter()
            .map(|&(username, password, want)| {
                let call = srv
                    .post("/api/v1/auth/login")
                    .json(&json!({ "username": username, "password": password }));
                tokio::spawn(async move { (call.send().await.status, want) })
            })
            .collect();
        for call in calls {
            let (got, want) = call.await.expect("login task");
            assert_eq!(got, want);
        }
    }

    assert_eq!(
        srv.running().hash_verifications() - before,
        attempts.len() as u64,
        "every login ran one verification"
    );
    let stats = srv.running().core().hash_pool_stats();
    assert_eq!(stats.threads_started, 2, "no thread beyond hash_workers");
    assert!(stats.blocks_held <= 2, "{stats:?}");
    // A thread allocates a block on its first job, and again only after it
    // freed it in a quiet period: never once per login.
    assert!(
        stats.blocks_allocated >= 1 && stats.blocks_allocated <= 2 + stats.blocks_released,
        "{stats:?} after {} logins",
        attempts.len()
    );
}
