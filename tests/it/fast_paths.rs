//! The request path's caches stay exact (issue 13): `/me` answers from a
//! cache of decoded account records, and every change shows on the very
//! next request, even while other requests keep reading the account.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::StatusCode;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn me_shows_each_change_on_the_next_request_while_it_is_read_concurrently() {
    let srv = Arc::new(Server::start().await);
    let admin = srv.admin_token().await;
    let id = srv
        .create_user(&admin, "cached", "cached password 1", &["user"])
        .await;
    let token = srv.token_of("cached", "cached password 1").await;
    // Readers keep the account's record in use (and in the cache) while
    // it changes, so a read that began before a write could put the old
    // record back after the write emptied the cache.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (srv, token, stop, reads) = (srv.clone(), token.clone(), stop.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(srv.me_status(&token).await, StatusCode::OK);
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for round in 0..30 {
        let email = format!("cached-{round}@example.com");
        let r = srv
            .patch_as(
                &admin,
                &format!("{USERS}/{id}"),
                &json!({ "email": email, "attributes": { "round": round.to_string() } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let me = srv.me(&token).await.json();
        assert_eq!(me["email"], email, "round {round}: {me}");
        assert_eq!(
            me["attributes"]["round"],
            round.to_string(),
            "round {round}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("reader");
    }
    assert!(reads.load(Ordering::Relaxed) > 30, "the readers ran");
    // Disabling shows at once too: the account check refuses the token,
    // and a cached record never stands in for it.
    let r = srv
        .post_as(&admin, &format!("{USERS}/{id}/disable"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(srv.me_status(&token).await, StatusCode::UNAUTHORIZED);
}
