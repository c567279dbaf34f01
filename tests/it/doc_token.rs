//! `token-and-social-login.txt` as a client of that document sees it:
//! `POST /api/auth/token` with the parameters as JSON or as an HTML form,
//! the documented success and failure bodies, and the token used as
//! `Authorization: Bearer` or as a `token` request parameter (on
//! `GET /api/v1/auth/me`, which answers for any credential). The Google and
//! Microsoft routes are not built yet and not tested here.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

const TOKEN: &str = "/api/auth/token";
const ME: &str = "/api/v1/auth/me";
const FORM: &str = "application/x-www-form-urlencoded";

/// The document's failure body.
fn failed() -> Value {
    json!({ "error": "Invalid email or password." })
}

/// The document's success example.
fn success_example() -> Value {
    json!({
        "token": "rH8xoroj1-yCQM4uuRGT",
        "user_id": 2,
        "receipts_email": "76578310-63ee-4183-bf1b-57f16b507905@bezala.com"
    })
}

/// The document's `receipts_email`, given to an account as its attribute.
const RECEIPTS: &str = "76578310-63ee-4183-bf1b-57f16b507905@bezala.com";

/// A password a form must encode: space, `&`, `+`, `=`, `%`, non-ASCII.
const AWKWARD_PASSWORD: &str = "pa ss&word+1=100% sûr";

/// An account made for a test.
struct Account {
    email: String,
    password: String,
    id: String,
    number: u64,
    receipts_email: Option<&'static str>,
}

