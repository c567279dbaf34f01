//! The HTTP API: one thin adapter per published document, plus the
//! canonical and admin APIs. Each adapter parses its document's requests,
//! calls the domain, and shapes the answer in its document's words; no
//! adapter decides anything about credentials.
//!
//! [`routes`] is the whole route table: each route's document and what it
//! needs (nothing, or a principal). The router is built from it, the
//! dispatcher authenticates by it, and the OpenAPI test checks the
//! published document against it.

// Handlers return early with a ready response as their error value; a
// response is a few hundred bytes on the stack once per request, and boxing
// it would cost an allocation for nothing.
#![allow(clippy::result_large_err)]

pub mod account;
pub mod admin;
pub mod client;
pub mod console;
pub(crate) mod http;
pub mod openapi;
pub mod tenant;
pub mod token;
pub mod v1;
pub mod wellknown;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ::http::{HeaderValue, Method, Request, Response, StatusCode};
use bytes::Bytes;

use self::http::{Asked, Req, error};
pub use crate::domain::Document;
use crate::domain::auth::Principal;
use crate::domain::{Core, Error};
use crate::server::{Handler, RequestContext, ResponseFuture};

/// A response, as handlers build them.
pub(crate) type Reply = Response<Bytes>;

/// Why a handler did not answer with success: a domain error, which the
/// dispatcher says in the route's document's words, or a refusal the
/// handler has already worded (a body that is not the document's).
pub(crate) enum Refused {
    /// Said through the route's document's mapping.
    Domain(Error),
    /// Sent as it is.
    Reply(Reply),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Domain(e)
    }
}

impl From<Reply> for Refused {
    fn from(r: Reply) -> Refused {
        Refused::Reply(r)
    }
}

/// What a handler answers.
pub(crate) type Handled = Result<Reply, Refused>;

/// A handler's future.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Handled> + Send>>;

/// What a route needs before its handler runs, and so what the handler is
/// given. The dispatcher ([`Api`]) authenticates exactly once per request,
/// here, so a new credential kind (the console's cookie, with its CSRF
/// check) is added in one place: a variant and its arm in `Api::handle`.
#[derive(Clone, Copy)]
pub(crate) enum Call {
    /// Anyone may call it.
    Public(fn(Arc<App>, Req) -> HandlerFuture),
    /// It needs a credential (header, or an opaque token in the query
    /// string where that is allowed); without a good one the route's
    /// document refuses with 401 and its challenge.
    Principal(fn(Arc<App>, Req, Principal) -> HandlerFuture),
    /// A credential in the `Authorization` header is used when there is
    /// one (and refused in the document's words when it is bad); none is
    /// fine.
    MaybePrincipal(fn(Arc<App>, Req, Option<Principal>) -> HandlerFuture),
}

/// One entry of the route table.
pub struct Route {
    /// The method it answers (HEAD is answered by GET's route).
    pub method: Method,
    /// matchit syntax: `/api/v1/auth/keys/{keyId}`.
    pub path: &'static str,
    /// Whose words answer a refusal, including a missing credential.
    pub document: Document,
    /// What the route needs, and its handler.
    pub(crate) call: Call,
    /// Whether the console's cookie is a credential here (see
    /// [`console::principal`]); only where it is declared.
    pub console: bool,
}

impl Route {
    /// The route, also taking the console's cookie.
    pub(crate) fn for_console(mut self) -> Route {
        self.console = true;
        self
    }

    /// Whether the route answers only a caller that presents a credential.
    pub fn needs_principal(&self) -> bool {
        matches!(self.call, Call::Principal(_))
    }

    /// Whether the route never looks at a credential.
    pub fn is_public(&self) -> bool {
        matches!(self.call, Call::Public(_))
    }
}

