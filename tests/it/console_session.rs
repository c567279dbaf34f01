//! The console's session (issue 11): signing in sets an HttpOnly cookie
//! and answers a CSRF token; the dispatcher takes the cookie only on
//! routes that allow the console, and for a change only with the
//! session's CSRF token from our own origin; a bearer header wins.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use latchkey::config::Layer;

use crate::harness::{
    ADMIN, ADMIN_EMAIL, ADMIN_PASSWORD, ME, PASSWORD, Resp, Server, USERS, light,
};

const SESSION: &str = "/api/v1/console/session";

/// A console sign-in as the page makes it.
struct Console {
    /// `name=value` for the Cookie header.
    cookie: String,
    /// The session's CSRF token.
    csrf: String,
    /// The whole Set-Cookie header.
    set_cookie: String,
    /// The sign-in answer.
    body: Value,
}

async fn try_sign_in(srv: &Server, username: &str, password: &str) -> Resp {
    srv.post(SESSION)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
}

async fn sign_in(srv: &Server, username: &str, password: &str) -> Console {
    let r = try_sign_in(srv, username, password)
        .await
        .assert(StatusCode::OK);
    let set_cookie = r.header("set-cookie").expect("set-cookie").to_string();
    let cookie = set_cookie.split(';').next().expect("pair").to_string();
    let body = r.json();
    Console {
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").to_string(),
        set_cookie,
        body,
    }
}

fn origin(srv: &Server) -> String {
    format!("http://127.0.0.1:{}", srv.addr.port())
}

/// A request with the console's cookie and, when given, its CSRF token
/// and Origin.
async fn with_cookie(
    srv: &Server,
    c: &Console,
    method: Method,
    path: &str,
    csrf: Option<&str>,
    origin: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut call = srv.call(method, path).header("cookie", &c.cookie);
    if let Some(t) = csrf {
        call = call.header("x-csrf-token", t);
    }
    if let Some(o) = origin {
        call = call.header("origin", o);
    }
    if let Some(b) = body {
        call = call.json(b);
    }
    call.send().await
}

async fn user_count(srv: &Server, admin: &str) -> usize {
    srv.all_pages(admin, USERS).await.len()
}

