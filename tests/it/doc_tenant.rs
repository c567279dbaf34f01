//! `tenant-login-and-s2s.txt`, as a client reads it: `POST /login` with
//! the document's own request body, the documented response fields, the
//! JWT used as `Authorization: Bearer` on `POST /s2s-token` with the
//! document's own S2S request, and every error the document names, each as
//! `{"detail": ...}`. Accounts and tenants, which the document does not
//! cover, are set up through the admin API.

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

/// The document's login request, verbatim.
const DOC_LOGIN: &str = r#"{
  "email": "user@example.com",
  "password": "your-password"
}"#;

/// The document's S2S request, verbatim.
const DOC_S2S: &str = r#"{
  "name": "my-backend-integration",
  "role": "merchant",
  "reseller_id": "res_001",
  "merchant_id": "mer_abc"
}"#;

/// The password of every account set up here (the document's).
const PASSWORD: &str = "your-password";

/// One account set up under the document's tenants.
struct Account {
    username: &'static str,
    email: &'static str,
    role: &'static str,
    reseller_id: Option<&'static str>,
    merchant_id: Option<&'static str>,
}

/// The accounts set up under the document's tenants. `user@example.com`
/// is the document's example user exactly (role admin, reseller `res_001`).
const ACCOUNTS: [Account; 4] = [
    Account {
        username: "user",
        email: "user@example.com",
        role: "admin",
        reseller_id: Some("res_001"),
        merchant_id: None,
    },
    Account {
        username: "reseller",
        email: "reseller@example.com",
        role: "reseller",
        reseller_id: Some("res_001"),
        merchant_id: None,
    },
    Account {
        username: "merchant",
        email: "merchant@example.com",
        role: "merchant",
        reseller_id: None,
        merchant_id: Some("mer_abc"),
    },
    Account {
        username: "member",
        email: "member@example.com",
        role: "user",
        reseller_id: None,
        merchant_id: Some("mer_abc"),
    },
];

/// Creates something through the admin API; returns the created record.
async fn admin_create(srv: &Server, admin: &str, path: &str, body: Value) -> Value {
    let r = srv.post(path).bearer(admin).json(&body).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text());
    r.json()
}

/// Reseller `res_001`, merchant `mer_abc` and the [`ACCOUNTS`]; returns
/// the admin's token and each account's id by email.
async fn setup(srv: &Server) -> (String, BTreeMap<&'static str, String>) {
    let admin = srv.admin_token().await;
    admin_create(
        srv,
        &admin,
        "/api/v1/admin/resellers",
        json!({ "id": "res_001", "name": "Reseller 001" }),
    )
    .await;
    admin_create(
        srv,
        &admin,
        "/api/v1/admin/merchants",
        json!({ "id": "mer_abc", "reseller_id": "res_001", "name": "Merchant abc" }),
    )
    .await;
    let mut ids = BTreeMap::new();
    for Account {
        username,
        email,
        role,
        reseller_id,
        merchant_id,
    } in ACCOUNTS
    {
        let created = admin_create(
            srv,
            &admin,
            "/api/v1/admin/users",
            json!({
                "username": username,
                "email": email,
                "password": PASSWORD,
                "roles": [role],
                "reseller_id": reseller_id,
                "merchant_id": merchant_id,
            }),
        )
        .await;
        ids.insert(email, created["id"].as_str().expect("id").to_string());
    }
    (admin, ids)
}

async fn login(srv: &Server, email: &str, password: &str) -> Resp {
    srv.post("/login")
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
}

