//! Attacker's-eye review of the console and the authentication fast
//! paths: each test here failed on the code as merged.

use http::StatusCode;
use serde_json::json;

use latchkey::config::Layer;

use crate::harness::{ADMIN, ADMIN_PASSWORD, ME, PASSWORD, Server, USERS, light};

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

/// Behind a TLS-terminating proxy the console's page is `https://`, so its
/// session cookie must be `Secure` and host-only (`__Host-`): without that
/// a browser sends it over any plain `http://` request to the host (an
/// attacker on the network can cause one and read it), and a sibling
/// subdomain can set one of its own. The cookie then works as before, and
/// signing out clears that name.
#[tokio::test]
async fn behind_a_tls_terminating_proxy_the_cookie_is_secure() {
    let srv = Server::start_with(light(Layer::default())).await;
    let https_self = format!("https://127.0.0.1:{}", srv.addr.port());
    let r = srv
        .post(SESSION)
        .header("origin", &https_self)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .assert(StatusCode::OK);
    let set_cookie = r.header("set-cookie").expect("set-cookie").to_string();
    let attributes: Vec<&str> = set_cookie.split(';').skip(1).map(str::trim).collect();
    assert_eq!(
        attributes,
        ["Path=/", "HttpOnly", "Secure", "SameSite=Strict"],
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().expect("pair").to_string();
    assert!(cookie.starts_with("__Host-latchkey_console="), "{cookie}");
    let csrf = r.json()["csrf_token"].as_str().expect("csrf").to_string();
    let me = srv.get(ME).header("cookie", &cookie).send().await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let out = srv
        .call(http::Method::DELETE, SESSION)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", &https_self)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .assert(StatusCode::NO_CONTENT);
    let cleared = out.header("set-cookie").expect("set-cookie");
    assert!(
        cleared.starts_with("__Host-latchkey_console=;") && cleared.contains("Secure"),
        "{cleared}"
    );
    let me = srv.get(ME).header("cookie", &cookie).send().await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text());
}
