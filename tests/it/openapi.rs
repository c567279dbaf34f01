//! The OpenAPI document (issue 5): served at `GET /api/v1/openapi.json`,
//! OpenAPI 3.1, and describing exactly the routes the server answers, both
//! ways: every route of the table is in the document, and every operation
//! of the document is answered by a route (not by the router's 404 or 405).

use std::collections::{BTreeMap, BTreeSet};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Resp, Server};

const OPENAPI: &str = "/api/v1/openapi.json";

/// The operation keys of an OpenAPI path item.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One tag per document.
const TAGS: [&str; 7] = [
    "canonical",
    "admin",
    "tenant-login-and-s2s",
    "client-login-refresh",
    "token-and-social-login",
    "account-roles-token",
    "well-known",
];

/// (METHOD, path).
type Op = (String, String);

/// Stands in for every path parameter when probing.
const DUMMY: &str = "probe-x1";

async fn fetch(srv: &Server) -> Value {
    let r = srv.get(OPENAPI).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// (METHOD, path) of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<Op> {
    operations(doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// (METHOD, path, operation) of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut out = Vec::new();
    for (path, item) in paths {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_ascii_uppercase(), path.clone(), op));
            }
        }
    }
    out
}

/// (METHOD, path) of every route in the server's route table.
fn table() -> BTreeSet<Op> {
    latchkey::api::routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect()
}

/// The path with every `{param}` replaced by [`DUMMY`].
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                DUMMY
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Sends one probe: POST and PATCH carry `{}` as JSON.
async fn probe(srv: &Server, method: &str, path: &str, token: Option<&str>) -> Resp {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut call = srv.call(method.clone(), &concrete(path));
    if let Some(t) = token {
        call = call.bearer(t);
    }
    if method == Method::POST || method == Method::PATCH {
        call = call.json(&json!({}));
    }
    call.send().await
}

/// Whether the answer is the router's own: no route for the path (404
/// `{"error":"Not found"}`) or none for the method (405).
fn router_refused(r: &Resp) -> bool {
    let router_404 = r.status == StatusCode::NOT_FOUND
        && serde_json::from_slice::<Value>(&r.body).ok() == Some(json!({ "error": "Not found" }));
    router_404 || r.status == StatusCode::METHOD_NOT_ALLOWED
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    reference
        .strip_prefix('#')
        .filter(|p| p.starts_with("/components/"))
        .and_then(|p| doc.pointer(p))
}

/// The value itself, or what its `$ref` names.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(doc, r).unwrap_or(&Value::Null),
        None => v,
    }
}