/// A route of the document in scope (each adapter's `routes()` names its
/// document once): `route!(doc, POST, "/path", public handler)`, or with
/// `principal` or `maybe_principal` for what the handler is given.
macro_rules! route {
    ($doc:expr, $method:ident, $path:expr, public $handler:path) => {
        $crate::api::Route {
            method: ::http::Method::$method,
            path: $path,
            document: $doc,
            call: $crate::api::Call::Public(|app, req| Box::pin($handler(app, req))),
            console: false,
        }
    };
    ($doc:expr, $method:ident, $path:expr, principal $handler:path) => {
        $crate::api::Route {
            method: ::http::Method::$method,
            path: $path,
            document: $doc,
            call: $crate::api::Call::Principal(|app, req, p| Box::pin($handler(app, req, p))),
            console: false,
        }
    };
    ($doc:expr, $method:ident, $path:expr, maybe_principal $handler:path) => {
        $crate::api::Route {
            method: ::http::Method::$method,
            path: $path,
            document: $doc,
            call: $crate::api::Call::MaybePrincipal(|app, req, p| Box::pin($handler(app, req, p))),
            console: false,
        }
    };
}
pub(crate) use route;

/// Every route the server answers.
pub fn routes() -> Vec<Route> {
    let mut all = Vec::new();
    all.extend(wellknown::routes());
    // The console drives the admin API and the caller's own account.
    all.extend(v1::routes().into_iter().map(|r| match r.path {
        "/api/v1/auth/me"
        | "/api/v1/auth/password"
        | "/api/v1/auth/keys"
        | "/api/v1/auth/keys/{keyId}" => r.for_console(),
        _ => r,
    }));
    all.extend(admin::routes().into_iter().map(Route::for_console));
    all.extend(console::routes());
    all.extend(tenant::routes());
    all.extend(client::routes());
    all.extend(token::routes());
    all.extend(account::routes());
    all.extend(openapi::routes());
    all
}

/// A domain error in a document's words. Each document's function names
/// every variant; the rules every document shares (Retry-After, the
/// challenge, logging our own failures) are applied once, in
/// [`http::refusal`].
fn refusal(document: Document, asked: &Asked, e: &Error) -> Reply {
    let words = match document {
        Document::V1 => v1::words(e),
        Document::ClientLoginRefresh => client::words(e),
        Document::TenantLoginAndS2s => tenant::words(e),
        Document::TokenAndSocialLogin => token::words(e),
        Document::AccountRolesToken => account::words(e),
    };
    http::refusal(asked, e, words)
}

/// Settings the adapters need.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Accept opaque tokens in a `token` query parameter.
    pub token_query_param: bool,
    /// The metrics registry, for `/metrics` and request latencies.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// A route as the router keeps it.
#[derive(Clone, Copy)]
struct Entry {
    /// Whose words answer a refusal.
    document: Document,
    /// What the route needs, and its handler.
    call: Call,
    /// Whether the console's cookie is a credential here.
    console: bool,
}

/// What handlers share.
pub struct App {
    /// The domain.
    pub core: Arc<Core>,
    /// Adapter settings.
    pub options: ApiOptions,
    /// Path -> method -> route.
    router: matchit::Router<BTreeMap<Method, Entry>>,
    /// The console's embedded files, fingerprinted and compressed once.
    console: crate::console::Catalogue,
}

impl App {
    pub fn new(core: Arc<Core>, options: ApiOptions) -> Result<Arc<App>, String> {
        let mut by_path: BTreeMap<&'static str, BTreeMap<Method, Entry>> = BTreeMap::new();
        for r in routes() {
            let entry = Entry {
                document: r.document,
                call: r.call,
                console: r.console,
            };
            if by_path
                .entry(r.path)
                .or_default()
                .insert(r.method.clone(), entry)
                .is_some()
            {
                return Err(format!("route {} {} defined twice", r.method, r.path));
            }
        }
        let mut router = matchit::Router::new();
        for (path, methods) in by_path {
            router
                .insert(path, methods)
                .map_err(|e| format!("route {path}: {e}"))?;
        }
        let console = crate::console::Catalogue::build()?;
        Ok(Arc::new(App {
            core,
            options,
            router,
            console,
        }))
    }
}

/// The API as the server's request handler.
pub struct Api(pub Arc<App>);

