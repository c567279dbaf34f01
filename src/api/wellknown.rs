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