/// Over plain HTTP the cookie is `latchkey_console`: HttpOnly,
/// SameSite=Strict, Path=/, never Secure; it holds an opaque session
/// token, and the body carries a CSRF token that is not that token. An
/// email signs in as well as a username.
#[tokio::test]
async fn sign_in_sets_an_http_only_strict_cookie() {
    let srv = Server::start_with(light(Layer::default())).await;
    for name in [ADMIN, ADMIN_EMAIL] {
        let c = sign_in(&srv, name, ADMIN_PASSWORD).await;
        let (cookie_name, token) = c.cookie.split_once('=').expect("pair");
        assert_eq!(cookie_name, "latchkey_console");
        assert!(token.starts_with("lk_ot_"), "{}", c.set_cookie);
        let attributes: Vec<&str> = c.set_cookie.split(';').skip(1).map(str::trim).collect();
        assert_eq!(attributes, ["Path=/", "HttpOnly", "SameSite=Strict"]);
        assert!(c.csrf.len() >= 40, "{}", c.csrf);
        assert!(!c.body.to_string().contains(token));
        assert_eq!(c.body["user"]["username"], ADMIN);
    }
    let wrong = try_sign_in(&srv, ADMIN, "wrong password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json(), json!({ "error": "Invalid credentials" }));
    assert!(wrong.header("set-cookie").is_none());
}

/// Over TLS the cookie is `__Host-latchkey_console` and Secure, and only
/// that name is taken.
#[tokio::test]
async fn over_tls_the_cookie_is_host_prefixed_and_secure() {
    let srv = Server::start_tls(light(Layer::default())).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let (cookie_name, token) = c.cookie.split_once('=').expect("pair");
    assert_eq!(cookie_name, "__Host-latchkey_console");
    let attributes: Vec<&str> = c.set_cookie.split(';').skip(1).map(str::trim).collect();
    assert_eq!(
        attributes,
        ["Path=/", "HttpOnly", "Secure", "SameSite=Strict"]
    );
    let r = srv.get(ME).header("cookie", &c.cookie).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let plain_name = format!("latchkey_console={token}");
    let r = srv.get(ME).header("cookie", &plain_name).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

/// The cookie alone reads the admin API and the caller's own account.
#[tokio::test]
async fn cookie_reads_console_routes() {
    let srv = Server::start_with(light(Layer::default())).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    for path in [USERS, ME, "/api/v1/admin/roles", "/api/v1/auth/keys"] {
        let r = with_cookie(&srv, &c, Method::GET, path, None, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        let r = srv.get(path).send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let me = with_cookie(&srv, &c, Method::GET, ME, None, None, None).await;
    assert_eq!(me.json()["username"], ADMIN, "{}", me.text());
}

/// A change made with the cookie needs the session's CSRF token and our
/// own origin; each refusal is a 403 JSON error and writes nothing.
#[tokio::test]
async fn changes_need_the_csrf_token_and_our_origin() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let other = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let own = origin(&srv);
    let before = user_count(&srv, &admin).await;
    let body = |n: &str| json!({ "username": n, "email": format!("{n}@example.com"), "password": PASSWORD, "roles": ["user"] });
    let refused: [(Option<&str>, Option<&str>); 6] = [
        (None, Some(&own)),
        (Some("not-the-token"), Some(&own)),
        (Some(&other.csrf), Some(&own)),
        (Some(&c.csrf), Some("https://evil.example")),
        (Some(&c.csrf), Some("http://127.0.0.1:1")),
        (Some(&c.csrf), None),
    ];
    for (i, (csrf, from)) in refused.iter().enumerate() {
        let name = format!("refused{i}");
        let r = with_cookie(
            &srv,
            &c,
            Method::POST,
            USERS,
            *csrf,
            *from,
            Some(&body(&name)),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{i}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{i}");
    }
    // Sec-Fetch-Site from another site is refused even with our Origin.
    let r = srv
        .post(USERS)
        .header("cookie", &c.cookie)
        .header("x-csrf-token", &c.csrf)
        .header("origin", &own)
        .header("sec-fetch-site", "cross-site")
        .json(&body("refused-fetch-site"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(user_count(&srv, &admin).await, before);

    with_cookie(
        &srv,
        &c,
        Method::POST,
        USERS,
        Some(&c.csrf),
        Some(&own),
        Some(&body("made1")),
    )
    .await
    .assert(StatusCode::CREATED);
    // A browser that sends only Sec-Fetch-Site: same-origin is ours too.
    srv.post(USERS)
        .header("cookie", &c.cookie)
        .header("x-csrf-token", &c.csrf)
        .header("sec-fetch-site", "same-origin")
        .json(&body("made2"))
        .send()
        .await
        .assert(StatusCode::CREATED);
    assert_eq!(user_count(&srv, &admin).await, before + 2);
}

/// The cookie is no credential on any route that needs one and does not
/// allow the console, even with its CSRF token and our origin.
#[tokio::test]
async fn cookie_is_refused_where_the_console_is_not_allowed() {
    let srv = Server::start_with(light(Layer::default())).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let own = origin(&srv);
    let mut checked = 0;
    for route in latchkey::api::routes() {
        if route.console || !route.needs_principal() {
            continue;
        }
        let path: String = route
            .path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let body =
            (route.method == Method::POST || route.method == Method::PATCH).then(|| json!({}));
        let r = with_cookie(
            &srv,
            &c,
            route.method.clone(),
            &path,
            Some(&c.csrf),
            Some(&own),
            body.as_ref(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{} {path}: {}",
            route.method,
            r.text()
        );
        checked += 1;
    }
    assert!(checked >= 2, "{checked}");
    // The session was not ended by any of that.
    with_cookie(&srv, &c, Method::GET, ME, None, None, None)
        .await
        .assert(StatusCode::OK);
}

/// A bearer header wins over the cookie: no CSRF token is needed with
/// it, and a bad one is refused even beside a good cookie.
#[tokio::test]
async fn a_bearer_header_wins_over_the_cookie() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let body = json!({ "username": "viabearer", "email": "viabearer@example.com", "password": PASSWORD, "roles": ["user"] });
    srv.post(USERS)
        .header("cookie", &c.cookie)
        .bearer(&admin)
        .json(&body)
        .send()
        .await
        .assert(StatusCode::CREATED);
    let r = srv
        .get(USERS)
        .header("cookie", &c.cookie)
        .bearer("lk_ot_not-a-session")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

/// Signing out (with the CSRF token) ends the session and clears the
/// cookie; without the token it is refused and the session lives on.
#[tokio::test]
async fn sign_out_ends_the_session() {
    let srv = Server::start_with(light(Layer::default())).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let own = origin(&srv);
    with_cookie(&srv, &c, Method::DELETE, SESSION, None, Some(&own), None)
        .await
        .assert(StatusCode::FORBIDDEN);
    with_cookie(&srv, &c, Method::GET, ME, None, None, None)
        .await
        .assert(StatusCode::OK);
    let r = with_cookie(
        &srv,
        &c,
        Method::DELETE,
        SESSION,
        Some(&c.csrf),
        Some(&own),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    let cleared = r.header("set-cookie").expect("set-cookie");
    assert!(cleared.starts_with("latchkey_console=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let r = with_cookie(&srv, &c, Method::GET, ME, None, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

/// Disabling the account, or taking its admin role, stops its console
/// session on the next request.
#[tokio::test]
async fn disable_and_demotion_end_the_console_session() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let alice = srv.create_user(&admin, "alice", PASSWORD, &["admin"]).await;
    let bob = srv.create_user(&admin, "bob", PASSWORD, &["admin"]).await;
    let a = sign_in(&srv, "alice", PASSWORD).await;
    let b = sign_in(&srv, "bob", PASSWORD).await;
    for c in [&a, &b] {
        with_cookie(&srv, c, Method::GET, USERS, None, None, None)
            .await
            .assert(StatusCode::OK);
    }
    srv.act_as(&admin, &format!("{USERS}/{alice}/disable"))
        .await
        .assert(StatusCode::OK);
    let r = with_cookie(&srv, &a, Method::GET, ME, None, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    srv.set_roles(&admin, &bob, &["user"])
        .await
        .assert(StatusCode::OK);
    let r = with_cookie(&srv, &b, Method::GET, USERS, None, None, None).await;
    assert!(
        matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "{}",
        r.text()
    );
}

/// Console sign-in failures count toward the same lockout as every
/// login: after the threshold, the right password is refused on the
/// canonical login too.
#[tokio::test]
async fn console_failures_lock_the_account_for_every_login() {
    let layer = Layer {
        lockout_threshold: Some(3),
        ..light(Layer::default())
    };
    let srv = Server::start_with(layer).await;
    for _ in 0..3 {
        try_sign_in(&srv, ADMIN, "wrong password")
            .await
            .assert(StatusCode::UNAUTHORIZED);
    }
    let r = srv.try_login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = try_sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.header("set-cookie").is_none());
}

/// Every account lists its own live sessions (the console's "my
/// sessions"), the asking one marked current, and never another
/// account's; an ended session leaves the list.
#[tokio::test]
async fn own_sessions_are_listed_to_their_account() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "carol", PASSWORD, &["user"]).await;
    let c = sign_in(&srv, "carol", PASSWORD).await;
    let jwt = srv.token_of("carol", PASSWORD).await;
    let list = |r: Resp| {
        r.assert(StatusCode::OK).json()["items"]
            .as_array()
            .cloned()
            .expect("items")
    };
    let own_by_cookie = || {
        with_cookie(
            &srv,
            &c,
            Method::GET,
            "/api/v1/auth/sessions",
            None,
            None,
            None,
        )
    };
    let via_cookie = list(own_by_cookie().await);
    assert_eq!(via_cookie.len(), 2, "{via_cookie:?}");
    let current: Vec<&Value> = via_cookie.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{via_cookie:?}");
    assert_eq!(current[0]["kind"], "opaque", "{via_cookie:?}");
    let admin_own = list(srv.get_as(&admin, "/api/v1/auth/sessions").await);
    assert_eq!(admin_own.len(), 1, "{admin_own:?}");
    assert!(via_cookie.iter().all(|s| s["id"] != admin_own[0]["id"]));
    srv.post("/api/v1/auth/logout")
        .bearer(&jwt)
        .send()
        .await
        .assert(StatusCode::OK);
    let after = list(own_by_cookie().await);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["current"], true);
}
