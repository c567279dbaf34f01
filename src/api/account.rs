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

use super::http::{BodyError, Req, internal, json, json_body, retry_after};
use super::{App, Route, route};
use crate::domain::Error;
use crate::domain::accounts::LoginId;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST, "/api/account/roles", roles),
        route!(POST, "/api/account/token", token),
    ]
}

/// A bare JSON string body.
fn say(status: StatusCode, text: &str) -> Response<Bytes> {
    json(status, &Value::String(text.to_string()))
}

const INVALID_LOGIN: &str = "Invalid email or password";
const LOCKED: &str = "Account has been locked due to multiple failed login attempts";
const DISABLED: &str = "Account has been disabled";

fn error_response(req: &Req, e: &Error) -> Response<Bytes> {
    match e {
        Error::InvalidCredentials => say(StatusCode::NOT_FOUND, INVALID_LOGIN),
        Error::Locked { retry_after: s } => retry_after(say(StatusCode::FORBIDDEN, LOCKED), *s),
        Error::Disabled => say(StatusCode::FORBIDDEN, DISABLED),
        Error::Invalid { message, .. } => say(StatusCode::BAD_REQUEST, message),
        Error::RateLimited { retry_after: s } => retry_after(
            say(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many login attempts. Please try again later.",
            ),
            *s,
        ),
        Error::Busy { retry_after: s } => retry_after(
            say(
                StatusCode::SERVICE_UNAVAILABLE,
                "Server busy, try again shortly",
            ),
            *s,
        ),
        Error::Unauthenticated => super::http::challenge(
            say(
                StatusCode::UNAUTHORIZED,
                "Login required: call /api/account/roles first, or send a token of this account",
            ),
            req,
        ),
        Error::NotFound(_) => say(StatusCode::NOT_FOUND, "Account not found"),
        Error::Forbidden => say(
            StatusCode::FORBIDDEN,
            "User doesn't have the requested role",
        ),
        other => internal(req, other),
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

async fn roles(app: Arc<App>, req: Req) -> Response<Bytes> {
    let body = match json_body::<RolesBody>(&req) {
        Ok(body) => body,
        Err(e) => return body_error(INVALID_REQUEST, &e),
    };
    let email = match LoginId::parse(&body.email, "email") {
        Ok(id) => id,
        Err(e) => return error_response(&req, &e),
    };
    let client = req.client();
    match app
        .core
        .password_login(&email, &body.password, &client, "account-roles-token")
        .await
    {
        Ok(account) => {
            app.core.grant_role_choice(&account, &client);
            json(
                StatusCode::OK,
                &json!({
                    "accountId": account.id.to_string(),
                    "email": account.email,
                    "roles": account.roles,
                }),
            )
        }
        Err(e) => error_response(&req, &e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    account_id: String,
    role: String,
}

async fn token(app: Arc<App>, req: Req) -> Response<Bytes> {
    const INVALID: &str = "Invalid role or account ID";
    let body = match json_body::<TokenBody>(&req) {
        Ok(body) => body,
        Err(e) => return body_error(INVALID, &e),
    };
    let Ok(account_id) = Uuid::parse_str(body.account_id.trim()) else {
        return say(StatusCode::BAD_REQUEST, INVALID);
    };
    let role = body.role.trim();
    if role.is_empty() || role.chars().count() > 64 {
        return say(StatusCode::BAD_REQUEST, INVALID);
    }
    let client = req.client();
    let principal = match req.bearer() {
        Ok(Some(token)) => match app.core.authenticate(token, client.ip) {
            Ok(p) => Some(p),
            Err(e) => return error_response(&req, &e),
        },
        Ok(None) => None,
        Err(_) => return error_response(&req, &Error::Unauthenticated),
    };
    match app
        .core
        .token_for_role(account_id, role, &client, principal.as_ref())
        .await
    {
        Ok(jwt) => json(StatusCode::OK, &Value::String(jwt)),
        Err(e) => error_response(&req, &e),
    }
}
