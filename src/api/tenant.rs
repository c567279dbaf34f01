//! `tenant-login-and-s2s.txt`: `POST /login` and `POST /s2s-token`.
//! Errors in this document's style, `{"detail": "..."}`: 401 for a missing
//! or bad token, 403 for a caller that may not issue at that scope, 422 for
//! a request that cannot be served as asked (including a wrong email or
//! password at `/login`, as the document says).

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http::{BodyError, Req, busy, challenge, internal, json, json_body, retry_after};
use super::{App, Route, route};
use crate::domain::Error;
use crate::domain::accounts::{Email, LoginId};
use crate::domain::auth::Principal;
use crate::domain::clock::rfc3339;
use crate::domain::s2s::NewS2s;
use crate::domain::sessions::SessionRequest;
use crate::store::SessionKind;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST, "/login", login),
        route!(POST, "/s2s-token", s2s_token),
    ]
}

fn detail(status: StatusCode, message: &str) -> Response<Bytes> {
    json(status, &json!({ "detail": message }))
}

/// This document's answer to a domain error.
fn error_response(req: &Req, e: &Error) -> Response<Bytes> {
    match e {
        Error::Unauthenticated => {
            challenge(detail(StatusCode::UNAUTHORIZED, "Not authenticated"), req)
        }
        Error::Forbidden => detail(
            StatusCode::FORBIDDEN,
            "Your role cannot issue a token at the requested scope",
        ),
        Error::InvalidCredentials => detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Incorrect email or password",
        ),
        Error::Locked { retry_after: s } => retry_after(
            detail(
                StatusCode::FORBIDDEN,
                "Account locked due to repeated failed login attempts",
            ),
            *s,
        ),
        Error::Disabled => detail(StatusCode::FORBIDDEN, "Account disabled"),
        Error::Invalid { message, .. } => detail(StatusCode::UNPROCESSABLE_ENTITY, message),
        Error::RateLimited { retry_after: s } => retry_after(
            detail(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many login attempts. Please try again later.",
            ),
            *s,
        ),
        Error::Busy { retry_after: s } => busy(*s),
        Error::NotFound(what) => detail(StatusCode::NOT_FOUND, &format!("{what} not found")),
        Error::Conflict(message) => detail(StatusCode::CONFLICT, message),
        other => internal(req, other),
    }
}

fn authenticate(app: &App, req: &Req) -> Result<Principal, Response<Bytes>> {
    super::http::authenticate(app, req, error_response)
}

fn body_error(e: BodyError) -> Response<Bytes> {
    match e {
        BodyError::UnsupportedMediaType => detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ),
        other => detail(StatusCode::UNPROCESSABLE_ENTITY, &other.describe()),
    }
}

#[derive(Deserialize)]
struct LoginBody {
    email: Option<serde_json::Value>,
    password: Option<serde_json::Value>,
}

async fn login(app: Arc<App>, req: Req) -> Response<Bytes> {
    let body: LoginBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let (Some(serde_json::Value::String(email)), Some(serde_json::Value::String(password))) =
        (body.email, body.password)
    else {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email and password are required strings",
        );
    };
    let id = match LoginId::parse(&email, "email") {
        Ok(id) => id,
        Err(e) => return error_response(&req, &e),
    };
    if Email::parse(&email).is_err() {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email is not a valid address",
        );
    }
    let signed_in = app
        .core
        .sign_in(
            &id,
            &password,
            &req.client(),
            SessionRequest {
                kind: SessionKind::Jwt,
                role: None,
                with_refresh: false,
            },
            "tenant-login-and-s2s",
        )
        .await;
    match signed_in {
        Ok((account, issued)) => json(
            StatusCode::OK,
            &json!({
                "access_token": issued.access_token,
                "token_type": "bearer",
                "user": {
                    "id": account.id.to_string(),
                    "email": account.email,
                    "role": account.primary_role(),
                    "reseller_id": account.reseller_id,
                },
            }),
        ),
        Err(e) => error_response(&req, &e),
    }
}

#[derive(Deserialize)]
struct S2sBody {
    name: Option<String>,
    role: Option<String>,
    reseller_id: Option<String>,
    merchant_id: Option<String>,
    /// Lifetime in seconds (optional; any JSON number, which the domain
    /// bounds by `s2s_max_ttl`).
    expires_in: Option<serde_json::Number>,
}

async fn s2s_token(app: Arc<App>, req: Req) -> Response<Bytes> {
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body: S2sBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let issued = app
        .core
        .issue_s2s(
            &principal,
            NewS2s {
                name: body.name,
                role: body.role,
                reseller_id: body.reseller_id,
                merchant_id: body.merchant_id,
                expires_in: body.expires_in.as_ref().map(super::http::seconds),
            },
        )
        .await;
    match issued {
        Ok((token, secret)) => json(
            StatusCode::OK,
            &json!({
                "token": secret,
                "name": token.name,
                "role": token.role,
                "reseller_id": token.reseller_id,
                "merchant_id": token.merchant_id,
                "created_at": rfc3339(token.created_at),
                "expires_at": token.expires_at.map(rfc3339),
            }),
        ),
        Err(e) => error_response(&req, &e),
    }
}
