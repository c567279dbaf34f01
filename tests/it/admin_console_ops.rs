//! The admin API operations the console needs (issue 11): signing keys
//! and their rotation, S2S issuance from the admin API, API keys across
//! accounts, bulk actions, CSV exports, the audit log's time range and the
//! overview. Each is scoped like the rest of the admin API, and scripts can
//! do through it everything the console does.

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::Value;

use crate::harness::{Server, USERS, World, rfc3339_utc, unb64};

const SIGNING_KEYS: &str = "/api/v1/admin/signing-keys";
const ROTATE: &str = "/api/v1/admin/signing-keys/rotate";
const JWKS: &str = "/.well-known/jwks.json";

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().expect("a JWT");
    let header: Value = serde_json::from_slice(&unb64(header)).expect("JSON header");
    header["kid"].as_str().expect("kid").to_string()
}

/// The key ids the JWKS publishes now.
async fn jwks_kids(srv: &Server) -> BTreeSet<String> {
    let r = srv.get(JWKS).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Rotation: the new key signs from then on, the old one stays in the
/// JWKS and verifies a token it signed until that token's last possible
/// moment, then leaves; the change is durable across a restart and in the
/// audit log; the list shows both keys with their states.
#[tokio::test]
async fn rotating_the_signing_key_keeps_old_tokens_verifying_until_they_expire() {
    let mut srv = Server::start().await;
    let before = srv.admin_token().await;
    let old_kid = kid_of(&before);
    assert_eq!(jwks_kids(&srv).await, strings(&[&old_kid]));

    let r = srv.post(ROTATE).bearer(&before).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let rotated = r.json();
    let new_kid = rotated["kid"].as_str().expect("kid").to_string();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated["state"], "active");
    assert_eq!(rotated["algorithm"], "ES256");

    // Both keys are published; the token signed before still works.
    assert_eq!(jwks_kids(&srv).await, strings(&[&old_kid, &new_kid]));
    assert_eq!(srv.me_status(&before).await, StatusCode::OK);
    // New tokens carry the new kid.
    let after = srv.admin_token().await;
    assert_eq!(kid_of(&after), new_kid);
    assert_eq!(srv.me_status(&after).await, StatusCode::OK);

    // The list: the active key first, the retired one with its end.
    let items = srv.items(&after, SIGNING_KEYS).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["kid"], new_kid.as_str());
    assert_eq!(items[0]["state"], "active");
    assert!(items[0]["verify_until"].is_null());
    assert_eq!(items[1]["kid"], old_kid.as_str());
    assert_eq!(items[1]["state"], "retired");
    let retired_at = rfc3339_utc(&items[1]["retired_at"]);
    let until = rfc3339_utc(&items[1]["verify_until"]);
    assert_eq!(until - retired_at, 900 + 30, "access lifetime plus leeway");
    for item in &items {
        let fields: BTreeSet<String> = item.as_object().expect("object").keys().cloned().collect();
        assert_eq!(
            fields,
            strings(&[
                "kid",
                "algorithm",
                "created_at",
                "state",
                "retired_at",
                "verify_until"
            ]),
            "no private material"
        );
    }

    // The audit log names the new key.
    let audit = srv
        .items(&after, "/api/v1/admin/audit?event=signing_key_rotated")
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["target"], new_kid.as_str());

    // Durable: after a restart the new key still signs and the old one
    // still verifies.
    srv.restart().await;
    assert_eq!(kid_of(&srv.admin_token().await), new_kid);
    assert_eq!(srv.me_status(&before).await, StatusCode::OK);
    assert_eq!(jwks_kids(&srv).await, strings(&[&old_kid, &new_kid]));

    // Once its last token can have expired, the old key leaves the JWKS
    // and the list.
    let now = rfc3339_utc(&srv.read(&after, SIGNING_KEYS).await["items"][0]["created_at"]);
    srv.advance(u64::try_from(until - now).expect("ahead"));
    assert_eq!(jwks_kids(&srv).await, strings(&[&new_kid]));
    let fresh = srv.admin_token().await;
    let items = srv.items(&fresh, SIGNING_KEYS).await;
    assert_eq!(items.len(), 1, "{items:?}");
}

/// Only an admin lists or rotates keys; a refused rotation changes
/// nothing.
#[tokio::test]
async fn only_an_admin_rotates_or_lists_signing_keys() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let kids = jwks_kids(&srv).await;
    for name in ["reseller1", "merchant1a", "user1a"] {
        let token = world.token(name);
        let r = srv.post(ROTATE).bearer(token).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {}", r.text());
        let r = srv.get(SIGNING_KEYS).bearer(token).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {}", r.text());
    }
    assert_eq!(jwks_kids(&srv).await, kids);
    let admin = world.token("admin");
    assert!(
        srv.items(admin, "/api/v1/admin/audit?event=signing_key_rotated")
            .await
            .is_empty()
    );
    let r = srv.post(ROTATE).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(jwks_kids(&srv).await, kids);
    let _ = USERS;
}
