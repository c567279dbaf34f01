//! Tenants still holding merchants, accounts or tokens are not deleted.

use http::StatusCode;

use crate::admin_helpers::*;
use crate::harness::*;

// ---- tenant deletion ----

#[tokio::test]
async fn tenants_still_holding_merchants_accounts_or_tokens_are_not_deleted() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.reseller(&admin, "res_x", "X").await;
    srv.merchant(&admin, "mer_x", "res_x", "X shop").await;
    let reseller = fill(RESELLER, &["res_x"]);
    let merchant = fill(MERCHANT, &["mer_x"]);
    let refused = |r: Resp, word: &str| {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        let message = r.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(message.contains(word), "{message:?} does not say {word}");
    };

    refused(srv.delete_as(&admin, &reseller).await, "merchant");
    get_json(&srv, &admin, &reseller).await;

    let clerk =
        id_of(&create_user(&srv, &admin, person("clerk", "user", None, Some("mer_x"))).await);
    refused(srv.delete_as(&admin, &merchant).await, "account");
    get_json(&srv, &admin, &merchant).await;
    assert_eq!(
        get_json(&srv, &admin, &fill(USER, &[&clerk])).await["merchant_id"],
        "mer_x"
    );

    let boss = id_of(
        &create_user(
            &srv,
            &admin,
            person("boss", "reseller", Some("res_x"), None),
        )
        .await,
    );
    srv.delete_as(&admin, &fill(USER, &[&clerk]))
        .await
        .assert(StatusCode::NO_CONTENT);
    srv.delete_as(&admin, &merchant)
        .await
        .assert(StatusCode::NO_CONTENT);
    refused(srv.delete_as(&admin, &reseller).await, "account");
    srv.delete_as(&admin, &fill(USER, &[&boss]))
        .await
        .assert(StatusCode::NO_CONTENT);

    let (s2s, _) = issue_s2s(&srv, &admin, "feed", "reseller", "res_x", None).await;
    refused(srv.delete_as(&admin, &reseller).await, "token");
    srv.delete_as(&admin, &fill(S2S_TOKEN, &[&s2s]))
        .await
        .assert(StatusCode::NO_CONTENT);

    srv.delete_as(&admin, &reseller)
        .await
        .assert(StatusCode::NO_CONTENT);
    let r = srv
        .get_as(&admin, &reseller)
        .await
        .assert(StatusCode::NOT_FOUND);
    assert_eq!(r.json(), not_found("Reseller"));
    let r = srv
        .get_as(&admin, &merchant)
        .await
        .assert(StatusCode::NOT_FOUND);
    assert_eq!(r.json(), not_found("Merchant"));
    srv.delete_as(&admin, &reseller)
        .await
        .assert(StatusCode::NOT_FOUND);
}
