//! API keys (issue 3): the shapes `v1-auth-and-keys.txt` documents, last
//! use, acting as the owner (scope, narrowing, expiry), immediate
//! revocation, credential kinds that cannot pass for one another, and no
//! secret kept or logged in clear.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// Unix seconds as the server writes them: RFC 3339, UTC, whole seconds.
fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("timestamp")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// Creates a key with `body`, asserting 201; returns the response body.
async fn new_key(srv: &Server, token: &str, body: Value) -> Value {
    let r = srv.post(KEYS).bearer(token).json(&body).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{body}: {}", r.text());
    r.json()
}

/// The `apiKey` of a creation response.
fn api_key(created: &Value) -> String {
    created["apiKey"].as_str().expect("apiKey").to_string()
}

/// The key list of the credential's account, asserting 200.
async fn list(srv: &Server, token: &str) -> Vec<Value> {
    let r = srv.get(KEYS).bearer(token).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().expect("a JSON array").clone()
}

/// The entry for `key_id` in a key list.
fn entry<'a>(keys: &'a [Value], key_id: &str) -> &'a Value {
    keys.iter()
        .find(|k| k["keyId"] == key_id)
        .unwrap_or_else(|| panic!("{key_id} not listed: {keys:?}"))
}

/// The status of `GET path` with this bearer credential.
async fn status_of(srv: &Server, path: &str, token: &str) -> StatusCode {
    srv.get(path).bearer(token).send().await.status
}

/// An access token and a refresh token from a fresh login.
async fn sign_in(srv: &Server, username: &str, password: &str) -> (String, String) {
    let login = srv.login(username, password).await;
    (
        login["token"].as_str().expect("token").to_string(),
        login["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_string(),
    )
}

#[tokio::test]
async fn create_list_and_delete_have_the_documented_shapes() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let owner = world.token("user1a");

    // POST with a name: exactly the four documented fields.
    let r = srv
        .post_as(owner, KEYS, &json!({ "name": "My Integration Key" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let named = r.json();
    assert_eq!(fields(&named), ["apiKey", "createdAt", "keyId", "name"]);
    assert_eq!(named["name"], "My Integration Key");
    assert_eq!(named["createdAt"], rfc3339(srv.clock.now()));
    let key_id = named["keyId"].as_str().unwrap().to_string();
    let key = api_key(&named);
    assert!(key_id.starts_with("key_") && key_id.len() == 20, "{key_id}");
    assert!(key.starts_with("sk_live_") && key.len() == 67, "{key}");
    assert_eq!(&key[8..24], &key_id[4..], "the key carries its id");
    // 43 characters of base64url: 256 random bits.
    let secret = &key[24..];
    assert_eq!(
        URL_SAFE_NO_PAD.decode(secret).map(|b| b.len()).ok(),
        Some(32)
    );

    // POST with no body and no Content-Type: a key called "API key".
    let r = srv.post(KEYS).bearer(owner).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let unnamed = r.json();
    assert_eq!(fields(&unnamed), ["apiKey", "createdAt", "keyId", "name"]);
    assert_eq!(unnamed["name"], "API key");
    let other_key = api_key(&unnamed);
    assert_ne!(unnamed["keyId"], named["keyId"]);
    assert_ne!(other_key[24..], key[24..], "every key has its own secret");

    // GET: the documented fields, lastUsed null before use, no secret.
    let r = srv.get(KEYS).bearer(owner).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.text();
    for secret in [&key, &key[24..], &other_key, &other_key[24..]] {
        assert!(!body.contains(secret), "the list shows a secret: {body}");
    }
    let listed = r.json();
    let listed = listed.as_array().expect("a JSON array");
    assert_eq!(listed.len(), 2, "{body}");
    // Both were made in the same second, so the order is not asserted.
    for created in [&named, &unnamed] {
        let item = entry(listed, created["keyId"].as_str().unwrap());
        assert_eq!(fields(item), ["createdAt", "keyId", "lastUsed", "name"]);
        assert_eq!(item["name"], created["name"]);
        assert_eq!(item["createdAt"], created["createdAt"]);
        assert_eq!(item["lastUsed"], Value::Null);
    }
    // Another account sees none of them.
    assert_eq!(
        list(&srv, world.token("merchant1a")).await,
        Vec::<Value>::new()
    );

    // DELETE: 204 with no body; again: 404 in the document's words.
    assert_eq!(status_of(&srv, ME, &key).await, StatusCode::OK);
    let path = format!("{KEYS}/{key_id}");
    let r = srv.delete(&path).bearer(owner).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.body.is_empty(), "{}", r.text());
    let r = srv.delete(&path).bearer(owner).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({ "error": "API key not found" }));
    let r = srv
        .delete_as(owner, &format!("{KEYS}/key_0000000000000000"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({ "error": "API key not found" }));
    let left = list(&srv, owner).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["keyId"], unnamed["keyId"]);

    // Another account's key is "not found" and keeps working.
    let theirs = new_key(&srv, world.token("merchant1a"), json!({ "name": "theirs" })).await;
    let theirs_path = format!("{KEYS}/{}", theirs["keyId"].as_str().unwrap());
    for token in [owner, other_key.as_str()] {
        let r = srv.delete(&theirs_path).bearer(token).send().await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.json(), json!({ "error": "API key not found" }));
    }
    assert_eq!(status_of(&srv, ME, &api_key(&theirs)).await, StatusCode::OK);
    assert_eq!(list(&srv, world.token("merchant1a")).await.len(), 1);
}

