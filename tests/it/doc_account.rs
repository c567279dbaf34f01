//! `account-roles-token.txt` as a client of that document sees it:
//! `POST /api/account/roles` and `POST /api/account/token`, their fields,
//! status codes and bare-string bodies, the document's two curl examples run
//! with the `curl` binary, and the rule latchkey adds (a token only for a
//! caller that proved the login, see `domain::role_choice`). Apart from
//! setting accounts up through the admin API, the only other path used is
//! `POST /api/v1/auth/logout`, to show that switching roles stays in one
//! session.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use latchkey::config::Layer;
use latchkey::domain::Clock;
use serde_json::{Value, json};

use crate::harness::*;

const ROLES: &str = "/api/account/roles";
const TOKEN: &str = "/api/account/token";

/// The document's words.
const INVALID_LOGIN: &str = "Invalid email or password";
const LOCKED: &str = "Account has been locked due to multiple failed login attempts";
const NO_SUCH_ROLE: &str = "User doesn't have the requested role";

/// The document's success example for `/api/account/roles`.
fn roles_example() -> Value {
    json!({
        "accountId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "email": "[email protected]",
        "roles": ["Customer", "Seller"]
    })
}

/// The document's success example for `/api/account/token`.
const TOKEN_EXAMPLE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIzZmE4NWY2NC01NzE3LTQ1NjItYjNmYy0yYzk2M2Y2NmFmYTYiLCJyb2xlIjoiQ3VzdG9tZXIiLCJpYXQiOjE1MTYyMzkwMjJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

/// An account made for a test.
struct Account {
    id: String,
    email: String,
    password: String,
}

/// Limits high enough that a test's own calls never meet them.
fn roomy(layer: Layer) -> Layer {
    Layer {
        rate_login_per_ip: layer.rate_login_per_ip.or(Some(10_000)),
        rate_login_per_account: layer.rate_login_per_account.or(Some(10_000)),
        ..layer
    }
}

