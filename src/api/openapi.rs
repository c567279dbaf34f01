//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document that describes
//! every route of every document. It is a static file, `openapi.json`
//! beside this one, compiled into the binary; `tests/it/openapi.rs` checks
//! it against [`super::routes`] both ways.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};

use super::http::Req;
use super::{App, Document, Handled, Route, route};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub fn routes() -> Vec<Route> {
    vec![route!(Document::V1, GET, "/api/v1/openapi.json", public document)]
}

/// The document holds no secret and changes only with the binary, so
/// unlike the rest of the API it may be cached.
async fn document(_app: Arc<App>, _req: Req) -> Handled {
    let mut response = Response::new(Bytes::from_static(DOCUMENT.as_bytes()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