impl Handler for Api {
    fn handle(&self, request: Request<Bytes>) -> ResponseFuture {
        let app = self.0.clone();
        let (parts, body) = request.into_parts();
        let ctx = match parts.extensions.get::<RequestContext>() {
            Some(ctx) => ctx.clone(),
            None => {
                return Box::pin(async {
                    error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                });
            }
        };
        // The console's files are not API routes: they need no credential
        // and answer in their own way (see src/console.rs).
        if crate::console::owns(parts.uri.path()) {
            let response = crate::console::serve(
                &app.console,
                &parts.method,
                parts.uri.path(),
                &parts.headers,
            );
            return Box::pin(async move { response });
        }
        let found = match app.router.at(parts.uri.path()) {
            Ok(matched) => {
                let params: Vec<(String, String)> = matched
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let entry = matched.value.get(&parts.method).copied().or_else(|| {
                    // HEAD is GET without the body.
                    (parts.method == Method::HEAD)
                        .then(|| matched.value.get(&Method::GET).copied())
                        .flatten()
                });
                match entry {
                    Some(e) => Ok((e, params)),
                    None => Err(method_not_allowed(matched.value.keys())),
                }
            }
            Err(_) => Err(error(StatusCode::NOT_FOUND, "Not found")),
        };
        match found {
            Ok((entry, params)) => {
                let method = parts.method;
                let req = Req {
                    uri: parts.uri,
                    headers: parts.headers,
                    body,
                    params,
                    ctx,
                };
                Box::pin(dispatch(app, entry, method, req))
            }
            Err(response) => Box::pin(async move { response }),
        }
    }

    fn completed(
        &self,
        method: &Method,
        path: &str,
        _status: StatusCode,
        elapsed: std::time::Duration,
    ) {
        self.0
            .options
            .metrics
            .request_completed(method, path, elapsed);
    }
}

/// Authenticates once, as the route asks, runs the handler, and says a
/// refusal in the route's document's words.
async fn dispatch(app: Arc<App>, entry: Entry, method: Method, req: Req) -> Reply {
    let asked = Asked::of(&req);
    if !req.query_is_utf8() {
        return refusal(entry.document, &asked, &Error::NotUtf8("query string"));
    }
    let handled = match entry.call {
        Call::Public(handler) => handler(app, req).await,
        Call::Principal(handler) => {
            match authenticate(&app, &entry, &method, &req, app.options.token_query_param).await {
                Ok(Some(p)) => handler(app, req, p).await,
                Ok(None) => Err(Error::Unauthenticated.into()),
                Err(e) => Err(e),
            }
        }
        // Only a header credential: a token in a URL is never taken where
        // the route does not need one.
        Call::MaybePrincipal(handler) => {
            match authenticate(&app, &entry, &method, &req, false).await {
                Ok(p) => handler(app, req, p).await,
                Err(e) => Err(e),
            }
        }
    };
    match handled {
        Ok(reply) | Err(Refused::Reply(reply)) => reply,
        Err(Refused::Domain(e)) => refusal(entry.document, &asked, &e),
    }
}

/// The request's credential: an `Authorization` header whenever one is
/// sent (it wins, and needs no CSRF token); otherwise, on a route that
/// declares it, the console's cookie with its origin and CSRF checks;
/// otherwise what [`http::principal`] finds. A cookie never authenticates
/// a route that does not declare it. A cookie whose session is over (ended,
/// idle, revoked, or no console session at all) is refused in the
/// document's words and cleared in the same answer.
async fn authenticate(
    app: &App,
    entry: &Entry,
    method: &Method,
    req: &Req,
    query_tokens: bool,
) -> Result<Option<Principal>, Refused> {
    if entry.console
        && !req.headers.contains_key(::http::header::AUTHORIZATION)
        && let Some(token) = console::cookie(req)
    {
        return match console::principal(app, req, method, &token).await {
            Err(Refused::Domain(Error::Unauthenticated)) => {
                let refused = refusal(entry.document, &Asked::of(req), &Error::Unauthenticated);
                Err(console::clear_cookie(req, refused).into())
            }
            other => other.map(Some),
        };
    }
    http::principal(app, req, query_tokens).map_err(Refused::from)
}

