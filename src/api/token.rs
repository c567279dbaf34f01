//! `token-and-social-login.txt`: `POST /api/auth/token`, and sign-in with a
//! Google or Microsoft access token at `POST /api/auth/google/token` and
//! `POST /api/auth/microsoft/token` (see `domain::external` for the checks).
//! Parameters may come as JSON or as an HTML form, as Rails-style clients
//! send them. The token is opaque (`lk_ot_...`), revocable, and accepted as
//! `Authorization: Bearer` or, unless switched off, as a `token` query
//! parameter. A provider that is not configured answers 404.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::http::{Req, busy, error, form_pairs, internal, json, retry_after};
use super::{App, Route, route};
use crate::domain::Error;
use crate::domain::accounts::LoginId;
use crate::domain::external::Provider;
use crate::domain::sessions::SessionRequest;
use crate::store::{Account, SessionKind};

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST, "/api/auth/token", token),
        route!(POST, "/api/auth/google/token", google),
        route!(POST, "/api/auth/microsoft/token", microsoft),
    ]
}

/// This document's answer to a refused sign-in.
pub fn error_response(req: &Req, e: &Error) -> Response<Bytes> {
    match e {
        Error::InvalidCredentials => error(StatusCode::FORBIDDEN, "Invalid email or password."),
        Error::Locked { retry_after: s } => retry_after(
            error(
                StatusCode::FORBIDDEN,
                "Account locked due to repeated failed login attempts.",
            ),
            *s,
        ),
        Error::Disabled => error(StatusCode::FORBIDDEN, "Account disabled."),
        Error::RateLimited { retry_after: s } => retry_after(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many login attempts. Please try again later.",
            ),
            *s,
        ),
        Error::Busy { retry_after: s } => busy(*s),
        Error::Invalid { message, .. } => error(StatusCode::BAD_REQUEST, message),
        Error::Provider(failure) => {
            let (status, message) = super::http::provider_failure(failure);
            error(status, message)
        }
        other => internal(req, other),
    }
}

/// The named parameters of a JSON object or form body; each must be a
/// string.
pub fn params(req: &Req, names: &[&'static str]) -> Result<Vec<String>, Response<Bytes>> {
    let found: Vec<Option<Value>> = if req.is_form() {
        let pairs = form_pairs(&req.body);
        names
            .iter()
            .map(|n| {
                pairs
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| Value::String(v.clone()))
            })
            .collect()
    } else if req.is_json() {
        let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&req.body) else {
            return Err(error(StatusCode::BAD_REQUEST, "Malformed JSON body"));
        };
        names.iter().map(|n| object.remove(*n)).collect()
    } else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json or application/x-www-form-urlencoded",
        ));
    };
    names
        .iter()
        .zip(found)
        .map(|(name, value)| match value {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(error(
                StatusCode::BAD_REQUEST,
                &format!("{name} must be a String"),
            )),
            None => Err(error(
                StatusCode::BAD_REQUEST,
                &format!("Missing parameter {name}"),
            )),
        })
        .collect()
}

/// The document's success body.
pub fn token_body(account: &Account, token: Option<String>) -> Response<Bytes> {
    json(
        StatusCode::OK,
        &json!({
            "token": token,
            "user_id": account.number,
            "receipts_email": account.attributes.get("receipts_email"),
        }),
    )
}

async fn token(app: Arc<App>, req: Req) -> Response<Bytes> {
    let (email, password) = match params(&req, &["email", "password"]) {
        Ok(mut v) => {
            let password = v.pop().unwrap_or_default();
            (v.pop().unwrap_or_default(), password)
        }
        Err(response) => return response,
    };
    let email = match LoginId::parse(&email, "email") {
        Ok(id) => id,
        Err(e) => return error_response(&req, &e),
    };
    let signed_in = app
        .core
        .sign_in(
            &email,
            &password,
            &req.client(),
            SessionRequest {
                kind: SessionKind::Opaque,
                role: None,
                with_refresh: false,
            },
            "token-and-social-login",
        )
        .await;
    match signed_in {
        Ok((account, issued)) => token_body(&account, issued.access_token),
        Err(e) => error_response(&req, &e),
    }
}

async fn google(app: Arc<App>, req: Req) -> Response<Bytes> {
    external(app, req, Provider::Google, "google_access_token").await
}

async fn microsoft(app: Arc<App>, req: Req) -> Response<Bytes> {
    external(app, req, Provider::Microsoft, "microsoft_access_token").await
}

async fn external(
    app: Arc<App>,
    req: Req,
    provider: Provider,
    token_param: &'static str,
) -> Response<Bytes> {
    if !app.core.provider_enabled(provider) {
        return error(StatusCode::NOT_FOUND, &disabled_message(provider));
    }
    let (email, access_token) = match params(&req, &["email", token_param]) {
        Ok(mut v) => {
            let token = v.pop().unwrap_or_default();
            (v.pop().unwrap_or_default(), token)
        }
        Err(response) => return response,
    };
    let signed_in = app
        .core
        .external_sign_in(
            provider,
            &email,
            &access_token,
            &req.client(),
            SessionRequest {
                kind: SessionKind::Opaque,
                role: None,
                with_refresh: false,
            },
            "token-and-social-login",
        )
        .await;
    match signed_in {
        Ok((account, issued)) => token_body(&account, issued.access_token),
        Err(e) => error_response(&req, &e),
    }
}

/// The 404 of a provider that is not configured.
pub fn disabled_message(provider: Provider) -> String {
    let name = match provider {
        Provider::Google => "Google",
        Provider::Microsoft => "Microsoft",
    };
    format!("{name} sign-in is not enabled")
}
