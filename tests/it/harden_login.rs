//! Issue 9, items 1, 3, 4, 7 and 19: the password-checking path as an
//! attacker saw it. Every property is proved by counting what happened
//! (argon2 verifications run, audit entries written, bytes stored), never by
//! timing.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::{Resp, Server, limits, until};

const PASSWORD: &str = "the right password";
const WRONG: &str = "not the password";

/// One document's password route and its own words for each refusal.
struct Doc {
    /// The route.
    path: &'static str,
    /// The body field that carries the identifier.
    field: &'static str,
    /// Whether the route takes only an email (not a username).
    email_only: bool,
    /// Unknown account or wrong password.
    invalid: (u16, Value),
    /// Locked.
    locked: (u16, Value),
    /// Disabled, with the right password.
    disabled: (u16, Value),
    /// An identifier over the bound.
    too_long: (u16, Value),
}

fn docs() -> Vec<Doc> {
    vec![
        Doc {
            path: "/api/v1/auth/login",
            field: "username",
            email_only: false,
            invalid: (401, json!({ "error": "Invalid credentials" })),
            locked: (
                403,
                json!({ "error": "Account locked due to repeated failed login attempts" }),
            ),
            disabled: (403, json!({ "error": "Account disabled" })),
            too_long: (
                422,
                json!({ "error": "username must be at most 320 bytes", "field": "username" }),
            ),
        },
        Doc {
            path: "/login",
            field: "email",
            email_only: true,
            invalid: (422, json!({ "detail": "Incorrect email or password" })),
            locked: (
                403,
                json!({ "detail": "Account locked due to repeated failed login attempts" }),
            ),
            disabled: (403, json!({ "detail": "Account disabled" })),
            too_long: (422, json!({ "detail": "email must be at most 320 bytes" })),
        },
        Doc {
            path: "/auth/login",
            field: "username",
            email_only: false,
            invalid: (
                401,
                json!({ "error": "unauthorized", "message": "Invalid credentials" }),
            ),
            locked: (
                403,
                json!({ "error": "forbidden", "message": "Account locked due to repeated failed login attempts" }),
            ),
            disabled: (
                403,
                json!({ "error": "forbidden", "message": "Account disabled" }),
            ),
            too_long: (
                400,
                json!({ "error": "validation_error", "message": "username must be at most 320 bytes" }),
            ),
        },
        Doc {
            path: "/api/auth/token",
            field: "email",
            email_only: false,
            invalid: (403, json!({ "error": "Invalid email or password." })),
            locked: (
                403,
                json!({ "error": "Account locked due to repeated failed login attempts." }),
            ),
            disabled: (403, json!({ "error": "Account disabled." })),
            too_long: (400, json!({ "error": "email must be at most 320 bytes" })),
        },
        Doc {
            path: "/api/account/roles",
            field: "email",
            email_only: false,
            invalid: (404, json!("Invalid email or password")),
            locked: (
                403,
                json!("Account has been locked due to multiple failed login attempts"),
            ),
            disabled: (403, json!("Account has been disabled")),
            too_long: (400, json!("email must be at most 320 bytes")),
        },
    ]
}

/// Generous rate limits, so only the lockout and the pool refuse.
fn open_limits(threshold: u32) -> Layer {
    Layer {
        lockout_threshold: Some(threshold),
        ..limits(100_000, 100_000)
    }
}

async fn try_login(srv: &Server, doc: &Doc, identifier: &str, password: &str) -> Resp {
    srv.post(doc.path)
        .json(&json!({ doc.field: identifier, "password": password }))
        .send()
        .await
}

fn assert_answer(r: &Resp, want: &(u16, Value), what: &str) {
    assert_eq!(r.status.as_u16(), want.0, "{what}: {}", r.text());
    assert_eq!(r.json(), want.1, "{what}");
}

/// The newest audit entry's sequence number: how many entries exist.
async fn audit_len(srv: &Server, admin: &str) -> u64 {
    let r = srv.get_as(admin, "/api/v1/admin/audit?limit=1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"][0]["seq"].as_u64().unwrap_or(0)
}

