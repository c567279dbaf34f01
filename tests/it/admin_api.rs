//! The admin API under `/api/v1/admin/`, from the wire: shapes and
//! validation, paging and filters, tenant deletion, passwords, disabling and
//! deleting (with immediate revocation), sessions, the audit log, and tenant
//! isolation on every admin route.

use std::collections::{BTreeMap, BTreeSet};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

// ---- route templates, spelled as in src/api/admin.rs ----

const USERS: &str = "/api/v1/admin/users";
const USER: &str = "/api/v1/admin/users/{id}";
const USER_PASSWORD: &str = "/api/v1/admin/users/{id}/password";
const USER_DISABLE: &str = "/api/v1/admin/users/{id}/disable";
const USER_UNLOCK: &str = "/api/v1/admin/users/{id}/unlock";
const USER_ENABLE: &str = "/api/v1/admin/users/{id}/enable";
const USER_SESSIONS: &str = "/api/v1/admin/users/{id}/sessions";
const USER_SESSION: &str = "/api/v1/admin/users/{id}/sessions/{session}";
const USER_KEYS: &str = "/api/v1/admin/users/{id}/keys";
const USER_KEY: &str = "/api/v1/admin/users/{id}/keys/{keyId}";
const RESELLERS: &str = "/api/v1/admin/resellers";
const RESELLER: &str = "/api/v1/admin/resellers/{id}";
const MERCHANTS: &str = "/api/v1/admin/merchants";
const MERCHANT: &str = "/api/v1/admin/merchants/{id}";
const ROLES: &str = "/api/v1/admin/roles";
const ROLE: &str = "/api/v1/admin/roles/{name}";
const S2S_TOKENS: &str = "/api/v1/admin/s2s-tokens";
const S2S_TOKEN: &str = "/api/v1/admin/s2s-tokens/{id}";
const AUDIT: &str = "/api/v1/admin/audit";

// ---- helpers ----

/// Fills a route template's `{...}` segments with `args`, in order.
fn fill(template: &str, args: &[&str]) -> String {
    let mut args = args.iter();
    let path = template
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                args.next()
                    .unwrap_or_else(|| panic!("no argument for {seg} in {template}"))
                    .to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    assert!(args.next().is_none(), "too many arguments for {template}");
    path
}

/// One request to make: the route it exercises, the concrete path, a body.
#[derive(Debug, Clone)]
struct Probe {
    method: Method,
    template: &'static str,
    path: String,
    body: Option<Value>,
}

fn probe(method: Method, template: &'static str, args: &[&str], body: Option<Value>) -> Probe {
    Probe {
        path: fill(template, args),
        method,
        template,
        body,
    }
}

async fn send(
    srv: &Server,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let mut call = srv.call(method, path);
    if let Some(t) = token {
        call = call.bearer(t);
    }
    if let Some(b) = body {
        call = call.json(b);
    }
    call.send().await
}

async fn run(srv: &Server, token: &str, p: &Probe) -> Resp {
    send(srv, Some(token), p.method.clone(), &p.path, p.body.as_ref()).await
}

/// Sends and asserts the status.
async fn check(
    srv: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    want: StatusCode,
) -> Resp {
    let r = send(srv, Some(token), method.clone(), path, body.as_ref()).await;
    assert_eq!(r.status, want, "{method} {path}: {}", r.text());
    r
}

async fn get_json(srv: &Server, token: &str, path: &str) -> Value {
    check(srv, token, Method::GET, path, None, StatusCode::OK)
        .await
        .json()
}

/// A new account's request body, with the world's password.
fn person(name: &str, role: &str, reseller: Option<&str>, merchant: Option<&str>) -> Value {
    json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "password": WORLD_PASSWORD,
        "roles": [role],
        "reseller_id": reseller,
        "merchant_id": merchant,
    })
}

/// Creates an account (201 expected) and returns its view.
async fn create_user(srv: &Server, token: &str, body: Value) -> Value {
    check(
        srv,
        token,
        Method::POST,
        USERS,
        Some(body),
        StatusCode::CREATED,
    )
    .await
    .json()
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// Whether a credential is accepted: `GET /api/v1/auth/me`, and an admin
/// route every live credential may call (the audit log), which must agree.
/// (`me` alone reads the account, so it would refuse a deleted account's
/// token even if its session were still live; the admin route acts on the
/// token's claims.)
async fn me(srv: &Server, token: &str) -> StatusCode {
    let status = srv.get("/api/v1/auth/me").bearer(token).send().await.status;
    let admin = srv
        .get(&format!("{AUDIT}?limit=1"))
        .bearer(token)
        .send()
        .await;
    assert_eq!(
        admin.status,
        status,
        "/auth/me and the admin API disagree about a credential: {}",
        admin.text()
    );
    status
}

async fn me_json(srv: &Server, token: &str) -> Value {
    let r = srv.get("/api/v1/auth/me").bearer(token).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

async fn try_login(srv: &Server, username: &str, password: &str) -> Resp {
    srv.post("/api/v1/auth/login")
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
}

async fn login_with_agent(srv: &Server, username: &str, password: &str, agent: &str) -> Value {
    let r = srv
        .post("/api/v1/auth/login")
        .header("user-agent", agent)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

async fn refresh_status(srv: &Server, refresh_token: &Value) -> StatusCode {
    srv.post("/api/v1/auth/refresh")
        .json(&json!({ "refreshToken": refresh_token }))
        .send()
        .await
        .status
}

fn token_of(login: &Value) -> String {
    login["token"].as_str().expect("token").to_string()
}

/// Makes an API key for the credential's account: (key id, secret).
async fn new_api_key(srv: &Server, token: &str) -> (String, String) {
    let r = srv.post("/api/v1/auth/keys").bearer(token).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let b = r.json();
    (
        b["keyId"].as_str().expect("keyId").to_string(),
        b["apiKey"].as_str().expect("apiKey").to_string(),
    )
}

/// Issues an S2S token as `token`: (token id, secret).
async fn issue_s2s(
    srv: &Server,
    token: &str,
    name: &str,
    role: &str,
    reseller: &str,
    merchant: Option<&str>,
) -> (String, String) {
    let r = srv
        .post("/s2s-token")
        .bearer(token)
        .json(&json!({
            "name": name, "role": role, "reseller_id": reseller, "merchant_id": merchant,
        }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let secret = r.json()["token"].as_str().expect("token").to_string();
    let listed = walk(srv, token, S2S_TOKENS, 1000).await;
    let id = listed
        .iter()
        .find(|t| t["name"] == name)
        .map(id_of)
        .unwrap_or_else(|| panic!("{name} not listed"));
    (id, secret)
}

/// Follows `next` from the first page to the last, asserting the list shape
/// on every page; returns every item in order.
async fn walk(srv: &Server, token: &str, path: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = get_json(srv, token, &url).await;
        let keys: BTreeSet<&str> = page
            .as_object()
            .expect("a list is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["items", "next"]), "{url}: {page}");
        let got = page["items"].as_array().expect("items");
        assert!(got.len() <= limit, "{url}: {} items", got.len());
        items.extend(got.iter().cloned());
        match &page["next"] {
            Value::Null => return items,
            Value::String(c) => {
                assert_ne!(cursor.as_deref(), Some(c.as_str()), "{url}: cursor stuck");
                cursor = Some(c.clone());
            }
            other => panic!("{url}: next is {other}"),
        }
    }
    panic!("{path}: paging never ended");
}

/// The values of `key` over `items`, as strings.
fn column(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| match &i[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn set(items: &[Value], key: &str) -> BTreeSet<String> {
    column(items, key).into_iter().collect()
}

fn strings<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    names.into_iter().map(|s| s.as_ref().to_string()).collect()
}

/// No field that looks like a secret, and no argon2 hash anywhere.
fn assert_no_secrets(v: &Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let k = k.to_lowercase();
                assert!(
                    !k.contains("hash")
                        && !k.contains("password")
                        && !k.contains("digest")
                        && !k.contains("secret"),
                    "secret-looking field {k:?} in {v}"
                );
                assert_no_secrets(x);
            }
        }
        Value::Array(xs) => xs.iter().for_each(assert_no_secrets),
        Value::String(s) => assert!(!s.contains("$argon2"), "a password hash is shown: {s}"),
        _ => {}
    }
}

fn assert_account_shape(v: &Value) {
    for key in [
        "id",
        "number",
        "username",
        "email",
        "role",
        "roles",
        "reseller_id",
        "merchant_id",
        "attributes",
        "disabled",
        "created_at",
        "updated_at",
    ] {
        assert!(v.get(key).is_some(), "account view lacks {key}: {v}");
    }
    assert_no_secrets(v);
}

/// The live sessions of an account, as the admin sees them.
async fn session_ids(srv: &Server, admin: &str, account: &str) -> Vec<String> {
    let list = get_json(srv, admin, &fill(USER_SESSIONS, &[account])).await;
    column(list["items"].as_array().expect("items"), "id")
}

/// Every audit event the caller sees through this query.
async fn audit_where(srv: &Server, token: &str, query: &str) -> Vec<Value> {
    walk(srv, token, &format!("{AUDIT}?{query}"), 1000).await
}

/// The newest audit event the caller can see.
async fn latest_event(srv: &Server, token: &str) -> Value {
    let page = get_json(srv, token, &format!("{AUDIT}?limit=1")).await;
    page["items"][0].clone()
}

fn not_found(what: &str) -> Value {
    json!({ "error": format!("{what} not found") })
}

// ---- every route needs a credential ----

#[tokio::test]
async fn every_admin_route_refuses_a_missing_bad_expired_or_revoked_credential() {
    let srv = Server::start().await;
    let logged_out = srv.admin_token().await;
    let r = srv
        .post("/api/v1/auth/logout")
        .bearer(&logged_out)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let expiring = srv.admin_token().await;
    // Access tokens live 900 seconds by default, with 30 seconds of leeway.
    srv.advance(931);
    let live_again = srv.admin_token().await;
    assert_eq!(me(&srv, &expiring).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &live_again).await, StatusCode::OK);

    let some_id = "7d0f2a4e-0000-4000-8000-000000000001";
    let routes = latchkey::api::admin::routes();
    assert!(routes.len() >= 29, "only {} admin routes", routes.len());
    for route in routes {
        let args = vec![some_id; route.path.matches('{').count()];
        let path = fill(route.path, &args);
        let body = matches!(route.method, Method::POST | Method::PATCH).then(|| json!({}));
        for token in [
            None,
            Some("not-a-token"),
            Some(&*expiring),
            Some(&*logged_out),
        ] {
            let r = send(&srv, token, route.method.clone(), &path, body.as_ref()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{} {path} with {token:?}: {}",
                route.method,
                r.text()
            );
            assert_eq!(r.json(), json!({ "error": "Authentication required" }));
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|h| h.starts_with("Bearer")),
                "{} {path}: no challenge",
                route.method
            );
        }
        // The same route does answer a live credential (whatever it says).
        let r = send(
            &srv,
            Some(&live_again),
            route.method.clone(),
            &path,
            body.as_ref(),
        )
        .await;
        assert_ne!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{} {path}",
            route.method
        );
    }
}

// ---- CRUD and shapes ----

