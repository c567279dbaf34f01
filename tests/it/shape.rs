//! Input the adapters decode themselves: an HTML form (the token
//! document's parameters) and a query string (list filters, a token in a
//! URL). Bytes that do not decode to UTF-8 are refused with 400 in the
//! route's document's words, before any other work, never replaced by a
//! guess that then reaches the password check or a filter.

use http::StatusCode;
use latchkey::api::Document;
use serde_json::json;

use crate::harness::*;

const TOKEN: &str = "/api/auth/token";
const FORM: &str = "application/x-www-form-urlencoded";

/// The admin's sign-in form, its password followed by `tail` as sent.
fn admin_form(tail: &str) -> String {
    // The password's spaces go as `+`, the address's `@` as `%40`.
    format!(
        "email={}&password={}{tail}",
        ADMIN_EMAIL.replace('@', "%40"),
        ADMIN_PASSWORD.replace(' ', "+"),
    )
}

/// A 400 with exactly this body.
fn assert_bad_request(r: &Resp, body: serde_json::Value) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json(), body);
}

#[tokio::test]
async fn a_form_that_is_not_utf8_is_refused_without_a_hash() {
    let srv = Server::start().await;
    let hashes = srv.running().hash_verifications();

    // A percent-escape that decodes to a byte no UTF-8 text has, and the
    // same byte sent as it is.
    let escaped = admin_form("%FF").into_bytes();
    let mut raw = admin_form("").into_bytes();
    raw.push(0xFF);
    for body in [escaped, raw] {
        let r = srv.post(TOKEN).body(FORM, body).send().await;
        assert_bad_request(&r, json!({ "error": "The form is not valid UTF-8." }));
    }
    // Refused before the password check: no hash ran, and nothing was
    // counted against the account.
    assert_eq!(srv.running().hash_verifications(), hashes);
    let admin = srv.admin_token().await;
    let failures = srv
        .audit(&admin)
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "failure")
        .count();
    assert_eq!(failures, 0);

    // The same form in UTF-8 (a multi-byte character escaped byte by
    // byte) is decoded and checked: the right password signs in, and a
    // wrong one is the document's ordinary refusal.
    let r = srv.post(TOKEN).body(FORM, admin_form("")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv.post_body(TOKEN, FORM, admin_form("%C3%A9")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json(), json!({ "error": "Invalid email or password." }));
}

#[tokio::test]
async fn a_query_string_that_is_not_utf8_is_refused_in_the_documents_words() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;

    // A list filter: refused, not run with U+FFFD in its place.
    let r = srv
        .get(&format!("{USERS}?q=%FF"))
        .bearer(&admin)
        .send()
        .await;
    assert_bad_request(
        &r,
        json!({ "error": "The query string is not valid UTF-8" }),
    );
    // The same filter in UTF-8 is run.
    let none = srv.items(&admin, &format!("{USERS}?q=adm%C3%AEn")).await;
    assert_eq!(none, Vec::<serde_json::Value>::new());
    let found = srv.items(&admin, &format!("{USERS}?q=%61dmin")).await;
    assert_eq!(found[0]["username"], ADMIN);

    // A route of another document answers in that document's words.
    let login = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD });
    let r = srv.post("/login?next=%C3").json(&login).send().await;
    assert_bad_request(
        &r,
        json!({ "detail": "The query string is not valid UTF-8" }),
    );
}

/// The 401 body of each document, as its adapter words a missing or
/// refused credential.
fn refusal_words(document: Document) -> serde_json::Value {
    match document {
        Document::V1 => json!({ "error": "Authentication required" }),
        Document::TenantLoginAndS2s => json!({ "detail": "Not authenticated" }),
        Document::ClientLoginRefresh => {
            json!({ "error": "unauthorized", "message": "Authentication required" })
        }
        Document::TokenAndSocialLogin => json!({ "error": "Authentication required." }),
        Document::AccountRolesToken => {
            json!("Login required: call /api/account/roles first, or send a token of this account")
        }
    }
}

/// Every route the table declares as needing a principal is refused
/// before its handler runs, in its own document's words with the RFC 6750
/// challenge: with no credential, with a malformed header and with a
/// credential that names nothing. A public route never asks for one (the
/// two routes that use one when sent, and do without, are neither).
#[tokio::test]
async fn every_route_that_needs_a_principal_is_refused_without_one() {
    let srv = Server::start().await;
    let (mut guarded, mut public, mut either) = (0, 0, 0);
    for route in latchkey::api::routes() {
        let path: String = route
            .path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "7d0f2a4e-0000-4000-8000-000000000001"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let call = || srv.call(route.method.clone(), &path).json(&json!({}));
        if !route.needs_principal() && !route.is_public() {
            either += 1;
            continue;
        }
        if route.is_public() {
            public += 1;
            let r = call().send().await;
            assert!(
                r.header("www-authenticate").is_none(),
                "{} {} is public but answered {} {}",
                route.method,
                route.path,
                r.status,
                r.text()
            );
            continue;
        }
        guarded += 1;
        for (header, challenge) in [
            (None, r#"Bearer realm="latchkey""#),
            (
                Some("Basic YWRtaW46YWRtaW4="),
                r#"Bearer realm="latchkey", error="invalid_token""#,
            ),
            (
                Some("Bearer lk_ot_nothing"),
                r#"Bearer realm="latchkey", error="invalid_token""#,
            ),
        ] {
            let mut c = call();
            if let Some(value) = header {
                c = c.header("authorization", value);
            }
            let r = c.send().await;
            let what = format!("{} {} with {header:?}", route.method, route.path);
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
            assert_eq!(r.json(), refusal_words(route.document), "{what}");
            assert_eq!(r.header("www-authenticate"), Some(challenge), "{what}");
        }
    }
    // The table as it stands.
    assert_eq!((guarded, public, either), (50, 16, 2));
}
