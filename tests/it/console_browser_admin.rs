//! The console's admin pages (tenants, roles, API keys, S2S tokens, audit
//! log, signing keys) in a real browser: tests/browser/admin.mjs,
//! admin-audit.mjs and admin-reseller.mjs, run by
//! [`crate::console_browser::browse`] against a server seeded here. What
//! the pages did is checked from this side too: the S2S token and API key
//! the pages showed work before they are revoked in the page and are
//! refused after; the JWKS holds both keys after the rotation.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::console_browser::browse;
use crate::harness::{ADMIN, ADMIN_PASSWORD, PASSWORD, Server, light};

/// A route a merchant-scoped S2S token and an account's API key may both
/// read: whether the credential works.
const PROBE: &str = "/api/v1/admin/merchants";

/// Two resellers with merchants, a reseller, a merchant and a user of the
/// first, a custom role held by that user, an S2S token in each reseller,
/// an API key of the user, and enough accounts that the audit log has more
/// than one page.
async fn seeded(srv: &Server) {
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "acme", "Acme Resale").await;
    srv.merchant(&admin, "acme-shop", "acme", "Acme Shop").await;
    srv.merchant(&admin, "acme-cafe", "acme", "Acme Café").await;
    srv.reseller(&admin, "other", "Other Resale").await;
    srv.merchant(&admin, "other-shop", "other", "Other Shop")
        .await;
    assert_eq!(
        srv.create_role(&admin, "support").await.status,
        StatusCode::CREATED
    );
    let acme = json!({ "reseller_id": "acme" });
    let shop = json!({ "reseller_id": "acme", "merchant_id": "acme-shop" });
    srv.create_user_with(&admin, "rita", PASSWORD, &["reseller"], acme)
        .await;
    srv.create_user_with(&admin, "mona", PASSWORD, &["merchant"], shop.clone())
        .await;
    srv.create_user_with(&admin, "sam", PASSWORD, &["user", "support"], shop.clone())
        .await;
    for i in 0..30 {
        let name = format!("clerk{i:02}");
        srv.create_user_with(&admin, &name, PASSWORD, &["user"], shop.clone())
            .await;
    }
    srv.s2s_secret(
        &admin,
        &json!({ "name": "nightly-export", "role": "merchant", "reseller_id": "acme", "merchant_id": "acme-shop" }),
    )
    .await;
    srv.s2s_secret(
        &admin,
        &json!({ "name": "other-feed", "role": "reseller", "reseller_id": "other" }),
    )
    .await;
    let sam = srv.token_of("sam", PASSWORD).await;
    srv.created(
        "/api/v1/auth/keys",
        &sam,
        &json!({ "name": "deploy-bot", "expiresIn": 7_776_000 }),
    )
    .await;
}

/// The key ids the JWKS publishes.
async fn jwks_kids(srv: &Server) -> Vec<String> {
    let r = srv.get("/.well-known/jwks.json").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// As the admin: tenants created, renamed and deleted, a custom role
/// created and deleted, the signing key rotated, an S2S token issued and
/// an API key made for another account (both secrets shown once), then
/// both revoked and every action found in the audit log through the
/// page's filters; then as a reseller and as a merchant, only their
/// subtree and no control the API would refuse them. Every page passes axe at both widths and schemes.
#[tokio::test]
async fn admin_pages_in_chromium() {
    let srv = Server::start_with(light(Layer::default())).await;
    seeded(&srv).await;
    let admin_env = || {
        vec![
            ("LATCHKEY_USER", ADMIN.to_string()),
            ("LATCHKEY_PASSWORD", ADMIN_PASSWORD.to_string()),
        ]
    };
    assert_eq!(jwks_kids(&srv).await.len(), 1);

    let out = srv.dir.path().join("shown-once.json");
    let mut env = admin_env();
    env.push(("LATCHKEY_OUT", out.display().to_string()));
    env.push(("LATCHKEY_KEY_OWNER", "sam".to_string()));
    browse(&srv, "admin.mjs", &env, 9).await;

    // The secrets the pages showed are real credentials.
    let shown: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("the page's secrets")).expect("JSON");
    let s2s = shown["s2s"].as_str().expect("an S2S token").to_string();
    let key = shown["key"].as_str().expect("an API key").to_string();
    assert_eq!(srv.get_as(&s2s, PROBE).await.status, StatusCode::OK);
    assert_eq!(srv.me_status(&key).await, StatusCode::OK);
    let me = srv.me(&key).await.json();
    assert_eq!(me["username"], "sam", "{me}");
    // Rotated: both keys published, and new tokens carry the new one.
    let kids = jwks_kids(&srv).await;
    assert_eq!(kids.len(), 2, "{kids:?}");

    browse(&srv, "admin-audit.mjs", &admin_env(), 8).await;
    // Revoked in the page: refused from now on.
    assert_eq!(
        srv.get_as(&s2s, PROBE).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(srv.me_status(&key).await, StatusCode::UNAUTHORIZED);

    browse(
        &srv,
        "admin-reseller.mjs",
        &[
            ("LATCHKEY_USER", "rita".to_string()),
            ("LATCHKEY_PASSWORD", PASSWORD.to_string()),
            ("LATCHKEY_MERCHANT_USER", "mona".to_string()),
            ("LATCHKEY_MERCHANT_PASSWORD", PASSWORD.to_string()),
        ],
        8,
    )
    .await;
    // The merchant the reseller made in the page is under its reseller.
    let admin = srv.admin_token().await;
    let made = srv.read(&admin, "/api/v1/admin/merchants/acme-kiosk").await;
    assert_eq!(made["reseller_id"], "acme", "{made}");
}
