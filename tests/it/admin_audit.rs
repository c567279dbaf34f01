//! The audit log through the admin API: what it records, newest first,
//! filtered and paged.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

// ---- audit ----

#[tokio::test]
async fn the_audit_log_records_changes_and_logins_newest_first_filtered_and_paged() {
    use latchkey::domain::clock::rfc3339;
    let mut srv = Server::start().await;
    let admin = srv.admin_token().await;
    let admin_id = id_of(&me_json(&srv, &admin).await);

    srv.advance(5);
    create_tenant(
        &srv,
        &admin,
        RESELLERS,
        json!({ "id": "res_a", "name": "A" }),
    )
    .await;
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["target"].as_str()),
        (Some("reseller_created"), Some("res_a"))
    );
    srv.advance(5);
    create_tenant(
        &srv,
        &admin,
        MERCHANTS,
        json!({ "id": "mer_a", "reseller_id": "res_a", "name": "A" }),
    )
    .await;
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["target"].as_str()),
        (Some("merchant_created"), Some("mer_a"))
    );

    srv.advance(5);
    let uid =
        id_of(&create_user(&srv, &admin, person("auditee", "user", None, Some("mer_a"))).await);
    let top = latest_event(&srv, &admin).await;
    assert_eq!(top["event"], "account_created");
    assert_eq!(top["actor"], admin_id.as_str());
    assert_eq!(top["actor_name"], "admin");
    assert_eq!(top["target"], uid.as_str());
    assert_eq!(top["client_ip"], "127.0.0.1");
    assert_eq!(top["outcome"], "success");
    assert_eq!(top["reseller_id"], "res_a");
    assert_eq!(top["merchant_id"], "mer_a");
    assert_eq!(top["at"], rfc3339(srv.clock.now()).as_str());
    assert!(top["seq"].is_u64());
    assert_no_secrets(&top);

    srv.advance(5);
    let wrong = "a wrong password guess";
    assert_eq!(
        try_login(&srv, "auditee", wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["outcome"].as_str()),
        (Some("login"), Some("failure"))
    );
    assert_eq!(top["client_ip"], "127.0.0.1");
    assert!(
        !top.to_string().contains(wrong),
        "the password is in the log: {top}"
    );

    srv.advance(5);
    srv.login("auditee", WORLD_PASSWORD).await;
    let top = latest_event(&srv, &admin).await;
    assert_eq!(
        (top["event"].as_str(), top["outcome"].as_str()),
        (Some("login"), Some("success"))
    );
    assert_eq!(
        (top["actor"].as_str(), top["actor_name"].as_str()),
        (Some(uid.as_str()), Some("auditee"))
    );
    assert_eq!(top["client_ip"], "127.0.0.1");

    // Account, tenant and role changes, each logged as it happens.
    let user = |t: &str| fill(t, &[&uid]);
    let steps: Vec<(Method, String, Option<Value>, &str, &str)> = vec![
        (
            Method::PATCH,
            user(USER),
            Some(json!({ "attributes": { "tier": "2" } })),
            "account_updated",
            uid.as_str(),
        ),
        (
            Method::POST,
            user(USER_PASSWORD),
            Some(json!({ "password": "fresh password 789" })),
            "password_changed",
            uid.as_str(),
        ),
        (
            Method::POST,
            user(USER_DISABLE),
            None,
            "account_disabled",
            uid.as_str(),
        ),
        (
            Method::POST,
            user(USER_ENABLE),
            None,
            "account_enabled",
            uid.as_str(),
        ),
        (
            Method::DELETE,
            user(USER_SESSIONS),
            None,
            "sessions_revoked",
            uid.as_str(),
        ),
        (
            Method::PATCH,
            fill(RESELLER, &["res_a"]),
            Some(json!({ "name": "A2" })),
            "reseller_updated",
            "res_a",
        ),
        (
            Method::PATCH,
            fill(MERCHANT, &["mer_a"]),
            Some(json!({ "name": "A2" })),
            "merchant_updated",
            "mer_a",
        ),
        (
            Method::POST,
            ROLES.to_string(),
            Some(json!({ "name": "Auditor" })),
            "role_created",
            "Auditor",
        ),
        (
            Method::DELETE,
            fill(ROLE, &["Auditor"]),
            None,
            "role_deleted",
            "Auditor",
        ),
        (
            Method::DELETE,
            user(USER),
            None,
            "account_deleted",
            uid.as_str(),
        ),
        (
            Method::DELETE,
            fill(MERCHANT, &["mer_a"]),
            None,
            "merchant_deleted",
            "mer_a",
        ),
        (
            Method::DELETE,
            fill(RESELLER, &["res_a"]),
            None,
            "reseller_deleted",
            "res_a",
        ),
    ];
    for (method, path, body, event, target) in &steps {
        srv.advance(1);
        let r = send(&srv, Some(&admin), method.clone(), path, body.as_ref()).await;
        assert!(r.status.is_success(), "{method} {path}: {}", r.text());
        let top = latest_event(&srv, &admin).await;
        assert_eq!(top["event"], *event, "{method} {path}: {top}");
        assert_eq!(top["target"], *target, "{method} {path}: {top}");
        assert_eq!(top["actor"], admin_id.as_str());
        assert_eq!(top["outcome"], "success");
        assert_eq!(top["client_ip"], "127.0.0.1");
        assert_eq!(top["at"], rfc3339(srv.clock.now()).as_str());
    }

    // Newest first, across the whole log.
    let all = walk(&srv, &admin, AUDIT, 1000).await;
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|p| p[0] > p[1]), "{seqs:?}");
    let ats = column(&all, "at");
    assert!(ats.windows(2).all(|p| p[0] >= p[1]), "{ats:?}");
    let newest: Vec<String> = column(&all, "event")
        .into_iter()
        .take(steps.len())
        .collect();
    let done: Vec<String> = steps.iter().rev().map(|s| s.3.to_string()).collect();
    assert_eq!(newest, done);

    // Filters.
    let logins = audit_where(&srv, &admin, "event=login").await;
    assert!(logins.iter().all(|e| e["event"] == "login"));
    assert_eq!(set(&logins, "outcome"), strings(["failure", "success"]));
    let failures = audit_where(&srv, &admin, "outcome=failure").await;
    assert!(!failures.is_empty() && failures.iter().all(|e| e["outcome"] == "failure"));
    let failed_logins = audit_where(&srv, &admin, "event=login&outcome=failure").await;
    assert_eq!(failed_logins.len(), 1, "{failed_logins:?}");
    let about = audit_where(&srv, &admin, &format!("target={uid}")).await;
    assert!(about.iter().all(|e| e["target"] == uid.as_str()));
    assert!(
        set(&about, "event").is_superset(&strings([
            "account_created",
            "account_updated",
            "password_changed",
            "account_disabled",
            "account_enabled",
            "sessions_revoked",
            "account_deleted",
        ])),
        "{about:?}"
    );
    let by = audit_where(&srv, &admin, &format!("actor={uid}")).await;
    assert!(!by.is_empty() && by.iter().all(|e| e["actor"] == uid.as_str()));
    let created = audit_where(&srv, &admin, "event=account_created").await;
    assert!(created.iter().all(|e| e["event"] == "account_created"));
    assert!(column(&created, "target").contains(&uid));
    assert!(
        audit_where(&srv, &admin, "event=no_such_event")
            .await
            .is_empty()
    );
    let of_tenant = audit_where(&srv, &admin, "reseller_id=res_a").await;
    assert!(!of_tenant.is_empty() && of_tenant.iter().all(|e| e["reseller_id"] == "res_a"));

    // Pages of one walk back in time through the same events.
    for limit in [1, 4] {
        let walked = walk(&srv, &admin, AUDIT, limit).await;
        assert_eq!(walked, all, "limit={limit}");
    }
    let page = get_json(&srv, &admin, &format!("{AUDIT}?limit=1")).await;
    assert!(page["next"].is_string());
    let older = get_json(
        &srv,
        &admin,
        &format!(
            "{AUDIT}?limit=1&cursor={}",
            page["next"].as_str().unwrap_or_default()
        ),
    )
    .await;
    assert_eq!(older["items"][0], all[1]);

    // Append-only: nothing edits or removes an entry, and it outlives a
    // restart.
    for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
        let r = send(&srv, Some(&admin), method.clone(), AUDIT, Some(&json!({}))).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    let first_seq = seqs[0].to_string();
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let r = send(
            &srv,
            Some(&admin),
            method.clone(),
            &format!("{AUDIT}/{first_seq}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
    }
    srv.restart().await;
    let admin = srv.admin_token().await;
    let after = walk(&srv, &admin, AUDIT, 1000).await;
    assert_eq!(after[0]["event"], "login");
    let kept: Vec<Value> = after
        .into_iter()
        .filter(|e| e["seq"].as_u64() <= Some(seqs[0]))
        .collect();
    assert_eq!(kept, all);
}
