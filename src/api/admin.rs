//! The admin API under `/api/v1/admin/`: accounts, tenants, roles,
//! sessions, keys, S2S tokens and the audit log. Answers in the canonical
//! API's words. Every list is `{"items": [...], "next": cursor-or-null}`
//! and takes `?limit=` (1 to 1000, default 50) and `?cursor=`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use uuid::Uuid;

use super::http::{Req, error, json, json_body, no_content};
use super::v1::{account_view, body_error, created_key_view, key_view, new_key_request};
use super::{App, Document, Handled, Route, route};
use crate::domain::admin_ops::{BulkAction, BulkDone, ExportRequest, KeyFilter, ListedKey};
use crate::domain::audit::{AuditEvent, AuditFilter};
use crate::domain::auth::Principal;
use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::domain::rbac::Scope;
use crate::domain::s2s::{ListedS2s, NewS2s};
use crate::domain::sessions::Session;
use crate::domain::signing::KeyInfo;
use crate::domain::tenants::{Merchant, Reseller};
use crate::domain::users::{UserFilter, UserPatch, UserRequest};
use crate::domain::{Page, PageRequest};

/// The admin API speaks the canonical document's words.
const DOC: Document = Document::V1;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, GET, "/api/v1/admin/users", principal list_users),
        route!(DOC, POST, "/api/v1/admin/users", principal create_user),
        route!(DOC, GET, "/api/v1/admin/users.csv", principal export_users),
        route!(DOC, POST, "/api/v1/admin/users/bulk", principal bulk_users),
        route!(DOC, GET, "/api/v1/admin/users/{id}", principal get_user),
        route!(DOC, PATCH, "/api/v1/admin/users/{id}", principal update_user),
        route!(DOC, DELETE, "/api/v1/admin/users/{id}", principal delete_user),
        route!(DOC, POST, "/api/v1/admin/users/{id}/password", principal set_password),
        route!(DOC, POST, "/api/v1/admin/users/{id}/unlock", principal unlock_user),
        route!(DOC, POST, "/api/v1/admin/users/{id}/disable", principal disable_user),
        route!(DOC, POST, "/api/v1/admin/users/{id}/enable", principal enable_user),
        route!(DOC, GET, "/api/v1/admin/users/{id}/sessions", principal list_sessions),
        route!(DOC, DELETE, "/api/v1/admin/users/{id}/sessions", principal revoke_sessions),
        route!(DOC, DELETE, "/api/v1/admin/users/{id}/sessions/{session}", principal revoke_session),
        route!(DOC, GET, "/api/v1/admin/users/{id}/keys", principal list_user_keys),
        route!(DOC, POST, "/api/v1/admin/users/{id}/keys", principal create_user_key),
        route!(DOC, DELETE, "/api/v1/admin/users/{id}/keys/{keyId}", principal delete_user_key),
        route!(DOC, GET, "/api/v1/admin/keys", principal list_keys),
        route!(DOC, GET, "/api/v1/admin/resellers", principal list_resellers),
        route!(DOC, POST, "/api/v1/admin/resellers", principal create_reseller),
        route!(DOC, GET, "/api/v1/admin/resellers/{id}", principal get_reseller),
        route!(DOC, PATCH, "/api/v1/admin/resellers/{id}", principal update_reseller),
        route!(DOC, DELETE, "/api/v1/admin/resellers/{id}", principal delete_reseller),
        route!(DOC, GET, "/api/v1/admin/merchants", principal list_merchants),
        route!(DOC, POST, "/api/v1/admin/merchants", principal create_merchant),
        route!(DOC, GET, "/api/v1/admin/merchants/{id}", principal get_merchant),
        route!(DOC, PATCH, "/api/v1/admin/merchants/{id}", principal update_merchant),
        route!(DOC, DELETE, "/api/v1/admin/merchants/{id}", principal delete_merchant),
        route!(DOC, GET, "/api/v1/admin/roles", principal list_roles),
        route!(DOC, POST, "/api/v1/admin/roles", principal create_role),
        route!(DOC, DELETE, "/api/v1/admin/roles/{name}", principal delete_role),
        route!(DOC, GET, "/api/v1/admin/s2s-tokens", principal list_s2s),
        route!(DOC, POST, "/api/v1/admin/s2s-tokens", principal issue_s2s),
        route!(DOC, GET, "/api/v1/admin/s2s-tokens/scopes", principal s2s_scopes),
        route!(DOC, DELETE, "/api/v1/admin/s2s-tokens/{id}", principal revoke_s2s),
        route!(DOC, GET, "/api/v1/admin/audit", principal list_audit),
        route!(DOC, GET, "/api/v1/admin/audit.csv", principal export_audit),
        route!(DOC, GET, "/api/v1/admin/overview", principal overview),
        route!(DOC, GET, "/api/v1/admin/signing-keys", principal list_signing_keys),
        route!(DOC, POST, "/api/v1/admin/signing-keys/rotate", principal rotate_signing_key),
    ]
}