/// Makes one account per `(username, password, receipts_email)`.
async fn accounts(srv: &Server, people: &[(&str, &str, Option<&'static str>)]) -> Vec<Account> {
    let admin = srv.admin_token().await;
    let mut made = Vec::new();
    for &(username, password, receipts_email) in people {
        let email = format!("{username}@example.com");
        let attributes = match receipts_email {
            Some(r) => json!({ "receipts_email": r }),
            None => json!({}),
        };
        let body = srv
            .created(
                USERS,
                &admin,
                &json!({
                    "username": username,
                    "email": email,
                    "password": password,
                    "roles": ["user"],
                    "attributes": attributes,
                }),
            )
            .await
            .json();
        made.push(Account {
            email,
            password: password.to_string(),
            id: body["id"].as_str().expect("id").to_string(),
            number: body["number"].as_u64().expect("number"),
            receipts_email,
        });
    }
    made
}

/// Percent-encodes a form value (everything but unreserved characters).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// How the parameters are sent.
#[derive(Clone, Copy, Debug)]
enum As {
    Json,
    Form,
}

async fn sign_in(srv: &Server, how: As, email: &str, password: &str) -> Resp {
    match how {
        As::Json => {
            srv.post(TOKEN)
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
        }
        As::Form => {
            let body = format!(
                "email={}&password={}",
                form_encode(email),
                form_encode(password)
            );
            srv.post(TOKEN).body(FORM, body).send().await
        }
    }
}

/// The token of a successful sign-in.
async fn token_of(srv: &Server, account: &Account) -> String {
    let r = sign_in(srv, As::Json, &account.email, &account.password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn json_and_form_logins_answer_the_documented_success_shape() {
    let srv = Server::start().await;
    let people = accounts(
        &srv,
        &[
            ("rh8x", AWKWARD_PASSWORD, Some(RECEIPTS)),
            ("plain", "a plain password", None),
        ],
    )
    .await;
    let example = success_example();
    let mut seen = Vec::new();
    for account in &people {
        for how in [As::Json, As::Form] {
            let r = sign_in(&srv, how, &account.email, &account.password).await;
            assert_eq!(r.status, StatusCode::OK, "{how:?}: {}", r.text());
            let body = r.json();
            assert_eq!(fields(&body), fields(&example), "{how:?}: {body}");
            let token = body["token"].as_str().expect("token is a string");
            assert!(token.starts_with("lk_ot_"), "{token}");
            assert!(!token.contains('.'), "opaque, not a JWT: {token}");
            assert_eq!(body["user_id"], json!(account.number), "{how:?}");
            assert!(body["user_id"].is_u64(), "user_id is a number");
            assert_eq!(
                body["receipts_email"],
                json!(account.receipts_email),
                "{how:?}"
            );
            seen.push(token.to_string());
        }
    }
    // The example's types where the account has every field.
    let full = sign_in(&srv, As::Form, &people[0].email, &people[0].password)
        .await
        .json();
    for (name, value) in example.as_object().expect("example") {
        assert_eq!(
            std::mem::discriminant(&full[name]),
            std::mem::discriminant(value),
            "{name}: {full}"
        );
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "every sign-in has its own token");

    // A form with a charset parameter is a form.
    let r = srv
        .post(TOKEN)
        .body(
            "application/x-www-form-urlencoded; charset=UTF-8",
            format!(
                "password={}&email={}",
                form_encode(&people[1].password),
                form_encode(&people[1].email)
            ),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_refused_login_answers_exactly_the_documented_body() {
    let srv = Server::start().await;
    let people = accounts(&srv, &[("rh8x", AWKWARD_PASSWORD, Some(RECEIPTS))]).await;
    let who = &people[0];
    let wrong_case = AWKWARD_PASSWORD.to_uppercase();
    let cases: [(&str, &str, &str); 3] = [
        ("wrong password", &who.email, "wrong password"),
        ("password in another case", &who.email, &wrong_case),
        ("unknown email", "nobody@example.com", AWKWARD_PASSWORD),
    ];
    for (what, email, password) in cases {
        for how in [As::Json, As::Form] {
            let r = sign_in(&srv, how, email, password).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{what} {how:?}");
            assert_eq!(r.json(), failed(), "{what} {how:?}");
        }
    }
}

#[tokio::test]
async fn parameters_are_required_and_must_be_strings() {
    let srv = Server::start().await;
    let cases: [(&str, &str, &str); 7] = [
        (
            "no password",
            "application/json",
            r#"{"email": "a@example.com"}"#,
        ),
        (
            "no email",
            "application/json",
            r#"{"password": "a password"}"#,
        ),
        (
            "email not a String",
            "application/json",
            r#"{"email": 7, "password": "a password"}"#,
        ),
        (
            "password not a String",
            "application/json",
            r#"{"email": "a@example.com", "password": null}"#,
        ),
        ("not JSON", "application/json", r#"{"email": "#),
        ("form without password", FORM, "email=a%40example.com"),
        ("form without email", FORM, "password=a+password"),
    ];
    for (what, content_type, body) in cases {
        let r = srv.post_body(TOKEN, content_type, body.to_string()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{what}: {}", r.text());
    }
}

#[tokio::test]
async fn a_locked_account_is_refused_in_other_words_even_with_the_right_password() {
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(3),
        lockout_seconds: Some(900),
        ..Default::default()
    })
    .await;
    let people = accounts(&srv, &[("rh8x", AWKWARD_PASSWORD, None)]).await;
    let who = &people[0];
    for how in [As::Json, As::Form, As::Json] {
        let r = sign_in(&srv, how, &who.email, "wrong password").await;
        assert_eq!((r.status, r.json()), (StatusCode::FORBIDDEN, failed()));
    }
    for how in [As::Json, As::Form] {
        let r = sign_in(&srv, how, &who.email, &who.password).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{how:?}");
        let said = r.json()["error"].as_str().expect("error").to_string();
        assert_ne!(said, failed()["error"], "a lock says so");
        assert!(retry_after(&r) <= 900, "{:?}", r.headers);
    }
    srv.advance(900);
    let r = sign_in(&srv, As::Form, &who.email, &who.password).await;
    assert_eq!(r.status, StatusCode::OK, "the lock ends: {}", r.text());
}

#[tokio::test]
async fn too_many_attempts_is_429_with_the_documented_body_and_retry_after() {
    let limited = json!({ "error": "Too many login attempts. Please try again later." });
    // (which limit, the layer, whether every attempt names the same email)
    let cases: [(&str, Layer, bool); 2] = [
        (
            "per email",
            Layer {
                rate_login_per_account: Some(3),
                ..Default::default()
            },
            true,
        ),
        (
            "per address",
            Layer {
                rate_login_per_ip: Some(3),
                ..Default::default()
            },
            false,
        ),
    ];
    for (what, layer, same_email) in cases {
        let srv = Server::start_with(layer).await;
        let people = accounts(&srv, &[("rh8x", AWKWARD_PASSWORD, None)]).await;
        let who = &people[0];
        // The admin's sign-in for the set-up counted too; let it pass.
        srv.advance(60);
        let email = |i: usize| {
            if same_email {
                who.email.clone()
            } else {
                format!("someone{i}@example.com")
            }
        };
        for (i, how) in [As::Json, As::Form, As::Json].into_iter().enumerate() {
            let r = sign_in(&srv, how, &email(i), "wrong password").await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: attempt {i}");
        }
        // Over the limit even with the right password, in either form.
        for how in [As::Json, As::Form] {
            let r = sign_in(&srv, how, &who.email, &who.password).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{what} {how:?}");
            assert_eq!(r.json(), limited, "{what}");
            let wait = retry_after(&r);
            assert!((1..=60).contains(&wait), "{what}: Retry-After {wait}");
        }
        srv.advance(60);
        let r = sign_in(&srv, As::Json, &who.email, &who.password).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: recovers: {}", r.text());
    }
}

#[tokio::test]
async fn the_token_works_as_a_bearer_header_and_as_a_token_parameter() {
    // (query parameter setting, whether `?token=` is accepted)
    let cases = [(None, true), (Some(false), false)];
    for (setting, query_accepted) in cases {
        let srv = Server::start_with(Layer {
            token_query_param: setting,
            ..Default::default()
        })
        .await;
        let people = accounts(&srv, &[("rh8x", AWKWARD_PASSWORD, Some(RECEIPTS))]).await;
        let who = &people[0];
        let token = token_of(&srv, who).await;

        let by_header = srv.me(&token).await;
        assert_eq!(by_header.status, StatusCode::OK, "{}", by_header.text());
        let me = by_header.json();
        assert_eq!(me["id"], who.id.as_str());
        assert_eq!(me["number"], json!(who.number));
        assert_eq!(me["email"], who.email.as_str());

        let by_param = srv.get(&format!("{ME}?token={token}")).send().await;
        if query_accepted {
            assert_eq!(by_param.status, StatusCode::OK, "{}", by_param.text());
            assert_eq!(by_param.json()["id"], who.id.as_str());
            let among = srv.get(&format!("{ME}?a=1&token={token}&b=2")).send().await;
            assert_eq!(among.status, StatusCode::OK, "{}", among.text());
        } else {
            assert_eq!(
                by_param.status,
                StatusCode::UNAUTHORIZED,
                "{setting:?}: {}",
                by_param.text()
            );
        }

        // Never a token that is not one.
        let forged = format!("lk_ot_{}", "A".repeat(43));
        for bad in [forged.as_str(), "rH8xoroj1-yCQM4uuRGT", ""] {
            let r = srv.get(&format!("{ME}?token={bad}")).send().await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "?token={bad}");
            let r = srv.me(bad).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "Bearer {bad}");
        }
    }
}

/// Settings for a `latchkey serve` process with light hashing, a known
/// first admin, and every log line.
fn traced(data: &str) -> Vec<(&str, &str)> {
    vec![
        ("LATCHKEY_DATA_DIR", data),
        ("LATCHKEY_LISTEN", "127.0.0.1:0"),
        ("LATCHKEY_ARGON2_MEMORY_KIB", "256"),
        ("LATCHKEY_ARGON2_ITERATIONS", "1"),
        ("LATCHKEY_ADMIN_USERNAME", ADMIN),
        ("LATCHKEY_ADMIN_EMAIL", ADMIN_EMAIL),
        ("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("LATCHKEY_LOG", "trace"),
    ]
}

#[tokio::test]
async fn a_token_in_a_url_never_reaches_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut p = Proc::spawn(&[], &traced(data.to_str().expect("path")));
    let at = p.at();
    let form = format!(
        "email={}&password={}",
        form_encode(ADMIN_EMAIL),
        form_encode(ADMIN_PASSWORD)
    );
    let r = at.post(TOKEN).body(FORM, form).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json()["token"].as_str().expect("token").to_string();

    // Accepted, refused and misdirected requests with the token in the URL,
    // over HTTP/1.1 and HTTP/2; then a logout with it, and its refusal.
    let urls = [
        format!("{ME}?token={token}"),
        format!("{ME}?x=1&token={token}"),
        format!("/nowhere?token={token}"),
        format!("{ME}/?token={token}"),
    ];
    for url in &urls {
        at.get(url).send().await;
        at.get(url).http2().send().await;
    }
    let r = at.get(&format!("{ME}?token={token}")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = at
        .post(&format!("/api/v1/auth/logout?token={token}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = at.get(&format!("{ME}?token={token}")).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    p.signal(libc::SIGTERM);
    p.wait();
    let log = p.stderr();
    assert!(log.contains(ME), "requests are logged: {log}");
    let secret = token.strip_prefix("lk_ot_").expect("prefix");
    for (what, needle) in [
        ("the token", token.as_str()),
        ("its random part", secret),
        ("a third of its random part", &secret[..15]),
        ("any opaque token", "lk_ot_"),
        ("the password", ADMIN_PASSWORD),
    ] {
        assert!(!log.contains(needle), "{what} is in the log");
    }
}
