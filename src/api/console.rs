//! The console's session routes and its cookie credential: signing in
//! sets an HttpOnly cookie holding an opaque session token and answers
//! with the session's CSRF token; the dispatcher takes the cookie, for
//! routes that allow the console only, through [`principal`].
//!
//! Over TLS the cookie is `__Host-latchkey_console` with `Secure`; over
//! plain HTTP (a local test) browsers refuse both the prefix and
//! `Secure`, so it is `latchkey_console`; behind a proxy that ends TLS,
//! where the browser says the page is `https://` and same-origin, it is
//! the `__Host-` cookie again.

use std::sync::Arc;

use http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use http::{HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http::{Req, error, json, json_body};
use super::v1::body_error;
use super::{App, Document, Handled, Refused, Route, route};
use crate::domain::accounts::LoginId;
use crate::domain::auth::Principal;
use crate::domain::clock::rfc3339;
use crate::domain::console::csrf_matches;

/// Whose words the console's routes speak (the admin API's).
const DOC: Document = Document::V1;

/// The cookie's name over TLS.
pub const COOKIE_TLS: &str = "__Host-latchkey_console";
/// The cookie's name over plain HTTP.
pub const COOKIE_PLAIN: &str = "latchkey_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Longest Cookie header looked at.
const MAX_COOKIE: usize = 8192;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, POST, "/api/v1/console/session", public sign_in),
        route!(DOC, DELETE, "/api/v1/console/session", principal sign_out).for_console(),
        route!(DOC, POST, "/api/v1/console/reauth", principal reauth).for_console(),
        route!(DOC, GET, "/api/v1/auth/sessions", principal own_sessions).for_console(),
    ]
}

/// The caller's own live sessions, newest first, each marked `current`
/// when it is the one asking (the console's "my sessions").
async fn own_sessions(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    let paging = crate::domain::PageRequest::parse(
        req.query("limit").as_deref(),
        req.query("cursor").as_deref(),
    )?;
    let page = app.core.own_sessions(&principal, &paging)?;
    let items: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|s| {
            let mut view = super::admin::session_view(s);
            view["current"] = json!(principal.session == Some(s.id));
            view
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "items": items, "next": page.next }),
    ))
}

#[derive(Deserialize)]
struct SignInBody {
    /// A username or an email address.
    username: Option<String>,
    password: Option<String>,
}

async fn sign_in(app: Arc<App>, req: Req) -> Handled {
    let body: SignInBody = json_body(&req).map_err(body_error)?;
    let (Some(username), Some(password)) = (body.username, body.password) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "username and password are required",
        ));
    };
    let identifier = LoginId::parse(&username, "username")?;
    let session = app
        .core
        .console_sign_in(&identifier, &password, &req.client())
        .await?;
    let cookie = if secure_page(&req) {
        format!(
            "{COOKIE_TLS}={}; Path=/; HttpOnly; Secure; SameSite=Strict",
            session.token
        )
    } else {
        format!(
            "{COOKIE_PLAIN}={}; Path=/; HttpOnly; SameSite=Strict",
            session.token
        )
    };
    let account = &session.account;
    let mut response = json(
        StatusCode::OK,
        &json!({
            "csrf_token": session.csrf,
            "expires_at": rfc3339(session.expires_at),
            "user": {
                "id": account.id.to_string(),
                "username": account.username,
                "email": account.email,
                "roles": account.roles,
            },
        }),
    );
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| crate::domain::Error::Internal("cookie header".into()))?;
    response.headers_mut().insert(SET_COOKIE, value);
    Ok(response)
}

/// Ends the session of the credential that asks, and clears the cookie.
async fn sign_out(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    app.core.logout(&principal, &req.client(), DOC).await?;
    Ok(clear_cookie(&req, super::http::no_content()))
}

#[derive(Deserialize)]
struct ReauthBody {
    password: Option<String>,
}

/// Re-enters the console session's password (for the sensitive actions
/// that ask for a recent one): checked as every password is, then the
/// session is stamped. Answers until when sensitive actions are allowed.
async fn reauth(app: Arc<App>, req: Req, principal: Principal) -> Handled {
    let body: ReauthBody = json_body(&req).map_err(body_error)?;
    let Some(password) = body.password else {
        return Ok(error(StatusCode::BAD_REQUEST, "password is required"));
    };
    let until = app
        .core
        .console_reauth(&principal, &password, &req.client())
        .await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "reauth_until": rfc3339(until) }),
    ))
}

