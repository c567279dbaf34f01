//! Sessions through the admin API: listed with client details, revoked
//! one at a time or all together.

use http::StatusCode;
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

// ---- sessions ----

#[tokio::test]
async fn sessions_are_listed_with_client_details_and_revoked_one_or_all() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let admin_id = id_of(&me_json(&srv, &admin).await);
    let id = id_of(&create_user(&srv, &admin, person("traveller", "user", None, None)).await);
    let sessions = fill(USER_SESSIONS, &[&id]);

    let one = login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-one/1.0").await;
    srv.advance(30);
    let two = login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-two/2.0 (test)").await;
    let list = get_json(&srv, &admin, &sessions).await;
    assert_eq!(list["next"], Value::Null);
    let items = list["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2, "{list}");
    // Newest first.
    assert_eq!(
        column(&items, "user_agent"),
        ["agent-two/2.0 (test)", "agent-one/1.0"]
    );
    for s in &items {
        assert_eq!(s["client_ip"], "127.0.0.1");
        for key in ["id", "created_at", "last_used_at", "expires_at"] {
            assert!(s[key].is_string(), "{key} in {s}");
        }
        assert!(s["expires_at"].as_str() > s["created_at"].as_str());
        assert_no_secrets(s);
    }
    assert!(items[0]["created_at"].as_str() > items[1]["created_at"].as_str());
    let (two_id, one_id) = (id_of(&items[0]), id_of(&items[1]));

    // Another account's session is not this account's to revoke.
    let admin_session = session_ids(&srv, &admin, &admin_id).await[0].clone();
    for sid in [
        admin_session.as_str(),
        "not-a-uuid",
        "7d0f2a4e-0000-4000-8000-000000000001",
    ] {
        let r = srv
            .delete_as(&admin, &fill(USER_SESSION, &[&id, sid]))
            .await
            .assert(StatusCode::NOT_FOUND);
        assert_eq!(r.json(), not_found("Session"), "{sid}");
    }
    assert_eq!(me(&srv, &admin).await, StatusCode::OK);

    // One.
    srv.delete_as(&admin, &fill(USER_SESSION, &[&id, &one_id]))
        .await
        .assert(StatusCode::NO_CONTENT);
    assert_eq!(me(&srv, &token_of(&one)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_status(&srv, &one["refreshToken"]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&srv, &token_of(&two)).await, StatusCode::OK);
    assert_eq!(session_ids(&srv, &admin, &id).await, [two_id]);
    srv.delete_as(&admin, &fill(USER_SESSION, &[&id, &one_id]))
        .await
        .assert(StatusCode::NOT_FOUND);

    // All.
    let three = login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-three").await;
    let r = srv
        .delete_as(&admin, &sessions)
        .await
        .assert(StatusCode::OK);
    assert_eq!(r.json(), json!({ "revoked": 2 }));
    for s in [&two, &three] {
        assert_eq!(me(&srv, &token_of(s)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            refresh_status(&srv, &s["refreshToken"]).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(session_ids(&srv, &admin, &id).await.is_empty());
    assert_eq!(me(&srv, &admin).await, StatusCode::OK);

    // An account sees and ends its own sessions too.
    let four = token_of(&login_with_agent(&srv, "traveller", WORLD_PASSWORD, "agent-four").await);
    let own = get_json(&srv, &four, &sessions).await;
    assert_eq!(
        column(own["items"].as_array().expect("items"), "user_agent"),
        ["agent-four"]
    );

    // A session past its lifetime (seven days by default) is not live.
    srv.advance(7 * 24 * 3600 + 1);
    assert!(
        session_ids(&srv, &srv.admin_token().await, &id)
            .await
            .is_empty()
    );
}
