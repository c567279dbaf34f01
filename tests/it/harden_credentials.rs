//! Issue 9, items 6, 8, 9, 12, 21 and 23, as the attacker did them: a
//! login in flight against a disable, a demotion and a revoke-all; every
//! credential kind against the loss of its account's state; API keys that
//! outrank their creator; S2S tokens that breed and never end; the last
//! admin removed; a key expiry that overflows; an S2S token left without
//! its tenant.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

/// What a login that was in flight got: `None` if it was refused, else
/// its access token.
async fn landed(login: tokio::task::JoinHandle<Resp>) -> Option<(Value, String)> {
    let r = login.await.expect("login task");
    if r.status != StatusCode::OK {
        return None;
    }
    let body = r.json();
    let token = body["token"].as_str().expect("token").to_string();
    Some((body, token))
}

#[tokio::test]
async fn a_login_in_flight_does_not_survive_a_disable() {
    let srv = Server::start_slow_hashing().await;
    let admin = srv.admin_token().await;
    let id = srv
        .create_user(&admin, "mallory", PASSWORD, &["user"])
        .await;

    let login = srv.login_in_flight("mallory", PASSWORD).await;
    let r = srv.act_as(&admin, &format!("{USERS}/{id}/disable")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    if let Some((_, token)) = landed(login).await {
        assert_eq!(
            srv.me_status(&token).await,
            StatusCode::UNAUTHORIZED,
            "a login begun before the disable gave a working token"
        );
    }
    // The store and every authentication agree: nothing of mallory works.
    let r = srv.get_as(&admin, &format!("{USERS}/{id}")).await;
    assert_eq!(r.json()["disabled"], true);
}

#[tokio::test]
async fn a_login_in_flight_does_not_survive_a_demotion() {
    let srv = Server::start_slow_hashing().await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "eve", PASSWORD, &["admin"]).await;

    let login = srv.login_in_flight("eve", PASSWORD).await;
    let r = srv.set_roles(&admin, &id, &["user"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    if let Some((body, token)) = landed(login).await {
        assert_ne!(body["user"]["role"], "admin", "{body}");
        let me = srv.me(&token).await;
        if me.status == StatusCode::OK {
            assert_eq!(me.json()["credential"]["roles"], json!(["user"]));
        }
        // It cannot promote itself back.
        let r = srv.set_roles(&token, &id, &["admin"]).await;
        assert!(!r.status.is_success(), "{}", r.text());
    }
    let r = srv.get_as(&admin, &format!("{USERS}/{id}")).await;
    assert_eq!(r.json()["roles"], json!(["user"]));
}

#[tokio::test]
async fn a_login_in_flight_does_not_survive_a_revoke_all() {
    let srv = Server::start_slow_hashing().await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "trent", PASSWORD, &["user"]).await;

    let login = srv.login_in_flight("trent", PASSWORD).await;
    let r = srv
        .delete_as(&admin, &format!("{USERS}/{id}/sessions"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    if let Some((_, token)) = landed(login).await {
        assert_eq!(
            srv.me_status(&token).await,
            StatusCode::UNAUTHORIZED,
            "a login begun before the revoke-all gave a working token"
        );
    }
    // A login begun afterwards works.
    let token = srv.token_of("trent", PASSWORD).await;
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
}

/// Every kind of credential an account can hold: a v1 access token, an
/// opaque token, a role token from `/api/account/token`, an API key.
async fn every_credential(srv: &Server, name: &str, id: &str) -> Vec<(&'static str, String)> {
    let access = srv.token_of(name, PASSWORD).await;
    let opaque = srv
        .opaque_token(&format!("{name}@example.com"), PASSWORD)
        .await;
    let r = srv
        .post_as(
            &access,
            "/api/account/token",
            &json!({ "accountId": id, "role": "Seller" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let role_token = r.json().as_str().expect("a bare token").to_string();
    let r = srv.created(KEYS, &access, &json!({ "name": "k" })).await;
    let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();
    vec![
        ("access token", access),
        ("opaque token", opaque),
        ("role token", role_token),
        ("API key", key),
    ]
}

async fn with_seller_role(srv: &Server, admin: &str) {
    for role in ["Seller", "Buyer"] {
        srv.create_role(admin, role)
            .await
            .assert(StatusCode::CREATED);
    }
}

#[tokio::test]
async fn every_credential_dies_with_the_role_it_acts_with_and_stays_dead() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    with_seller_role(&srv, &admin).await;
    let id = srv
        .create_user(&admin, "sam", PASSWORD, &["Seller", "Buyer"])
        .await;
    let credentials = every_credential(&srv, "sam", &id).await;
    for (kind, c) in &credentials {
        assert_eq!(srv.me_status(c).await, StatusCode::OK, "{kind}");
    }
    // Seller is taken away: every credential acting with it is refused.
    let r = srv.set_roles(&admin, &id, &["Buyer"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (kind, c) in &credentials {
        assert_eq!(
            srv.me_status(c).await,
            StatusCode::UNAUTHORIZED,
            "{kind} after its role was removed"
        );
    }
    // Given back, nothing of before comes back to life, not even after a
    // new sign-in (the key was deleted with the role).
    let r = srv.set_roles(&admin, &id, &["Seller", "Buyer"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let fresh = srv.token_of("sam", PASSWORD).await;
    assert_eq!(srv.me_status(&fresh).await, StatusCode::OK);
    for (kind, c) in &credentials {
        assert_eq!(
            srv.me_status(c).await,
            StatusCode::UNAUTHORIZED,
            "{kind} after its role came back"
        );
    }
    let keys = srv.read(&fresh, KEYS).await;
    assert_eq!(keys, json!([]));
}

#[tokio::test]
async fn re_enabling_an_account_resurrects_none_of_its_credentials() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    with_seller_role(&srv, &admin).await;
    let id = srv
        .create_user(&admin, "dana", PASSWORD, &["Seller", "Buyer"])
        .await;
    let credentials = every_credential(&srv, "dana", &id).await;
    for path in ["disable", "enable"] {
        let r = srv.act_as(&admin, &format!("{USERS}/{id}/{path}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        for (kind, c) in &credentials {
            assert_eq!(
                srv.me_status(c).await,
                StatusCode::UNAUTHORIZED,
                "{kind} after {path}"
            );
        }
    }
    // A new sign-in works.
    let token = srv.token_of("dana", PASSWORD).await;
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    // Deleted: that one too.
    let r = srv.delete_as(&admin, &format!("{USERS}/{id}")).await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_eq!(srv.me_status(&token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_carries_at_most_the_roles_of_the_token_that_made_it() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let id = srv.read(&admin, ME).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    // The admin chooses a token limited to `user`.
    let r = srv.set_roles(&admin, &id, &["admin", "user"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let admin = srv.admin_token().await;
    let r = srv
        .post_as(
            &admin,
            "/api/account/token",
            &json!({ "accountId": id, "role": "user" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let user_token = r.json().as_str().expect("token").to_string();

    // The key it makes acts as `user`, not `admin`.
    let r = srv.post(KEYS).bearer(&user_token).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();
    let me = srv.read(&key, ME).await;
    assert_eq!(me["credential"]["roles"], json!(["user"]), "{me}");
    assert_eq!(
        srv.get(USERS).bearer(&key).send().await.status,
        StatusCode::FORBIDDEN
    );
    // Nor can it ask for more.
    for body in [json!({ "roles": ["admin"] }), json!({ "role": "admin" })] {
        let r = srv.post(KEYS).bearer(&user_token).json(&body).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.json()["error"].is_string());
    }

    // The full token may choose fewer roles, and the key says which.
    let r = srv
        .created(KEYS, &admin, &json!({ "roles": ["user"] }))
        .await;
    assert_eq!(r.json()["roles"], json!(["user"]));
    let narrowed = r.json()["apiKey"].as_str().expect("apiKey").to_string();
    assert_eq!(
        srv.get(USERS).bearer(&narrowed).send().await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_key_cannot_be_made_from_a_url_token_a_key_or_an_s2s_token() {
    let srv = Server::start().await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let opaque = srv.opaque_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // From the query string: refused; the same token in the header works.
    let r = srv.post(&format!("{KEYS}?token={opaque}")).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.json()["error"].is_string());
    let r = srv.post(KEYS).bearer(&opaque).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();

    let s2s = srv
        .s2s_secret(
            &admin,
            &json!({ "name": "n", "role": "reseller", "reseller_id": "res_1" }),
        )
        .await;

    for (what, bearer) in [("API key", &key), ("S2S token", &s2s)] {
        let r = srv.post(KEYS).bearer(bearer).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{what}");
        let r = srv
            .post_as(
                bearer,
                "/s2s-token",
                &json!({ "name": "child", "role": "reseller", "reseller_id": "res_1" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text());
        assert!(r.json()["detail"].is_string(), "{what}");
    }
    // Only the admin's two S2S issuances... one: nothing else was stored.
    let r = srv.get_as(&admin, "/api/v1/admin/s2s-tokens").await;
    assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(1));
    let keys = srv.read(&admin, KEYS).await;
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
}

#[tokio::test]
async fn an_account_holds_at_most_the_configured_number_of_keys() {
    let srv = Server::start_with(Layer {
        max_api_keys_per_account: Some(3),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    for i in 0..3 {
        srv.created(
            KEYS,
            &admin,
            &json!({ "name": format!("k{i}"), "expiresIn": 60 * (i + 1) }),
        )
        .await;
    }
    let r = srv.post(KEYS).bearer(&admin).send().await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.json()["error"].as_str().is_some_and(|e| e.contains('3')),
        "{}",
        r.text()
    );
    let listed = srv.read(&admin, KEYS).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    // An expired key does not count, and is gone from the list.
    srv.advance(61);
    let r = srv.post(KEYS).bearer(&admin).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let listed = srv.read(&admin, KEYS).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
}

#[tokio::test]
async fn a_key_lifetime_beyond_the_maximum_is_refused_not_wrapped() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let max: i64 = 10 * 365 * 24 * 3600;
    for huge in [
        json!(u64::MAX),
        json!(i64::MAX),
        json!(max + 1),
        json!(9_223_372_036_854_775_000_u64),
        // Beyond any integer type, and not whole: still 422, never 1970.
        json!(1e30),
        json!(-5),
        json!(12.5),
    ] {
        let r = srv
            .post_as(&admin, KEYS, &json!({ "expiresIn": huge }))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{huge}: {}",
            r.text()
        );
        assert_eq!(r.json()["field"], "expiresIn", "{}", r.text());
    }
    let r = srv
        .created(KEYS, &admin, &json!({ "expiresIn": max }))
        .await;
    let at = r.json()["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .to_string();
    let parsed = time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp();
    assert_eq!(parsed, srv.clock.now() + max, "{at}");
    // Nothing was stored by the refusals.
    let listed = srv.read(&admin, KEYS).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn an_s2s_token_lives_as_long_as_asked_at_most_the_cap() {
    let srv = Server::start_with(Layer {
        s2s_max_ttl: Some(3600),
        ..Layer::default()
    })
    .await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let issue = |body: Value| srv.post("/s2s-token").bearer(&admin).json(&body).send();
    let base = json!({ "name": "n", "role": "reseller", "reseller_id": "res_1" });
    let with = |secs: Value| {
        let mut b = base.clone();
        b["expires_in"] = secs;
        b
    };
    for bad in [
        json!(0),
        json!(3601),
        json!(u64::MAX),
        json!(1e30),
        json!(-1),
    ] {
        let r = issue(with(bad.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text()
        );
        assert!(r.json()["detail"].is_string());
    }
    let now = srv.clock.now();
    let short = issue(with(json!(60))).await.json();
    let default = issue(base.clone()).await.json();
    let rfc = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().expect("string"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
        .unix_timestamp()
    };
    assert_eq!(rfc(&short["expires_at"]), now + 60, "{short}");
    assert_eq!(rfc(&default["expires_at"]), now + 3600, "{default}");
    let listed = srv.read(&admin, "/api/v1/admin/s2s-tokens").await;
    let mut ends: Vec<i64> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| rfc(&t["expires_at"]))
        .collect();
    ends.sort_unstable();
    assert_eq!(ends, [now + 60, now + 3600]);

    let short = short["token"].as_str().expect("token").to_string();
    let default = default["token"].as_str().expect("token").to_string();
    srv.advance(59);
    assert_eq!(srv.me_status(&short).await, StatusCode::OK);
    srv.advance(1);
    assert_eq!(srv.me_status(&short).await, StatusCode::UNAUTHORIZED);
    assert_eq!(srv.me_status(&default).await, StatusCode::OK);
    srv.advance(3540);
    assert_eq!(srv.me_status(&default).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_s2s_token_outlives_the_account_that_issued_it() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let reseller = w.get("reseller1");
    let r = srv.post_as(&reseller.token, "/s2s-token", &json!({ "name": "feed", "role": "merchant", "reseller_id": "res_1", "merchant_id": "mer_1a" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json()["token"].as_str().expect("token").to_string();
    let issuer_exists = |srv: &Server| {
        let admin = admin.clone();
        let call = srv.get("/api/v1/admin/s2s-tokens").bearer(&admin);
        async move {
            let listed = call.send().await.json();
            let item = listed["items"][0].clone();
            assert_eq!(item["created_by"], reseller.id.as_str(), "{item}");
            item["created_by_exists"].clone()
        }
    };
    assert_eq!(issuer_exists(&srv).await, true);
    let r = srv
        .delete_as(&admin, &format!("{USERS}/{}", reseller.id))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    assert_eq!(issuer_exists(&srv).await, false);
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_removed() {
    let srv = Server::start().await;
    let root = srv.admin_token().await;
    let root_id = srv.read(&root, ME).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let eve_id = srv
        .create_user(&root, "eve", PASSWORD, &["admin", "user"])
        .await;
    let eve = srv.token_of("eve", PASSWORD).await;
    let eve_user = format!("{USERS}/{eve_id}");
    let drop_admin = ["user"];

    // The attack: eve disables the bootstrap admin, then drops her own
    // admin role, which would leave no enabled admin.
    let r = srv
        .act_as(&eve, &format!("{USERS}/{root_id}/disable"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv.set_roles(&eve, &eve_id, &drop_admin).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("admin"))
    );
    let r = srv.get_as(&eve, &eve_user).await;
    assert_eq!(r.json()["roles"], json!(["admin", "user"]));
    assert_eq!(srv.me_status(&eve).await, StatusCode::OK);

    // With another enabled admin, she still may not drop her own role;
    // root may take it from her, and then root is the last.
    let r = srv.act_as(&eve, &format!("{USERS}/{root_id}/enable")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv.set_roles(&eve, &eve_id, &drop_admin).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "own role: {}", r.text());
    let root = srv.admin_token().await;
    let r = srv.set_roles(&root, &eve_id, &drop_admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv.set_roles(&root, &root_id, &drop_admin).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = srv.get_as(&root, &format!("{USERS}/{root_id}")).await;
    assert_eq!(r.json()["roles"], json!(["admin"]));
}

/// Makes admins alice and bob, then has alice disable the first admin, so
/// they are the only enabled admins; returns (alice's token, her id, bob's
/// token, his id).
async fn two_admins_alone(srv: &Server) -> (String, String, String, String) {
    let root = srv.admin_token().await;
    let a_id = srv.create_user(&root, "alice", PASSWORD, &["admin"]).await;
    let b_id = srv.create_user(&root, "bob", PASSWORD, &["admin"]).await;
    let root_id = srv.read(&root, ME).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let alice = srv.token_of("alice", PASSWORD).await;
    let bob = srv.token_of("bob", PASSWORD).await;
    let r = srv
        .act_as(&alice, &format!("{USERS}/{root_id}/disable"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    (alice, a_id, bob, b_id)
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one() {
    for round in 0..5 {
        let srv = Server::start().await;
        let (alice, a_id, bob, b_id) = two_admins_alone(&srv).await;
        let demote = |by: &str, whom: &str| {
            srv.patch(&format!("{USERS}/{whom}"))
                .bearer(by)
                .json(&json!({ "roles": ["user"] }))
                .send()
        };
        let (a, b) = tokio::join!(demote(&alice, &b_id), demote(&bob, &a_id));
        let passed = [&a, &b].iter().filter(|r| r.status.is_success()).count();
        assert_eq!(passed, 1, "round {round}: {} {}", a.text(), b.text());
        // The survivor is still an enabled admin, as the store says.
        let (survivor, id) = if a.status.is_success() {
            (&alice, &a_id)
        } else {
            (&bob, &b_id)
        };
        let r = srv.get_as(survivor, &format!("{USERS}/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.text());
        assert_eq!(r.json()["roles"], json!(["admin"]), "round {round}");
        assert_eq!(r.json()["disabled"], false, "round {round}");
    }
}

/// The same two demotions lined up so that both are authenticated before
/// either is written (which sockets cannot guarantee): both reach the
/// write transaction, and the second sees the first.
#[tokio::test]
async fn two_demotions_both_authenticated_first_leave_one_admin() {
    use latchkey::domain::users::UserPatch;
    let srv = Server::start().await;
    let (alice, a_id, bob, b_id) = two_admins_alone(&srv).await;

    let core = srv.running().core().clone();
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let as_alice = core.authenticate(&alice, ip).expect("alice");
    let as_bob = core.authenticate(&bob, ip).expect("bob");
    let to_user = || UserPatch {
        roles: Some(vec!["user".to_string()]),
        ..UserPatch::default()
    };
    let a = uuid::Uuid::parse_str(&a_id).expect("uuid");
    let b = uuid::Uuid::parse_str(&b_id).expect("uuid");
    let (first, second) = tokio::join!(
        core.admin_update_user(&as_alice, b, to_user()),
        core.admin_update_user(&as_bob, a, to_user()),
    );
    let passed = [first.is_ok(), second.is_ok()];
    assert_eq!(passed.iter().filter(|p| **p).count(), 1, "{passed:?}");
    let refused = if first.is_ok() { second } else { first };
    // The second sees the first: its actor is no longer an admin (401),
    // or, were it still, no admin would be left (409).
    assert!(
        matches!(
            refused,
            Err(latchkey::domain::Error::Conflict(_) | latchkey::domain::Error::Unauthenticated)
        ),
        "{refused:?}"
    );
    // One enabled admin is left, as the store says.
    let survivor = if passed[0] { &alice } else { &bob };
    let listed = srv.read(survivor, &format!("{USERS}?role=admin")).await;
    let enabled: Vec<&Value> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["disabled"] == false)
        .collect();
    assert_eq!(enabled.len(), 1, "{listed}");
}

#[tokio::test]
async fn no_s2s_token_outlives_its_tenant_under_interleaved_issue_and_delete() {
    // Two hundred requests at once from one address: over the default
    // per-address connection cap, which is not what this test is about.
    let srv = Server::start_with(Layer {
        max_connections_per_ip: Some(512),
        ..Default::default()
    })
    .await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_race", "Race").await;
    let rounds = 100;
    for i in 0..rounds {
        let m = format!("mer_race_{i}");
        srv.merchant(&admin, &m, "res_race", "M").await;
    }
    let mut calls = Vec::new();
    for i in 0..rounds {
        let m = format!("mer_race_{i}");
        let issue = srv
            .post("/s2s-token")
            .bearer(&admin)
            .json(&json!({ "name": "n", "role": "merchant", "reseller_id": "res_race", "merchant_id": m }))
            .send();
        let delete = srv
            .delete(&format!("/api/v1/admin/merchants/{m}"))
            .bearer(&admin)
            .send();
        calls.push(tokio::spawn(issue));
        calls.push(tokio::spawn(delete));
    }
    for c in calls {
        let r = c.await.expect("task");
        assert!(
            r.status.is_success()
                || r.status == StatusCode::CONFLICT
                || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            r.text()
        );
    }
    // Every stored token's merchant still exists.
    let listed = srv
        .read(&admin, "/api/v1/admin/s2s-tokens?limit=1000")
        .await;
    for t in listed["items"].as_array().expect("items") {
        let m = t["merchant_id"].as_str().expect("merchant_id");
        let r = srv
            .get_as(&admin, &format!("/api/v1/admin/merchants/{m}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "token {t} has no merchant");
    }
}
