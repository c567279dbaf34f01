//! Issue 9 review findings on role choice, sign-in audit and audit
//! scoping: a role-choice grant is a login in flight and ends with the
//! account's sessions (items 6, 22); a token narrowed to one role cannot
//! choose another (item 8); a correct password whose session is refused is
//! still audited (item 19); a tenant sees no event from before it was
//! created (item 10, upgraded stores).

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

const NEW_PASSWORD: &str = "an entirely new password";

/// `POST /api/account/roles` for `name`, from the User-Agent `agent`.
async fn prove(srv: &Server, name: &str, agent: &str) -> Resp {
    srv.post("/api/account/roles")
        .header("user-agent", agent)
        .json(&json!({ "email": format!("{name}@example.com"), "password": PASSWORD }))
        .send()
        .await
}

/// `POST /api/account/token`, from the User-Agent `agent`, with `bearer`
/// when given.
async fn choose(srv: &Server, agent: &str, bearer: Option<&str>, id: &str, role: &str) -> Resp {
    let mut call = srv.post("/api/account/token").header("user-agent", agent);
    if let Some(b) = bearer {
        call = call.bearer(b);
    }
    call.json(&json!({ "accountId": id, "role": role }))
        .send()
        .await
}

/// The `login` entries whose actor is `id`, newest first.
async fn logins_by(srv: &Server, admin: &str, id: &str) -> Vec<Value> {
    srv.items(
        admin,
        &format!("/api/v1/admin/audit?actor={id}&event=login&limit=100"),
    )
    .await
}

// ---- items 6 / 22: a grant ends with the account's sessions ----

/// Writes two anonymous sign-in events of reseller `reseller` (one with
/// the merchant given, one without), dated `at`, straight into the store
/// with the server stopped, as an earlier tenant of the same ids left
/// them; then starts the server again.
async fn plant_logins(
    srv: &mut Server,
    at: i64,
    reseller: &str,
    actor_name: &str,
    events: [(Option<&str>, &str); 2],
) {
    srv.stop().await;
    let store = latchkey::store::Store::open(&srv.data_dir()).expect("store");
    store
        .write(|tx| {
            for (merchant, ip) in events {
                tx.append_audit(latchkey::store::AuditEvent {
                    seq: 0,
                    at,
                    event: "login".into(),
                    outcome: "success".into(),
                    actor: Some("anonymous".into()),
                    actor_name: Some(actor_name.into()),
                    target: None,
                    reseller_id: Some(reseller.into()),
                    merchant_id: merchant.map(Into::into),
                    client_ip: Some(ip.into()),
                    detail: None,
                })?;
            }
            Ok::<_, latchkey::store::StoreError>(())
        })
        .expect("written");
    drop(store);
    srv.restart().await;
}

