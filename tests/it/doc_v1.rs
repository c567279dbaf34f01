//! `v1-auth-and-keys.txt` as a client of that document sees it: login,
//! refresh and logout with the documented bodies (its JSON examples sent and
//! compared field by field), every documented error word for word, "User
//! not found" never sent, and a brief field-by-field check of the API key
//! routes (tested in depth in `keys.rs`). Protected requests go to the
//! document's own protected routes (`/api/v1/auth/keys`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

const REFRESH: &str = "/api/v1/auth/refresh";
const LOGOUT: &str = "/api/v1/auth/logout";
const KEYS: &str = "/api/v1/auth/keys";

/// The document's examples, as published.
fn login_example() -> Value {
    json!({
        "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        "expires_in": 3600,
        "user": {
            "id": "user_123",
            "username": "jane.doe",
            "email": "jane.doe@example.com"
        }
    })
}

fn refresh_example() -> Value {
    json!({
        "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        "expires_in": 3600
    })
}

fn key_created_example() -> Value {
    json!({
        "keyId": "key_abc123",
        "apiKey": "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
        "name": "My Integration Key",
        "createdAt": "2023-10-27T10:00:00Z"
    })
}

fn key_listed_example() -> Value {
    json!({
        "keyId": "key_def456",
        "name": "Staging Key",
        "createdAt": "2023-10-25T09:00:00Z",
        "lastUsed": null
    })
}

fn invalid_credentials() -> Value {
    json!({ "error": "Invalid credentials" })
}

fn invalid_refresh() -> Value {
    json!({ "error": "Invalid or expired refresh token" })
}

fn authentication_required() -> Value {
    json!({ "error": "Authentication required" })
}

fn logged_out() -> Value {
    json!({ "message": "Successfully logged out" })
}

/// The example user of the document, made real.
const USERNAME: &str = "jane.doe";
const EMAIL: &str = "jane.doe@example.com";
const PASSWORD: &str = "jane's password 1";

/// Makes `jane.doe`; returns her id.
async fn jane(srv: &Server) -> String {
    let admin = srv.admin_token().await;
    srv.create_account(
        &admin,
        &json!({
                "username": USERNAME,
                "email": EMAIL,
                "password": PASSWORD,
                "roles": ["user"],
        }),
    )
    .await
}

async fn login(srv: &Server, username: &str, password: &str) -> Resp {
    srv.try_login(username, password).await
}

async fn refresh(srv: &Server, refresh_token: &str) -> Resp {
    srv.post(REFRESH)
        .json(&json!({ "refreshToken": refresh_token }))
        .send()
        .await
}

/// `(token, refreshToken)` of a successful login or refresh.
fn tokens(r: &Resp) -> (String, String) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    (
        body["token"].as_str().expect("token").to_string(),
        body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_string(),
    )
}

/// The JSON type of a value, by name.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Asserts that `actual` has exactly the fields of the document's
/// `example` plus `extra`, those of the example with the same JSON type
/// (nested objects alike). `lastUsed`, documented as a time or null, may be
/// either.
fn assert_documented_shape(example: &Value, actual: &Value, extra: &[&str]) {
    let (Some(want), Some(got)) = (example.as_object(), actual.as_object()) else {
        panic!("not objects: {example} / {actual}");
    };
    let mut want_names: Vec<&str> = want.keys().map(String::as_str).collect();
    want_names.extend_from_slice(extra);
    want_names.sort_unstable();
    let mut got_names: Vec<&str> = got.keys().map(String::as_str).collect();
    got_names.sort_unstable();
    assert_eq!(got_names, want_names, "{actual}");
    for (name, value) in want {
        if value.is_object() {
            assert_documented_shape(value, &got[name], &[]);
        } else if name != "lastUsed" {
            assert_eq!(kind(&got[name]), kind(value), "{name} in {actual}");
        }
    }
}

/// A JWT's header and payload, decoded (base64url) but not verified.
fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    (decode(parts[0]), decode(parts[1]))
}

