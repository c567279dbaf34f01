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

use super::http::{BodyError, Req, internal, json, json_body, retry_after};
use super::{App, Route, route};
use crate::domain::Error;
use crate::domain::accounts::LoginId;
use crate::domain::clock::rfc3339;
use crate::domain::sessions::{Issued, SessionRequest};
use crate::store::{Account, SessionKind};

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST, "/auth/login", login),
        route!(POST, "/auth/refresh", refresh),
        route!(POST, "/auth/logout", logout),
    ]
}

fn err(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    json(status, &json!({ "error": code, "message": message }))
}

fn error_response(req: &Req, e: &Error) -> Response<Bytes> {
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
        Error::Unauthenticated => super::http::challenge(
            err(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            req,
        ),
        Error::RateLimited { retry_after: s } => retry_after(
            err(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Too many login attempts. Please try again later.",
            ),
            *s,
        ),
        Error::Locked { retry_after: s } => retry_after(
            err(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Account locked due to repeated failed login attempts",
            ),
            *s,
        ),
        Error::Disabled => err(StatusCode::FORBIDDEN, "forbidden", "Account disabled"),
        Error::Invalid { message, .. } => err(StatusCode::BAD_REQUEST, "validation_error", message),
        Error::Busy { retry_after: s } => retry_after(
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Server busy, try again shortly",
            ),
            *s,
        ),
        other => internal(req, other),
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

async fn login(app: Arc<App>, req: Req) -> Response<Bytes> {
    let body: LoginBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e, CREDENTIALS_REQUIRED),
    };
    let (Some(username), Some(password)) = (text(body.username), text(body.password)) else {
        return err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            CREDENTIALS_REQUIRED,
        );
    };
    let username = match LoginId::parse(&username, "username") {
        Ok(id) => id,
        Err(e) => return error_response(&req, &e),
    };
    let signed_in = app
        .core
        .sign_in(
            &username,
            &password,
            &req.client(),
            SessionRequest {
                kind: SessionKind::Jwt,
                role: None,
                with_refresh: true,
            },
            "client-login-refresh",
        )
        .await;
    match signed_in {
        Ok((account, issued)) => json(StatusCode::OK, &tokens(&account, &issued)),
        Err(e) => error_response(&req, &e),
    }
}

#[derive(Deserialize, Default)]
struct RefreshBody {
    refresh_token: Option<Value>,
}

const REFRESH_REQUIRED: &str = "refresh_token is required";

async fn refresh(app: Arc<App>, req: Req) -> Response<Bytes> {
    let body: RefreshBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e, REFRESH_REQUIRED),
    };
    let Some(token) = text(body.refresh_token) else {
        return err(
            StatusCode::BAD_REQUEST,
            "validation_error",
            REFRESH_REQUIRED,
        );
    };
    match app.core.refresh(&token, &req.client()).await {
        Ok((account, issued)) => json(StatusCode::OK, &tokens(&account, &issued)),
        Err(e) => error_response(&req, &e),
    }
}

async fn logout(app: Arc<App>, req: Req) -> Response<Bytes> {
    let client = req.client();
    let done = match req.bearer() {
        Ok(Some(token)) => match app.core.authenticate(token, client.ip) {
            Ok(principal) => match principal.session {
                Some(session) => {
                    let audit = match app.core.actor_entry(
                        &principal,
                        "logout",
                        crate::domain::Outcome::Success,
                    ) {
                        Ok(a) => a.client(&client).detail("client-login-refresh"),
                        Err(e) => return error_response(&req, &e),
                    };
                    app.core.revoke_session(session, "logout", audit).await
                }
                None => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        "validation_error",
                        "This credential has no session to log out of",
                    );
                }
            },
            Err(e) => Err(e),
        },
        Ok(None) => {
            let body: RefreshBody = if req.body.is_empty() {
                RefreshBody::default()
            } else {
                match json_body(&req) {
                    Ok(b) => b,
                    Err(e) => return body_error(e, REFRESH_REQUIRED),
                }
            };
            match text(body.refresh_token) {
                Some(token) => {
                    app.core
                        .revoke_by_refresh(&token, &client)
                        .await
                        .map_err(|e| match e {
                            Error::InvalidRefresh => Error::Unauthenticated,
                            other => other,
                        })
                }
                None => Err(Error::Unauthenticated),
            }
        }
        Err(_) => Err(Error::Unauthenticated),
    };
    match done {
        Ok(()) => json(StatusCode::OK, &json!({ "message": "Logged out" })),
        Err(e) => error_response(&req, &e),
    }
}
