//! What holds across the five documents (issue 5): one set of rate limits
//! and lockout counters covers every login route, so switching documents
//! gains an attacker nothing; every credential from any document identifies
//! the same account; and revocation (logout, disable, delete) reaches every
//! one of them.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

const LIMITED: &str = "Too many login attempts. Please try again later.";
const PASSWORD: &str = "one password for all 5";

/// One document's login route, as its client calls it with an email.
struct Doc {
    name: &'static str,
    path: &'static str,
    /// The body field the email goes in.
    id_field: &'static str,
    /// The status of a wrong password.
    wrong: StatusCode,
    /// Whether a body is this document's 429.
    limited: fn(&Value) -> bool,
    /// Whether a body is this document's 403 for a locked account.
    locked: fn(&Value) -> bool,
}

/// An object with exactly one field, `name`, a string.
fn only_string_field(body: &Value, name: &str) -> bool {
    body.as_object()
        .is_some_and(|o| o.len() == 1 && o.get(name).is_some_and(Value::is_string))
}

const DOCS: [Doc; 5] = [
    Doc {
        name: "tenant-login-and-s2s",
        path: "/login",
        id_field: "email",
        wrong: StatusCode::UNPROCESSABLE_ENTITY,
        limited: |b| only_string_field(b, "detail"),
        locked: |b| only_string_field(b, "detail"),
    },
    Doc {
        name: "client-login-refresh",
        path: "/auth/login",
        id_field: "username",
        wrong: StatusCode::UNAUTHORIZED,
        limited: |b| *b == json!({ "error": "Too Many Requests", "message": LIMITED }),
        locked: |b| {
            b.as_object().is_some_and(|o| o.len() == 2)
                && b["error"].is_string()
                && b["message"].is_string()
        },
    },
    Doc {
        name: "token-and-social-login",
        path: "/api/auth/token",
        id_field: "email",
        wrong: StatusCode::FORBIDDEN,
        limited: |b| *b == json!({ "error": LIMITED }),
        locked: |b| only_string_field(b, "error") && b["error"] != "Invalid email or password.",
    },
    Doc {
        name: "account-roles-token",
        path: "/api/account/roles",
        id_field: "email",
        wrong: StatusCode::NOT_FOUND,
        limited: Value::is_string,
        locked: |b| *b == json!("Account has been locked due to multiple failed login attempts"),
    },
    Doc {
        name: "v1-auth-and-keys",
        path: "/api/v1/auth/login",
        id_field: "username",
        wrong: StatusCode::UNAUTHORIZED,
        limited: |b| only_string_field(b, "error"),
        locked: |b| only_string_field(b, "error") && b["error"] != "Invalid credentials",
    },
];

/// One login attempt on `doc` with this email and password.
async fn attempt(srv: &Server, doc: &Doc, email: &str, password: &str) -> Resp {
    srv.post(doc.path)
        .json(&json!({ doc.id_field: email, "password": password }))
        .send()
        .await
}

/// An account made for a test.
#[derive(Clone)]
struct Account {
    id: String,
    number: u64,
    username: String,
    email: String,
}

/// Makes the custom roles `Customer` and `Seller` and the accounts named,
/// each with both roles and [`PASSWORD`].
async fn accounts(srv: &Server, names: &[&str]) -> Vec<Account> {
    let admin = srv.admin_token().await;
    for role in ["Customer", "Seller"] {
        let r = srv.create_role(&admin, role).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let mut made = Vec::new();
    for name in names {
        let email = format!("{name}@example.com");
        let body = srv
            .created(
                USERS,
                &admin,
                &json!({
                    "username": name,
                    "email": email,
                    "password": PASSWORD,
                    "roles": ["Customer", "Seller"],
                }),
            )
            .await
            .json();
        made.push(Account {
            id: body["id"].as_str().expect("id").to_string(),
            number: body["number"].as_u64().expect("number"),
            username: name.to_string(),
            email,
        });
    }
    made
}

/// The three documents after `i`, in turn: where the failures go before
/// document `i` is tried.
fn three_others(i: usize) -> [&'static Doc; 3] {
    [1, 2, 3].map(|k| &DOCS[(i + k) % DOCS.len()])
}

/// A refusal by a rate limit in `doc`'s words, after three failures
/// through the other documents, with a `Retry-After`.
fn assert_limited(doc: &Doc, r: &Resp) {
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{} after three failures elsewhere: {}",
        doc.name,
        r.text()
    );
    assert!((doc.limited)(&r.json()), "{}: {}", doc.name, r.text());
    assert!(retry_after(r) >= 1);
}

