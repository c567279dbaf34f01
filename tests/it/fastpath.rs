//! Issue 13's fast paths, proved by counting: an access token seen before
//! skips its ECDSA verification, and yet every change that must refuse it
//! (logout, revoke-all, disable, demotion, deletion, a retired signing
//! key) refuses it on the very next request, from the cache.

use http::StatusCode;

use crate::harden_tokens::{forge, steal_signing_key};
use crate::harness::*;

/// A token of a new account `name` (roles `admin` and `user`, so that a
/// demotion can take one away), used twice: the first request verifies its
/// signature, the second finds it in the cache and verifies nothing.
async fn cached_token(srv: &Server, admin: &str, name: &str) -> (String, String) {
    let id = srv
        .create_user(admin, name, PASSWORD, &["admin", "user"])
        .await;
    let token = srv.token_of(name, PASSWORD).await;
    let before = srv.running().token_verifications();
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    assert_eq!(srv.running().token_verifications(), before + 1);
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    assert_eq!(
        srv.running().token_verifications(),
        before + 1,
        "a token seen before was verified again"
    );
    (id, token)
}

/// The next request with a cached `token` is refused, and is refused from
/// the cache (no verification runs), so the refusal comes from the checks
/// every hit still makes.
async fn refused_from_the_cache(srv: &Server, token: &str, after: &str) {
    let before = srv.running().token_verifications();
    assert_eq!(
        srv.me_status(token).await,
        StatusCode::UNAUTHORIZED,
        "a cached token still worked after {after}"
    );
    assert_eq!(srv.running().token_verifications(), before, "{after}");
}

