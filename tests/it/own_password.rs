//! `POST /api/v1/auth/password` (issue 12): an account changes its own
//! password without a path under `/admin/`, by the same operation and rules
//! as the admin route.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::json;

use crate::harness::*;

const OWN: &str = "/api/v1/auth/password";
const NEW_PASSWORD: &str = "a brand new password";

#[tokio::test]
async fn an_account_changes_its_own_password_and_its_other_sessions_end() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "dana", PASSWORD, &["user"]).await;
    let here = srv.token_of("dana", PASSWORD).await;
    let elsewhere = srv.token_of("dana", PASSWORD).await;
    let r = srv
        .post(OWN)
        .bearer(&here)
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    // The new password signs in, the old one no longer does.
    srv.login("dana", NEW_PASSWORD).await;
    let old = srv
        .post("/api/v1/auth/login")
        .json(&json!({ "username": "dana", "password": PASSWORD }))
        .send()
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    // The session that asked stays; the other one ended.
    assert_eq!(srv.me_status(&here).await, StatusCode::OK);
    assert_eq!(srv.me_status(&elsewhere).await, StatusCode::UNAUTHORIZED);
    // Audited as the admin route's change is.
    let changed: Vec<_> = srv
        .audit(&admin)
        .await
        .into_iter()
        .filter(|e| e["event"] == "password_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["actor_name"], "dana", "{}", changed[0]);
}

#[tokio::test]
async fn the_current_password_is_checked_like_a_login() {
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(3),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "erin", PASSWORD, &["user"]).await;
    let token = srv.token_of("erin", PASSWORD).await;
    let wrong = json!({ "current_password": "not my password", "new_password": NEW_PASSWORD });
    let hashes = srv.running().hash_verifications();
    let r = srv.post(OWN).bearer(&token).json(&wrong).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["field"], "current_password");
    // Exactly one hash for the check, as for a login.
    assert_eq!(srv.running().hash_verifications() - hashes, 1);
    for _ in 0..2 {
        let r = srv.post(OWN).bearer(&token).json(&wrong).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    }
    // Three wrong current passwords lock the account, for sign-ins too.
    let r = srv
        .post("/api/v1/auth/login")
        .json(&json!({ "username": "erin", "password": PASSWORD }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let right = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    let r = srv.post(OWN).bearer(&token).json(&right).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // The password did not change.
    let r = srv
        .post("/api/v1/auth/login")
        .json(&json!({ "username": "erin", "password": NEW_PASSWORD }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_requests_and_credentials_that_cannot_mint_are_refused() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "fay", PASSWORD, &["user"]).await;
    let token = srv.token_of("fay", PASSWORD).await;
    let cases = [
        (
            json!({ "current_password": PASSWORD, "new_password": "short" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("new_password"),
        ),
        (
            json!({ "current_password": PASSWORD }),
            StatusCode::BAD_REQUEST,
            Some("new_password"),
        ),
        (
            json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD, "is_admin": true }),
            StatusCode::BAD_REQUEST,
            Some("is_admin"),
        ),
    ];
    for (body, status, field) in cases {
        let r = srv.post(OWN).bearer(&token).json(&body).send().await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.json()["field"].as_str(), field, "{body}: {}", r.text());
    }
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    // No credential: 401 with the challenge.
    let r = srv.post(OWN).json(&body).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    // An API key of the account may not set its password.
    let key = srv.created(KEYS, &token, &json!({})).await.json();
    let key = key["apiKey"].as_str().expect("apiKey").to_string();
    let r = srv.post_as(&key, OWN, &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // Nothing changed: the old password still signs in.
    srv.login("fay", PASSWORD).await;
}
