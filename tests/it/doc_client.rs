//! `client-login-refresh.txt`, as a client reads it: `POST /auth/login`
//! with the document's fields, its 400 / 401 / 429 bodies exactly, its own
//! curl and PHP examples run as published with the host filled in, and the
//! refresh and logout it tells clients to implement (`POST /auth/refresh`,
//! `POST /auth/logout`). Accounts, which the document does not cover, are
//! set up through the admin API.

use std::collections::BTreeSet;

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

/// The document's curl example, verbatim.
const CURL_EXAMPLE: &str = r#"curl -X POST {{host}}/auth/login \
-H "Content-Type: application/json" \
-d '{
"username": "your_api_username",
"password": "your_api_password"
}'"#;

/// The document's PHP example, verbatim.
const PHP_EXAMPLE: &str = r#"<?php
$data = [
'username' => 'your_api_username',
'password' => 'your_api_password'
];
$ch = curl_init('{{host}}/auth/login');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($data));
curl_setopt($ch, CURLOPT_HTTPHEADER, ['Content-Type: application/json']);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$response = curl_exec($ch);
$data = json_decode($response, true);
$accessToken = $data['access_token'];
curl_close($ch);
?>"#;

/// The line of the PHP example after which the test reads what PHP holds.
const PHP_TOKEN_LINE: &str = "$accessToken = $data['access_token'];\n";

/// The credentials the examples use.
const USERNAME: &str = "your_api_username";
const PASSWORD: &str = "your_api_password";

/// The success fields, as documented.
const TOKEN_FIELDS: [&str; 5] = [
    "access_token",
    "refresh_token",
    "access_expires_at",
    "refresh_expires_at",
    "client_id",
];

fn invalid_credentials() -> Value {
    json!({ "error": "unauthorized", "message": "Invalid credentials" })
}

fn required() -> Value {
    json!({ "error": "validation_error", "message": "Username and password are required" })
}

fn invalid_refresh() -> Value {
    json!({ "error": "unauthorized", "message": "Invalid or expired refresh token" })
}

fn authentication_required() -> Value {
    json!({ "error": "unauthorized", "message": "Authentication required" })
}

fn logged_out() -> Value {
    json!({ "message": "Logged out" })
}

