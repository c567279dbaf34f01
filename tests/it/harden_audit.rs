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
    let r = srv
        .post("/api/v1/admin/resellers")
        .bearer(&admin)
        .json(&json!({ "id": "res-x", "name": "X" }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
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

/// Makes an account through the admin API; returns its id.
async fn make_account(srv: &Server, admin: &str, body: serde_json::Value) -> String {
    let r = srv
        .post("/api/v1/admin/users")
        .bearer(admin)
        .json(&body)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn choosing_a_role_with_another_accounts_token_is_refused_even_beside_a_fresh_proof() {
    let srv = Server::start_with(Layer {
        trusted_proxies: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    })
    .await;
    let admin = srv.admin_token().await;
    let victim = make_account(
        &srv,
        &admin,
        json!({ "username": "victim", "email": "victim@example.com",
                "password": "victim password 1", "roles": ["user"] }),
    )
    .await;
    make_account(
        &srv,
        &admin,
        json!({ "username": "mallory", "email": "mallory@example.com",
                "password": "mallory password 1", "roles": ["user"] }),
    )
    .await;
    let mallory = srv.login("mallory", "mallory password 1").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let shared = |call: Call| {
        call.header("x-forwarded-for", "203.0.113.50")
            .header("user-agent", "kiosk/1.0")
    };
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
