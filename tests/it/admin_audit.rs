//! The audit log through the admin API: what it records, newest first,
//! filtered and paged, append-only.

use http::{Method, StatusCode};
use latchkey::domain::clock::rfc3339;
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::harness::*;

const WRONG: &str = "a wrong password guess";

/// A server with a history: a reseller, a merchant and an account
/// (`auditee`) created, a failed and a successful login by it, then the
/// [`changes`], one second apart; with the newest event read after each
/// step.
struct History {
    srv: Server,
    admin: String,
    admin_id: String,
    /// The auditee's id.
    uid: String,
    /// After each step: the step, the newest event, the clock.
    tops: Vec<(String, Value, i64)>,
}

/// The account, tenant and role changes, in order: (method, path, body,
/// the event, its target). `uid` is the auditee.
fn changes(uid: &str) -> Vec<(Method, String, Option<Value>, &'static str, String)> {
    let user = |t: &str| fill(t, &[uid]);
    let (u, r, m, role) = (
        uid.to_string(),
        "res_a".to_string(),
        "mer_a".to_string(),
        "Auditor".to_string(),
    );
    #[rustfmt::skip]
    let steps = vec![
        (Method::PATCH, user(USER), Some(json!({ "attributes": { "tier": "2" } })), "account_updated", u.clone()),
        (Method::POST, user(USER_PASSWORD), Some(json!({ "password": "fresh password 789" })), "password_changed", u.clone()),
        (Method::POST, user(USER_DISABLE), None, "account_disabled", u.clone()),
        (Method::POST, user(USER_ENABLE), None, "account_enabled", u.clone()),
        (Method::DELETE, user(USER_SESSIONS), None, "sessions_revoked", u.clone()),
        (Method::PATCH, fill(RESELLER, &["res_a"]), Some(json!({ "name": "A2" })), "reseller_updated", r.clone()),
        (Method::PATCH, fill(MERCHANT, &["mer_a"]), Some(json!({ "name": "A2" })), "merchant_updated", m.clone()),
        (Method::POST, ROLES.to_string(), Some(json!({ "name": "Auditor" })), "role_created", role.clone()),
        (Method::DELETE, fill(ROLE, &["Auditor"]), None, "role_deleted", role),
        (Method::DELETE, user(USER), None, "account_deleted", u),
        (Method::DELETE, fill(MERCHANT, &["mer_a"]), None, "merchant_deleted", m),
        (Method::DELETE, fill(RESELLER, &["res_a"]), None, "reseller_deleted", r),
    ];
    steps
}

async fn history() -> History {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let admin_id = id_of(&me_json(&srv, &admin).await);
    let mut tops = Vec::new();
    // Runs one step and records the newest event after it; evaluates to
    // the step's value.
    macro_rules! step {
        ($what:expr, $advance:expr, $action:expr) => {{
            srv.advance($advance);
            let value = $action;
            tops.push((
                $what.to_string(),
                latest_event(&srv, &admin).await,
                srv.clock.now(),
            ));
            value
        }};
    }
    let reseller = json!({ "id": "res_a", "name": "A" });
    step!(
        "reseller",
        5,
        create_tenant(&srv, &admin, RESELLERS, reseller).await
    );
    let merchant = json!({ "id": "mer_a", "reseller_id": "res_a", "name": "A" });
    step!(
        "merchant",
        5,
        create_tenant(&srv, &admin, MERCHANTS, merchant).await
    );
    let auditee = person("auditee", "user", None, Some("mer_a"));
    let uid = step!(
        "account",
        5,
        id_of(&create_user(&srv, &admin, auditee).await)
    );
    step!("failed login", 5, {
        let r = srv.try_login("auditee", WRONG).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    });
    step!("login", 5, srv.login("auditee", WORLD_PASSWORD).await);
    for (method, path, body, _, _) in changes(&uid) {
        step!(format!("{method} {path}"), 1, {
            let r = send(&srv, Some(&admin), method.clone(), &path, body.as_ref()).await;
            assert!(r.status.is_success(), "{method} {path}: {}", r.text());
        });
    }
    History {
        srv,
        admin,
        admin_id,
        uid,
        tops,
    }
}

