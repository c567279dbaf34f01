//! The admin API operations the console needs (issue 11): signing keys
//! and their rotation, S2S issuance from the admin API, API keys across
//! accounts, bulk actions, CSV exports, the audit log's time range and the
//! overview. Each is scoped like the rest of the admin API, and scripts can
//! do through it everything the console does.

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::{Value, json};

use crate::admin_helpers::new_api_key;
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

const ALL_KEYS: &str = "/api/v1/admin/keys";

/// The key ids of a list page's items.
fn key_ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|k| k["keyId"].as_str().expect("keyId").to_string())
        .collect()
}

/// Every account's keys in one list, scoped like the accounts: each
/// manager sees exactly the keys of the accounts it sees, filters narrow
/// it, paging walks it without loss, and last use and expiry are shown.
#[tokio::test]
async fn the_cross_account_key_list_is_scoped_filtered_and_paged() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let mut by_owner = std::collections::BTreeMap::new();
    for name in [
        "admin",
        "reseller1",
        "merchant1a",
        "user1a",
        "merchant2a",
        "user2a",
    ] {
        let (id, secret) = new_api_key(&srv, world.token(name)).await;
        by_owner.insert(name, (id, secret));
    }
    let ids = |names: &[&str]| -> BTreeSet<String> {
        names.iter().map(|n| by_owner[n].0.clone()).collect()
    };
    let cases: [(&str, &[&str]); 3] = [
        (
            "admin",
            &[
                "admin",
                "reseller1",
                "merchant1a",
                "user1a",
                "merchant2a",
                "user2a",
            ],
        ),
        ("reseller1", &["reseller1", "merchant1a", "user1a"]),
        ("merchant1a", &["merchant1a", "user1a"]),
    ];
    for (name, sees) in cases {
        let items = srv
            .all_pages(world.token(name), &format!("{ALL_KEYS}?limit=1"))
            .await;
        assert_eq!(key_ids(&items), ids(sees), "{name}");
        assert_eq!(items.len(), sees.len(), "{name}: no key twice");
        for item in &items {
            assert!(
                item.get("apiKey").is_none() && item.get("digest").is_none(),
                "{item}"
            );
        }
    }
    for name in ["user1a", "user2a"] {
        let r = srv.get(ALL_KEYS).bearer(world.token(name)).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {}", r.text());
    }
    // Filters, within the scope.
    let admin = world.token("admin");
    let user1a = &world.get("user1a").id;
    let items = srv
        .items(admin, &format!("{ALL_KEYS}?owner={user1a}"))
        .await;
    assert_eq!(key_ids(&items), ids(&["user1a"]));
    assert_eq!(items[0]["owner"]["username"], "user1a");
    assert_eq!(items[0]["owner"]["merchant_id"], "mer_1a");
    let items = srv
        .items(admin, &format!("{ALL_KEYS}?reseller_id=res_2"))
        .await;
    assert_eq!(key_ids(&items), ids(&["merchant2a", "user2a"]));
    let items = srv
        .items(admin, &format!("{ALL_KEYS}?merchant_id=mer_1a"))
        .await;
    assert_eq!(key_ids(&items), ids(&["merchant1a", "user1a"]));
    // An owner outside the caller's scope has no keys for it.
    let user2a = &world.get("user2a").id;
    let items = srv
        .items(
            world.token("reseller1"),
            &format!("{ALL_KEYS}?owner={user2a}"),
        )
        .await;
    assert!(items.is_empty(), "{items:?}");

    // Last use and expiry, as the server's clock sees them.
    let (_, secret) = &by_owner["user1a"];
    assert_eq!(srv.me_status(secret).await, StatusCode::OK);
    let r = srv
        .post("/api/v1/auth/keys")
        .bearer(world.token("user1a"))
        .json(&json!({ "name": "short", "expiresIn": 60 }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let short = r.json()["keyId"].as_str().expect("keyId").to_string();
    let listed = |items: &[Value], id: &str| -> Value {
        items
            .iter()
            .find(|k| k["keyId"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed"))
    };
    let items = srv
        .items(admin, &format!("{ALL_KEYS}?owner={user1a}"))
        .await;
    assert!(listed(&items, &by_owner["user1a"].0)["lastUsed"].is_string());
    let s = listed(&items, &short);
    assert!(s["lastUsed"].is_null());
    assert_eq!(s["expired"], false);
    assert!(s["expiresAt"].is_string());
    srv.advance(61);
    let admin = srv.admin_token().await;
    let items = srv
        .items(&admin, &format!("{ALL_KEYS}?owner={user1a}"))
        .await;
    assert_eq!(listed(&items, &short)["expired"], true);
}

/// A manager makes a key for an account in its scope: the secret once,
/// the key acting as that account with at most its roles, audited; out of
/// scope, with an API key, or beyond the account's roles, nothing is made.
#[tokio::test]
async fn a_manager_creates_a_key_for_another_account() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let user1a = world.get("user1a").id.clone();
    let path = |id: &str| format!("{USERS}/{id}/keys");
    let admin = world.token("admin");

    let r = srv
        .post(&path(&user1a))
        .bearer(admin)
        .json(&json!({ "name": "for user1a" }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let made = r.json();
    let secret = made["apiKey"].as_str().expect("apiKey");
    let key_id = made["keyId"].as_str().expect("keyId");
    let me = srv.me(secret).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["id"], user1a.as_str());
    // Listed as the account's, without its secret.
    let listed = srv.items(admin, &path(&user1a)).await;
    assert_eq!(key_ids(&listed), strings(&[key_id]));
    assert!(!listed[0].to_string().contains(secret));
    // Audited as the admin's act, naming the account.
    let audit = srv
        .items(
            admin,
            &format!("/api/v1/admin/audit?event=api_key_created&target={key_id}"),
        )
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["actor"], world.get("admin").id.as_str());
    assert_eq!(audit[0]["detail"], "for user1a");
    assert_eq!(audit[0]["merchant_id"], "mer_1a");

    // A merchant for its own account's user: yes. Outside the scope, or
    // an admin from a reseller: not found.
    let r = srv
        .post(&path(&user1a))
        .bearer(world.token("merchant1a"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for (who, target) in [
        ("reseller1", world.get("user2a").id.clone()),
        ("reseller1", world.get("admin").id.clone()),
        ("merchant1a", world.get("merchant1b").id.clone()),
    ] {
        let r = srv
            .post(&path(&target))
            .bearer(world.token(who))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who}: {}", r.text());
    }
    // A plain user has no admin reach, even over its own account.
    let r = srv
        .post(&path(&user1a))
        .bearer(world.token("user1a"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // Roles beyond the account's: refused, though the admin holds them.
    let r = srv
        .post(&path(&user1a))
        .bearer(admin)
        .json(&json!({ "roles": ["admin"] }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["field"], "roles");
    // An API key does not breed keys, not even for others.
    let (_, admin_key) = new_api_key(&srv, admin).await;
    let r = srv.post(&path(&user1a)).bearer(&admin_key).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // A disabled account gets none.
    let user2a = world.get("user2a").id.clone();
    let r = srv
        .act_as(admin, &format!("{USERS}/{user2a}/disable"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv.post(&path(&user2a)).bearer(admin).send().await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // All that was made: the two keys of user1a.
    assert_eq!(srv.items(admin, &path(&user1a)).await.len(), 2);
    assert!(srv.items(admin, &path(&user2a)).await.is_empty());
}

const BULK: &str = "/api/v1/admin/users/bulk";

async fn bulk(srv: &Server, token: &str, body: Value) -> (StatusCode, Value) {
    let r = srv.post(BULK).bearer(token).json(&body).send().await;
    let status = r.status;
    (status, r.json())
}

/// The `disabled` flag of account `id`, as the admin reads it.
async fn disabled(srv: &Server, admin: &str, id: &str) -> bool {
    srv.read(admin, &format!("{USERS}/{id}")).await["disabled"]
        .as_bool()
        .expect("disabled")
}

/// A bulk action applies each item by its single route's rules, item by
/// item: what the caller may do is done (and audited, and felt by the
/// accounts' credentials), what it may not is refused in the single
/// route's words, and the rest still runs.
#[tokio::test]
async fn bulk_actions_apply_each_item_by_the_single_rules() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let id = |n: &str| world.get(n).id.clone();
    let nobody = "7d0f2a4e-0000-4000-8000-000000000001";

    // A reseller: its own tree only; the rest is "not found".
    let (status, body) = bulk(
        &srv,
        world.token("reseller1"),
        json!({ "action": "disable", "ids": [id("user1a"), id("user2a"), nobody, "not-an-id"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["succeeded"].clone(), body["failed"].clone()),
        (json!(1), json!(3))
    );
    let results = body["results"].as_array().expect("results");
    assert_eq!(results[0]["id"], id("user1a").as_str());
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[0]["account"]["disabled"], true);
    for r in &results[1..] {
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["status"], 404, "{r}");
        assert_eq!(r["error"], "User not found", "{r}");
    }
    assert!(disabled(&srv, &admin, &id("user1a")).await);
    assert!(!disabled(&srv, &admin, &id("user2a")).await);
    assert_eq!(
        srv.me_status(world.token("user1a")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(srv.me_status(world.token("user2a")).await, StatusCode::OK);

    // The admin's own account is refused as the single route refuses it,
    // and the others still go through.
    let (status, body) = bulk(
        &srv,
        &admin,
        json!({ "action": "disable", "ids": [id("admin"), id("user2a")] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let single = srv
        .act_as(&admin, &format!("{USERS}/{}/disable", id("admin")))
        .await;
    assert_eq!(
        body["results"][0]["status"],
        single.status.as_u16(),
        "{body}"
    );
    assert_eq!(
        body["results"][0]["error"],
        single.json()["error"],
        "{body}"
    );
    assert_eq!(body["results"][1]["ok"], true, "{body}");
    let audit = srv
        .items(&admin, "/api/v1/admin/audit?event=account_disabled")
        .await;
    let targets: BTreeSet<String> = audit
        .iter()
        .map(|e| e["target"].as_str().expect("target").to_string())
        .collect();
    assert_eq!(targets, [id("user1a"), id("user2a")].into_iter().collect());

    // Enable, then end sessions: each account's count, and its tokens die.
    let (_, body) = bulk(
        &srv,
        &admin,
        json!({ "action": "enable", "ids": [id("user1a"), id("user2a")] }),
    )
    .await;
    assert_eq!(body["succeeded"], 2, "{body}");
    assert!(!disabled(&srv, &admin, &id("user1a")).await);
    let fresh = srv
        .token_of("merchant1b", crate::harness::WORLD_PASSWORD)
        .await;
    let (_, body) = bulk(
        &srv,
        &admin,
        json!({ "action": "revoke_sessions", "ids": [id("merchant1b"), id("merchant2a")] }),
    )
    .await;
    assert_eq!(body["results"][0]["revoked"], 2, "{body}");
    assert_eq!(body["results"][1]["revoked"], 1, "{body}");
    assert_eq!(srv.me_status(&fresh).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        srv.me_status(world.token("merchant2a")).await,
        StatusCode::UNAUTHORIZED
    );

    // Delete: gone, each with its own audit entry.
    let (_, body) = bulk(
        &srv,
        &admin,
        json!({ "action": "delete", "ids": [id("user1a"), id("user2a")] }),
    )
    .await;
    assert_eq!(body["succeeded"], 2, "{body}");
    for n in ["user1a", "user2a"] {
        let r = srv
            .get(&format!("{USERS}/{}", id(n)))
            .bearer(&admin)
            .send()
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{n}");
    }
    let deleted = srv
        .items(&admin, "/api/v1/admin/audit?event=account_deleted")
        .await;
    assert_eq!(deleted.len(), 2, "{deleted:?}");
}

/// A malformed bulk request, or one from a caller that manages no one, is
/// refused whole: nothing is done.
#[tokio::test]
async fn a_refused_bulk_request_does_nothing() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let user1a = world.get("user1a").id.clone();
    let many: Vec<String> = std::iter::once(user1a.clone())
        .chain((0..500).map(|i| format!("7d0f2a4e-0000-4000-8000-{i:012}")))
        .collect();
    let cases = [
        (
            json!({ "action": "disable", "ids": many }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "action": "disable", "ids": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "action": "disable", "ids": [user1a, user1a] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "action": "explode", "ids": [user1a] }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "ids": [user1a] }), StatusCode::BAD_REQUEST),
    ];
    for (body, want) in cases {
        let (status, answer) = bulk(&srv, &admin, body.clone()).await;
        assert_eq!(status, want, "{answer}");
    }
    let (status, _) = bulk(
        &srv,
        world.token("user2a"),
        json!({ "action": "disable", "ids": [user1a] }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!disabled(&srv, &admin, &user1a).await);
    assert!(
        srv.items(&admin, "/api/v1/admin/audit?event=account_disabled")
            .await
            .is_empty()
    );
    // 500 is allowed.
    let most: Vec<String> = (0..500)
        .map(|i| format!("7d0f2a4e-0000-4000-8000-{i:012}"))
        .collect();
    let (status, body) = bulk(&srv, &admin, json!({ "action": "enable", "ids": most })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["failed"], 500);
}

/// Parses RFC 4180 CSV (CRLF line ends, quoted cells with doubled quotes)
/// into rows of cells; panics on anything else, so the export's form is
/// checked too.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                other => cell.push(other),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(
                    cell.is_empty() && !was_quoted,
                    "a quote inside a cell: {text}"
                );
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                was_quoted = false;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
                was_quoted = false;
            }
            '\n' => panic!("a bare LF ends a line: {text}"),
            other => cell.push(other),
        }
    }
    assert!(!quoted, "an open quote");
    assert!(
        cell.is_empty() && row.is_empty(),
        "no CRLF after the last row"
    );
    rows
}

/// A cell as the export must write a JSON value: text as it is, but a
/// value a spreadsheet would run as a formula behind a `'`.
fn as_cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("string").to_string())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

/// GETs a CSV export; asserts 200 and its media type; returns the rows
/// and `X-Next-Cursor`.
async fn export(srv: &Server, token: &str, path: &str) -> (Vec<Vec<String>>, Option<String>) {
    let r = srv.get(path).bearer(token).send().await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment")),
        "{path}"
    );
    (
        parse_csv(&r.text()),
        r.header("x-next-cursor").map(str::to_string),
    )
}

/// Every row of an export, following `X-Next-Cursor` from export to
/// export; `path` has a query string already.
async fn export_all(srv: &Server, token: &str, path: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let (mut rows, mut next) = export(srv, token, path).await;
    let header = rows.remove(0);
    while let Some(cursor) = next {
        let (mut more, after) = export(srv, token, &format!("{path}&cursor={cursor}")).await;
        assert_eq!(more.remove(0), header);
        rows.extend(more);
        next = after;
    }
    (header, rows)
}

/// The rows a JSON list's items should export as, by the header's names.
fn expected_rows(header: &[String], items: &[Value]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|item| header.iter().map(|h| as_cell(&item[h.as_str()])).collect())
        .collect()
}

/// The account export holds exactly the JSON list's accounts, with its
/// filters and scope, each cell as the list says it (formulas defused,
/// RFC 4180 quoting); the row bound stops an export and its cursor goes
/// on without loss.
#[tokio::test]
async fn the_account_export_is_the_json_list_as_csv() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    // Names a spreadsheet would run.
    for (i, name) in ["+cmd", "-2+3"].into_iter().enumerate() {
        srv.create_user_with(
            &admin,
            name,
            crate::harness::PASSWORD,
            &["user"],
            json!({ "email": format!("x{i}@example.com"), "merchant_id": "mer_1a" }),
        )
        .await;
    }
    let cases = [
        ("admin", ""),
        ("admin", "q=er1"),
        ("admin", "merchant_id=mer_1a"),
        ("admin", "role=merchant"),
        ("reseller1", ""),
        ("merchant1a", ""),
    ];
    for (who, query) in cases {
        let token = world.token(who);
        let json_items = srv
            .all_pages(token, &format!("{USERS}?limit=2&{query}"))
            .await;
        let (header, rows) = export_all(&srv, token, &format!("{USERS}.csv?limit=2&{query}")).await;
        assert_eq!(
            header,
            [
                "id",
                "number",
                "username",
                "email",
                "roles",
                "reseller_id",
                "merchant_id",
                "disabled",
                "created_at",
                "updated_at"
            ]
        );
        assert_eq!(rows, expected_rows(&header, &json_items), "{who} {query}");
        assert!(!rows.is_empty(), "{who} {query}");
    }
    // The defused cells, as a spreadsheet will see them.
    let (rows, _) = export(&srv, &admin, &format!("{USERS}.csv?q=cmd")).await;
    assert_eq!(rows[1][2], "'+cmd");
    // A plain user exports nothing; the bound is explicit.
    let r = srv
        .get(&format!("{USERS}.csv"))
        .bearer(world.token("user1a"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for limit in ["0", "10001", "x"] {
        let r = srv
            .get(&format!("{USERS}.csv?limit={limit}"))
            .bearer(&admin)
            .send()
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{limit}: {}",
            r.text()
        );
    }
    let (rows, next) = export(&srv, &admin, &format!("{USERS}.csv?limit=3")).await;
    assert_eq!(rows.len(), 1 + 3);
    assert!(next.is_some());
}

/// The audit export holds exactly the JSON list's events, with its filters
/// (the time range included) and scope; free text a client chose is
/// quoted and defused.
#[tokio::test]
async fn the_audit_export_is_the_json_list_as_csv() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let start =
        rfc3339_utc(&srv.read(&admin, "/api/v1/admin/audit?limit=1").await["items"][0]["at"]);
    srv.advance(100);
    // A name with a comma, quotes and a line break, in an event's detail;
    // an identifier a spreadsheet would run, in a failed login's.
    let (status, body) = issue(
        &srv,
        &admin,
        json!({ "name": "a, \"quoted\"\nname", "role": "user", "reseller_id": "res_1", "merchant_id": "mer_1a" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let r = srv.try_login("=HYPERLINK(1)", "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    srv.advance(100);
    let _ = srv.token_of("user1a", crate::harness::WORLD_PASSWORD).await;

    let at = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let since = at(start + 100);
    let until = at(start + 200);
    let cases = [
        ("admin", String::new()),
        ("admin", "event=login".to_string()),
        ("admin", format!("since={since}")),
        ("admin", format!("since={since}&until={until}")),
        ("admin", format!("until={since}")),
        ("reseller1", String::new()),
        ("merchant1a", "outcome=success".to_string()),
    ];
    for (who, query) in cases {
        let token = world.token(who);
        let json_items = srv
            .all_pages(token, &format!("/api/v1/admin/audit?limit=3&{query}"))
            .await;
        let (header, rows) = export_all(
            &srv,
            token,
            &format!("/api/v1/admin/audit.csv?limit=3&{query}"),
        )
        .await;
        assert_eq!(
            header,
            [
                "seq",
                "at",
                "event",
                "outcome",
                "actor",
                "actor_name",
                "target",
                "reseller_id",
                "merchant_id",
                "client_ip",
                "detail"
            ]
        );
        assert_eq!(rows, expected_rows(&header, &json_items), "{who} {query}");
        assert!(!rows.is_empty(), "{who} {query}");
    }
    // The time range, checked against each event's own time.
    let inside = srv
        .all_pages(
            &admin,
            &format!("/api/v1/admin/audit?since={since}&until={until}"),
        )
        .await;
    let times: Vec<i64> = inside.iter().map(|e| rfc3339_utc(&e["at"])).collect();
    assert_eq!(times, vec![start + 100; times.len()], "{inside:?}");
    let events: BTreeSet<&str> = inside.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(events, ["login", "s2s_token_created"].into_iter().collect());
    let before = srv
        .all_pages(&admin, &format!("/api/v1/admin/audit?until={since}"))
        .await;
    assert!(before.iter().all(|e| rfc3339_utc(&e["at"]) < start + 100));
    assert!(!before.is_empty());
    let r = srv
        .get("/api/v1/admin/audit?since=yesterday")
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // The hostile text, as it is written.
    let r = srv
        .get("/api/v1/admin/audit.csv?event=s2s_token_created")
        .bearer(&admin)
        .send()
        .await;
    assert!(
        r.text().contains("\"name: a, \"\"quoted\"\"\nname\""),
        "{}",
        r.text()
    );
    let (rows, _) = export(&srv, &admin, "/api/v1/admin/audit.csv?outcome=failure").await;
    assert!(
        rows.iter().any(|row| row[5] == "'=HYPERLINK(1)"),
        "{rows:?}"
    );
}

const OVERVIEW: &str = "/api/v1/admin/overview";

/// The overview's counts are what the scoped lists hold, for each kind of
/// manager: accounts by state (a lock included), tenants, keys, S2S tokens
/// live and ended; its events are the audit list's first; the server is
/// said to be ready.
#[tokio::test]
async fn the_overview_counts_what_the_scoped_lists_hold() {
    let srv = Server::start_with(latchkey::config::Layer {
        lockout_threshold: Some(2),
        ..latchkey::config::Layer::default()
    })
    .await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let r = srv
        .act_as(
            &admin,
            &format!("{USERS}/{}/disable", world.get("user2a").id),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for _ in 0..2 {
        let r = srv.try_login("merchant1b", "wrong password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
    for name in ["user1a", "merchant2a", "admin"] {
        new_api_key(&srv, world.token(name)).await;
    }
    for (name, merchant) in [("one", "mer_1a"), ("two", "mer_1b"), ("three", "mer_2a")] {
        let (status, body) = issue(
            &srv,
            &admin,
            json!({ "name": name, "role": "user", "reseller_id": if merchant == "mer_2a" { "res_2" } else { "res_1" }, "merchant_id": merchant }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if name == "two" {
            let id = body["id"].as_str().expect("id");
            let r = srv.delete_as(&admin, &format!("{S2S}/{id}")).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
    }

    for (who, kind) in [
        ("admin", "all"),
        ("reseller1", "reseller"),
        ("merchant1a", "merchant"),
    ] {
        let token = world.token(who);
        let r = srv.get(OVERVIEW).bearer(token).send().await;
        assert_eq!(r.status, StatusCode::OK, "{who}: {}", r.text());
        let o = r.json();
        assert_eq!(o["scope"]["kind"], kind, "{who}");
        let accounts = srv.all_pages(token, &format!("{USERS}?limit=1000")).await;
        let disabled = accounts.iter().filter(|a| a["disabled"] == true).count();
        assert_eq!(o["accounts"]["total"], accounts.len(), "{who}");
        assert_eq!(o["accounts"]["disabled"], disabled, "{who}");
        assert_eq!(o["accounts"]["enabled"], accounts.len() - disabled, "{who}");
        let locked = usize::from(accounts.iter().any(|a| a["username"] == "merchant1b"));
        assert_eq!(o["accounts"]["locked"], locked, "{who}");
        let keys = srv
            .all_pages(token, &format!("{ALL_KEYS}?limit=1000"))
            .await;
        assert_eq!(o["api_keys"], keys.len(), "{who}");
        let tokens = srv.all_pages(token, &format!("{S2S}?limit=1000")).await;
        let ended = tokens.iter().filter(|t| !t["revoked_at"].is_null()).count();
        assert_eq!(o["s2s_tokens"]["live"], tokens.len() - ended, "{who}");
        assert_eq!(o["s2s_tokens"]["ended"], ended, "{who}");
        if kind == "merchant" {
            assert_eq!(
                (o["resellers"].clone(), o["merchants"].clone()),
                (json!(0), json!(1))
            );
        } else {
            let resellers = srv
                .all_pages(token, "/api/v1/admin/resellers?limit=1000")
                .await;
            let merchants = srv
                .all_pages(token, "/api/v1/admin/merchants?limit=1000")
                .await;
            assert_eq!(o["resellers"], resellers.len(), "{who}");
            assert_eq!(o["merchants"], merchants.len(), "{who}");
        }
        let events = srv.items(token, "/api/v1/admin/audit?limit=10").await;
        assert_eq!(o["recent_events"], json!(events), "{who}");
        assert_eq!(o["complete"], true);
        assert_eq!(o["health"]["status"], "ready");
        assert_eq!(o["health"]["checks"]["store"]["ok"], true);
    }
    // The counts differ by scope: the admin sees the whole world.
    let all = srv.read(&admin, OVERVIEW).await;
    assert_eq!(all["accounts"]["total"], 8);
    assert_eq!(all["accounts"]["locked"], 1);
    assert_eq!(all["api_keys"], 3);
    assert_eq!(all["s2s_tokens"], json!({ "live": 2, "ended": 1 }));
    let r = srv.get(OVERVIEW).bearer(world.token("user1a")).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