#[tokio::test]
async fn last_used_is_current_at_once_and_survives_a_restart() {
    let mut srv = Server::start().await;
    let admin = srv.admin_token().await;
    let created = new_key(&srv, &admin, json!({ "name": "usage" })).await;
    let key = api_key(&created);
    let key_id = created["keyId"].as_str().unwrap().to_string();
    let unused = new_key(&srv, &admin, json!({ "name": "never used" })).await;

    srv.advance(5);
    let first = srv.clock.now();
    assert_eq!(status_of(&srv, ME, &key).await, StatusCode::OK);
    // Listed with the access token, so listing is not itself a use.
    let keys = list(&srv, &admin).await;
    assert_eq!(entry(&keys, &key_id)["lastUsed"], rfc3339(first));
    assert_eq!(entry(&keys, &key_id)["createdAt"], created["createdAt"]);
    assert_eq!(
        entry(&keys, unused["keyId"].as_str().unwrap())["lastUsed"],
        Value::Null
    );

    // A second use within the minute: shown at once, though not yet due to
    // be written.
    srv.advance(30);
    let second = srv.clock.now();
    assert_eq!(status_of(&srv, KEYS, &key).await, StatusCode::OK);
    let keys = list(&srv, &admin).await;
    assert_eq!(entry(&keys, &key_id)["lastUsed"], rfc3339(second));

    // Held only in memory until shutdown, which writes it.
    srv.restart().await;
    let admin = srv.admin_token().await;
    let keys = list(&srv, &admin).await;
    assert_eq!(entry(&keys, &key_id)["lastUsed"], rfc3339(second));
    assert_eq!(
        entry(&keys, unused["keyId"].as_str().unwrap())["lastUsed"],
        Value::Null
    );
    assert_eq!(status_of(&srv, ME, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn a_key_acts_as_its_owner_within_the_owners_scope() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let reseller1 = world.get("reseller1");
    let created = new_key(&srv, &reseller1.token, json!({})).await;
    let key = api_key(&created);

    // /me: the owner's account, through an API key.
    let r = srv.me(&key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let me = r.json();
    assert_eq!(me["id"], reseller1.id.as_str());
    assert_eq!(me["username"], "reseller1");
    assert_eq!(me["reseller_id"], "res_1");
    assert_eq!(me["credential"]["kind"], "api_key");
    assert_eq!(me["credential"]["id"], created["keyId"]);
    assert_eq!(me["credential"]["roles"], json!(["reseller"]));

    // The account list: exactly what the owner's access token sees, all of
    // it under res_1.
    let names = |r: &Resp| -> Vec<String> {
        let body = r.json();
        let items = body["items"].as_array().expect("items").clone();
        for item in &items {
            assert_eq!(item["reseller_id"], "res_1", "{item}");
        }
        let mut names: Vec<String> = items
            .iter()
            .map(|i| i["username"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let by_key = srv.get(USERS).bearer(&key).send().await;
    assert_eq!(by_key.status, StatusCode::OK, "{}", by_key.text());
    let by_token = srv.get(USERS).bearer(&reseller1.token).send().await;
    assert_eq!(
        names(&by_key),
        ["merchant1a", "merchant1b", "reseller1", "user1a"]
    );
    assert_eq!(names(&by_key), names(&by_token));

    // One account in scope, others not.
    for (name, expected) in [
        ("user1a", StatusCode::OK),
        ("merchant1b", StatusCode::OK),
        ("user2a", StatusCode::NOT_FOUND),
        ("reseller2", StatusCode::NOT_FOUND),
        ("admin", StatusCode::NOT_FOUND),
    ] {
        let path = format!("{USERS}/{}", world.get(name).id);
        assert_eq!(status_of(&srv, &path, &key).await, expected, "{name}");
    }
}

#[tokio::test]
async fn a_key_can_be_narrowed_to_one_of_its_owners_roles() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin");
    let r = srv.create_role(admin, "Customer").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = srv
        .post(USERS)
        .bearer(admin)
        .json(&json!({
            "username": "shopkeeper",
            "email": "shopkeeper@example.com",
            "password": WORLD_PASSWORD,
            "roles": ["merchant", "Customer"],
            "merchant_id": "mer_1a",
        }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let shopkeeper = r.json()["id"].as_str().unwrap().to_string();
    let (token, _) = sign_in(&srv, "shopkeeper", WORLD_PASSWORD).await;

    let narrowed = new_key(
        &srv,
        &token,
        json!({ "name": "customer", "role": "Customer" }),
    )
    .await;
    assert_eq!(narrowed["role"], "Customer");
    let narrow = api_key(&narrowed);
    let full = api_key(&new_key(&srv, &token, json!({ "name": "full" })).await);

    for (key, roles, admin_list) in [
        (&narrow, json!(["Customer"]), StatusCode::FORBIDDEN),
        (&full, json!(["merchant", "Customer"]), StatusCode::OK),
    ] {
        let me = srv.read(key, ME).await;
        assert_eq!(me["id"], shopkeeper.as_str());
        assert_eq!(me["credential"]["kind"], "api_key");
        assert_eq!(me["credential"]["roles"], roles);
        assert_eq!(status_of(&srv, USERS, key).await, admin_list, "{roles}");
    }

    // Only a role the caller holds.
    for role in ["admin", "reseller", "user", "Nonexistent"] {
        let r = srv.post_as(&token, KEYS, &json!({ "role": role })).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{role}");
        assert_eq!(r.json()["field"], "role", "{role}");
    }
    // A key makes no key at all (issue 9, item 9), narrower or wider.
    for body in [json!({ "role": "merchant" }), json!({ "name": "child" })] {
        let r = srv.post(KEYS).bearer(&narrow).json(&body).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    }

    // The list says which key is narrowed.
    let keys = list(&srv, &token).await;
    assert_eq!(
        entry(&keys, narrowed["keyId"].as_str().unwrap())["role"],
        "Customer"
    );
    assert_eq!(keys.iter().filter(|k| k.get("role").is_some()).count(), 1);

    // A key acting with a role its owner loses stops working: the
    // narrowed one, and the unnarrowed one, which carries the roles of the
    // token that made it (issue 9, item 6).
    let r = srv.set_roles(admin, &shopkeeper, &["merchant"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for key in [&narrow, &full] {
        assert_eq!(status_of(&srv, ME, key).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_key_with_an_expiry_stops_working_at_it() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let now = srv.clock.now();
    let mut keys = Vec::new();
    for (body, expires) in [
        (json!({ "expiresIn": 60 }), now + 60),
        (json!({ "expiresAt": rfc3339(now + 60) }), now + 60),
        (json!({ "expiresIn": 120 }), now + 120),
    ] {
        let created = new_key(&srv, &admin, body.clone()).await;
        assert_eq!(created["expiresAt"], rfc3339(expires), "{body}");
        let listed = list(&srv, &admin).await;
        assert_eq!(
            entry(&listed, created["keyId"].as_str().unwrap())["expiresAt"],
            rfc3339(expires)
        );
        keys.push((api_key(&created), expires));
    }
    // A key cannot make another (issue 9, item 9), so none outlives it.
    let r = srv
        .post_as(&keys[2].0, KEYS, &json!({ "name": "child" }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    for step in [59, 2, 58, 2] {
        srv.advance(step);
        let t = srv.clock.now();
        for (key, expires) in &keys {
            let expected = if t < *expires {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(
                status_of(&srv, ME, key).await,
                expected,
                "at +{} a key expiring at +{}",
                t - now,
                expires - now
            );
        }
    }
}

#[tokio::test]
async fn create_refuses_what_it_cannot_honour() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let now = srv.clock.now();
    let long_name = "x".repeat(101);
    for (body, expected) in [
        (
            json!({ "expiresIn": 60, "expiresAt": rfc3339(now + 60) }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "expiresAt": "next tuesday" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "expiresAt": rfc3339(now - 1) }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "expiresIn": 0 }), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({ "name": "  " }), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({ "name": long_name }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = srv.post(KEYS).bearer(&admin).json(&body).send().await;
        assert_eq!(r.status, expected, "{body}: {}", r.text());
    }
    let r = srv
        .post(KEYS)
        .bearer(&admin)
        .body("text/plain", "name=x")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = srv.post(KEYS).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        list(&srv, &admin).await,
        Vec::<Value>::new(),
        "nothing made"
    );
}

#[tokio::test]
async fn revocation_of_keys_and_accounts_is_immediate() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin");

    // A deleted key: refused on the very next request.
    let owner = world.token("merchant1a");
    let created = new_key(&srv, owner, json!({})).await;
    let key = api_key(&created);
    assert_eq!(status_of(&srv, ME, &key).await, StatusCode::OK);
    let r = srv
        .delete_as(
            owner,
            &format!("{KEYS}/{}", created["keyId"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = srv.me(&key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Authentication required" }));

    // Disabling or deleting an account: its keys, access tokens and
    // refresh tokens are refused on the next request.
    for (name, action) in [("user1a", "disable"), ("merchant1b", "delete")] {
        let member = world.get(name);
        let (access, refresh) = sign_in(&srv, name, WORLD_PASSWORD).await;
        let key = api_key(&new_key(&srv, &access, json!({})).await);
        let credentials = [key.as_str(), access.as_str(), member.token.as_str()];
        for credential in credentials {
            assert_eq!(status_of(&srv, ME, credential).await, StatusCode::OK);
        }
        let user = format!("{USERS}/{}", member.id);
        let r = match action {
            "disable" => srv.post(&format!("{user}/disable")).bearer(admin),
            _ => srv.delete(&user).bearer(admin),
        }
        .send()
        .await;
        assert!(r.status.is_success(), "{action}: {}", r.text());

        let refused = async |when: &str| {
            for credential in credentials {
                assert_eq!(
                    status_of(&srv, ME, credential).await,
                    StatusCode::UNAUTHORIZED,
                    "{name} {when}: {}",
                    &credential[..12]
                );
            }
            let r = srv
                .post_json("/api/v1/auth/refresh", &json!({ "refreshToken": refresh }))
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name} {when}");
        };
        refused(action).await;

        if action == "disable" {
            // Revoked, not suspended: enabling brings none of them back.
            let r = srv
                .post(&format!("{user}/enable"))
                .bearer(admin)
                .send()
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            refused("after enable").await;
            let (fresh, _) = sign_in(&srv, name, WORLD_PASSWORD).await;
            assert_eq!(list(&srv, &fresh).await, Vec::<Value>::new());
            let r = srv.get(&format!("{user}/keys")).bearer(admin).send().await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.json()["items"], json!([]));
        } else {
            let r = srv.try_login(name, WORLD_PASSWORD).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
    }
}

#[tokio::test]
async fn credential_kinds_and_altered_keys_are_refused() {
    let srv = Server::start().await;
    let (access, refresh) = sign_in(&srv, ADMIN, ADMIN_PASSWORD).await;
    let a = api_key(&new_key(&srv, &access, json!({ "name": "a" })).await);
    let b = api_key(&new_key(&srv, &access, json!({ "name": "b" })).await);

    // An API key is not a refresh token, nor a refresh token a bearer.
    let r = srv
        .post_json("/api/v1/auth/refresh", &json!({ "refreshToken": a }))
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "Invalid or expired refresh token");
    assert_eq!(
        status_of(&srv, ME, &refresh).await,
        StatusCode::UNAUTHORIZED
    );

    let change = |key: &str, at: usize| -> String {
        let mut chars: Vec<char> = key.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    };
    let change_id = |key: &str, at: usize| -> String {
        let mut chars: Vec<char> = key.chars().collect();
        chars[at] = if chars[at] == 'a' { 'b' } else { 'a' };
        chars.into_iter().collect()
    };
    let altered = [
        ("first secret character changed", change(&a, 24)),
        ("a middle secret character changed", change(&a, 45)),
        ("last secret character changed", change(&a, 66)),
        ("an id character changed", change_id(&a, 8)),
        (
            "a's id with b's secret",
            format!("{}{}", &a[..24], &b[24..]),
        ),
        (
            "b's id with a's secret",
            format!("{}{}", &b[..24], &a[24..]),
        ),
        ("truncated", a[..66].to_string()),
        ("one character more", format!("{a}A")),
        ("another prefix", format!("sk_test_{}", &a[8..])),
        ("as an S2S token", format!("s2s_{}", &a[8..])),
    ];
    for (what, key) in &altered {
        assert_ne!(key, &a);
        let r = srv.me(key).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(
            r.json(),
            json!({ "error": "Authentication required" }),
            "{what}"
        );
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.contains("invalid_token")),
            "{what}"
        );
    }
    // Attempts with altered keys do not harm the real ones.
    for key in [&a, &b] {
        assert_eq!(status_of(&srv, ME, key).await, StatusCode::OK);
    }
}

/// Every file under `dir`, recursively, as (path, bytes).
fn read_tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read data dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(read_tree(&path));
        } else {
            let bytes = std::fs::read(&path).expect("read file");
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_secret_is_stored_or_logged_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin_password = "scan admin passphrase 7Qv";
    let reseller_password = "scan reseller passphrase 4Jd";
    let user_password = "scan user passphrase 9Xe";
    let new_password = "scan changed passphrase 2Mw";
    let wrong_password = "scan wrong passphrase 6Tz";
    let mut env = proc_env(data.to_str().unwrap());
    env.extend([
        ("LATCHKEY_ADMIN_PASSWORD", admin_password),
        ("LATCHKEY_LOG", "trace"),
    ]);
    let mut p = Proc::spawn(&[], &env);
    let at = p.at();
    // Every bearer secret handed out, and every password sent.
    let mut secrets: Vec<String> = [
        admin_password,
        reseller_password,
        user_password,
        new_password,
        wrong_password,
    ]
    .map(String::from)
    .to_vec();
    let mut access_tokens = Vec::new();

    let login = async |username: &str, password: &str| -> (String, String) {
        let r = at.try_login(username, password).await;
        assert_eq!(r.status, StatusCode::OK, "{username}: {}", r.text());
        let body = r.json();
        (
            body["token"].as_str().unwrap().to_string(),
            body["refreshToken"].as_str().unwrap().to_string(),
        )
    };
    let (admin, admin_refresh) = login("admin", admin_password).await;
    let r = at.try_login("admin", wrong_password).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    for (path, body) in [
        (
            "/api/v1/admin/resellers",
            json!({ "id": "res_scan", "name": "Scan Reseller" }),
        ),
        (
            "/api/v1/admin/merchants",
            json!({ "id": "mer_scan", "reseller_id": "res_scan", "name": "Scan Merchant" }),
        ),
    ] {
        let r = at.post(path).bearer(&admin).json(&body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let mut user_ids = Vec::new();
    for (username, email, password, role, reseller, merchant) in [
        (
            "scanreseller",
            "scan.reseller@example.net",
            reseller_password,
            "reseller",
            Some("res_scan"),
            None,
        ),
        (
            "scanuser",
            "scan.user@example.net",
            user_password,
            "user",
            None,
            Some("mer_scan"),
        ),
    ] {
        let r = at
            .post(USERS)
            .bearer(&admin)
            .json(&json!({
                "username": username,
                "email": email,
                "password": password,
                "roles": [role],
                "reseller_id": reseller,
                "merchant_id": merchant,
            }))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        user_ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let (reseller, reseller_refresh) = login("scanreseller", reseller_password).await;
    let (user, user_refresh) = login("scanuser", user_password).await;

    // Refresh (each refresh token used once; the new pair kept too).
    let r = at
        .post("/api/v1/auth/refresh")
        .json(&json!({ "refreshToken": admin_refresh }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let refreshed = r.json();
    let admin2 = refreshed["token"].as_str().unwrap().to_string();
    let admin_refresh2 = refreshed["refreshToken"].as_str().unwrap().to_string();

    // An API key and an S2S token, each used once.
    let r = at
        .post(KEYS)
        .bearer(&user)
        .json(&json!({ "name": "scan key" }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    let key = api_key(&created);
    let key_id = created["keyId"].as_str().unwrap().to_string();
    let r = at
        .post("/s2s-token")
        .bearer(&admin)
        .json(&json!({
            "name": "x",
            "role": "merchant",
            "reseller_id": "res_scan",
            "merchant_id": "mer_scan",
        }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s2s = r.json()["token"].as_str().unwrap().to_string();
    assert!(s2s.starts_with("s2s_") && s2s.len() == 63, "{s2s}");

    access_tokens.extend([
        admin.clone(),
        admin2.clone(),
        reseller.clone(),
        user.clone(),
    ]);
    for credential in access_tokens.iter().chain([&key, &s2s]) {
        let r = at.me(credential).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    // An administrator sets a password; the new one is used to log in.
    let r = at
        .post(&format!("{USERS}/{}/password", user_ids[1]))
        .bearer(&admin2)
        .json(&json!({ "password": new_password }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let (user2, user_refresh2) = login("scanuser", new_password).await;
    access_tokens.push(user2);

    p.signal(libc::SIGTERM);
    assert!(p.wait().success(), "{}", p.stderr());

    for refresh in [
        admin_refresh,
        admin_refresh2,
        reseller_refresh,
        user_refresh,
        user_refresh2,
    ] {
        secrets.push(refresh["lk_rt_".len()..].to_string());
        secrets.push(refresh);
    }
    secrets.push(key[24..].to_string());
    secrets.push(key.clone());
    secrets.push(s2s[20..].to_string());
    secrets.push(s2s.clone());
    for token in &access_tokens {
        secrets.push(token.rsplit('.').next().unwrap().to_string());
        secrets.push(token.clone());
    }

    let files = read_tree(&data);
    let store = &files
        .iter()
        .find(|(path, _)| path.ends_with("latchkey.redb"))
        .unwrap_or_else(|| panic!("no store file among {:?}", files.iter().map(|f| &f.0)))
        .1;
    let log = p.stderr();

    // The scan looks at the right things: the store holds the accounts and
    // the key (by id, with its SHA-256 digest), the log the requests.
    for plain in [
        "scanreseller",
        "scanuser",
        "scan.reseller@example.net",
        "scan.user@example.net",
        "res_scan",
        "mer_scan",
        key_id.as_str(),
    ] {
        assert!(
            contains(store, plain.as_bytes()),
            "{plain} not in the store"
        );
    }
    let key_digest = URL_SAFE_NO_PAD
        .encode(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref());
    assert!(
        contains(store, key_digest.as_bytes()),
        "the key's digest is not in the store"
    );
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/keys",
        "/api/v1/auth/me",
        "/s2s-token",
        "/password",
    ] {
        assert!(log.contains(path), "{path} not in the log");
    }

    for secret in &secrets {
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "{} holds a secret in clear: {}...",
                path.display(),
                &secret[..10]
            );
        }
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret in clear: {}...",
            &secret[..10]
        );
    }
}
