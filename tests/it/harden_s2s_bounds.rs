//! S2S tokens are bounded (issue 9, second review): a tenant holds at
//! most `max_s2s_tokens_per_tenant` live tokens and keeps at most twice
//! that many records; housekeeping deletes tokens ended longer than the
//! grace ago; one page of the list reads a bounded number of records.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

const RESELLERS: &str = "/api/v1/admin/resellers";
const S2S_TOKENS: &str = "/api/v1/admin/s2s-tokens";
/// How long an ended record is kept before it may be deleted (the
/// server's `RECORD_GRACE`).
const GRACE: u64 = 3600;

/// Creates reseller `res_a` with merchants `mer_a` and `mer_b`.
async fn tenants(srv: &Server, admin: &str) {
    srv.reseller(admin, "res_a", "A").await;
    for m in ["mer_a", "mer_b"] {
        srv.merchant(admin, m, "res_a", m).await;
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
    srv.post_as(bearer, "/s2s-token", &body).await
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

/// The id of the listed token named `name`.
async fn id_of(srv: &Server, bearer: &str, name: &str) -> String {
    srv.all_pages(bearer, &format!("{S2S_TOKENS}?limit=1000"))
        .await
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("{name} not listed"))
        .to_string()
}

async fn revoke(srv: &Server, admin: &str, name: &str) {
    let id = id_of(srv, admin, name).await;
    let r = srv.delete_as(admin, &format!("{S2S_TOKENS}/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
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
    assert_eq!(
        srv.all_pages(&admin, &format!("{S2S_TOKENS}?limit=1000"))
            .await
            .len(),
        2
    );

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
    let mut mer_a: Vec<String> = srv
        .all_pages(&admin, &format!("{S2S_TOKENS}?limit=1000"))
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
    assert_eq!(srv.me_status(&revoked).await, StatusCode::UNAUTHORIZED);

    // Housekeeping deletes records at most once an hour (the first time
    // at the start): an hour on, the ended ones are still within the
    // grace, and stay.
    srv.advance(GRACE);
    srv.running().housekeeping().await;
    let admin = srv.admin_token().await;
    assert_eq!(
        srv.all_pages(&admin, &format!("{S2S_TOKENS}?limit=1000"))
            .await
            .len(),
        3
    );

    // Past it, they go; the live one stays and still works.
    srv.advance(GRACE);
    srv.running().housekeeping().await;
    let admin = srv.admin_token().await;
    let left = srv
        .all_pages(&admin, &format!("{S2S_TOKENS}?limit=1000"))
        .await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["name"], "live");
    assert_eq!(srv.me_status(&live).await, StatusCode::OK);
    // A deleted token authenticates as nothing, like a revoked one.
    assert_eq!(srv.me_status(&revoked).await, StatusCode::UNAUTHORIZED);
    assert_eq!(srv.me_status(&expired).await, StatusCode::UNAUTHORIZED);
}

/// A token record for reseller `reseller`, written straight to the store:
/// `n` orders it, and `!` sorts it before every issued id.
fn record(n: usize, reseller: &str, expires_at: i64) -> latchkey::store::S2sToken {
    latchkey::store::S2sToken {
        id: format!("!{n:08}"),
        name: format!("stored {n}"),
        role: "reseller".into(),
        reseller_id: reseller.into(),
        merchant_id: None,
        digest: String::new(),
        created_at: 0,
        created_by: "test".into(),
        expires_at: Some(expires_at),
        revoked_at: None,
        last_used: None,
    }
}

/// Stops `srv`, writes `records` into its store in one transaction, and
/// starts it again.
async fn write_directly(srv: &mut Server, records: Vec<latchkey::store::S2sToken>) {
    srv.stop().await;
    let store = latchkey::store::Store::open(&srv.data_dir()).expect("store");
    store
        .write(|tx| {
            for r in &records {
                tx.put_s2s_token(r)?;
            }
            Ok::<_, latchkey::store::StoreError>(())
        })
        .expect("written");
    drop(store);
    srv.restart().await;
}

#[tokio::test]
async fn one_page_of_the_s2s_list_reads_a_bounded_number_of_records() {
    let mut srv = Server::start().await;
    let admin = srv.admin_token().await;
    tenants(&srv, &admin).await;
    srv.reseller(&admin, "res_b", "B").await;
    let b_feed = srv
        .s2s_secret(
            &admin,
            &json!({ "name": "b feed", "role": "reseller", "reseller_id": "res_b" }),
        )
        .await;

    // Ten thousand and one tokens of another reseller sort before the
    // only one reseller B can see.
    let far = now() + 10 * 365 * 86_400;
    write_directly(
        &mut srv,
        (0..10_001).map(|n| record(n, "res_a", far)).collect(),
    )
    .await;

    // The first page stops after 10,000 records: nothing for B, and a
    // cursor where the scan stopped; the next page finds B's token.
    let r = srv.get_as(&b_feed, &format!("{S2S_TOKENS}?limit=10")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first = r.json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(0), "{first}");
    assert_eq!(first["next"], "!00009999");
    let r = srv
        .get_as(&b_feed, &format!("{S2S_TOKENS}?limit=10&cursor=!00009999"))
        .await;
    let second = r.json();
    let names: Vec<&str> = second["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["b feed"], "{second}");
    assert_eq!(second["next"], Value::Null);
}

#[tokio::test]
async fn deleting_a_tenant_ends_all_its_tokens_however_many_outlive_the_cap() {
    // A cap of 1 makes tenant deletion read two tokens a batch.
    let mut srv = Server::start_with(Layer {
        max_s2s_tokens_per_tenant: Some(1),
        ..Layer::default()
    })
    .await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_c", "C").await;
    // Five expired unrevoked tokens (as a store written before the cap
    // may hold), then a live one after them.
    let past = now() - 60;
    let mut records: Vec<_> = (0..5).map(|n| record(n, "res_c", past)).collect();
    records.push(record(5, "res_c", now() + 86_400));
    write_directly(&mut srv, records).await;

    // The live one, past the first batches, still refuses the deletion.
    let admin = srv.admin_token().await;
    let r = srv.delete_as(&admin, &format!("{RESELLERS}/res_c")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());

    // Once it is revoked, the deletion goes through and every expired
    // one is marked revoked with the tenant.
    let r = srv
        .delete_as(&admin, &format!("{S2S_TOKENS}/!00000005"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = srv.delete_as(&admin, &format!("{RESELLERS}/res_c")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let tokens = srv
        .all_pages(&admin, &format!("{S2S_TOKENS}?limit=1000"))
        .await;
    assert_eq!(tokens.len(), 6, "{tokens:?}");
    assert!(
        tokens.iter().all(|t| !t["revoked_at"].is_null()),
        "{tokens:?}"
    );
}
