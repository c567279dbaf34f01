//! Attacker's-eye review of the console and the authentication fast
//! paths: each test here failed on the code as merged.

use http::StatusCode;
use serde_json::json;

use latchkey::config::Layer;

use crate::harness::{ADMIN, ADMIN_PASSWORD, PASSWORD, Server, USERS, light};

const SESSION: &str = "/api/v1/console/session";

/// Behind a TLS-terminating proxy (`--insecure-http`, as the README
/// describes) the browser's page is `https://<host>` while the connection
/// the server sees is plain HTTP: the page's own changes, with the right
/// cookie and CSRF token and `Sec-Fetch-Site: same-origin`, must be
/// accepted, and the same request from any other origin still refused.
#[tokio::test]
async fn console_changes_work_behind_a_tls_terminating_proxy() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let r = srv
        .post(SESSION)
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .assert(StatusCode::OK);
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_string();
    let csrf = r.json()["csrf_token"].as_str().expect("csrf").to_string();
    let before = srv.all_pages(&admin, USERS).await.len();
    let body = |n: &str| json!({ "username": n, "email": format!("{n}@example.com"), "password": PASSWORD, "roles": ["user"] });
    let https_self = format!("https://127.0.0.1:{}", srv.addr.port());
    // Another origin, and our host from another site, are still refused.
    for (i, (origin, site)) in [
        ("https://evil.example", "cross-site"),
        ("https://evil.example", "same-origin"),
        (https_self.as_str(), "same-site"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = srv
            .post(USERS)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("origin", origin)
            .header("sec-fetch-site", site)
            .json(&body(&format!("refused{i}")))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{i}: {}", r.text());
    }
    assert_eq!(srv.all_pages(&admin, USERS).await.len(), before);
    let r = srv
        .post(USERS)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", &https_self)
        .header("sec-fetch-site", "same-origin")
        .json(&body("made-behind-proxy"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(srv.all_pages(&admin, USERS).await.len(), before + 1);
}
