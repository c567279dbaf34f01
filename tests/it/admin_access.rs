//! Every admin route refuses a missing, bad, expired or revoked credential.

use http::{Method, StatusCode};
use serde_json::json;

use crate::admin_helpers::*;
use crate::harness::*;

// ---- every route needs a credential ----

#[tokio::test]
async fn every_admin_route_refuses_a_missing_bad_expired_or_revoked_credential() {
    let srv = Server::start().await;
    let logged_out = srv.admin_token().await;
    let r = srv
        .post("/api/v1/auth/logout")
        .bearer(&logged_out)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let expiring = srv.admin_token().await;
    // Access tokens live 900 seconds by default, with 30 seconds of leeway.
    srv.advance(931);
    let live_again = srv.admin_token().await;
    assert_eq!(me(&srv, &expiring).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &live_again).await, StatusCode::OK);

    let some_id = "7d0f2a4e-0000-4000-8000-000000000001";
    let routes = latchkey::api::admin::routes();
    assert!(routes.len() >= 29, "only {} admin routes", routes.len());
    for route in routes {
        let args = vec![some_id; route.path.matches('{').count()];
        let path = fill(route.path, &args);
        let body = matches!(route.method, Method::POST | Method::PATCH).then(|| json!({}));
        for token in [
            None,
            Some("not-a-token"),
            Some(&*expiring),
            Some(&*logged_out),
        ] {
            let r = send(&srv, token, route.method.clone(), &path, body.as_ref()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{} {path} with {token:?}: {}",
                route.method,
                r.text()
            );
            assert_eq!(r.json(), json!({ "error": "Authentication required" }));
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|h| h.starts_with("Bearer")),
                "{} {path}: no challenge",
                route.method
            );
        }
        // The same route does answer a live credential (whatever it says).
        let r = send(
            &srv,
            Some(&live_again),
            route.method.clone(),
            &path,
            body.as_ref(),
        )
        .await;
        assert_ne!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{} {path}",
            route.method
        );
    }
}