#[tokio::test]
async fn one_identifier_limit_covers_every_login_route() {
    let srv = Server::start_with(limits(10_000, 3)).await;
    let people = accounts(&srv, &["a0", "a1", "a2", "a3", "a4"]).await;
    for (i, (doc, who)) in DOCS.iter().zip(&people).enumerate() {
        for other in three_others(i) {
            let r = attempt(&srv, other, &who.email, "wrong password").await;
            assert_eq!(r.status, other.wrong, "{}: {}", other.name, r.text());
        }
        let r = attempt(&srv, doc, &who.email, PASSWORD).await;
        assert_limited(doc, &r);
    }
}

#[tokio::test]
async fn one_address_limit_covers_every_login_route() {
    let srv = Server::start_with(limits(3, 10_000)).await;
    let people = accounts(&srv, &["b0", "b1", "b2", "b3"]).await;
    for (i, doc) in DOCS.iter().enumerate() {
        // A full allowance (the set-up's and the last round's attempts
        // counted too).
        srv.advance(60);
        for (other, who) in three_others(i).into_iter().zip(&people) {
            let r = attempt(&srv, other, &who.email, "wrong password").await;
            assert_eq!(r.status, other.wrong, "{}: {}", other.name, r.text());
        }
        let r = attempt(&srv, doc, &people[3].email, PASSWORD).await;
        assert_limited(doc, &r);
    }
}

#[tokio::test]
async fn one_lockout_covers_every_login_route() {
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(3),
        ..limits(10_000, 10_000)
    })
    .await;
    let people = accounts(&srv, &["c0", "c1", "c2", "c3", "c4"]).await;
    for (i, who) in people.iter().enumerate() {
        for other in three_others(i) {
            let r = attempt(&srv, other, &who.email, "wrong password").await;
            assert_eq!(r.status, other.wrong, "{}: {}", other.name, r.text());
        }
        // Locked everywhere, in each document's words, even with the right
        // password.
        for doc in &DOCS {
            let r = attempt(&srv, doc, &who.email, PASSWORD).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{}: {}",
                doc.name,
                r.text()
            );
            assert!((doc.locked)(&r.json()), "{}: {}", doc.name, r.text());
            assert!(retry_after(&r) >= 1, "{}", doc.name);
        }
    }
}

/// A credential from one document, and how it is refreshed, if it is.
#[derive(Debug, Clone)]
struct Credential {
    /// Which document issued it.
    from: &'static str,
    token: String,
    /// `(path, body field, refresh token)` for credentials that come with
    /// a refresh token.
    refresh: Option<(&'static str, &'static str, String)>,
}

impl Credential {
    fn is_opaque(&self) -> bool {
        self.token.starts_with("lk_ot_")
    }

    fn is_jwt(&self) -> bool {
        self.token.split('.').count() == 3
    }
}