#[tokio::test]
async fn creations_and_logins_are_logged_as_they_happen() {
    let h = history().await;
    let top = |i: usize| &h.tops[i].1;
    assert_eq!(
        (top(0)["event"].as_str(), top(0)["target"].as_str()),
        (Some("reseller_created"), Some("res_a"))
    );
    assert_eq!(
        (top(1)["event"].as_str(), top(1)["target"].as_str()),
        (Some("merchant_created"), Some("mer_a"))
    );
    let created = top(2);
    assert_eq!(created["event"], "account_created");
    assert_eq!(created["actor"], h.admin_id.as_str());
    assert_eq!(created["actor_name"], "admin");
    assert_eq!(created["target"], h.uid.as_str());
    assert_eq!(created["client_ip"], "127.0.0.1");
    assert_eq!(created["outcome"], "success");
    assert_eq!(created["reseller_id"], "res_a");
    assert_eq!(created["merchant_id"], "mer_a");
    assert_eq!(created["at"], rfc3339(h.tops[2].2).as_str());
    assert!(created["seq"].is_u64());
    assert_no_secrets(created);

    let failed = top(3);
    assert_eq!(
        (failed["event"].as_str(), failed["outcome"].as_str()),
        (Some("login"), Some("failure"))
    );
    assert_eq!(failed["client_ip"], "127.0.0.1");
    assert!(
        !failed.to_string().contains(WRONG),
        "the password is in the log: {failed}"
    );
    let login = top(4);
    assert_eq!(
        (login["event"].as_str(), login["outcome"].as_str()),
        (Some("login"), Some("success"))
    );
    assert_eq!(
        (login["actor"].as_str(), login["actor_name"].as_str()),
        (Some(h.uid.as_str()), Some("auditee"))
    );
    assert_eq!(login["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn account_tenant_and_role_changes_are_logged_as_they_happen() {
    let h = history().await;
    let steps = changes(&h.uid);
    for ((_, _, _, event, target), (what, top, now)) in steps.iter().zip(&h.tops[5..]) {
        assert_eq!(top["event"], *event, "{what}: {top}");
        assert_eq!(top["target"], target.as_str(), "{what}: {top}");
        assert_eq!(top["actor"], h.admin_id.as_str());
        assert_eq!(top["outcome"], "success");
        assert_eq!(top["client_ip"], "127.0.0.1");
        assert_eq!(top["at"], rfc3339(*now).as_str());
    }
    assert_eq!(h.tops.len(), 5 + steps.len());
}

#[tokio::test]
async fn the_log_reads_newest_first_and_pages_back_in_time() {
    let h = history().await;
    let (srv, admin) = (&h.srv, &h.admin);
    let all = walk(srv, admin, AUDIT, 1000).await;
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|p| p[0] > p[1]), "{seqs:?}");
    let ats = column(&all, "at");
    assert!(ats.windows(2).all(|p| p[0] >= p[1]), "{ats:?}");
    let steps = changes(&h.uid);
    let newest: Vec<String> = column(&all, "event")
        .into_iter()
        .take(steps.len())
        .collect();
    let done: Vec<String> = steps.iter().rev().map(|s| s.3.to_string()).collect();
    assert_eq!(newest, done);

    // Pages of one walk back in time through the same events.
    for limit in [1, 4] {
        let walked = walk(srv, admin, AUDIT, limit).await;
        assert_eq!(walked, all, "limit={limit}");
    }
    let page = get_json(srv, admin, &format!("{AUDIT}?limit=1")).await;
    assert!(page["next"].is_string());
    let next = page["next"].as_str().unwrap_or_default();
    let older = get_json(srv, admin, &format!("{AUDIT}?limit=1&cursor={next}")).await;
    assert_eq!(older["items"][0], all[1]);
}

#[tokio::test]
async fn the_log_is_filtered_by_event_outcome_target_actor_and_tenant() {
    let h = history().await;
    let (srv, admin, uid) = (&h.srv, h.admin.as_str(), h.uid.as_str());
    let logins = audit_where(srv, admin, "event=login").await;
    assert!(logins.iter().all(|e| e["event"] == "login"));
    assert_eq!(set(&logins, "outcome"), strings(["failure", "success"]));
    let failures = audit_where(srv, admin, "outcome=failure").await;
    assert!(!failures.is_empty() && failures.iter().all(|e| e["outcome"] == "failure"));
    let failed_logins = audit_where(srv, admin, "event=login&outcome=failure").await;
    assert_eq!(failed_logins.len(), 1, "{failed_logins:?}");
    let about = audit_where(srv, admin, &format!("target={uid}")).await;
    assert!(about.iter().all(|e| e["target"] == uid));
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
    let by = audit_where(srv, admin, &format!("actor={uid}")).await;
    assert!(!by.is_empty() && by.iter().all(|e| e["actor"] == uid));
    let created = audit_where(srv, admin, "event=account_created").await;
    assert!(created.iter().all(|e| e["event"] == "account_created"));
    assert!(column(&created, "target").contains(&h.uid));
    assert!(
        audit_where(srv, admin, "event=no_such_event")
            .await
            .is_empty()
    );
    let of_tenant = audit_where(srv, admin, "reseller_id=res_a").await;
    assert!(!of_tenant.is_empty() && of_tenant.iter().all(|e| e["reseller_id"] == "res_a"));
}

#[tokio::test]
async fn the_log_is_append_only_and_outlives_a_restart() {
    let mut h = history().await;
    let all = walk(&h.srv, &h.admin, AUDIT, 1000).await;
    let newest = all[0]["seq"].as_u64().expect("seq");
    for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
        let r = send(
            &h.srv,
            Some(&h.admin),
            method.clone(),
            AUDIT,
            Some(&json!({})),
        )
        .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let path = format!("{AUDIT}/{newest}");
        let r = send(&h.srv, Some(&h.admin), method.clone(), &path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
    }
    h.srv.restart().await;
    let admin = h.srv.admin_token().await;
    let after = walk(&h.srv, &admin, AUDIT, 1000).await;
    assert_eq!(after[0]["event"], "login");
    let kept: Vec<Value> = after
        .into_iter()
        .filter(|e| e["seq"].as_u64() <= Some(newest))
        .collect();
    assert_eq!(kept, all);
}
