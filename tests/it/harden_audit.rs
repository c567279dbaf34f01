//! Issue 9, items 10, 11, 18, 20 and 22: audit scoping by tenant and by
//! manageable account, retired tenant ids, the role-name form, body errors
//! in each document's words, and role choice with someone else's token.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::json;

use crate::harness::*;

// ---- item 20: body errors in each document's words ----

/// Fragments of a parser's message or of a Rust type name: none may reach
/// a client.
const PARSER_WORDS: [&str; 10] = [
    "expected one of",
    "invalid type",
    "at line",
    "column",
    "expected",
    "String",
    "Vec<",
    "Option<",
    "u64",
    "serde",
];

fn assert_no_parser_words(what: &str, text: &str) {
    for w in PARSER_WORDS {
        assert!(!text.contains(w), "{what}: {w:?} in {text}");
    }
}

#[tokio::test]
async fn body_errors_name_the_field_in_each_documents_words_and_never_the_parsers() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res-x", "X").await;
    // (what, path, bearer, body, status, field named, document's shape key)
    let cases: Vec<(&str, &str, bool, serde_json::Value, u16, &str, &str)> = vec![
        (
            "admin: unknown field",
            "/api/v1/admin/users",
            true,
            json!({ "username": "u1", "email": "u1@example.com", "password": "password 1234",
                    "roles": ["user"], "is_admin": true }),
            400,
            "is_admin",
            "error",
        ),
        (
            "admin: missing field",
            "/api/v1/admin/users",
            true,
            json!({ "username": "u1", "email": "u1@example.com", "roles": ["user"] }),
            400,
            "password",
            "error",
        ),
        (
            "admin: wrong type",
            "/api/v1/admin/users",
            true,
            json!({ "username": "u1", "email": "u1@example.com", "password": "password 1234",
                    "roles": "user" }),
            400,
            "roles",
            "error",
        ),
        (
            "admin tenant: unknown field",
            "/api/v1/admin/merchants",
            true,
            json!({ "id": "m1", "reseller_id": "res-x", "name": "M", "owner": "me" }),
            400,
            "owner",
            "error",
        ),
        (
            "admin tenant: missing field",
            "/api/v1/admin/merchants",
            true,
            json!({ "id": "m1", "reseller_id": "res-x" }),
            400,
            "name",
            "error",
        ),
        (
            "v1 login: wrong type",
            "/api/v1/auth/login",
            false,
            json!({ "username": 5, "password": "x" }),
            400,
            "username",
            "error",
        ),
        (
            "v1 keys: wrong type",
            "/api/v1/auth/keys",
            true,
            json!({ "name": "k", "expiresIn": "soon" }),
            400,
            "expiresIn",
            "error",
        ),
        (
            "tenant s2s: wrong type",
            "/s2s-token",
            true,
            json!({ "name": ["a"], "role": "user", "reseller_id": "res-x" }),
            422,
            "name",
            "detail",
        ),
        (
            "account roles: missing field",
            "/api/account/roles",
            false,
            json!({ "email": "a@example.com" }),
            400,
            "password",
            "",
        ),
        (
            "account roles: wrong type",
            "/api/account/roles",
            false,
            json!({ "email": 7, "password": "x" }),
            400,
            "email",
            "",
        ),
        (
            "account token: missing field",
            "/api/account/token",
            false,
            json!({ "accountId": "3fa85f64-5717-4562-b3fc-2c963f66afa6" }),
            400,
            "role",
            "",
        ),
        (
            "account token: wrong type",
            "/api/account/token",
            false,
            json!({ "accountId": 12, "role": "user" }),
            400,
            "accountId",
            "",
        ),
    ];
    for (what, path, auth, body, status, field, key) in cases {
        let mut call = srv.post(path).json(&body);
        if auth {
            call = call.bearer(&admin);
        }
        let r = call.send().await;
        let text = r.text();
        assert_eq!(r.status.as_u16(), status, "{what}: {text}");
        assert_no_parser_words(what, &text);
        let words = if key.is_empty() {
            r.json().as_str().expect("a bare string").to_string()
        } else {
            r.json()[key]
                .as_str()
                .expect("the document's key")
                .to_string()
        };
        assert!(words.contains(field), "{what}: {field} not named in {text}");
    }

    // Not JSON at all, on every document: the document's words, no
    // parser position.
    for (path, status) in [
        ("/api/v1/auth/login", 400),
        ("/api/v1/admin/users", 400),
        ("/login", 422),
        ("/auth/login", 400),
        ("/api/account/roles", 400),
        ("/api/account/token", 400),
        ("/api/auth/token", 400),
    ] {
        let r = srv
            .post(path)
            .bearer(&admin)
            .body("application/json", "{\"username\": tru")
            .send()
            .await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.text());
        assert_no_parser_words(path, &r.text());
    }
}

