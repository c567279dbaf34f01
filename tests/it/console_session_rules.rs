//! The console session's safety rules (issue 11): an idle timeout and an
//! absolute lifetime, the password re-entered for sensitive actions, and
//! a console session that only the console's sign-in makes. Every test
//! drives the real server over sockets with the manual clock.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use latchkey::config::Layer;

use crate::harness::{
    ADMIN, ADMIN_EMAIL, ADMIN_PASSWORD, KEYS, ME, PASSWORD, Resp, Server, USERS, light,
};

const SESSION: &str = "/api/v1/console/session";
const REAUTH: &str = "/api/v1/console/reauth";
const SESSIONS: &str = "/api/v1/auth/sessions";

const MINUTE: u64 = 60;

/// A console sign-in as the page holds it.
pub(crate) struct Console {
    /// `name=value` for the Cookie header.
    cookie: String,
    /// The session's CSRF token.
    csrf: String,
    /// The sign-in answer.
    body: Value,
}

pub(crate) async fn sign_in(srv: &Server, username: &str, password: &str) -> Console {
    let r = srv
        .post(SESSION)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .assert(StatusCode::OK);
    let set_cookie = r.header("set-cookie").expect("set-cookie").to_string();
    let cookie = set_cookie.split(';').next().expect("pair").to_string();
    let body = r.json();
    Console {
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").to_string(),
        body,
    }
}

impl Console {
    /// The session's token (the cookie's value).
    fn token(&self) -> &str {
        self.cookie.split_once('=').expect("pair").1
    }

    /// A request as the page makes it: the cookie, and for a change the
    /// CSRF token and our own origin.
    pub(crate) async fn call(
        &self,
        srv: &Server,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Resp {
        let change = method != Method::GET;
        let mut call = srv.call(method, path).header("cookie", &self.cookie);
        if change {
            call = call
                .header("x-csrf-token", &self.csrf)
                .header("origin", &format!("http://127.0.0.1:{}", srv.addr.port()));
        }
        if let Some(b) = body {
            call = call.json(b);
        }
        call.send().await
    }

    async fn get(&self, srv: &Server, path: &str) -> Resp {
        self.call(srv, Method::GET, path, None).await
    }

    /// The session's own id, from its list of sessions.
    async fn id(&self, srv: &Server) -> String {
        let list = self.get(srv, SESSIONS).await.assert(StatusCode::OK).json();
        let items = list["items"].as_array().expect("items");
        let current: Vec<&Value> = items.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1, "{list}");
        current[0]["id"].as_str().expect("id").to_string()
    }
}