/// Signs `who` in through all five documents; returns one session
/// credential from each, and checks that each document's own ids name the
/// account.
async fn sign_in_everywhere(srv: &Server, who: &Account) -> Vec<Credential> {
    let ok = |r: &Resp, what: &str| {
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
        r.json()
    };
    let string = |v: &Value| v.as_str().expect("a string").to_string();

    let tenant = ok(
        &srv.post("/login")
            .json(&json!({ "email": who.email, "password": PASSWORD }))
            .send()
            .await,
        "/login",
    );
    assert_eq!(tenant["user"]["id"], who.id.as_str());
    assert_eq!(tenant["user"]["email"], who.email.as_str());

    let client = ok(
        &srv.post("/auth/login")
            .json(&json!({ "username": who.username, "password": PASSWORD }))
            .send()
            .await,
        "/auth/login",
    );
    assert_eq!(client["client_id"], json!(who.number));

    let opaque = ok(
        &srv.post("/api/auth/token")
            .json(&json!({ "email": who.email, "password": PASSWORD }))
            .send()
            .await,
        "/api/auth/token",
    );
    assert_eq!(opaque["user_id"], json!(who.number));

    let roles = ok(
        &srv.post("/api/account/roles")
            .json(&json!({ "email": who.email, "password": PASSWORD }))
            .send()
            .await,
        "/api/account/roles",
    );
    assert_eq!(roles["accountId"], who.id.as_str());
    let chosen = ok(
        &srv.post("/api/account/token")
            .json(&json!({ "accountId": roles["accountId"], "role": "Customer" }))
            .send()
            .await,
        "/api/account/token",
    );

    let v1 = ok(
        &srv.try_login(&who.username, PASSWORD).await,
        "/api/v1/auth/login",
    );
    assert_eq!(v1["user"]["id"], who.id.as_str());

    vec![
        Credential {
            from: "tenant-login-and-s2s",
            token: string(&tenant["access_token"]),
            refresh: None,
        },
        Credential {
            from: "client-login-refresh",
            token: string(&client["access_token"]),
            refresh: Some((
                "/auth/refresh",
                "refresh_token",
                string(&client["refresh_token"]),
            )),
        },
        Credential {
            from: "token-and-social-login",
            token: string(&opaque["token"]),
            refresh: None,
        },
        Credential {
            from: "account-roles-token",
            token: string(&chosen),
            refresh: None,
        },
        Credential {
            from: "v1-auth-and-keys",
            token: string(&v1["token"]),
            refresh: Some((
                "/api/v1/auth/refresh",
                "refreshToken",
                string(&v1["refreshToken"]),
            )),
        },
    ]
}

/// A v1 API key of the account, made with `token`.
async fn api_key(srv: &Server, token: &str) -> Credential {
    let r = srv.post("/api/v1/auth/keys").bearer(token).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    Credential {
        from: "v1-auth-and-keys (API key)",
        token: r.json()["apiKey"].as_str().expect("apiKey").to_string(),
        refresh: None,
    }
}

/// Asserts that every use of `c` is refused: as Bearer, in `?token=`, and
/// its refresh token.
async fn assert_refused(srv: &Server, c: &Credential, why: &str) {
    let r = srv.me(&c.token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", c.from);
    let r = srv.get(&format!("{ME}?token={}", c.token)).send().await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{why}: {} ?token=",
        c.from
    );
    if let Some((path, field, refresh)) = &c.refresh {
        let r = srv.post_json(path, &json!({ *field: refresh })).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{why}: {} refresh token: {}",
            c.from,
            r.text()
        );
    }
}

/// Asserts that `c` still names `who`.
async fn assert_accepted(srv: &Server, c: &Credential, who: &Account, why: &str) {
    let r = srv.me(&c.token).await;
    assert_eq!(r.status, StatusCode::OK, "{why}: {}: {}", c.from, r.text());
    assert_eq!(r.json()["id"], who.id.as_str(), "{why}: {}", c.from);
}