#[tokio::test]
async fn a_role_choice_grant_proved_before_a_reset_and_revoke_all_gives_no_token() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "gina", PASSWORD, &["user"]).await;
    let r = prove(&srv, "gina", "app").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let before = logins_by(&srv, &admin, &id).await.len();
    // The owner, alarmed, resets the password and ends every session.
    let r = srv.set_password(&admin, &id, NEW_PASSWORD).await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = srv
        .delete_as(&admin, &format!("{USERS}/{id}/sessions"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = choose(&srv, "app", None, &id, "user").await;
    let mut me = StatusCode::IM_A_TEAPOT;
    if r.status == StatusCode::OK {
        let token = r.json().as_str().unwrap_or_default().to_string();
        me = srv.me(&token).await.status;
    }
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a grant proved with the old password gave a token after the reset and revoke-all (me: {me}): {}",
        r.text()
    );
    // The refused choice is recorded once, as a refusal naming the document.
    let logins = logins_by(&srv, &admin, &id).await;
    assert_eq!(logins.len(), before + 1, "{logins:?}");
    assert_eq!(logins[0]["outcome"], "failure", "{logins:?}");
    let detail = logins[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("session refused") && detail.contains("account-roles"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_grant_proved_before_a_revoke_all_gives_no_token_and_a_new_proof_does() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "hana", PASSWORD, &["user"]).await;
    let r = prove(&srv, "hana", "app").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv
        .delete_as(&admin, &format!("{USERS}/{id}/sessions"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = choose(&srv, "app", None, &id, "user").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // The password proved again, after the revoke-all, gives a token.
    let r = prove(&srv, "hana", "app").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = choose(&srv, "app", None, &id, "user").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json().as_str().expect("jwt").to_string();
    assert_eq!(srv.me(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn one_account_holds_at_most_eight_grants_and_its_oldest_goes_first() {
    let srv = Server::start_with(limits(1000, 1000)).await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "ivy", PASSWORD, &["user"]).await;
    // Nine proofs from one address, each with another User-Agent.
    let agents: Vec<String> = (0..9).map(|i| format!("agent-{i}")).collect();
    for agent in &agents {
        let r = prove(&srv, "ivy", agent).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let mut given = Vec::new();
    for agent in &agents {
        given.push(choose(&srv, agent, None, &id, "user").await.status);
    }
    let mut expected = vec![StatusCode::OK; 9];
    expected[0] = StatusCode::UNAUTHORIZED;
    assert_eq!(given, expected);
}

// ---- item 8: a narrowed token cannot choose another role ----

#[tokio::test]
async fn a_token_narrowed_to_user_cannot_choose_admin() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let id = srv
        .create_user(&admin, "duo", PASSWORD, &["admin", "user"])
        .await;
    // The documented flow, from a fresh client, narrowed to `user`.
    let r = prove(&srv, "duo", "app").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = choose(&srv, "app", None, &id, "user").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let user_token = r.json().as_str().expect("jwt").to_string();
    // Wait out the grant so only the token is proof.
    srv.advance(600);
    let r = choose(&srv, "elsewhere", Some(&user_token), &id, "admin").await;
    let mut key = Value::Null;
    if r.status == StatusCode::OK {
        let admin_token = r.json().as_str().unwrap_or_default().to_string();
        key = srv
            .post_as(&admin_token, "/api/v1/auth/keys", &json!({ "name": "k" }))
            .await
            .json();
    }
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a user-narrowed token got an admin token (and key: {key}): {}",
        r.text()
    );
    // It still re-issues its own role.
    let r = choose(&srv, "elsewhere", Some(&user_token), &id, "user").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        jwt_claims(r.json().as_str().expect("jwt"))["roles"],
        json!(["user"])
    );
}

#[tokio::test]
async fn a_full_sign_in_token_switches_roles_and_a_password_proof_reaches_any() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let id = srv
        .create_user(&admin, "trio", PASSWORD, &["admin", "user"])
        .await;
    // A full sign-in's token carries both roles: it chooses either.
    let full = srv.token_of("trio", PASSWORD).await;
    for role in ["admin", "user"] {
        let r = choose(&srv, "elsewhere", Some(&full), &id, role).await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.text());
        assert_eq!(
            jwt_claims(r.json().as_str().expect("jwt"))["roles"],
            json!([role])
        );
    }
    // A narrowed token beside a fresh password proof from the same client
    // reaches the other role: the proof is the password.
    let r = choose(&srv, "elsewhere", Some(&full), &id, "user").await;
    let narrowed = r.json().as_str().expect("jwt").to_string();
    let r = prove(&srv, "trio", "elsewhere").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = choose(&srv, "elsewhere", Some(&narrowed), &id, "admin").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        jwt_claims(r.json().as_str().expect("jwt"))["roles"],
        json!(["admin"])
    );
}

// ---- item 19: a proved login whose session is refused is audited ----

