//! The HTTP API: one thin adapter per published document, plus the
//! canonical and admin APIs. Each adapter parses its document's requests,
//! calls the domain, and shapes the answer in its document's words; no
//! adapter decides anything about credentials.
//!
//! [`routes`] is the whole route table. The router is built from it, and
//! the OpenAPI test checks the published document against it.

// Handlers return early with a ready response as their error value; a
// response is a few hundred bytes on the stack once per request, and boxing
// it would cost an allocation for nothing.
#![allow(clippy::result_large_err)]

pub mod account;
pub mod admin;
pub mod client;
pub mod http;
pub mod openapi;
pub mod tenant;
pub mod token;
pub mod v1;
pub mod wellknown;

use std::collections::BTreeMap;
use std::sync::Arc;

use ::http::{HeaderValue, Method, Request, Response, StatusCode};
use bytes::Bytes;

use self::http::{Req, error};
use crate::domain::Core;
use crate::server::{Handler, RequestContext, ResponseFuture};

/// A route's handler.
pub type HandlerFn = fn(Arc<App>, Req) -> ResponseFuture;

/// One entry of the route table.
pub struct Route {
    pub method: Method,
    /// matchit syntax: `/api/v1/auth/keys/{keyId}`.
    pub path: &'static str,
    pub handler: HandlerFn,
}

macro_rules! route {
    ($method:ident, $path:expr, $handler:path) => {
        $crate::api::Route {
            method: ::http::Method::$method,
            path: $path,
            handler: |app, req| Box::pin($handler(app, req)),
        }
    };
}
pub(crate) use route;

/// Every route the server answers.
pub fn routes() -> Vec<Route> {
    let mut all = Vec::new();
    all.extend(wellknown::routes());
    all.extend(v1::routes());
    all.extend(admin::routes());
    all.extend(tenant::routes());
    all.extend(client::routes());
    all.extend(token::routes());
    all.extend(account::routes());
    all.extend(openapi::routes());
    all
}

/// Settings the adapters need.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Accept opaque tokens in a `token` query parameter.
    pub token_query_param: bool,
    /// The metrics registry, for `/metrics` and request latencies.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What handlers share.
pub struct App {
    /// The domain.
    pub core: Arc<Core>,
    /// Adapter settings.
    pub options: ApiOptions,
    /// Path -> method -> handler.
    router: matchit::Router<BTreeMap<Method, HandlerFn>>,
}

impl App {
    pub fn new(core: Arc<Core>, options: ApiOptions) -> Result<Arc<App>, String> {
        let mut by_path: BTreeMap<&'static str, BTreeMap<Method, HandlerFn>> = BTreeMap::new();
        for r in routes() {
            if by_path
                .entry(r.path)
                .or_default()
                .insert(r.method.clone(), r.handler)
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
        Ok(Arc::new(App {
            core,
            options,
            router,
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
        let found = match app.router.at(parts.uri.path()) {
            Ok(matched) => {
                let params: Vec<(String, String)> = matched
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let handler = matched.value.get(&parts.method).copied().or_else(|| {
                    // HEAD is GET without the body.
                    (parts.method == Method::HEAD)
                        .then(|| matched.value.get(&Method::GET).copied())
                        .flatten()
                });
                match handler {
                    Some(h) => Ok((h, params)),
                    None => Err(method_not_allowed(matched.value.keys())),
                }
            }
            Err(_) => Err(error(StatusCode::NOT_FOUND, "Not found")),
        };
        match found {
            Ok((handler, params)) => {
                let req = Req {
                    method: parts.method,
                    uri: parts.uri,
                    headers: parts.headers,
                    body,
                    params,
                    ctx,
                };
                handler(app, req)
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

fn method_not_allowed<'a>(allowed: impl Iterator<Item = &'a Method>) -> Response<Bytes> {
    let allow: Vec<&str> = allowed.map(Method::as_str).collect();
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
        response.headers_mut().insert(::http::header::ALLOW, v);
    }
    response
}
