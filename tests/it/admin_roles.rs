//! Custom roles: listed, used, and deleted only when unused.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

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
