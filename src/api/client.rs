//! `client-login-refresh.txt`: `POST /auth/login`, and the refresh and
//! logout its clients are told to use but which it does not specify:
//! `POST /auth/refresh` `{refresh_token}` (answering like login) and
//! `POST /auth/logout` (Bearer access token, or `{refresh_token}` for a
//! client whose access token has expired). Errors are
//! `{"error": code, "message": text}` as the document shows.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{BodyError, Req, internal_error, json, json_body};
use super::{App, Document, Handled, Route, route};
use crate::domain::Error;
use crate::domain::accounts::{Account, LoginId};
use crate::domain::auth::Principal;
use crate::domain::clock::rfc3339;
use crate::domain::sessions::Issued;

/// Whose words this adapter speaks.
const DOC: Document = Document::ClientLoginRefresh;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, POST, "/auth/login", public login),
        route!(DOC, POST, "/auth/refresh", public refresh),
        route!(DOC, POST, "/auth/logout", maybe_principal logout),
    ]
}

fn err(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    json(status, &json!({ "error": code, "message": message }))
}

/// This document's words for each domain error.
pub(crate) fn words(e: &Error) -> Response<Bytes> {
    match e {
        Error::InvalidCredentials => err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid credentials",
        ),
        Error::InvalidRefresh => err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid or expired refresh token",
        ),
        Error::Unauthenticated => err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
        ),
        Error::RateLimited { .. } => err(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "Too many login attempts. Please try again later.",
        ),
        Error::Locked { .. } => err(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Account locked due to repeated failed login attempts",
        ),
        Error::Disabled => err(StatusCode::FORBIDDEN, "forbidden", "Account disabled"),
        Error::Forbidden => err(StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
        Error::ReauthRequired => err(
            StatusCode::FORBIDDEN,
            "reauth_required",
            "Enter your password again to do this",
        ),
        Error::Invalid { message, .. } => err(StatusCode::BAD_REQUEST, "validation_error", message),
        Error::NoSession => err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "This credential has no session to log out of",
        ),
        Error::NotUtf8(what) => err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            &format!("The {what} is not valid UTF-8"),
        ),
        Error::Paging(why) => err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            &why.to_string(),
        ),
        Error::NotFound(what) => err(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("{what} not found"),
        ),
        Error::ProviderDisabled(p) => err(
            StatusCode::NOT_FOUND,
            "not_found",
            &super::http::provider_disabled(*p),
        ),
        Error::Conflict(message) => err(StatusCode::CONFLICT, "conflict", message),
        Error::Busy { .. } => err(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Server busy, try again shortly",
        ),
        Error::Provider(failure) => {
            let (status, message) = super::http::provider_failure(failure);
            err(status, "provider_error", message)
        }
        Error::Store(_) | Error::Internal(_) => internal_error(),
    }
}

fn body_error(e: BodyError, message: &str) -> Response<Bytes> {
    match e {
        BodyError::UnsupportedMediaType => err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        ),
        BodyError::NotJson | BodyError::NotObject => {
            err(StatusCode::BAD_REQUEST, "validation_error", message)
        }
        field => err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            &field.describe(),
        ),
    }
}

/// A non-empty string field, or `None`.
fn text(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn tokens(account: &Account, issued: &Issued) -> Value {
    json!({
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "access_expires_at": rfc3339(issued.access_expires_at),
        "refresh_expires_at": issued.refresh_expires_at.map(rfc3339),
        "client_id": account.number,
    })
}

#[derive(Deserialize)]
struct LoginBody {
    username: Option<Value>,
    password: Option<Value>,
}

const CREDENTIALS_REQUIRED: &str = "Username and password are required";

async fn login(app: Arc<App>, req: Req) -> Handled {
    let body: LoginBody = json_body(&req).map_err(|e| body_error(e, CREDENTIALS_REQUIRED))?;
    let (Some(username), Some(password)) = (text(body.username), text(body.password)) else {
        return Ok(err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            CREDENTIALS_REQUIRED,
        ));
    };
    let username = LoginId::parse(&username, "username")?;
    let (account, issued) = app
        .core
        .sign_in(&username, &password, &req.client(), DOC)
        .await?;
    Ok(json(StatusCode::OK, &tokens(&account, &issued)))
}

#[derive(Deserialize, Default)]
struct RefreshBody {
    refresh_token: Option<Value>,
}

const REFRESH_REQUIRED: &str = "refresh_token is required";

async fn refresh(app: Arc<App>, req: Req) -> Handled {
    let body: RefreshBody = json_body(&req).map_err(|e| body_error(e, REFRESH_REQUIRED))?;
    let Some(token) = text(body.refresh_token) else {
        return Ok(err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            REFRESH_REQUIRED,
        ));
    };
    let (account, issued) = app.core.refresh(&token, &req.client()).await?;
    Ok(json(StatusCode::OK, &tokens(&account, &issued)))
}

/// With a credential in the header, ends its session; without one, ends
/// the session of the refresh token in the body. Either way a caller that
/// shows nothing usable is told to authenticate.
async fn logout(app: Arc<App>, req: Req, principal: Option<Principal>) -> Handled {
    let client = req.client();
    match principal {
        Some(principal) => app.core.logout(&principal, &client, DOC).await?,
        None => {
            let body: RefreshBody = if req.body.is_empty() {
                RefreshBody::default()
            } else {
                json_body(&req).map_err(|e| body_error(e, REFRESH_REQUIRED))?
            };
            let token = text(body.refresh_token).ok_or(Error::Unauthenticated)?;
            app.core.logout_by_refresh(&token, &client).await?;
        }
    }
    Ok(json(StatusCode::OK, &json!({ "message": "Logged out" })))
}