/// The newest `n` audit entries.
async fn audit_tail(srv: &Server, admin: &str, n: usize) -> Vec<Value> {
    let r = srv
        .get_as(admin, &format!("/api/v1/admin/audit?limit={n}"))
        .await;
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

fn verifications(srv: &Server) -> u64 {
    srv.running().hash_verifications()
}

// Items 1 and 19: an unknown account, a wrong password, a disabled
// account, a locked one and a right password each cost exactly one argon2
// verification and leave exactly one audit entry, on every document.
#[tokio::test]
async fn every_password_check_costs_one_verification_and_leaves_one_audit_entry() {
    let srv = Server::start_with(open_limits(6)).await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "alice", PASSWORD, &["user"]).await;
    srv.create_user(&admin, "wendy", PASSWORD, &["user"]).await;
    srv.create_user(&admin, "lucy", PASSWORD, &["user"]).await;
    let dora = srv.create_user(&admin, "dora", PASSWORD, &["user"]).await;
    let r = srv
        .post(&format!("/api/v1/admin/users/{dora}/disable"))
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..6 {
        try_login(&srv, &docs()[0], "lucy", WRONG).await;
    }
    for doc in docs() {
        let cases: [(&str, &str, (u16, Value), &str); 5] = [
            ("nobody@example.com", WRONG, doc.invalid.clone(), "failure"),
            ("wendy@example.com", WRONG, doc.invalid.clone(), "failure"),
            (
                "dora@example.com",
                PASSWORD,
                doc.disabled.clone(),
                "failure",
            ),
            ("lucy@example.com", PASSWORD, doc.locked.clone(), "failure"),
            ("alice@example.com", PASSWORD, (200, Value::Null), "success"),
        ];
        for (who, password, want, outcome) in cases {
            let what = format!("{} as {who}", doc.path);
            let (hashes, entries) = (verifications(&srv), audit_len(&srv, &admin).await);
            let r = try_login(&srv, &doc, who, password).await;
            if want.0 == 200 {
                assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
            } else {
                assert_answer(&r, &want, &what);
            }
            assert_eq!(
                verifications(&srv) - hashes,
                1,
                "{what}: exactly one argon2 verification"
            );
            assert_eq!(
                audit_len(&srv, &admin).await - entries,
                1,
                "{what}: exactly one audit entry"
            );
            let entry = &audit_tail(&srv, &admin, 1).await[0];
            assert_eq!(entry["event"], "login", "{what}");
            assert_eq!(entry["outcome"], outcome, "{what}");
        }
    }
}

// Item 1: every refusal writes the same records. Each counts one failure
// toward the lock, whether the account is unknown, the password wrong, or
// the account disabled with the right password, so after the threshold
// every one of them is locked alike.
#[tokio::test]
async fn every_kind_of_refusal_counts_toward_the_lock_alike() {
    let srv = Server::start_with(open_limits(3)).await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "wendy", PASSWORD, &["user"]).await;
    let dora = srv.create_user(&admin, "dora", PASSWORD, &["user"]).await;
    srv.post(&format!("/api/v1/admin/users/{dora}/disable"))
        .bearer(&admin)
        .send()
        .await;
    let v1 = &docs()[0];
    for (who, password) in [("nobody", WRONG), ("wendy", WRONG), ("dora", PASSWORD)] {
        for _ in 0..3 {
            let r = try_login(&srv, v1, who, password).await;
            assert_ne!(r.status, StatusCode::OK);
            assert_ne!(r.json(), v1.locked.1, "{who} locked too early");
        }
        let r = try_login(&srv, v1, who, password).await;
        assert_answer(&r, &v1.locked, who);
    }
}

