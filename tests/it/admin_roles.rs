//! Custom roles: listed, used, and deleted only when unused.

use http::StatusCode;
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

    let r = srv
        .create_role(&admin, "Customer")
        .await
        .assert(StatusCode::CREATED);
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
        let r = srv.create_role(&admin, name).await.assert(want);
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
    srv.get_as(&token, USERS)
        .await
        .assert(StatusCode::FORBIDDEN);
    srv.get_as(&token, &fill(USER, &[&customer_id]))
        .await
        .assert(StatusCode::OK);

    // In use, or built in: refused, and still listed.
    for name in ["Customer", "admin", "reseller", "merchant", "user"] {
        let r = srv
            .delete_as(&admin, &fill(ROLE, &[name]))
            .await
            .assert(StatusCode::CONFLICT);
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(walk(&srv, &admin, ROLES, 1000).await, roles);
    srv.delete_as(&admin, &fill(ROLE, &["Nobody"]))
        .await
        .assert(StatusCode::NOT_FOUND);

    // Unused: gone.
    srv.patch_as(
        &admin,
        &fill(USER, &[&customer_id]),
        &json!({ "roles": ["user"] }),
    )
    .await
    .assert(StatusCode::OK);
    srv.delete_as(&admin, &fill(ROLE, &["Customer"]))
        .await
        .assert(StatusCode::NO_CONTENT);
    let after = walk(&srv, &admin, ROLES, 1000).await;
    assert!(!set(&after, "name").contains("Customer"), "{after:?}");
    assert_eq!(after.len(), 4);
    srv.delete_as(&admin, &fill(ROLE, &["Customer"]))
        .await
        .assert(StatusCode::NOT_FOUND);
    let r = srv
        .post_as(&admin, USERS, &person("late", "Customer", None, None))
        .await
        .assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "roles");
}
