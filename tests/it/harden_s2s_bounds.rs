//! S2S tokens are bounded (issue 9, second review): a tenant holds at
//! most `max_s2s_tokens_per_tenant` live tokens and keeps at most twice
//! that many records; housekeeping deletes tokens ended longer than the
//! grace ago; one page of the list reads a bounded number of records.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

const RESELLERS: &str = "/api/v1/admin/resellers";
const MERCHANTS: &str = "/api/v1/admin/merchants";
const S2S_TOKENS: &str = "/api/v1/admin/s2s-tokens";
/// How long an ended record is kept before it may be deleted (the
/// server's `RECORD_GRACE`).
const GRACE: u64 = 3600;

/// Creates reseller `res_a` with merchants `mer_a` and `mer_b`.
async fn tenants(srv: &Server, admin: &str) {
    let r = srv
        .post(RESELLERS)
        .bearer(admin)
        .json(&json!({ "id": "res_a", "name": "A" }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for m in ["mer_a", "mer_b"] {
        let r = srv
            .post(MERCHANTS)
            .bearer(admin)
            .json(&json!({ "id": m, "reseller_id": "res_a", "name": m }))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
}

/// Asks `POST /s2s-token` for a token; `merchant` `None` asks for a
/// reseller token.
async fn issue(
    srv: &Server,
    bearer: &str,
    name: &str,
    merchant: Option<&str>,
    expires_in: Option<u64>,
) -> Resp {
    let mut body = json!({
        "name": name,
        "role": if merchant.is_some() { "merchant" } else { "reseller" },
        "reseller_id": "res_a",
    });
    if let Some(m) = merchant {
        body["merchant_id"] = json!(m);
    }
    if let Some(secs) = expires_in {
        body["expires_in"] = json!(secs);
    }
    srv.post("/s2s-token")
        .bearer(bearer)
        .json(&body)
        .send()
        .await
}

/// Issues a token that must be granted; returns its secret.
async fn mint(
    srv: &Server,
    bearer: &str,
    name: &str,
    merchant: Option<&str>,
    expires_in: Option<u64>,
) -> String {
    let r = issue(srv, bearer, name, merchant, expires_in).await;
    assert_eq!(r.status, StatusCode::OK, "issuing {name}: {}", r.text());
    r.json()["token"].as_str().expect("token").to_string()
}

/// Every S2S token the admin list shows, following `next` to the end.
async fn listed(srv: &Server, bearer: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("{S2S_TOKENS}?limit=1000");
    loop {
        let r = srv.get(&path).bearer(bearer).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let page = r.json();
        out.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("{S2S_TOKENS}?limit=1000&cursor={next}"),
            None => return out,
        }
    }
}

/// The id of the listed token named `name`.
async fn id_of(srv: &Server, bearer: &str, name: &str) -> String {
    listed(srv, bearer)
        .await
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("{name} not listed"))
        .to_string()
}

async fn revoke(srv: &Server, admin: &str, name: &str) {
    let id = id_of(srv, admin, name).await;
    let r = srv
        .delete(&format!("{S2S_TOKENS}/{id}"))
        .bearer(admin)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}

/// `GET /api/v1/auth/me` with this bearer: its status.
async fn me(srv: &Server, bearer: &str) -> StatusCode {
    srv.get("/api/v1/auth/me")
        .bearer(bearer)
        .send()
        .await
        .status
}

/// Asserts a refusal in the tenant document's words: 409 with a `detail`
/// containing `says`.
fn refused(r: &Resp, says: &str) {
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains(says), "{detail}");
}

#[tokio::test]
async fn a_tenant_holds_at_most_the_configured_number_of_live_s2s_tokens() {
    let srv = Server::start_with(Layer {
        max_s2s_tokens_per_tenant: Some(2),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    tenants(&srv, &admin).await;

    mint(&srv, &admin, "short", Some("mer_a"), Some(60)).await;
    mint(&srv, &admin, "second", Some("mer_a"), None).await;
    let r = issue(&srv, &admin, "third", Some("mer_a"), None).await;
    refused(&r, "the most it may hold (2)");
    // The refusal wrote nothing.
    assert_eq!(listed(&srv, &admin).await.len(), 2);

    // The cap is the merchant's: another merchant, and the reseller's own
    // tokens, have places of their own.
    mint(&srv, &admin, "other merchant", Some("mer_b"), None).await;
    mint(&srv, &admin, "reseller", None, None).await;

    // Revoking one frees a place.
    revoke(&srv, &admin, "second").await;
    mint(&srv, &admin, "after revoke", Some("mer_a"), None).await;
    let r = issue(&srv, &admin, "full again", Some("mer_a"), None).await;
    refused(&r, "the most it may hold (2)");

    // So does expiring.
    srv.advance(61);
    let admin = srv.admin_token().await;
    mint(&srv, &admin, "after expiry", Some("mer_a"), None).await;
    let r = issue(&srv, &admin, "full once more", Some("mer_a"), None).await;
    refused(&r, "the most it may hold (2)");

    // Issuing and revoking in a loop cannot grow the store: the merchant
    // keeps at most four records (live or ended within the grace), so with
    // one live and three ended the next is refused until the grace passes.
    revoke(&srv, &admin, "after revoke").await;
    let r = issue(&srv, &admin, "churn", Some("mer_a"), None).await;
    refused(&r, "the most it may keep (4)");
    srv.advance(GRACE + 1);
    let admin = srv.admin_token().await;
    mint(&srv, &admin, "after grace", Some("mer_a"), None).await;
    // The issuance deleted the merchant's records ended past the grace.
    let mut mer_a: Vec<String> = listed(&srv, &admin)
        .await
        .iter()
        .filter(|t| t["merchant_id"] == "mer_a")
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect();
    mer_a.sort();
    assert_eq!(mer_a, ["after expiry", "after grace"]);
}

#[tokio::test]
async fn housekeeping_deletes_s2s_tokens_ended_longer_than_the_grace_ago() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    tenants(&srv, &admin).await;
    let live = mint(&srv, &admin, "live", Some("mer_a"), None).await;
    let revoked = mint(&srv, &admin, "revoked", Some("mer_a"), None).await;
    let expired = mint(&srv, &admin, "expired", None, Some(10)).await;
    revoke(&srv, &admin, "revoked").await;
    assert_eq!(me(&srv, &revoked).await, StatusCode::UNAUTHORIZED);

    // Within the grace, the ended records stay.
    srv.advance(GRACE / 2);
    srv.running().housekeeping().await;
    let admin = srv.admin_token().await;
    assert_eq!(listed(&srv, &admin).await.len(), 3);

    // Past it, they go; the live one stays and still works.
    srv.advance(GRACE);
    srv.running().housekeeping().await;
    let admin = srv.admin_token().await;
    let left = listed(&srv, &admin).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["name"], "live");
    assert_eq!(me(&srv, &live).await, StatusCode::OK);
    // A deleted token authenticates as nothing, like a revoked one.
    assert_eq!(me(&srv, &revoked).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &expired).await, StatusCode::UNAUTHORIZED);
}