// Item 3: an identifier that NFKC would expand 18-fold is refused on its
// raw length, as a validation error in each document's words, before it is
// normalised, counted, stored or hashed; one just under the bound is an
// ordinary attempt whose audit entries stay bounded.
#[tokio::test]
async fn over_long_identifiers_are_refused_before_any_work_and_nothing_grows() {
    let srv = Server::start_with(open_limits(3)).await;
    let admin = srv.admin_token().await;
    let store = srv.data_dir().join("latchkey.redb");
    let size = || std::fs::metadata(&store).expect("store").len();
    // 20,000 characters of U+FDFA: 60 KB raw, over a megabyte after NFKC.
    let huge = "\u{FDFA}".repeat(20_000);
    let (before, entries, hashes) = (size(), audit_len(&srv, &admin).await, verifications(&srv));
    for doc in docs() {
        for i in 0..30 {
            let id = if doc.email_only {
                format!("{huge}{i}@example.com")
            } else {
                format!("{huge}{i}")
            };
            let r = try_login(&srv, &doc, &id, WRONG).await;
            assert_answer(&r, &doc.too_long, doc.path);
        }
    }
    let r = srv
        .post_json(
            "/api/account/token",
            &json!({ "accountId": huge, "role": "user" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for body in [
        json!({ "username": huge, "email": "x@example.com", "password": PASSWORD, "roles": ["user"] }),
        json!({ "username": "x", "email": format!("{huge}@example.com"), "password": PASSWORD, "roles": ["user"] }),
    ] {
        let r = srv.post_as(&admin, "/api/v1/admin/users", &body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap_or_default()
                .contains("must be at most 320 bytes")
        );
    }
    let alice = srv.create_user(&admin, "alice", PASSWORD, &["user"]).await;
    let r = srv
        .patch_as(
            &admin,
            &format!("/api/v1/admin/users/{alice}"),
            &json!({ "username": huge }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["field"], "username");
    assert_eq!(
        verifications(&srv),
        hashes,
        "no refused identifier was hashed"
    );
    // Only alice's creation was written.
    assert_eq!(audit_len(&srv, &admin).await, entries + 1);

    // Just under the bound (106 characters, 318 bytes; 1,908 after NFKC):
    // an ordinary failed attempt, locked at the threshold, and every field
    // of every entry it wrote is bounded.
    let near = "\u{FDFA}".repeat(106);
    for doc in docs().iter().filter(|d| !d.email_only) {
        for _ in 0..4 {
            try_login(&srv, doc, &near, WRONG).await;
        }
        let r = try_login(&srv, doc, &near, WRONG).await;
        assert_answer(&r, &doc.locked, doc.path);
    }
    let written = audit_len(&srv, &admin).await - entries - 1;
    assert!(written >= 20, "{written} entries");
    for entry in audit_tail(&srv, &admin, written as usize).await {
        for (field, value) in entry.as_object().expect("object") {
            let chars = value.as_str().map_or(0, |s| s.chars().count());
            assert!(chars <= 512, "{field} holds {chars} characters");
        }
        assert!(
            entry["actor_name"]
                .as_str()
                .map_or(0, |s| s.chars().count())
                <= 128
        );
    }
    // 150 refused 60 KB requests and 20 near-bound attempts: far below
    // what storing even one normalised identifier per request would take
    // (about 1 MB each).
    let grown = size().saturating_sub(before);
    assert!(grown < 4 * 1024 * 1024, "the store grew by {grown} bytes");
}

// Item 4: ten failures against `lock@example.com` lock the account: its
// username, its full-width spelling and its email in any case are refused
// on every document, even with the right password, and still cost one
// verification each. An unknown identifier locks with the same answer.
#[tokio::test]
async fn a_lock_follows_the_account_across_spellings_and_documents() {
    let srv = Server::start_with(open_limits(10)).await;
    let admin = srv.admin_token().await;
    let lock = srv.create_user(&admin, "lock", PASSWORD, &["user"]).await;
    srv.create_user(&admin, "pin", PASSWORD, &["user"]).await;
    // The failures are spread over three documents.
    let all = docs();
    for i in 0..10 {
        let doc = &all[[0, 3, 4][i % 3]];
        let r = try_login(&srv, doc, "lock@example.com", WRONG).await;
        assert_answer(&r, &doc.invalid, doc.path);
    }
    // A second account locked through its full-width username, for the
    // document that takes only emails.
    for _ in 0..10 {
        try_login(&srv, &all[2], "ｐｉｎ", WRONG).await;
    }
    let mut known_locked = None;
    for doc in &all {
        let spellings: &[&str] = if doc.email_only {
            &["LOCK@Example.COM", "pin@example.com"]
        } else {
            &["lock", "ｌｏｃｋ", "LOCK", "pin", "ｐｉｎ"]
        };
        for who in spellings {
            let hashes = verifications(&srv);
            let r = try_login(&srv, doc, who, PASSWORD).await;
            assert_answer(&r, &doc.locked, &format!("{} as {who}", doc.path));
            assert!(r.header("retry-after").is_some());
            assert_eq!(verifications(&srv) - hashes, 1, "{} as {who}", doc.path);
            if doc.path == "/api/v1/auth/login" {
                known_locked = Some((r.status, r.json()));
            }
        }
    }
    // An identifier that names no account locks alike: its answer is the
    // same as a real account's, so a lock says nothing about existence.
    for _ in 0..10 {
        try_login(&srv, &all[0], "ghost@example.com", WRONG).await;
    }
    let r = try_login(&srv, &all[0], "ghost@example.com", WRONG).await;
    assert_eq!(Some((r.status, r.json())), known_locked);
    assert!(r.header("retry-after").is_some());

    // The unlock route ends the account's lock, whatever spelling made it.
    let r = srv
        .post(&format!("/api/v1/admin/users/{lock}/unlock"))
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(r.json(), json!({ "was_locked": true }));
    for doc in all.iter().filter(|d| !d.email_only) {
        let r = try_login(&srv, doc, "ｌｏｃｋ", PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", doc.path, r.text());
    }
    // The lockout entry names the account, not the spelling.
    let events = srv.read(&admin, "/api/v1/admin/audit?event=lockout").await;
    assert!(
        events["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["target"] == lock.as_str())
    );
}

/// Changes `id`'s own password with `token`, giving `current`.
async fn change_own(srv: &Server, token: &str, id: &str, current: &str) -> Resp {
    srv.post(&format!("/api/v1/admin/users/{id}/password"))
        .bearer(token)
        .json(&json!({ "password": "a brand new password", "current_password": current }))
        .send()
        .await
}

// Items 7 and 19: the current-password check is limited, locked and
// audited like a login; the lock it causes refuses sign-ins too.
#[tokio::test]
async fn current_password_guesses_are_limited_and_locked_like_logins() {
    let srv = Server::start_with(limits(100_000, 20)).await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "victim", PASSWORD, &["user"]).await;
    let token = srv.token_of("victim", PASSWORD).await;
    // The right current password: one entry, the change itself.
    let entries = audit_len(&srv, &admin).await;
    let r = change_own(&srv, &token, &id, PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(audit_len(&srv, &admin).await - entries, 1);
    assert_eq!(
        audit_tail(&srv, &admin, 1).await[0]["event"],
        "password_changed"
    );

    let (mut wrong, mut locked, mut limited, mut other) = (0, 0, 0, 0);
    let hashes = verifications(&srv);
    for i in 0..40 {
        let entries = audit_len(&srv, &admin).await;
        let r = change_own(&srv, &token, &id, &format!("guess number {i}")).await;
        match r.status {
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(r.json()["field"], "current_password");
                wrong += 1;
            }
            StatusCode::FORBIDDEN => locked += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            _ => other += 1,
        }
        let added = audit_len(&srv, &admin).await - entries;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(added, 0, "guess {i}: a rate-limited attempt writes nothing");
        } else if wrong == 10 && r.status == StatusCode::UNPROCESSABLE_ENTITY {
            // The tenth failure also records the lock.
            assert_eq!(added, 2, "guess {i}");
        } else {
            assert_eq!(added, 1, "guess {i}: one audit entry");
        }
    }
    // The allowance of 20 a minute already paid for the right check above.
    assert_eq!(
        (wrong, locked, limited, other),
        (10, 9, 21, 0),
        "ten wrong, then locked, then rate-limited"
    );
    // Every check that was not rate-limited ran exactly one verification.
    assert_eq!(verifications(&srv) - hashes, 19);
    let r = change_own(&srv, &token, &id, "a brand new password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The lock is the account's: signing in is refused too.
    let r = srv.try_login("victim", "a brand new password").await;
    assert_answer(&r, &docs()[0].locked, "sign-in after the guesses");
}

/// A server whose verifications are slow enough to hold the pool while a
/// test sends a few requests over loopback.
fn slow_pool(workers: usize, queue: usize, per_account: u32) -> Layer {
    Layer {
        hash_workers: Some(workers),
        hash_queue: Some(queue),
        argon2_memory_kib: Some(19456),
        argon2_iterations: Some(60),
        rate_login_per_ip: Some(100_000),
        rate_login_per_account: Some(per_account),
        lockout_threshold: Some(1000),
        ..Default::default()
    }
}

// Item 7: a flood of current-password checks fills only the share of the
// pool other work may use (two of four places here), so a sign-in is
// still admitted and served.
#[tokio::test]
async fn a_flood_of_password_checks_cannot_take_the_sign_ins_share() {
    let srv = Server::start_with(slow_pool(1, 3, 100_000)).await;
    let admin = srv.admin_token().await;
    let id = srv.create_user(&admin, "victim", PASSWORD, &["user"]).await;
    srv.create_user(&admin, "bystander", PASSWORD, &["user"])
        .await;
    let token = srv.token_of("victim", PASSWORD).await;
    // One at a time, each either takes a place (and holds it, its hash
    // being slow) or is refused at once, so the pool ends as full as the
    // flood may make it.
    let mut flood = Vec::new();
    for i in 0..6 {
        let before = srv.running().hashes_in_flight();
        let call = srv
            .post(&format!("/api/v1/admin/users/{id}/password"))
            .bearer(&token)
            .json(&json!({ "password": "a brand new password", "current_password": format!("guess {i}") }));
        let h = tokio::spawn(async move { call.send().await.status });
        until("the check to take a place or be refused", || {
            h.is_finished() || srv.running().hashes_in_flight() > before
        })
        .await;
        flood.push(h);
    }
    assert_eq!(
        srv.running().hashes_in_flight(),
        2,
        "other work holds its share"
    );
    let r = srv.try_login("bystander", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut busy = 0;
    for h in flood {
        match h.await.expect("joined") {
            StatusCode::SERVICE_UNAVAILABLE => busy += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(busy, 4, "the flood was held to its share");
}

// Item 7: an attempt refused as busy (503) is charged to no allowance: after
// several of them the account still has its full allowance of attempts.
#[tokio::test]
async fn a_busy_refusal_is_charged_to_no_allowance() {
    let srv = Server::start_with(slow_pool(1, 0, 3)).await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "victim", PASSWORD, &["user"]).await;
    srv.create_user(&admin, "holder", PASSWORD, &["user"]).await;
    let hold = srv.login_in_flight("holder", PASSWORD).await;
    let mut busy = 0;
    for _ in 0..5 {
        let r = try_login(&srv, &docs()[0], "victim", WRONG).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            busy += 1;
        }
    }
    assert_eq!(busy, 5, "the held pool refuses every attempt");
    assert_eq!(hold.await.expect("joined").status, StatusCode::OK);
    // The full allowance of three, then the limit.
    for i in 0..3 {
        let r = try_login(&srv, &docs()[0], "victim", WRONG).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            r.text()
        );
    }
    let r = try_login(&srv, &docs()[0], "victim", WRONG).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}
