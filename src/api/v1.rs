//! The canonical API, in the shapes of `v1-auth-and-keys.txt`:
//! login, refresh, logout and me under `/api/v1/auth/`.
//!
//! Its error words (`{"error": "..."}`) are also the admin API's.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http::{
    BodyError, Req, busy, challenge, error, internal, json, json_body, no_content, retry_after,
};
use super::{App, Route, route};
use crate::domain::accounts::LoginId;
use crate::domain::auth::Principal;
use crate::domain::clock::rfc3339;
use crate::domain::external::Provider;
use crate::domain::keys::NewKey;
use crate::domain::sessions::{Issued, SessionRequest};
use crate::domain::{Error, Outcome};
use crate::store::{Account, ApiKey, SessionKind};

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST, "/api/v1/auth/login", login),
        route!(POST, "/api/v1/auth/refresh", refresh),
        route!(POST, "/api/v1/auth/logout", logout),
        route!(GET, "/api/v1/auth/me", me),
        route!(POST, "/api/v1/auth/password", change_password),
        route!(POST, "/api/v1/auth/external/{provider}", external),
        route!(POST, "/api/v1/auth/keys", create_key),
        route!(GET, "/api/v1/auth/keys", list_keys),
        route!(DELETE, "/api/v1/auth/keys/{keyId}", delete_key),
    ]
}