#[tokio::test]
async fn every_document_signs_in_the_same_account() {
    let srv = Server::start().await;
    let people = accounts(&srv, &["casey"]).await;
    let casey = &people[0];
    let mut credentials = sign_in_everywhere(&srv, casey).await;
    credentials.push(api_key(&srv, &credentials[4].token).await);
    for c in &credentials {
        let r = srv.me(&c.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", c.from, r.text());
        let body = r.json();
        assert_eq!(body["id"], casey.id.as_str(), "{}", c.from);
        assert_eq!(body["number"], json!(casey.number), "{}", c.from);
        assert_eq!(body["email"], casey.email.as_str(), "{}", c.from);
        if c.is_jwt() {
            assert_eq!(jwt_claims(&c.token)["sub"], casey.id.as_str(), "{}", c.from);
        }
        // Only the opaque token may travel in a URL.
        let r = srv.get(&format!("{ME}?token={}", c.token)).send().await;
        if c.is_opaque() {
            assert_eq!(r.status, StatusCode::OK, "{}", c.from);
            assert_eq!(r.json()["id"], casey.id.as_str());
        } else {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{} ?token=", c.from);
        }
    }
}

/// Limits no test here should meet.
fn roomy() -> Layer {
    Layer {
        ..limits(10_000, 10_000)
    }
}

#[tokio::test]
async fn a_logout_on_either_document_with_one_ends_any_documents_session() {
    let srv = Server::start_with(roomy()).await;
    let people = accounts(&srv, &["casey"]).await;
    let casey = &people[0];
    // The two documents with a logout route (the canonical one ends the
    // other documents' sessions too).
    let logouts = ["/api/v1/auth/logout", "/auth/logout"];
    for logout in logouts {
        for chosen in 0..DOCS.len() {
            let credentials = sign_in_everywhere(&srv, casey).await;
            let c = &credentials[chosen];
            let why = format!("after {logout} with the {} credential", c.from);
            let r = srv.post(logout).bearer(&c.token).send().await;
            assert_eq!(r.status, StatusCode::OK, "{why}: {}", r.text());
            assert_refused(&srv, c, &why).await;
            // One session ended, not the others.
            for (i, other) in credentials.iter().enumerate() {
                if i != chosen {
                    assert_accepted(&srv, other, casey, &why).await;
                }
            }
        }
    }
}

/// Whether a login with the right password through `doc` is refused.
async fn login_refused(srv: &Server, doc: &Doc, who: &Account) -> bool {
    let identifier = match doc.id_field {
        "username" => &who.username,
        _ => &who.email,
    };
    let r = srv
        .post_json(
            doc.path,
            &json!({ doc.id_field: identifier, "password": PASSWORD }),
        )
        .await;
    !r.status.is_success()
}

#[tokio::test]
async fn disabling_or_deleting_the_account_ends_every_documents_credentials() {
    let srv = Server::start_with(roomy()).await;
    let people = accounts(&srv, &["disabled", "deleted"]).await;
    let admin = srv.admin_token().await;
    let actions = [
        (
            http::Method::POST,
            format!("/api/v1/admin/users/{}/disable", people[0].id),
            &people[0],
        ),
        (
            http::Method::DELETE,
            format!("/api/v1/admin/users/{}", people[1].id),
            &people[1],
        ),
    ];
    for (method, path, who) in actions {
        let mut credentials = sign_in_everywhere(&srv, who).await;
        credentials.push(api_key(&srv, &credentials[4].token).await);
        // A role choice still open from the login just made.
        let r = srv
            .post_json(
                "/api/account/roles",
                &json!({ "email": who.email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);

        let r = srv.call(method.clone(), &path).bearer(&admin).send().await;
        assert!(r.status.is_success(), "{method} {path}: {}", r.text());

        let why = format!("after {method} {path}");
        for c in &credentials {
            assert_refused(&srv, c, &why).await;
        }
        // No new token from the open role choice, nor from switching roles.
        let account_jwt = &credentials[3].token;
        for bearer in [None, Some(account_jwt)] {
            let mut call = srv.post("/api/account/token");
            if let Some(t) = bearer {
                call = call.bearer(t);
            }
            let r = call
                .json(&json!({ "accountId": who.id, "role": "Seller" }))
                .send()
                .await;
            assert_ne!(r.status, StatusCode::OK, "{why}: {}", r.text());
        }
        for doc in &DOCS {
            assert!(login_refused(&srv, doc, who).await, "{why}: {}", doc.name);
        }
    }
}

#[tokio::test]
async fn an_api_key_is_not_a_login_for_choosing_a_role() {
    let srv = Server::start_with(roomy()).await;
    let people = accounts(&srv, &["casey"]).await;
    let casey = &people[0];
    let v1 = srv.login(&casey.username, PASSWORD).await;
    let token = v1["token"].as_str().expect("token");
    // A key narrowed to one role and short-lived, and a plain one.
    let keys = [
        json!({ "name": "narrow", "role": "Customer", "expiresIn": 600 }),
        json!({ "name": "plain" }),
    ];
    for body in keys {
        let r = srv.post_as(token, "/api/v1/auth/keys", &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();
        for role in ["Customer", "Seller"] {
            let r = srv
                .post_as(
                    &key,
                    "/api/account/token",
                    &json!({ "accountId": casey.id, "role": role }),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "key {body} exchanged for a {role} session token: {}",
                r.text()
            );
        }
    }
}