/// Makes the custom roles `Customer` and `Seller` and one account per
/// `(username, roles)`, each with the email `<username>@example.com`.
async fn accounts(srv: &Server, people: &[(&str, &[&str])]) -> Vec<Account> {
    // The admin's own address, for servers that trust the loopback as a
    // proxy (which must then name its client); others ignore it.
    const ADMIN_AT: &str = "192.0.2.250";
    let r = srv
        .post("/api/v1/auth/login")
        .header("x-forwarded-for", ADMIN_AT)
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let admin = r.json()["token"].as_str().expect("token").to_string();
    for role in ["Customer", "Seller"] {
        let r = srv
            .post("/api/v1/admin/roles")
            .header("x-forwarded-for", ADMIN_AT)
            .bearer(&admin)
            .json(&json!({ "name": role }))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let mut made = Vec::new();
    for (username, roles) in people {
        let email = format!("{username}@example.com");
        let password = format!("{username}'s password 1!");
        let r = srv
            .post("/api/v1/admin/users")
            .header("x-forwarded-for", ADMIN_AT)
            .bearer(&admin)
            .json(&json!({
                "username": username,
                "email": email,
                "password": password,
                "roles": roles,
            }))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        made.push(Account {
            id: r.json()["id"].as_str().expect("id").to_string(),
            email,
            password,
        });
    }
    made
}

/// Disables or deletes an account through the admin API.
async fn admin_acts(srv: &Server, method: http::Method, path: &str) {
    let admin = srv.admin_token().await;
    let r = srv.call(method, path).bearer(&admin).send().await;
    assert!(r.status.is_success(), "{path}: {}", r.text());
}

/// Where a request comes from: the client address (through a trusted
/// proxy's X-Forwarded-For) and the User-Agent.
#[derive(Clone, Copy, Debug)]
struct Client {
    ip: &'static str,
    agent: &'static str,
}

/// `POST path` with a JSON body, from `client` when given, with a bearer
/// credential when given.
async fn post(
    srv: &Server,
    path: &str,
    client: Option<Client>,
    bearer: Option<&str>,
    body: &Value,
) -> Resp {
    let mut call = srv.post(path).json(body);
    if let Some(c) = client {
        call = call
            .header("x-forwarded-for", c.ip)
            .header("user-agent", c.agent);
    }
    if let Some(token) = bearer {
        call = call.bearer(token);
    }
    call.send().await
}

async fn roles(srv: &Server, client: Option<Client>, email: &str, password: &str) -> Resp {
    post(
        srv,
        ROLES,
        client,
        None,
        &json!({ "email": email, "password": password }),
    )
    .await
}

async fn token(
    srv: &Server,
    client: Option<Client>,
    bearer: Option<&str>,
    account_id: &str,
    role: &str,
) -> Resp {
    post(
        srv,
        TOKEN,
        client,
        bearer,
        &json!({ "accountId": account_id, "role": role }),
    )
    .await
}

/// The bare JSON string a response carries.
fn string_body(r: &Resp) -> String {
    match r.json() {
        Value::String(s) => s,
        other => panic!("not a bare JSON string: {other}"),
    }
}

/// The JWT of a 200 from `/api/account/token`.
fn jwt(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    string_body(r)
}

/// A JWT's payload, decoded (base64url) but not verified.
fn claims(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {jwt}");
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url payload");
    serde_json::from_slice(&payload).expect("JSON payload")
}

/// The JSON type of a value, by name.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Asserts that `actual` has exactly the fields of the document's
/// `example`, each of the same JSON type.
fn assert_documented_shape(example: &Value, actual: &Value) {
    let (Some(want), Some(got)) = (example.as_object(), actual.as_object()) else {
        panic!("not objects: {example} / {actual}");
    };
    let mut want_names: Vec<&String> = want.keys().collect();
    let mut got_names: Vec<&String> = got.keys().collect();
    want_names.sort();
    got_names.sort();
    assert_eq!(got_names, want_names, "{actual}");
    for (name, value) in want {
        assert_eq!(kind(&got[name]), kind(value), "{name} in {actual}");
    }
}

#[tokio::test]
async fn roles_lists_every_role_of_the_account_in_the_documented_shape() {
    let srv = Server::start().await;
    let people = accounts(
        &srv,
        &[("casey", &["Customer", "Seller"]), ("quinn", &["Customer"])],
    )
    .await;
    for (account, expected) in people
        .iter()
        .zip([json!(["Customer", "Seller"]), json!(["Customer"])])
    {
        let r = roles(&srv, None, &account.email, &account.password).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let body = r.json();
        assert_documented_shape(&roles_example(), &body);
        assert_eq!(body["accountId"], account.id.as_str());
        assert!(
            uuid::Uuid::parse_str(body["accountId"].as_str().unwrap()).is_ok(),
            "accountId is a uuid: {body}"
        );
        assert_eq!(body["email"], account.email.as_str());
        assert_eq!(body["roles"], expected);
    }
}

#[tokio::test]
async fn roles_refusals_are_the_documented_codes_and_strings() {
    let srv = Server::start_with(roomy(Layer::default())).await;
    let people = accounts(&srv, &[("casey", &["Customer", "Seller"])]).await;
    let casey = &people[0];

    // 400: not the documented request.
    let malformed: [(&str, &str, &str); 6] = [
        ("not JSON", "application/json", "{\"email\": "),
        (
            "no password",
            "application/json",
            r#"{"email": "casey@example.com"}"#,
        ),
        ("no email", "application/json", r#"{"password": "x"}"#),
        (
            "email not a string",
            "application/json",
            r#"{"email": 5, "password": "x"}"#,
        ),
        (
            "a JSON array",
            "application/json",
            r#"["casey@example.com", "x"]"#,
        ),
        (
            "not declared as JSON",
            "text/plain",
            r#"{"email": "casey@example.com", "password": "x"}"#,
        ),
    ];
    for (what, content_type, body) in malformed {
        let r = srv.post_body(ROLES, content_type, body.to_string()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        string_body(&r);
    }

    // 404: the document's one answer for a wrong email or password.
    let wrong: [(&str, &str, &str); 3] = [
        ("wrong password", &casey.email, "not the password"),
        ("unknown email", "nobody@example.com", &casey.password),
        (
            "email in another case, wrong password",
            "CASEY@example.com",
            "nope",
        ),
    ];
    for (what, email, password) in wrong {
        let r = roles(&srv, None, email, password).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.text());
        assert_eq!(r.json(), json!(INVALID_LOGIN), "{what}");
    }
}

#[tokio::test]
async fn a_locked_account_is_403_with_the_documented_string_even_with_the_right_password() {
    let srv = Server::start_with(roomy(Layer {
        lockout_threshold: Some(3),
        lockout_seconds: Some(600),
        ..Default::default()
    }))
    .await;
    let people = accounts(&srv, &[("casey", &["Customer", "Seller"])]).await;
    let casey = &people[0];
    for attempt in 1..=3 {
        let r = roles(&srv, None, &casey.email, "wrong password").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "attempt {attempt}");
        assert_eq!(r.json(), json!(INVALID_LOGIN));
    }
    for password in [casey.password.as_str(), "wrong password"] {
        let r = roles(&srv, None, &casey.email, password).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(r.json(), json!(LOCKED));
    }
    srv.advance(600);
    let r = roles(&srv, None, &casey.email, &casey.password).await;
    assert_eq!(r.status, StatusCode::OK, "the lock ends: {}", r.text());
}

#[tokio::test]
async fn a_disabled_account_is_403() {
    let srv = Server::start().await;
    let people = accounts(&srv, &[("casey", &["Customer", "Seller"])]).await;
    let casey = &people[0];
    admin_acts(
        &srv,
        http::Method::POST,
        &format!("/api/v1/admin/users/{}/disable", casey.id),
    )
    .await;
    let r = roles(&srv, None, &casey.email, &casey.password).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_ne!(string_body(&r), INVALID_LOGIN);
}

#[tokio::test]
async fn token_is_a_bare_jwt_string_for_the_chosen_role_only() {
    let srv = Server::start().await;
    let people = accounts(&srv, &[("casey", &["Customer", "Seller"])]).await;
    let casey = &people[0];
    let r = roles(&srv, None, &casey.email, &casey.password).await;
    assert_eq!(r.status, StatusCode::OK);
    let documented = claims(TOKEN_EXAMPLE);
    for role in ["Customer", "Seller"] {
        let token = jwt(&token(&srv, None, None, &casey.id, role).await);
        let c = claims(&token);
        assert_eq!(c["sub"], casey.id.as_str(), "{c}");
        assert_eq!(c["role"], role, "{c}");
        assert_eq!(c["roles"], json!([role]), "{c}");
        // Every claim the document's example shows, with the same type.
        for (name, value) in documented.as_object().expect("example claims") {
            assert_eq!(kind(&c[name]), kind(value), "{name} in {c}");
        }
    }
}

#[tokio::test]
async fn token_refusals_are_the_documented_codes() {
    let srv = Server::start_with(roomy(Layer::default())).await;
    let people = accounts(
        &srv,
        &[
            ("casey", &["Customer", "Seller"]),
            ("quinn", &["Customer"]),
            ("gone", &["Customer"]),
            ("off", &["Customer"]),
        ],
    )
    .await;
    for account in &people {
        let r = roles(&srv, None, &account.email, &account.password).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let (casey, quinn) = (&people[0], &people[1]);

    let long_role = "R".repeat(65);
    let cases: [(&str, &str, Value, StatusCode, Option<&str>); 10] = [
        (
            "accountId not a uuid",
            "application/json",
            json!({ "accountId": "3fa85f64", "role": "Customer" }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "empty role",
            "application/json",
            json!({ "accountId": casey.id, "role": "" }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "role too long to be one",
            "application/json",
            json!({ "accountId": casey.id, "role": long_role }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "no role",
            "application/json",
            json!({ "accountId": casey.id }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "role not a string",
            "application/json",
            json!({ "accountId": casey.id, "role": ["Customer"] }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "a JSON array",
            "application/json",
            json!([casey.id, "Customer"]),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "not declared as JSON",
            "text/plain",
            json!({ "accountId": casey.id, "role": "Customer" }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "a role nobody has",
            "application/json",
            json!({ "accountId": casey.id, "role": "Admin" }),
            StatusCode::FORBIDDEN,
            Some(NO_SUCH_ROLE),
        ),
        (
            "a built-in role the account lacks",
            "application/json",
            json!({ "accountId": casey.id, "role": "admin" }),
            StatusCode::FORBIDDEN,
            Some(NO_SUCH_ROLE),
        ),
        (
            "a role another account has",
            "application/json",
            json!({ "accountId": quinn.id, "role": "Seller" }),
            StatusCode::FORBIDDEN,
            Some(NO_SUCH_ROLE),
        ),
    ];
    for (what, content_type, body, status, words) in cases {
        let r = srv.post_body(TOKEN, content_type, body.to_string()).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let said = string_body(&r);
        if let Some(words) = words {
            assert_eq!(said, words, "{what}");
        }
    }

    // 404: the account went away after its login was proved.
    let gone = &people[2];
    admin_acts(
        &srv,
        http::Method::DELETE,
        &format!("/api/v1/admin/users/{}", gone.id),
    )
    .await;
    let r = token(&srv, None, None, &gone.id, "Customer").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    string_body(&r);

    // 403: disabled after its login was proved.
    let off = &people[3];
    admin_acts(
        &srv,
        http::Method::POST,
        &format!("/api/v1/admin/users/{}/disable", off.id),
    )
    .await;
    let r = token(&srv, None, None, &off.id, "Customer").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    string_body(&r);
}

#[tokio::test]
async fn the_token_goes_only_to_a_caller_that_proved_the_login() {
    let srv = Server::start_with(roomy(Layer {
        trusted_proxies: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    }))
    .await;
    let people = accounts(
        &srv,
        &[("casey", &["Customer", "Seller"]), ("quinn", &["Customer"])],
    )
    .await;
    let (casey, quinn) = (&people[0], &people[1]);
    let here = Client {
        ip: "203.0.113.1",
        agent: "shop-app/1.0",
    };
    let r = roles(&srv, Some(here), &casey.email, &casey.password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: [(&str, Client, &str, StatusCode); 5] = [
        (
            "the same client right after",
            here,
            &casey.id,
            StatusCode::OK,
        ),
        (
            "another User-Agent",
            Client {
                agent: "shop-app/2.0",
                ..here
            },
            &casey.id,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "another address",
            Client {
                ip: "203.0.113.2",
                ..here
            },
            &casey.id,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "the same client, an account it did not log in to",
            here,
            &quinn.id,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "the same client, an account that does not exist",
            here,
            &unknown,
            StatusCode::NOT_FOUND,
        ),
    ];
    let mut first = None;
    for (what, client, account_id, status) in cases {
        let r = token(&srv, Some(client), None, account_id, "Customer").await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let said = string_body(&r);
        if status == StatusCode::OK {
            first.get_or_insert(said);
        }
    }
    let first = first.expect("a token");

    // The proof lasts 120 s from /api/account/roles.
    srv.advance(119);
    let r = token(&srv, Some(here), None, &casey.id, "Seller").await;
    assert_eq!(r.status, StatusCode::OK, "at 119 s: {}", r.text());
    srv.advance(1);
    let r = token(&srv, Some(here), None, &casey.id, "Seller").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "at 120 s: {}", r.text());
    string_body(&r);

    // Later still, a token of the same account re-issues the role it
    // carries, from anywhere; another role takes the password again.
    srv.advance(300);
    let elsewhere = Client {
        ip: "198.51.100.9",
        agent: "other-app",
    };
    let again = jwt(&token(&srv, Some(elsewhere), Some(&first), &casey.id, "Customer").await);
    assert_eq!(claims(&again)["roles"], json!(["Customer"]));
    let r = token(&srv, Some(elsewhere), Some(&first), &casey.id, "Seller").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    string_body(&r);

    // A token of another account does not.
    let theirs = Client {
        ip: "198.51.100.10",
        agent: "quinn-app",
    };
    let r = roles(&srv, Some(theirs), &quinn.email, &quinn.password).await;
    assert_eq!(r.status, StatusCode::OK);
    let quinn_token = jwt(&token(&srv, Some(theirs), None, &quinn.id, "Customer").await);
    let refused: [(&str, &str, StatusCode); 3] = [
        (
            "another account's token",
            &quinn_token,
            StatusCode::FORBIDDEN,
        ),
        ("not a token", "not-a-token", StatusCode::UNAUTHORIZED),
        (
            "a token with its signature cut",
            first.rsplit_once('.').unwrap().0,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (what, bearer, status) in refused {
        let r = token(&srv, Some(elsewhere), Some(bearer), &casey.id, "Customer").await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        string_body(&r);
    }
}

#[tokio::test]
async fn switching_roles_stays_in_one_session_and_one_logout_ends_it() {
    let srv = Server::start_with(roomy(Layer::default())).await;
    let people = accounts(&srv, &[("casey", &["Customer", "Seller"])]).await;
    let casey = &people[0];
    let phone = Client {
        ip: "127.0.0.1",
        agent: "phone",
    };
    let laptop = Client {
        ip: "127.0.0.1",
        agent: "laptop",
    };
    for c in [phone, laptop] {
        let r = roles(&srv, Some(c), &casey.email, &casey.password).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let customer = jwt(&token(&srv, Some(phone), None, &casey.id, "Customer").await);
    let seller = jwt(&token(&srv, Some(phone), None, &casey.id, "Seller").await);
    let on_laptop = jwt(&token(&srv, Some(laptop), None, &casey.id, "Customer").await);
    srv.advance(300);
    // A chosen token re-issues its own role (a narrowed token reaches no
    // other role without the password).
    let again = jwt(&token(&srv, Some(phone), Some(&seller), &casey.id, "Seller").await);
    for (t, role) in [
        (&customer, "Customer"),
        (&seller, "Seller"),
        (&again, "Seller"),
    ] {
        assert_eq!(claims(t)["roles"], json!([role]));
    }

    let r = srv.post("/api/v1/auth/logout").bearer(&seller).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (what, t) in [
        ("the token logged out with", &seller),
        ("the token chosen before it", &customer),
        ("the token re-issued with it", &again),
    ] {
        let r = token(&srv, Some(phone), Some(t), &casey.id, "Customer").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
        let r = srv.me(t).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
    }
    // The other login is another session, untouched.
    let r = token(&srv, Some(laptop), Some(&on_laptop), &casey.id, "Customer").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_logout_ends_the_login_and_a_new_login_gets_a_working_token() {
    let srv = Server::start_with(roomy(Layer::default())).await;
    let people = accounts(&srv, &[("casey", &["Customer", "Seller"])]).await;
    let casey = &people[0];
    let r = roles(&srv, None, &casey.email, &casey.password).await;
    assert_eq!(r.status, StatusCode::OK);
    let first = jwt(&token(&srv, None, None, &casey.id, "Customer").await);
    let r = srv.post("/api/v1/auth/logout").bearer(&first).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // The login that was logged out of gives nothing more.
    let r = token(&srv, None, None, &casey.id, "Seller").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    // Logging in again does.
    let r = roles(&srv, None, &casey.email, &casey.password).await;
    assert_eq!(r.status, StatusCode::OK);
    let second = jwt(&token(&srv, None, None, &casey.id, "Seller").await);
    let r = token(&srv, None, Some(&second), &casey.id, "Customer").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the new token works: {}",
        r.text()
    );
}

/// A TLS server, so the examples keep their `https://` scheme, and the CA
/// file `curl` trusts it with.
async fn tls_server() -> (Server, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new(dir.path());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write CA");
    let layer = Layer {
        tls_cert: Some(pki.cert.clone()),
        tls_key: Some(pki.key.clone()),
        ..Default::default()
    };
    let srv = Server::start_in(
        dir,
        layer,
        Clock::manual(now()),
        Some(pki.client_config()),
        bootstrap(),
    )
    .await;
    (srv, ca)
}

/// The document's first example, exactly as published.
const ROLES_EXAMPLE: [&str; 7] = [
    "-X",
    "POST",
    "https://your-server.com/api/account/roles",
    "-H",
    "Content-Type: application/json",
    "-d",
    "{\n    \"email\": \"[email protected]\",\n    \"password\": \"SecurePass123!\"\n  }",
];

/// The document's second example, exactly as published.
const TOKEN_EXAMPLE_CURL: [&str; 7] = [
    "-X",
    "POST",
    "https://your-server.com/api/account/token",
    "-H",
    "Content-Type: application/json",
    "-d",
    "{\n    \"accountId\": \"3fa85f64-5717-4562-b3fc-2c963f66afa6\",\n    \"role\": \"Customer\"\n  }",
];

/// Runs `curl` with an example's arguments, each with these text
/// substitutions (the host first of all), plus options that only say how
/// to trust the server and how to print the answer. Returns the status and
/// the JSON body.
async fn run_example(
    example: &[&str],
    substitutions: &[(&str, &str)],
    ca: &std::path::Path,
) -> (u16, Value) {
    let mut args: Vec<String> = vec![
        "--silent".into(),
        "--show-error".into(),
        "--cacert".into(),
        ca.to_str().expect("CA path").into(),
        "--write-out".into(),
        "\n%{http_code}".into(),
    ];
    args.extend(example.iter().map(|arg| {
        substitutions
            .iter()
            .fold(arg.to_string(), |a, (from, to)| a.replace(from, to))
    }));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl").args(&args).output()
    })
    .await
    .expect("join")
    .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (body, status) = text.rsplit_once('\n').expect("status line");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status.parse().expect("status"), body)
}

#[tokio::test]
async fn the_documented_curl_examples_work() {
    let (srv, ca) = tls_server().await;
    let people = accounts(&srv, &[("casey", &["Customer", "Seller"])]).await;
    let casey = &people[0];
    let host = format!("https://127.0.0.1:{}", srv.addr.port());
    let host = ("https://your-server.com", host.as_str());

    // Verbatim: the example account does not exist here.
    let (status, body) = run_example(&ROLES_EXAMPLE, &[host], &ca).await;
    assert_eq!((status, body), (404, json!(INVALID_LOGIN)));

    // With a real account's email and password in place of the example's.
    let (status, body) = run_example(
        &ROLES_EXAMPLE,
        &[
            host,
            ("[email protected]", &casey.email),
            ("SecurePass123!", &casey.password),
        ],
        &ca,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_documented_shape(&roles_example(), &body);
    assert_eq!(body["accountId"], casey.id.as_str());
    assert_eq!(body["roles"], json!(["Customer", "Seller"]));

    // The second example with the accountId just returned: the same client
    // (curl, from here) right after its login gets the JWT.
    let (status, body) = run_example(
        &TOKEN_EXAMPLE_CURL,
        &[host, ("3fa85f64-5717-4562-b3fc-2c963f66afa6", &casey.id)],
        &ca,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body.as_str().expect("a bare JSON string");
    let c = claims(token);
    assert_eq!(c["sub"], casey.id.as_str());
    assert_eq!(c["role"], "Customer");
    assert_eq!(c["roles"], json!(["Customer"]));

    // Verbatim, it names an account that does not exist here: the
    // document's 404.
    let (status, body) = run_example(&TOKEN_EXAMPLE_CURL, &[host], &ca).await;
    assert_eq!((status, body), (404, json!("Account not found")));
}

#[tokio::test]
async fn an_opaque_token_of_the_account_also_proves_the_login() {
    let srv = Server::start().await;
    let token = srv.opaque_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let me = srv.read(&token, "/api/v1/auth/me").await;
    let r = srv
        .post_as(
            &token,
            "/api/account/token",
            &json!({ "accountId": me["id"], "role": "admin" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let jwt = r.json().as_str().unwrap().to_string();
    assert_eq!(srv.me(&jwt).await.status, StatusCode::OK);
    // Same session: ending the opaque token's session ends the chosen one.
    let r = srv.post("/api/v1/auth/logout").bearer(&token).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(srv.me(&jwt).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn choosing_a_role_is_under_the_address_rate_limit() {
    let srv = Server::start_with(Layer {
        rate_login_per_ip: Some(3),
        ..Default::default()
    })
    .await;
    let roles = srv
        .post_json(
            "/api/account/roles",
            &json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
        )
        .await
        .json();
    let choose = || {
        srv.post("/api/account/token")
            .json(&json!({ "accountId": roles["accountId"], "role": "admin" }))
    };
    for _ in 0..2 {
        assert_eq!(choose().send().await.status, StatusCode::OK);
    }
    let r = choose().send().await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert!(r.json().is_string());
}