/// The canonical answer to a domain error.
pub fn error_response(req: &Req, e: &Error) -> Response<Bytes> {
    match e {
        Error::InvalidCredentials => error(StatusCode::UNAUTHORIZED, "Invalid credentials"),
        Error::Locked { retry_after: s } => retry_after(
            error(
                StatusCode::FORBIDDEN,
                "Account locked due to repeated failed login attempts",
            ),
            *s,
        ),
        Error::Disabled => error(StatusCode::FORBIDDEN, "Account disabled"),
        Error::RateLimited { retry_after: s } => retry_after(
            error(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            *s,
        ),
        Error::Busy { retry_after: s } => busy(*s),
        Error::Unauthenticated => challenge(
            error(StatusCode::UNAUTHORIZED, "Authentication required"),
            req,
        ),
        Error::InvalidRefresh => {
            error(StatusCode::UNAUTHORIZED, "Invalid or expired refresh token")
        }
        Error::Forbidden => error(StatusCode::FORBIDDEN, "Forbidden"),
        Error::NotFound(what) => error(
            StatusCode::NOT_FOUND,
            &format!("{} not found", capitalise(what)),
        ),
        Error::Invalid { field, message } => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({ "error": message, "field": field }),
        ),
        Error::Conflict(message) => error(StatusCode::CONFLICT, message),
        Error::Provider(failure) => {
            let (status, message) = super::http::provider_failure(failure);
            error(status, message)
        }
        Error::Store(_) | Error::Internal(_) => internal(req, e),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The canonical answer to a body that is not the expected JSON.
pub fn body_error(e: BodyError) -> Response<Bytes> {
    match e {
        BodyError::UnsupportedMediaType => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ),
        BodyError::NotJson => error(StatusCode::BAD_REQUEST, "Malformed JSON body"),
        other => match other.field() {
            Some(field) => json(
                StatusCode::BAD_REQUEST,
                &json!({ "error": capitalise(&other.describe()), "field": field }),
            ),
            None => error(StatusCode::BAD_REQUEST, &capitalise(&other.describe())),
        },
    }
}

/// Authenticates the request's credential, answering in canonical words
/// on failure.
pub fn authenticate(app: &App, req: &Req) -> Result<Principal, Response<Bytes>> {
    super::http::authenticate(app, req, error_response)
}

/// The canonical view of an account. Never includes the password hash.
pub fn account_view(account: &Account) -> serde_json::Value {
    json!({
        "id": account.id.to_string(),
        "number": account.number,
        "username": account.username,
        "email": account.email,
        "role": account.primary_role(),
        "roles": account.roles,
        "reseller_id": account.reseller_id,
        "merchant_id": account.merchant_id,
        "attributes": account.attributes,
        "disabled": account.disabled,
        "created_at": rfc3339(account.created_at),
        "updated_at": rfc3339(account.updated_at),
    })
}

#[derive(Deserialize)]
struct LoginBody {
    username: Option<String>,
    password: Option<String>,
}

async fn login(app: Arc<App>, req: Req) -> Response<Bytes> {
    let body: LoginBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let (Some(username), Some(password)) = (body.username, body.password) else {
        return error(
            StatusCode::BAD_REQUEST,
            "username and password are required",
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
            "v1",
        )
        .await;
    match signed_in {
        Ok((account, issued)) => login_body(&account, &issued),
        Err(e) => error_response(&req, &e),
    }
}

/// The document's login answer.
fn login_body(account: &Account, issued: &Issued) -> Response<Bytes> {
    json(
        StatusCode::OK,
        &json!({
            "token": issued.access_token,
            "expires_in": issued.access_expires_at - issued.issued_at,
            "refreshToken": issued.refresh_token,
            "user": {
                "id": account.id.to_string(),
                "username": account.username,
                "email": account.email,
            },
        }),
    )
}

#[derive(Deserialize)]
struct RefreshBody {
    #[serde(rename = "refreshToken")]
    refresh_token: Option<String>,
}

async fn refresh(app: Arc<App>, req: Req) -> Response<Bytes> {
    let body: RefreshBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let Some(token) = body.refresh_token else {
        return error(StatusCode::BAD_REQUEST, "refreshToken is required");
    };
    match app.core.refresh(&token, &req.client()).await {
        Ok((_, issued)) => json(
            StatusCode::OK,
            &json!({
                "token": issued.access_token,
                "expires_in": issued.access_expires_at - issued.issued_at,
                "refreshToken": issued.refresh_token,
            }),
        ),
        Err(e) => error_response(&req, &e),
    }
}

async fn logout(app: Arc<App>, req: Req) -> Response<Bytes> {
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(session) = principal.session else {
        return error(
            StatusCode::BAD_REQUEST,
            "This credential has no session to log out of",
        );
    };
    let audit = match app.core.actor_entry(&principal, "logout", Outcome::Success) {
        Ok(entry) => entry.client(&req.client()),
        Err(e) => return error_response(&req, &e),
    };
    match app.core.revoke_session(session, "logout", audit).await {
        Ok(()) => json(
            StatusCode::OK,
            &json!({ "message": "Successfully logged out" }),
        ),
        Err(e) => error_response(&req, &e),
    }
}

/// The principal behind any credential: the account (access token, API
/// key), or the S2S token's name, role and scope.
async fn me(app: Arc<App>, req: Req) -> Response<Bytes> {
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let credential = json!({
        "kind": principal.kind.as_str(),
        "id": principal.credential_id,
        "role": principal.role,
        "roles": principal.roles,
        "expires_at": principal.expires_at.map(rfc3339),
    });
    let Some(id) = principal.account else {
        return json(
            StatusCode::OK,
            &json!({
                "name": principal.name,
                "role": principal.role,
                "reseller_id": principal.reseller_id,
                "merchant_id": principal.merchant_id,
                "credential": credential,
            }),
        );
    };
    let account = match app.core.store.read().and_then(|tx| tx.account(id)) {
        Ok(Some(a)) => a,
        Ok(None) => return error_response(&req, &Error::Unauthenticated),
        Err(e) => return error_response(&req, &Error::Store(e)),
    };
    let mut view = account_view(&account);
    if let Some(obj) = view.as_object_mut() {
        // What this credential acts as, which may be narrower than the
        // account (a token or key for one role).
        obj.insert("credential".into(), credential);
    }
    json(StatusCode::OK, &view)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePasswordBody {
    /// The password the account has now, checked like a login.
    current_password: String,
    /// The password it is to have.
    new_password: String,
}

/// `POST /api/v1/auth/password`: the caller changes its own password. The
/// document has no such route; it is the admin API's password change
/// (`POST /api/v1/admin/users/{id}/password`) for one's own account, with
/// the same rules, limits, audit and answers, so a user need not know its
/// id or use a path under `/admin/`. Answers 204.
async fn change_password(app: Arc<App>, req: Req) -> Response<Bytes> {
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let body: ChangePasswordBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    // An S2S token has no account; it could not set a password anyway.
    let Some(own) = principal.account else {
        return error_response(&req, &Error::Forbidden);
    };
    let changed = app
        .core
        .admin_set_password(
            &principal,
            own,
            &body.new_password,
            Some(&body.current_password),
        )
        .await;
    match changed {
        Ok(()) => no_content(),
        // The domain names the new password `password`, as the admin
        // route's body does; this body calls it `new_password`.
        Err(Error::Invalid {
            field: "password",
            message,
        }) => error_response(
            &req,
            &Error::Invalid {
                field: "new_password",
                message,
            },
        ),
        Err(e) => error_response(&req, &e),
    }
}

/// An API key as the document lists it; `role` (narrowed to one role),
/// `roles` (narrowed at creation) and `expiresAt` appear only on keys that
/// have them.
pub fn key_view(key: &ApiKey) -> serde_json::Value {
    let mut view = json!({
        "keyId": key.id,
        "name": key.name,
        "createdAt": rfc3339(key.created_at),
        "lastUsed": key.last_used.map(rfc3339),
    });
    add_key_extras(&mut view, key);
    view
}

fn add_key_extras(view: &mut serde_json::Value, key: &ApiKey) {
    if let Some(obj) = view.as_object_mut() {
        if let Some(role) = &key.role {
            obj.insert("role".into(), json!(role));
        }
        if key.narrowed {
            obj.insert("roles".into(), json!(key.roles));
        }
        if let Some(at) = key.expires_at {
            obj.insert("expiresAt".into(), json!(rfc3339(at)));
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateKeyBody {
    name: Option<String>,
    role: Option<String>,
    /// The roles the key acts with, among the caller's.
    roles: Option<Vec<String>>,
    /// RFC 3339.
    expires_at: Option<String>,
    /// Seconds from now (any JSON number; the domain bounds it).
    expires_in: Option<serde_json::Number>,
}

/// `POST /api/v1/auth/keys`. The document gives no request body; an empty
/// one makes a key called "API key" with the caller's roles, and a JSON
/// body may name it, narrow it (`role` or `roles`), and give it an expiry
/// (`expiresAt` or `expiresIn`). The domain decides what is allowed.
async fn create_key(app: Arc<App>, req: Req) -> Response<Bytes> {
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let body: CreateKeyBody = if req.body.is_empty() {
        CreateKeyBody::default()
    } else {
        match json_body(&req) {
            Ok(b) => b,
            Err(e) => return body_error(e),
        }
    };
    let expires_at = match (body.expires_at, &body.expires_in) {
        (Some(_), Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "give expiresAt or expiresIn, not both",
            );
        }
        (Some(at), None) => match parse_rfc3339(&at) {
            Some(t) => Some(t),
            None => return error(StatusCode::BAD_REQUEST, "expiresAt must be RFC 3339"),
        },
        (None, _) => None,
    };
    let created = app
        .core
        .create_api_key(
            &principal,
            NewKey {
                name: body.name,
                role: body.role,
                roles: body.roles,
                expires_at,
                expires_in: body.expires_in.as_ref().map(super::http::seconds),
            },
        )
        .await;
    match created {
        Ok((key, secret)) => {
            let mut view = json!({
                "keyId": key.id,
                "apiKey": secret,
                "name": key.name,
                "createdAt": rfc3339(key.created_at),
            });
            add_key_extras(&mut view, &key);
            json(StatusCode::CREATED, &view)
        }
        Err(Error::Forbidden) => error(
            StatusCode::FORBIDDEN,
            "API keys are created with a signed-in account's token in the Authorization header; an API key, an S2S token or a token from the URL cannot create one",
        ),
        Err(e) => error_response(&req, &e),
    }
}

fn no_account() -> Response<Bytes> {
    error(
        StatusCode::FORBIDDEN,
        "API keys belong to accounts; this credential has none",
    )
}

async fn list_keys(app: Arc<App>, req: Req) -> Response<Bytes> {
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(account) = principal.account else {
        return no_account();
    };
    match app.core.list_api_keys(account) {
        Ok(keys) => json(
            StatusCode::OK,
            &keys.iter().map(key_view).collect::<Vec<_>>(),
        ),
        Err(e) => error_response(&req, &e),
    }
}

async fn delete_key(app: Arc<App>, req: Req) -> Response<Bytes> {
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(account) = principal.account else {
        return error(StatusCode::NOT_FOUND, "API key not found");
    };
    let key_id = req.param("keyId").unwrap_or_default().to_string();
    match app.core.delete_api_key(&principal, account, &key_id).await {
        Ok(()) => no_content(),
        Err(e) => error_response(&req, &e),
    }
}

/// Parses RFC 3339 to Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[derive(Deserialize)]
struct ExternalBody {
    email: Option<String>,
    access_token: Option<String>,
}

/// `POST /api/v1/auth/external/{provider}` {email, access_token}: sign in
/// with a Google or Microsoft access token, answering like login.
async fn external(app: Arc<App>, req: Req) -> Response<Bytes> {
    let provider = req.param("provider").and_then(Provider::parse);
    let Some(provider) = provider.filter(|p| app.core.provider_enabled(*p)) else {
        let message = match provider {
            Some(p) => super::token::disabled_message(p),
            None => "Unknown identity provider".to_string(),
        };
        return error(StatusCode::NOT_FOUND, &message);
    };
    let body: ExternalBody = match json_body(&req) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let (Some(email), Some(access_token)) = (body.email, body.access_token) else {
        return error(
            StatusCode::BAD_REQUEST,
            "email and access_token are required",
        );
    };
    let signed_in = app
        .core
        .external_sign_in(
            provider,
            &email,
            &access_token,
            &req.client(),
            SessionRequest {
                kind: SessionKind::Jwt,
                role: None,
                with_refresh: true,
            },
            "v1",
        )
        .await;
    match signed_in {
        Ok((account, issued)) => login_body(&account, &issued),
        Err(e) => error_response(&req, &e),
    }
}
