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

use super::http::{Req, busy, error, form_pairs, internal_error, json};
use super::{App, Document, Handled, Refused, Route, route};
use crate::domain::Error;
use crate::domain::accounts::{Account, LoginId};
use crate::domain::external::Provider;

/// Whose words this adapter speaks.
const DOC: Document = Document::TokenAndSocialLogin;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, POST, "/api/auth/token", public token),
        route!(DOC, POST, "/api/auth/google/token", public google),
        route!(DOC, POST, "/api/auth/microsoft/token", public microsoft),
    ]
}

/// This document's words for each domain error.
pub(crate) fn words(e: &Error) -> Response<Bytes> {
    match e {
        Error::InvalidCredentials => error(StatusCode::FORBIDDEN, "Invalid email or password."),
        Error::Locked { .. } => error(
            StatusCode::FORBIDDEN,
            "Account locked due to repeated failed login attempts.",
        ),
        Error::Disabled => error(StatusCode::FORBIDDEN, "Account disabled."),
        Error::RateLimited { .. } => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many login attempts. Please try again later.",
        ),
        Error::Busy { .. } => busy(),
        Error::Invalid { message, .. } => error(StatusCode::BAD_REQUEST, message),
        Error::NoSession => error(
            StatusCode::BAD_REQUEST,
            "This credential has no session to log out of.",
        ),
        Error::Paging(why) => error(StatusCode::BAD_REQUEST, &why.to_string()),
        Error::NotUtf8(what) => error(
            StatusCode::BAD_REQUEST,
            &format!("The {what} is not valid UTF-8."),
        ),
        Error::Unauthenticated => error(StatusCode::UNAUTHORIZED, "Authentication required."),
        Error::InvalidRefresh => error(
            StatusCode::UNAUTHORIZED,
            "Invalid or expired refresh token.",
        ),
        Error::Forbidden => error(StatusCode::FORBIDDEN, "Forbidden."),
        Error::ReauthRequired => error(
            StatusCode::FORBIDDEN,
            "Enter your password again to do this.",
        ),
        Error::NotFound(what) => error(StatusCode::NOT_FOUND, &format!("{what} not found.")),
        Error::ProviderDisabled(p) => {
            error(StatusCode::NOT_FOUND, &super::http::provider_disabled(*p))
        }
        Error::Conflict(message) => error(StatusCode::CONFLICT, message),
        Error::Provider(failure) => {
            let (status, message) = super::http::provider_failure(failure);
            error(status, message)
        }
        Error::Store(_) | Error::Internal(_) => internal_error(),
    }
}

/// The named parameters of a JSON object or form body; each must be a
/// string.
fn params<const N: usize>(req: &Req, names: [&'static str; N]) -> Result<[String; N], Refused> {
    let found: Vec<Option<Value>> = if req.is_form() {
        let pairs = form_pairs(&req.body).ok_or(Error::NotUtf8("form"))?;
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
            return Err(error(StatusCode::BAD_REQUEST, "Malformed JSON body").into());
        };
        names.iter().map(|n| object.remove(*n)).collect()
    } else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json or application/x-www-form-urlencoded",
        )
        .into());
    };
    let mut values = found.into_iter();
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (name, slot) in names.iter().zip(out.iter_mut()) {
        *slot = match values.next().flatten() {
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(
                    error(StatusCode::BAD_REQUEST, &format!("{name} must be a String")).into(),
                );
            }
            None => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    &format!("Missing parameter {name}"),
                )
                .into());
            }
        };
    }
    Ok(out)
}

/// The document's success body.
fn token_body(account: &Account, token: Option<String>) -> Response<Bytes> {
    json(
        StatusCode::OK,
        &json!({
            "token": token,
            "user_id": account.number,
            "receipts_email": account.attributes.get("receipts_email"),
        }),
    )
}

async fn token(app: Arc<App>, req: Req) -> Handled {
    let [email, password] = params(&req, ["email", "password"])?;
    let email = LoginId::parse(&email, "email")?;
    let (account, issued) = app
        .core
        .sign_in(&email, &password, &req.client(), DOC)
        .await?;
    Ok(token_body(&account, issued.access_token))
}

async fn google(app: Arc<App>, req: Req) -> Handled {
    external(app, req, Provider::Google, "google_access_token").await
}

async fn microsoft(app: Arc<App>, req: Req) -> Handled {
    external(app, req, Provider::Microsoft, "microsoft_access_token").await
}

async fn external(
    app: Arc<App>,
    req: Req,
    provider: Provider,
    token_param: &'static str,
) -> Handled {
    let provider = app.core.enabled_provider(provider)?;
    let [email, access_token] = params(&req, ["email", token_param])?;
    let (account, issued) = app
        .core
        .external_sign_in(provider, &email, &access_token, &req.client(), DOC)
        .await?;
    Ok(token_body(&account, issued.access_token))
}
