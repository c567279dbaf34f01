//! The admin API operations the console needs (issue 11): signing keys
//! and their rotation, S2S issuance from the admin API, API keys across
//! accounts, bulk actions, CSV exports, the audit log's time range and the
//! overview. Each is scoped like the rest of the admin API, and scripts can
//! do through it everything the console does.

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::{Value, json};

use crate::admin_helpers::new_api_key;
use crate::harness::{Server, World, rfc3339_utc, unb64};

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
}

const S2S: &str = "/api/v1/admin/s2s-tokens";
const S2S_SCOPES: &str = "/api/v1/admin/s2s-tokens/scopes";

/// Issues through the admin API: (status, body).
async fn issue(srv: &Server, token: &str, body: Value) -> (StatusCode, Value) {
    let r = srv.post(S2S).bearer(token).json(&body).send().await;
    let status = r.status;
    (status, r.json())
}

/// An S2S token issued from the admin API works, is listed with its id,
/// is revocable there, and is audited like one from `/s2s-token`.
#[tokio::test]
async fn the_admin_api_issues_s2s_tokens() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin");
    let (status, body) = issue(
        &srv,
        admin,
        json!({ "name": "billing", "role": "merchant", "reseller_id": "res_1",
                "merchant_id": "mer_1a", "expires_in": 3600 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = body["token"].as_str().expect("token");
    assert!(secret.starts_with("s2s_"), "{secret}");
    let id = body["id"].as_str().expect("id");
    assert_eq!(body["created_by"], world.get("admin").id.as_str());
    assert_eq!(
        rfc3339_utc(&body["expires_at"]) - rfc3339_utc(&body["created_at"]),
        3600
    );
    let me = srv.me(secret).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["merchant_id"], "mer_1a");
    let listed = srv.items(admin, S2S).await;
    assert!(listed.iter().any(|t| t["id"] == id), "{listed:?}");
    let audit = srv
        .items(
            admin,
            &format!("/api/v1/admin/audit?event=s2s_token_created&target={id}"),
        )
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    // Revoked from the admin API, it stops working.
    let r = srv.delete_as(admin, &format!("{S2S}/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(srv.me_status(secret).await, StatusCode::UNAUTHORIZED);
    // A body the admin API does not know is refused, nothing issued.
    let (status, _) = issue(
        &srv,
        admin,
        json!({ "name": "x", "role": "user", "reseller_id": "res_1", "merchant_id": "mer_1a", "scope": "all" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(srv.items(admin, S2S).await.len(), 1);
}

/// The options the console offers are exactly what issuance accepts: for
/// every manager and every role, issuing for the tenant the options name
/// succeeds exactly when the role is offered; outside them it is refused.
#[tokio::test]
async fn the_issuance_options_are_exactly_what_issuance_accepts() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let cases = [
        ("admin", vec!["reseller", "merchant", "user"], None, None),
        (
            "reseller1",
            vec!["reseller", "merchant", "user"],
            Some("res_1"),
            None,
        ),
        (
            "merchant1a",
            vec!["merchant", "user"],
            Some("res_1"),
            Some("mer_1a"),
        ),
    ];
    for (name, roles, reseller, merchant) in cases {
        let token = world.token(name);
        let r = srv.get(S2S_SCOPES).bearer(token).send().await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        let options = r.json();
        assert_eq!(options["roles"], json!(roles), "{name}");
        assert_eq!(options["reseller_id"], json!(reseller), "{name}");
        assert_eq!(options["merchant_id"], json!(merchant), "{name}");
        assert_eq!(options["max_expires_in"], 31_536_000, "{name}");
        // Every role, for the tenant the options name (or one in reach).
        for role in ["reseller", "merchant", "user"] {
            let (status, body) = issue(
                &srv,
                token,
                json!({ "name": format!("{name}-{role}"), "role": role,
                        "reseller_id": reseller.unwrap_or("res_1"),
                        "merchant_id": merchant.unwrap_or("mer_1a") }),
            )
            .await;
            let offered = roles.contains(&role);
            assert_eq!(
                status == StatusCode::CREATED,
                offered,
                "{name} {role}: {body}"
            );
            if !offered {
                assert_eq!(status, StatusCode::FORBIDDEN, "{name} {role}: {body}");
            }
        }
    }
    // A tenant outside the options is refused.
    let (status, body) = issue(
        &srv,
        world.token("reseller1"),
        json!({ "name": "other", "role": "user", "reseller_id": "res_2", "merchant_id": "mer_2a" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = issue(
        &srv,
        world.token("merchant1a"),
        json!({ "name": "sibling", "role": "user", "reseller_id": "res_1", "merchant_id": "mer_1b" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A reseller naming another reseller's merchant under its own: unknown.
    let (status, body) = issue(
        &srv,
        world.token("reseller1"),
        json!({ "name": "stray", "role": "user", "reseller_id": "res_1", "merchant_id": "mer_2a" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // No tenant scope: no options at all. An API key is offered nothing
    // and issues nothing.
    let r = srv
        .get(S2S_SCOPES)
        .bearer(world.token("user1a"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let (_, key) = new_api_key(&srv, world.token("admin")).await;
    let options = srv.read(&key, S2S_SCOPES).await;
    assert_eq!(options["roles"], json!([]), "{options}");
    let (status, body) = issue(
        &srv,
        &key,
        json!({ "name": "bred", "role": "user", "reseller_id": "res_1", "merchant_id": "mer_1a" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // What was issued: the five offered, nothing else.
    let all = srv.items(world.token("admin"), S2S).await;
    assert_eq!(all.len(), 3 + 3 + 2, "{all:?}");
}