#[tokio::test]
async fn accounts_and_tenants_are_created_read_changed_and_deleted_without_showing_hashes() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;

    // Resellers.
    let r = check(
        &srv,
        &admin,
        Method::POST,
        RESELLERS,
        Some(json!({ "id": "res_a", "name": "Acme Resellers" })),
        StatusCode::CREATED,
    )
    .await
    .json();
    assert_eq!(r["id"], "res_a");
    assert_eq!(r["name"], "Acme Resellers");
    assert!(r["created_at"].is_string());
    assert_eq!(r["created_at"], r["updated_at"]);
    let generated_reseller =
        create_tenant(&srv, &admin, RESELLERS, json!({ "name": "Anon" })).await;
    assert!(
        generated_reseller.starts_with("res_"),
        "{generated_reseller}"
    );
    assert_eq!(get_json(&srv, &admin, &fill(RESELLER, &["res_a"])).await, r);
    srv.advance(60);
    let renamed = check(
        &srv,
        &admin,
        Method::PATCH,
        &fill(RESELLER, &["res_a"]),
        Some(json!({ "name": "Acme" })),
        StatusCode::OK,
    )
    .await
    .json();
    assert_eq!(renamed["name"], "Acme");
    assert_eq!(renamed["created_at"], r["created_at"]);
    assert!(renamed["updated_at"].as_str() > r["updated_at"].as_str());
    assert_eq!(
        get_json(&srv, &admin, &fill(RESELLER, &["res_a"])).await["name"],
        "Acme"
    );

    // Merchants.
    let m = check(
        &srv,
        &admin,
        Method::POST,
        MERCHANTS,
        Some(json!({ "id": "mer_a", "reseller_id": "res_a", "name": "Shop A" })),
        StatusCode::CREATED,
    )
    .await
    .json();
    assert_eq!(m["id"], "mer_a");
    assert_eq!(m["reseller_id"], "res_a");
    assert_eq!(m["name"], "Shop A");
    let generated_merchant = create_tenant(
        &srv,
        &admin,
        MERCHANTS,
        json!({ "reseller_id": "res_a", "name": "Shop B" }),
    )
    .await;
    assert!(
        generated_merchant.starts_with("mer_"),
        "{generated_merchant}"
    );
    assert_eq!(get_json(&srv, &admin, &fill(MERCHANT, &["mer_a"])).await, m);
    srv.advance(60);
    let m2 = check(
        &srv,
        &admin,
        Method::PATCH,
        &fill(MERCHANT, &["mer_a"]),
        Some(json!({ "name": "Shop Alpha" })),
        StatusCode::OK,
    )
    .await
    .json();
    assert_eq!(m2["name"], "Shop Alpha");
    assert_eq!(m2["reseller_id"], "res_a");
    assert!(m2["updated_at"].as_str() > m["updated_at"].as_str());

    // Accounts.
    let secret = "jane's long password";
    let created = create_user(
        &srv,
        &admin,
        json!({
            "username": "Jane.Doe",
            "email": "Jane@Example.com",
            "password": secret,
            "roles": ["user"],
            "merchant_id": "mer_a",
            "attributes": { "plan": "gold" },
        }),
    )
    .await;
    assert_account_shape(&created);
    let id = id_of(&created);
    assert_eq!(created["username"], "Jane.Doe");
    assert_eq!(created["email"], "Jane@Example.com");
    assert_eq!(created["role"], "user");
    assert_eq!(created["roles"], json!(["user"]));
    // The reseller follows from the merchant.
    assert_eq!(created["reseller_id"], "res_a");
    assert_eq!(created["merchant_id"], "mer_a");
    assert_eq!(created["attributes"], json!({ "plan": "gold" }));
    assert_eq!(created["disabled"], false);
    assert!(created["number"].is_u64());
    let fetched = check(
        &srv,
        &admin,
        Method::GET,
        &fill(USER, &[&id]),
        None,
        StatusCode::OK,
    )
    .await;
    assert!(!fetched.text().contains(secret));
    assert_eq!(fetched.json(), created);
    let jane = token_of(&srv.login("Jane.Doe", secret).await);
    assert_eq!(me_json(&srv, &jane).await["id"], id.as_str());

    srv.advance(60);
    let patched = check(
        &srv,
        &admin,
        Method::PATCH,
        &fill(USER, &[&id]),
        Some(json!({
            "username": "jdoe",
            "email": "jdoe@example.com",
            "attributes": { "plan": "silver" },
        })),
        StatusCode::OK,
    )
    .await
    .json();
    assert_account_shape(&patched);
    assert_eq!(patched["id"], id.as_str());
    assert_eq!(patched["username"], "jdoe");
    assert_eq!(patched["email"], "jdoe@example.com");
    assert_eq!(patched["attributes"], json!({ "plan": "silver" }));
    assert_eq!(patched["roles"], json!(["user"]));
    assert_eq!(patched["merchant_id"], "mer_a");
    assert_eq!(patched["created_at"], created["created_at"]);
    assert!(patched["updated_at"].as_str() > created["updated_at"].as_str());
    assert_eq!(get_json(&srv, &admin, &fill(USER, &[&id])).await, patched);
    assert_eq!(try_login(&srv, "jdoe", secret).await.status, StatusCode::OK);
    assert_eq!(
        try_login(&srv, "Jane.Doe", secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A change of name only leaves the sessions alone.
    assert_eq!(me(&srv, &jane).await, StatusCode::OK);

    let listed = walk(&srv, &admin, USERS, 1000).await;
    assert!(column(&listed, "id").contains(&id));
    listed.iter().for_each(assert_account_shape);

    let r = check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(USER, &[&id]),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert!(r.body.is_empty());
    for method in [Method::GET, Method::DELETE] {
        let r = check(
            &srv,
            &admin,
            method,
            &fill(USER, &[&id]),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(r.json(), not_found("User"));
    }
    let r = check(
        &srv,
        &admin,
        Method::GET,
        &fill(USER, &["not-a-uuid"]),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(r.json(), not_found("User"));
    assert!(!column(&walk(&srv, &admin, USERS, 1000).await, "id").contains(&id));

    // Tenants go once empty.
    for (template, id, what) in [
        (MERCHANT, generated_merchant.as_str(), "Merchant"),
        (MERCHANT, "mer_a", "Merchant"),
        (RESELLER, "res_a", "Reseller"),
        (RESELLER, generated_reseller.as_str(), "Reseller"),
    ] {
        let path = fill(template, &[id]);
        check(
            &srv,
            &admin,
            Method::DELETE,
            &path,
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
        let r = check(
            &srv,
            &admin,
            Method::GET,
            &path,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(r.json(), not_found(what));
        let r = check(
            &srv,
            &admin,
            Method::PATCH,
            &path,
            Some(json!({ "name": "ghost" })),
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(r.json(), not_found(what));
    }
}

/// Creates a reseller or merchant (201 expected) and returns its id.
async fn create_tenant(srv: &Server, token: &str, list: &str, body: Value) -> String {
    id_of(
        &check(
            srv,
            token,
            Method::POST,
            list,
            Some(body),
            StatusCode::CREATED,
        )
        .await
        .json(),
    )
}

fn merged(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in changes.as_object().expect("changes are an object") {
        out[k] = v.clone();
    }
    out
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_field() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    for id in ["res_a", "res_b"] {
        create_tenant(&srv, &admin, RESELLERS, json!({ "id": id, "name": id })).await;
    }
    for (id, reseller) in [("mer_a", "res_a"), ("mer_b", "res_b")] {
        let body = json!({ "id": id, "reseller_id": reseller, "name": id });
        create_tenant(&srv, &admin, MERCHANTS, body).await;
    }
    let taken = id_of(
        &create_user(
            &srv,
            &admin,
            json!({
                "username": "taken", "email": "taken@example.com",
                "password": WORLD_PASSWORD, "roles": ["user"], "merchant_id": "mer_a",
            }),
        )
        .await,
    );
    let base = json!({
        "username": "newbie",
        "email": "newbie@example.com",
        "password": "long enough password",
        "roles": ["user"],
        "merchant_id": "mer_a",
    });
    let user = |changes: Value| Some(merged(&base, changes));
    let taken_path = fill(USER, &[&taken]);

    // (what, method, path, body, status, the 422 field or a word of the 409)
    type Case<'a> = (&'a str, Method, String, Option<Value>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "malformed email",
            Method::POST,
            USERS.into(),
            user(json!({ "email": "not-an-email" })),
            422,
            Some("email"),
        ),
        (
            "email with a space",
            Method::POST,
            USERS.into(),
            user(json!({ "email": "new bie@example.com" })),
            422,
            Some("email"),
        ),
        (
            "seven-character password",
            Method::POST,
            USERS.into(),
            user(json!({ "password": "1234567" })),
            422,
            Some("password"),
        ),
        (
            "empty password",
            Method::POST,
            USERS.into(),
            user(json!({ "password": "" })),
            422,
            Some("password"),
        ),
        (
            "unknown role",
            Method::POST,
            USERS.into(),
            user(json!({ "roles": ["wizard"] })),
            422,
            Some("roles"),
        ),
        (
            "no role",
            Method::POST,
            USERS.into(),
            user(json!({ "roles": [] })),
            422,
            Some("roles"),
        ),
        (
            "username with a space",
            Method::POST,
            USERS.into(),
            user(json!({ "username": "two words" })),
            422,
            Some("username"),
        ),
        (
            "unknown reseller_id",
            Method::POST,
            USERS.into(),
            user(json!({ "roles": ["reseller"], "reseller_id": "res_nope", "merchant_id": null })),
            422,
            Some("reseller_id"),
        ),
        (
            "unknown merchant_id",
            Method::POST,
            USERS.into(),
            user(json!({ "merchant_id": "mer_nope" })),
            422,
            Some("merchant_id"),
        ),
        (
            "merchant under another reseller",
            Method::POST,
            USERS.into(),
            user(json!({ "reseller_id": "res_a", "merchant_id": "mer_b" })),
            422,
            Some("merchant_id"),
        ),
        (
            "reseller account without reseller_id",
            Method::POST,
            USERS.into(),
            user(json!({ "roles": ["reseller"], "merchant_id": null })),
            422,
            Some("reseller_id"),
        ),
        (
            "merchant account without merchant_id",
            Method::POST,
            USERS.into(),
            user(json!({ "roles": ["merchant"], "reseller_id": "res_a", "merchant_id": null })),
            422,
            Some("merchant_id"),
        ),
        (
            "username taken, in other case",
            Method::POST,
            USERS.into(),
            user(json!({ "username": "TAKEN" })),
            409,
            Some("username"),
        ),
        (
            "email taken, in other case",
            Method::POST,
            USERS.into(),
            user(json!({ "email": "Taken@Example.COM" })),
            409,
            Some("email"),
        ),
        (
            "unknown field",
            Method::POST,
            USERS.into(),
            user(json!({ "nickname": "nb" })),
            400,
            None,
        ),
        (
            "roles not a list",
            Method::POST,
            USERS.into(),
            user(json!({ "roles": "user" })),
            400,
            None,
        ),
        (
            "username missing",
            Method::POST,
            USERS.into(),
            user(json!({ "username": null })),
            400,
            None,
        ),
        (
            "patch: malformed email",
            Method::PATCH,
            taken_path.clone(),
            Some(json!({ "email": "nope" })),
            422,
            Some("email"),
        ),
        (
            "patch: unknown role",
            Method::PATCH,
            taken_path.clone(),
            Some(json!({ "roles": ["wizard"] })),
            422,
            Some("roles"),
        ),
        (
            "patch: unknown merchant",
            Method::PATCH,
            taken_path.clone(),
            Some(json!({ "merchant_id": "mer_nope" })),
            422,
            Some("merchant_id"),
        ),
        (
            "patch: email of the admin",
            Method::PATCH,
            taken_path.clone(),
            Some(json!({ "email": ADMIN_EMAIL })),
            409,
            Some("email"),
        ),
        (
            "patch: username of the admin",
            Method::PATCH,
            taken_path.clone(),
            Some(json!({ "username": "Admin" })),
            409,
            Some("username"),
        ),
        (
            "patch: unknown field",
            Method::PATCH,
            taken_path.clone(),
            Some(json!({ "shoe_size": 9 })),
            400,
            None,
        ),
        (
            "password: too short",
            Method::POST,
            fill(USER_PASSWORD, &[&taken]),
            Some(json!({ "password": "short" })),
            422,
            Some("password"),
        ),
        (
            "password: unknown field",
            Method::POST,
            fill(USER_PASSWORD, &[&taken]),
            Some(json!({ "password": WORLD_PASSWORD, "force": true })),
            400,
            None,
        ),
        (
            "reseller: id taken",
            Method::POST,
            RESELLERS.into(),
            Some(json!({ "id": "res_a", "name": "again" })),
            409,
            Some("exists"),
        ),
        (
            "reseller: bad id",
            Method::POST,
            RESELLERS.into(),
            Some(json!({ "id": "bad id!", "name": "x" })),
            422,
            Some("id"),
        ),
        (
            "reseller: blank name",
            Method::POST,
            RESELLERS.into(),
            Some(json!({ "id": "res_z", "name": "  " })),
            422,
            Some("name"),
        ),
        (
            "reseller: reseller_id given",
            Method::POST,
            RESELLERS.into(),
            Some(json!({ "id": "res_z", "name": "x", "reseller_id": "res_a" })),
            400,
            None,
        ),
        (
            "reseller: unknown field",
            Method::POST,
            RESELLERS.into(),
            Some(json!({ "id": "res_z", "title": "x" })),
            400,
            None,
        ),
        (
            "reseller patch: unknown field",
            Method::PATCH,
            fill(RESELLER, &["res_a"]),
            Some(json!({ "nme": "x" })),
            400,
            None,
        ),
        (
            "merchant: id taken",
            Method::POST,
            MERCHANTS.into(),
            Some(json!({ "id": "mer_a", "reseller_id": "res_a", "name": "again" })),
            409,
            Some("exists"),
        ),
        (
            "merchant: unknown reseller",
            Method::POST,
            MERCHANTS.into(),
            Some(json!({ "id": "mer_z", "reseller_id": "res_nope", "name": "x" })),
            422,
            Some("reseller_id"),
        ),
        (
            "merchant: no reseller",
            Method::POST,
            MERCHANTS.into(),
            Some(json!({ "id": "mer_z", "name": "x" })),
            422,
            Some("reseller_id"),
        ),
        (
            "merchant: unknown field",
            Method::POST,
            MERCHANTS.into(),
            Some(json!({ "id": "mer_z", "reseller_id": "res_a", "name": "x", "colour": "red" })),
            400,
            None,
        ),
        (
            "merchant patch: blank name",
            Method::PATCH,
            fill(MERCHANT, &["mer_a"]),
            Some(json!({ "name": "" })),
            422,
            Some("name"),
        ),
        (
            "role: unknown field",
            Method::POST,
            ROLES.into(),
            Some(json!({ "name": "Customer", "level": 2 })),
            400,
            None,
        ),
    ];
    for (what, method, path, body, status, hint) in cases {
        let r = send(&srv, Some(&admin), method.clone(), &path, body.as_ref()).await;
        assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text());
        let b = r.json();
        assert!(
            b["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {b}"
        );
        match (status, hint) {
            (422, Some(field)) => {
                assert_eq!(b["field"], field, "{what}: {b}");
                assert_eq!(b.as_object().map(|o| o.len()), Some(2), "{what}: {b}");
            }
            (409, Some(word)) => {
                assert!(
                    b["error"].as_str().is_some_and(|e| e.contains(word)),
                    "{what}: {b}"
                )
            }
            _ => {}
        }
    }
    // Nothing was made or changed by the refused requests.
    let names = set(&walk(&srv, &admin, USERS, 1000).await, "username");
    assert_eq!(names, strings([ADMIN, "taken"]));
    let t = get_json(&srv, &admin, &taken_path).await;
    assert_eq!(
        (t["username"].as_str(), t["email"].as_str()),
        (Some("taken"), Some("taken@example.com"))
    );
    assert_eq!(
        set(&walk(&srv, &admin, RESELLERS, 1000).await, "id"),
        strings(["res_a", "res_b"])
    );
    assert_eq!(
        set(&walk(&srv, &admin, MERCHANTS, 1000).await, "id"),
        strings(["mer_a", "mer_b"])
    );

    // Bodies that are not JSON at all.
    for (method, path) in [
        (Method::POST, USERS.to_string()),
        (Method::PATCH, taken_path.clone()),
        (Method::POST, fill(USER_PASSWORD, &[&taken])),
        (Method::POST, RESELLERS.to_string()),
        (Method::PATCH, fill(RESELLER, &["res_a"])),
        (Method::POST, MERCHANTS.to_string()),
        (Method::PATCH, fill(MERCHANT, &["mer_a"])),
        (Method::POST, ROLES.to_string()),
    ] {
        let text = base.to_string();
        let r = srv
            .call(method.clone(), &path)
            .bearer(&admin)
            .body("text/plain", text.clone())
            .send()
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
        assert_eq!(
            r.json(),
            json!({ "error": "Content-Type must be application/json" })
        );
        let r = srv
            .call(method.clone(), &path)
            .bearer(&admin)
            .raw_body(text)
            .send()
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path} untyped"
        );
        let r = srv
            .call(method.clone(), &path)
            .bearer(&admin)
            .body("application/json", "{\"username\":")
            .send()
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} truncated"
        );
    }

    // The base request was valid all along, and eight characters is enough.
    create_user(&srv, &admin, base.clone()).await;
    let eight = create_user(
        &srv,
        &admin,
        merged(
            &base,
            json!({ "username": "eight", "email": "eight@example.com", "password": "12345678" }),
        ),
    )
    .await;
    assert_account_shape(&eight);
    assert_eq!(
        try_login(&srv, "eight", "12345678").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn custom_roles_are_listed_used_and_deleted_only_when_unused() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let listed = get_json(&srv, &admin, ROLES).await;
    assert_eq!(listed["next"], Value::Null);
    for builtin in ["admin", "reseller", "merchant", "user"] {
        assert!(
            listed["items"]
                .as_array()
                .expect("items")
                .contains(&json!({ "name": builtin, "builtin": true })),
            "{builtin} missing: {listed}"
        );
    }

    let r = check(
        &srv,
        &admin,
        Method::POST,
        ROLES,
        Some(json!({ "name": "Customer" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(r.json(), json!({ "name": "Customer", "builtin": false }));
    let roles = walk(&srv, &admin, ROLES, 1000).await;
    assert!(roles.contains(&json!({ "name": "Customer", "builtin": false })));
    for (name, want) in [
        ("Customer", StatusCode::CONFLICT),
        ("Admin", StatusCode::CONFLICT),
        ("user", StatusCode::CONFLICT),
        ("", StatusCode::UNPROCESSABLE_ENTITY),
        ("bad/name", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = check(
            &srv,
            &admin,
            Method::POST,
            ROLES,
            Some(json!({ "name": name })),
            want,
        )
        .await;
        if want == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(r.json()["field"], "name");
        }
    }

    // An account holding the custom role acts as a plain user.
    let customer = create_user(&srv, &admin, person("cust", "Customer", None, None)).await;
    let customer_id = id_of(&customer);
    assert_eq!(customer["roles"], json!(["Customer"]));
    assert_eq!(customer["role"], "Customer");
    let token = token_of(&srv.login("cust", WORLD_PASSWORD).await);
    assert_eq!(me_json(&srv, &token).await["roles"], json!(["Customer"]));
    check(
        &srv,
        &token,
        Method::GET,
        USERS,
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    check(
        &srv,
        &token,
        Method::GET,
        &fill(USER, &[&customer_id]),
        None,
        StatusCode::OK,
    )
    .await;

    // In use, or built in: refused, and still listed.
    for name in ["Customer", "admin", "reseller", "merchant", "user"] {
        let r = check(
            &srv,
            &admin,
            Method::DELETE,
            &fill(ROLE, &[name]),
            None,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(walk(&srv, &admin, ROLES, 1000).await, roles);
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(ROLE, &["Nobody"]),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Unused: gone.
    check(
        &srv,
        &admin,
        Method::PATCH,
        &fill(USER, &[&customer_id]),
        Some(json!({ "roles": ["user"] })),
        StatusCode::OK,
    )
    .await;
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(ROLE, &["Customer"]),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let after = walk(&srv, &admin, ROLES, 1000).await;
    assert!(!set(&after, "name").contains("Customer"), "{after:?}");
    assert_eq!(after.len(), 4);
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(ROLE, &["Customer"]),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    let r = check(
        &srv,
        &admin,
        Method::POST,
        USERS,
        Some(person("late", "Customer", None, None)),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(r.json()["field"], "roles");
}

// ---- paging and filters ----

#[tokio::test]
async fn lists_are_paged_by_cursor_and_users_are_filtered() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let mut even = Vec::new();
    let mut odd = Vec::new();
    for i in 0..44 {
        let name = format!("shopper{i:02}");
        let merchant = if i % 2 == 0 { "mer_1a" } else { "mer_2b" };
        create_user(
            &srv,
            admin,
            json!({
                "username": name,
                "email": format!("Shopper{i:02}@Shops.Example"),
                "password": WORLD_PASSWORD,
                "roles": ["user"],
                "merchant_id": merchant,
            }),
        )
        .await;
        if i % 2 == 0 {
            even.push(name)
        } else {
            odd.push(name)
        }
    }
    let world: Vec<String> = w.accounts.keys().cloned().collect();
    assert_eq!(world.len(), 8);

    // The default page is 50.
    let first = get_json(&srv, admin, USERS).await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(50));
    assert!(first["next"].is_string(), "{}", first["next"]);
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "cursor=abc",
    ] {
        let r = check(
            &srv,
            admin,
            Method::GET,
            &format!("{USERS}?{bad}"),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(r.json()["error"].is_string());
    }
    let everything = get_json(&srv, admin, &format!("{USERS}?limit=1000")).await;
    assert_eq!(everything["next"], Value::Null);
    let all = everything["items"].as_array().expect("items").clone();
    assert_eq!(all.len(), 52);
    let all_ids = column(&all, "id");
    assert_eq!(all_ids.iter().collect::<BTreeSet<_>>().len(), 52);
    for limit in [1, 2, 7, 50] {
        let walked = walk(&srv, admin, USERS, limit).await;
        assert_eq!(column(&walked, "id"), all_ids, "limit={limit}");
    }

    let shoppers_1 = |prefix: &str| -> Vec<String> {
        even.iter()
            .chain(&odd)
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect()
    };
    let with = |base: &[&str], more: &[String]| -> BTreeSet<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(more.iter().cloned())
            .collect()
    };
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "reseller_id=res_1",
            with(&["reseller1", "merchant1a", "merchant1b", "user1a"], &even),
        ),
        ("merchant_id=mer_2b", with(&[], &odd)),
        ("merchant_id=mer_1a", with(&["merchant1a", "user1a"], &even)),
        (
            "role=merchant",
            with(&["merchant1a", "merchant1b", "merchant2a"], &[]),
        ),
        ("role=admin", with(&["admin"], &[])),
        ("q=SHOPPER1", with(&[], &shoppers_1("shopper1"))),
        ("q=shops.EXAMPLE", with(&[], &shoppers_1("shopper"))),
        ("q=Example.COM", strings(&world)),
        ("reseller_id=res_2&role=user", with(&["user2a"], &odd)),
        ("role=user&q=shopper0", with(&[], &shoppers_1("shopper0"))),
        ("q=nobody-by-this-name", BTreeSet::new()),
    ];
    assert_eq!(shoppers_1("shopper1").len(), 10);
    for (query, want) in cases {
        let path = format!("{USERS}?{query}");
        let walked = column(&walk(&srv, admin, &path, 3).await, "username");
        let unique: BTreeSet<String> = walked.iter().cloned().collect();
        assert_eq!(unique.len(), walked.len(), "{query}: repeats in {walked:?}");
        assert_eq!(unique, want, "{query}");
        let one_page = get_json(&srv, admin, &format!("{path}&limit=1000")).await;
        assert_eq!(
            set(one_page["items"].as_array().expect("items"), "username"),
            want,
            "{query}"
        );
    }

    // Every other list pages the same way.
    let user1a = w.get("user1a");
    for _ in 0..2 {
        new_api_key(&srv, &user1a.token).await;
    }
    srv.login("user1a", WORLD_PASSWORD).await;
    issue_s2s(&srv, admin, "feed-1", "reseller", "res_1", None).await;
    issue_s2s(&srv, admin, "feed-2", "merchant", "res_2", Some("mer_2a")).await;
    let lists = [
        RESELLERS.to_string(),
        MERCHANTS.to_string(),
        format!("{MERCHANTS}?reseller_id=res_2"),
        ROLES.to_string(),
        S2S_TOKENS.to_string(),
        AUDIT.to_string(),
        fill(USER_SESSIONS, &[&user1a.id]),
        fill(USER_KEYS, &[&user1a.id]),
    ];
    for list in &lists {
        let sep = if list.contains('?') { '&' } else { '?' };
        for bad in ["limit=0", "limit=1001"] {
            let r = send(
                &srv,
                Some(admin),
                Method::GET,
                &format!("{list}{sep}{bad}"),
                None,
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{list}{sep}{bad}: {}",
                r.text()
            );
        }
        let whole = walk(&srv, admin, list, 1000).await;
        assert!(whole.len() >= 2, "{list}: {whole:?}");
        assert_eq!(walk(&srv, admin, list, 1).await, whole, "{list} by ones");
    }
    let resellers = walk(&srv, admin, RESELLERS, 1).await;
    assert_eq!(column(&resellers, "id"), ["res_1", "res_2"]);
    let merchants = walk(&srv, admin, MERCHANTS, 1).await;
    assert_eq!(
        column(&merchants, "id"),
        ["mer_1a", "mer_1b", "mer_2a", "mer_2b"]
    );
    let of_two = walk(&srv, admin, &format!("{MERCHANTS}?reseller_id=res_2"), 1).await;
    assert_eq!(column(&of_two, "id"), ["mer_2a", "mer_2b"]);
}

// ---- tenant deletion ----

#[tokio::test]
async fn tenants_still_holding_merchants_accounts_or_tokens_are_not_deleted() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    create_tenant(
        &srv,
        &admin,
        RESELLERS,
        json!({ "id": "res_x", "name": "X" }),
    )
    .await;
    create_tenant(
        &srv,
        &admin,
        MERCHANTS,
        json!({ "id": "mer_x", "reseller_id": "res_x", "name": "X shop" }),
    )
    .await;
    let reseller = fill(RESELLER, &["res_x"]);
    let merchant = fill(MERCHANT, &["mer_x"]);
    let refused = |r: Resp, word: &str| {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        let message = r.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(message.contains(word), "{message:?} does not say {word}");
    };

    refused(
        send(&srv, Some(&admin), Method::DELETE, &reseller, None).await,
        "merchant",
    );
    get_json(&srv, &admin, &reseller).await;

    let clerk =
        id_of(&create_user(&srv, &admin, person("clerk", "user", None, Some("mer_x"))).await);
    refused(
        send(&srv, Some(&admin), Method::DELETE, &merchant, None).await,
        "account",
    );
    get_json(&srv, &admin, &merchant).await;
    assert_eq!(
        get_json(&srv, &admin, &fill(USER, &[&clerk])).await["merchant_id"],
        "mer_x"
    );

    let boss = id_of(
        &create_user(
            &srv,
            &admin,
            person("boss", "reseller", Some("res_x"), None),
        )
        .await,
    );
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(USER, &[&clerk]),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    check(
        &srv,
        &admin,
        Method::DELETE,
        &merchant,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    refused(
        send(&srv, Some(&admin), Method::DELETE, &reseller, None).await,
        "account",
    );
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(USER, &[&boss]),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;

    let (s2s, _) = issue_s2s(&srv, &admin, "feed", "reseller", "res_x", None).await;
    refused(
        send(&srv, Some(&admin), Method::DELETE, &reseller, None).await,
        "token",
    );
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(S2S_TOKEN, &[&s2s]),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;

    check(
        &srv,
        &admin,
        Method::DELETE,
        &reseller,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let r = check(
        &srv,
        &admin,
        Method::GET,
        &reseller,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(r.json(), not_found("Reseller"));
    let r = check(
        &srv,
        &admin,
        Method::GET,
        &merchant,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(r.json(), not_found("Merchant"));
    check(
        &srv,
        &admin,
        Method::DELETE,
        &reseller,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

// ---- passwords, disabling, deleting ----

#[tokio::test]
async fn setting_a_password_ends_sessions_and_an_own_change_needs_the_current_one() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let user = w.get("user1a");
    let path = fill(USER_PASSWORD, &[&user.id]);
    let second = srv.login("user1a", WORLD_PASSWORD).await;

    let r = check(
        &srv,
        admin,
        Method::POST,
        &path,
        Some(json!({ "password": "short" })),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(r.json()["field"], "password");
    assert_eq!(me(&srv, &user.token).await, StatusCode::OK);

    let fresh = "a brand new password";
    let r = check(
        &srv,
        admin,
        Method::POST,
        &path,
        Some(json!({ "password": fresh })),
        StatusCode::NO_CONTENT,
    )
    .await;
    assert!(r.body.is_empty());
    assert_eq!(me(&srv, &user.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &token_of(&second)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_status(&srv, &second["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    let r = try_login(&srv, "user1a", WORLD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    assert_eq!(me(&srv, admin).await, StatusCode::OK);

    // Changing one's own password takes the current one; the session that
    // changed it stays, the others end.
    let a = token_of(&srv.login("user1a", fresh).await);
    let b = token_of(&srv.login("user1a", fresh).await);
    let third = "the third password";
    for (body, what) in [
        (json!({ "password": third }), "without current_password"),
        (
            json!({ "password": third, "current_password": "a wrong guess" }),
            "with a wrong one",
        ),
    ] {
        let r = check(
            &srv,
            &a,
            Method::POST,
            &path,
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(r.json()["field"], "current_password", "{what}");
    }
    assert_eq!(
        try_login(&srv, "user1a", fresh).await.status,
        StatusCode::OK
    );
    check(
        &srv,
        &a,
        Method::POST,
        &path,
        Some(json!({ "password": third, "current_password": fresh })),
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_eq!(me(&srv, &a).await, StatusCode::OK);
    assert_eq!(me(&srv, &b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        try_login(&srv, "user1a", fresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_login(&srv, "user1a", third).await.status,
        StatusCode::OK
    );

    // The admin changing its own password is held to the same rule.
    let own = fill(USER_PASSWORD, &[&w.get("admin").id]);
    let r = check(
        &srv,
        admin,
        Method::POST,
        &own,
        Some(json!({ "password": "admin's next one" })),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(r.json()["field"], "current_password");
    assert_eq!(
        try_login(&srv, ADMIN, ADMIN_PASSWORD).await.status,
        StatusCode::OK
    );

    // A user cannot set someone else's; a reseller can in its tenant.
    let merchant = fill(USER_PASSWORD, &[&w.get("merchant1a").id]);
    let r = check(
        &srv,
        &a,
        Method::POST,
        &merchant,
        Some(json!({ "password": "hijacked password" })),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(r.json(), not_found("User"));
    assert_eq!(
        try_login(&srv, "merchant1a", WORLD_PASSWORD).await.status,
        StatusCode::OK
    );
    check(
        &srv,
        w.token("reseller1"),
        Method::POST,
        &merchant,
        Some(json!({ "password": "set by the reseller" })),
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_eq!(
        me(&srv, w.token("merchant1a")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_login(&srv, "merchant1a", "set by the reseller")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn disabling_or_deleting_an_account_revokes_its_credentials_at_once() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");

    // Disable.
    let target = w.get("user2a");
    let (_, key) = new_api_key(&srv, &target.token).await;
    let fresh = srv.login("user2a", WORLD_PASSWORD).await;
    let credentials = [target.token.clone(), token_of(&fresh), key];
    for c in &credentials {
        assert_eq!(me(&srv, c).await, StatusCode::OK);
    }
    let r = check(
        &srv,
        admin,
        Method::POST,
        &fill(USER_DISABLE, &[&target.id]),
        None,
        StatusCode::OK,
    )
    .await
    .json();
    assert_account_shape(&r);
    assert_eq!(r["disabled"], true);
    assert_eq!(r["id"], target.id.as_str());
    for c in &credentials {
        assert_eq!(
            me(&srv, c).await,
            StatusCode::UNAUTHORIZED,
            "a credential of a disabled account"
        );
    }
    assert_eq!(
        refresh_status(&srv, &fresh["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    let r = try_login(&srv, "user2a", WORLD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json(), json!({ "error": "Account disabled" }));
    let r = try_login(&srv, "user2a", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    assert_eq!(
        get_json(&srv, admin, &fill(USER, &[&target.id])).await["disabled"],
        true
    );
    assert_eq!(
        get_json(&srv, admin, &fill(USER_SESSIONS, &[&target.id])).await["items"],
        json!([])
    );
    assert_eq!(
        get_json(&srv, admin, &fill(USER_KEYS, &[&target.id])).await["items"],
        json!([])
    );
    // Nobody else is touched.
    for other in ["user1a", "merchant2a", "reseller2"] {
        assert_eq!(me(&srv, w.token(other)).await, StatusCode::OK, "{other}");
    }

    // Enable: the password works again; the old credentials stay dead.
    let r = check(
        &srv,
        admin,
        Method::POST,
        &fill(USER_ENABLE, &[&target.id]),
        None,
        StatusCode::OK,
    )
    .await
    .json();
    assert_eq!(r["disabled"], false);
    let back = token_of(&srv.login("user2a", WORLD_PASSWORD).await);
    assert_eq!(me(&srv, &back).await, StatusCode::OK);
    for c in &credentials {
        assert_eq!(me(&srv, c).await, StatusCode::UNAUTHORIZED);
    }

    // Delete.
    let victim = w.get("merchant2a");
    let (_, key) = new_api_key(&srv, &victim.token).await;
    let fresh = srv.login("merchant2a", WORLD_PASSWORD).await;
    let credentials = [victim.token.clone(), token_of(&fresh), key];
    for c in &credentials {
        assert_eq!(me(&srv, c).await, StatusCode::OK);
    }
    check(
        &srv,
        admin,
        Method::DELETE,
        &fill(USER, &[&victim.id]),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    for c in &credentials {
        assert_eq!(
            me(&srv, c).await,
            StatusCode::UNAUTHORIZED,
            "a credential of a deleted account"
        );
    }
    assert_eq!(
        refresh_status(&srv, &fresh["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    let r = try_login(&srv, "merchant2a", WORLD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    for method in [Method::GET, Method::DELETE] {
        let r = check(
            &srv,
            admin,
            method,
            &fill(USER, &[&victim.id]),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(r.json(), not_found("User"));
    }
    let listed = walk(&srv, admin, USERS, 1000).await;
    assert!(!column(&listed, "id").contains(&victim.id));
    // The name is free again; the old credentials do not pass for the new
    // account.
    let again = create_user(
        &srv,
        admin,
        person("merchant2a", "merchant", None, Some("mer_2a")),
    )
    .await;
    assert_ne!(id_of(&again), victim.id);
    for c in &credentials {
        assert_eq!(me(&srv, c).await, StatusCode::UNAUTHORIZED);
    }

    // The admin cannot lock itself out.
    let me_path = |t: &'static str| fill(t, &[&w.get("admin").id]);
    for (method, path) in [
        (Method::POST, me_path(USER_DISABLE)),
        (Method::POST, me_path(USER_ENABLE)),
        (Method::DELETE, me_path(USER)),
    ] {
        let r = check(&srv, admin, method, &path, None, StatusCode::CONFLICT).await;
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(me(&srv, admin).await, StatusCode::OK);
    assert_eq!(
        get_json(&srv, admin, &me_path(USER)).await["disabled"],
        false
    );

    // Moving an account retires the tokens that carried its old tenant.
    let user1a = w.get("user1a");
    let moved = check(
        &srv,
        admin,
        Method::PATCH,
        &fill(USER, &[&user1a.id]),
        Some(json!({ "merchant_id": "mer_1b" })),
        StatusCode::OK,
    )
    .await
    .json();
    assert_eq!(
        (moved["reseller_id"].as_str(), moved["merchant_id"].as_str()),
        (Some("res_1"), Some("mer_1b"))
    );
    assert_eq!(me(&srv, &user1a.token).await, StatusCode::UNAUTHORIZED);
    let relogged = token_of(&srv.login("user1a", WORLD_PASSWORD).await);
    assert_eq!(me_json(&srv, &relogged).await["merchant_id"], "mer_1b");
}

// ---- sessions ----

#[tokio::test]
async fn sessions_are_listed_with_client_details_and_revoked_one_or_all() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let admin_id = id_of(&me_json(&srv, &admin).await);
    let id = id_of(&create_user(&srv, &admin, person("traveller", "user", None, None)).await);
    let sessions = fill(USER_SESSIONS, &[&id]);

    let one = login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-one/1.0").await;
    srv.advance(30);
    let two = login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-two/2.0 (test)").await;
    let list = get_json(&srv, &admin, &sessions).await;
    assert_eq!(list["next"], Value::Null);
    let items = list["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2, "{list}");
    // Newest first.
    assert_eq!(
        column(&items, "user_agent"),
        ["agent-two/2.0 (test)", "agent-one/1.0"]
    );
    for s in &items {
        assert_eq!(s["client_ip"], "127.0.0.1");
        for key in ["id", "created_at", "last_used_at", "expires_at"] {
            assert!(s[key].is_string(), "{key} in {s}");
        }
        assert!(s["expires_at"].as_str() > s["created_at"].as_str());
        assert_no_secrets(s);
    }
    assert!(items[0]["created_at"].as_str() > items[1]["created_at"].as_str());
    let (two_id, one_id) = (id_of(&items[0]), id_of(&items[1]));

    // Another account's session is not this account's to revoke.
    let admin_session = session_ids(&srv, &admin, &admin_id).await[0].clone();
    for sid in [
        admin_session.as_str(),
        "not-a-uuid",
        "7d0f2a4e-0000-4000-8000-000000000001",
    ] {
        let r = check(
            &srv,
            &admin,
            Method::DELETE,
            &fill(USER_SESSION, &[&id, sid]),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(r.json(), not_found("Session"), "{sid}");
    }
    assert_eq!(me(&srv, &admin).await, StatusCode::OK);

    // One.
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(USER_SESSION, &[&id, &one_id]),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_eq!(me(&srv, &token_of(&one)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_status(&srv, &one["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&srv, &token_of(&two)).await, StatusCode::OK);
    assert_eq!(session_ids(&srv, &admin, &id).await, [two_id]);
    check(
        &srv,
        &admin,
        Method::DELETE,
        &fill(USER_SESSION, &[&id, &one_id]),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    // All.
    let three = login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-three").await;
    let r = check(
        &srv,
        &admin,
        Method::DELETE,
        &sessions,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(r.json(), json!({ "revoked": 2 }));
    for s in [&two, &three] {
        assert_eq!(me(&srv, &token_of(s)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            refresh_status(&srv, &s["refreshToken"]).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(session_ids(&srv, &admin, &id).await.is_empty());
    assert_eq!(me(&srv, &admin).await, StatusCode::OK);

    // An account sees and ends its own sessions too.
    let four = token_of(&login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-four").await);
    let own = get_json(&srv, &four, &sessions).await;
    assert_eq!(
        column(own["items"].as_array().expect("items"), "user_agent"),
        ["agent-four"]
    );

    // A session past its lifetime (seven days by default) is not live.
    srv.advance(7 * 24 * 3600 + 1);
    assert!(
        session_ids(&srv, &srv.admin_token().await, &id)
            .await
            .is_empty()
    );
}

// ---- audit ----

#[tokio::test]
async fn the_audit_log_records_changes_and_logins_newest_first_filtered_and_paged() {
    use latchkey::domain::clock::rfc3339;
    let mut srv = Server::start().await;
    let admin = srv.admin_token().await;
    let admin_id = id_of(&me_json(&srv, &admin).await);

    srv.advance(5);
    create_tenant(
        &srv,
        &admin,
        RESELLERS,
        json!({ "id": "res_a", "name": "A" }),
    )
    .await;
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["target"].as_str()),
        (Some("reseller_created"), Some("res_a"))
    );
    srv.advance(5);
    create_tenant(
        &srv,
        &admin,
        MERCHANTS,
        json!({ "id": "mer_a", "reseller_id": "res_a", "name": "A" }),
    )
    .await;
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["target"].as_str()),
        (Some("merchant_created"), Some("mer_a"))
    );

    srv.advance(5);
    let uid =
        id_of(&create_user(&srv, &admin, person("auditee", "user", None, Some("mer_a"))).await);
    let top = latest_event(&srv, &admin).await;
    assert_eq!(top["event"], "account_created");
    assert_eq!(top["actor"], admin_id.as_str());
    assert_eq!(top["actor_name"], "admin");
    assert_eq!(top["target"], uid.as_str());
    assert_eq!(top["client_ip"], "127.0.0.1");
    assert_eq!(top["outcome"], "success");
    assert_eq!(top["reseller_id"], "res_a");
    assert_eq!(top["merchant_id"], "mer_a");
    assert_eq!(top["at"], rfc3339(srv.clock.now()).as_str());
    assert!(top["seq"].is_u64());
    assert_no_secrets(&top);

    srv.advance(5);
    let wrong = "a wrong password guess";
    assert_eq!(
        try_login(&srv, "auditee", wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["outcome"].as_str()),
        (Some("login"), Some("failure"))
    );
    assert_eq!(top["client_ip"], "127.0.0.1");
    assert!(
        !top.to_string().contains(wrong),
        "the password is in the log: {top}"
    );

    srv.advance(5);
    srv.login("auditee", WORLD_PASSWORD).await;
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["outcome"].as_str()),
        (Some("login"), Some("success"))
    );
    assert_eq!(
        (top["actor"].as_str(), top["actor_name"].as_str()),
        (Some(uid.as_str()), Some("auditee"))
    );
    assert_eq!(top["client_ip"], "127.0.0.1");

    // Account, tenant and role changes, each logged as it happens.
    let user = |t: &str| fill(t, &[&uid]);
    let steps: Vec<(Method, String, Option<Value>, &str, &str)> = vec![
        (
            Method::PATCH,
            user(USER),
            Some(json!({ "attributes": { "tier": "2" } })),
            "account_updated",
            uid.as_str(),
        ),
        (
            Method::POST,
            user(USER_PASSWORD),
            Some(json!({ "password": "fresh password 789" })),
            "password_changed",
            uid.as_str(),
        ),
        (
            Method::POST,
            user(USER_DISABLE),
            None,
            "account_disabled",
            uid.as_str(),
        ),
        (
            Method::POST,
            user(USER_ENABLE),
            None,
            "account_enabled",
            uid.as_str(),
        ),
        (
            Method::DELETE,
            user(USER_SESSIONS),
            None,
            "sessions_revoked",
            uid.as_str(),
        ),
        (
            Method::PATCH,
            fill(RESELLER, &["res_a"]),
            Some(json!({ "name": "A2" })),
            "reseller_updated",
            "res_a",
        ),
        (
            Method::PATCH,
            fill(MERCHANT, &["mer_a"]),
            Some(json!({ "name": "A2" })),
            "merchant_updated",
            "mer_a",
        ),
        (
            Method::POST,
            ROLES.to_string(),
            Some(json!({ "name": "Auditor" })),
            "role_created",
            "Auditor",
        ),
        (
            Method::DELETE,
            fill(ROLE, &["Auditor"]),
            None,
            "role_deleted",
            "Auditor",
        ),
        (
            Method::DELETE,
            user(USER),
            None,
            "account_deleted",
            uid.as_str(),
        ),
        (
            Method::DELETE,
            fill(MERCHANT, &["mer_a"]),
            None,
            "merchant_deleted",
            "mer_a",
        ),
        (
            Method::DELETE,
            fill(RESELLER, &["res_a"]),
            None,
            "reseller_deleted",
            "res_a",
        ),
    ];
    for (method, path, body, event, target) in &steps {
        srv.advance(1);
        let r = send(&srv, Some(&admin), method.clone(), path, body.as_ref()).await;
        assert!(r.status.is_success(), "{method} {path}: {}", r.text());
        let top = latest_event(&srv, &admin).await;
        assert_eq!(top["event"], *event, "{method} {path}: {top}");
        assert_eq!(top["target"], *target, "{method} {path}: {top}");
        assert_eq!(top["actor"], admin_id.as_str());
        assert_eq!(top["outcome"], "success");
        assert_eq!(top["client_ip"], "127.0.0.1");
        assert_eq!(top["at"], rfc3339(srv.clock.now()).as_str());
    }

    // Newest first, across the whole log.
    let all = walk(&srv, &admin, AUDIT, 1000).await;
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|p| p[0] > p[1]), "{seqs:?}");
    let ats = column(&all, "at");
    assert!(ats.windows(2).all(|p| p[0] >= p[1]), "{ats:?}");
    let newest: Vec<String> = column(&all, "event")
        .into_iter()
        .take(steps.len())
        .collect();
    let done: Vec<String> = steps.iter().rev().map(|s| s.3.to_string()).collect();
    assert_eq!(newest, done);

    // Filters.
    let logins = audit_where(&srv, &admin, "event=login").await;
    assert!(logins.iter().all(|e| e["event"] == "login"));
    assert_eq!(set(&logins, "outcome"), strings(["failure", "success"]));
    let failures = audit_where(&srv, &admin, "outcome=failure").await;
    assert!(!failures.is_empty() && failures.iter().all(|e| e["outcome"] == "failure"));
    let failed_logins = audit_where(&srv, &admin, "event=login&outcome=failure").await;
    assert_eq!(failed_logins.len(), 1, "{failed_logins:?}");
    let about = audit_where(&srv, &admin, &format!("target={uid}")).await;
    assert!(about.iter().all(|e| e["target"] == uid.as_str()));
    assert!(
        set(&about, "event").is_superset(&strings([
            "account_created",
            "account_updated",
            "password_changed",
            "account_disabled",
            "account_enabled",
            "sessions_revoked",
            "account_deleted",
        ])),
        "{about:?}"
    );
    let by = audit_where(&srv, &admin, &format!("actor={uid}")).await;
    assert!(!by.is_empty() && by.iter().all(|e| e["actor"] == uid.as_str()));
    let created = audit_where(&srv, &admin, "event=account_created").await;
    assert!(created.iter().all(|e| e["event"] == "account_created"));
    assert!(column(&created, "target").contains(&uid));
    assert!(
        audit_where(&srv, &admin, "event=no_such_event")
            .await
            .is_empty()
    );
    let of_tenant = audit_where(&srv, &admin, "reseller_id=res_a").await;
    assert!(!of_tenant.is_empty() && of_tenant.iter().all(|e| e["reseller_id"] == "res_a"));

    // Pages of one walk back in time through the same events.
    for limit in [1, 4] {
        let walked = walk(&srv, &admin, AUDIT, limit).await;
        assert_eq!(walked, all, "limit={limit}");
    }
    let page = get_json(&srv, &admin, &format!("{AUDIT}?limit=1")).await;
    assert!(page["next"].is_string());
    let older = get_json(
        &srv,
        &admin,
        &format!(
            "{AUDIT}?limit=1&cursor={}",
            page["next"].as_str().unwrap_or_default()
        ),
    )
    .await;
    assert_eq!(older["items"][0], all[1]);

    // Append-only: nothing edits or removes an entry, and it outlives a
    // restart.
    for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
        let r = send(&srv, Some(&admin), method.clone(), AUDIT, Some(&json!({}))).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    let first_seq = seqs[0].to_string();
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let r = send(
            &srv,
            Some(&admin),
            method.clone(),
            &format!("{AUDIT}/{first_seq}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
    }
    srv.restart().await;
    let admin = srv.admin_token().await;
    let after = walk(&srv, &admin, AUDIT, 1000).await;
    assert_eq!(after[0]["event"], "login");
    let kept: Vec<Value> = after
        .into_iter()
        .filter(|e| e["seq"].as_u64() <= Some(seqs[0]))
        .collect();
    assert_eq!(kept, all);
}

// ---- tenant isolation ----

/// Every route on one account, with what an in-scope manager gets, in an
/// order a manager can run them one after the other.
fn account_routes(id: &str, session: &str, key: &str) -> Vec<(Probe, StatusCode)> {
    use StatusCode as S;
    vec![
        (probe(Method::GET, USER, &[id], None), S::OK),
        (
            probe(
                Method::PATCH,
                USER,
                &[id],
                Some(json!({ "attributes": { "note": "changed" } })),
            ),
            S::OK,
        ),
        (probe(Method::GET, USER_SESSIONS, &[id], None), S::OK),
        (probe(Method::GET, USER_KEYS, &[id], None), S::OK),
        (
            probe(Method::DELETE, USER_KEY, &[id, key], None),
            S::NO_CONTENT,
        ),
        (
            probe(Method::DELETE, USER_SESSION, &[id, session], None),
            S::NO_CONTENT,
        ),
        (probe(Method::DELETE, USER_SESSIONS, &[id], None), S::OK),
        (
            probe(
                Method::POST,
                USER_PASSWORD,
                &[id],
                Some(json!({ "password": "an outsider's password" })),
            ),
            S::NO_CONTENT,
        ),
        (probe(Method::POST, USER_UNLOCK, &[id], None), S::OK),
        (probe(Method::POST, USER_DISABLE, &[id], None), S::OK),
        (probe(Method::POST, USER_ENABLE, &[id], None), S::OK),
        (probe(Method::DELETE, USER, &[id], None), S::NO_CONTENT),
    ]
}

/// Whether `p` has an API key set a password, which no key may do.
fn key_sets_password(caller: &str, p: &Probe) -> bool {
    caller.ends_with("(API key)") && p.template == USER_PASSWORD
}

#[tokio::test]
async fn no_caller_reaches_an_account_outside_its_scope_on_any_account_route() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    // Every account holds an API key and a live session to aim at.
    let mut keys: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut sessions: BTreeMap<String, String> = BTreeMap::new();
    for (name, m) in &w.accounts {
        keys.insert(name.clone(), new_api_key(&srv, &m.token).await);
        let live = session_ids(&srv, &admin, &m.id).await;
        sessions.insert(name.clone(), live[0].clone());
    }
    let reseller1_key = keys["reseller1"].1.clone();
    let callers: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "reseller1",
            w.token("reseller1").into(),
            vec!["reseller2", "merchant2a", "user2a", "admin"],
        ),
        (
            "reseller1 (API key)",
            reseller1_key,
            vec!["reseller2", "merchant2a", "user2a", "admin"],
        ),
        (
            "reseller2",
            w.token("reseller2").into(),
            vec!["reseller1", "merchant1a", "merchant1b", "user1a"],
        ),
        (
            "merchant1a",
            w.token("merchant1a").into(),
            vec!["merchant1b", "reseller1", "merchant2a", "user2a", "admin"],
        ),
        (
            "user1a",
            w.token("user1a").into(),
            vec!["merchant1a", "reseller1", "user2a", "admin"],
        ),
    ];
    for (caller, token, targets) in &callers {
        for target in targets {
            let m = w.get(target);
            for (p, _) in account_routes(&m.id, &sessions[*target], &keys[*target].0) {
                let r = run(&srv, token, &p).await;
                // An API key sets no password, whoever's: refused before
                // any lookup, so the 403 confirms nothing.
                let (want, body) = if key_sets_password(caller, &p) {
                    (StatusCode::FORBIDDEN, json!({ "error": "Forbidden" }))
                } else {
                    (StatusCode::NOT_FOUND, not_found("User"))
                };
                assert_eq!(
                    r.status,
                    want,
                    "{caller} {} {} ({target}): {}",
                    p.method,
                    p.template,
                    r.text()
                );
                assert_eq!(r.json(), body, "{caller} {} {}", p.method, p.template);
            }
        }
    }
    // Nothing happened to any of them.
    let targets: BTreeSet<&str> = callers.iter().flat_map(|c| c.2.iter().copied()).collect();
    for target in targets {
        let m = w.get(target);
        assert_eq!(me(&srv, &m.token).await, StatusCode::OK, "{target}'s token");
        assert_eq!(
            me(&srv, &keys[target].1).await,
            StatusCode::OK,
            "{target}'s key"
        );
        let view = get_json(&srv, &admin, &fill(USER, &[&m.id])).await;
        assert_eq!(view["attributes"], json!({}), "{target}");
        assert_eq!(view["disabled"], false, "{target}");
        assert!(
            session_ids(&srv, &admin, &m.id)
                .await
                .contains(&sessions[target])
        );
        let password = if target == "admin" {
            ADMIN_PASSWORD
        } else {
            WORLD_PASSWORD
        };
        assert_eq!(
            try_login(&srv, target, password).await.status,
            StatusCode::OK,
            "{target}"
        );
    }

    // The same routes work for a caller whose scope covers the account.
    for (caller, token, target) in [
        ("reseller2", w.token("reseller2").to_string(), "user2a"),
        ("merchant1a", w.token("merchant1a").to_string(), "user1a"),
        (
            "reseller1 (API key)",
            keys["reseller1"].1.clone(),
            "merchant1b",
        ),
    ] {
        let m = w.get(target);
        for (p, want) in account_routes(&m.id, &sessions[target], &keys[target].0) {
            let want = if key_sets_password(caller, &p) {
                StatusCode::FORBIDDEN
            } else {
                want
            };
            let r = run(&srv, &token, &p).await;
            assert_eq!(
                r.status,
                want,
                "{caller} {} {} ({target}): {}",
                p.method,
                p.template,
                r.text()
            );
        }
        check(
            &srv,
            &admin,
            Method::GET,
            &fill(USER, &[&m.id]),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
}

/// Ids the tenant table aims at.
struct Targets {
    user1a: String,
    s2s_res1: String,
    s2s_res2: String,
}

struct Row {
    who: &'static str,
    probe: Probe,
    want: u16,
}

/// Every tenant, role, S2S, audit and account-list route, called from
/// inside and outside the caller's scope. Rows run in order.
fn tenant_rows(t: &Targets) -> Vec<Row> {
    use Method as M;
    let row = |who, method, template, args: &[&str], body: Option<Value>, want| Row {
        who,
        probe: probe(method, template, args, body),
        want,
    };
    let name = |n: &str| Some(json!({ "name": n }));
    let new = |n: &str, role: &str, r: Option<&str>, m: Option<&str>| Some(person(n, role, r, m));
    let u = t.user1a.as_str();
    let (s1, s2) = (t.s2s_res1.as_str(), t.s2s_res2.as_str());
    vec![
        // Resellers: another's is not found; one's own is seen, but only
        // the admin changes resellers.
        row("reseller1", M::GET, RESELLER, &["res_2"], None, 404),
        row("reseller1_key", M::GET, RESELLER, &["res_2"], None, 404),
        row("r1_s2s", M::GET, RESELLER, &["res_2"], None, 404),
        row("reseller2", M::GET, RESELLER, &["res_2"], None, 200),
        row("reseller1", M::GET, RESELLER, &["res_1"], None, 200),
        row("merchant1a", M::GET, RESELLER, &["res_1"], None, 404),
        row("user1a", M::GET, RESELLER, &["res_1"], None, 404),
        row(
            "reseller1",
            M::PATCH,
            RESELLER,
            &["res_2"],
            name("Taken over"),
            404,
        ),
        row(
            "reseller1",
            M::PATCH,
            RESELLER,
            &["res_1"],
            name("Renamed"),
            403,
        ),
        row(
            "admin",
            M::PATCH,
            RESELLER,
            &["res_2"],
            name("Reseller two"),
            200,
        ),
        row("reseller1", M::DELETE, RESELLER, &["res_2"], None, 404),
        row("reseller2", M::DELETE, RESELLER, &["res_2"], None, 403),
        row("admin", M::DELETE, RESELLER, &["res_2"], None, 409),
        row(
            "reseller1",
            M::POST,
            RESELLERS,
            &[],
            Some(json!({ "id": "res_9", "name": "Mine" })),
            403,
        ),
        row(
            "merchant1a",
            M::POST,
            RESELLERS,
            &[],
            Some(json!({ "id": "res_9", "name": "Mine" })),
            403,
        ),
        row(
            "user1a",
            M::POST,
            RESELLERS,
            &[],
            Some(json!({ "id": "res_9", "name": "Mine" })),
            403,
        ),
        row(
            "admin",
            M::POST,
            RESELLERS,
            &[],
            Some(json!({ "id": "res_3", "name": "Three" })),
            201,
        ),
        row("merchant1a", M::GET, RESELLERS, &[], None, 403),
        row("user1a", M::GET, RESELLERS, &[], None, 403),
        row("reseller1", M::GET, RESELLERS, &[], None, 200),
        // Merchants.
        row("reseller1", M::GET, MERCHANT, &["mer_2a"], None, 404),
        row("reseller1_key", M::GET, MERCHANT, &["mer_2a"], None, 404),
        row("r1_s2s", M::GET, MERCHANT, &["mer_2a"], None, 404),
        row("reseller2", M::GET, MERCHANT, &["mer_2a"], None, 200),
        row("merchant1a", M::GET, MERCHANT, &["mer_1b"], None, 404),
        row("merchant1a", M::GET, MERCHANT, &["mer_1a"], None, 200),
        row("user1a", M::GET, MERCHANT, &["mer_1a"], None, 404),
        row("reseller1", M::GET, MERCHANT, &["mer_1b"], None, 200),
        row(
            "reseller1",
            M::PATCH,
            MERCHANT,
            &["mer_2a"],
            name("Taken over"),
            404,
        ),
        row(
            "merchant1a",
            M::PATCH,
            MERCHANT,
            &["mer_1b"],
            name("Taken over"),
            404,
        ),
        row(
            "merchant1a",
            M::PATCH,
            MERCHANT,
            &["mer_1a"],
            name("Renamed"),
            403,
        ),
        row(
            "reseller2",
            M::PATCH,
            MERCHANT,
            &["mer_2a"],
            name("Merchant two a"),
            200,
        ),
        row(
            "reseller1",
            M::PATCH,
            MERCHANT,
            &["mer_1b"],
            name("Merchant one b"),
            200,
        ),
        row("reseller1", M::DELETE, MERCHANT, &["mer_2b"], None, 404),
        row("merchant1a", M::DELETE, MERCHANT, &["mer_1b"], None, 404),
        row("merchant1a", M::DELETE, MERCHANT, &["mer_1a"], None, 403),
        row("user1a", M::DELETE, MERCHANT, &["mer_1a"], None, 404),
        row("reseller2", M::GET, MERCHANT, &["mer_2b"], None, 200),
        row("reseller2", M::DELETE, MERCHANT, &["mer_2b"], None, 204),
        row("reseller2", M::GET, MERCHANT, &["mer_2b"], None, 404),
        row(
            "reseller1",
            M::POST,
            MERCHANTS,
            &[],
            Some(json!({ "id": "mer_x", "reseller_id": "res_2", "name": "x" })),
            403,
        ),
        row(
            "merchant1a",
            M::POST,
            MERCHANTS,
            &[],
            Some(json!({ "id": "mer_y", "name": "y" })),
            403,
        ),
        row(
            "user1a",
            M::POST,
            MERCHANTS,
            &[],
            Some(json!({ "id": "mer_z", "name": "z" })),
            403,
        ),
        row(
            "reseller1",
            M::POST,
            MERCHANTS,
            &[],
            Some(json!({ "id": "mer_1c", "name": "c" })),
            201,
        ),
        row(
            "reseller2",
            M::POST,
            MERCHANTS,
            &[],
            Some(json!({ "id": "mer_2c", "reseller_id": "res_2", "name": "c" })),
            201,
        ),
        row("user1a", M::GET, MERCHANTS, &[], None, 403),
        row("merchant1a", M::GET, MERCHANTS, &[], None, 200),
        // Accounts outside the caller's tenant, or stronger than it.
        row(
            "reseller1",
            M::POST,
            USERS,
            &[],
            new("evil1", "user", Some("res_2"), Some("mer_2a")),
            403,
        ),
        row(
            "reseller1",
            M::POST,
            USERS,
            &[],
            new("evil2", "reseller", Some("res_2"), None),
            403,
        ),
        row(
            "reseller1",
            M::POST,
            USERS,
            &[],
            new("evil3", "admin", None, None),
            403,
        ),
        row(
            "reseller1",
            M::POST,
            USERS,
            &[],
            new("evil4", "user", None, Some("mer_2a")),
            422,
        ),
        row(
            "reseller1_key",
            M::POST,
            USERS,
            &[],
            new("evil5", "user", Some("res_2"), Some("mer_2a")),
            403,
        ),
        row(
            "merchant1a",
            M::POST,
            USERS,
            &[],
            new("evil6", "user", None, Some("mer_1b")),
            403,
        ),
        row(
            "merchant1a",
            M::POST,
            USERS,
            &[],
            new("evil7", "reseller", Some("res_1"), None),
            403,
        ),
        row(
            "user1a",
            M::POST,
            USERS,
            &[],
            new("evil8", "user", None, Some("mer_1a")),
            403,
        ),
        row(
            "reseller1",
            M::POST,
            USERS,
            &[],
            new("helper1", "user", None, Some("mer_1a")),
            201,
        ),
        row(
            "merchant1a",
            M::POST,
            USERS,
            &[],
            new("helper2", "user", None, None),
            201,
        ),
        row(
            "admin",
            M::POST,
            USERS,
            &[],
            new("admin2", "admin", None, None),
            201,
        ),
        row(
            "reseller1",
            M::PATCH,
            USER,
            &[u],
            Some(json!({ "roles": ["admin"] })),
            403,
        ),
        row(
            "reseller1",
            M::PATCH,
            USER,
            &[u],
            Some(json!({ "reseller_id": "res_2", "merchant_id": "mer_2a" })),
            403,
        ),
        row(
            "merchant1a",
            M::PATCH,
            USER,
            &[u],
            Some(json!({ "merchant_id": "mer_1b" })),
            403,
        ),
        row(
            "merchant1a",
            M::PATCH,
            USER,
            &[u],
            Some(json!({ "roles": ["reseller"] })),
            403,
        ),
        row(
            "user1a",
            M::PATCH,
            USER,
            &[u],
            Some(json!({ "roles": ["admin"] })),
            403,
        ),
        row("user1a", M::GET, USER, &[u], None, 200),
        row("user1a", M::GET, USERS, &[], None, 403),
        row("reseller1", M::GET, USERS, &[], None, 200),
        // Roles: managers read them, only the admin changes them.
        row("user1a", M::GET, ROLES, &[], None, 403),
        row("reseller1", M::GET, ROLES, &[], None, 200),
        row("merchant1a", M::GET, ROLES, &[], None, 200),
        row("reseller1", M::POST, ROLES, &[], name("Customer"), 403),
        row("merchant1a", M::POST, ROLES, &[], name("Customer"), 403),
        row("admin", M::POST, ROLES, &[], name("Customer"), 201),
        row("reseller1", M::DELETE, ROLE, &["Customer"], None, 403),
        row("admin", M::DELETE, ROLE, &["Customer"], None, 204),
        // S2S tokens.
        row("user1a", M::GET, S2S_TOKENS, &[], None, 403),
        row("reseller1", M::GET, S2S_TOKENS, &[], None, 200),
        row("reseller1", M::DELETE, S2S_TOKEN, &[s2], None, 404),
        row("reseller1_key", M::DELETE, S2S_TOKEN, &[s2], None, 404),
        row("r1_s2s", M::DELETE, S2S_TOKEN, &[s2], None, 404),
        row("merchant1a", M::DELETE, S2S_TOKEN, &[s2], None, 404),
        row("merchant1a", M::DELETE, S2S_TOKEN, &[s1], None, 404),
        row("user1a", M::DELETE, S2S_TOKEN, &[s2], None, 403),
        row("reseller2", M::DELETE, S2S_TOKEN, &[s2], None, 204),
        // The audit log answers everyone; what it shows is checked in
        // `lists_and_the_audit_log_show_only_the_callers_tenant`.
        row("reseller1", M::GET, AUDIT, &[], None, 200),
        row("merchant1a", M::GET, AUDIT, &[], None, 200),
        row("user1a", M::GET, AUDIT, &[], None, 200),
    ]
}

#[test]
fn isolation_tables_cover_every_admin_route() {
    let dummy = "00000000-0000-4000-8000-000000000000";
    let mut covered: BTreeSet<(String, &str)> = account_routes(dummy, dummy, "key_x")
        .into_iter()
        .map(|(p, _)| (p.method.to_string(), p.template))
        .collect();
    let targets = Targets {
        user1a: dummy.into(),
        s2s_res1: "a".into(),
        s2s_res2: "b".into(),
    };
    covered.extend(
        tenant_rows(&targets)
            .into_iter()
            .map(|r| (r.probe.method.to_string(), r.probe.template)),
    );
    for route in latchkey::api::admin::routes() {
        assert!(
            covered.contains(&(route.method.to_string(), route.path)),
            "{} {} has no isolation probe",
            route.method,
            route.path
        );
    }
}

#[tokio::test]
async fn tenant_roles_s2s_and_audit_routes_reach_only_the_callers_scope() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let (s2s_res1, r1_s2s) = issue_s2s(&srv, &admin, "r1-feed", "reseller", "res_1", None).await;
    let (s2s_res2, r2_s2s) =
        issue_s2s(&srv, &admin, "r2-feed", "merchant", "res_2", Some("mer_2a")).await;
    let mut tokens: BTreeMap<&str, String> = w
        .accounts
        .iter()
        .map(|(k, m)| (k.as_str(), m.token.clone()))
        .collect();
    tokens.insert(
        "reseller1_key",
        new_api_key(&srv, w.token("reseller1")).await.1,
    );
    tokens.insert("r1_s2s", r1_s2s);
    let user1a = w.get("user1a");
    let rows = tenant_rows(&Targets {
        user1a: user1a.id.clone(),
        s2s_res1,
        s2s_res2,
    });
    for Row { who, probe, want } in &rows {
        let r = run(&srv, &tokens[who], probe).await;
        assert_eq!(
            r.status.as_u16(),
            *want,
            "{who} {} {}: {}",
            probe.method,
            probe.path,
            r.text()
        );
        if *want == 404 {
            // Never more than "not found".
            let b = r.json();
            assert_eq!(b.as_object().map(|o| o.len()), Some(1), "{b}");
            assert!(
                b["error"]
                    .as_str()
                    .is_some_and(|e| e.ends_with("not found")),
                "{b}"
            );
        }
    }

    // The refused changes left no trace.
    let view = get_json(&srv, &admin, &fill(USER, &[&user1a.id])).await;
    assert_eq!(view["roles"], json!(["user"]));
    assert_eq!(
        (view["reseller_id"].as_str(), view["merchant_id"].as_str()),
        (Some("res_1"), Some("mer_1a"))
    );
    assert_eq!(me(&srv, &user1a.token).await, StatusCode::OK);
    let names = set(&walk(&srv, &admin, USERS, 1000).await, "username");
    assert!(names.iter().all(|n| !n.starts_with("evil")), "{names:?}");
    assert!(names.contains("helper1") && names.contains("helper2") && names.contains("admin2"));
    let helper2 = walk(&srv, &admin, &format!("{USERS}?q=helper2"), 10).await;
    assert_eq!(
        helper2[0]["merchant_id"], "mer_1a",
        "a merchant's account lands in its merchant"
    );
    for (id, name) in [("res_1", "Reseller res_1"), ("res_2", "Reseller two")] {
        assert_eq!(
            get_json(&srv, &admin, &fill(RESELLER, &[id])).await["name"],
            name
        );
    }
    assert_eq!(
        get_json(&srv, &admin, &fill(MERCHANT, &["mer_1a"])).await["name"],
        "Merchant mer_1a"
    );
    assert!(set(&walk(&srv, &admin, RESELLERS, 1000).await, "id").is_disjoint(&strings(["res_9"])));
    let merchants = set(&walk(&srv, &admin, MERCHANTS, 1000).await, "id");
    assert_eq!(
        merchants,
        strings(["mer_1a", "mer_1b", "mer_1c", "mer_2a", "mer_2c"])
    );
    assert_eq!(
        get_json(&srv, &admin, &fill(MERCHANT, &["mer_1c"])).await["reseller_id"],
        "res_1"
    );
    // The revoked S2S token is refused at once; the other still works.
    assert_eq!(me(&srv, &r2_s2s).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &tokens["r1_s2s"]).await, StatusCode::OK);
}

#[tokio::test]
async fn lists_and_the_audit_log_show_only_the_callers_tenant() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    issue_s2s(&srv, admin, "r1-feed", "reseller", "res_1", None).await;
    issue_s2s(&srv, admin, "m1a-feed", "merchant", "res_1", Some("mer_1a")).await;
    issue_s2s(&srv, admin, "r2-feed", "merchant", "res_2", Some("mer_2a")).await;
    let usernames = |items: Vec<Value>| set(&items, "username");

    // Accounts.
    for (who, query, want) in [
        (
            "reseller1",
            "",
            vec!["reseller1", "merchant1a", "merchant1b", "user1a"],
        ),
        (
            "reseller1",
            "?reseller_id=res_1",
            vec!["reseller1", "merchant1a", "merchant1b", "user1a"],
        ),
        ("reseller1", "?merchant_id=mer_1b", vec!["merchant1b"]),
        ("reseller2", "", vec!["reseller2", "merchant2a", "user2a"]),
        ("merchant1a", "", vec!["merchant1a", "user1a"]),
        (
            "merchant1a",
            "?reseller_id=res_1",
            vec!["merchant1a", "user1a"],
        ),
        (
            "admin",
            "?reseller_id=res_2",
            vec!["reseller2", "merchant2a", "user2a"],
        ),
        ("admin", "?merchant_id=mer_1b", vec!["merchant1b"]),
    ] {
        let items = walk(&srv, w.token(who), &format!("{USERS}{query}"), 2).await;
        items.iter().for_each(assert_account_shape);
        assert_eq!(usernames(items), strings(want), "{who} {query}");
    }
    for (who, query) in [
        ("reseller1", "?reseller_id=res_2"),
        ("reseller1", "?merchant_id=mer_2a"),
        ("reseller1", "?role=admin"),
        ("merchant1a", "?merchant_id=mer_1b"),
        ("merchant1a", "?reseller_id=res_2"),
        ("merchant1a", "?role=reseller"),
        ("reseller2", "?merchant_id=mer_1a"),
    ] {
        let r = send(
            &srv,
            Some(w.token(who)),
            Method::GET,
            &format!("{USERS}{query}"),
            None,
        )
        .await;
        let empty = r.status == StatusCode::OK && r.json()["items"] == json!([]);
        assert!(
            r.status == StatusCode::FORBIDDEN || empty,
            "{who} {query}: {} {}",
            r.status,
            r.text()
        );
    }
    // An unseen merchant reads exactly like one that does not exist.
    let unseen = send(
        &srv,
        Some(w.token("reseller1")),
        Method::POST,
        USERS,
        Some(&person("probe", "user", None, Some("mer_2a"))),
    )
    .await;
    let unknown = send(
        &srv,
        Some(w.token("reseller1")),
        Method::POST,
        USERS,
        Some(&person("probe", "user", None, Some("mer_nope"))),
    )
    .await;
    assert_eq!(unseen.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (unseen.status, unseen.json()),
        (unknown.status, unknown.json())
    );

    // Merchants and resellers.
    for (who, query, want) in [
        ("reseller1", "", vec!["mer_1a", "mer_1b"]),
        ("merchant1a", "", vec!["mer_1a"]),
        ("reseller2", "", vec!["mer_2a", "mer_2b"]),
        ("admin", "?reseller_id=res_2", vec!["mer_2a", "mer_2b"]),
    ] {
        let items = walk(&srv, w.token(who), &format!("{MERCHANTS}{query}"), 1).await;
        assert_eq!(set(&items, "id"), strings(want), "{who} {query}");
    }
    let r = send(
        &srv,
        Some(w.token("reseller1")),
        Method::GET,
        &format!("{MERCHANTS}?reseller_id=res_2"),
        None,
    )
    .await;
    assert!(
        r.status == StatusCode::FORBIDDEN
            || (r.status == StatusCode::OK && r.json()["items"] == json!([])),
        "{}",
        r.text()
    );
    for (who, want) in [
        ("reseller1", vec!["res_1"]),
        ("reseller2", vec!["res_2"]),
        ("admin", vec!["res_1", "res_2"]),
    ] {
        let items = walk(&srv, w.token(who), RESELLERS, 1).await;
        assert_eq!(set(&items, "id"), strings(want), "{who}");
    }

    // S2S tokens.
    for (who, want) in [
        ("reseller1", vec!["r1-feed", "m1a-feed"]),
        ("merchant1a", vec!["m1a-feed"]),
        ("reseller2", vec!["r2-feed"]),
        ("admin", vec!["r1-feed", "m1a-feed", "r2-feed"]),
    ] {
        let items = walk(&srv, w.token(who), S2S_TOKENS, 1).await;
        items.iter().for_each(assert_no_secrets);
        assert_eq!(set(&items, "name"), strings(want), "{who}");
    }

    // Some more activity on both sides before reading the log.
    check(
        &srv,
        w.token("reseller2"),
        Method::POST,
        MERCHANTS,
        Some(json!({ "id": "mer_2c", "name": "c" })),
        StatusCode::CREATED,
    )
    .await;
    create_user(
        &srv,
        w.token("merchant2a"),
        person("shopper2", "user", None, None),
    )
    .await;
    create_user(
        &srv,
        w.token("merchant1a"),
        person("shopper1", "user", None, None),
    )
    .await;
    assert_eq!(
        try_login(&srv, "user2a", "wrong password").await.status,
        StatusCode::UNAUTHORIZED
    );
    for path in [USER_DISABLE, USER_ENABLE] {
        check(
            &srv,
            admin,
            Method::POST,
            &fill(path, &[&w.get("user2a").id]),
            None,
            StatusCode::OK,
        )
        .await;
        check(
            &srv,
            admin,
            Method::POST,
            &fill(path, &[&w.get("user1a").id]),
            None,
            StatusCode::OK,
        )
        .await;
    }

    let everything = walk(&srv, admin, AUDIT, 1000).await;
    let tenants = set(&everything, "reseller_id");
    assert!(
        tenants.contains("res_1") && tenants.contains("res_2"),
        "{tenants:?}"
    );
    let mentions = |e: &Value, words: &[String]| {
        let text = e.to_string();
        words
            .iter()
            .find(|word| text.contains(word.as_str()))
            .cloned()
    };
    let of = |names: &[&str], extra: &[&str]| -> Vec<String> {
        names
            .iter()
            .flat_map(|n| [n.to_string(), w.get(n).id.clone()])
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let res2_things = of(
        &["reseller2", "merchant2a", "user2a"],
        &["res_2", "mer_2a", "mer_2b", "mer_2c", "shopper2", "r2-feed"],
    );
    let res1_things = of(
        &["reseller1", "merchant1a", "merchant1b", "user1a"],
        &["res_1", "mer_1a", "mer_1b", "shopper1", "r1-feed"],
    );
    let mer1b_things = of(&["merchant1b", "reseller1"], &["mer_1b", "r1-feed"]);

    // (caller, which events of its tenant it must see exactly, the accounts
    // above it whose events it never sees (issue 9, item 11), what it must
    // never see)
    type Keep = fn(&Value) -> bool;
    let admin_id = w.get("admin").id.clone();
    let reseller1_id = w.get("reseller1").id.clone();
    let cases: [(&str, Keep, Vec<String>, Vec<String>); 3] = [
        (
            "reseller1",
            |e| e["reseller_id"] == "res_1",
            vec![admin_id.clone()],
            res2_things.clone(),
        ),
        (
            "reseller2",
            |e| e["reseller_id"] == "res_2",
            vec![admin_id.clone()],
            res1_things,
        ),
        (
            "merchant1a",
            |e| e["merchant_id"] == "mer_1a" && e["reseller_id"] == "res_1",
            vec![admin_id.clone(), reseller1_id],
            [res2_things, mer1b_things].concat(),
        ),
    ];
    let names = |e: &Value, ids: &[String]| {
        ids.iter()
            .any(|id| e["actor"] == id.as_str() || e["target"] == id.as_str())
    };
    for (who, keep, above, never) in cases {
        let seen = walk(&srv, w.token(who), AUDIT, 7).await;
        let expected: Vec<Value> = everything
            .iter()
            .filter(|e| keep(e) && !names(e, &above))
            .cloned()
            .collect();
        assert!(!seen.is_empty(), "{who} sees nothing");
        assert_eq!(seen, expected, "{who} sees exactly its tenant's events");
        for e in &seen {
            assert_eq!(mentions(e, &never), None, "{who} sees {e}");
        }
        let events = set(&seen, "event");
        for event in ["account_created", "login"] {
            assert!(events.contains(event), "{who} misses {event}: {events:?}");
        }
    }
    for (who, query) in [
        ("reseller1", "reseller_id=res_2"),
        ("reseller1", "merchant_id=mer_2a"),
        ("merchant1a", "merchant_id=mer_1b"),
    ] {
        let r = send(
            &srv,
            Some(w.token(who)),
            Method::GET,
            &format!("{AUDIT}?{query}"),
            None,
        )
        .await;
        let empty = r.status == StatusCode::OK && r.json()["items"] == json!([]);
        assert!(
            r.status == StatusCode::FORBIDDEN || empty,
            "{who} {query}: {}",
            r.text()
        );
    }
    // A plain user sees what it did and what was done to it. (Its old
    // token went with the disabling.)
    let user1a = &w.get("user1a").id;
    assert_eq!(me(&srv, w.token("user1a")).await, StatusCode::UNAUTHORIZED);
    let token = token_of(&srv.login("user1a", WORLD_PASSWORD).await);
    let own = walk(&srv, &token, AUDIT, 1000).await;
    assert!(!own.is_empty());
    for e in &own {
        assert!(
            e["actor"] == user1a.as_str() || e["target"] == user1a.as_str(),
            "user1a sees {e}"
        );
        // What the admin did to it names the admin: not shown.
        assert!(
            !names(e, std::slice::from_ref(&admin_id)),
            "user1a sees {e}"
        );
    }
    assert!(set(&own, "event").contains("login"));
}
