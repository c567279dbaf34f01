//! `account-roles-token.txt`: `POST /api/account/roles` (log in, list the
//! account's roles) and `POST /api/account/token` (a JWT for one chosen
//! role). Bodies, including errors, are what the document shows: objects
//! on success, bare JSON strings otherwise.
//!
//! `/token` issues only to a caller that proved the login; see
//! `domain::role_choice` for the binding.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::http::{BodyError, Req, internal_error, json, json_body};
use super::{App, Document, Handled, Route, route};
use crate::domain::Error;
use crate::domain::accounts::LoginId;
use crate::domain::auth::Principal;
use crate::domain::role_choice::chosen_role;

/// Whose words this adapter speaks.
const DOC: Document = Document::AccountRolesToken;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, POST, "/api/account/roles", public roles),
        route!(DOC, POST, "/api/account/token", maybe_principal token),
    ]
}

/// A bare JSON string body.
fn say(status: StatusCode, text: &str) -> Response<Bytes> {
    json(status, &Value::String(text.to_string()))
}

const INVALID_LOGIN: &str = "Invalid email or password";
const LOCKED: &str = "Account has been locked due to multiple failed login attempts";
const DISABLED: &str = "Account has been disabled";

/// This document's words for each domain error.
pub(crate) fn words(e: &Error) -> Response<Bytes> {
    match e {
        Error::InvalidCredentials => say(StatusCode::NOT_FOUND, INVALID_LOGIN),
        Error::Locked { .. } => say(StatusCode::FORBIDDEN, LOCKED),
        Error::Disabled => say(StatusCode::FORBIDDEN, DISABLED),
        Error::Invalid { message, .. } => say(StatusCode::BAD_REQUEST, message),
        Error::NoSession => say(
            StatusCode::BAD_REQUEST,
            "This credential has no session to log out of",
        ),
        Error::NotUtf8(what) => say(
            StatusCode::BAD_REQUEST,
            &format!("The {what} is not valid UTF-8"),
        ),
        Error::Paging(why) => say(StatusCode::BAD_REQUEST, &why.to_string()),
        Error::RateLimited { .. } => say(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many login attempts. Please try again later.",
        ),
        Error::Busy { .. } => say(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server busy, try again shortly",
        ),
        Error::Unauthenticated => say(
            StatusCode::UNAUTHORIZED,
            "Login required: call /api/account/roles first, or send a token of this account",
        ),
        Error::InvalidRefresh => say(StatusCode::UNAUTHORIZED, "Invalid or expired refresh token"),
        Error::NotFound(_) => say(StatusCode::NOT_FOUND, "Account not found"),
        Error::ProviderDisabled(p) => {
            say(StatusCode::NOT_FOUND, &super::http::provider_disabled(*p))
        }
        Error::Forbidden => say(
            StatusCode::FORBIDDEN,
            "User doesn't have the requested role",
        ),
        Error::Conflict(message) => say(StatusCode::CONFLICT, message),
        Error::ReauthRequired => say(
            StatusCode::FORBIDDEN,
            "Enter your password again to do this",
        ),
        Error::Provider(failure) => {
            let (status, message) = super::http::provider_failure(failure);
            say(status, message)
        }
        Error::Store(_) | Error::Internal(_) => internal_error(),
    }
}

const INVALID_REQUEST: &str = "Invalid request format";

/// A body that is not the route's document: the route's own 400 words,
/// followed by the offending field when one is to blame.
fn body_error(words: &str, e: &BodyError) -> Response<Bytes> {
    match e.field() {
        Some(_) => say(
            StatusCode::BAD_REQUEST,
            &format!("{words}: {}", e.describe()),
        ),
        None => say(StatusCode::BAD_REQUEST, words),
    }
}

#[derive(Deserialize)]
struct RolesBody {
    email: String,
    password: String,
}

async fn roles(app: Arc<App>, req: Req) -> Handled {
    let body = json_body::<RolesBody>(&req).map_err(|e| body_error(INVALID_REQUEST, &e))?;
    let email = LoginId::parse(&body.email, "email")?;
    let client = req.client();
    let account = app
        .core
        .password_login(&email, &body.password, &client, DOC)
        .await?;
    app.core.grant_role_choice(&account, &client);
    Ok(json(
        StatusCode::OK,
        &json!({
            "accountId": account.id.to_string(),
            "email": account.email,
            "roles": account.roles,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    account_id: String,
    role: String,
}

async fn token(app: Arc<App>, req: Req, principal: Option<Principal>) -> Handled {
    const INVALID: &str = "Invalid role or account ID";
    let body = json_body::<TokenBody>(&req).map_err(|e| body_error(INVALID, &e))?;
    let (Ok(account_id), Some(role)) = (
        Uuid::parse_str(body.account_id.trim()),
        chosen_role(&body.role),
    ) else {
        return Ok(say(StatusCode::BAD_REQUEST, INVALID));
    };
    let jwt = app
        .core
        .token_for_role(account_id, role, &req.client(), principal.as_ref())
        .await?;
    Ok(json(StatusCode::OK, &Value::String(jwt)))
}