/// Whether the document's protected routes accept this token.
async fn accepted(srv: &Server, token: &str) -> bool {
    let r = srv.get(KEYS).bearer(token).send().await;
    match r.status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => {
            assert_eq!(r.json(), authentication_required());
            false
        }
        other => panic!("{other}: {}", r.text()),
    }
}

/// Whether `time` is RFC 3339.
fn is_rfc3339(time: &Value) -> bool {
    time.as_str().is_some_and(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

#[tokio::test]
async fn login_answers_the_documented_example() {
    let srv = Server::start().await;
    let id = jane(&srv).await;
    let r = login(&srv, USERNAME, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_documented_shape(&login_example(), &body, &["refreshToken"]);
    assert_eq!(
        body["user"],
        json!({ "id": id, "username": USERNAME, "email": EMAIL })
    );
    // "a JSON Web Token (JWT) is issued", good for `expires_in` seconds.
    let token = body["token"].as_str().expect("token");
    let (header, claims) = jwt_parts(token);
    assert!(header["alg"].is_string(), "{header}");
    let expires_in = body["expires_in"].as_i64().expect("whole seconds");
    assert!(expires_in > 0);
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        expires_in
    );
    assert!(body["refreshToken"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(accepted(&srv, token).await);

    // Good until it expires.
    srv.advance(u64::try_from(expires_in).expect("positive") - 1);
    assert!(accepted(&srv, token).await, "just before expires_in");
    srv.advance(61);
    assert!(!accepted(&srv, token).await, "a minute after expires_in");
}

#[tokio::test]
async fn a_refused_login_is_invalid_credentials_and_never_user_not_found() {
    let srv = Server::start().await;
    jane(&srv).await;
    let cases: [(&str, &str, &str); 5] = [
        ("wrong password", USERNAME, "wrong password"),
        ("password in another case", USERNAME, "JANE'S PASSWORD 1"),
        ("empty password", USERNAME, ""),
        ("unknown user", "john.doe", PASSWORD),
        ("unknown user, no password", "john.doe", ""),
    ];
    for (what, username, password) in cases {
        let r = login(&srv, username, password).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(r.json(), invalid_credentials(), "{what}");
        assert!(!r.text().contains("not found"), "{what}");
    }
}

#[tokio::test]
async fn refresh_answers_the_documented_example_and_refuses_spent_tokens() {
    let srv = Server::start().await;
    jane(&srv).await;
    let (first_access, first_refresh) = tokens(&login(&srv, USERNAME, PASSWORD).await);

    let r = refresh(&srv, &first_refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_documented_shape(&refresh_example(), &body, &["refreshToken"]);
    let (access, second_refresh) = tokens(&r);
    assert_ne!(access, first_access);
    assert_ne!(second_refresh, first_refresh);
    assert!(accepted(&srv, &access).await);

    let refused: [(&str, &str); 4] = [
        ("not a refresh token", "not-a-refresh-token"),
        ("an access token", &access),
        ("empty", ""),
        (
            "a refresh token never issued",
            "lk_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
    ];
    for (what, presented) in refused {
        let r = refresh(&srv, presented).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(r.json(), invalid_refresh(), "{what}");
    }

    // A spent refresh token is refused, and ends its session: the newer
    // one goes with it.
    let r = refresh(&srv, &first_refresh).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::UNAUTHORIZED, invalid_refresh())
    );
    let r = refresh(&srv, &second_refresh).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::UNAUTHORIZED, invalid_refresh())
    );
    assert!(!accepted(&srv, &access).await);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let refresh_ttl = 3600;
    let srv = Server::start_with(Layer {
        refresh_ttl: Some(refresh_ttl),
        ..Default::default()
    })
    .await;
    jane(&srv).await;
    let (_, kept) = tokens(&login(&srv, USERNAME, PASSWORD).await);
    let (_, stale) = tokens(&login(&srv, USERNAME, PASSWORD).await);
    srv.advance(refresh_ttl - 1);
    tokens(&refresh(&srv, &kept).await);
    srv.advance(1);
    let r = refresh(&srv, &stale).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::UNAUTHORIZED, invalid_refresh())
    );
}