fn collect_refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref" {
                    if let Some(r) = child.as_str() {
                        out.push((at.clone(), r));
                    }
                } else {
                    collect_refs(child, format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn document_is_served_as_cacheable_openapi_3_1_json() {
    let srv = Server::start().await;
    let r = srv.get(OPENAPI).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let cache = r.header("cache-control").expect("Cache-Control");
    assert!(
        cache.contains("max-age") && !cache.contains("no-store"),
        "the document holds no secret and may be cached: {cache}"
    );
    assert_eq!(r.text(), latchkey::api::openapi::DOCUMENT);
    let doc = r.json();
    let version = doc["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.1"), "openapi: {version}");
    assert!(doc["info"]["title"].is_string(), "info.title");
    assert!(doc["info"]["version"].is_string(), "info.version");
    assert!(
        doc["components"]["schemas"].is_object(),
        "components.schemas"
    );
    assert!(
        doc["components"]["securitySchemes"]["bearerAuth"].is_object(),
        "components.securitySchemes.bearerAuth"
    );
    // HEAD is answered like every GET route.
    let head = srv.call(Method::HEAD, OPENAPI).send().await;
    assert_eq!(head.status, StatusCode::OK);
}

/// (in the route table but not the document, in the document but not the
/// route table).
fn route_differences(doc: &Value) -> (Vec<Op>, Vec<Op>) {
    let in_doc = documented(doc);
    let in_table = table();
    (
        in_table.difference(&in_doc).cloned().collect(),
        in_doc.difference(&in_table).cloned().collect(),
    )
}

/// The documented operations the server does not answer with a route.
async fn unanswered(srv: &Server, doc: &Value) -> Vec<String> {
    let mut refused = Vec::new();
    for (method, path) in documented(doc) {
        let r = probe(srv, &method, &path, None).await;
        if router_refused(&r) {
            refused.push(format!("{method} {path}: {} {}", r.status, r.text()));
        }
    }
    refused
}

/// The document with one route taken out and two operations that are no
/// route put in: one on a path nobody serves, one with a method a real
/// path does not take.
fn drifted(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let paths = doc["paths"].as_object_mut().expect("paths");
    paths.remove("/healthz");
    paths.insert(
        "/api/v1/nope".into(),
        json!({ "get": { "responses": { "200": { "description": "no" } } } }),
    );
    paths["/.well-known/jwks.json"]["delete"] =
        json!({ "responses": { "204": { "description": "no" } } });
    doc
}

#[tokio::test]
async fn document_lists_exactly_the_routes_of_the_route_table() {
    let srv = Server::start().await;
    let doc = fetch(&srv).await;
    let (undocumented, unrouted) = route_differences(&doc);
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes the server answers that the document lacks: {undocumented:?}\n\
         operations in the document that are no route: {unrouted:?}"
    );
    assert_eq!(
        table().len(),
        latchkey::api::routes().len(),
        "a route is in the table twice"
    );
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_a_route() {
    let srv = Server::start().await;
    let doc = fetch(&srv).await;
    assert!(
        documented(&doc).len() >= 40,
        "only {} operations documented",
        documented(&doc).len()
    );
    let refused = unanswered(&srv, &doc).await;
    assert!(
        refused.is_empty(),
        "documented but the router has no such route:\n{}",
        refused.join("\n")
    );
}

/// The two checks above fail on a document that drifted from the route
/// table, in each direction.
#[tokio::test]
async fn the_checks_catch_a_drifted_document() {
    let srv = Server::start().await;
    let doc = drifted(&fetch(&srv).await);
    let (undocumented, unrouted) = route_differences(&doc);
    assert_eq!(undocumented, [("GET".to_string(), "/healthz".to_string())]);
    assert_eq!(
        unrouted,
        [
            ("DELETE".to_string(), "/.well-known/jwks.json".to_string()),
            ("GET".to_string(), "/api/v1/nope".to_string()),
        ]
    );
    let refused = unanswered(&srv, &doc).await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0].starts_with("DELETE /.well-known/jwks.json: 405"),
        "{refused:?}"
    );
    assert!(
        refused[1].starts_with("GET /api/v1/nope: 404"),
        "{refused:?}"
    );
}

/// What the probes get, signed out and as the admin, is among the answers
/// the document gives for that operation.
#[tokio::test]
async fn probe_answers_are_documented_responses() {
    let srv = Server::start().await;
    let doc = fetch(&srv).await;
    let admin = srv.admin_token().await;
    // Logging out ends the admin's session, so those go last.
    let mut ops = operations(&doc);
    ops.sort_by_key(|(_, path, _)| path.ends_with("/logout"));
    let mut undocumented = Vec::new();
    for (method, path, op) in &ops {
        for token in [None, Some(admin.as_str())] {
            let r = probe(&srv, method, path, token).await;
            let who = if token.is_some() { "admin" } else { "no token" };
            let code = r.status.as_u16().to_string();
            let Some(response) = op["responses"].get(&code) else {
                undocumented.push(format!(
                    "{method} {path} ({who}): {} {}",
                    r.status,
                    r.text()
                ));
                continue;
            };
            // The headers that tell a client what to do next are documented
            // where they are sent.
            let headers = deref(&doc, response)["headers"].as_object();
            for name in ["retry-after", "www-authenticate"] {
                let documented =
                    headers.is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)));
                if r.header(name).is_some() && !documented {
                    undocumented.push(format!(
                        "{method} {path} ({who}): {} sends {name}, not documented",
                        r.status
                    ));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "answers the document does not list:\n{}",
        undocumented.join("\n")
    );
}