fn method_not_allowed<'a>(allowed: impl Iterator<Item = &'a Method>) -> Response<Bytes> {
    let allow: Vec<&str> = allowed.map(Method::as_str).collect();
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
        response.headers_mut().insert(::http::header::ALLOW, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use ::http::StatusCode;

    use super::http::Asked;
    use super::{Document, refusal};
    use crate::domain::external::{FetchError, Provider};
    use crate::domain::{Error, PageError};

    /// One error of every variant (the words functions' exhaustive
    /// matches keep this list honest when a variant is added: each
    /// document must then say it, and it belongs here).
    fn every_error() -> Vec<Error> {
        vec![
            Error::InvalidCredentials,
            Error::Locked { retry_after: 7 },
            Error::Disabled,
            Error::RateLimited { retry_after: 7 },
            Error::Busy { retry_after: 7 },
            Error::Unauthenticated,
            Error::InvalidRefresh,
            Error::Forbidden,
            Error::ReauthRequired,
            Error::NotFound("user"),
            Error::invalid("name", "name must be 1 to 100 characters"),
            Error::Conflict("taken".into()),
            Error::Provider(FetchError::Timeout),
            Error::ProviderDisabled(Provider::Google),
            Error::NoSession,
            Error::NotUtf8("form"),
            Error::Paging(PageError::Cursor),
            Error::Internal("broken".into()),
        ]
    }

    const DOCUMENTS: [Document; 5] = [
        Document::V1,
        Document::ClientLoginRefresh,
        Document::TenantLoginAndS2s,
        Document::TokenAndSocialLogin,
        Document::AccountRolesToken,
    ];

    /// In every document: only our own failures are a 500; exactly the
    /// refusals that pass with time carry `Retry-After` (the seconds the
    /// domain gave); exactly a 401 for a credential carries the challenge;
    /// and every body is JSON.
    #[test]
    fn every_document_says_every_error_by_the_shared_rules() {
        for document in DOCUMENTS {
            for e in every_error() {
                let r = refusal(document, &Asked::made_up(false), &e);
                let what = format!("{document} {e:?}");
                let ours = matches!(e, Error::Internal(_) | Error::Store(_));
                assert_eq!(
                    r.status() == StatusCode::INTERNAL_SERVER_ERROR,
                    ours,
                    "{what}"
                );
                let retry = r.headers().get(::http::header::RETRY_AFTER);
                match e.retry_after() {
                    Some(_) => assert_eq!(retry.map(|v| v.as_bytes()), Some(&b"7"[..]), "{what}"),
                    None => assert!(retry.is_none(), "{what}"),
                }
                let challenged = r.headers().contains_key(::http::header::WWW_AUTHENTICATE);
                assert_eq!(challenged, matches!(e, Error::Unauthenticated), "{what}");
                if challenged {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
                }
                assert!(
                    serde_json::from_slice::<serde_json::Value>(r.body()).is_ok(),
                    "{what}"
                );
            }
        }
    }

    /// Every adapter's source, as compiled.
    const SOURCES: [(&str, &str); 11] = [
        ("console.rs", include_str!("console.rs")),
        ("mod.rs", include_str!("mod.rs")),
        ("http.rs", include_str!("http.rs")),
        ("v1.rs", include_str!("v1.rs")),
        ("admin.rs", include_str!("admin.rs")),
        ("client.rs", include_str!("client.rs")),
        ("tenant.rs", include_str!("tenant.rs")),
        ("token.rs", include_str!("token.rs")),
        ("account.rs", include_str!("account.rs")),
        ("wellknown.rs", include_str!("wellknown.rs")),
        ("openapi.rs", include_str!("openapi.rs")),
    ];

    /// The boundary a workspace split would have the compiler keep (see
    /// ARCHITECTURE.md): adapters see records only as the domain hands
    /// them over, and never open the store. The patterns are built from
    /// parts so this test does not find itself.
    #[test]
    fn adapters_name_nothing_from_the_store() {
        let forbidden = [concat!("crate::", "store"), concat!(".store", "()")];
        for (file, text) in SOURCES {
            for pattern in forbidden {
                assert!(!text.contains(pattern), "src/api/{file} names {pattern}");
            }
        }
    }
}
