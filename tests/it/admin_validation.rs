//! Bad requests to the admin API get the right status and name the field,
//! and change nothing.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

/// A server with two resellers (`res_a`, `res_b`), a merchant under each
/// (`mer_a`, `mer_b`), and one account, `taken`, under `mer_a`.
struct Setup {
    srv: Server,
    admin: String,
    /// The path of `taken`.
    taken: String,
}

async fn setup() -> Setup {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    for id in ["res_a", "res_b"] {
        srv.reseller(&admin, id, id).await;
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
    Setup {
        taken: fill(USER, &[&taken]),
        srv,
        admin,
    }
}

/// A valid new account; each case changes one thing in it.
fn base() -> Value {
    json!({
        "username": "newbie",
        "email": "newbie@example.com",
        "password": "long enough password",
        "roles": ["user"],
        "merchant_id": "mer_a",
    })
}

/// One refused request to a route: what it is, the body, the status, and
/// for a 422 the field it names, for a 409 a word of its message.
type Case = (&'static str, Value, u16, Option<&'static str>);

impl Setup {
    /// Sends every case to `method path` and checks each answer: the
    /// status; a non-empty `error`; a 422's `field` (and nothing else); a
    /// 409's word.
    async fn refuses(&self, method: Method, path: &str, cases: &[Case]) {
        for (what, body, status, hint) in cases {
            let r = send(
                &self.srv,
                Some(&self.admin),
                method.clone(),
                path,
                Some(body),
            )
            .await;
            assert_eq!(r.status.as_u16(), *status, "{what}: {}", r.text());
            let b = r.json();
            assert!(
                b["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{what}: {b}"
            );
            match (status, hint) {
                (422, Some(field)) => {
                    assert_eq!(b["field"], *field, "{what}: {b}");
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
    }

    /// Nothing was made or changed by the refused requests.
    async fn unchanged(&self) {
        let (srv, admin) = (&self.srv, &self.admin);
        let names = set(&walk(srv, admin, USERS, 1000).await, "username");
        assert_eq!(names, strings([ADMIN, "taken"]));
        let t = get_json(srv, admin, &self.taken).await;
        assert_eq!(
            (t["username"].as_str(), t["email"].as_str()),
            (Some("taken"), Some("taken@example.com"))
        );
        assert_eq!(
            set(&walk(srv, admin, RESELLERS, 1000).await, "id"),
            strings(["res_a", "res_b"])
        );
        assert_eq!(
            set(&walk(srv, admin, MERCHANTS, 1000).await, "id"),
            strings(["mer_a", "mer_b"])
        );
    }
}

/// `base()` with `changes`.
fn user(changes: Value) -> Value {
    merged(&base(), changes)
}

#[tokio::test]
async fn a_bad_new_account_is_refused_naming_the_field() {
    let s = setup().await;
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("malformed email", user(json!({ "email": "not-an-email" })), 422, Some("email")),
        ("email with a space", user(json!({ "email": "new bie@example.com" })), 422, Some("email")),
        ("seven-character password", user(json!({ "password": "1234567" })), 422, Some("password")),
        ("empty password", user(json!({ "password": "" })), 422, Some("password")),
        ("unknown role", user(json!({ "roles": ["wizard"] })), 422, Some("roles")),
        ("no role", user(json!({ "roles": [] })), 422, Some("roles")),
        ("username with a space", user(json!({ "username": "two words" })), 422, Some("username")),
        (
            "unknown reseller_id",
            user(json!({ "roles": ["reseller"], "reseller_id": "res_nope", "merchant_id": null })),
            422,
            Some("reseller_id"),
        ),
        ("unknown merchant_id", user(json!({ "merchant_id": "mer_nope" })), 422, Some("merchant_id")),
        (
            "merchant under another reseller",
            user(json!({ "reseller_id": "res_a", "merchant_id": "mer_b" })),
            422,
            Some("merchant_id"),
        ),
        (
            "reseller account without reseller_id",
            user(json!({ "roles": ["reseller"], "merchant_id": null })),
            422,
            Some("reseller_id"),
        ),
        (
            "merchant account without merchant_id",
            user(json!({ "roles": ["merchant"], "reseller_id": "res_a", "merchant_id": null })),
            422,
            Some("merchant_id"),
        ),
        ("username taken, in other case", user(json!({ "username": "TAKEN" })), 409, Some("username")),
        ("email taken, in other case", user(json!({ "email": "Taken@Example.COM" })), 409, Some("email")),
        ("unknown field", user(json!({ "nickname": "nb" })), 400, None),
        ("roles not a list", user(json!({ "roles": "user" })), 400, None),
        ("username missing", user(json!({ "username": null })), 400, None),
    ];
    s.refuses(Method::POST, USERS, &cases).await;
    s.unchanged().await;
}

#[tokio::test]
async fn a_bad_change_to_an_account_is_refused_naming_the_field() {
    let s = setup().await;
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("patch: malformed email", json!({ "email": "nope" }), 422, Some("email")),
        ("patch: unknown role", json!({ "roles": ["wizard"] }), 422, Some("roles")),
        ("patch: unknown merchant", json!({ "merchant_id": "mer_nope" }), 422, Some("merchant_id")),
        ("patch: email of the admin", json!({ "email": ADMIN_EMAIL }), 409, Some("email")),
        ("patch: username of the admin", json!({ "username": "Admin" }), 409, Some("username")),
        ("patch: unknown field", json!({ "shoe_size": 9 }), 400, None),
    ];
    s.refuses(Method::PATCH, &s.taken, &cases).await;
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("password: too short", json!({ "password": "short" }), 422, Some("password")),
        ("password: unknown field", json!({ "password": WORLD_PASSWORD, "force": true }), 400, None),
    ];
    s.refuses(Method::POST, &format!("{}/password", s.taken), &cases)
        .await;
    s.unchanged().await;
    // The password was not changed either.
    assert_eq!(
        s.srv.try_login("taken", WORLD_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_bad_tenant_or_role_is_refused_naming_the_field() {
    let s = setup().await;
    #[rustfmt::skip]
    let resellers: Vec<Case> = vec![
        ("reseller: id taken", json!({ "id": "res_a", "name": "again" }), 409, Some("exists")),
        ("reseller: bad id", json!({ "id": "bad id!", "name": "x" }), 422, Some("id")),
        ("reseller: blank name", json!({ "id": "res_z", "name": "  " }), 422, Some("name")),
        ("reseller: reseller_id given", json!({ "id": "res_z", "name": "x", "reseller_id": "res_a" }), 400, None),
        ("reseller: unknown field", json!({ "id": "res_z", "title": "x" }), 400, None),
    ];
    s.refuses(Method::POST, RESELLERS, &resellers).await;
    let patch: Vec<Case> = vec![(
        "reseller patch: unknown field",
        json!({ "nme": "x" }),
        400,
        None,
    )];
    s.refuses(Method::PATCH, &fill(RESELLER, &["res_a"]), &patch)
        .await;
    #[rustfmt::skip]
    let merchants: Vec<Case> = vec![
        ("merchant: id taken", json!({ "id": "mer_a", "reseller_id": "res_a", "name": "again" }), 409, Some("exists")),
        ("merchant: unknown reseller", json!({ "id": "mer_z", "reseller_id": "res_nope", "name": "x" }), 422, Some("reseller_id")),
        ("merchant: no reseller", json!({ "id": "mer_z", "name": "x" }), 422, Some("reseller_id")),
        ("merchant: unknown field", json!({ "id": "mer_z", "reseller_id": "res_a", "name": "x", "colour": "red" }), 400, None),
    ];
    s.refuses(Method::POST, MERCHANTS, &merchants).await;
    let patch: Vec<Case> = vec![(
        "merchant patch: blank name",
        json!({ "name": "" }),
        422,
        Some("name"),
    )];
    s.refuses(Method::PATCH, &fill(MERCHANT, &["mer_a"]), &patch)
        .await;
    let roles: Vec<Case> = vec![(
        "role: unknown field",
        json!({ "name": "Customer", "level": 2 }),
        400,
        None,
    )];
    s.refuses(Method::POST, ROLES, &roles).await;
    s.unchanged().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let s = setup().await;
    let (srv, admin) = (&s.srv, &s.admin);
    for (method, path) in [
        (Method::POST, USERS.to_string()),
        (Method::PATCH, s.taken.clone()),
        (Method::POST, format!("{}/password", s.taken)),
        (Method::POST, RESELLERS.to_string()),
        (Method::PATCH, fill(RESELLER, &["res_a"])),
        (Method::POST, MERCHANTS.to_string()),
        (Method::PATCH, fill(MERCHANT, &["mer_a"])),
        (Method::POST, ROLES.to_string()),
    ] {
        let text = base().to_string();
        let call = || srv.call(method.clone(), &path).bearer(admin);
        let r = call().body("text/plain", text.clone()).send().await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
        assert_eq!(
            r.json(),
            json!({ "error": "Content-Type must be application/json" })
        );
        let r = call().raw_body(text).send().await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path} untyped"
        );
        let r = call()
            .body("application/json", "{\"username\":")
            .send()
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} truncated"
        );
    }
    s.unchanged().await;
}

#[tokio::test]
async fn the_base_request_is_valid_and_eight_characters_are_enough() {
    let s = setup().await;
    create_user(&s.srv, &s.admin, base()).await;
    let eight = create_user(
        &s.srv,
        &s.admin,
        user(json!({ "username": "eight", "email": "eight@example.com", "password": "12345678" })),
    )
    .await;
    assert_account_shape(&eight);
    assert_eq!(
        s.srv.try_login("eight", "12345678").await.status,
        StatusCode::OK
    );
}
