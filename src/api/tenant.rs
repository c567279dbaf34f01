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

use super::http::{BodyError, Req, busy, internal_error, json, json_body};
use super::{App, Document, Handled, Route, route};
use crate::domain::Error;
use crate::domain::accounts::{Email, LoginId};
use crate::domain::auth::Principal;
use crate::domain::clock::rfc3339;
use crate::domain::s2s::NewS2s;

/// Whose words this adapter speaks.
const DOC: Document = Document::TenantLoginAndS2s;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, POST, "/login", public login),
        route!(DOC, POST, "/s2s-token", principal s2s_token),
    ]
}

fn detail(status: StatusCode, message: &str) -> Response<Bytes> {
    json(status, &json!({ "detail": message }))
}

/// This document's words for each domain error.
pub(crate) fn words(e: &Error) -> Response<Bytes> {
    match e {
        Error::Unauthenticated => detail(StatusCode::UNAUTHORIZED, "Not authenticated"),
        Error::InvalidRefresh => {
            detail(StatusCode::UNAUTHORIZED, "Invalid or expired refresh token")
        }
        Error::Forbidden => detail(
            StatusCode::FORBIDDEN,
            "Your role cannot issue a token at the requested scope",
        ),
        Error::InvalidCredentials => detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Incorrect email or password",
        ),
        Error::Locked { .. } => detail(
            StatusCode::FORBIDDEN,
            "Account locked due to repeated failed login attempts",
        ),
        Error::Disabled => detail(StatusCode::FORBIDDEN, "Account disabled"),
        Error::Invalid { message, .. } => detail(StatusCode::UNPROCESSABLE_ENTITY, message),
        Error::NoSession => detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This credential has no session to log out of",
        ),
        Error::NotUtf8(what) => detail(
            StatusCode::BAD_REQUEST,
            &format!("The {what} is not valid UTF-8"),
        ),
        Error::Paging(why) => detail(StatusCode::UNPROCESSABLE_ENTITY, &why.to_string()),
        Error::RateLimited { .. } => detail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many login attempts. Please try again later.",
        ),
        Error::Busy { .. } => busy(),
        Error::NotFound(what) => detail(StatusCode::NOT_FOUND, &format!("{what} not found")),
        Error::ProviderDisabled(p) => {
            detail(StatusCode::NOT_FOUND, &super::http::provider_disabled(*p))
        }
        Error::Conflict(message) => detail(StatusCode::CONFLICT, message),
        Error::ReauthRequired => detail(
            StatusCode::FORBIDDEN,
            "Enter your password again to do this",
        ),
        Error::Provider(failure) => {
            let (status, message) = super::http::provider_failure(failure);
            detail(status, message)
        }
        Error::Store(_) | Error::Internal(_) => internal_error(),
    }
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

async fn login(app: Arc<App>, req: Req) -> Handled {
    let body: LoginBody = json_body(&req).map_err(body_error)?;
    let (Some(serde_json::Value::String(email)), Some(serde_json::Value::String(password))) =
        (body.email, body.password)
    else {
        return Ok(detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email and password are required strings",
        ));
    };
    // The identifier's bound first, in the words every login uses.
    LoginId::parse(&email, "email")?;
    let Ok(email) = Email::parse(&email) else {
        return Ok(detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email is not a valid address",
        ));
    };
    let (account, issued) = app
        .core
        .sign_in(&email.into(), &password, &req.client(), DOC)
        .await?;
    Ok(json(
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
    ))
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

async fn s2s_token(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    let body: S2sBody = json_body(&req).map_err(body_error)?;
    let (token, secret) = app
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
        .await?;
    Ok(json(
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
    ))
}