/// The ids of an account's live sessions as the admin API lists them.
async fn live_sessions(srv: &Server, admin: &str, account: &str) -> Vec<String> {
    srv.items(admin, &format!("{USERS}/{account}/sessions"))
        .await
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

/// The admin account's id.
async fn admin_id(srv: &Server, admin: &str) -> String {
    srv.me(admin).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn assert_cleared(r: &Resp) {
    let cleared = r.header("set-cookie").expect("the cookie is cleared");
    assert!(
        cleared.starts_with("latchkey_console=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

fn assert_reauth_required(r: &Resp) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json()["code"], "reauth_required", "{}", r.text());
}

/// Idle for 29 minutes the session works; after 31 more it is refused,
/// its cookie cleared, and it stays refused (it was revoked, not merely
/// turned away): it is gone from every list of sessions, and the audit
/// log says why. Its token is no bearer credential anywhere.
#[tokio::test]
async fn an_idle_console_session_ends_and_stays_ended() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let me = admin_id(&srv, &admin).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let id = c.id(&srv).await;

    srv.advance(29 * MINUTE);
    c.get(&srv, ME).await.assert(StatusCode::OK);
    srv.advance(31 * MINUTE);
    let r = c.get(&srv, ME).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.json(), json!({ "error": "Authentication required" }));
    assert_cleared(&r);
    // Ended for good: not even a request at once afterwards revives it.
    for path in [ME, USERS, SESSIONS] {
        let r = c.get(&srv, path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text());
    }
    assert_eq!(srv.me_status(c.token()).await, StatusCode::UNAUTHORIZED);

    // The admin's access token of an hour ago has expired.
    let admin = srv.admin_token().await;
    let other = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let own = other.get(&srv, SESSIONS).await.json();
    assert!(
        !own["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|s| s["id"] == id.as_str()),
        "{own}"
    );
    assert!(!live_sessions(&srv, &admin, &me).await.contains(&id));
    let ended: Vec<Value> = srv
        .audit(&admin)
        .await
        .into_iter()
        .filter(|e| e["event"] == "session_expired" && e["target"] == id.as_str())
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
}

/// A session idle past its timeout leaves the lists of sessions even
/// before a request of its own finds it idle; the timeout is the
/// setting's.
#[tokio::test]
async fn the_idle_timeout_is_the_setting_and_lists_follow_it() {
    let layer = Layer {
        console_idle_timeout: Some(5 * MINUTE),
        ..light(Layer::default())
    };
    let srv = Server::start_with(layer).await;
    let admin = srv.admin_token().await;
    let me = admin_id(&srv, &admin).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let id = c.id(&srv).await;
    srv.advance(4 * MINUTE);
    assert!(live_sessions(&srv, &admin, &me).await.contains(&id));
    c.get(&srv, ME).await.assert(StatusCode::OK);
    srv.advance(5 * MINUTE + 1);
    assert!(!live_sessions(&srv, &admin, &me).await.contains(&id));
    let r = c.get(&srv, ME).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

/// Activity is written at most once a minute, not once a request: the
/// stored last use (what the lists show) moves only when a request comes
/// a minute or more after the last one written.
#[tokio::test]
async fn activity_is_written_at_most_once_a_minute() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let me = admin_id(&srv, &admin).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let id = c.id(&srv).await;
    let last_used = || async {
        let list = srv.items(&admin, &format!("{USERS}/{me}/sessions")).await;
        let s = list
            .iter()
            .find(|s| s["id"] == id.as_str())
            .expect("listed");
        crate::harness::rfc3339_utc(&s["last_used_at"])
    };
    let signed_in = last_used().await;
    for _ in 0..5 {
        srv.advance(10);
        c.get(&srv, ME).await.assert(StatusCode::OK);
    }
    assert_eq!(last_used().await, signed_in);
    srv.advance(10);
    c.get(&srv, ME).await.assert(StatusCode::OK);
    assert_eq!(last_used().await, signed_in + 60);
    srv.advance(30);
    c.get(&srv, ME).await.assert(StatusCode::OK);
    assert_eq!(last_used().await, signed_in + 60);
}

/// A restart does not reset the idle clock: a session idle for 25
/// minutes before a restart is refused 6 minutes after it, and one last
/// active 20 minutes before the restart still works 29 minutes after
/// that activity.
#[tokio::test]
async fn a_restart_keeps_the_idle_clock() {
    let mut srv = Server::start_with(light(Layer::default())).await;
    let idle = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let active = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    srv.advance(20 * MINUTE);
    active.get(&srv, ME).await.assert(StatusCode::OK);
    srv.advance(5 * MINUTE);
    srv.restart().await;
    srv.advance(4 * MINUTE);
    active.get(&srv, ME).await.assert(StatusCode::OK);
    srv.advance(2 * MINUTE);
    let r = idle.get(&srv, ME).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    active.get(&srv, ME).await.assert(StatusCode::OK);
}

/// However active, a console session ends 12 hours after its sign-in,
/// which its sign-in answer says.
#[tokio::test]
async fn the_lifetime_ends_an_active_session() {
    let srv = Server::start_with(light(Layer::default())).await;
    let started = srv.clock.now();
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(
        crate::harness::rfc3339_utc(&c.body["expires_at"]),
        started + 12 * 3600
    );
    for _ in 0..35 {
        srv.advance(20 * MINUTE);
        c.get(&srv, ME).await.assert(StatusCode::OK);
    }
    srv.advance(20 * MINUTE - 1);
    c.get(&srv, ME).await.assert(StatusCode::OK);
    srv.advance(1);
    let r = c.get(&srv, ME).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_cleared(&r);
}

fn new_user(name: &str, roles: &[&str]) -> Value {
    json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "password": PASSWORD,
        "roles": roles,
    })
}

