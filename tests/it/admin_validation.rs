//! Bad requests to the admin API get the right status and name the field.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

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