// ---- item 22: role choice with someone else's token ----

#[tokio::test]
async fn choosing_a_role_with_another_accounts_token_is_refused_even_beside_a_fresh_proof() {
    // Every call comes from 127.0.0.1: the victim and Mallory share an
    // address, as on a kiosk or behind one NAT.
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let victim = srv
        .create_account(
            &admin,
            &json!({ "username": "victim", "email": "victim@example.com",
                "password": "victim password 1", "roles": ["user"] }),
        )
        .await;
    srv.create_account(
        &admin,
        &json!({ "username": "mallory", "email": "mallory@example.com",
                "password": "mallory password 1", "roles": ["user"] }),
    )
    .await;
    let mallory = srv.login("mallory", "mallory password 1").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let shared = |call: Call| call.header("user-agent", "kiosk/1.0");
    // The victim proves its login from a shared address and User-Agent.
    let r = shared(srv.post("/api/account/roles"))
        .json(&json!({ "email": "victim@example.com", "password": "victim password 1" }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Mallory, from the same place, with its own token: refused, and no
    // session is opened for the victim.
    let sessions = |srv: &Server| {
        let call = srv
            .get(&format!("/api/v1/admin/users/{victim}/sessions"))
            .bearer(&admin);
        async move {
            let r = call.send().await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            r.json()["items"].as_array().expect("items").len()
        }
    };
    let before = sessions(&srv).await;
    let r = shared(srv.post("/api/account/token"))
        .bearer(&mallory)
        .json(&json!({ "accountId": victim, "role": "user" }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.json().is_string(), "{}", r.text());
    assert_eq!(sessions(&srv).await, before);

    // The victim itself, same place, no token: still served.
    let r = shared(srv.post("/api/account/token"))
        .json(&json!({ "accountId": victim, "role": "user" }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(sessions(&srv).await, before + 1);

    // An accountId that names no account: the document's 404, with or
    // without a proof.
    for bearer in [None, Some(mallory.as_str())] {
        let mut call = srv.post("/api/account/token").json(&json!({
            "accountId": uuid::Uuid::new_v4().to_string(), "role": "user" }));
        if let Some(b) = bearer {
            call = call.bearer(b);
        }
        let r = call.send().await;
        let expected = if bearer.is_some() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(r.status, expected, "{}", r.text());
        if bearer.is_none() {
            assert_eq!(r.json(), json!("Account not found"));
        }
    }
}

// ---- items 10 and 11: audit scoping ----

/// How many of `events` name `id` as actor or target.
fn naming(events: &[serde_json::Value], id: &str) -> usize {
    events
        .iter()
        .filter(|e| e["actor"] == id || e["target"] == id)
        .count()
}

fn with_field(events: &[serde_json::Value], key: &str, value: &str) -> usize {
    events.iter().filter(|e| e[key] == value).count()
}

#[tokio::test]
async fn a_deleted_tenants_id_is_never_taken_again_and_its_trail_stays_with_it() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let (admin, reseller1, reseller2) = (
        world.token("admin"),
        world.token("reseller1"),
        world.token("reseller2"),
    );
    let call = |token: &str, method: http::Method, path: &str, body: Option<serde_json::Value>| {
        let mut c = srv.call(method, path).bearer(token);
        if let Some(b) = body {
            c = c.json(&b);
        }
        c.send()
    };
    // Reseller A runs shop-42 for a while, then deletes it.
    let r = call(
        reseller1,
        http::Method::POST,
        "/api/v1/admin/merchants",
        Some(json!({ "id": "shop-42", "name": "Shop 42" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let owner = srv
        .create_account(
            reseller1,
            &json!({ "username": "owner42", "email": "owner@shop42.example",
                "password": "owner42 password", "roles": ["merchant"], "merchant_id": "shop-42" }),
        )
        .await;
    srv.login("owner42", "owner42 password").await;
    let old_events = with_field(&srv.audit(admin).await, "merchant_id", "shop-42");
    assert!(old_events >= 3, "{old_events}");
    let r = call(
        reseller1,
        http::Method::DELETE,
        &format!("/api/v1/admin/users/{owner}"),
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = call(
        reseller1,
        http::Method::DELETE,
        "/api/v1/admin/merchants/shop-42",
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text());

    // Reseller B, and even the admin, cannot take the id again.
    for (who, token, body) in [
        (
            "reseller2",
            reseller2,
            json!({ "id": "shop-42", "name": "New 42" }),
        ),
        (
            "admin",
            admin,
            json!({ "id": "shop-42", "reseller_id": "res_2", "name": "New 42" }),
        ),
    ] {
        let r = call(
            token,
            http::Method::POST,
            "/api/v1/admin/merchants",
            Some(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{who}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("used before"));
    }
    // Nor a deleted reseller's.
    let r = call(
        admin,
        http::Method::POST,
        "/api/v1/admin/resellers",
        Some(json!({ "id": "res-gone", "name": "Gone" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = call(
        admin,
        http::Method::DELETE,
        "/api/v1/admin/resellers/res-gone",
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = call(
        admin,
        http::Method::POST,
        "/api/v1/admin/resellers",
        Some(json!({ "id": "res-gone", "name": "Again" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());

    // B's own new merchant works, and its account sees none of shop-42's
    // events, while they are all still in the log.
    let r = call(
        reseller2,
        http::Method::POST,
        "/api/v1/admin/merchants",
        Some(json!({ "id": "shop-43", "name": "Shop 43" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    srv.create_account(
        reseller2,
        &json!({ "username": "owner43", "email": "owner@shop43.example",
                "password": "owner43 password", "roles": ["merchant"], "merchant_id": "shop-43" }),
    )
    .await;
    let owner43 = srv.login("owner43", "owner43 password").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = srv.audit(&owner43).await;
    assert!(with_field(&seen, "merchant_id", "shop-43") >= 1);
    assert_eq!(with_field(&seen, "merchant_id", "shop-42"), 0);
    assert_eq!(with_field(&seen, "reseller_id", "res_1"), 0);
    assert!(with_field(&srv.audit(admin).await, "merchant_id", "shop-42") > old_events);
}

#[tokio::test]
async fn a_merchant_sees_only_events_whose_reseller_and_merchant_are_both_its_own() {
    let mut srv = Server::start().await;
    let world = World::build(&srv).await;
    let before = srv.audit(world.token("merchant2a")).await.len();
    assert!(before > 0);
    // An event stamped with the same merchant id under another reseller, as
    // a store from before ids were retired could hold.
    srv.stop().await;
    {
        let store = latchkey::store::Store::open(&srv.data_dir()).unwrap();
        store
            .write(|tx| {
                tx.append_audit(latchkey::store::AuditEvent {
                    seq: 0,
                    at: now(),
                    event: "login".into(),
                    outcome: "success".into(),
                    actor: Some("anonymous".into()),
                    actor_name: Some("old-owner@example.com".into()),
                    target: None,
                    reseller_id: Some("res_1".into()),
                    merchant_id: Some("mer_2a".into()),
                    client_ip: Some("198.51.100.77".into()),
                    detail: None,
                })
                .map(|_| ())
            })
            .unwrap();
    }
    srv.restart().await;
    let merchant = srv.login("merchant2a", WORLD_PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = srv.audit(&merchant).await;
    assert_eq!(with_field(&seen, "client_ip", "198.51.100.77"), 0);
    assert_eq!(with_field(&seen, "reseller_id", "res_1"), 0);
    // Its own events are still there (one more: the login just made).
    assert_eq!(seen.len(), before + 1);
    let admin = srv.admin_token().await;
    assert_eq!(
        with_field(&srv.audit(&admin).await, "client_ip", "198.51.100.77"),
        1
    );
}

#[tokio::test]
async fn a_reseller_sees_no_event_of_an_admin_placed_in_its_tenant() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin");
    let placed = srv
        .create_account(
            admin,
            &json!({ "username": "ops-admin", "email": "ops@example.com",
                "password": "ops admin password", "roles": ["admin"], "reseller_id": "res_1" }),
        )
        .await;
    // The placed admin signs in and fails once.
    let r = srv.try_login("ops-admin", "ops admin password").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = srv.try_login("ops-admin", "wrong password!").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let everything = srv.audit(admin).await;
    let about_admin = naming(&everything, &placed);
    assert!(about_admin >= 2, "{about_admin}");
    // The admin's events carry the reseller's tenant, so only the account
    // rule keeps them from the reseller.
    let in_tenant = |e: &&serde_json::Value| {
        e["reseller_id"] == "res_1"
            && (e["actor"] == placed.as_str() || e["target"] == placed.as_str())
    };
    assert!(everything.iter().filter(in_tenant).count() >= 2);
    let sessions_of_admin: Vec<&serde_json::Value> = everything
        .iter()
        .filter(|e| e["actor"] == placed.as_str() && e["event"] == "login")
        .collect();
    assert!(!sessions_of_admin.is_empty());
    let reseller = srv.audit(world.token("reseller1")).await;
    assert_eq!(naming(&reseller, &placed), 0);
    assert_eq!(reseller.iter().filter(in_tenant).count(), 0);
    // What it manages it still sees, as the admin does, but for what the
    // (first) admin did to it.
    let user = &world.get("user1a").id;
    let first_admin = &world.get("admin").id;
    let not_by_admin: Vec<serde_json::Value> = everything
        .iter()
        .filter(|e| e["actor"] != first_admin.as_str())
        .cloned()
        .collect();
    assert!(naming(&reseller, user) > 0);
    assert_eq!(naming(&reseller, user), naming(&not_by_admin, user));

    // A deleted account's events leave every view but the admin's.
    let r = srv
        .delete_as(
            world.token("reseller1"),
            &format!("/api/v1/admin/users/{user}"),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let reseller = srv.audit(world.token("reseller1")).await;
    let everything = srv.audit(admin).await;
    assert!(naming(&everything, user) > 1);
    // Only the deletion the reseller itself made stays in its view.
    let left: Vec<&serde_json::Value> = reseller
        .iter()
        .filter(|e| e["actor"] == user.as_str() || e["target"] == user.as_str())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["actor"], world.get("reseller1").id.as_str());
}

#[tokio::test]
async fn a_schema_2_store_retires_the_tenant_ids_its_audit_log_names() {
    let (dir, meta) = fixture_store("store-v2");
    let clock = latchkey::domain::Clock::manual(meta["written_at"].as_i64().unwrap() + 60);
    let mut srv = Server::start_in(dir, Layer::default(), clock, None, bootstrap()).await;
    let admin = srv
        .login("admin", meta["admin_password"].as_str().unwrap())
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let create = |path: &'static str, body: serde_json::Value| {
        let call = srv.post(path).bearer(&admin).json(&body);
        async move { call.send().await }
    };
    let retired = &meta["retired"];
    let r = create(
        "/api/v1/admin/merchants",
        json!({ "id": retired["merchant"], "reseller_id": meta["live_reseller"], "name": "Again" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = create(
        "/api/v1/admin/resellers",
        json!({ "id": retired["reseller"], "name": "Again" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // A fresh id is fine.
    let r = create(
        "/api/v1/admin/merchants",
        json!({ "id": "shop-new", "reseller_id": meta["live_reseller"], "name": "New" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // A custom role named before the narrow form keeps working: its holder
    // signs in and chooses it.
    let legacy = &meta["legacy_role"];
    let r = srv
        .post_json(
            "/api/account/roles",
            &json!({ "email": "lead@example.com", "password": legacy["password"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["roles"], json!([legacy["name"]]));
    let id = r.json()["accountId"].clone();
    let r = srv
        .post_json(
            "/api/account/token",
            &json!({ "accountId": id, "role": legacy["name"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // It can still be given by its exact name; no new one of its form can
    // be made.
    srv.created(
        "/api/v1/admin/users",
        &admin,
        &json!({ "username": "lead2", "email": "lead2@example.com",
                       "password": "another password 1", "roles": [legacy["name"]] }),
    )
    .await;
    let r = srv.create_role(&admin, "Night Lead").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

    srv.stop().await;
    let store = latchkey::store::Store::open(&srv.data_dir()).unwrap();
    assert_eq!(
        store.read().unwrap().schema_version().unwrap(),
        Some(latchkey::store::SCHEMA_VERSION)
    );
}

// ---- item 18: role names ----

#[tokio::test]
async fn custom_roles_cannot_imitate_built_in_ones_and_are_found_in_any_case() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let roles_now = |srv: &Server| {
        let call = srv.get("/api/v1/admin/roles?limit=1000").bearer(&admin);
        async move { call.send().await.json()["items"].as_array().unwrap().len() }
    };
    let before = roles_now(&srv).await;
    for (name, status) in [
        ("ａｄｍｉｎ", 422),     // full-width
        ("\u{0430}dmin", 422),   // Cyrillic а
        ("ADM\u{0130}N", 422),   // dotted capital I
        ("admin\u{200b}", 422),  // zero-width space
        ("Team Lead", 422),      // a space
        ("9lives", 422),         // not starting with a letter
        (&*"r".repeat(65), 422), // too long
        ("ADMIN", 409),          // a built-in role in another case
        ("Reseller", 409),
    ] {
        let r = srv.create_role(&admin, name).await;
        assert_eq!(r.status.as_u16(), status, "{name}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{name}: {}", r.text());
        if status == 422 {
            assert_eq!(r.json()["field"], "name", "{name}");
        }
        // Nor can an account be given it.
        let r = srv
            .post("/api/v1/admin/users")
            .bearer(&admin)
            .json(
                &json!({ "username": "imitator", "email": "imitator@example.com",
                           "password": "imitator password", "roles": [name] }),
            )
            .send()
            .await;
        if status == 422 {
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{name}: {}",
                r.text()
            );
        }
    }
    assert_eq!(roles_now(&srv).await, before);
    // No account was made by any of those attempts but, at most, one for
    // a built-in role named in another case, which is that built-in role.
    let r = srv.get_as(&admin, "/api/v1/admin/users?limit=1000").await;
    for u in r.json()["items"].as_array().unwrap() {
        for role in u["roles"].as_array().unwrap() {
            let role = role.as_str().unwrap();
            assert!(
                ["admin", "reseller", "merchant", "user"].contains(&role),
                "{role}"
            );
        }
    }

    // A legitimate name works, once, in whatever case.
    srv.create_role(&admin, "Support-Team")
        .await
        .assert(StatusCode::CREATED);
    let r = srv.create_role(&admin, "support-TEAM").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(roles_now(&srv).await, before + 1);
    let id = srv
        .create_account(
            &admin,
            &json!({ "username": "helper", "email": "helper@example.com",
                "password": "helper password 1", "roles": ["support-team", "user"] }),
        )
        .await;
    let r = srv
        .get_as(&admin, &format!("/api/v1/admin/users/{id}"))
        .await;
    assert_eq!(r.json()["roles"], json!(["Support-Team", "user"]));
    let r = srv
        .post_json(
            "/api/account/roles",
            &json!({ "email": "helper@example.com", "password": "helper password 1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv
        .post_json(
            "/api/account/token",
            &json!({ "accountId": id, "role": "SUPPORT-team" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        jwt_claims(r.json().as_str().unwrap())["role"],
        "Support-Team"
    );
    // Deleting it needs no exact case either (once no account holds it).
    let r = srv
        .patch_as(
            &admin,
            &format!("/api/v1/admin/users/{id}"),
            &json!({ "roles": ["user"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv
        .delete_as(&admin, "/api/v1/admin/roles/SUPPORT-TEAM")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(roles_now(&srv).await, before);
}