/// Granting admin (at creation or by a change of roles) and deleting an
/// account need the password entered within the last 10 minutes: the
/// sign-in counts; past it each is refused with `reauth_required` and
/// changes nothing, until `POST /api/v1/console/reauth`, which runs
/// exactly one password verification. What is not sensitive goes on.
#[tokio::test]
async fn sensitive_actions_need_a_recent_password() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    c.call(
        &srv,
        Method::POST,
        USERS,
        Some(&new_user("early", &["admin"])),
    )
    .await
    .assert(StatusCode::CREATED);
    let victim = srv.create_user(&admin, "victim", PASSWORD, &["user"]).await;
    let path = format!("{USERS}/{victim}");

    srv.advance(11 * MINUTE);
    let admins = json!({ "roles": ["admin"] });
    let r = c
        .call(
            &srv,
            Method::POST,
            USERS,
            Some(&new_user("late", &["admin"])),
        )
        .await;
    assert_reauth_required(&r);
    assert_reauth_required(&c.call(&srv, Method::PATCH, &path, Some(&admins)).await);
    assert_reauth_required(&c.call(&srv, Method::DELETE, &path, None).await);
    let users = srv.all_pages(&admin, &format!("{USERS}?limit=100")).await;
    assert!(!users.iter().any(|u| u["username"] == "late"));
    let victim_now = srv.read(&admin, &path).await;
    assert_eq!(victim_now["roles"], json!(["user"]), "{victim_now}");
    // Not sensitive: a plain account, another role, a read.
    c.call(
        &srv,
        Method::POST,
        USERS,
        Some(&new_user("plain", &["user"])),
    )
    .await
    .assert(StatusCode::CREATED);
    c.call(
        &srv,
        Method::PATCH,
        &path,
        Some(&json!({ "attributes": { "team": "blue" } })),
    )
    .await
    .assert(StatusCode::OK);

    let hashes = srv.running().hash_verifications();
    let r = c
        .call(
            &srv,
            Method::POST,
            REAUTH,
            Some(&json!({ "password": ADMIN_PASSWORD })),
        )
        .await
        .assert(StatusCode::OK);
    assert_eq!(srv.running().hash_verifications(), hashes + 1);
    let until = crate::harness::rfc3339_utc(&r.json()["reauth_until"]);
    assert_eq!(until, srv.clock.now() + 600);
    c.call(&srv, Method::PATCH, &path, Some(&admins))
        .await
        .assert(StatusCode::OK);
    srv.advance(9 * MINUTE);
    c.call(
        &srv,
        Method::POST,
        USERS,
        Some(&new_user("late", &["admin"])),
    )
    .await
    .assert(StatusCode::CREATED);
    srv.advance(2 * MINUTE);
    assert_reauth_required(&c.call(&srv, Method::DELETE, &path, None).await);
    c.call(
        &srv,
        Method::POST,
        REAUTH,
        Some(&json!({ "password": ADMIN_PASSWORD })),
    )
    .await
    .assert(StatusCode::OK);
    c.call(&srv, Method::DELETE, &path, None)
        .await
        .assert(StatusCode::NO_CONTENT);
    let admin = srv.admin_token().await;
    let reauths = srv
        .audit(&admin)
        .await
        .into_iter()
        .filter(|e| e["event"] == "reauth" && e["outcome"] == "success")
        .count();
    assert_eq!(reauths, 2);
}

