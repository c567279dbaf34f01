//! Server-to-server tokens (issue 3): `POST /s2s-token` exactly as
//! `tenant-login-and-s2s.txt` documents it, who may issue what, and the
//! token's life as a bearer credential: scope on protected routes, no
//! expiry, listing, revocation and the audit log.

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const OK: u16 = 200;
const NO: u16 = 403;
const BAD: u16 = 422;

/// The issuance request body; `merchant` `None` leaves `merchant_id` out.
fn request(name: &str, role: &str, reseller: &str, merchant: Option<&str>) -> Value {
    let mut body = json!({ "name": name, "role": role, "reseller_id": reseller });
    if let Some(m) = merchant {
        body["merchant_id"] = json!(m);
    }
    body
}

async fn issue(srv: &Server, bearer: &str, body: &Value) -> Resp {
    srv.post_as(bearer, "/s2s-token", body).await
}

/// Issues a token that must be granted; returns the response body.
async fn mint(
    srv: &Server,
    bearer: &str,
    name: &str,
    role: &str,
    reseller: &str,
    merchant: Option<&str>,
) -> Value {
    let r = issue(srv, bearer, &request(name, role, reseller, merchant)).await;
    assert_eq!(r.status, StatusCode::OK, "issuing {name}: {}", r.text());
    r.json()
}

/// The secret of an issuance response.
fn secret(issued: &Value) -> String {
    issued["token"].as_str().expect("token").to_string()
}

/// Issues, as `bearer`, a merchant token (mer_1a), a reseller token
/// (res_1) and a user token (mer_1a), named `names` in that order; their
/// secrets.
async fn mint_three(srv: &Server, bearer: &str, names: [&str; 3]) -> [String; 3] {
    let [merchant, reseller, user] = names;
    [
        secret(&mint(srv, bearer, merchant, "merchant", "res_1", Some("mer_1a")).await),
        secret(&mint(srv, bearer, reseller, "reseller", "res_1", None).await),
        secret(&mint(srv, bearer, user, "user", "res_1", Some("mer_1a")).await),
    ]
}

/// The S2S token listing as `bearer` sees it (the raw response).
async fn listing_resp(srv: &Server, bearer: &str) -> Resp {
    srv.get("/api/v1/admin/s2s-tokens?limit=1000")
        .bearer(bearer)
        .send()
        .await
}

/// The S2S tokens `bearer` may see.
async fn listing(srv: &Server, bearer: &str) -> Vec<Value> {
    let r = listing_resp(srv, bearer).await;
    assert_eq!(r.status, StatusCode::OK, "listing: {}", r.text());
    r.json()["items"].as_array().expect("items").clone()
}

/// The names in a listing.
fn names(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect()
}

/// The listed entry of the token called `name`, as the admin sees it.
async fn listed(srv: &Server, admin: &str, name: &str) -> Value {
    listing(srv, admin)
        .await
        .into_iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no S2S token called {name} listed"))
}

/// Audit events of one kind, newest first, as the admin sees them.
async fn audit(srv: &Server, admin: &str, event: &str) -> Vec<Value> {
    let r = srv
        .get_as(
            admin,
            &format!("/api/v1/admin/audit?event={event}&limit=1000"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "audit: {}", r.text());
    r.json()["items"].as_array().expect("items").clone()
}

/// Events of one kind whose target is `target`.
async fn audit_for(srv: &Server, admin: &str, event: &str, target: &str) -> Vec<Value> {
    audit(srv, admin, event)
        .await
        .into_iter()
        .filter(|e| e["target"] == target)
        .collect()
}

/// The first-use event is appended off the request path (the request does
/// not wait for it): the server's background writes are drained first, so
/// the events read are the settled ones.
async fn first_use_events(srv: &Server, admin: &str, id: &str) -> Vec<Value> {
    srv.settle().await;
    audit_for(srv, admin, "s2s_token_first_used", id).await
}

/// `{"detail": "<non-empty>"}` and nothing else: the document's error shape.
fn assert_detail(r: &Resp, context: &str) {
    let body = r.json();
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("{context}: not an object: {body}"));
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["detail"],
        "{context}: {body}"
    );
    assert!(
        obj["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{context}: {body}"
    );
}

/// A 401 that challenges the client.
fn assert_challenged(r: &Resp, context: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{context}: {}",
        r.text()
    );
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "{context}: WWW-Authenticate missing: {:?}",
        r.headers
    );
}