type Reply = Response<Bytes>;

fn body<T: DeserializeOwned>(req: &Req) -> Result<T, Reply> {
    json_body(req).map_err(body_error)
}

/// `?limit=` and `?cursor=`, as every list takes them.
fn paging(req: &Req) -> Result<PageRequest, crate::domain::Error> {
    PageRequest::parse(
        req.query("limit").as_deref(),
        req.query("cursor").as_deref(),
    )
}

fn page<T>(page: Page<T>, view: impl Fn(&T) -> Value) -> Reply {
    json(
        StatusCode::OK,
        &json!({
            "items": page.items.iter().map(view).collect::<Vec<_>>(),
            "next": page.next,
        }),
    )
}

fn user_id(req: &Req) -> Result<Uuid, Reply> {
    req.param("id")
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "User not found"))
}

fn param(req: &Req, name: &str) -> String {
    req.param(name).unwrap_or_default().to_string()
}

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`).
fn double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn reseller_view(r: &Reseller) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "created_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
    })
}

fn merchant_view(m: &Merchant) -> Value {
    json!({
        "id": m.id,
        "reseller_id": m.reseller_id,
        "name": m.name,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
    })
}

pub(crate) fn session_view(s: &Session) -> Value {
    json!({
        "id": s.id.to_string(),
        "kind": s.kind,
        "role": s.role,
        "created_at": rfc3339(s.created_at),
        "last_used_at": rfc3339(s.last_used_at),
        "expires_at": rfc3339(s.expires_at),
        "client_ip": s.client_ip,
        "user_agent": s.user_agent,
    })
}

/// An S2S token in a list: with its expiry and whether the account that
/// issued it still exists (the token outlives it).
pub(crate) fn s2s_view(listed: &ListedS2s) -> Value {
    let t = &listed.token;
    json!({
        "id": t.id,
        "name": t.name,
        "role": t.role,
        "reseller_id": t.reseller_id,
        "merchant_id": t.merchant_id,
        "created_at": rfc3339(t.created_at),
        "created_by": t.created_by,
        "created_by_exists": listed.issuer_exists,
        "expires_at": t.expires_at.map(rfc3339),
        "last_used": t.last_used.map(rfc3339),
        "revoked_at": t.revoked_at.map(rfc3339),
    })
}

fn audit_view(e: &AuditEvent) -> Value {
    json!({
        "seq": e.seq,
        "at": rfc3339(e.at),
        "event": e.event,
        "outcome": e.outcome,
        "actor": e.actor,
        "actor_name": e.actor_name,
        "target": e.target,
        "reseller_id": e.reseller_id,
        "merchant_id": e.merchant_id,
        "client_ip": e.client_ip,
        "detail": e.detail,
    })
}

// ---- users ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    username: String,
    email: String,
    password: String,
    roles: Vec<String>,
    #[serde(default)]
    reseller_id: Option<String>,
    #[serde(default)]
    merchant_id: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

async fn create_user(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: CreateUser = body(&req)?;
    let account = app
        .core
        .admin_create_user(
            &p,
            UserRequest {
                username: b.username,
                email: b.email,
                password: b.password,
                roles: b.roles,
                reseller_id: b.reseller_id,
                merchant_id: b.merchant_id,
                attributes: b.attributes,
            },
        )
        .await?;
    Ok(json(StatusCode::CREATED, &account_view(&account)))
}

/// The account list's filters, as the JSON list and its CSV export read
/// them.
fn user_filter(req: &Req) -> Result<UserFilter, crate::domain::Error> {
    Ok(UserFilter {
        reseller_id: req.query("reseller_id"),
        merchant_id: req.query("merchant_id"),
        role: req.query("role"),
        q: req.query("q"),
        disabled: UserFilter::state(req.query("state").as_deref())?,
    })
}

async fn list_users(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let paging = paging(&req)?;
    let found = app
        .core
        .admin_list_users(&p, &user_filter(&req)?, &paging)?;
    Ok(page(found, account_view))
}

async fn get_user(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let account = app.core.admin_get_user(&p, id)?;
    Ok(json(StatusCode::OK, &account_view(&account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUser {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double")]
    reseller_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    merchant_id: Option<Option<String>>,
    #[serde(default)]
    attributes: Option<BTreeMap<String, String>>,
}

async fn update_user(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let b: PatchUser = body(&req)?;
    let account = app
        .core
        .admin_update_user(
            &p,
            id,
            UserPatch {
                username: b.username,
                email: b.email,
                roles: b.roles,
                reseller_id: b.reseller_id,
                merchant_id: b.merchant_id,
                attributes: b.attributes,
            },
        )
        .await?;
    Ok(json(StatusCode::OK, &account_view(&account)))
}

async fn delete_user(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    app.core.admin_delete_user(&p, id).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    password: String,
    #[serde(default)]
    current_password: Option<String>,
}

async fn set_password(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let b: SetPassword = body(&req)?;
    app.core
        .admin_set_password(&p, id, &b.password, b.current_password.as_deref())
        .await?;
    Ok(no_content())
}

async fn unlock_user(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let was_locked = app.core.admin_unlock(&p, id).await?;
    Ok(json(StatusCode::OK, &json!({ "was_locked": was_locked })))
}

async fn disable_user(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let account = app.core.disable_user(&p, user_id(&req)?).await?;
    Ok(json(StatusCode::OK, &account_view(&account)))
}

async fn enable_user(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let account = app.core.enable_user(&p, user_id(&req)?).await?;
    Ok(json(StatusCode::OK, &account_view(&account)))
}

async fn list_sessions(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let sessions = app.core.admin_list_sessions(&p, id, &paging(&req)?)?;
    Ok(page(sessions, session_view))
}

async fn revoke_sessions(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let n = app.core.revoke_user_sessions(&p, id).await?;
    Ok(json(StatusCode::OK, &json!({ "revoked": n })))
}

async fn revoke_session(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let session = req
        .param("session")
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Session not found"))?;
    app.core.revoke_user_session(&p, id, session).await?;
    Ok(no_content())
}

async fn list_user_keys(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let keys = app.core.admin_user_keys(&p, id, &paging(&req)?)?;
    Ok(page(keys, key_view))
}

async fn delete_user_key(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    app.core
        .admin_delete_user_key(&p, id, &param(&req, "keyId"))
        .await?;
    Ok(no_content())
}

async fn create_user_key(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let id = user_id(&req)?;
    let request = new_key_request(&req)?;
    let (key, secret) = app.core.admin_create_user_key(&p, id, request).await?;
    Ok(json(StatusCode::CREATED, &created_key_view(&key, &secret)))
}

/// A key in the cross-account list: the key as an account's own list
/// shows it, its owner, and whether it has expired.
fn listed_key_view(k: &ListedKey) -> Value {
    let mut view = key_view(&k.key);
    if let Some(obj) = view.as_object_mut() {
        obj.insert("expired".into(), json!(k.expired));
        obj.insert(
            "owner".into(),
            json!({
                "id": k.owner.id.to_string(),
                "username": k.owner.username,
                "email": k.owner.email,
                "reseller_id": k.owner.reseller_id,
                "merchant_id": k.owner.merchant_id,
                "disabled": k.owner.disabled,
            }),
        );
    }
    view
}

async fn list_keys(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let paging = paging(&req)?;
    let filter = KeyFilter {
        owner: req.query("owner"),
        reseller_id: req.query("reseller_id"),
        merchant_id: req.query("merchant_id"),
    };
    let found = app.core.admin_list_keys(&p, &filter, &paging)?;
    Ok(page(found, listed_key_view))
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum BulkActionBody {
    Disable,
    Enable,
    RevokeSessions,
    Delete,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bulk {
    action: BulkActionBody,
    ids: Vec<String>,
}

/// `POST /api/v1/admin/users/bulk`: one action on many accounts, each
/// item's outcome in the order asked, a refusal in the words its single
/// route would use (status and body).
async fn bulk_users(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: Bulk = body(&req)?;
    let (action, name) = match b.action {
        BulkActionBody::Disable => (BulkAction::Disable, "disable"),
        BulkActionBody::Enable => (BulkAction::Enable, "enable"),
        BulkActionBody::RevokeSessions => (BulkAction::RevokeSessions, "revoke_sessions"),
        BulkActionBody::Delete => (BulkAction::Delete, "delete"),
    };
    let items = app.core.admin_bulk(&p, action, b.ids).await?;
    let (mut succeeded, mut failed) = (0usize, 0usize);
    let results: Vec<Value> = items
        .iter()
        .map(|item| match &item.outcome {
            Ok(done) => {
                succeeded += 1;
                let mut view = json!({ "id": item.id, "ok": true });
                let extra = match done {
                    BulkDone::Account(a) => Some(("account", account_view(a))),
                    BulkDone::Revoked(n) => Some(("revoked", json!(n))),
                    BulkDone::Deleted => None,
                };
                if let (Some((k, v)), Some(obj)) = (extra, view.as_object_mut()) {
                    obj.insert(k.into(), v);
                }
                view
            }
            Err(e) => {
                failed += 1;
                if matches!(
                    e,
                    crate::domain::Error::Internal(_) | crate::domain::Error::Store(_)
                ) {
                    tracing::error!(error = %e, id = %item.id, "a bulk action's item failed");
                }
                let words = super::v1::words(e);
                let mut view =
                    json!({ "id": item.id, "ok": false, "status": words.status().as_u16() });
                if let (Ok(Value::Object(said)), Some(obj)) = (
                    serde_json::from_slice::<Value>(words.body()),
                    view.as_object_mut(),
                ) {
                    obj.extend(said);
                }
                view
            }
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "action": name,
            "succeeded": succeeded,
            "failed": failed,
            "results": results,
        }),
    ))
}

// ---- tenants ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    reseller_id: Option<String>,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn create_reseller(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: CreateTenant = body(&req)?;
    if b.reseller_id.is_some() {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "unknown field `reseller_id`",
        ));
    }
    let r = app.core.create_reseller(&p, b.id, &b.name).await?;
    Ok(json(StatusCode::CREATED, &reseller_view(&r)))
}

async fn list_resellers(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let found = app.core.list_resellers(&p, &paging(&req)?)?;
    Ok(page(found, reseller_view))
}

async fn get_reseller(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let r = app.core.get_reseller(&p, &param(&req, "id"))?;
    Ok(json(StatusCode::OK, &reseller_view(&r)))
}

async fn update_reseller(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: Rename = body(&req)?;
    let r = app
        .core
        .update_reseller(&p, &param(&req, "id"), &b.name)
        .await?;
    Ok(json(StatusCode::OK, &reseller_view(&r)))
}

async fn delete_reseller(app: Arc<App>, req: Req, p: Principal) -> Handled {
    app.core.delete_reseller(&p, &param(&req, "id")).await?;
    Ok(no_content())
}

async fn create_merchant(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: CreateTenant = body(&req)?;
    let m = app
        .core
        .create_merchant(&p, b.id, b.reseller_id, &b.name)
        .await?;
    Ok(json(StatusCode::CREATED, &merchant_view(&m)))
}

async fn list_merchants(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let paging = paging(&req)?;
    let found = app
        .core
        .list_merchants(&p, req.query("reseller_id").as_deref(), &paging)?;
    Ok(page(found, merchant_view))
}

async fn get_merchant(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let m = app.core.get_merchant(&p, &param(&req, "id"))?;
    Ok(json(StatusCode::OK, &merchant_view(&m)))
}

async fn update_merchant(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: Rename = body(&req)?;
    let m = app
        .core
        .update_merchant(&p, &param(&req, "id"), &b.name)
        .await?;
    Ok(json(StatusCode::OK, &merchant_view(&m)))
}

async fn delete_merchant(app: Arc<App>, req: Req, p: Principal) -> Handled {
    app.core.delete_merchant(&p, &param(&req, "id")).await?;
    Ok(no_content())
}

// ---- roles ----

async fn list_roles(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let roles = app.core.list_roles(&p, &paging(&req)?)?;
    Ok(page(
        roles,
        |(name, builtin)| json!({ "name": name, "builtin": builtin }),
    ))
}

async fn create_role(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: Rename = body(&req)?;
    let role = app.core.create_role(&p, &b.name).await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({ "name": role.name, "builtin": false }),
    ))
}

async fn delete_role(app: Arc<App>, req: Req, p: Principal) -> Handled {
    app.core.delete_role(&p, &param(&req, "name")).await?;
    Ok(no_content())
}

// ---- S2S tokens ----

async fn list_s2s(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let listed = app.core.list_s2s(&p, &paging(&req)?)?;
    Ok(page(listed, s2s_view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueS2s {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    reseller_id: Option<String>,
    #[serde(default)]
    merchant_id: Option<String>,
    /// Seconds (any JSON number; the domain bounds it).
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
}

/// `POST /api/v1/admin/s2s-tokens`: the tenant document's `/s2s-token`
/// issuance (the same domain operation, so the same rules and scope
/// checks), answered in the admin API's words with the new token's id.
async fn issue_s2s(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let b: IssueS2s = body(&req)?;
    let (token, secret) = app
        .core
        .issue_s2s(
            &p,
            NewS2s {
                name: b.name,
                role: b.role,
                reseller_id: b.reseller_id,
                merchant_id: b.merchant_id,
                expires_in: b.expires_in.as_ref().map(super::http::seconds),
            },
        )
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "id": token.id,
            "token": secret,
            "name": token.name,
            "role": token.role,
            "reseller_id": token.reseller_id,
            "merchant_id": token.merchant_id,
            "created_at": rfc3339(token.created_at),
            "created_by": token.created_by,
            "expires_at": token.expires_at.map(rfc3339),
        }),
    ))
}

/// `GET /api/v1/admin/s2s-tokens/scopes`: what the caller may issue.
async fn s2s_scopes(app: Arc<App>, _req: Req, p: Principal) -> Handled {
    let options = app.core.s2s_issuable(&p)?;
    let i = &options.issuable;
    Ok(json(
        StatusCode::OK,
        &json!({
            "roles": i.roles,
            "reseller_id": i.reseller_id,
            "merchant_id": i.merchant_id,
            "max_expires_in": options.max_expires_in,
        }),
    ))
}

async fn revoke_s2s(app: Arc<App>, req: Req, p: Principal) -> Handled {
    app.core.revoke_s2s(&p, &param(&req, "id")).await?;
    Ok(no_content())
}

// ---- audit ----

/// The audit log's filters, as the JSON list and its CSV export read
/// them: `since` and `until` are RFC 3339 times (400 otherwise).
fn audit_filter(req: &Req) -> Result<AuditFilter, Reply> {
    let time = |name: &str| -> Result<Option<i64>, Reply> {
        match req.query(name) {
            None => Ok(None),
            Some(raw) => parse_rfc3339(&raw).map(Some).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("{name} must be an RFC 3339 time"),
                )
            }),
        }
    };
    Ok(AuditFilter {
        event: req.query("event"),
        outcome: req.query("outcome"),
        actor: req.query("actor"),
        target: req.query("target"),
        reseller_id: req.query("reseller_id"),
        merchant_id: req.query("merchant_id"),
        since: time("since")?,
        until: time("until")?,
    })
}

async fn list_audit(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let paging = paging(&req)?;
    let found = app.core.list_audit(&p, &audit_filter(&req)?, &paging)?;
    Ok(page(found, audit_view))
}

// ---- CSV exports ----

/// A CSV cell: a value a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
/// `'`, and a cell holding a comma, a quote or a line break is quoted,
/// its quotes doubled (RFC 4180). So is one holding a semicolon or a tab:
/// a spreadsheet whose locale separates lists with `;`, or that takes the
/// file as tab-separated, splits there, and what follows (`x;=cmd|...`,
/// from a sign-in name anyone can type) would start a cell of its own.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\r', '\n', ';', '\t']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A CSV document (header, then rows; CRLF line ends) as a download;
/// `X-Next-Cursor` says where the next export starts when this one
/// stopped at its bound.
fn csv(name: &str, header: &[&str], rows: Vec<Vec<String>>, next: Option<String>) -> Reply {
    let mut text = String::new();
    for row in std::iter::once(header.iter().map(|h| h.to_string()).collect()).chain(rows) {
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        text.push_str(&cells.join(","));
        text.push_str("\r\n");
    }
    let mut response = Response::new(Bytes::from(text));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(http::header::CONTENT_DISPOSITION, v);
    }
    if let Some(v) = next.and_then(|n| http::HeaderValue::from_str(&n).ok()) {
        headers.insert("x-next-cursor", v);
    }
    response
}