/// `response` with the console's cookie cleared (the name and `Secure`
/// as this page's cookie has them).
pub(crate) fn clear_cookie(req: &Req, mut response: super::Reply) -> super::Reply {
    let secure = secure_page(req);
    let name = if secure { COOKIE_TLS } else { COOKIE_PLAIN };
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// Whether the page asking is served over TLS: the connection is TLS, or
/// (behind a TLS-terminating proxy) the browser names the page's origin
/// as `https://` and this host, same-origin. Its cookie is then `Secure`
/// and `__Host-`, so no plain request and no sibling host ever sees or
/// sets it.
fn secure_page(req: &Req) -> bool {
    req.ctx.tls
        || (fetch_site(req) == Some(true)
            && req
                .headers
                .get(ORIGIN)
                .and_then(|o| o.to_str().ok())
                .zip(addressed_host(req))
                .is_some_and(|(o, host)| o.eq_ignore_ascii_case(&format!("https://{host}"))))
}

/// The console cookie's session token, when the request carries one of
/// the name this connection uses (a plain connection also takes the
/// `__Host-` name, which a browser sends only to an `https://` page, so
/// only through a TLS-terminating proxy).
pub(crate) fn cookie(req: &Req) -> Option<String> {
    let names: &[&str] = if req.ctx.tls {
        &[COOKIE_TLS]
    } else {
        &[COOKIE_TLS, COOKIE_PLAIN]
    };
    req.headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.len() <= MAX_COOKIE)
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| names.contains(k))
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The principal of a console cookie, for a route that allows the
/// console: the session must be a console session, checked as every
/// opaque token is (revoked, expired, account disabled or changed) and for
/// its idle time (`Core::authenticate_console`), and a request that
/// changes anything must also come from our own origin and carry the
/// session's CSRF token. A refusal of the cookie itself is the document's
/// 401; a failed origin or CSRF check is a 403.
pub(crate) async fn principal(
    app: &App,
    req: &Req,
    method: &Method,
    token: &str,
) -> Result<Principal, Refused> {
    let principal = app
        .core
        .authenticate_console(token, req.ctx.client_ip)
        .await?;
    if method != Method::GET && method != Method::HEAD {
        if !same_origin(req) {
            return Err(error(StatusCode::FORBIDDEN, "Cross-origin request refused").into());
        }
        let presented = req
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !csrf_matches(token, presented) {
            return Err(error(StatusCode::FORBIDDEN, "Missing or invalid CSRF token").into());
        }
    }
    Ok(principal)
}

/// Whether the browser says the request comes from our own origin:
/// `Sec-Fetch-Site`, when sent, must be `same-origin`, and `Origin`, when
/// sent, must be this server as the client addressed it (on a plain
/// connection, with `Sec-Fetch-Site`, also its `https` form); one of the
/// two must be there.
fn same_origin(req: &Req) -> bool {
    let fetch_site = fetch_site(req);
    if fetch_site == Some(false) {
        return false;
    }
    let Some(origin) = req.headers.get(ORIGIN) else {
        return fetch_site == Some(true);
    };
    let Some(host) = addressed_host(req) else {
        return false;
    };
    let scheme = if req.ctx.tls { "https" } else { "http" };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    // Behind a TLS-terminating proxy (`--insecure-http`) the page is
    // `https://<host>` on a plain connection; taken only when the browser
    // also says the request is same-origin, which no other page can make
    // it say.
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
        || (!req.ctx.tls
            && fetch_site == Some(true)
            && origin.eq_ignore_ascii_case(&format!("https://{host}")))
}

/// Whether `Sec-Fetch-Site` says `same-origin`; `None` when not sent.
fn fetch_site(req: &Req) -> Option<bool> {
    req.headers
        .get("sec-fetch-site")
        .map(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"))
}

/// This server as the client addressed it (`Host`, or the authority).
fn addressed_host(req: &Req) -> Option<String> {
    req.headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri.authority().map(|a| a.to_string()))
}
