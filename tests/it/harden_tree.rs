//! Issue 9, review 3: a reseller's manager cannot grow its tree without
//! bound (merchants per reseller, live S2S tokens in the whole tree), and
//! an email change that ends provider links ends the sessions they opened.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::json;

use crate::external::{google_signs_in, world_with_provider};
use crate::harness::*;

const MERCHANTS: &str = "/api/v1/admin/merchants";
const S2S_TOKENS: &str = "/api/v1/admin/s2s-tokens";
const PASSWORD: &str = "a reseller manager password";

/// Merchants are tenants of their own, each with `cap` live S2S tokens,
/// and a reseller's manager creates them: without a bound on the whole
/// tree, one reseller would hold merchants x cap live tokens (the review 3
/// probe). With the cap at 1 the tree holds at most 2, and the list shows
/// exactly what was granted.
#[tokio::test]
async fn a_reseller_manager_cannot_hold_more_live_s2s_tokens_than_twice_the_cap() {
    let srv = Server::start_with(Layer {
        max_s2s_tokens_per_tenant: Some(1),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_a", "A").await;
    srv.created(
        USERS,
        &admin,
        &json!({
            "username": "resmgr",
            "email": "resmgr@example.com",
            "password": PASSWORD,
            "roles": ["reseller"],
            "reseller_id": "res_a",
        }),
    )
    .await;
    let manager = srv.token_of("resmgr", PASSWORD).await;
    let mut granted = 0;
    for i in 0..5 {
        let merchant = format!("mer_{i}");
        srv.created(
            MERCHANTS,
            &manager,
            &json!({ "id": merchant, "name": merchant }),
        )
        .await;
        let r = srv
            .post("/s2s-token")
            .bearer(&manager)
            .json(&json!({
                "name": format!("svc_{i}"),
                "role": "merchant",
                "reseller_id": "res_a",
                "merchant_id": merchant,
            }))
            .send()
            .await;
        if r.status == StatusCode::OK {
            granted += 1;
        }
    }
    let live = srv
        .all_pages(&manager, &format!("{S2S_TOKENS}?limit=1000"))
        .await
        .iter()
        .filter(|t| t["revoked_at"].is_null())
        .count();
    assert_eq!(live, granted, "the list shows what was granted");
    assert!(
        live <= 2,
        "one reseller manager holds {live} live S2S tokens with max_s2s_tokens_per_tenant = 1"
    );
}

/// A reseller has at most 1000 merchants: the 1001st is refused with 409
/// inside the creating write and is not stored; deleting one frees a
/// place. Counted through the list, not trusted from the refusal.
#[tokio::test]
async fn a_reseller_has_at_most_a_thousand_merchants() {
    const MOST: usize = 1000;
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_big", "Big").await;
    let create = |id: String| {
        let srv = &srv;
        let admin = &admin;
        async move {
            srv.post(MERCHANTS)
                .bearer(admin)
                .json(&json!({ "id": id, "reseller_id": "res_big", "name": id }))
                .send()
                .await
        }
    };
    for i in 0..MOST {
        let r = create(format!("mer_{i:04}")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{i}: {}", r.text());
    }
    let r = create("mer_over".into()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.json()["error"].is_string(), "{}", r.text());
    let r = srv.get_as(&admin, &format!("{MERCHANTS}/mer_over")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let mut stored = 0;
    let mut path = format!("{MERCHANTS}?reseller_id=res_big&limit=1000");
    loop {
        let r = srv.get(&path).bearer(&admin).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let page = r.json();
        stored += page["items"].as_array().expect("items").len();
        match page["next"].as_str() {
            Some(next) => {
                path = format!("{MERCHANTS}?reseller_id=res_big&limit=1000&cursor={next}")
            }
            None => break,
        }
    }
    assert_eq!(stored, MOST);
    // Another reseller's places are its own.
    srv.reseller(&admin, "res_small", "Small").await;
    srv.merchant(&admin, "mer_small", "res_small", "s").await;
    // Deleting one frees its place.
    let r = srv
        .delete_as(&admin, &format!("{MERCHANTS}/mer_0000"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = create("mer_over".into()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// A session opened through a provider link made by the account's email
/// ends when an admin changes that email (the link ends with it), as when
/// a manager sets the password. An email change on an account with no
/// link leaves its sessions alone.
#[tokio::test]
async fn an_email_change_that_ends_a_link_ends_the_sessions_it_opened() {
    let (provider, srv, w) = world_with_provider().await;
    let admin = w.token("admin").to_string();
    let user = w.get("user1a");
    let r = google_signs_in(&provider, &srv, &user.email, "sub-1").await;
    let via_google = r.json()["token"].as_str().expect("token").to_string();
    assert_eq!(srv.me_status(&via_google).await, StatusCode::OK);
    // The control: an account without a link keeps its session.
    let other = w.get("user2a");
    assert_eq!(srv.me_status(&other.token).await, StatusCode::OK);
    let r = srv
        .patch_as(
            &admin,
            &format!("{USERS}/{}", other.id),
            &json!({ "email": "user2a.renamed@example.com" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(srv.me_status(&other.token).await, StatusCode::OK);
    // The linked account's email changes: the link and its session end.
    let r = srv
        .patch_as(
            &admin,
            &format!("{USERS}/{}", user.id),
            &json!({ "email": "user1a.renamed@example.com" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(srv.me_status(&via_google).await, StatusCode::UNAUTHORIZED);
    assert_eq!(srv.me_status(&user.token).await, StatusCode::UNAUTHORIZED);
}
