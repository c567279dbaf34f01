//! The canonical API, in the shapes of `v1-auth-and-keys.txt`:
//! login, refresh, logout and me under `/api/v1/auth/`.
//!
//! Its error words (`{"error": "..."}`) are also the admin API's.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::http::{BodyError, Req, busy, error, internal_error, json, json_body, no_content};
use super::{App, Document, Handled, Route, route};
use crate::domain::Error;
use crate::domain::accounts::{Account, LoginId};
use crate::domain::auth::Principal;
use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::domain::external::Provider;
use crate::domain::keys::{ApiKey, KeyExpiry, NewKey};
use crate::domain::sessions::Issued;

/// Whose words this adapter speaks.
const DOC: Document = Document::V1;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, POST, "/api/v1/auth/login", public login),
        route!(DOC, POST, "/api/v1/auth/refresh", public refresh),
        route!(DOC, POST, "/api/v1/auth/logout", principal logout),
        route!(DOC, GET, "/api/v1/auth/me", principal me),
        route!(DOC, POST, "/api/v1/auth/password", principal change_password),
        route!(DOC, POST, "/api/v1/auth/external/{provider}", public external),
        route!(DOC, POST, "/api/v1/auth/keys", principal create_key),
        route!(DOC, GET, "/api/v1/auth/keys", principal list_keys),
        route!(DOC, DELETE, "/api/v1/auth/keys/{keyId}", principal delete_key),
    ]
}

/// The canonical words for each domain error (also the admin API's).
pub(crate) fn words(e: &Error) -> Response<Bytes> {
    match e {
        Error::InvalidCredentials => error(StatusCode::UNAUTHORIZED, "Invalid credentials"),
        Error::Locked { .. } => error(
            StatusCode::FORBIDDEN,
            "Account locked due to repeated failed login attempts",
        ),
        Error::Disabled => error(StatusCode::FORBIDDEN, "Account disabled"),
        Error::RateLimited { .. } => error(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        Error::Busy { .. } => busy(),
        Error::Unauthenticated => error(StatusCode::UNAUTHORIZED, "Authentication required"),
        Error::InvalidRefresh => {
            error(StatusCode::UNAUTHORIZED, "Invalid or expired refresh token")
        }
        Error::Forbidden => error(StatusCode::FORBIDDEN, "Forbidden"),
        // 403, not 401: the credential is good (a 401 would tell the page
        // its session is over); this action needs the password again. The
        // code tells it apart from every other 403.
        Error::ReauthRequired => json(
            StatusCode::FORBIDDEN,
            &json!({
                "error": "Enter your password again to do this",
                "code": "reauth_required",
            }),
        ),
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
        Error::ProviderDisabled(p) => {
            error(StatusCode::NOT_FOUND, &super::http::provider_disabled(*p))
        }
        Error::NoSession => error(
            StatusCode::BAD_REQUEST,
            "This credential has no session to log out of",
        ),
        Error::Paging(why) => error(StatusCode::BAD_REQUEST, &why.to_string()),
        Error::NotUtf8(what) => error(
            StatusCode::BAD_REQUEST,
            &format!("The {what} is not valid UTF-8"),
        ),
        Error::Store(_) | Error::Internal(_) => internal_error(),
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
pub(crate) fn body_error(e: BodyError) -> Response<Bytes> {
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

/// The canonical view of an account. Never includes the password hash.
pub(crate) fn account_view(account: &Account) -> serde_json::Value {
    serde_json::to_value(AccountView::of(account, None)).unwrap_or_default()
}

/// An account as the canonical API shows it, serialised straight from the
/// record (no intermediate JSON tree: `/me` answers it on every request).
/// Fields are in alphabetical order, the order the document has always
/// used.
#[derive(Serialize)]
struct AccountView<'a> {
    attributes: &'a std::collections::BTreeMap<String, String>,
    created_at: String,
    /// What the credential of `/me` acts as; absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<CredentialView<'a>>,
    disabled: bool,
    email: &'a str,
    id: Uuid,
    merchant_id: &'a Option<String>,
    number: u64,
    reseller_id: &'a Option<String>,
    role: &'a str,
    roles: &'a [String],
    updated_at: String,
    username: &'a str,
}

impl<'a> AccountView<'a> {
    fn of(account: &'a Account, credential: Option<CredentialView<'a>>) -> AccountView<'a> {
        AccountView {
            attributes: &account.attributes,
            created_at: rfc3339(account.created_at),
            credential,
            disabled: account.disabled,
            email: &account.email,
            id: account.id,
            merchant_id: &account.merchant_id,
            number: account.number,
            reseller_id: &account.reseller_id,
            role: account.primary_role(),
            roles: &account.roles,
            updated_at: rfc3339(account.updated_at),
            username: &account.username,
        }
    }
}

/// What a credential acts as, in `/me`; fields in alphabetical order.
#[derive(Serialize)]
struct CredentialView<'a> {
    expires_at: Option<String>,
    id: &'a Option<String>,
    kind: &'a str,
    role: &'a str,
    roles: &'a [String],
}

impl<'a> CredentialView<'a> {
    fn of(principal: &'a Principal) -> CredentialView<'a> {
        CredentialView {
            expires_at: principal.expires_at.map(rfc3339),
            id: &principal.credential_id,
            kind: principal.kind.as_str(),
            role: &principal.role,
            roles: &principal.roles,
        }
    }
}

#[derive(Deserialize)]
struct LoginBody {
    username: Option<String>,
    password: Option<String>,
}

async fn login(app: Arc<App>, req: Req) -> Handled {
    let body: LoginBody = json_body(&req).map_err(body_error)?;
    let (Some(username), Some(password)) = (body.username, body.password) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "username and password are required",
        ));
    };
    let username = LoginId::parse(&username, "username")?;
    let (account, issued) = app
        .core
        .sign_in(&username, &password, &req.client(), DOC)
        .await?;
    Ok(login_body(&account, &issued))
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