#[tokio::test]
async fn probe_tells_a_missing_route_from_a_handler_answer() {
    let srv = Server::start().await;
    // No such path: the router's own 404.
    let r = probe(&srv, "GET", "/api/v1/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({ "error": "Not found" }));
    assert!(router_refused(&r));
    // A path with a parameter that matches nothing either.
    let r = probe(&srv, "POST", "/api/v1/admin/users/{id}/nope", None).await;
    assert!(router_refused(&r), "{} {}", r.status, r.text());
    // A route, but not for this method: 405.
    let r = probe(&srv, "POST", OPENAPI, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(router_refused(&r));
    // A handler's own 404 is not the router's.
    let admin = srv.admin_token().await;
    let r = probe(&srv, "GET", "/api/v1/admin/users/{id}", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(!router_refused(&r), "{}", r.text());
    // And a handler's 401 for a route that exists.
    let r = probe(&srv, "GET", "/api/v1/admin/users", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!router_refused(&r));
}

#[test]
fn every_reference_resolves_and_every_operation_is_complete() {
    let doc: Value = serde_json::from_str(latchkey::api::openapi::DOCUMENT).expect("JSON");
    let mut problems = Vec::new();

    let mut refs = Vec::new();
    collect_refs(&doc, String::new(), &mut refs);
    assert!(!refs.is_empty(), "the document reuses components");
    for (at, r) in &refs {
        if resolve(&doc, r).is_none() {
            problems.push(format!("{at}: $ref {r} resolves to nothing"));
        }
    }

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    let declared_tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(declared_tags, TAGS.into_iter().collect());
    let mut used_tags = BTreeSet::new();
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();

    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        match op["responses"].as_object() {
            Some(r) if !r.is_empty() => {
                for (code, response) in r {
                    let response = deref(&doc, response);
                    if response["description"].as_str().is_none() {
                        problems.push(format!("{name}: response {code} has no description"));
                    }
                }
            }
            _ => problems.push(format!("{name}: no response documented")),
        }
        match op["tags"].as_array().map(Vec::as_slice) {
            Some([tag]) if tag.as_str().is_some_and(|t| TAGS.contains(&t)) => {
                used_tags.insert(tag.as_str().unwrap_or_default());
            }
            other => problems.push(format!("{name}: tags {other:?}, want one of {TAGS:?}")),
        }
        match op["operationId"].as_str() {
            Some(id) => {
                if let Some(first) = ids.insert(id, name.clone()) {
                    problems.push(format!("{name}: operationId {id} also names {first}"));
                }
            }
            None => problems.push(format!("{name}: no operationId")),
        }
        match op["security"].as_array() {
            Some(reqs) => {
                for req in reqs {
                    for scheme in req.as_object().into_iter().flatten().map(|(k, _)| k) {
                        if !schemes.contains_key(scheme) {
                            problems.push(format!("{name}: unknown security scheme {scheme}"));
                        }
                    }
                }
            }
            None => problems.push(format!("{name}: security not stated")),
        }
        // Path parameters: the template's and the declared ones agree.
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = doc["paths"][path.as_str()]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(op["parameters"].as_array().into_iter().flatten())
            .map(|p| deref(&doc, p))
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        if in_template != declared {
            problems.push(format!(
                "{name}: path parameters {in_template:?}, declared {declared:?}"
            ));
        }
        if (method == "POST" || method == "PATCH") && op.get("requestBody").is_some() {
            let content = deref(&doc, &op["requestBody"])["content"].as_object();
            if !content.is_some_and(|c| c.contains_key("application/json")) {
                problems.push(format!("{name}: request body without application/json"));
            }
        }
    }
    let unused: Vec<_> = declared_tags.difference(&used_tags).collect();
    if !unused.is_empty() {
        problems.push(format!("tags no operation uses: {unused:?}"));
    }
    // The form-encoded body of the token-and-social-login document.
    if doc["paths"]["/api/auth/token"]["post"]["requestBody"]["content"]
        ["application/x-www-form-urlencoded"]
        .is_null()
    {
        problems.push("POST /api/auth/token: form body not documented".into());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The document read by an OpenAPI 3.1 parser (the `oas3` crate), with every
/// reference it holds followed by that parser.
#[test]
fn document_parses_as_openapi_3_1() {
    use oas3::spec::ObjectOrReference;

    let spec = oas3::from_json(latchkey::api::openapi::DOCUMENT).expect("an OpenAPI 3.1 document");
    let version = spec.validate_version().expect("a 3.1 version");
    assert_eq!((version.major, version.minor), (3, 1));
    // The parser is not a rubber stamp: a 3.0 version and a parameter
    // without `in` are refused.
    let mut other: Value = serde_json::from_str(latchkey::api::openapi::DOCUMENT).expect("JSON");
    other["openapi"] = json!("3.0.3");
    let parsed = oas3::from_json(other.to_string()).expect("still parses");
    assert!(parsed.validate_version().is_err(), "3.0.3 accepted as 3.1");
    other["components"]["parameters"]["Limit"]
        .as_object_mut()
        .expect("Limit")
        .remove("in");
    assert!(
        oas3::from_json(other.to_string()).is_err(),
        "a parameter without `in` accepted"
    );
    let mut problems = Vec::new();
    let check_schema = |schema: &oas3::spec::Schema, at: &str, problems: &mut Vec<String>| {
        if let Err(e) = schema.resolve(&spec) {
            problems.push(format!("{at}: {e}"));
        }
    };

    let ops: Vec<_> = spec.operations().collect();
    assert_eq!(ops.len(), latchkey::api::routes().len());
    for (path, method, op) in &ops {
        let name = format!("{method} {path}");
        match op.request_body(&spec) {
            Ok(Some(body)) => {
                for (media, m) in &body.content {
                    match &m.schema {
                        Some(s) => check_schema(s, &format!("{name} body {media}"), &mut problems),
                        None => problems.push(format!("{name} body {media}: no schema")),
                    }
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(format!("{name} body: {e}")),
        }
        for p in &op.parameters {
            if let Err(e) = p.resolve(&spec) {
                problems.push(format!("{name} parameter: {e}"));
            }
        }
        let responses = op.responses.as_ref().map(|r| r.iter().count()).unwrap_or(0);
        if responses == 0 {
            problems.push(format!("{name}: no responses"));
        }
        for (code, r) in op.responses.iter().flatten() {
            match r.resolve(&spec) {
                Ok(response) => {
                    for (media, m) in &response.content {
                        if let Some(s) = &m.schema {
                            check_schema(s, &format!("{name} {code} {media}"), &mut problems);
                        }
                    }
                    for (h, header) in &response.headers {
                        if let Err(e) = header.resolve(&spec) {
                            problems.push(format!("{name} {code} header {h}: {e}"));
                        }
                    }
                }
                Err(e) => problems.push(format!("{name} {code}: {e}")),
            }
        }
    }
    for (path, item) in spec.paths.iter().flatten() {
        for p in &item.parameters {
            if let Err(e) = p.resolve(&spec) {
                problems.push(format!("{path} parameter: {e}"));
            }
        }
    }
    let components = spec.components.as_ref().expect("components");
    for (name, schema) in &components.schemas {
        check_schema(schema, &format!("schema {name}"), &mut problems);
    }
    for (name, scheme) in &components.security_schemes {
        if let ObjectOrReference::Ref { ref_path, .. } = scheme {
            problems.push(format!("security scheme {name} is a $ref to {ref_path}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