#[tokio::test]
async fn a_cached_access_token_is_refused_on_the_next_request_after_any_revocation() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;

    let (_, token) = cached_token(&srv, &admin, "logs-out").await;
    let r = srv.post("/api/v1/auth/logout").bearer(&token).send().await;
    assert!(r.status.is_success(), "{}", r.text());
    refused_from_the_cache(&srv, &token, "a logout").await;

    let (id, token) = cached_token(&srv, &admin, "revoked-all").await;
    let r = srv
        .delete_as(&admin, &format!("{USERS}/{id}/sessions"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    refused_from_the_cache(&srv, &token, "a revoke-all").await;

    let (id, token) = cached_token(&srv, &admin, "disabled").await;
    let r = srv.act_as(&admin, &format!("{USERS}/{id}/disable")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    refused_from_the_cache(&srv, &token, "a disable").await;

    let (id, token) = cached_token(&srv, &admin, "demoted").await;
    let r = srv.set_roles(&admin, &id, &["user"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    refused_from_the_cache(&srv, &token, "a demotion").await;

    let (id, token) = cached_token(&srv, &admin, "deleted").await;
    let r = srv.delete_as(&admin, &format!("{USERS}/{id}")).await;
    assert!(r.status.is_success(), "{}", r.text());
    refused_from_the_cache(&srv, &token, "a deletion").await;

    // The cache holds what was verified, within its bound.
    let (held, bound) = srv.running().verified_tokens();
    assert!((1..=bound).contains(&held), "{held} of {bound}");
}

#[tokio::test]
async fn a_cached_token_of_a_retired_key_is_refused_once_the_key_stops_verifying() {
    let mut srv = Server::start().await;
    let template = jwt_claims(&srv.admin_token().await);
    srv.stop().await;
    let (old_kid, old_pkcs8) = steal_signing_key(&srv);
    std::fs::write(srv.data_dir().join("master.key"), [5u8; 32]).expect("new master key");
    srv.restart().await;

    // A token of the retired key (forged with its stolen private half, so
    // that it outlives the key), verified once and then served from the
    // cache while the key still verifies.
    srv.advance(900);
    let late = forge(&old_pkcs8, &old_kid, &template, srv.clock.now(), 900);
    let before = srv.running().token_verifications();
    assert_eq!(srv.me_status(&late).await, StatusCode::OK);
    srv.advance(29);
    assert_eq!(srv.me_status(&late).await, StatusCode::OK);
    assert_eq!(srv.running().token_verifications(), before + 1);
    // One second later the old key stops verifying: the cached token,
    // still 870 seconds short of its expiry, is refused with it.
    srv.advance(1);
    assert_eq!(srv.me_status(&late).await, StatusCode::UNAUTHORIZED);
    // A token of the signing key is cached as before.
    let fresh = srv.admin_token().await;
    for _ in 0..2 {
        assert_eq!(srv.me_status(&fresh).await, StatusCode::OK);
    }
    let (held, _) = srv.running().verified_tokens();
    assert!(held >= 1, "{held}");
}

#[tokio::test]
async fn a_cached_token_is_not_used_past_its_expiry() {
    let srv = Server::start().await;
    let token = srv.admin_token().await;
    let exp = jwt_claims(&token)["exp"].as_i64().expect("exp");
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    // Up to its expiry it is served from the cache...
    srv.advance(u64::try_from(exp - srv.clock.now() - 1).expect("in the future"));
    let before = srv.running().token_verifications();
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    assert_eq!(srv.running().token_verifications(), before);
    // ...and from its expiry it is verified again (the verifier's leeway
    // is its own rule), and refused once that leeway is over.
    srv.advance(1);
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    assert_eq!(srv.running().token_verifications(), before + 1);
    srv.advance(30);
    assert_eq!(srv.me_status(&token).await, StatusCode::UNAUTHORIZED);
}

/// A new API key of the account behind `token`, with `body`: its id and
/// the key itself.
async fn new_key(srv: &Server, token: &str, body: &serde_json::Value) -> (String, String) {
    let r = srv.created(KEYS, token, body).await;
    let created = r.json();
    let id = created["keyId"].as_str().expect("keyId").to_string();
    let key = created["apiKey"].as_str().expect("apiKey").to_string();
    (id, key)
}

/// A key of a new account `name` (roles `admin` and `user`), used twice
/// and answered from the index both times: no store lookup.
async fn indexed_key(srv: &Server, admin: &str, name: &str) -> (String, String, String) {
    let account = srv
        .create_user(admin, name, PASSWORD, &["admin", "user"])
        .await;
    let token = srv.token_of(name, PASSWORD).await;
    let (id, key) = new_key(srv, &token, &serde_json::json!({ "name": "k" })).await;
    let (_, lookups) = srv.running().key_index();
    for _ in 0..2 {
        assert_eq!(srv.me_status(&key).await, StatusCode::OK);
    }
    assert_eq!(
        srv.running().key_index().1,
        lookups,
        "a key created by this process was looked up in the store"
    );
    (account, id, key)
}

#[tokio::test]
async fn an_indexed_api_key_is_refused_on_the_next_request_after_any_revocation() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;

    let (_, id, key) = indexed_key(&srv, &admin, "key-deleted").await;
    let owner = srv.token_of("key-deleted", PASSWORD).await;
    let r = srv.delete_as(&owner, &format!("{KEYS}/{id}")).await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_eq!(
        srv.me_status(&key).await,
        StatusCode::UNAUTHORIZED,
        "deleted"
    );

    let (account, _, key) = indexed_key(&srv, &admin, "key-disabled").await;
    for path in ["disable", "enable"] {
        let r = srv
            .act_as(&admin, &format!("{USERS}/{account}/{path}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(
            srv.me_status(&key).await,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    // A new sign-in (which tells the account's state afresh) revives
    // nothing either.
    srv.token_of("key-disabled", PASSWORD).await;
    assert_eq!(srv.me_status(&key).await, StatusCode::UNAUTHORIZED);

    let (account, _, key) = indexed_key(&srv, &admin, "key-demoted").await;
    for roles in [&["user"][..], &["admin", "user"][..]] {
        let r = srv.set_roles(&admin, &account, roles).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        srv.token_of("key-demoted", PASSWORD).await;
        assert_eq!(
            srv.me_status(&key).await,
            StatusCode::UNAUTHORIZED,
            "{roles:?}"
        );
    }

    let (account, _, key) = indexed_key(&srv, &admin, "key-owner-deleted").await;
    let r = srv.delete_as(&admin, &format!("{USERS}/{account}")).await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_eq!(srv.me_status(&key).await, StatusCode::UNAUTHORIZED);

    // Nothing of the four is left in the index.
    assert_eq!(srv.running().key_index().0, 0);
}

#[tokio::test]
async fn an_indexed_api_key_is_refused_from_its_expiry_and_is_indexed_again_on_first_use() {
    let mut srv = Server::start().await;
    let admin = srv.admin_token().await;
    let (_, expiring) = new_key(&srv, &admin, &serde_json::json!({ "expiresIn": 60 })).await;
    let (_, lasting) = new_key(&srv, &admin, &serde_json::json!({ "name": "l" })).await;
    assert_eq!(srv.me_status(&expiring).await, StatusCode::OK);
    srv.advance(59);
    assert_eq!(srv.me_status(&expiring).await, StatusCode::OK);
    srv.advance(1);
    assert_eq!(srv.me_status(&expiring).await, StatusCode::UNAUTHORIZED);

    // After a restart nothing is read at start; each key is looked up in
    // the store on its first use, and a working one is then answered from
    // memory, while an expired one is refused every time.
    srv.restart().await;
    assert_eq!(srv.running().key_index(), (0, 0));
    assert_eq!(srv.me_status(&lasting).await, StatusCode::OK);
    assert_eq!(srv.running().key_index(), (1, 1));
    assert_eq!(srv.me_status(&lasting).await, StatusCode::OK);
    assert_eq!(srv.running().key_index(), (1, 1), "answered from memory");
    assert_eq!(srv.me_status(&expiring).await, StatusCode::UNAUTHORIZED);
    assert_eq!(srv.me_status(&expiring).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        srv.running().key_index().0,
        1,
        "an expired key is not indexed"
    );
}
