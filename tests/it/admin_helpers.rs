//! Shared by the `admin_*` tests of the admin API under `/api/v1/admin/`:
//! the route templates as src/api/admin.rs spells them, and helpers that
//! make requests, read lists and check shapes.

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

// ---- route templates, spelled as in src/api/admin.rs ----

pub const USER: &str = "/api/v1/admin/users/{id}";
pub const USER_PASSWORD: &str = "/api/v1/admin/users/{id}/password";
pub const USER_DISABLE: &str = "/api/v1/admin/users/{id}/disable";
pub const USER_UNLOCK: &str = "/api/v1/admin/users/{id}/unlock";
pub const USER_ENABLE: &str = "/api/v1/admin/users/{id}/enable";
pub const USER_SESSIONS: &str = "/api/v1/admin/users/{id}/sessions";
pub const USER_SESSION: &str = "/api/v1/admin/users/{id}/sessions/{session}";
pub const USER_KEYS: &str = "/api/v1/admin/users/{id}/keys";
pub const USER_KEY: &str = "/api/v1/admin/users/{id}/keys/{keyId}";
pub const RESELLERS: &str = "/api/v1/admin/resellers";
pub const RESELLER: &str = "/api/v1/admin/resellers/{id}";
pub const MERCHANTS: &str = "/api/v1/admin/merchants";
pub const MERCHANT: &str = "/api/v1/admin/merchants/{id}";
pub const ROLES: &str = "/api/v1/admin/roles";
pub const ROLE: &str = "/api/v1/admin/roles/{name}";
pub const S2S_TOKENS: &str = "/api/v1/admin/s2s-tokens";
pub const S2S_TOKEN: &str = "/api/v1/admin/s2s-tokens/{id}";
pub const AUDIT: &str = "/api/v1/admin/audit";

// ---- helpers ----

/// Fills a route template's `{...}` segments with `args`, in order.
pub fn fill(template: &str, args: &[&str]) -> String {
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
pub struct Probe {
    pub method: Method,
    pub template: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

pub fn probe(method: Method, template: &'static str, args: &[&str], body: Option<Value>) -> Probe {
    Probe {
        path: fill(template, args),
        method,
        template,
        body,
    }
}

pub async fn send(
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

pub async fn run(srv: &Server, token: &str, p: &Probe) -> Resp {
    send(srv, Some(token), p.method.clone(), &p.path, p.body.as_ref()).await
}

/// Sends and asserts the status.
pub async fn check(
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

pub async fn get_json(srv: &Server, token: &str, path: &str) -> Value {
    srv.get_as(token, path).await.assert(StatusCode::OK).json()
}

/// Creates an account (201 expected) and returns its view.
pub async fn create_user(srv: &Server, token: &str, body: Value) -> Value {
    srv.post_as(token, USERS, &body)
        .await
        .assert(StatusCode::CREATED)
        .json()
}

pub fn id_of(v: &Value) -> String {
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
pub async fn me(srv: &Server, token: &str) -> StatusCode {
    let status = srv.me(token).await.status;
    let admin = srv.get_as(token, &format!("{AUDIT}?limit=1")).await;
    assert_eq!(
        admin.status,
        status,
        "/auth/me and the admin API disagree about a credential: {}",
        admin.text()
    );
    status
}

pub async fn me_json(srv: &Server, token: &str) -> Value {
    let r = srv.me(token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

pub async fn login_with_agent(srv: &Server, username: &str, password: &str, agent: &str) -> Value {
    let r = srv
        .post("/api/v1/auth/login")
        .header("user-agent", agent)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

pub async fn refresh_status(srv: &Server, refresh_token: &Value) -> StatusCode {
    srv.post("/api/v1/auth/refresh")
        .json(&json!({ "refreshToken": refresh_token }))
        .send()
        .await
        .status
}

pub fn token_of(login: &Value) -> String {
    login["token"].as_str().expect("token").to_string()
}

/// Makes an API key for the credential's account: (key id, secret).
pub async fn new_api_key(srv: &Server, token: &str) -> (String, String) {
    let r = srv.post("/api/v1/auth/keys").bearer(token).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let b = r.json();
    (
        b["keyId"].as_str().expect("keyId").to_string(),
        b["apiKey"].as_str().expect("apiKey").to_string(),
    )
}

/// Issues an S2S token as `token`: (token id, secret).
pub async fn issue_s2s(
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
pub async fn walk(srv: &Server, token: &str, path: &str, limit: usize) -> Vec<Value> {
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
pub fn column(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| match &i[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

pub fn set(items: &[Value], key: &str) -> BTreeSet<String> {
    column(items, key).into_iter().collect()
}

pub fn strings<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    names.into_iter().map(|s| s.as_ref().to_string()).collect()
}

/// No field that looks like a secret, and no argon2 hash anywhere.
pub fn assert_no_secrets(v: &Value) {
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

pub fn assert_account_shape(v: &Value) {
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
pub async fn session_ids(srv: &Server, admin: &str, account: &str) -> Vec<String> {
    let list = get_json(srv, admin, &fill(USER_SESSIONS, &[account])).await;
    column(list["items"].as_array().expect("items"), "id")
}

/// Every audit event the caller sees through this query.
pub async fn audit_where(srv: &Server, token: &str, query: &str) -> Vec<Value> {
    walk(srv, token, &format!("{AUDIT}?{query}"), 1000).await
}

/// The newest audit event the caller can see.
pub async fn latest_event(srv: &Server, token: &str) -> Value {
    let page = get_json(srv, token, &format!("{AUDIT}?limit=1")).await;
    page["items"][0].clone()
}

pub fn not_found(what: &str) -> Value {
    json!({ "error": format!("{what} not found") })
}

/// Creates a reseller or merchant (201 expected) and returns its id.
pub async fn create_tenant(srv: &Server, token: &str, list: &str, body: Value) -> String {
    id_of(
        &srv.post_as(token, list, &body)
            .await
            .assert(StatusCode::CREATED)
            .json(),
    )
}

pub fn merged(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in changes.as_object().expect("changes are an object") {
        out[k] = v.clone();
    }
    out
}