#[tokio::test]
async fn a_correct_password_refused_at_open_session_leaves_one_failure_entry() {
    let srv = Server::start_with(Layer {
        argon2_memory_kib: Some(32 * 1024),
        argon2_iterations: Some(4),
        hash_workers: Some(4),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "trudy", PASSWORD, &["user"]).await;
    srv.until_pool_idle().await;
    let before = logins_by(&srv, &admin, &id).await.len();
    let login = tokio::spawn(
        srv.post("/api/v1/auth/login")
            .json(&json!({ "username": "trudy", "password": PASSWORD }))
            .send(),
    );
    srv.until_hashes_in_flight(1).await;
    let r = srv
        .delete_as(&admin, &format!("{USERS}/{id}/sessions"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let login = login.await.expect("login");
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.text());
    let after = logins_by(&srv, &admin, &id).await;
    assert_eq!(
        after.len(),
        before + 1,
        "one password check, one entry: {after:?}"
    );
    assert_eq!(after[0]["outcome"], "failure", "{after:?}");
    assert_eq!(after[0]["target"], id.as_str(), "{after:?}");
    let detail = after[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("session refused: account changed during sign-in"),
        "{detail}"
    );
}

// ---- item 10: a tenant sees nothing from before it was created ----

#[tokio::test]
async fn a_tenant_sees_no_event_dated_before_it_was_created() {
    let mut srv = Server::start().await;
    let world = World::build(&srv).await;
    let merchant_before = srv.audit(world.token("merchant2a")).await.len();
    let reseller_before = srv.audit(world.token("reseller2")).await.len();
    assert!(merchant_before > 0 && reseller_before > 0);
    // An event of an earlier `mer_2a` (deleted and re-created before the
    // store was upgraded), and one of an earlier `res_2`, both stamped
    // with today's ids and dated a day before today's tenants existed.
    plant_logins(
        &mut srv,
        now() - 86_400,
        "res_2",
        "old-owner@example.com",
        [(Some("mer_2a"), "198.51.100.77"), (None, "198.51.100.78")],
    )
    .await;
    for (name, before, extra) in [
        ("merchant2a", merchant_before, 1),
        // The merchant's login just made is the reseller's too.
        ("reseller2", reseller_before, 2),
    ] {
        let token = srv.token_of(name, WORLD_PASSWORD).await;
        let seen = srv.audit(&token).await;
        for ip in ["198.51.100.77", "198.51.100.78"] {
            let shown = seen.iter().filter(|e| e["client_ip"] == ip).count();
            assert_eq!(shown, 0, "{name} sees the earlier tenant's event from {ip}");
        }
        // Everything of its own is still there, with the login just made.
        assert_eq!(seen.len(), before + extra, "{name}");
    }
    let everything = srv.audit(&srv.admin_token().await).await;
    for ip in ["198.51.100.77", "198.51.100.78"] {
        assert_eq!(
            everything.iter().filter(|e| e["client_ip"] == ip).count(),
            1,
            "the admin sees {ip}"
        );
    }
}

#[tokio::test]
async fn a_reseller_sees_its_own_older_events_but_none_older_than_the_merchant_they_name() {
    let mut srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_9", "Nine").await;
    srv.advance(500);
    srv.merchant(&admin, "shop-42", "res_9", "Shop").await;
    let r = srv
        .post(USERS)
        .bearer(&admin)
        .json(
            &json!({ "username": "nine", "email": "nine@example.com", "password": PASSWORD,
                       "roles": ["reseller"], "reseller_id": "res_9" }),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let merchant_made = now() + 500;
    // Two events dated between the reseller's creation and the merchant's:
    // one of the reseller itself, one of an earlier `shop-42`.
    plant_logins(
        &mut srv,
        merchant_made - 250,
        "res_9",
        "someone@example.com",
        [(Some("shop-42"), "198.51.100.91"), (None, "198.51.100.92")],
    )
    .await;
    let token = srv.token_of("nine", PASSWORD).await;
    let seen = srv.audit(&token).await;
    let shown = |ip: &str| seen.iter().filter(|e| e["client_ip"] == ip).count();
    assert_eq!(shown("198.51.100.91"), 0, "the earlier shop-42's event");
    assert_eq!(shown("198.51.100.92"), 1, "the reseller's own event");
}
