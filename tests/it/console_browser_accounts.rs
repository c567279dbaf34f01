//! The accounts pages, "My keys" and the overview in a real browser
//! (tests/browser/accounts.mjs through [`browse`]), and what they did as
//! the API sees it afterwards.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::console_browser::browse;
use crate::harness::{ADMIN, ADMIN_PASSWORD, PASSWORD, Server, USERS, light};

/// The usernames a list answers, in order.
fn usernames(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(|a| a["username"].as_str()).collect()
}

/// The custom role the page grants.
const ROLE: &str = "Support";

fn scratch(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name).to_string_lossy().into_owned();
    (dir, path)
}

async fn account(srv: &Server, admin: &str, id: &str) -> Value {
    let r = srv.get_as(admin, &format!("{USERS}/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// In the page: a wrong password shows the API's words and three of them
/// lock the account for console sign-in; an account is created (a bad
/// email refused beside its field), found by a search that survives a
/// reload, given a role and an API key (its secret shown once), its two
/// sessions revoked one and then all, and disabled; an API key is created on My account, its secret shown once,
/// works with curl, and is refused once revoked in the page; two of three
/// accounts are disabled in bulk; the list filtered by search and state
/// is exported as CSV;
/// a reseller sees only its subtree and is offered no admin role; a
/// cross-site request with the page's cookie is refused. Every page is
/// checked by axe-core at both widths and schemes. Then the API says the
/// page really did all of it.
#[tokio::test]
async fn accounts_pages_in_chromium() {
    let srv = Server::start_with(light(Layer {
        lockout_threshold: Some(3),
        ..Layer::default()
    }))
    .await;
    let admin = srv.admin_token().await;
    srv.create_role(&admin, ROLE)
        .await
        .assert(StatusCode::CREATED);
    srv.reseller(&admin, "acme", "Acme Hosting").await;
    srv.merchant(&admin, "shop1", "acme", "Corner Shop").await;
    srv.create_user(&admin, "locky", PASSWORD, &["user"]).await;
    let bulk: Vec<String> = {
        let mut ids = Vec::new();
        for name in ["bulk1", "bulk2", "bulk3"] {
            let extra = json!({ "merchant_id": "shop1" });
            ids.push(
                srv.create_user_with(&admin, name, PASSWORD, &["user"], extra)
                    .await,
            );
        }
        ids
    };
    let victim = srv.create_user(&admin, "victim", PASSWORD, &["user"]).await;
    srv.create_user_with(
        &admin,
        "rita",
        PASSWORD,
        &["reseller"],
        json!({ "reseller_id": "acme" }),
    )
    .await;
    let seeded = srv.all_pages(&admin, USERS).await.len();
    let (_out_dir, out) = scratch("facts.json");

    browse(
        &srv,
        "accounts.mjs",
        &[
            ("ADMIN_USER", ADMIN.to_string()),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
            ("LOCK_USER", "locky".to_string()),
            ("RESELLER_USER", "rita".to_string()),
            ("USER_PASSWORD", PASSWORD.to_string()),
            ("ROLE", ROLE.to_string()),
            ("OUT_FILE", out.clone()),
            ("VICTIM_ID", victim.clone()),
        ],
        15,
    )
    .await;
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("facts")).expect("json");

    // The overview counted the accounts there were.
    assert_eq!(facts["overviewAccounts"], seeded);

    // The lockout the page met holds for every login.
    let r = srv.try_login("locky", PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // The account the page made, with the role it gave, disabled.
    let erin_id = facts["erin"].as_str().expect("erin's id");
    let erin = account(&srv, &admin, erin_id).await;
    assert_eq!(erin["username"], "erin");
    assert_eq!(erin["roles"], json!(["user", ROLE]), "{erin}");
    assert_eq!(erin["disabled"], true, "{erin}");
    let r = srv.try_login("erin", PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // The key the page made for it acted as erin, and ended with the
    // account's disabling.
    assert_eq!(facts["erinKeyActsAs"], "erin");
    let erin_key = facts["erinKey"].as_str().expect("erin's key");
    assert!(erin_key.starts_with("sk_live_"), "{erin_key}");
    assert_ne!(srv.me_status(erin_key).await, StatusCode::OK);
    let erin_keys = srv.items(&admin, &format!("{USERS}/{erin_id}/keys")).await;
    assert_eq!(erin_keys, Vec::<Value>::new());

    // Its sessions are gone, and the tokens they carried with them.
    let sessions = srv
        .items(&admin, &format!("{USERS}/{erin_id}/sessions"))
        .await;
    assert_eq!(sessions, Vec::<Value>::new());
    let tokens = facts["erinTokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2);
    for t in tokens {
        let status = srv.me_status(t.as_str().expect("token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // The key the page made and revoked.
    let key = facts["key"].as_str().expect("key");
    assert_eq!(srv.me_status(key).await, StatusCode::UNAUTHORIZED);
    let listed = srv.get_as(&admin, "/api/v1/auth/keys").await.json();
    assert_eq!(listed, json!([]), "{listed}");

    // Bulk: the two chosen, not the third.
    for (id, disabled) in bulk.iter().zip([true, true, false]) {
        assert_eq!(account(&srv, &admin, id).await["disabled"], disabled);
    }
    assert_eq!(facts["csvLines"], 3);

    // The cross-site request changed nothing.
    assert_eq!(account(&srv, &admin, &victim).await["disabled"], false);
}

/// A console session asks for the password again before deleting an
/// account once the password is more than 10 minutes old (a wrong one is
/// refused in the dialog, the right one lets the deletion through), and
/// one left alone past its idle timeout ends: the browser state saved
/// while signed in (its cookie works then) brings back the sign-in form
/// after the server's clock moves 31 minutes, and the cookie is refused by
/// the API too.
#[tokio::test]
async fn console_session_reauth_then_idle_timeout_in_chromium() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let doomed = srv.create_user(&admin, "doomed", PASSWORD, &["user"]).await;
    let (_dir, state) = scratch("state.json");
    let env = |phase: &str| {
        vec![
            ("PHASE", phase.to_string()),
            ("ADMIN_USER", ADMIN.to_string()),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
            ("STATE_FILE", state.clone()),
            ("TARGET_USER", "doomed".to_string()),
        ]
    };
    browse(&srv, "accounts.mjs", &env("idle-sign-in"), 1).await;
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    let cookie = saved["state"]["cookies"]
        .as_array()
        .and_then(|all| {
            all.iter().find(|c| {
                c["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("latchkey_console"))
            })
        })
        .map(|c| {
            format!(
                "{}={}",
                c["name"].as_str().unwrap_or(""),
                c["value"].as_str().unwrap_or("")
            )
        })
        .expect("the console cookie");
    let me = || srv.get("/api/v1/auth/me").header("cookie", &cookie).send();
    assert_eq!(me().await.status, StatusCode::OK);

    // Past the password's window, inside the idle timeout.
    srv.advance(11 * 60);
    browse(&srv, "accounts.mjs", &env("reauth-delete"), 1).await;
    let r = srv.get_as(&admin, &format!("{USERS}/{doomed}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());

    srv.advance(31 * 60);
    assert_eq!(me().await.status, StatusCode::UNAUTHORIZED);
    browse(&srv, "accounts.mjs", &env("idle-return"), 1).await;
}

/// The account list (and its CSV export) filters by state as the
/// console's State filter asks: `active` only the enabled, `disabled`
/// only the disabled; any other state is refused naming the field.
#[tokio::test]
async fn the_account_list_filters_by_state() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "on", PASSWORD, &["user"]).await;
    let off = srv.create_user(&admin, "off", PASSWORD, &["user"]).await;
    srv.post_as(&admin, &format!("{USERS}/{off}/disable"), &json!({}))
        .await
        .assert(StatusCode::OK);

    let disabled = srv.items(&admin, &format!("{USERS}?state=disabled")).await;
    assert_eq!(usernames(&disabled), ["off"]);
    let active = srv.items(&admin, &format!("{USERS}?state=active")).await;
    assert_eq!(usernames(&active), [ADMIN, "on"]);
    let both = srv.items(&admin, USERS).await;
    assert_eq!(usernames(&both), [ADMIN, "on", "off"]);

    let r = srv.get_as(&admin, &format!("{USERS}?state=locked")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["field"], "state");

    let csv = srv
        .get_as(&admin, "/api/v1/admin/users.csv?state=disabled")
        .await
        .assert(StatusCode::OK)
        .text();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(rows[0].contains(",off,"), "{csv}");
}

/// A key a manager makes for another account works at once: for an
/// account that has not signed in since the server started, and for one
/// disabled and enabled again since (the console makes such keys from the
/// account's page, often right after enabling it).
#[tokio::test]
async fn a_key_made_for_another_account_works_at_once() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "fresh", PASSWORD, &["user"]).await;
    let make = |name: &'static str| {
        let path = format!("{USERS}/{id}/keys");
        let admin = admin.clone();
        let srv = &srv;
        async move {
            let made = srv
                .created(&path, &admin, &json!({ "name": name }))
                .await
                .json();
            made["apiKey"].as_str().expect("apiKey").to_string()
        }
    };
    let first = make("first").await;
    let me = srv.me(&first).await.assert(StatusCode::OK).json();
    assert_eq!(me["username"], "fresh");

    for step in ["disable", "enable"] {
        srv.post_as(&admin, &format!("{USERS}/{id}/{step}"), &json!({}))
            .await
            .assert(StatusCode::OK);
    }
    let second = make("second").await;
    let me = srv.me(&second).await.assert(StatusCode::OK).json();
    assert_eq!(me["username"], "fresh");
}