async fn refresh(app: Arc<App>, req: Req) -> Handled {
    let body: RefreshBody = json_body(&req).map_err(body_error)?;
    let Some(token) = body.refresh_token else {
        return Ok(error(StatusCode::BAD_REQUEST, "refreshToken is required"));
    };
    let (_, issued) = app.core.refresh(&token, &req.client()).await?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "token": issued.access_token,
            "expires_in": issued.access_expires_at - issued.issued_at,
            "refreshToken": issued.refresh_token,
        }),
    ))
}

async fn logout(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    app.core.logout(&principal, &req.client(), DOC).await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "message": "Successfully logged out" }),
    ))
}

/// The principal behind any credential: the account (access token, API
/// key), or the S2S token's name, role and scope.
async fn me(app: Arc<App>, _req: Req, principal: Principal) -> Handled {
    let credential = CredentialView::of(&principal);
    let Some(account) = app.core.own_account(&principal)? else {
        return Ok(json(
            StatusCode::OK,
            &json!({
                "name": principal.name,
                "role": principal.role,
                "reseller_id": principal.reseller_id,
                "merchant_id": principal.merchant_id,
                "credential": credential,
            }),
        ));
    };
    // What this credential acts as, which may be narrower than the
    // account (a token or key for one role).
    Ok(json(
        StatusCode::OK,
        &AccountView::of(&account, Some(credential)),
    ))
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
async fn change_password(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    let body: ChangePasswordBody = json_body(&req).map_err(body_error)?;
    // An S2S token has no account; it could not set a password anyway.
    let own = principal.account.ok_or(Error::Forbidden)?;
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
        Ok(()) => Ok(no_content()),
        // The domain names the new password `password`, as the admin
        // route's body does; this body calls it `new_password`.
        Err(Error::Invalid {
            field: "password",
            message,
        }) => Err(Error::Invalid {
            field: "new_password",
            message,
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// An API key as the document lists it; `role` (narrowed to one role),
/// `roles` (narrowed at creation) and `expiresAt` appear only on keys that
/// have them.
pub(crate) fn key_view(key: &ApiKey) -> serde_json::Value {
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

/// A new key's request as `POST /api/v1/auth/keys` words it (also the
/// admin API's `POST /api/v1/admin/users/{id}/keys`): an empty body, or
/// JSON naming it, narrowing it and giving it an expiry.
pub(crate) fn new_key_request(req: &Req) -> Result<NewKey, Response<Bytes>> {
    let body: CreateKeyBody = if req.body.is_empty() {
        CreateKeyBody::default()
    } else {
        json_body(req).map_err(body_error)?
    };
    let expiry = match (body.expires_at, &body.expires_in) {
        (Some(_), Some(_)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "give expiresAt or expiresIn, not both",
            ));
        }
        (Some(at), None) => match parse_rfc3339(&at) {
            Some(t) => Some(KeyExpiry::At(t)),
            None => return Err(error(StatusCode::BAD_REQUEST, "expiresAt must be RFC 3339")),
        },
        (None, Some(n)) => Some(KeyExpiry::In(super::http::seconds(n))),
        (None, None) => None,
    };
    Ok(NewKey {
        name: body.name,
        role: body.role,
        roles: body.roles,
        expiry,
    })
}

/// A key just made, with its secret: shown this once.
pub(crate) fn created_key_view(key: &ApiKey, secret: &str) -> serde_json::Value {
    let mut view = json!({
        "keyId": key.id,
        "apiKey": secret,
        "name": key.name,
        "createdAt": rfc3339(key.created_at),
    });
    add_key_extras(&mut view, key);
    view
}

/// `POST /api/v1/auth/keys`. The document gives no request body; an empty
/// one makes a key called "API key" with the caller's roles, and a JSON
/// body may name it, narrow it (`role` or `roles`), and give it an expiry
/// (`expiresAt` or `expiresIn`). The domain decides what is allowed.
async fn create_key(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    let request = new_key_request(&req)?;
    let created = app.core.create_api_key(&principal, request).await;
    match created {
        Ok((key, secret)) => Ok(json(StatusCode::CREATED, &created_key_view(&key, &secret))),
        Err(Error::Forbidden) => Ok(error(
            StatusCode::FORBIDDEN,
            "API keys are created with a signed-in account's token in the Authorization header; an API key, an S2S token or a token from the URL cannot create one",
        )),
        Err(e) => Err(e.into()),
    }
}

fn no_account() -> Response<Bytes> {
    error(
        StatusCode::FORBIDDEN,
        "API keys belong to accounts; this credential has none",
    )
}

async fn list_keys(app: Arc<App>, _req: Req, principal: Principal) -> Handled {
    let Some(account) = principal.account else {
        return Ok(no_account());
    };
    let keys = app.core.list_api_keys(account)?;
    Ok(json(
        StatusCode::OK,
        &keys.iter().map(key_view).collect::<Vec<_>>(),
    ))
}

async fn delete_key(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    let Some(account) = principal.account else {
        return Ok(error(StatusCode::NOT_FOUND, "API key not found"));
    };
    let key_id = req.param("keyId").unwrap_or_default();
    app.core.delete_api_key(&principal, account, key_id).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct ExternalBody {
    email: Option<String>,
    access_token: Option<String>,
}

/// `POST /api/v1/auth/external/{provider}` {email, access_token}: sign in
/// with a Google or Microsoft access token, answering like login.
async fn external(app: Arc<App>, req: Req) -> Handled {
    let Some(provider) = req.param("provider").and_then(Provider::parse) else {
        return Ok(error(StatusCode::NOT_FOUND, "Unknown identity provider"));
    };
    let provider = app.core.enabled_provider(provider)?;
    let body: ExternalBody = json_body(&req).map_err(body_error)?;
    let (Some(email), Some(access_token)) = (body.email, body.access_token) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "email and access_token are required",
        ));
    };
    let (account, issued) = app
        .core
        .external_sign_in(provider, &email, &access_token, &req.client(), DOC)
        .await?;
    Ok(login_body(&account, &issued))
}
