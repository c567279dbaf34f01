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
use super::v1::{account_view, authenticate, body_error, error_response, key_view};
use super::{App, Route, route};
use crate::domain::Page;
use crate::domain::auth::Principal;
use crate::domain::clock::rfc3339;
use crate::domain::s2s::ListedS2s;
use crate::domain::users::{UserFilter, UserPatch, UserRequest};
use crate::store::{AuditEvent, Merchant, Reseller, Session};

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET, "/api/v1/admin/users", list_users),
        route!(POST, "/api/v1/admin/users", create_user),
        route!(GET, "/api/v1/admin/users/{id}", get_user),
        route!(PATCH, "/api/v1/admin/users/{id}", update_user),
        route!(DELETE, "/api/v1/admin/users/{id}", delete_user),
        route!(POST, "/api/v1/admin/users/{id}/password", set_password),
        route!(POST, "/api/v1/admin/users/{id}/unlock", unlock_user),
        route!(POST, "/api/v1/admin/users/{id}/disable", disable_user),
        route!(POST, "/api/v1/admin/users/{id}/enable", enable_user),
        route!(GET, "/api/v1/admin/users/{id}/sessions", list_sessions),
        route!(DELETE, "/api/v1/admin/users/{id}/sessions", revoke_sessions),
        route!(
            DELETE,
            "/api/v1/admin/users/{id}/sessions/{session}",
            revoke_session
        ),
        route!(GET, "/api/v1/admin/users/{id}/keys", list_user_keys),
        route!(
            DELETE,
            "/api/v1/admin/users/{id}/keys/{keyId}",
            delete_user_key
        ),
        route!(GET, "/api/v1/admin/resellers", list_resellers),
        route!(POST, "/api/v1/admin/resellers", create_reseller),
        route!(GET, "/api/v1/admin/resellers/{id}", get_reseller),
        route!(PATCH, "/api/v1/admin/resellers/{id}", update_reseller),
        route!(DELETE, "/api/v1/admin/resellers/{id}", delete_reseller),
        route!(GET, "/api/v1/admin/merchants", list_merchants),
        route!(POST, "/api/v1/admin/merchants", create_merchant),
        route!(GET, "/api/v1/admin/merchants/{id}", get_merchant),
        route!(PATCH, "/api/v1/admin/merchants/{id}", update_merchant),
        route!(DELETE, "/api/v1/admin/merchants/{id}", delete_merchant),
        route!(GET, "/api/v1/admin/roles", list_roles),
        route!(POST, "/api/v1/admin/roles", create_role),
        route!(DELETE, "/api/v1/admin/roles/{name}", delete_role),
        route!(GET, "/api/v1/admin/s2s-tokens", list_s2s),
        route!(DELETE, "/api/v1/admin/s2s-tokens/{id}", revoke_s2s),
        route!(GET, "/api/v1/admin/audit", list_audit),
    ]
}

type Reply = Response<Bytes>;

/// Runs a handler body that needs a principal; every `Err` is already a
/// response.
async fn with_principal<F, Fut>(app: Arc<App>, req: Req, f: F) -> Reply
where
    F: FnOnce(Arc<App>, Req, Principal) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, Reply>>,
{
    let principal = match authenticate(&app, &req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match f(app, req, principal).await {
        Ok(r) | Err(r) => r,
    }
}

fn body<T: DeserializeOwned>(req: &Req) -> Result<T, Reply> {
    json_body(req).map_err(body_error)
}

fn fail(req: &Req) -> impl Fn(crate::domain::Error) -> Reply + '_ {
    move |e| error_response(req, &e)
}

/// `?limit=` and `?cursor=`.
fn paging(req: &Req) -> Result<(usize, Option<String>), Reply> {
    let limit = match req.query("limit") {
        None => 50,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "limit must be a number from 1 to 1000",
                ));
            }
        },
    };
    Ok((limit, req.query("cursor").filter(|c| !c.is_empty())))
}

/// Pages a short list held whole in memory (roles, an account's sessions
/// or keys) by `?limit=` and `?cursor=`; the cursor is how many items came
/// before.
fn page_in_memory<T>(req: &Req, items: Vec<T>) -> Result<Page<T>, Reply> {
    let (limit, cursor) = paging(req)?;
    let skip = match cursor {
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid cursor"))?,
        None => 0,
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(skip).take(limit).collect();
    let end = skip.saturating_add(items.len());
    let next = (end < total).then(|| end.to_string());
    Ok(Page { items, next })
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

fn session_view(s: &Session) -> Value {
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
pub fn s2s_view(listed: &ListedS2s) -> Value {
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

async fn create_user(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
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
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::CREATED, &account_view(&account)))
    })
    .await
}

async fn list_users(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let (limit, cursor) = paging(&req)?;
        let after = match cursor {
            Some(c) => c
                .parse::<u64>()
                .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid cursor"))?,
            None => 0,
        };
        let filter = UserFilter {
            reseller_id: req.query("reseller_id"),
            merchant_id: req.query("merchant_id"),
            role: req.query("role"),
            q: req.query("q"),
        };
        let found = app
            .core
            .admin_list_users(&p, &filter, after, limit)
            .map_err(fail(&req))?;
        Ok(page(found, account_view))
    })
    .await
}

async fn get_user(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let account = app.core.admin_get_user(&p, id).map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &account_view(&account)))
    })
    .await
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

async fn update_user(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
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
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &account_view(&account)))
    })
    .await
}

async fn delete_user(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        app.core
            .admin_delete_user(&p, id)
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    password: String,
    #[serde(default)]
    current_password: Option<String>,
}

async fn set_password(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let b: SetPassword = body(&req)?;
        app.core
            .admin_set_password(&p, id, &b.password, b.current_password.as_deref())
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
}