#[tokio::test]
async fn logout_invalidates_the_session_and_its_tokens() {
    let srv = Server::start().await;
    jane(&srv).await;
    let (access, refresh_token) = tokens(&login(&srv, USERNAME, PASSWORD).await);
    let (other_access, other_refresh) = tokens(&login(&srv, USERNAME, PASSWORD).await);
    let (renewed, renewed_refresh) = tokens(&refresh(&srv, &refresh_token).await);
    let r = srv.post(LOGOUT).bearer(&renewed).send().await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, logged_out()));

    for (what, token) in [
        ("the token logged out with", &renewed),
        ("the session's token from before its refresh", &access),
    ] {
        assert!(!accepted(&srv, token).await, "{what}");
        let r = srv.post(LOGOUT).bearer(token).send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(r.json(), authentication_required(), "{what}");
    }
    for (what, spent) in [
        ("the refresh token", &renewed_refresh),
        ("the one before it", &refresh_token),
    ] {
        let r = refresh(&srv, spent).await;
        assert_eq!(
            (r.status, r.json()),
            (StatusCode::UNAUTHORIZED, invalid_refresh()),
            "{what}"
        );
    }

    // Another session of the same user is untouched.
    assert!(accepted(&srv, &other_access).await);
    tokens(&refresh(&srv, &other_refresh).await);
}

#[tokio::test]
async fn logout_requires_authentication() {
    let srv = Server::start().await;
    jane(&srv).await;
    let (access, _) = tokens(&login(&srv, USERNAME, PASSWORD).await);
    let cases: [(&str, Option<&str>); 4] = [
        ("no Authorization header", None),
        ("Basic, not Bearer", Some("Basic amFuZTpwdw==")),
        ("a token that is not one", Some("Bearer not-a-token")),
        ("the token without Bearer", Some(&access)),
    ];
    for (what, authorization) in cases {
        let mut call = srv.post(LOGOUT);
        if let Some(value) = authorization {
            call = call.header("authorization", value);
        }
        let r = call.send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(r.json(), authentication_required(), "{what}");
    }
    assert!(accepted(&srv, &access).await, "nothing was logged out");
}

#[tokio::test]
async fn keys_have_the_documented_fields() {
    let srv = Server::start().await;
    jane(&srv).await;
    let (access, _) = tokens(&login(&srv, USERNAME, PASSWORD).await);

    let r = srv.post(KEYS).bearer(&access).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    assert_documented_shape(&key_created_example(), &created, &[]);
    assert!(created["apiKey"].as_str().unwrap().starts_with("sk_live_"));
    assert!(is_rfc3339(&created["createdAt"]), "{created}");

    let r = srv.get(KEYS).bearer(&access).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let listed = r.json();
    let listed = listed.as_array().expect("a JSON array");
    assert_eq!(listed.len(), 1);
    assert_documented_shape(&key_listed_example(), &listed[0], &[]);
    assert_eq!(listed[0]["keyId"], created["keyId"]);
    assert_eq!(listed[0]["createdAt"], created["createdAt"]);
    assert_eq!(listed[0]["lastUsed"], Value::Null, "never used yet");

    // The key is a credential for the same routes.
    let api_key = created["apiKey"].as_str().unwrap();
    assert!(accepted(&srv, api_key).await);

    let path = format!("{KEYS}/{}", created["keyId"].as_str().unwrap());
    let r = srv.delete(&path).bearer(&access).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty(), "no response body");
    let r = srv.delete(&path).bearer(&access).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({ "error": "API key not found" }));
    assert!(!accepted(&srv, api_key).await, "a deleted key is refused");

    for (method, path) in [
        (http::Method::POST, KEYS.to_string()),
        (http::Method::GET, KEYS.to_string()),
        (http::Method::DELETE, path.clone()),
    ] {
        let r = srv.call(method.clone(), &path).send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.json(), authentication_required(), "{method} {path}");
    }
}
