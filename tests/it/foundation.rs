//! The canonical API's session life: login, me, refresh, logout, and every
//! way a credential is refused.

use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn login_me_refresh_logout_and_old_token_refused() {
    let srv = Server::start().await;
    let r = srv.try_login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    let token = body["token"].as_str().unwrap().to_string();
    let refresh = body["refreshToken"].as_str().unwrap().to_string();
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["username"], ADMIN);
    assert_eq!(body["user"]["email"], ADMIN_EMAIL);
    let id = body["user"]["id"].as_str().unwrap().to_string();

    let me = srv.me(&token).await;
    assert_eq!(me.status, StatusCode::OK);
    let me = me.json();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["roles"], json!(["admin"]));
    assert!(me.get("password_hash").is_none());

    let r = present_refresh(&srv, json!(refresh)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let rotated = r.json();
    let token2 = rotated["token"].as_str().unwrap().to_string();
    assert_ne!(rotated["refreshToken"], refresh.as_str());
    assert_eq!(rotated["expires_in"], 900);

    let r = srv.post("/api/v1/auth/logout").bearer(&token2).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "message": "Successfully logged out" }));

    // Both access tokens of the session are refused from now on, on every
    // protected route.
    for t in [&token, &token2] {
        let r = srv.me(t).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="latchkey", error="invalid_token""#)
        );
        let r = srv.post("/api/v1/auth/logout").bearer(t).send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json(), json!({ "error": "Authentication required" }));
    }
    // And the session's refresh token is dead too.
    let r = present_refresh(&srv, json!(rotated["refreshToken"])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn username_may_be_the_email_in_any_case() {
    let srv = Server::start().await;
    let body = srv.login("  ADMIN@Example.COM ", ADMIN_PASSWORD).await;
    assert_eq!(body["user"]["username"], ADMIN);
    let body = srv.login("Admin", ADMIN_PASSWORD).await;
    assert_eq!(body["user"]["email"], ADMIN_EMAIL);
}

#[tokio::test]
async fn wrong_username_and_wrong_password_look_the_same() {
    let srv = Server::start().await;
    let wrong_user = srv.try_login("nobody", ADMIN_PASSWORD).await;
    let wrong_password = srv.try_login(ADMIN, "not the password").await;
    assert_eq!(wrong_user.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_user.body, wrong_password.body);
    assert_eq!(wrong_user.json(), json!({ "error": "Invalid credentials" }));
}

#[tokio::test]
async fn login_rejects_bad_requests_with_json_errors() {
    let srv = Server::start().await;
    const JSON: Option<&str> = Some("application/json");
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const MEDIA: StatusCode = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    let whole = r#"{"username":"admin","password":"x"}"#;
    let cases: Vec<(Option<&str>, &str, StatusCode)> = vec![
        (JSON, r#"{"username":"admin"}"#, BAD),
        (JSON, r#"{"password":"x"}"#, BAD),
        (JSON, r#"{"username":"admin","#, BAD),
        (JSON, r#"{"username":1,"password":2}"#, BAD),
        (JSON, r#"[]"#, BAD),
        (Some("text/plain"), whole, MEDIA),
        (None, whole, MEDIA),
    ];
    for (content_type, body, expected) in cases {
        let call = srv.post("/api/v1/auth/login");
        let call = match content_type {
            Some(ct) => call.body(ct, body.to_string()),
            None => call.raw_body(body.to_string()),
        };
        let r = call.send().await;
        assert_eq!(r.status, expected, "{content_type:?} {body}");
        assert!(r.json()["error"].is_string(), "{}", r.text());
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let srv = Server::start().await;
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let first = login["refreshToken"].as_str().unwrap().to_string();
    let access = login["token"].as_str().unwrap().to_string();

    let r = present_refresh(&srv, json!(first)).await;
    assert_eq!(r.status, StatusCode::OK);
    let second = r.json()["refreshToken"].as_str().unwrap().to_string();
    let access2 = r.json()["token"].as_str().unwrap().to_string();

    // The rotated-out token is refused, and presenting it revokes the
    // whole session: the current refresh token and every access token die.
    let r = present_refresh(&srv, json!(first)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json(),
        json!({ "error": "Invalid or expired refresh token" })
    );
    let r = present_refresh(&srv, json!(second)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for t in [&access, &access2] {
        let r = srv.me(t).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Another session of the same account is untouched.
    let other = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let r = srv.me(other["token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_rejects_garbage() {
    let srv = Server::start().await;
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    for bad in [
        json!({ "refreshToken": "lk_rt_nope" }),
        json!({ "refreshToken": login["token"] }),
        json!({ "refreshToken": "" }),
        json!({ "refreshToken": "x".repeat(10_000) }),
    ] {
        let r = srv.post("/api/v1/auth/refresh").json(&bad).send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let r = srv.post_json("/api/v1/auth/refresh", &json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn access_token_expires_after_its_lifetime() {
    let srv = Server::start().await;
    let token = srv.admin_token().await;
    srv.advance(900 + 29);
    let r = srv.me(&token).await;
    assert_eq!(r.status, StatusCode::OK, "within the leeway");
    srv.advance(2);
    let r = srv.me(&token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="latchkey", error="invalid_token""#)
    );
}

#[tokio::test]
async fn refresh_token_and_session_have_absolute_lifetimes() {
    let srv = Server::start_with(latchkey::config::Layer {
        access_ttl: Some(3000),
        refresh_ttl: Some(3600),
        session_ttl: Some(3 * 3600),
        ..Default::default()
    })
    .await;
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let mut refresh = login["refreshToken"].as_str().unwrap().to_string();

    // Unused for longer than its lifetime: refused.
    let idle = srv.login(ADMIN, ADMIN_PASSWORD).await;
    srv.advance(3601);
    let r = present_refresh(&srv, json!(idle["refreshToken"])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Refreshed in time, it keeps going, but never past the session's end.
    let r = present_refresh(&srv, json!(refresh)).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the first one was idle too"
    );
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    refresh = login["refreshToken"].as_str().unwrap().to_string();
    for _ in 0..2 {
        srv.advance(3000);
        let r = present_refresh(&srv, json!(refresh)).await;
        assert_eq!(r.status, StatusCode::OK);
        refresh = r.json()["refreshToken"].as_str().unwrap().to_string();
    }
    // 6000 s into the session, which ends at 10800 s.
    srv.advance(3000);
    let r = present_refresh(&srv, json!(refresh)).await;
    assert_eq!(r.status, StatusCode::OK);
    let last = r.json();
    // 9000 s in: the access token is cut at the session's end (1800 s
    // left), not given its full 3000 s.
    assert_eq!(last["expires_in"], 1800);
    refresh = last["refreshToken"].as_str().unwrap().to_string();
    srv.advance(1801);
    let r = present_refresh(&srv, json!(refresh)).await;
    // The refresh token alone would live until 12600 s; the session's end
    // is what refuses it.
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "past the absolute lifetime"
    );
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused() {
    let srv = Server::start().await;
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let token = login["token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&unb64(parts[0])).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let mut claims: serde_json::Value = serde_json::from_slice(&unb64(parts[1])).unwrap();

    // alg none with the same claims.
    let none = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "at+jwt", "kid": kid })
            .to_string()
            .as_bytes()),
        parts[1]
    );
    // HS256 keyed with the published JWKS (the classic confusion attack).
    let jwks = srv.get("/.well-known/jwks.json").send().await.text();
    let hs_header = b64(json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid })
        .to_string()
        .as_bytes());
    let signing_input = format!("{hs_header}.{}", parts[1]);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwks.as_bytes());
    let hs = format!(
        "{signing_input}.{}",
        b64(ring::hmac::sign(&key, signing_input.as_bytes()).as_ref())
    );
    // Escalated claims under the original signature.
    claims["role"] = json!("superadmin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    // Oversized.
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
    // A refresh token is not an access token.
    let refresh = login["refreshToken"].as_str().unwrap().to_string();

    for bad in [none, hs, tampered, huge, refresh, "garbage".to_string()] {
        let r = srv.me(&bad).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            &bad[..bad.len().min(40)]
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="latchkey", error="invalid_token""#)
        );
    }

    // No credential at all: a bare challenge, no error code (RFC 6750 3.1).
    let r = srv.get("/api/v1/auth/me").send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="latchkey""#)
    );
    assert_eq!(r.json(), json!({ "error": "Authentication required" }));

    // A token signed by another latchkey (another key) is refused.
    let other = Server::start().await;
    let foreign = other.admin_token().await;
    let r = srv.me(&foreign).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_third_party_jwt_library_verifies_tokens_against_the_jwks() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};

    let srv = Server::start().await;
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let token = login["token"].as_str().unwrap();
    let r = srv.get("/.well-known/jwks.json").send().await;
    assert_eq!(r.status, StatusCode::OK);
    let set: JwkSet = serde_json::from_slice(&r.body).unwrap();
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&["latchkey"]);
    validation.set_audience(&["latchkey"]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    // The library checks expiry against the real clock; the server's clock
    // started at real time, so the token is current.
    let data = decode::<serde_json::Value>(token, &key, &validation).unwrap();
    let c = data.claims;
    assert_eq!(c["sub"], login["user"]["id"]);
    assert_eq!(c["role"], "admin");
    assert_eq!(c["roles"], json!(["admin"]));
    for claim in ["jti", "sid", "iat", "nbf", "exp"] {
        assert!(c.get(claim).is_some(), "{claim} missing");
    }
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);

    // The same library refuses a token with one flipped signature byte.
    let mut bytes = token.as_bytes().to_vec();
    let last = bytes.len() - 5;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert!(decode::<serde_json::Value>(&flipped, &key, &validation).is_err());
}

#[tokio::test]
async fn healthz_answers() {
    let srv = Server::start().await;
    let r = srv.get("/healthz").send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "status": "ok" }));
}

#[tokio::test]
async fn only_json_objects_are_bodies() {
    let srv = Server::start().await;
    for (path, body) in [
        ("/api/v1/auth/login", json!([ADMIN, ADMIN_PASSWORD])),
        ("/auth/login", json!([ADMIN, ADMIN_PASSWORD])),
        ("/login", json!([ADMIN_EMAIL, ADMIN_PASSWORD])),
        ("/api/v1/auth/login", json!("admin")),
    ] {
        let r = srv.post(path).json(&body).send().await;
        assert!(r.status.is_client_error(), "{path} {body}: {}", r.status);
        assert_ne!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{path}: parsed as credentials"
        );
    }
}

/// Presents a refresh token (a JSON value: a string, or anything else).
async fn present_refresh(srv: &Server, token: Value) -> Resp {
    srv.post_json("/api/v1/auth/refresh", &json!({ "refreshToken": token }))
        .await
}