async fn set_disabled(app: Arc<App>, req: Req, disabled: bool) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let account = app
            .core
            .admin_set_disabled(&p, id, disabled)
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &account_view(&account)))
    })
    .await
}

async fn unlock_user(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let was_locked = app.core.admin_unlock(&p, id).await.map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &json!({ "was_locked": was_locked })))
    })
    .await
}

async fn disable_user(app: Arc<App>, req: Req) -> Reply {
    set_disabled(app, req, true).await
}

async fn enable_user(app: Arc<App>, req: Req) -> Reply {
    set_disabled(app, req, false).await
}

async fn list_sessions(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let sessions = app.core.admin_list_sessions(&p, id).map_err(fail(&req))?;
        Ok(page(page_in_memory(&req, sessions)?, session_view))
    })
    .await
}

async fn revoke_sessions(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let n = app
            .core
            .admin_revoke_sessions(&p, id, None)
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &json!({ "revoked": n })))
    })
    .await
}

async fn revoke_session(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let session = req
            .param("session")
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "Session not found"))?;
        app.core
            .admin_revoke_sessions(&p, id, Some(session))
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
}

async fn list_user_keys(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        let keys = app.core.admin_user_keys(&p, id).map_err(fail(&req))?;
        Ok(page(page_in_memory(&req, keys)?, key_view))
    })
    .await
}

async fn delete_user_key(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let id = user_id(&req)?;
        app.core
            .admin_delete_user_key(&p, id, &param(&req, "keyId"))
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
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

async fn create_reseller(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let b: CreateTenant = body(&req)?;
        if b.reseller_id.is_some() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "unknown field `reseller_id`",
            ));
        }
        let r = app
            .core
            .create_reseller(&p, b.id, &b.name)
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::CREATED, &reseller_view(&r)))
    })
    .await
}

async fn list_resellers(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let (limit, cursor) = paging(&req)?;
        let found = app
            .core
            .list_resellers(&p, cursor.as_deref().unwrap_or(""), limit)
            .map_err(fail(&req))?;
        Ok(page(found, reseller_view))
    })
    .await
}

async fn get_reseller(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let r = app
            .core
            .get_reseller(&p, &param(&req, "id"))
            .map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &reseller_view(&r)))
    })
    .await
}

async fn update_reseller(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let b: Rename = body(&req)?;
        let r = app
            .core
            .update_reseller(&p, &param(&req, "id"), &b.name)
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &reseller_view(&r)))
    })
    .await
}

async fn delete_reseller(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        app.core
            .delete_reseller(&p, &param(&req, "id"))
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
}

async fn create_merchant(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let b: CreateTenant = body(&req)?;
        let m = app
            .core
            .create_merchant(&p, b.id, b.reseller_id, &b.name)
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::CREATED, &merchant_view(&m)))
    })
    .await
}

async fn list_merchants(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let (limit, cursor) = paging(&req)?;
        let found = app
            .core
            .list_merchants(
                &p,
                req.query("reseller_id").as_deref(),
                cursor.as_deref().unwrap_or(""),
                limit,
            )
            .map_err(fail(&req))?;
        Ok(page(found, merchant_view))
    })
    .await
}

async fn get_merchant(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let m = app
            .core
            .get_merchant(&p, &param(&req, "id"))
            .map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &merchant_view(&m)))
    })
    .await
}

async fn update_merchant(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let b: Rename = body(&req)?;
        let m = app
            .core
            .update_merchant(&p, &param(&req, "id"), &b.name)
            .await
            .map_err(fail(&req))?;
        Ok(json(StatusCode::OK, &merchant_view(&m)))
    })
    .await
}

async fn delete_merchant(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        app.core
            .delete_merchant(&p, &param(&req, "id"))
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
}

// ---- roles ----

async fn list_roles(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let roles = app.core.list_roles(&p).map_err(fail(&req))?;
        Ok(page(
            page_in_memory(&req, roles)?,
            |(name, builtin)| json!({ "name": name, "builtin": builtin }),
        ))
    })
    .await
}

async fn create_role(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let b: Rename = body(&req)?;
        let role = app
            .core
            .create_role(&p, &b.name)
            .await
            .map_err(fail(&req))?;
        Ok(json(
            StatusCode::CREATED,
            &json!({ "name": role.name, "builtin": false }),
        ))
    })
    .await
}

async fn delete_role(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        app.core
            .delete_role(&p, &param(&req, "name"))
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
}

// ---- S2S tokens ----

async fn list_s2s(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let (limit, cursor) = paging(&req)?;
        let listed = app
            .core
            .list_s2s(&p, cursor.as_deref().unwrap_or(""), limit)
            .map_err(fail(&req))?;
        Ok(page(listed, s2s_view))
    })
    .await
}

async fn revoke_s2s(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        app.core
            .revoke_s2s(&p, &param(&req, "id"))
            .await
            .map_err(fail(&req))?;
        Ok(no_content())
    })
    .await
}

// ---- audit ----

async fn list_audit(app: Arc<App>, req: Req) -> Reply {
    with_principal(app, req, |app, req, p| async move {
        let (limit, cursor) = paging(&req)?;
        let before = match cursor {
            Some(c) => c
                .parse::<u64>()
                .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid cursor"))?,
            None => u64::MAX,
        };
        let filter = crate::domain::audit::AuditFilter {
            event: req.query("event"),
            outcome: req.query("outcome"),
            actor: req.query("actor"),
            target: req.query("target"),
            reseller_id: req.query("reseller_id"),
            merchant_id: req.query("merchant_id"),
        };
        let found = app
            .core
            .list_audit(&p, &filter, before, limit)
            .map_err(fail(&req))?;
        Ok(page(found, audit_view))
    })
    .await
}
