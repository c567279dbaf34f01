//! Paging by cursor and filtering of the admin lists.

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

// ---- paging and filters ----

/// The [`World`] and 44 more accounts, `shopper00` to `shopper43`
/// (emails `ShopperNN@Shops.Example`): the even ones under `mer_1a`, the
/// odd ones under `mer_2b`; with their names.
struct Shoppers {
    srv: Server,
    w: World,
    even: Vec<String>,
    odd: Vec<String>,
}

async fn shoppers() -> Shoppers {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let mut even = Vec::new();
    let mut odd = Vec::new();
    for i in 0..44 {
        let name = format!("shopper{i:02}");
        let merchant = if i % 2 == 0 { "mer_1a" } else { "mer_2b" };
        create_user(
            &srv,
            admin,
            json!({
                "username": name,
                "email": format!("Shopper{i:02}@Shops.Example"),
                "password": WORLD_PASSWORD,
                "roles": ["user"],
                "merchant_id": merchant,
            }),
        )
        .await;
        if i % 2 == 0 {
            even.push(name)
        } else {
            odd.push(name)
        }
    }

    Shoppers { srv, w, even, odd }
}

#[tokio::test]
async fn the_account_list_is_paged_by_cursor() {
    let Shoppers { srv, w, .. } = shoppers().await;
    let admin = w.token("admin");
    // The default page is 50.
    let first = get_json(&srv, admin, USERS).await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(50));
    assert!(first["next"].is_string(), "{}", first["next"]);
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "cursor=abc",
    ] {
        let r = srv
            .get_as(admin, &format!("{USERS}?{bad}"))
            .await
            .assert(StatusCode::BAD_REQUEST);
        assert!(r.json()["error"].is_string());
    }
    let everything = get_json(&srv, admin, &format!("{USERS}?limit=1000")).await;
    assert_eq!(everything["next"], Value::Null);
    let all = everything["items"].as_array().expect("items").clone();
    assert_eq!(all.len(), 52);
    let all_ids = column(&all, "id");
    assert_eq!(all_ids.iter().collect::<BTreeSet<_>>().len(), 52);
    for limit in [1, 2, 7, 50] {
        let walked = walk(&srv, admin, USERS, limit).await;
        assert_eq!(column(&walked, "id"), all_ids, "limit={limit}");
    }
}

#[tokio::test]
async fn the_account_list_is_filtered_by_tenant_role_and_text() {
    let Shoppers { srv, w, even, odd } = shoppers().await;
    let admin = w.token("admin");
    let world: Vec<String> = w.accounts.keys().cloned().collect();
    assert_eq!(world.len(), 8);
    let shoppers_1 = |prefix: &str| -> Vec<String> {
        even.iter()
            .chain(&odd)
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect()
    };
    let with = |base: &[&str], more: &[String]| -> BTreeSet<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(more.iter().cloned())
            .collect()
    };
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "reseller_id=res_1",
            with(&["reseller1", "merchant1a", "merchant1b", "user1a"], &even),
        ),
        ("merchant_id=mer_2b", with(&[], &odd)),
        ("merchant_id=mer_1a", with(&["merchant1a", "user1a"], &even)),
        (
            "role=merchant",
            with(&["merchant1a", "merchant1b", "merchant2a"], &[]),
        ),
        ("role=admin", with(&["admin"], &[])),
        ("q=SHOPPER1", with(&[], &shoppers_1("shopper1"))),
        ("q=shops.EXAMPLE", with(&[], &shoppers_1("shopper"))),
        ("q=Example.COM", strings(&world)),
        ("reseller_id=res_2&role=user", with(&["user2a"], &odd)),
        ("role=user&q=shopper0", with(&[], &shoppers_1("shopper0"))),
        ("q=nobody-by-this-name", BTreeSet::new()),
    ];
    assert_eq!(shoppers_1("shopper1").len(), 10);
    for (query, want) in cases {
        let path = format!("{USERS}?{query}");
        let walked = column(&walk(&srv, admin, &path, 3).await, "username");
        let unique: BTreeSet<String> = walked.iter().cloned().collect();
        assert_eq!(unique.len(), walked.len(), "{query}: repeats in {walked:?}");
        assert_eq!(unique, want, "{query}");
        let one_page = get_json(&srv, admin, &format!("{path}&limit=1000")).await;
        assert_eq!(
            set(one_page["items"].as_array().expect("items"), "username"),
            want,
            "{query}"
        );
    }
}

#[tokio::test]
async fn every_other_admin_list_pages_the_same_way() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin");
    let user1a = w.get("user1a");
    for _ in 0..2 {
        new_api_key(&srv, &user1a.token).await;
    }
    srv.login("user1a", WORLD_PASSWORD).await;
    issue_s2s(&srv, admin, "feed-1", "reseller", "res_1", None).await;
    issue_s2s(&srv, admin, "feed-2", "merchant", "res_2", Some("mer_2a")).await;
    let lists = [
        RESELLERS.to_string(),
        MERCHANTS.to_string(),
        format!("{MERCHANTS}?reseller_id=res_2"),
        ROLES.to_string(),
        S2S_TOKENS.to_string(),
        AUDIT.to_string(),
        fill(USER_SESSIONS, &[&user1a.id]),
        fill(USER_KEYS, &[&user1a.id]),
    ];
    for list in &lists {
        let sep = if list.contains('?') { '&' } else { '?' };
        for bad in ["limit=0", "limit=1001"] {
            let r = srv.get_as(admin, &format!("{list}{sep}{bad}")).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{list}{sep}{bad}: {}",
                r.text()
            );
        }
        let whole = walk(&srv, admin, list, 1000).await;
        assert!(whole.len() >= 2, "{list}: {whole:?}");
        assert_eq!(walk(&srv, admin, list, 1).await, whole, "{list} by ones");
    }
    let resellers = walk(&srv, admin, RESELLERS, 1).await;
    assert_eq!(column(&resellers, "id"), ["res_1", "res_2"]);
    let merchants = walk(&srv, admin, MERCHANTS, 1).await;
    assert_eq!(
        column(&merchants, "id"),
        ["mer_1a", "mer_1b", "mer_2a", "mer_2b"]
    );
    let of_two = walk(&srv, admin, &format!("{MERCHANTS}?reseller_id=res_2"), 1).await;
    assert_eq!(column(&of_two, "id"), ["mer_2a", "mer_2b"]);
}
