//! Accounts and tenants through the admin API: created, read, changed
//! and deleted in their documented shapes; passwords set; accounts
//! disabled and deleted with their credentials revoked at once.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

// ---- CRUD and shapes ----

#[tokio::test]
async fn a_reseller_is_created_read_and_renamed() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let r = srv
        .post_as(
            &admin,
            RESELLERS,
            &json!({ "id": "res_a", "name": "Acme Resellers" }),
        )
        .await
        .assert(StatusCode::CREATED)
        .json();
    assert_eq!(r["id"], "res_a");
    assert_eq!(r["name"], "Acme Resellers");
    assert!(r["created_at"].is_string());
    assert_eq!(r["created_at"], r["updated_at"]);
    let generated_reseller =
        create_tenant(&srv, &admin, RESELLERS, json!({ "name": "Anon" })).await;
    assert!(
        generated_reseller.starts_with("res_"),
        "{generated_reseller}"
    );
    assert_eq!(get_json(&srv, &admin, &fill(RESELLER, &["res_a"])).await, r);
    srv.advance(60);
    let renamed = srv
        .patch_as(
            &admin,
            &fill(RESELLER, &["res_a"]),
            &json!({ "name": "Acme" }),
        )
        .await
        .assert(StatusCode::OK)
        .json();
    assert_eq!(renamed["name"], "Acme");
    assert_eq!(renamed["created_at"], r["created_at"]);
    assert!(renamed["updated_at"].as_str() > r["updated_at"].as_str());
    assert_eq!(
        get_json(&srv, &admin, &fill(RESELLER, &["res_a"])).await["name"],
        "Acme"
    );
}

#[tokio::test]
async fn a_merchant_is_created_read_and_renamed() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_a", "A").await;
    let m = srv
        .post_as(
            &admin,
            MERCHANTS,
            &json!({ "id": "mer_a", "reseller_id": "res_a", "name": "Shop A" }),
        )
        .await
        .assert(StatusCode::CREATED)
        .json();
    assert_eq!(m["id"], "mer_a");
    assert_eq!(m["reseller_id"], "res_a");
    assert_eq!(m["name"], "Shop A");
    let generated_merchant = create_tenant(
        &srv,
        &admin,
        MERCHANTS,
        json!({ "reseller_id": "res_a", "name": "Shop B" }),
    )
    .await;
    assert!(
        generated_merchant.starts_with("mer_"),
        "{generated_merchant}"
    );
    assert_eq!(get_json(&srv, &admin, &fill(MERCHANT, &["mer_a"])).await, m);
    srv.advance(60);
    let m2 = srv
        .patch_as(
            &admin,
            &fill(MERCHANT, &["mer_a"]),
            &json!({ "name": "Shop Alpha" }),
        )
        .await
        .assert(StatusCode::OK)
        .json();
    assert_eq!(m2["name"], "Shop Alpha");
    assert_eq!(m2["reseller_id"], "res_a");
    assert!(m2["updated_at"].as_str() > m["updated_at"].as_str());
}