/// `?limit=` (rows, 1 to 10,000, default 10,000) and `?cursor=`, as every
/// export takes them.
fn exporting(req: &Req) -> Result<ExportRequest, crate::domain::Error> {
    ExportRequest::parse(
        req.query("limit").as_deref(),
        req.query("cursor").as_deref(),
    )
}

fn or_empty(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// `GET /api/v1/admin/users.csv`: the account list's filters and scope,
/// up to the export bound.
async fn export_users(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let found = app
        .core
        .export_users(&p, &user_filter(&req)?, &exporting(&req)?)?;
    let rows = found
        .items
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.number.to_string(),
                a.username.clone(),
                a.email.clone(),
                a.roles.join(" "),
                or_empty(&a.reseller_id),
                or_empty(&a.merchant_id),
                a.disabled.to_string(),
                rfc3339(a.created_at),
                rfc3339(a.updated_at),
            ]
        })
        .collect();
    Ok(csv(
        "users.csv",
        &[
            "id",
            "number",
            "username",
            "email",
            "roles",
            "reseller_id",
            "merchant_id",
            "disabled",
            "created_at",
            "updated_at",
        ],
        rows,
        found.next,
    ))
}

/// `GET /api/v1/admin/audit.csv`: the audit log's filters and scope, up
/// to the export bound.
async fn export_audit(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let found = app
        .core
        .export_audit(&p, &audit_filter(&req)?, &exporting(&req)?)?;
    let rows = found
        .items
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                rfc3339(e.at),
                e.event.clone(),
                e.outcome.clone(),
                or_empty(&e.actor),
                or_empty(&e.actor_name),
                or_empty(&e.target),
                or_empty(&e.reseller_id),
                or_empty(&e.merchant_id),
                or_empty(&e.client_ip),
                or_empty(&e.detail),
            ]
        })
        .collect();
    Ok(csv(
        "audit.csv",
        &[
            "seq",
            "at",
            "event",
            "outcome",
            "actor",
            "actor_name",
            "target",
            "reseller_id",
            "merchant_id",
            "client_ip",
            "detail",
        ],
        rows,
        found.next,
    ))
}