/// Logs in; returns the access token.
async fn token(srv: &Server, email: &str) -> String {
    let r = login(srv, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{email}: {}", r.text());
    r.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

async fn s2s(srv: &Server, bearer: Option<&str>, body: &Value) -> Resp {
    let mut call = srv.post("/s2s-token");
    if let Some(t) = bearer {
        call = call.bearer(t);
    }
    call.json(body).send().await
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// A documented response: JSON, with exactly these fields.
fn assert_fields(r: &Resp, fields: &[&str]) -> Value {
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(keys(&body), fields.iter().copied().collect(), "{body}");
    body
}

/// An error in the document's style: this status and `{"detail": text}`
/// with a non-empty text. Returns the text.
fn assert_detail(r: &Resp, status: StatusCode) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let body = assert_fields(r, &["detail"]);
    let detail = body["detail"].as_str().expect("detail is a string");
    assert!(!detail.is_empty(), "empty detail");
    detail.to_string()
}

#[tokio::test]
async fn the_documented_login_request_gets_the_documented_response() {
    let srv = Server::start().await;
    let (_, ids) = setup(&srv).await;
    let r = srv.post_body("/login", "application/json", DOC_LOGIN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = assert_fields(&r, &["access_token", "token_type", "user"]);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(
        body["user"],
        json!({
            "id": ids["user@example.com"],
            "email": "user@example.com",
            "role": "admin",
            "reseller_id": "res_001",
        })
    );
    let access = body["access_token"]
        .as_str()
        .expect("access_token is a string");
    assert_jwt(access);

    // The token is what the document says to send as Bearer: the
    // document's own S2S request succeeds with it.
    let r = srv
        .post("/s2s-token")
        .bearer(access)
        .body("application/json", DOC_S2S)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let issued = assert_fields(
        &r,
        &[
            "token",
            "name",
            "role",
            "reseller_id",
            "merchant_id",
            "created_at",
            // Added by latchkey (issue 9, item 9): S2S tokens expire.
            "expires_at",
        ],
    );
    let secret = issued["token"].as_str().expect("token is a string");
    assert!(
        secret.starts_with("s2s_") && secret.len() > 4,
        "token: {secret}"
    );
    assert_eq!(issued["name"], "my-backend-integration");
    assert_eq!(issued["role"], "merchant");
    assert_eq!(issued["reseller_id"], "res_001");
    assert_eq!(issued["merchant_id"], "mer_abc");
    assert_eq!(rfc3339_utc(&issued["created_at"]), srv.clock.now());
    assert_eq!(
        rfc3339_utc(&issued["expires_at"]),
        srv.clock.now() + 365 * 24 * 3600
    );
}

#[tokio::test]
async fn every_built_in_role_logs_in_with_its_role_and_reseller() {
    let srv = Server::start().await;
    let (_, ids) = setup(&srv).await;
    for Account { email, role, .. } in ACCOUNTS {
        let r = login(&srv, email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{email}: {}", r.text());
        let body = assert_fields(&r, &["access_token", "token_type", "user"]);
        assert_eq!(body["token_type"], "bearer", "{email}");
        assert_jwt(body["access_token"].as_str().expect("access_token"));
        // Merchants and users sit under their merchant's reseller.
        assert_eq!(
            body["user"],
            json!({ "id": ids[email], "email": email, "role": role, "reseller_id": "res_001" }),
            "{email}"
        );
    }
    // The email the user authenticated with is the one returned, however
    // it was typed.
    let r = login(&srv, "User@Example.COM", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["user"]["id"], ids["user@example.com"]);
}

#[tokio::test]
async fn login_errors_are_422_with_a_detail() {
    let srv = Server::start().await;
    setup(&srv).await;
    let cases: [(&str, Value); 8] = [
        ("missing email", json!({ "password": PASSWORD })),
        ("missing password", json!({ "email": "user@example.com" })),
        ("missing both", json!({})),
        (
            "malformed email",
            json!({ "email": "not-an-email", "password": PASSWORD }),
        ),
        (
            "email not a string",
            json!({ "email": 42, "password": PASSWORD }),
        ),
        (
            "password not a string",
            json!({ "email": "user@example.com", "password": null }),
        ),
        (
            "wrong password",
            json!({ "email": "user@example.com", "password": "wrong-password" }),
        ),
        (
            "unknown email",
            json!({ "email": "nobody@example.com", "password": PASSWORD }),
        ),
    ];
    let mut details = BTreeMap::new();
    for (case, body) in cases {
        let r = srv.post("/login").json(&body).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{case}");
        details.insert(case, assert_detail(&r, StatusCode::UNPROCESSABLE_ENTITY));
    }
    // A wrong password and an unknown email read the same.
    assert_eq!(details["wrong password"], details["unknown email"]);

    // A body that is not JSON at all is malformed too.
    let r = srv
        .post_body("/login", "application/json", "email=user@example.com")
        .await;
    assert_detail(&r, StatusCode::UNPROCESSABLE_ENTITY);

    // 401 is "not thrown by /login itself": a stale Authorization header
    // on a login with the right password changes nothing.
    let r = srv
        .post("/login")
        .bearer("not-a-token")
        .body("application/json", DOC_LOGIN)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn s2s_token_needs_a_live_bearer_token() {
    let srv = Server::start().await;
    setup(&srv).await;
    let doc: Value = serde_json::from_str(DOC_S2S).expect("document JSON");

    assert_detail(&s2s(&srv, None, &doc).await, StatusCode::UNAUTHORIZED);
    assert_detail(
        &s2s(&srv, Some("not-a-token"), &doc).await,
        StatusCode::UNAUTHORIZED,
    );

    // Access tokens are short-lived: sixteen minutes on, it has expired.
    let access = token(&srv, "user@example.com").await;
    srv.advance(16 * 60);
    assert_detail(
        &s2s(&srv, Some(&access), &doc).await,
        StatusCode::UNAUTHORIZED,
    );
    // "Call /login again to issue a new one."
    let fresh = token(&srv, "user@example.com").await;
    let r = s2s(&srv, Some(&fresh), &doc).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn s2s_token_refusals_are_403_and_422_with_a_detail() {
    let srv = Server::start().await;
    setup(&srv).await;
    let mut tokens = BTreeMap::new();
    for Account { email, .. } in ACCOUNTS {
        tokens.insert(email, token(&srv, email).await);
    }
    let cases: [(&str, &str, Value, StatusCode); 8] = [
        (
            "a merchant asks for a reseller token",
            "merchant@example.com",
            json!({ "name": "n", "role": "reseller", "reseller_id": "res_001" }),
            StatusCode::FORBIDDEN,
        ),
        (
            "a user asks for a user token",
            "member@example.com",
            json!({ "name": "n", "role": "user", "reseller_id": "res_001", "merchant_id": "mer_abc" }),
            StatusCode::FORBIDDEN,
        ),
        (
            "a merchant token without merchant_id",
            "user@example.com",
            json!({ "name": "n", "role": "merchant", "reseller_id": "res_001" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a user token without merchant_id",
            "reseller@example.com",
            json!({ "name": "n", "role": "user", "reseller_id": "res_001" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "an unknown reseller_id",
            "user@example.com",
            json!({ "name": "n", "role": "reseller", "reseller_id": "res_999" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // Controls: the same callers at a scope they may issue at.
        (
            "a merchant asks for a merchant token for its merchant",
            "merchant@example.com",
            json!({ "name": "n", "role": "merchant", "reseller_id": "res_001", "merchant_id": "mer_abc" }),
            StatusCode::OK,
        ),
        (
            "a reseller asks for a user token with merchant_id",
            "reseller@example.com",
            json!({ "name": "n", "role": "user", "reseller_id": "res_001", "merchant_id": "mer_abc" }),
            StatusCode::OK,
        ),
        (
            "a reseller token needs no merchant_id",
            "user@example.com",
            json!({ "name": "n", "role": "reseller", "reseller_id": "res_001" }),
            StatusCode::OK,
        ),
    ];
    for (case, caller, body, status) in cases {
        let r = s2s(&srv, Some(&tokens[caller]), &body).await;
        if status == StatusCode::OK {
            assert_eq!(r.status, status, "{case}: {}", r.text());
            let issued = r.json();
            assert!(
                issued["token"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("s2s_")),
                "{case}: {issued}"
            );
            assert_eq!(issued["role"], body["role"], "{case}");
        } else {
            assert_eq!(r.status, status, "{case}: {}", r.text());
            assert_detail(&r, status);
        }
    }
}

#[tokio::test]
async fn a_locked_or_disabled_account_gets_403_with_a_detail() {
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(3),
        ..Default::default()
    })
    .await;
    let (_, ids) = setup(&srv).await;
    for _ in 0..3 {
        let r = login(&srv, "user@example.com", "wrong-password").await;
        assert_detail(&r, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = login(&srv, "user@example.com", PASSWORD).await;
    let detail = assert_detail(&r, StatusCode::FORBIDDEN);
    assert!(detail.to_lowercase().contains("locked"), "{detail}");
    assert_eq!(r.header("retry-after"), Some("1800"));
    // The lock is the account's alone.
    token(&srv, "reseller@example.com").await;
    // And it ends when Retry-After says.
    srv.advance(1799);
    let r = login(&srv, "user@example.com", PASSWORD).await;
    assert_detail(&r, StatusCode::FORBIDDEN);
    assert_eq!(r.header("retry-after"), Some("1"));
    srv.advance(1);
    token(&srv, "user@example.com").await;

    // A disabled account: 403, and nothing to wait for.
    let admin = srv.admin_token().await;
    let disable = format!("/api/v1/admin/users/{}/disable", ids["member@example.com"]);
    srv.act_as(&admin, &disable).await.assert(StatusCode::OK);
    let r = login(&srv, "member@example.com", PASSWORD).await;
    let detail = assert_detail(&r, StatusCode::FORBIDDEN);
    assert!(detail.to_lowercase().contains("disabled"), "{detail}");
    assert_eq!(r.header("retry-after"), None);
}

#[tokio::test]
async fn too_many_login_attempts_get_429_with_retry_after() {
    let srv = Server::start_with(limits(3, 1000)).await;
    for _ in 0..3 {
        let r = login(&srv, ADMIN_EMAIL, "wrong-password").await;
        assert_detail(&r, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Over the limit even the right password is turned away.
    let r = login(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({ "detail": "Too many login attempts. Please try again later." })
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Whole seconds: three a minute is one every twenty.
    assert_eq!(r.header("retry-after"), Some("20"));
    srv.advance(20);
    let r = login(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