/// One row of the issuance table: requested role, `reseller_id`,
/// `merchant_id` (absent when `None`), and the expected status for each
/// caller, in the order of the callers given to [`check`].
type Row = (&'static str, &'static str, Option<&'static str>, [u16; 7]);

/// Runs every (caller, row) cell; reports every cell that differs. A
/// granted token must describe what was asked and work as a bearer; a
/// refusal must be `{"detail": ...}`; and afterwards the store holds one
/// token for every cell answered 200 and none for any other.
async fn check(srv: &Server, admin: &str, callers: &[(&str, String); 7], rows: &[Row]) {
    let mut failures = Vec::new();
    let mut granted = BTreeSet::new();
    let mut n = 0;
    for &(role, reseller, merchant, expected) in rows {
        for ((caller, bearer), want) in callers.iter().zip(expected) {
            // An S2S token issues nothing, whatever it asks (issue 9, item
            // 9): refused before the body is looked at.
            let want = if caller.starts_with("s2s ") { NO } else { want };
            n += 1;
            let name = format!("cell-{n}");
            let cell = format!(
                "caller {caller}, role {role}, reseller_id {reseller}, merchant_id {merchant:?}"
            );
            let r = issue(srv, bearer, &request(&name, role, reseller, merchant)).await;
            if r.status == StatusCode::OK {
                granted.insert(name.clone());
            }
            if r.status.as_u16() != want {
                failures.push(format!(
                    "{cell}: expected {want}, got {}: {}",
                    r.status,
                    r.text()
                ));
                continue;
            }
            if want != OK {
                let body = r.json();
                let shaped = body.as_object().is_some_and(|o| {
                    o.len() == 1 && o["detail"].as_str().is_some_and(|d| !d.is_empty())
                });
                if !shaped {
                    failures.push(format!("{cell}: error body is not {{detail}}: {body}"));
                }
                continue;
            }
            let body = r.json();
            let kept_merchant = if role == "reseller" { None } else { merchant };
            let want_body = (name.as_str(), role, reseller, kept_merchant);
            let got_body = (
                body["name"].as_str().unwrap_or("?"),
                body["role"].as_str().unwrap_or("?"),
                body["reseller_id"].as_str().unwrap_or("?"),
                body["merchant_id"].as_str(),
            );
            if want_body != got_body {
                failures.push(format!("{cell}: granted {body}"));
                continue;
            }
            let who = srv.me(&secret(&body)).await;
            let who_body = who.json();
            let got_me = (
                who_body["name"].as_str().unwrap_or("?"),
                who_body["role"].as_str().unwrap_or("?"),
                who_body["reseller_id"].as_str().unwrap_or("?"),
                who_body["merchant_id"].as_str(),
            );
            if who.status != StatusCode::OK || got_me != want_body {
                failures.push(format!(
                    "{cell}: the granted token's /me: {} {who_body}",
                    who.status
                ));
            }
        }
    }
    // Every 200 stored exactly one token; every refusal stored none.
    let listed: Vec<String> = listing(srv, admin)
        .await
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .filter(|n| n.starts_with("cell-"))
        .collect();
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    if listed.len() != listed_set.len() || listed_set != granted {
        failures.push(format!(
            "tokens in the store {listed:?} are not the cells answered 200 {granted:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn issuance_table_covers_every_caller_role_and_scope() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let [s2s_merchant, s2s_reseller, s2s_user] = mint_three(
        &srv,
        &admin,
        ["caller merchant", "caller reseller", "caller user"],
    )
    .await;
    let callers: [(&str, String); 7] = [
        ("admin", admin.clone()),
        ("reseller1 (res_1)", w.token("reseller1").to_string()),
        ("merchant1a (mer_1a)", w.token("merchant1a").to_string()),
        ("user1a (mer_1a)", w.token("user1a").to_string()),
        ("s2s merchant mer_1a", s2s_merchant),
        ("s2s reseller res_1", s2s_reseller),
        ("s2s user mer_1a", s2s_user),
    ];
    // Order of checks (src/domain/s2s.rs): body shape 422, then the
    // caller's scope 403, then tenants exist and fit together 422.
    // A merchant_id given with a reseller token is not kept on the token,
    // but it must still exist under that reseller.
    #[rustfmt::skip]
    let mut rows: Vec<Row> = vec![
        // role      reseller_id merchant_id        admin r1   m1a  u1a  s2s-m s2s-r s2s-u
        ("reseller", "res_1",    None,              [OK,  OK,  NO,  NO,  NO,  OK,  NO]),
        ("reseller", "res_1",    Some("mer_1a"),    [OK,  OK,  NO,  NO,  NO,  OK,  NO]),
        ("reseller", "res_1",    Some("mer_1b"),    [OK,  OK,  NO,  NO,  NO,  OK,  NO]),
        ("reseller", "res_2",    None,              [OK,  NO,  NO,  NO,  NO,  NO,  NO]),
        ("reseller", "res_2",    Some("mer_2a"),    [OK,  NO,  NO,  NO,  NO,  NO,  NO]),
        ("reseller", "res_1",    Some("mer_2a"),    [BAD, BAD, NO,  NO,  NO,  BAD, NO]),
        ("reseller", "res_2",    Some("mer_1a"),    [BAD, NO,  NO,  NO,  NO,  NO,  NO]),
        ("reseller", "res_nope", None,              [BAD, NO,  NO,  NO,  NO,  NO,  NO]),
        ("reseller", "res_nope", Some("mer_1a"),    [BAD, NO,  NO,  NO,  NO,  NO,  NO]),
        ("reseller", "res_1",    Some("mer_nope"),  [BAD, BAD, NO,  NO,  NO,  BAD, NO]),
    ];
    // A merchant token and a user token are scoped alike (both name a
    // merchant under a reseller), so one table serves both roles.
    #[rustfmt::skip]
    let merchant_scoped: [(&str, Option<&str>, [u16; 7]); 10] = [
        // reseller_id merchant_id        admin r1   m1a  u1a  s2s-m s2s-r s2s-u
        ("res_1",    Some("mer_1a"),    [OK,  OK,  OK,  NO,  OK,  OK,  NO]),
        ("res_1",    Some("mer_1b"),    [OK,  OK,  NO,  NO,  NO,  OK,  NO]),
        ("res_2",    Some("mer_2a"),    [OK,  NO,  NO,  NO,  NO,  NO,  NO]),
        ("res_1",    Some("mer_2a"),    [BAD, BAD, NO,  NO,  NO,  BAD, NO]),
        ("res_2",    Some("mer_1a"),    [BAD, NO,  NO,  NO,  NO,  NO,  NO]),
        ("res_nope", Some("mer_1a"),    [BAD, NO,  NO,  NO,  NO,  NO,  NO]),
        ("res_1",    Some("mer_nope"),  [BAD, BAD, NO,  NO,  NO,  BAD, NO]),
        ("res_1",    None,              [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("res_2",    None,              [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("res_nope", None,              [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
    ];
    for role in ["merchant", "user"] {
        rows.extend(
            merchant_scoped.map(|(reseller, merchant, want)| (role, reseller, merchant, want)),
        );
    }
    // Not a role an S2S token may have: refused before any scope check.
    #[rustfmt::skip]
    let not_s2s_roles: [Row; 8] = [
        ("admin",    "res_1",    None,              [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("admin",    "res_1",    Some("mer_1a"),    [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("admin",    "res_1",    Some("mer_1b"),    [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("admin",    "res_2",    None,              [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("admin",    "res_2",    Some("mer_2a"),    [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("admin",    "res_1",    Some("mer_2a"),    [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("admin",    "res_nope", None,              [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
        ("admin",    "res_1",    Some("mer_nope"),  [BAD, BAD, BAD, BAD, BAD, BAD, BAD]),
    ];
    rows.extend(not_s2s_roles);
    check(&srv, &admin, &callers, &rows).await;
}

#[tokio::test]
async fn a_granted_token_has_exactly_the_documented_shape() {
    let srv = Server::start().await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let now = srv.clock.now();
    let mut seen = BTreeSet::new();
    for (role, merchant) in [
        ("reseller", None),
        ("merchant", Some("mer_1a")),
        ("user", Some("mer_1a")),
    ] {
        let name = format!("{role}-integration");
        let r = issue(&srv, &admin, &request(&name, role, "res_1", merchant)).await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"), "{role}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{role}: {:?}",
            r.headers
        );
        let body = r.json();
        // Every field, in sorted order.
        assert_eq!(
            fields(&body),
            [
                "created_at",
                "expires_at",
                "merchant_id",
                "name",
                "reseller_id",
                "role",
                "token"
            ],
            "{role}: {body}"
        );
        let token = body["token"].as_str().expect("token");
        assert!(token.starts_with("s2s_") && token.len() > 20, "{token}");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "usable as a bearer as it is: {token}"
        );
        assert!(seen.insert(token.to_string()), "tokens are unique");
        assert_eq!(body["name"], name.as_str());
        assert_eq!(body["role"], role);
        assert_eq!(body["reseller_id"], "res_1");
        assert_eq!(body["merchant_id"], json!(merchant), "{role}");
        let created = rfc3339_utc(&body["created_at"]);
        assert_eq!(created, now, "created_at is the server's clock");
    }
}

#[tokio::test]
async fn bad_credentials_bodies_and_content_types_are_refused() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let good = request("refusals", "merchant", "res_1", Some("mer_1a"));

    // A revoked S2S token, and a refresh token presented as a bearer.
    let revoked = mint(&srv, &admin, "soon revoked", "reseller", "res_1", None).await;
    let id = listed(&srv, &admin, "soon revoked").await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let del = srv
        .delete_as(&admin, &format!("/api/v1/admin/s2s-tokens/{id}"))
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text());
    let refresh = srv.login("merchant1a", WORLD_PASSWORD).await["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_string();

    let unauthenticated = [
        (
            "no Authorization header",
            srv.post("/s2s-token").json(&good).send().await,
        ),
        ("garbage bearer", issue(&srv, "garbage", &good).await),
        (
            "revoked S2S token",
            issue(&srv, &secret(&revoked), &good).await,
        ),
        (
            "refresh token as bearer",
            issue(&srv, &refresh, &good).await,
        ),
        (
            "Basic scheme",
            srv.post("/s2s-token")
                .header("authorization", "Basic YWRtaW46YWRtaW4=")
                .json(&good)
                .send()
                .await,
        ),
    ];
    for (label, r) in &unauthenticated {
        assert_challenged(r, label);
        assert_detail(r, label);
    }

    let unsupported = [
        (
            "text/plain",
            srv.post("/s2s-token")
                .bearer(&admin)
                .body("text/plain", good.to_string())
                .send()
                .await,
        ),
        (
            "form",
            srv.post("/s2s-token")
                .bearer(&admin)
                .body(
                    "application/x-www-form-urlencoded",
                    "name=x&role=reseller&reseller_id=res_1",
                )
                .send()
                .await,
        ),
        (
            "no content type",
            srv.post("/s2s-token")
                .bearer(&admin)
                .raw_body(good.to_string())
                .send()
                .await,
        ),
    ];
    for (label, r) in &unsupported {
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{label}: {}",
            r.text()
        );
        assert_detail(r, label);
    }

    let long_name = "n".repeat(101);
    let longest_name = "n".repeat(100);
    let invalid: Vec<(&str, Value, u16)> = vec![
        (
            "missing name",
            json!({ "role": "reseller", "reseller_id": "res_1" }),
            BAD,
        ),
        (
            "missing role",
            json!({ "name": "x", "reseller_id": "res_1" }),
            BAD,
        ),
        (
            "missing reseller_id",
            json!({ "name": "x", "role": "reseller" }),
            BAD,
        ),
        ("empty name", request("", "reseller", "res_1", None), BAD),
        ("blank name", request("   ", "reseller", "res_1", None), BAD),
        (
            "101-character name",
            request(&long_name, "reseller", "res_1", None),
            BAD,
        ),
        (
            "100-character name",
            request(&longest_name, "reseller", "res_1", None),
            OK,
        ),
        ("empty role", request("x", "", "res_1", None), BAD),
        (
            "role in capitals",
            request("x", "Reseller", "res_1", None),
            BAD,
        ),
        ("role admin", request("x", "admin", "res_1", None), BAD),
        (
            "null role",
            json!({ "name": "x", "role": null, "reseller_id": "res_1" }),
            BAD,
        ),
        ("empty reseller_id", request("x", "reseller", "", None), BAD),
        (
            "merchant token, null merchant_id",
            json!({ "name": "x", "role": "merchant", "reseller_id": "res_1", "merchant_id": null }),
            BAD,
        ),
        (
            "merchant token, empty merchant_id",
            request("x", "merchant", "res_1", Some("")),
            BAD,
        ),
        (
            "user token, no merchant_id",
            request("x", "user", "res_1", None),
            BAD,
        ),
        (
            "name not a string",
            json!({ "name": 5, "role": "reseller", "reseller_id": "res_1" }),
            BAD,
        ),
        ("array body", json!([good.clone()]), BAD),
    ];
    for (label, body, want) in &invalid {
        let r = issue(&srv, &admin, body).await;
        assert_eq!(r.status.as_u16(), *want, "{label}: {}", r.text());
        if *want != OK {
            assert_detail(&r, label);
        }
    }
    let r = srv
        .post("/s2s-token")
        .bearer(&admin)
        .body("application/json", "{\"name\": ")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_detail(&r, "truncated JSON");

    // An access token past its lifetime.
    srv.advance(3600);
    let r = issue(&srv, &admin, &good).await;
    assert_challenged(&r, "expired access token");
    assert_detail(&r, "expired access token");
}

#[tokio::test]
async fn a_token_is_a_bearer_on_protected_routes_within_its_scope() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let [merchant, reseller, user] =
        mint_three(&srv, &admin, ["shop sync", "partner sync", "user sync"]).await;

    // /me describes the token, not an account.
    for (bearer, name, role, merchant_id) in [
        (&merchant, "shop sync", "merchant", json!("mer_1a")),
        (&reseller, "partner sync", "reseller", Value::Null),
        (&user, "user sync", "user", json!("mer_1a")),
    ] {
        let r = srv.me(bearer).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        let body = r.json();
        let id = listed(&srv, &admin, name).await["id"].clone();
        assert_eq!(body["name"], name, "{body}");
        assert_eq!(body["role"], role, "{body}");
        assert_eq!(body["reseller_id"], "res_1", "{body}");
        assert_eq!(body["merchant_id"], merchant_id, "{body}");
        assert_eq!(body["credential"]["kind"], "s2s_token", "{body}");
        assert_eq!(body["credential"]["id"], id, "{body}");
        assert_eq!(body["credential"]["role"], role, "{body}");
        assert!(body["credential"]["expires_at"].is_string(), "{body}");
        assert!(body.get("id").is_none(), "no account behind it: {body}");
    }

    let usernames = |r: &Resp| -> BTreeSet<String> {
        r.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| a["username"].as_str().expect("username").to_string())
            .collect()
    };
    let ids = |r: &Resp| -> BTreeSet<String> {
        r.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| a["id"].as_str().expect("id").to_string())
            .collect()
    };
    let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };

    // The merchant token sees its merchant's accounts only.
    let r = srv.get_as(&merchant, "/api/v1/admin/users").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(usernames(&r), set(&["merchant1a", "user1a"]));
    let account = |name: &str| format!("/api/v1/admin/users/{}", w.get(name).id);
    for (path, want) in [
        (account("user1a"), StatusCode::OK),
        (account("merchant1a"), StatusCode::OK),
        (account("merchant1b"), StatusCode::NOT_FOUND),
        (account("user2a"), StatusCode::NOT_FOUND),
        (account("reseller1"), StatusCode::NOT_FOUND),
        ("/api/v1/admin/merchants/mer_1a".into(), StatusCode::OK),
        (
            "/api/v1/admin/merchants/mer_1b".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/admin/merchants/mer_2a".into(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = srv.get(&path).bearer(&merchant).send().await;
        assert_eq!(r.status, want, "merchant token, {path}: {}", r.text());
    }

    // The reseller token sees its reseller's merchants and accounts only.
    let r = srv.get_as(&reseller, "/api/v1/admin/merchants").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(ids(&r), set(&["mer_1a", "mer_1b"]));
    let r = srv.get_as(&reseller, "/api/v1/admin/resellers").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(ids(&r), set(&["res_1"]));
    let r = srv.get_as(&reseller, "/api/v1/admin/users").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        usernames(&r),
        set(&["reseller1", "merchant1a", "merchant1b", "user1a"])
    );
    for (path, want) in [
        ("/api/v1/admin/merchants/mer_1b".to_string(), StatusCode::OK),
        (
            "/api/v1/admin/merchants/mer_2a".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/admin/resellers/res_2".into(),
            StatusCode::NOT_FOUND,
        ),
        (account("merchant1b"), StatusCode::OK),
        (account("user2a"), StatusCode::NOT_FOUND),
        (account("reseller2"), StatusCode::NOT_FOUND),
        (account("admin"), StatusCode::NOT_FOUND),
    ] {
        let r = srv.get(&path).bearer(&reseller).send().await;
        assert_eq!(r.status, want, "reseller token, {path}: {}", r.text());
    }

    // A user token authenticates but manages nothing.
    let r = srv.get("/api/v1/admin/users").bearer(&user).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test]
async fn a_token_without_a_lifetime_lasts_the_maximum() {
    let srv = Server::start().await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let issued = mint(&srv, &admin, "long", "merchant", "res_1", Some("mer_1a")).await;
    let token = secret(&issued);
    let year = 365 * 24 * 3600;
    let expires = srv.clock.now() + year;
    assert_eq!(rfc3339_utc(&issued["expires_at"]), expires, "{issued}");
    srv.advance(u64::try_from(year).expect("positive") - 1);
    let r = srv.me(&token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["credential"]["expires_at"], issued["expires_at"]);
    let r = srv.get("/api/v1/admin/users").bearer(&token).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The admin's access token of a year ago is long gone, and the S2S
    // token issues nothing (issue 9, item 9).
    assert_challenged(&srv.me(&admin).await, "year-old access token");
    let r = issue(
        &srv,
        &token,
        &request("child", "user", "res_1", Some("mer_1a")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    srv.advance(1);
    assert_challenged(&srv.me(&token).await, "expired S2S token");
}

#[tokio::test]
async fn the_listing_is_scoped_and_never_shows_a_secret() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let admin_id = w.get("admin").id.clone();
    let mut secrets = Vec::new();
    for (name, role, reseller, merchant) in [
        ("r1 partner", "reseller", "res_1", None),
        ("m1a shop", "merchant", "res_1", Some("mer_1a")),
        ("m1b shop", "merchant", "res_1", Some("mer_1b")),
        ("r2 partner", "reseller", "res_2", None),
        ("m2a user", "user", "res_2", Some("mer_2a")),
    ] {
        secrets.push(secret(
            &mint(&srv, &admin, name, role, reseller, merchant).await,
        ));
    }
    let m1a_token = secrets[1].clone();
    let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    for (who, bearer, want) in [
        (
            "admin",
            admin.as_str(),
            set(&[
                "r1 partner",
                "m1a shop",
                "m1b shop",
                "r2 partner",
                "m2a user",
            ]),
        ),
        (
            "reseller1",
            w.token("reseller1"),
            set(&["r1 partner", "m1a shop", "m1b shop"]),
        ),
        (
            "reseller2",
            w.token("reseller2"),
            set(&["r2 partner", "m2a user"]),
        ),
        ("merchant1a", w.token("merchant1a"), set(&["m1a shop"])),
        ("merchant2a", w.token("merchant2a"), set(&["m2a user"])),
        ("the m1a S2S token", m1a_token.as_str(), set(&["m1a shop"])),
    ] {
        let r = listing_resp(&srv, bearer).await;
        assert_eq!(r.status, StatusCode::OK, "{who}: {}", r.text());
        let text = r.text();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{who}'s listing shows a secret");
        }
        let items = r.json()["items"].as_array().expect("items").clone();
        assert_eq!(names(&items), want, "{who}");
        for item in &items {
            // Every field, in sorted order.
            assert_eq!(
                fields(item),
                [
                    "created_at",
                    "created_by",
                    "created_by_exists",
                    "expires_at",
                    "id",
                    "last_used",
                    "merchant_id",
                    "name",
                    "reseller_id",
                    "revoked_at",
                    "role"
                ],
                "{who}: {item}"
            );
            assert_eq!(item["created_by"], admin_id.as_str(), "{item}");
            assert_eq!(item["revoked_at"], Value::Null, "{item}");
        }
    }
    // Those who manage nothing are refused.
    let user = secret(&mint(&srv, &admin, "u1a", "user", "res_1", Some("mer_1a")).await);
    for (who, bearer) in [("user1a", w.token("user1a")), ("a user S2S token", &user)] {
        let r = listing_resp(&srv, bearer).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text());
    }
}

#[tokio::test]
async fn revocation_is_immediate_and_scoped() {
    let mut srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let doomed = secret(&mint(&srv, &admin, "doomed", "merchant", "res_1", Some("mer_1a")).await);
    let sibling = secret(&mint(&srv, &admin, "sibling", "merchant", "res_1", Some("mer_1b")).await);
    let kept = secret(&mint(&srv, &admin, "kept", "reseller", "res_1", None).await);
    let id_of = |v: Value| v["id"].as_str().expect("id").to_string();
    let doomed_id = id_of(listed(&srv, &admin, "doomed").await);
    let sibling_id = id_of(listed(&srv, &admin, "sibling").await);
    let kept_id = id_of(listed(&srv, &admin, "kept").await);
    assert_eq!(srv.me(&doomed).await.status, StatusCode::OK);

    let revoke = |bearer: String, id: String| {
        let call = srv
            .delete(&format!("/api/v1/admin/s2s-tokens/{id}"))
            .bearer(&bearer);
        async move { call.send().await }
    };
    // Out of scope: not found, and the token keeps working.
    for (who, bearer, want) in [
        ("reseller2", w.token("reseller2"), StatusCode::NOT_FOUND),
        ("merchant2a", w.token("merchant2a"), StatusCode::NOT_FOUND),
        ("merchant1b", w.token("merchant1b"), StatusCode::NOT_FOUND),
        ("user1a", w.token("user1a"), StatusCode::FORBIDDEN),
    ] {
        let r = revoke(bearer.to_string(), doomed_id.clone()).await;
        assert_eq!(r.status, want, "{who}: {}", r.text());
        assert_eq!(
            srv.me(&doomed).await.status,
            StatusCode::OK,
            "after {who}'s attempt"
        );
    }
    let r = revoke(admin.clone(), "0000000000000000".into()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());

    // The admin revokes: the very next request is refused, on every route.
    let r = revoke(admin.clone(), doomed_id.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.body.is_empty());
    assert_challenged(&srv.me(&doomed).await, "/me after revocation");
    let r = srv.get("/api/v1/admin/users").bearer(&doomed).send().await;
    assert_challenged(&r, "admin API after revocation");
    let r = issue(
        &srv,
        &doomed,
        &request("x", "user", "res_1", Some("mer_1a")),
    )
    .await;
    assert_challenged(&r, "/s2s-token after revocation");

    // A reseller revokes a token under its reseller.
    let r = revoke(w.token("reseller1").to_string(), sibling_id.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_challenged(&srv.me(&sibling).await, "sibling after revocation");
    assert_eq!(srv.me(&kept).await.status, StatusCode::OK);

    // The listing tells when.
    let now = srv.clock.now();
    for t in listing(&srv, &admin).await {
        let name = t["name"].as_str().expect("name");
        match name {
            "doomed" | "sibling" => {
                assert_eq!(rfc3339_utc(&t["revoked_at"]), now);
            }
            _ => assert_eq!(t["revoked_at"], Value::Null, "{t}"),
        }
    }

    // Both outlive a restart: the revoked stays refused, the other works.
    // (The first-use writes are let finish first: a restart while they are
    // in flight is the subject of its own test below.)
    srv.settle().await;
    for id in [&doomed_id, &kept_id] {
        let events = audit_for(&srv, &admin, "s2s_token_first_used", id).await;
        assert_eq!(events.len(), 1, "first use of {id}: {events:?}");
        let token = listing(&srv, &admin)
            .await
            .into_iter()
            .find(|t| t["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no S2S token {id}"));
        assert!(!token["last_used"].is_null(), "last_used of {id}: {token}");
    }
    srv.restart().await;
    assert_challenged(&srv.me(&doomed).await, "revoked, after restart");
    assert_eq!(srv.me(&kept).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_restart_right_after_first_uses_loses_nothing() {
    // Several integrations start at once; the server is restarted (as on a
    // deploy) right after. The restart must succeed on the same data
    // directory, and each first use must be on record exactly once.
    let mut srv = Server::start().await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let mut tokens = Vec::new();
    for n in 0..8 {
        let name = format!("integration {n}");
        let token = secret(&mint(&srv, &admin, &name, "reseller", "res_1", None).await);
        let id = listed(&srv, &admin, &name).await["id"]
            .as_str()
            .expect("id")
            .to_string();
        tokens.push((id, token));
    }
    for (_, token) in &tokens {
        assert_eq!(srv.me(token).await.status, StatusCode::OK);
    }
    srv.restart().await;
    let admin = srv.admin_token().await;
    let listed = listing(&srv, &admin).await;
    for (id, token) in &tokens {
        let events = audit_for(&srv, &admin, "s2s_token_first_used", id).await;
        assert_eq!(events.len(), 1, "first use of {id}: {events:?}");
        let entry = listed
            .iter()
            .find(|t| t["id"] == id.as_str())
            .expect("listed");
        assert!(!entry["last_used"].is_null(), "last_used of {id}: {entry}");
        assert_eq!(srv.me(token).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_audit_log_names_the_token() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let admin_id = w.get("admin").id.clone();
    let token = secret(
        &mint(
            &srv,
            &admin,
            "audit probe",
            "merchant",
            "res_1",
            Some("mer_1a"),
        )
        .await,
    );
    let id = listed(&srv, &admin, "audit probe").await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let actor = format!("s2s:{id}");

    let created = audit_for(&srv, &admin, "s2s_token_created", &id).await;
    assert_eq!(created.len(), 1, "{created:?}");
    let e = &created[0];
    assert_eq!(e["actor"], admin_id.as_str(), "{e}");
    assert_eq!(e["actor_name"], "admin", "{e}");
    assert_eq!(e["reseller_id"], "res_1", "{e}");
    assert_eq!(e["merchant_id"], "mer_1a", "{e}");
    assert!(
        e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("audit probe")),
        "{e}"
    );

    // First use, then several more: one first-use event, by the token.
    for _ in 0..3 {
        assert_eq!(srv.me(&token).await.status, StatusCode::OK);
    }
    let first = first_use_events(&srv, &admin, &id).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["actor"], actor.as_str(), "{}", first[0]);
    assert_eq!(first[0]["actor_name"], "audit probe", "{}", first[0]);

    // What the token does is done in its name: an account it changes.
    let changed = w.get("user1a").id.clone();
    let r = srv
        .call(Method::PATCH, &format!("/api/v1/admin/users/{changed}"))
        .bearer(&token)
        .json(&json!({ "attributes": { "note": "by s2s" } }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let updated = audit_for(&srv, &admin, "account_updated", &changed).await;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["actor"], actor.as_str(), "{}", updated[0]);
    assert_eq!(updated[0]["actor_name"], "audit probe", "{}", updated[0]);
    // It creates no account: one made with a password it chose would be
    // a credential it minted (issue 9, item 9).
    let r = srv
        .post("/api/v1/admin/users")
        .bearer(&token)
        .json(&json!({
            "username": "made-by-s2s",
            "email": "made-by-s2s@example.com",
            "password": WORLD_PASSWORD,
            "roles": ["user"],
        }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // It issues no S2S token (issue 9, item 9).
    let r = issue(
        &srv,
        &token,
        &request("audit child", "user", "res_1", Some("mer_1a")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // Revocation is recorded too, and no secret is ever written.
    let r = srv
        .delete_as(&admin, &format!("/api/v1/admin/s2s-tokens/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let revoked = audit_for(&srv, &admin, "s2s_token_revoked", &id).await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["actor"], admin_id.as_str(), "{}", revoked[0]);
    let all = srv
        .get_as(&admin, "/api/v1/admin/audit?limit=1000")
        .await
        .text();
    assert!(
        !all.contains(token.as_str()),
        "a secret is in the audit log"
    );
}

#[tokio::test]
async fn credential_kinds_are_not_interchangeable() {
    let srv = Server::start().await;
    let w = World::build(&srv).await;
    let admin = w.token("admin").to_string();
    let token = secret(&mint(&srv, &admin, "kinds", "merchant", "res_1", Some("mer_1a")).await);

    // An S2S token is not a refresh token.
    let r = srv
        .post_json("/api/v1/auth/refresh", &json!({ "refreshToken": token }))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    // Anything but the token exactly as issued is refused.
    let swap = |s: &str, at: usize| -> String {
        let mut chars: Vec<char> = s.chars().collect();
        chars[at] = if chars[at] == 'a' { 'b' } else { 'a' };
        chars.into_iter().collect()
    };
    let rest = token.strip_prefix("s2s_").expect("prefix");
    let unknown_id = format!("s2s_{}", "a".repeat(rest.len()));
    let mutations = [
        ("last character changed", swap(&token, token.len() - 1)),
        ("an id character changed", swap(&token, 5)),
        ("a secret character changed", swap(&token, token.len() - 10)),
        ("truncated", token[..token.len() - 1].to_string()),
        ("extended", format!("{token}a")),
        ("prefix in capitals", format!("S2S_{rest}")),
        ("as an API key", format!("sk_live_{rest}")),
        ("s2s_ and garbage", "s2s_garbage".to_string()),
        ("the right shape, unknown", unknown_id),
        ("an access token behind s2s_", format!("s2s_{admin}")),
    ];
    for (label, bad) in &mutations {
        assert_ne!(bad, &token, "{label}");
        assert_challenged(&srv.me(bad).await, label);
        let r = srv.get("/api/v1/admin/users").bearer(bad).send().await;
        assert_challenged(&r, label);
    }
    // Refusals do not harm the real token.
    assert_eq!(srv.me(&token).await.status, StatusCode::OK);
}