// ---- signing keys ----

fn signing_key_view(k: &KeyInfo) -> Value {
    json!({
        "kid": k.kid,
        "algorithm": k.alg,
        "created_at": rfc3339(k.created_at),
        "state": if k.active { "active" } else { "retired" },
        "retired_at": k.retired_at.map(rfc3339),
        "verify_until": k.verify_until.map(rfc3339),
    })
}

async fn list_signing_keys(app: Arc<App>, req: Req, p: Principal) -> Handled {
    let keys = app.core.signing_keys(&p, &paging(&req)?)?;
    Ok(page(keys, signing_key_view))
}

async fn rotate_signing_key(app: Arc<App>, _req: Req, p: Principal) -> Handled {
    let key = app.core.rotate_signing_key(&p).await?;
    Ok(json(StatusCode::CREATED, &signing_key_view(&key)))
}

// ---- overview ----

/// `GET /api/v1/admin/overview`: counts in the caller's scope, its latest
/// events, and the server's health.
async fn overview(app: Arc<App>, _req: Req, p: Principal) -> Handled {
    let o = app.core.admin_overview(&p).await?;
    let (kind, reseller_id, merchant_id) = match &o.scope {
        Scope::All => ("all", None, None),
        Scope::Reseller(r) => ("reseller", Some(r.clone()), None),
        Scope::Merchant { reseller, merchant } => {
            ("merchant", Some(reseller.clone()), Some(merchant.clone()))
        }
        Scope::Own(_) | Scope::Nothing => ("none", None, None),
    };
    let check = |r: &Result<(), String>| match r {
        Ok(()) => json!({ "ok": true }),
        Err(why) => json!({ "ok": false, "error": why }),
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "scope": { "kind": kind, "reseller_id": reseller_id, "merchant_id": merchant_id },
            "accounts": {
                "total": o.accounts.total,
                "enabled": o.accounts.enabled,
                "disabled": o.accounts.disabled,
                "locked": o.accounts.locked,
            },
            "resellers": o.resellers,
            "merchants": o.merchants,
            "api_keys": o.api_keys,
            "s2s_tokens": { "live": o.s2s_tokens.live, "ended": o.s2s_tokens.ended },
            "complete": o.complete,
            "recent_events": o.recent_events.iter().map(audit_view).collect::<Vec<_>>(),
            "health": {
                "status": if o.readiness.ready() { "ready" } else { "unavailable" },
                "checks": {
                    "store": check(&o.readiness.store),
                    "signing_key": check(&o.readiness.signing_key),
                },
                "hashing": {
                    "running": o.hashing.running,
                    "queued": o.hashing.queued,
                    "refused": o.hashing.refused,
                },
                "version": env!("CARGO_PKG_VERSION"),
            },
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    /// A cell that a spreadsheet could split (at a comma, a semicolon in
    /// European locales, a tab when taken as tab-separated) is quoted, and
    /// one that starts like a formula is disarmed with a quote mark.
    #[test]
    fn cells_that_could_split_or_compute_are_quoted() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("x\t=cmd"), "\"x\t=cmd\"");
        assert_eq!(csv_cell("x;=cmd"), "\"x;=cmd\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("a\"b"), "\"a\"\"b\"");
    }
}
