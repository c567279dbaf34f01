//! The seams between the issue 9 fixes, each tried the way an attacker or
//! a puzzled operator would meet it: a custom role named in another case
//! for a key or a filter; a login or a role choice begun
//! with the old password that tries to land after a password change; an
//! expired S2S token holding its tenant; an external sign-in whose answer
//! shows an account other than the one its session saw.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

const NEW_PASSWORD: &str = "another long password";

// Seam 1: one rule for role names (item 18) wherever a role is compared.

#[tokio::test]
async fn a_custom_role_named_in_another_case_works_for_keys_and_filters() {
    let srv = Server::start().await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    srv.create_role(&admin, "Support-Team")
        .await
        .assert(StatusCode::CREATED);
    let id = srv
        .create_user(&admin, "sue", PASSWORD, &["support-team", "user"])
        .await;
    let sue = srv.token_of("sue", PASSWORD).await;

    // A key asked for with the role in another case carries the role as
    // the account holds it, and works.
    for body in [
        json!({ "name": "a", "roles": ["support-team"] }),
        json!({ "name": "b", "role": "SUPPORT-TEAM" }),
    ] {
        let r = srv.post(KEYS).bearer(&sue).json(&body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{body}: {}", r.text());
        assert_eq!(r.json()["roles"], json!(["Support-Team"]), "{body}");
        let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();
        let me = srv.me(&key).await;
        assert_eq!(me.status, StatusCode::OK, "{body}: {}", me.text());
        assert_eq!(
            me.json()["credential"]["roles"],
            json!(["Support-Team"]),
            "{body}"
        );
    }
    // Two spellings of one role are one role, listed twice; a role the
    // account does not hold is refused in any case.
    for body in [
        json!({ "roles": ["support-team", "Support-Team"] }),
        json!({ "roles": ["ADMIN"] }),
        json!({ "roles": ["support-teams"] }),
    ] {
        let r = srv.post(KEYS).bearer(&sue).json(&body).send().await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text()
        );
        assert!(r.json()["error"].is_string(), "{body}");
    }
    let keys = srv.read(&sue, KEYS).await;
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys}");

    // The admin's list finds the account by the role in any case.
    for asked in ["Support-Team", "support-team", "SUPPORT-TEAM"] {
        let r = srv.get_as(&admin, &format!("{USERS}?role={asked}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let found: Vec<Value> = r.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| a["id"].clone())
            .collect();
        assert_eq!(found, [json!(id)], "{asked}");
    }

    // Taking the role away still kills the keys made in another case.
    let r = srv.set_roles(&admin, &id, &["user"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv.get_as(&admin, &format!("{USERS}/{id}/keys")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let left = r.json();
    let left = left.get("items").unwrap_or(&left);
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
}

// Seam 2: a password change ends every sign-in begun with the old one.

#[tokio::test]
async fn a_login_in_flight_does_not_survive_a_password_change() {
    let srv = Server::start_slow_hashing().await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "pat", PASSWORD, &["user"]).await;

    let login = srv.login_in_flight("pat", PASSWORD).await;
    let r = srv.set_password(&admin, &id, NEW_PASSWORD).await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = login.await.expect("login task");
    if r.status == StatusCode::OK {
        let token = r.json()["token"].as_str().expect("token").to_string();
        assert_eq!(
            srv.me_status(&token).await,
            StatusCode::UNAUTHORIZED,
            "a login that checked the old password gave a working token"
        );
    } else {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert!(r.json()["error"].is_string());
    }
    // The new password works; the old one does not.
    let r = srv.try_login("pat", NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv.try_login("pat", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

/// `/api/account/roles` for `name`: the password proof a role choice
/// without a token relies on.
async fn prove(srv: &Server, name: &str) -> String {
    let r = srv
        .post_json(
            "/api/account/roles",
            &json!({ "email": format!("{name}@example.com"), "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["accountId"]
        .as_str()
        .expect("accountId")
        .to_string()
}

async fn choose(srv: &Server, id: &str) -> Resp {
    srv.post("/api/account/token")
        .json(&json!({ "accountId": id, "role": "user" }))
        .send()
        .await
}

#[tokio::test]
async fn a_role_choice_proved_with_the_old_password_opens_nothing_after_a_change() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "rory", PASSWORD, &["user"]).await;
    srv.create_user(&admin, "rita", PASSWORD, &["user"]).await;

    // The proof is given, then the password changes (by the admin, or by
    // the owner), or every session is revoked: the proof opens nothing.
    let id = prove(&srv, "rory").await;
    let r = srv.set_password(&admin, &id, NEW_PASSWORD).await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = choose(&srv, &id).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.json().is_string(), "{}", r.text());

    let id = prove(&srv, "rita").await;
    let r = srv
        .delete_as(&admin, &format!("{USERS}/{id}/sessions"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = choose(&srv, &id).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    // A proof given afterwards works, and so does its next choice.
    let id = prove(&srv, "rita").await;
    for _ in 0..2 {
        let r = choose(&srv, &id).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let token = r.json().as_str().expect("a bare token").to_string();
        assert_eq!(srv.me_status(&token).await, StatusCode::OK);
    }
}

// Seam 3: an expired S2S token does not hold its tenant, and dies with it.

#[tokio::test]
async fn an_expired_s2s_token_does_not_hold_its_tenant_and_dies_with_it() {
    let srv = Server::start_with(Layer {
        s2s_max_ttl: Some(3600),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_x", "X").await;
    srv.merchant(&admin, "mer_x", "res_x", "X shop").await;
    let issue = |body: Value| srv.post("/s2s-token").bearer(&admin).json(&body).send();
    let r = issue(
        json!({ "name": "shop", "role": "merchant", "reseller_id": "res_x",
        "merchant_id": "mer_x", "expires_in": 60 }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let shop = r.json()["token"].as_str().expect("token").to_string();
    let r = issue(
        json!({ "name": "chain", "role": "reseller", "reseller_id": "res_x",
        "expires_in": 120 }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let chain = r.json()["token"].as_str().expect("token").to_string();

    // Live, each holds its tenant.
    let r = srv.delete_as(&admin, "/api/v1/admin/merchants/mer_x").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.json()["error"].is_string());
    assert_eq!(srv.me_status(&shop).await, StatusCode::OK);

    // Expired, it does not, and it is revoked with its tenant.
    srv.advance(60);
    assert_eq!(srv.me_status(&shop).await, StatusCode::UNAUTHORIZED);
    let r = srv.delete_as(&admin, "/api/v1/admin/merchants/mer_x").await;
    assert!(r.status.is_success(), "{}", r.text());
    // The reseller's token still lives and holds the reseller.
    let r = srv.delete_as(&admin, "/api/v1/admin/resellers/res_x").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(srv.me_status(&chain).await, StatusCode::OK);
    srv.advance(60);
    let r = srv.delete_as(&admin, "/api/v1/admin/resellers/res_x").await;
    assert!(r.status.is_success(), "{}", r.text());

    let listed = srv.items(&admin, "/api/v1/admin/s2s-tokens").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for t in &listed {
        assert!(
            t["revoked_at"].is_string(),
            "not ended with its tenant: {t}"
        );
    }
    for token in [&shop, &chain] {
        assert_eq!(srv.me_status(token).await, StatusCode::UNAUTHORIZED);
    }
    // A revoked token was never in the way either.
    srv.reseller(&admin, "res_y", "Y").await;
    let r = issue(json!({ "name": "gone", "role": "reseller", "reseller_id": "res_y" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let gone = r.json()["id"].as_str().map(str::to_string);
    let gone = match gone {
        Some(id) => id,
        None => srv
            .items(&admin, "/api/v1/admin/s2s-tokens")
            .await
            .iter()
            .find(|t| t["name"] == "gone")
            .and_then(|t| t["id"].as_str())
            .expect("listed")
            .to_string(),
    };
    let r = srv
        .delete_as(&admin, &format!("/api/v1/admin/s2s-tokens/{gone}"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = srv.delete_as(&admin, "/api/v1/admin/resellers/res_y").await;
    assert!(r.status.is_success(), "{}", r.text());
}

// Seam 4: an external sign-in answers with the account its session saw.

use crate::external::{Answer, StandIn, google_info};

/// Audit events `event` with outcome success, oldest first, as (seq,
/// target).
async fn events(srv: &Server, admin: &str, event: &str) -> Vec<(u64, String)> {
    let r = srv
        .get(&format!(
            "/api/v1/admin/audit?event={event}&outcome=success&limit=1000"
        ))
        .bearer(admin)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["next"].is_null(), "more than a page of {event}");
    let mut out: Vec<(u64, String)> = r.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().expect("seq"),
                e["target"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test]
async fn an_external_sign_in_answers_with_the_account_its_session_saw() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(Layer {
        rate_login_per_ip: Some(100_000),
        rate_login_per_account: Some(100_000),
        ..provider.layer()
    })
    .await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "ext0", PASSWORD, &["user"]).await;
    provider.answer(Answer::Json(
        200,
        google_info("ext0@example.com", "sub-ext"),
    ));

    // The admin renames the account, ext1, ext2, ..., while it signs in
    // again and again; the renames' commits fall between the sign-ins'
    // reads and their sessions' commits.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let srv = std::sync::Arc::new(srv);
    let renames = {
        let (stop, srv) = (stop.clone(), srv.clone());
        let (admin, path) = (admin.clone(), format!("{USERS}/{id}"));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 900 {
                n += 1;
                let r = srv
                    .patch_as(&admin, &path, &json!({ "username": format!("ext{n}") }))
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            }
            n
        })
    };
    let mut shown = Vec::new();
    for _ in 0..60 {
        let r = srv
            .post_json(
                "/api/v1/auth/external/google",
                &json!({ "email": "ext0@example.com", "access_token": "ya29.token" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        shown.push(r.json()["user"]["username"].clone());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let renamed = renames.await.expect("renames");
    assert!(renamed > 0);

    // The n-th session was committed after some number k of renames: its
    // answer must say ext{k}, the name the session saw.
    let renames_at: Vec<u64> = events(&srv, &admin, "account_updated")
        .await
        .into_iter()
        .filter(|(_, target)| *target == id)
        .map(|(seq, _)| seq)
        .collect();
    let sessions = events(&srv, &admin, "external_login").await;
    assert_eq!(sessions.len(), shown.len());
    let mut stale = 0;
    for ((seq, _), shown) in sessions.iter().zip(&shown) {
        let k = renames_at.iter().filter(|r| *r < seq).count();
        if *shown != json!(format!("ext{k}")) {
            stale += 1;
        }
    }
    assert_eq!(
        stale, 0,
        "answers showing another account than their session's"
    );
}

// Seam 5: the identifier bound (item 3) on the routes the provider branch
// added: refused in each document's words, before the provider is asked.

#[tokio::test]
async fn over_long_emails_on_every_external_route_get_a_4xx_in_json_and_ask_no_provider() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    provider.answer(Answer::Json(200, google_info("x@example.com", "sub-x")));
    let huge = format!("{}@example.com", "\u{FDFA}".repeat(120));
    let routes = [
        (
            "/api/auth/google/token",
            json!({ "email": huge, "google_access_token": "ya29.t" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/auth/microsoft/token",
            json!({ "email": huge, "microsoft_access_token": "t" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/auth/external/google",
            json!({ "email": huge, "access_token": "ya29.t" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/auth/external/microsoft",
            json!({ "email": huge, "access_token": "t" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, body, status) in routes {
        let r = srv.post(path).json(&body).send().await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(
            r.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("at most 320 bytes")),
            "{path}: {}",
            r.text()
        );
    }
    assert_eq!(provider.seen().len(), 0, "a provider was asked");
}

// Seam 1 again: the external default role (item 16) is a role name like
// any other, found in any case and given as the role is stored.

#[tokio::test]
async fn the_external_default_role_is_named_in_any_case_and_given_as_stored() {
    let provider = StandIn::start().await;
    let mut srv = Server::start_with(provider.layer()).await;
    let admin = srv.admin_token().await;
    srv.create_role(&admin, "Support-Team")
        .await
        .assert(StatusCode::CREATED);
    srv.layer = Layer {
        external_auto_create: Some(true),
        external_default_role: Some("support-team".into()),
        ..provider.layer()
    };
    srv.restart().await;
    provider.answer(Answer::Json(
        200,
        google_info("newcomer@example.com", "sub-new"),
    ));
    let r = srv
        .post_json(
            "/api/v1/auth/external/google",
            &json!({ "email": "newcomer@example.com", "access_token": "ya29.t" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json()["token"].as_str().expect("token").to_string();
    let me = srv.me(&token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["roles"], json!(["Support-Team"]));
    // The one role is held as stored, so a key narrowed to it works.
    let r = srv
        .created(KEYS, &token, &json!({ "role": "SUPPORT-team" }))
        .await;
    assert_eq!(r.json()["roles"], json!(["Support-Team"]));
}

// Seam 5: a token read from the URL (the token document's opaque token)
// issues no S2S token on the tenant document's route either (item 9 with
// the query-string rule of item 8), refused in that document's words.

#[tokio::test]
async fn a_url_token_issues_no_s2s_token_on_the_tenant_route() {
    let srv = Server::start().await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let opaque = srv.opaque_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = json!({ "name": "n", "role": "reseller", "reseller_id": "res_1" });
    let r = srv
        .post_json(&format!("/s2s-token?token={opaque}"), &body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.json()["detail"].is_string(), "{}", r.text());
    assert_eq!(srv.items(&admin, "/api/v1/admin/s2s-tokens").await.len(), 0);
    // The same token in the header may.
    let r = srv.post_as(&opaque, "/s2s-token", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(srv.items(&admin, "/api/v1/admin/s2s-tokens").await.len(), 1);
}