#[tokio::test]
async fn an_account_is_created_read_changed_and_deleted_without_showing_its_hash() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_a", "A").await;
    let shop = json!({ "id": "mer_a", "reseller_id": "res_a", "name": "Shop A" });
    create_tenant(&srv, &admin, MERCHANTS, shop).await;
    let secret = "jane's long password";
    let created = create_user(
        &srv,
        &admin,
        json!({
            "username": "Jane.Doe",
            "email": "Jane@Example.com",
            "password": secret,
            "roles": ["user"],
            "merchant_id": "mer_a",
            "attributes": { "plan": "gold" },
        }),
    )
    .await;
    assert_account_shape(&created);
    let id = id_of(&created);
    assert_eq!(created["username"], "Jane.Doe");
    assert_eq!(created["email"], "Jane@Example.com");
    assert_eq!(created["role"], "user");
    assert_eq!(created["roles"], json!(["user"]));
    // The reseller follows from the merchant.
    assert_eq!(created["reseller_id"], "res_a");
    assert_eq!(created["merchant_id"], "mer_a");
    assert_eq!(created["attributes"], json!({ "plan": "gold" }));
    assert_eq!(created["disabled"], false);
    assert!(created["number"].is_u64());
    let fetched = srv
        .get_as(&admin, &fill(USER, &[&id]))
        .await
        .assert(StatusCode::OK);
    assert!(!fetched.text().contains(secret));
    assert_eq!(fetched.json(), created);
    let jane = token_of(&srv.login("Jane.Doe", secret).await);
    assert_eq!(me_json(&srv, &jane).await["id"], id.as_str());

    srv.advance(60);
    let patched = check(
        &srv,
        &admin,
        Method::PATCH,
        &fill(USER, &[&id]),
        Some(json!({
            "username": "jdoe",
            "email": "jdoe@example.com",
            "attributes": { "plan": "silver" },
        })),
        StatusCode::OK,
    )
    .await
    .json();
    assert_account_shape(&patched);
    assert_eq!(patched["id"], id.as_str());
    assert_eq!(patched["username"], "jdoe");
    assert_eq!(patched["email"], "jdoe@example.com");
    assert_eq!(patched["attributes"], json!({ "plan": "silver" }));
    assert_eq!(patched["roles"], json!(["user"]));
    assert_eq!(patched["merchant_id"], "mer_a");
    assert_eq!(patched["created_at"], created["created_at"]);
    assert!(patched["updated_at"].as_str() > created["updated_at"].as_str());
    assert_eq!(get_json(&srv, &admin, &fill(USER, &[&id])).await, patched);
    assert_eq!(srv.try_login("jdoe", secret).await.status, StatusCode::OK);
    assert_eq!(
        srv.try_login("Jane.Doe", secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A change of name only leaves the sessions alone.
    assert_eq!(me(&srv, &jane).await, StatusCode::OK);

    let listed = walk(&srv, &admin, USERS, 1000).await;
    assert!(column(&listed, "id").contains(&id));
    listed.iter().for_each(assert_account_shape);

    let r = srv
        .delete_as(&admin, &fill(USER, &[&id]))
        .await
        .assert(StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    for method in [Method::GET, Method::DELETE] {
        let r = check(
            &srv,
            &admin,
            method,
            &fill(USER, &[&id]),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(r.json(), not_found("User"));
    }
    let r = srv
        .get_as(&admin, &fill(USER, &["not-a-uuid"]))
        .await
        .assert(StatusCode::NOT_FOUND);
    assert_eq!(r.json(), not_found("User"));
    assert!(!column(&walk(&srv, &admin, USERS, 1000).await, "id").contains(&id));
}

#[tokio::test]
async fn tenants_go_once_empty() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_a", "A").await;
    let generated_reseller =
        create_tenant(&srv, &admin, RESELLERS, json!({ "name": "Anon" })).await;
    let shop = json!({ "id": "mer_a", "reseller_id": "res_a", "name": "Shop A" });
    create_tenant(&srv, &admin, MERCHANTS, shop).await;
    let shop = json!({ "reseller_id": "res_a", "name": "Shop B" });
    let generated_merchant = create_tenant(&srv, &admin, MERCHANTS, shop).await;
    for (template, id, what) in [
        (MERCHANT, generated_merchant.as_str(), "Merchant"),
        (MERCHANT, "mer_a", "Merchant"),
        (RESELLER, "res_a", "Reseller"),
        (RESELLER, generated_reseller.as_str(), "Reseller"),
    ] {
        let path = fill(template, &[id]);
        srv.delete_as(&admin, &path)
            .await
            .assert(StatusCode::NO_CONTENT);
        let r = srv
            .get_as(&admin, &path)
            .await
            .assert(StatusCode::NOT_FOUND);
        assert_eq!(r.json(), not_found(what));
        let r = srv
            .patch_as(&admin, &path, &json!({ "name": "ghost" }))
            .await
            .assert(StatusCode::NOT_FOUND);
        assert_eq!(r.json(), not_found(what));
    }
}

// ---- passwords, disabling, deleting ----

#[tokio::test]
async fn setting_a_password_ends_sessions_and_an_own_change_needs_the_current_one() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let user = w.get("user1a");
    let path = fill(USER_PASSWORD, &[&user.id]);
    let second = srv.login("user1a", WORLD_PASSWORD).await;

    let r = srv
        .post_as(admin, &path, &json!({ "password": "short" }))
        .await
        .assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "password");
    assert_eq!(me(&srv, &user.token).await, StatusCode::OK);

    let fresh = "a brand new password";
    let r = srv
        .post_as(admin, &path, &json!({ "password": fresh }))
        .await
        .assert(StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(me(&srv, &user.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &token_of(&second)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_status(&srv, &second["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    let r = srv.try_login("user1a", WORLD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    assert_eq!(me(&srv, admin).await, StatusCode::OK);

    // Changing one's own password takes the current one; the session that
    // changed it stays, the others end.
    let a = token_of(&srv.login("user1a", fresh).await);
    let b = token_of(&srv.login("user1a", fresh).await);
    let third = "the third password";
    for (body, what) in [
        (json!({ "password": third }), "without current_password"),
        (
            json!({ "password": third, "current_password": "a wrong guess" }),
            "with a wrong one",
        ),
    ] {
        let r = srv
            .post_as(&a, &path, &body)
            .await
            .assert(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["field"], "current_password", "{what}");
    }
    assert_eq!(srv.try_login("user1a", fresh).await.status, StatusCode::OK);
    srv.post_as(
        &a,
        &path,
        &json!({ "password": third, "current_password": fresh }),
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    assert_eq!(me(&srv, &a).await, StatusCode::OK);
    assert_eq!(me(&srv, &b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        srv.try_login("user1a", fresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(srv.try_login("user1a", third).await.status, StatusCode::OK);

    // The admin changing its own password is held to the same rule.
    let own = fill(USER_PASSWORD, &[&w.get("admin").id]);
    let r = srv
        .post_as(admin, &own, &json!({ "password": "admin's next one" }))
        .await
        .assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "current_password");
    assert_eq!(
        srv.try_login(ADMIN, ADMIN_PASSWORD).await.status,
        StatusCode::OK
    );

    // A user cannot set someone else's; a reseller can in its tenant.
    let merchant = fill(USER_PASSWORD, &[&w.get("merchant1a").id]);
    let r = srv
        .post_as(&a, &merchant, &json!({ "password": "hijacked password" }))
        .await
        .assert(StatusCode::NOT_FOUND);
    assert_eq!(r.json(), not_found("User"));
    assert_eq!(
        srv.try_login("merchant1a", WORLD_PASSWORD).await.status,
        StatusCode::OK
    );
    srv.post_as(
        w.token("reseller1"),
        &merchant,
        &json!({ "password": "set by the reseller" }),
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    assert_eq!(
        me(&srv, w.token("merchant1a")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        srv.try_login("merchant1a", "set by the reseller")
            .await
            .status,
        StatusCode::OK
    );
}

/// Three working credentials of the World member `name`: its World token,
/// a fresh sign-in (returned too, for its refresh token) and an API key.
async fn live_credentials(srv: &Server, w: &World, name: &str) -> (Value, [String; 3]) {
    let member = w.get(name);
    let (_, key) = new_api_key(srv, &member.token).await;
    let fresh = srv.login(name, WORLD_PASSWORD).await;
    let credentials = [member.token.clone(), token_of(&fresh), key];
    for c in &credentials {
        assert_eq!(me(srv, c).await, StatusCode::OK);
    }
    (fresh, credentials)
}

#[tokio::test]
async fn disabling_an_account_revokes_its_credentials_at_once_and_enabling_restores_only_its_password()
 {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let target = w.get("user2a");
    let (fresh, credentials) = live_credentials(&srv, &w, "user2a").await;
    let r = srv
        .act_as(admin, &fill(USER_DISABLE, &[&target.id]))
        .await
        .assert(StatusCode::OK)
        .json();
    assert_account_shape(&r);
    assert_eq!(r["disabled"], true);
    assert_eq!(r["id"], target.id.as_str());
    for c in &credentials {
        assert_eq!(
            me(&srv, c).await,
            StatusCode::UNAUTHORIZED,
            "a credential of a disabled account"
        );
    }
    assert_eq!(
        refresh_status(&srv, &fresh["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    let r = srv.try_login("user2a", WORLD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json(), json!({ "error": "Account disabled" }));
    let r = srv.try_login("user2a", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    assert_eq!(
        get_json(&srv, admin, &fill(USER, &[&target.id])).await["disabled"],
        true
    );
    assert_eq!(
        get_json(&srv, admin, &fill(USER_SESSIONS, &[&target.id])).await["items"],
        json!([])
    );
    assert_eq!(
        get_json(&srv, admin, &fill(USER_KEYS, &[&target.id])).await["items"],
        json!([])
    );
    // Nobody else is touched.
    for other in ["user1a", "merchant2a", "reseller2"] {
        assert_eq!(me(&srv, w.token(other)).await, StatusCode::OK, "{other}");
    }

    // Enable: the password works again; the old credentials stay dead.
    let r = srv
        .act_as(admin, &fill(USER_ENABLE, &[&target.id]))
        .await
        .assert(StatusCode::OK)
        .json();
    assert_eq!(r["disabled"], false);
    let back = token_of(&srv.login("user2a", WORLD_PASSWORD).await);
    assert_eq!(me(&srv, &back).await, StatusCode::OK);
    for c in &credentials {
        assert_eq!(me(&srv, c).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn deleting_an_account_revokes_its_credentials_at_once_and_frees_its_name() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let victim = w.get("merchant2a");
    let (fresh, credentials) = live_credentials(&srv, &w, "merchant2a").await;
    srv.delete_as(admin, &fill(USER, &[&victim.id]))
        .await
        .assert(StatusCode::NO_CONTENT);
    for c in &credentials {
        assert_eq!(
            me(&srv, c).await,
            StatusCode::UNAUTHORIZED,
            "a credential of a deleted account"
        );
    }
    assert_eq!(
        refresh_status(&srv, &fresh["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    let r = srv.try_login("merchant2a", WORLD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    for method in [Method::GET, Method::DELETE] {
        let r = check(
            &srv,
            admin,
            method,
            &fill(USER, &[&victim.id]),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(r.json(), not_found("User"));
    }
    let listed = walk(&srv, admin, USERS, 1000).await;
    assert!(!column(&listed, "id").contains(&victim.id));
    // The name is free again; the old credentials do not pass for the new
    // account.
    let again = create_user(
        &srv,
        admin,
        person("merchant2a", "merchant", None, Some("mer_2a")),
    )
    .await;
    assert_ne!(id_of(&again), victim.id);
    for c in &credentials {
        assert_eq!(me(&srv, c).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn the_admin_cannot_lock_itself_out() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let me_path = |t: &'static str| fill(t, &[&w.get("admin").id]);
    for (method, path) in [
        (Method::POST, me_path(USER_DISABLE)),
        (Method::POST, me_path(USER_ENABLE)),
        (Method::DELETE, me_path(USER)),
    ] {
        let r = check(&srv, admin, method, &path, None, StatusCode::CONFLICT).await;
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(me(&srv, admin).await, StatusCode::OK);
    assert_eq!(
        get_json(&srv, admin, &me_path(USER)).await["disabled"],
        false
    );
}

#[tokio::test]
async fn moving_an_account_retires_the_tokens_that_carried_its_old_tenant() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let user1a = w.get("user1a");
    let moved = srv
        .patch_as(
            admin,
            &fill(USER, &[&user1a.id]),
            &json!({ "merchant_id": "mer_1b" }),
        )
        .await
        .assert(StatusCode::OK)
        .json();
    assert_eq!(
        (moved["reseller_id"].as_str(), moved["merchant_id"].as_str()),
        (Some("res_1"), Some("mer_1b"))
    );
    assert_eq!(me(&srv, &user1a.token).await, StatusCode::UNAUTHORIZED);
    let relogged = token_of(&srv.login("user1a", WORLD_PASSWORD).await);
    assert_eq!(me_json(&srv, &relogged).await["merchant_id"], "mer_1b");
}
