//! Health and the published verification keys.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use super::http::{Req, json};
use super::{App, Document, Handled, Route, route};

/// Nothing here refuses in words; the canonical document stands in.
const DOC: Document = Document::V1;

pub fn routes() -> Vec<Route> {
    vec![
        route!(DOC, GET, "/healthz", public healthz),
        route!(DOC, GET, "/readyz", public readyz),
        route!(DOC, GET, "/metrics", public metrics),
        route!(DOC, GET, "/.well-known/jwks.json", public jwks),
    ]
}

/// 200 once the store is open and the listener is up, which is whenever a
/// request can reach this handler; a store that stops answering reads fails
/// the check.
async fn healthz(app: Arc<App>, _req: Req) -> Handled {
    Ok(if app.core.store_answers() {
        json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "unavailable" }),
        )
    })
}

/// 200 when the store commits a write and the signing key signs; else 503
/// naming what failed. Unlike `/healthz`, each call does real work (one
/// empty write transaction, one signature).
async fn readyz(app: Arc<App>, _req: Req) -> Handled {
    let ready = app.core.readiness().await;
    let check = |r: &Result<(), String>| match r {
        Ok(()) => serde_json::json!({ "ok": true }),
        Err(why) => serde_json::json!({ "ok": false, "error": why }),
    };
    let body = serde_json::json!({
        "status": if ready.ready() { "ready" } else { "unavailable" },
        "checks": { "store": check(&ready.store), "signing_key": check(&ready.signing_key) },
    });
    let status = if ready.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json(status, &body))
}

/// The Prometheus metrics, to whom `crate::metrics` admits.
async fn metrics(app: Arc<App>, req: Req) -> Handled {
    Ok(app
        .options
        .metrics
        .answer(&app.core, false, req.ctx.client_ip, &req.headers)
        .await)
}

async fn jwks(app: Arc<App>, _req: Req) -> Handled {
    let mut response = Response::new(Bytes::from(app.core.jwks().to_string()));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Verifiers may cache the key set briefly; a new key is published
    // before it signs anything.
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