/// Re-authentication is a password check like every login: a wrong
/// password is refused (and the session lives on), failures count toward
/// the same lockout (after which the right password is refused there and
/// at every login), and without the CSRF token it runs no hash at all.
#[tokio::test]
async fn reauth_follows_the_rules_of_every_login() {
    let layer = Layer {
        lockout_threshold: Some(3),
        ..light(Layer::default())
    };
    let srv = Server::start_with(layer).await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let hashes = srv.running().hash_verifications();
    let r = srv
        .post(REAUTH)
        .header("cookie", &c.cookie)
        .json(&json!({ "password": ADMIN_PASSWORD }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(srv.running().hash_verifications(), hashes);

    for _ in 0..3 {
        let r = c
            .call(
                &srv,
                Method::POST,
                REAUTH,
                Some(&json!({ "password": "wrong password" })),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
        assert!(r.header("set-cookie").is_none());
    }
    assert_eq!(srv.running().hash_verifications(), hashes + 3);
    let r = c
        .call(
            &srv,
            Method::POST,
            REAUTH,
            Some(&json!({ "password": ADMIN_PASSWORD })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = srv.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    c.get(&srv, ME).await.assert(StatusCode::OK);
}

/// A bearer credential (an access token, an API key) is a program's and
/// has no password to enter: it is not asked for one, however long ago
/// its account signed in, and it has no console session to stamp.
#[tokio::test]
async fn bearer_credentials_are_not_asked_for_a_password() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let key = srv
        .post_as(&admin, KEYS, &json!({ "name": "script" }))
        .await;
    let key = key.assert(StatusCode::CREATED).json()["apiKey"]
        .as_str()
        .expect("apiKey")
        .to_string();
    let a = srv.create_user(&admin, "a1", PASSWORD, &["user"]).await;
    let b = srv.create_user(&admin, "b1", PASSWORD, &["user"]).await;
    srv.advance(11 * MINUTE);
    srv.set_roles(&admin, &a, &["admin"])
        .await
        .assert(StatusCode::OK);
    srv.set_roles(&key, &b, &["admin"])
        .await
        .assert(StatusCode::OK);
    srv.delete_as(&key, &format!("{USERS}/{b}"))
        .await
        .assert(StatusCode::NO_CONTENT);
    let r = srv
        .post_as(&admin, REAUTH, &json!({ "password": ADMIN_PASSWORD }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

/// A console session past its password window cannot make itself a
/// bearer credential (an API key), which would not be asked: making one
/// asks for the password as granting admin does.
#[tokio::test]
async fn a_stale_console_session_cannot_mint_a_bearer_credential() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let body = json!({ "name": "from the console" });
    srv.advance(11 * MINUTE);
    assert_reauth_required(&c.call(&srv, Method::POST, KEYS, Some(&body)).await);
    assert!(
        srv.read(&admin, KEYS)
            .await
            .as_array()
            .expect("keys")
            .is_empty()
    );
    c.call(
        &srv,
        Method::POST,
        REAUTH,
        Some(&json!({ "password": ADMIN_PASSWORD })),
    )
    .await
    .assert(StatusCode::OK);
    c.call(&srv, Method::POST, KEYS, Some(&body))
        .await
        .assert(StatusCode::CREATED);
}

/// Only the console's sign-in makes a console session: another sign-in's
/// opaque token in the console's cookie is refused (and cleared), though
/// it still works as the bearer it is; and the console's token is no
/// bearer credential (so its idle clock and password window cannot be
/// stepped around).
#[tokio::test]
async fn only_the_console_sign_in_makes_a_console_session() {
    let srv = Server::start_with(light(Layer::default())).await;
    let opaque = srv.opaque_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = srv
        .get(ME)
        .header("cookie", &format!("latchkey_console={opaque}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_cleared(&r);
    assert_eq!(srv.me_status(&opaque).await, StatusCode::OK);

    let c = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    c.get(&srv, ME).await.assert(StatusCode::OK);
    assert_eq!(srv.me_status(c.token()).await, StatusCode::UNAUTHORIZED);
    let r = srv.get(&format!("{ME}?token={}", c.token())).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

/// The console's files in brotli for a client that weighs it highest (or
/// ties it with gzip), in gzip when gzip weighs more, as they are when
/// neither is taken: each decompresses to the very bytes served plain,
/// under its own ETag, with `Vary: Accept-Encoding`; brotli is the
/// smaller.
#[tokio::test]
async fn console_files_come_in_brotli_gzip_or_plain_as_asked() {
    use std::io::Read;
    let srv = Server::start_with(light(Layer::default())).await;
    let page = srv.get("/admin/").send().await.assert(StatusCode::OK);
    let mut paths = vec!["/admin/".to_string()];
    paths.extend(
        page.text()
            .split('"')
            .filter(|p| p.starts_with("/admin/assets/") && !p.ends_with(".png"))
            .map(str::to_string),
    );
    assert!(paths.len() >= 3, "{paths:?}");
    let fetch = |path: String, accept: Option<&'static str>| {
        let call = srv.get(&path);
        let call = match accept {
            Some(a) => call.header("accept-encoding", a),
            None => call,
        };
        async move { call.send().await.assert(StatusCode::OK) }
    };
    for path in paths {
        let plain = fetch(path.clone(), None).await;
        assert!(plain.header("content-encoding").is_none(), "{path}");
        let plain_body = plain.body.to_vec();
        let mut etags = vec![plain.header("etag").expect("etag").to_string()];
        for (accept, coding) in [
            ("br", "br"),
            ("gzip, br", "br"),
            ("gzip, deflate, br;q=0.5", "gzip"),
            ("br;q=0, gzip", "gzip"),
        ] {
            let r = fetch(path.clone(), Some(accept)).await;
            assert_eq!(
                r.header("content-encoding"),
                Some(coding),
                "{path} {accept}"
            );
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path}");
            let mut out = Vec::new();
            match coding {
                "br" => brotli::Decompressor::new(&r.body[..], 4096)
                    .read_to_end(&mut out)
                    .expect("brotli"),
                _ => flate2::read::GzDecoder::new(&r.body[..])
                    .read_to_end(&mut out)
                    .expect("gzip"),
            };
            assert_eq!(out, plain_body, "{path} {accept}");
            assert!(r.body.len() < plain_body.len(), "{path} {accept}");
            etags.push(r.header("etag").expect("etag").to_string());
        }
        let br = fetch(path.clone(), Some("br")).await.body.len();
        let gz = fetch(path.clone(), Some("gzip")).await.body.len();
        assert!(br <= gz, "{path}: brotli {br} bytes, gzip {gz}");
        etags.sort();
        etags.dedup();
        assert_eq!(etags.len(), 3, "{path}: {etags:?}");
        let r = fetch(path.clone(), Some("br;q=0, gzip;q=0")).await;
        assert!(r.header("content-encoding").is_none(), "{path}");
        assert_eq!(r.body.to_vec(), plain_body, "{path}");
    }
}