/// Creates the account `username` (password [`PASSWORD`]) through the
/// admin API; returns its `number` as the admin API shows it.
async fn create_account(srv: &Server, username: &str) -> u64 {
    let admin = srv.admin_token().await;
    let id = srv
        .create_account(
            &admin,
            &json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
                "roles": ["user"],
            }),
        )
        .await;
    let r = srv
        .get_as(&admin, &format!("/api/v1/admin/users/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["number"].as_u64().expect("number")
}

async fn login(srv: &Server, username: &str, password: &str) -> Resp {
    srv.post("/auth/login")
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
}

/// Logs in as the examples' account; returns the body.
async fn tokens(srv: &Server) -> Value {
    let r = login(srv, USERNAME, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

async fn refresh(srv: &Server, refresh_token: &str) -> Resp {
    srv.post("/auth/refresh")
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
}

async fn logout_bearer(srv: &Server, access_token: &str) -> Resp {
    srv.post("/auth/logout").bearer(access_token).send().await
}

async fn logout_refresh(srv: &Server, refresh_token: &str) -> Resp {
    srv.post("/auth/logout")
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not a string: {v}"))
}

/// This status and exactly this JSON body.
fn assert_body(r: &Resp, status: StatusCode, body: &Value) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(&r.json(), body);
}

/// A success body as documented: exactly the documented fields, of the
/// documented types; the access token a JWT, expiring `access_ttl` seconds
/// from now; the client id the account's number. Returns the refresh
/// token's expiry (Unix seconds).
fn assert_tokens(srv: &Server, body: &Value, client_id: u64) -> i64 {
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, TOKEN_FIELDS.into_iter().collect(), "{body}");
    assert_jwt(field(body, "access_token"));
    assert!(!field(body, "refresh_token").is_empty());
    assert_ne!(body["access_token"], body["refresh_token"]);
    let now = srv.clock.now();
    assert_eq!(rfc3339_utc(&body["access_expires_at"]) - now, 900);
    let refresh_expires = rfc3339_utc(&body["refresh_expires_at"]);
    assert!(refresh_expires > now + 900, "{body}");
    assert!(body["client_id"].is_u64(), "client_id is a number: {body}");
    assert_eq!(body["client_id"], json!(client_id));
    refresh_expires
}

/// Runs an external program off the server's runtime; returns its stdout.
async fn run(program: &'static str, args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program).args(&args).output()
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The document's curl example with the host filled in, run by the shell
/// exactly as written; returns the response body curl printed.
async fn curl_example(srv: &Server) -> Value {
    let command = CURL_EXAMPLE.replace("{{host}}", &format!("http://{}", srv.addr));
    let out = run("sh", vec!["-c".into(), command]).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("curl printed no JSON ({e}): {out}"))
}

#[tokio::test]
async fn the_documented_curl_example_runs_as_published() {
    let srv = Server::start().await;
    // Before the account exists: the documented 401.
    assert_eq!(curl_example(&srv).await, invalid_credentials());

    let number = create_account(&srv, USERNAME).await;
    let body = curl_example(&srv).await;
    assert_tokens(&srv, &body, number);
    // The access token works as a Bearer token.
    let access = field(&body, "access_token");
    assert_body(
        &logout_bearer(&srv, access).await,
        StatusCode::OK,
        &logged_out(),
    );
}

#[tokio::test]
async fn the_documented_php_example_runs_as_published() {
    let srv = Server::start().await;
    let number = create_account(&srv, USERNAME).await;
    let script = PHP_EXAMPLE.replace("{{host}}", &format!("http://{}", srv.addr));
    assert!(script.contains(PHP_TOKEN_LINE), "the example changed");
    let script = script.replace(
        PHP_TOKEN_LINE,
        &format!(
            "{PHP_TOKEN_LINE}echo json_encode(['data' => $data, 'accessToken' => $accessToken]);\n"
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("example.php");
    std::fs::write(&file, script).expect("write example.php");
    let out = run("php", vec![file.display().to_string()]).await;
    let seen: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("PHP printed no JSON ({e}): {out}"));

    let data = &seen["data"];
    assert_tokens(&srv, data, number);
    assert_eq!(seen["accessToken"], data["access_token"]);
    let access = field(&seen, "accessToken");
    assert_body(
        &logout_bearer(&srv, access).await,
        StatusCode::OK,
        &logged_out(),
    );
}

#[tokio::test]
async fn login_answers_with_the_documented_fields_and_a_working_access_token() {
    let srv = Server::start().await;
    let number = create_account(&srv, USERNAME).await;
    let body = tokens(&srv).await;
    let refresh_expires = assert_tokens(&srv, &body, number);
    // Access for the default fifteen minutes, refresh for seven days.
    assert_eq!(refresh_expires - srv.clock.now(), 7 * 24 * 3600);

    // The access token is accepted as Bearer (logout), then refused.
    let access = field(&body, "access_token");
    assert_body(
        &logout_bearer(&srv, access).await,
        StatusCode::OK,
        &logged_out(),
    );
    assert_body(
        &logout_bearer(&srv, access).await,
        StatusCode::UNAUTHORIZED,
        &authentication_required(),
    );
}

#[tokio::test]
async fn a_request_without_both_credentials_is_a_400_validation_error() {
    let srv = Server::start().await;
    create_account(&srv, USERNAME).await;
    let cases: [(&str, &str); 8] = [
        ("missing username", r#"{"password": "your_api_password"}"#),
        ("missing password", r#"{"username": "your_api_username"}"#),
        ("missing both", "{}"),
        ("empty strings", r#"{"username": "", "password": ""}"#),
        (
            "not strings",
            r#"{"username": 123456, "password": ["your_api_password"]}"#,
        ),
        (
            "not JSON",
            "username=your_api_username&password=your_api_password",
        ),
        ("truncated JSON", r#"{"username": "your_api_username", "#),
        ("empty body", ""),
    ];
    for (case, body) in cases {
        let r = srv.post_body("/auth/login", "application/json", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{case}: {}", r.text());
        assert_body(&r, StatusCode::BAD_REQUEST, &required());
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_username_are_the_same_401() {
    let srv = Server::start().await;
    create_account(&srv, USERNAME).await;
    for (case, username, password) in [
        ("wrong password", USERNAME, "not_the_password"),
        ("unknown username", "someone_else", PASSWORD),
    ] {
        let r = login(&srv, username, password).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{case}");
        assert_body(&r, StatusCode::UNAUTHORIZED, &invalid_credentials());
        assert_eq!(r.header("retry-after"), None, "{case}");
    }
}

#[tokio::test]
async fn too_many_login_attempts_get_the_documented_429() {
    let srv = Server::start_with(limits(3, 1000)).await;
    for i in 0..3 {
        let r = login(&srv, &format!("someone{i}"), "wrong_password").await;
        assert_body(&r, StatusCode::UNAUTHORIZED, &invalid_credentials());
    }
    // Over the per-address limit, even the right password is turned away.
    let r = login(&srv, ADMIN, ADMIN_PASSWORD).await;
    assert_body(
        &r,
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "error": "Too Many Requests",
            "message": "Too many login attempts. Please try again later."
        }),
    );
    // In whole seconds: three a minute is one every twenty.
    assert_eq!(r.header("retry-after"), Some("20"));
    srv.advance(20);
    let r = login(&srv, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_locked_account_gets_403_with_retry_after() {
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(3),
        ..Default::default()
    })
    .await;
    create_account(&srv, USERNAME).await;
    for _ in 0..3 {
        let r = login(&srv, USERNAME, "not_the_password").await;
        assert_body(&r, StatusCode::UNAUTHORIZED, &invalid_credentials());
    }
    let r = login(&srv, USERNAME, PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "forbidden", "{body}");
    assert!(
        field(&body, "message").to_lowercase().contains("locked"),
        "{body}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    assert_eq!(r.header("retry-after"), Some("1800"));
    srv.advance(1800);
    tokens(&srv).await;
}

#[tokio::test]
async fn refresh_rotates_and_the_used_token_is_refused() {
    let srv = Server::start().await;
    let number = create_account(&srv, USERNAME).await;
    let first = tokens(&srv).await;

    // "Set up automatic token refresh before expiration": a minute on.
    srv.advance(60);
    let r = refresh(&srv, field(&first, "refresh_token")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let second = r.json();
    assert_tokens(&srv, &second, number);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);

    // The new refresh token works once more, and each used one is refused.
    let r = refresh(&srv, field(&second, "refresh_token")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for used in [&first, &second] {
        assert_body(
            &refresh(&srv, field(used, "refresh_token")).await,
            StatusCode::UNAUTHORIZED,
            &invalid_refresh(),
        );
    }

    // Garbage, and a missing token.
    for garbage in ["garbage", "lk_rt_garbage", field(&first, "access_token")] {
        assert_body(
            &refresh(&srv, garbage).await,
            StatusCode::UNAUTHORIZED,
            &invalid_refresh(),
        );
    }
    let r = srv.post("/auth/refresh").json(&json!({})).send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json()["error"], "validation_error");
}

#[tokio::test]
async fn an_expired_access_token_is_refused_and_refresh_brings_a_new_one() {
    let srv = Server::start().await;
    let number = create_account(&srv, USERNAME).await;
    let first = tokens(&srv).await;
    srv.advance(16 * 60);
    assert_body(
        &logout_bearer(&srv, field(&first, "access_token")).await,
        StatusCode::UNAUTHORIZED,
        &authentication_required(),
    );
    let r = refresh(&srv, field(&first, "refresh_token")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let second = r.json();
    assert_tokens(&srv, &second, number);
    assert_body(
        &logout_bearer(&srv, field(&second, "access_token")).await,
        StatusCode::OK,
        &logged_out(),
    );
}

#[tokio::test]
async fn logout_by_bearer_or_by_refresh_token_ends_both_tokens() {
    let srv = Server::start().await;
    create_account(&srv, USERNAME).await;
    for by_refresh in [false, true] {
        let t = tokens(&srv).await;
        let (access, refresh_token) = (field(&t, "access_token"), field(&t, "refresh_token"));
        let r = if by_refresh {
            logout_refresh(&srv, refresh_token).await
        } else {
            logout_bearer(&srv, access).await
        };
        assert_body(&r, StatusCode::OK, &logged_out());
        // Neither token works afterwards.
        assert_body(
            &logout_bearer(&srv, access).await,
            StatusCode::UNAUTHORIZED,
            &authentication_required(),
        );
        assert_body(
            &refresh(&srv, refresh_token).await,
            StatusCode::UNAUTHORIZED,
            &invalid_refresh(),
        );
        assert_body(
            &logout_refresh(&srv, refresh_token).await,
            StatusCode::UNAUTHORIZED,
            &authentication_required(),
        );
    }
    // Without any credential, or with a made-up one.
    let r = srv.post("/auth/logout").send().await;
    assert_body(&r, StatusCode::UNAUTHORIZED, &authentication_required());
    assert_body(
        &logout_bearer(&srv, "not-a-token").await,
        StatusCode::UNAUTHORIZED,
        &authentication_required(),
    );
    assert_body(
        &logout_refresh(&srv, "lk_rt_garbage").await,
        StatusCode::UNAUTHORIZED,
        &authentication_required(),
    );
}
