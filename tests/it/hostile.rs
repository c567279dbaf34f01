//! Hostile input on every route (issue 14). The route table
//! (`latchkey::api::routes()`) and the console's file catalogue are
//! enumerated, so a route is covered the day it is added; every method is
//! tried on every path, including methods the path does not have, with
//! every class of hostile request: malformed, truncated and non-object
//! JSON, wrong types, missing, extra and duplicate fields, huge numbers,
//! deep nesting, bodies and headers over their limits, bytes that are not
//! UTF-8, NUL bytes, wrong and missing content types, a query string
//! that is not UTF-8, hostile cookies and bearer tokens, and (one class)
//! the same over HTTP/2; each parameterised path is tried again with
//! hostile parameters. The fields each body names come from the served
//! OpenAPI document, which a test holds equal to the route table.
//!
//! What every answer must be: a 4xx (never a 5xx), and for any refusal a
//! JSON body in the shape of the route's document; no credential in it; a
//! route that never reads a body may answer as it answers the same request
//! without one. Afterwards the store holds exactly what it held before
//! (every account, tenant, role, key, session and S2S token as the admin
//! API lists them, and the audit log's length), no password was hashed,
//! and the server answers an ordinary request.
//!
//! The other tests here: look-alike identifiers (the rule is in
//! [`look_alike_usernames_neither_sign_in_nor_make_a_second_account`]),
//! escapes in the console's asset paths, and clients that trickle their
//! headers or body a byte at a time.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use latchkey::api::Document;
use latchkey::config::Layer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// An id of the right form that names nothing, for every `{param}` that
/// is not the provider: the destructive routes (delete a user, end its
/// sessions) then have nothing to act on, whatever a handler does with a
/// body it ignores.
const NOBODY: &str = "7d0f2a4e-0000-4000-8000-000000000001";

/// Every method a client could send; most paths have one or two.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Requests in flight at once: enough to keep both cores busy, far below
/// the per-address connection cap.
const IN_FLIGHT: usize = 8;

/// A route table path with its parameters filled in.
fn concrete(path: &str) -> String {
    with_params(path, None)
}

/// A route table path with every parameter `value`, or (with `None`) one
/// that names nothing.
fn with_params(path: &str, value: Option<&str>) -> String {
    path.split('/')
        .map(|seg| match (seg, value) {
            (s, Some(v)) if s.starts_with('{') => v,
            ("{provider}", None) => "google",
            (s, None) if s.starts_with('{') => NOBODY,
            (s, _) => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Hostile route parameters: escapes of bytes that are not UTF-8 or are
/// NUL, a dot-dot (raw and escaped), a fullwidth name escaped as UTF-8,
/// and one far longer than any id.
const PARAMS: [&str; 6] = [
    "%FF%FE",
    "a%00b",
    "..",
    "%2e%2e%2f%2e%2e",
    "%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E",
    "",
];

/// A JSON body's declared fields (name and JSON type) and which are
/// required, from the OpenAPI operation, when it declares a body.
struct BodySchema {
    /// Each property and its type (the first that is not `null`).
    fields: Vec<(String, String)>,
    /// Whether some field is required, so that `{}` is not a request.
    has_required: bool,
}

fn body_schema(doc: &Value, path: &str, method: &Method) -> Option<BodySchema> {
    let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
    let content = op["requestBody"]["content"].as_object()?;
    let mut schema = content
        .get("application/json")
        .or_else(|| content.values().next())?["schema"]
        .clone();
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap_or_default();
        schema = doc["components"]["schemas"][name].clone();
    }
    let fields = schema["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| {
                    let kind = match &p["type"] {
                        Value::String(t) => t.clone(),
                        Value::Array(ts) => ts
                            .iter()
                            .filter_map(Value::as_str)
                            .find(|t| *t != "null")
                            .unwrap_or("any")
                            .to_string(),
                        _ => "any".to_string(),
                    };
                    (name.clone(), kind)
                })
                .collect()
        })
        .unwrap_or_default();
    let has_required = schema["required"].as_array().is_some_and(|r| !r.is_empty());
    Some(BodySchema {
        fields,
        has_required,
    })
}

/// A value of another type than `kind`.
fn wrong_value(kind: &str) -> Value {
    match kind {
        "string" => json!(12),
        "integer" | "number" => json!("12"),
        "boolean" => json!("true"),
        "array" => json!({ "a": 1 }),
        "object" => json!([1]),
        _ => json!([[]]),
    }
}

/// One hostile request, as sent to any path and method.
#[derive(Clone)]
struct Case {
    /// What it tries, for the failure message.
    class: &'static str,
    /// The `Content-Type` sent, if any.
    content_type: Option<&'static str>,
    /// The body's bytes.
    body: Bytes,
    /// A query string appended to the path.
    query: &'static str,
    /// An extra header, if any.
    header: Option<(&'static str, String)>,
    /// Whether only the transport can answer it (a head over its limit),
    /// whose refusal hyper words itself, before any route exists.
    transport: bool,
    /// Whether it goes over cleartext HTTP/2 rather than HTTP/1.1.
    http2: bool,
    /// Whether it is sent without the admin's key, its own credential
    /// (a cookie, a header) being what is hostile.
    anonymous: bool,
}

impl Case {
    fn json(class: &'static str, body: impl Into<Bytes>) -> Case {
        Case {
            class,
            content_type: Some("application/json"),
            body: body.into(),
            query: "",
            header: None,
            transport: false,
            http2: false,
            anonymous: false,
        }
    }
}

/// Every hostile request for a route whose body (if it has one) declares
/// `schema`'s fields.
fn cases(schema: Option<&BodySchema>) -> Vec<Case> {
    let generic = [
        ("username".to_string(), "string".to_string()),
        ("password".to_string(), "string".to_string()),
    ];
    let fields: &[(String, String)] = match schema {
        Some(s) if !s.fields.is_empty() => &s.fields,
        _ => &generic,
    };
    let first = &fields[0].0;
    let each = |value: &dyn Fn(&str) -> Value| -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(name, kind)| (name.clone(), value(kind)))
                .collect(),
        )
    };
    // Every string field but a password carries a NUL. A password may
    // hold any character, so a NUL in one is a real (wrong) password that
    // is rightly checked, hashed and audited; it gets a wrong type here.
    let with_nul = Value::Object(
        fields
            .iter()
            .map(|(name, kind)| {
                let value = match kind.as_str() {
                    _ if name.contains("password") => wrong_value(kind),
                    "string" | "any" => json!("a long enough\u{0}value"),
                    other => wrong_value(other),
                };
                (name.clone(), value)
            })
            .collect(),
    );
    let strings: Vec<String> = fields
        .iter()
        .map(|(name, _)| format!("\"{name}\":\"a long enough value\""))
        .collect();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut all = vec![
        Case::json("truncated JSON", format!("{{\"{first}\":\"adm")),
        Case::json("malformed JSON", format!("{{\"{first}\" \"x\"}}")),
        Case::json("malformed JSON (bare word)", "nul"),
        Case::json("an array, not an object", format!("[\"{first}\"]")),
        Case::json("a string, not an object", "\"admin\""),
        Case::json("a number, not an object", "42"),
        Case::json("wrong types", each(&wrong_value).to_string()),
        Case::json(
            "an unknown field beside wrong types",
            {
                let mut v = each(&wrong_value);
                v["zz_not_a_field"] = json!("x");
                v
            }
            .to_string(),
        ),
        Case::json(
            "a field given twice",
            format!(
                "{{\"{first}\":\"a long enough value\",{}}}",
                strings.join(",")
            ),
        ),
        Case::json(
            "huge numbers",
            each(&|_| json!(1)).to_string().replace('1', "1e999999"),
        ),
        Case::json(
            "numbers past u64",
            each(&|_| json!(1))
                .to_string()
                .replace('1', "123456789012345678901234567890"),
        ),
        Case::json("10,000 levels of nesting", deep.clone()),
        Case::json(
            "10,000 levels in a field",
            format!("{{\"{first}\":{deep}}}"),
        ),
        Case::json("invalid UTF-8", {
            let mut b = format!("{{\"{first}\":\"").into_bytes();
            b.extend_from_slice(b"\xff\xfe\xc0\xaf");
            b.extend_from_slice(b"\"}");
            b
        }),
        Case::json("a raw NUL byte", format!("{{\"{first}\":\"a\0b\"}}")),
        Case::json("escaped NUL in every string", with_nul.to_string()),
        Case {
            content_type: Some("text/plain"),
            ..Case::json("text/plain", each(&wrong_value).to_string())
        },
        Case {
            content_type: None,
            ..Case::json("no content type", each(&wrong_value).to_string())
        },
        Case {
            content_type: Some("multipart/form-data; boundary=x"),
            ..Case::json("multipart", "--x\r\n\r\n--x--")
        },
        Case {
            content_type: Some("application/x-www-form-urlencoded"),
            ..Case::json("a JSON body declared as a form", with_nul.to_string())
        },
        Case {
            query: "?limit=%FF&cursor=%C0%AF&token=%FE",
            ..Case::json(
                "a query string that is not UTF-8",
                each(&wrong_value).to_string(),
            )
        },
        Case::json(
            "a body over the limit",
            format!("{{\"{first}\":\"{}\"}}", "x".repeat(70 * 1024)),
        ),
        Case {
            header: Some(("x-padding", "a".repeat(20 * 1024))),
            transport: true,
            ..Case::json("a header over the limit", "{}")
        },
    ];
    // A credential of its own that is hostile: console cookies that are
    // huge, repeated or malformed, and bearer tokens that are too long or
    // shaped like a token without being one.
    for (class, name, value) in [
        (
            "a 6 KB console cookie",
            "cookie",
            format!("latchkey_console=lk_ot_{}", "A".repeat(6000)),
        ),
        (
            "console cookies given twice",
            "cookie",
            "latchkey_console=a; latchkey_console=b; __Host-latchkey_console=c".to_string(),
        ),
        (
            "a malformed cookie header",
            "cookie",
            "=;;=; latchkey_console".to_string(),
        ),
        (
            "a 10 KB bearer token",
            "authorization",
            format!("Bearer {}", "A".repeat(10_000)),
        ),
        (
            "a bearer shaped like a JWT",
            "authorization",
            "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA".to_string(),
        ),
        (
            "a bearer shaped like an API key",
            "authorization",
            format!("Bearer sk_live_{NOBODY}_{}", "0".repeat(43)),
        ),
    ] {
        all.push(Case {
            header: Some((name, value)),
            anonymous: true,
            ..Case::json(class, each(&wrong_value).to_string())
        });
    }
    // The same over HTTP/2, whose framing and body limits are hyper's
    // other code path.
    let wrong = all
        .iter()
        .find(|c| c.class == "wrong types")
        .cloned()
        .map(|c| Case {
            class: "wrong types over HTTP/2",
            http2: true,
            ..c
        });
    all.extend(wrong);
    // `{}` and an unknown field alone are hostile only where a field is
    // required; where every field is optional they are a request.
    if schema.is_none_or(|s| s.has_required) {
        all.push(Case::json("missing fields", "{}"));
        all.push(Case::json(
            "only an unknown field",
            r#"{"zz_not_a_field":1}"#,
        ));
    }
    all
}

/// Text no answer to a hostile request may contain: a token's form, or the
/// run's own secrets.
fn leaks(body: &str, secrets: &[&str]) -> Option<String> {
    for pattern in ["lk_rt_", "lk_ot_", "eyJhbGci", "s2s_"] {
        if body.contains(pattern) {
            return Some(pattern.to_string());
        }
    }
    secrets
        .iter()
        .find(|s| body.contains(**s))
        .map(|s| format!("a secret ({} bytes)", s.len()))
}

/// Whether a refusal's body is in its document's shape: `{"detail"}` for
/// the tenant document, a bare JSON string for the account document,
/// `{"error", "message"}` for the client document, `{"error"}` for the
/// canonical, admin and token documents; the router's and the
/// transport's own refusals (no such method here, a body over the limit)
/// and the console's are `{"error"}` everywhere.
fn document_shaped(document: Option<Document>, body: &Value) -> bool {
    let has = |k: &str| body.get(k).is_some_and(Value::is_string);
    match document {
        Some(Document::TenantLoginAndS2s) => has("detail"),
        Some(Document::AccountRolesToken) => body.is_string(),
        Some(Document::ClientLoginRefresh) => has("error") && has("message"),
        _ => has("error"),
    }
}

/// What the store holds, as the admin API shows it: every list in full,
/// and the audit log's length.
async fn fingerprint(srv: &Server, key: &str, admin_id: &str) -> Value {
    let mut print = serde_json::Map::new();
    for list in [
        "/api/v1/admin/users?limit=1000",
        "/api/v1/admin/resellers?limit=1000",
        "/api/v1/admin/merchants?limit=1000",
        "/api/v1/admin/roles?limit=1000",
        "/api/v1/admin/s2s-tokens?limit=1000",
        &format!("/api/v1/admin/users/{admin_id}/sessions?limit=1000"),
        &format!("/api/v1/admin/users/{admin_id}/keys?limit=1000"),
    ] {
        print.insert(list.to_string(), json!(srv.all_pages(key, list).await));
    }
    let audit = srv.all_pages(key, "/api/v1/admin/audit?limit=1000").await;
    // Rotating the signing keys reads no body, so a hostile body there is
    // ignored and the rotation happens as it does without one: that route
    // changes the store by design (its own tests hold what it does).
    let events: Vec<&Value> = audit
        .iter()
        .filter(|e| e["event"] != "signing_key_rotated")
        .collect();
    print.insert("audit entries".into(), json!(events));
    Value::Object(print)
}

/// One path of the matrix: its concrete form, the route table's
/// methods on it, and whether it needs a credential.
struct Target {
    /// As the table writes it (the OpenAPI key).
    pattern: String,
    /// With its parameters filled in.
    path: String,
    /// Method -> document, for the methods the table has here.
    methods: Vec<(Method, Document)>,
    /// Whether any route here needs a principal (then the admin's key
    /// is sent, so the body reaches the body parser).
    needs_principal: bool,
    /// Whether this is a route's path with hostile parameters, which is
    /// sent one body class only.
    variant: bool,
}

/// An admin API key for `srv`'s first admin, already used once (its
/// first use is audited), and the admin's id.
async fn admin_key(srv: &Server) -> (String, String) {
    let token = srv.admin_token().await;
    let r = srv
        .post_as(&token, KEYS, &json!({ "name": "hostile" }))
        .await
        .assert(StatusCode::CREATED);
    let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();
    let me = srv.me(&key).await.assert(StatusCode::OK).json();
    let id = me["id"].as_str().expect("id").to_string();
    srv.settle().await;
    (key, id)
}

#[tokio::test]
async fn every_route_and_method_refuses_hostile_input_cleanly() {
    let srv = Server::start_with(Layer {
        rate_login_per_ip: Some(100_000),
        rate_login_per_account: Some(100_000),
        ..Layer::default()
    })
    .await;
    let (key, admin_id) = admin_key(&srv).await;
    let doc = srv
        .get("/api/v1/openapi.json")
        .send()
        .await
        .assert(StatusCode::OK)
        .json();

    let mut targets: Vec<Target> = Vec::new();
    for route in latchkey::api::routes() {
        let path = concrete(route.path);
        let at = match targets.iter().position(|t| t.path == path) {
            Some(i) => i,
            None => {
                targets.push(Target {
                    pattern: route.path.to_string(),
                    path,
                    methods: Vec::new(),
                    needs_principal: false,
                    variant: false,
                });
                targets.len() - 1
            }
        };
        let t = &mut targets[at];
        t.methods.push((route.method.clone(), route.document));
        t.needs_principal |= route.needs_principal();
    }
    // Each parameterised path again with hostile parameters, sent one
    // body class each (the parameter is what is under test).
    let long = "x".repeat(5000);
    let mut variants = Vec::new();
    for t in targets.iter().filter(|t| t.pattern.contains('{')) {
        for value in PARAMS
            .iter()
            .map(|v| if v.is_empty() { long.as_str() } else { v })
        {
            variants.push(Target {
                pattern: t.pattern.clone(),
                path: with_params(&t.pattern, Some(value)),
                methods: t.methods.clone(),
                needs_principal: t.needs_principal,
                variant: true,
            });
        }
    }
    targets.extend(variants);
    let catalogue = latchkey::console::Catalogue::build().expect("catalogue");
    for path in catalogue.paths().chain(["/admin"]) {
        targets.push(Target {
            pattern: path.to_string(),
            path: path.to_string(),
            methods: vec![],
            needs_principal: false,
            variant: false,
        });
    }

    let before = fingerprint(&srv, &key, &admin_id).await;
    let hashes = srv.running().hash_verifications();

    // What each path and method answers with no body at all, for the
    // routes that read none: a hostile body must change nothing there.
    let mut jobs = Vec::new();
    for t in &targets {
        for m in METHODS {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            let on_route = t
                .methods
                .iter()
                .find(|(rm, _)| *rm == method || (method == Method::HEAD && *rm == Method::GET));
            let schema = on_route.and_then(|(rm, _)| body_schema(&doc, &t.pattern, rm));
            let baseline = if schema.is_none() {
                let mut call = srv.call(method.clone(), &t.path);
                if t.needs_principal {
                    call = call.bearer(&key);
                }
                Some(call.send().await.status)
            } else {
                None
            };
            let mut all = cases(schema.as_ref());
            if t.variant {
                all.retain(|c| c.class.starts_with("wrong types"));
            }
            for case in all {
                jobs.push(Job {
                    method: method.clone(),
                    path: t.path.clone(),
                    document: on_route.map(|(_, d)| *d),
                    takes_body: schema.is_some(),
                    baseline,
                    bearer: t.needs_principal.then(|| key.clone()),
                    case,
                });
            }
        }
    }
    let total = jobs.len();
    eprintln!("hostile: {total} requests over {} paths", targets.len());
    let problems = run_jobs(&srv, jobs, &[&key, ADMIN_PASSWORD]).await;
    assert!(
        problems.is_empty(),
        "{} of {total} hostile requests were answered wrongly:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Nothing was written, nothing hashed, and the server still answers.
    assert_eq!(
        srv.running().hash_verifications(),
        hashes,
        "a password was hashed"
    );
    srv.settle().await;
    assert_eq!(fingerprint(&srv, &key, &admin_id).await, before);
    srv.me(&key).await.assert(StatusCode::OK);
    srv.try_login(ADMIN, ADMIN_PASSWORD)
        .await
        .assert(StatusCode::OK);
}

/// One request of the matrix and what its answer is held to.
struct Job {
    /// The method sent.
    method: Method,
    /// The concrete path sent (a case's query string is added to it).
    path: String,
    /// The route's document, when the table has this method here.
    document: Option<Document>,
    /// Whether the route reads a body.
    takes_body: bool,
    /// Its answer without a body, for a route that reads none.
    baseline: Option<StatusCode>,
    /// The credential to send.
    bearer: Option<String>,
    /// What is hostile about it.
    case: Case,
}

/// Sends every job, [`IN_FLIGHT`] at a time, and returns a line for each
/// answer that breaks a rule.
async fn run_jobs(srv: &Server, jobs: Vec<Job>, secrets: &[&str]) -> Vec<String> {
    let secrets: Arc<Vec<String>> = Arc::new(secrets.iter().map(|s| s.to_string()).collect());
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        let mut call = srv.call(
            job.method.clone(),
            &format!("{}{}", job.path, job.case.query),
        );
        if let Some(ct) = job.case.content_type {
            call = call.header("content-type", ct);
        }
        if let Some((name, value)) = &job.case.header {
            call = call.header(name, value);
        }
        if let Some(b) = job.bearer.as_ref().filter(|_| !job.case.anonymous) {
            call = call.bearer(b);
        }
        let mut call = call.raw_body(job.case.body.clone());
        if job.case.http2 {
            call = call.http2();
        }
        let permit = gate.clone().acquire_owned().await.expect("gate");
        let secrets = secrets.clone();
        set.spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(20), call.send()).await;
            drop(permit);
            let what = format!("{} {} [{}]", job.method, job.path, job.case.class);
            let Ok(r) = r else {
                return Some(format!("{what}: no answer within 20 s"));
            };
            judge(&job, &r, &secrets).map(|p| format!("{what}: {p}"))
        });
    }
    let mut problems = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Some(p) = done.expect("task") {
            problems.push(p);
        }
    }
    problems.sort();
    problems
}

/// What is wrong with `r` as the answer to `job`, if anything.
fn judge(job: &Job, r: &Resp, secrets: &[String]) -> Option<String> {
    let status = r.status;
    let shown = || {
        format!(
            "{status} {}",
            r.text().chars().take(200).collect::<String>()
        )
    };
    if status.is_server_error() {
        return Some(format!("a server error: {}", shown()));
    }
    // The run's own secrets never come back; a token's form may only in a
    // document that reads no body and answers as it does without one
    // (the OpenAPI document's examples).
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let as_without_body = status.is_success() && job.baseline == Some(status);
    let text = r.text();
    if let Some(what) = leaks(&text, &secrets)
        && (!as_without_body || secrets.iter().any(|s| text.contains(s)))
    {
        return Some(format!("{what} in the answer: {}", shown()));
    }
    if job.case.transport {
        // hyper refuses an oversized head before any request exists, with
        // its own empty body (tests/it/transport.rs holds that).
        return (status != StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .then(|| format!("not 431: {}", shown()));
    }
    if !status.is_client_error() {
        // Only a route that reads no body may ignore one, and then it
        // answers as it does without one.
        let ignored = !job.takes_body && job.baseline == Some(status);
        let over_limit = job.case.class == "a body over the limit";
        return (!ignored || over_limit).then(|| format!("not refused: {}", shown()));
    }
    if r.header("content-type") != Some("application/json") {
        return Some(format!(
            "refused without a JSON content type ({:?}): {}",
            r.header("content-type"),
            shown()
        ));
    }
    if job.method == Method::HEAD {
        return None;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
        return Some(format!("refused with a body that is not JSON: {}", shown()));
    };
    let by_route = status != StatusCode::PAYLOAD_TOO_LARGE;
    let document = if by_route { job.document } else { None };
    (!document_shaped(document, &body)).then(|| format!("not in the document's shape: {}", shown()))
}

/// Escapes and encodings in the console's paths reach neither a file
/// outside `/admin/` nor an API route: each is a 404 JSON, and an API
/// path written under `/admin/` is never answered as the API.
#[tokio::test]
async fn escapes_in_console_paths_reach_nothing() {
    let srv = Server::start().await;
    let catalogue = latchkey::console::Catalogue::build().expect("catalogue");
    let asset = catalogue
        .paths()
        .find(|p| p.starts_with("/admin/assets/"))
        .expect("an asset")
        .to_string();
    let name = asset.trim_start_matches("/admin/assets/");
    let mut paths = vec![
        "/admin/../api/v1/auth/me".to_string(),
        "/admin/%2e%2e/api/v1/openapi.json".to_string(),
        "/admin/%2E%2E%2Fapi%2Fv1%2Fopenapi.json".to_string(),
        "/admin/%252e%252e/api/v1/openapi.json".to_string(),
        "/admin/assets/%252e%252e%252findex.html".to_string(),
        "/admin/%c0%ae%c0%ae/api/v1/openapi.json".to_string(),
        "/admin/%e0%80%ae%e0%80%ae/api/v1/openapi.json".to_string(),
        "/admin/assets/%2f%2fetc%2fpasswd".to_string(),
        "/admin/assets//etc/passwd".to_string(),
        "/admin/assets/..;/index.html".to_string(),
        "/admin/assets/%00".to_string(),
        "/admin/index.html%00.js".to_string(),
        "/admin/./index.html".to_string(),
        "/admin//index.html".to_string(),
        format!("/admin/assets/{name}%00"),
        format!("/admin/assets/{name}/"),
        format!("/admin/assets/{name}/.."),
        format!("/admin/assets/{}", name.to_uppercase()),
        format!("/admin/assets/%2e/{name}"),
        format!("/admin/assets/.%2e/assets/{name}"),
        format!("/admin/assets\\{name}"),
        format!("/admin/assets/../../admin/assets/{name}"),
        "/admin%2f..%2fapi/v1/auth/me".to_string(),
        "/%61dmin/".to_string(),
        "/ADMIN/".to_string(),
    ];
    // The API itself, under the console's prefix.
    paths.extend(
        latchkey::api::routes()
            .iter()
            .map(|r| format!("/admin{}", concrete(r.path))),
    );
    let served: BTreeSet<&str> = catalogue.paths().collect();
    for path in &paths {
        assert!(
            !served.contains(path.as_str()),
            "{path} is in the catalogue"
        );
        let r = srv.get(path).send().await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(r.json(), json!({ "error": "Not found" }), "{path}");
    }
    assert_eq!(srv.get(&asset).send().await.status, StatusCode::OK);
}

/// The rule for identifiers: a username is NFKC-normalised, and looked up
/// and held unique by that form lowercased. So its compatibility forms
/// (fullwidth letters, decomposed accents, a ligature) *are* that
/// username: they name the same account (which still needs its password)
/// and cannot make a second one. A letter of another script that merely
/// looks the same (Cyrillic `а` for Latin `a`) is another character, so
/// it never signs in as the account; and a username that mixes scripts,
/// or that looks exactly like an ASCII one without being one, is refused
/// when an account is created, so no confusable second account exists.
#[tokio::test]
async fn look_alike_usernames_neither_sign_in_nor_make_a_second_account() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "alice", PASSWORD, &["user"]).await;
    srv.create_user(&admin, "josé", PASSWORD, &["user"]).await;

    // Another script's look-alikes: not alice, whichever password.
    let cyrillic_a = "\u{0430}lice"; // Cyrillic а
    let all_cyrillic = "\u{0430}l\u{0456}\u{0441}\u{0435}"; // а l і с е
    let greek_omicron = "b\u{03BF}b";
    for name in [cyrillic_a, all_cyrillic] {
        let r = srv.try_login(name, PASSWORD).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.text());
    }
    // Compatibility forms are the same account: with its password they
    // sign in as alice (or josé), never as anyone else.
    for (name, is) in [
        ("\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}", "alice"), // fullwidth
        ("ALICE", "alice"),
        ("jose\u{0301}", "josé"), // NFD
        ("JOSÉ", "josé"),
    ] {
        let token = srv.token_of(name, PASSWORD).await;
        let me = srv.me(&token).await.assert(StatusCode::OK).json();
        assert_eq!(me["username"], is, "{name}");
    }
    let users_before = srv
        .all_pages(&admin, "/api/v1/admin/users?limit=1000")
        .await;

    // No second account that looks like alice or josé.
    for (name, status) in [
        (
            "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}",
            StatusCode::CONFLICT,
        ),
        ("Alice", StatusCode::CONFLICT),
        ("jose\u{0301}", StatusCode::CONFLICT),
        (cyrillic_a, StatusCode::UNPROCESSABLE_ENTITY),
        (all_cyrillic, StatusCode::UNPROCESSABLE_ENTITY),
        (greek_omicron, StatusCode::UNPROCESSABLE_ENTITY),
        ("p\u{0430}ypal", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let body = person_body(name, &format!("x{}@example.com", name.len()));
        let r = srv.post_as(&admin, USERS, &body).await;
        assert_eq!(r.status, status, "{name:?}: {}", r.text());
    }
    assert_eq!(
        srv.all_pages(&admin, "/api/v1/admin/users?limit=1000")
            .await,
        users_before
    );

    // Names in one script that looks like no ASCII name stay welcome.
    for (i, name) in ["иван", "ζωή", "müller", "李小龙", "alice2"]
        .into_iter()
        .enumerate()
    {
        let body = person_body(name, &format!("welcome{i}@example.com"));
        let r = srv.post_as(&admin, USERS, &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.text());
    }
}

fn person_body(username: &str, email: &str) -> Value {
    json!({
        "username": username,
        "email": email,
        "password": PASSWORD,
        "roles": ["user"],
    })
}

/// A login identifier with a control character names no account (no
/// username or email may hold one), so it is refused before the password
/// check: no hash, no audit entry, no lockout record.
#[tokio::test]
async fn a_control_character_in_a_login_identifier_is_refused_before_any_work() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let audit = srv.audit(&admin).await.len();
    let hashes = srv.running().hash_verifications();
    for name in ["ad\u{0}min", "admin\u{7}", "admin@example.com\u{0}"] {
        let r = srv
            .post(LOGIN)
            .json(&json!({ "username": name, "password": ADMIN_PASSWORD }))
            .send()
            .await;
        assert!(r.status.is_client_error(), "{name:?}: {}", r.status);
        assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{name:?}: {}", r.text());
    }
    assert_eq!(srv.running().hash_verifications(), hashes);
    srv.settle().await;
    assert_eq!(srv.audit(&admin).await.len(), audit);
}

/// The same field twice in one body is refused as the malformed JSON it
/// is (RFC 7493): a proxy that reads the first and the server the last
/// would otherwise disagree about who is signing in.
#[tokio::test]
async fn a_field_given_twice_is_refused_before_any_work() {
    let srv = Server::start().await;
    let hashes = srv.running().hash_verifications();
    let body =
        format!(r#"{{"username":"nobody","username":"{ADMIN}","password":"{ADMIN_PASSWORD}"}}"#);
    let r = srv.post_body(LOGIN, "application/json", body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json(), json!({ "error": "Malformed JSON body" }));
    // The token document reads its parameters itself, as JSON or as a
    // form: twice is refused there too, either way.
    let body = format!(
        r#"{{"email":"nobody@example.com","email":"{ADMIN_EMAIL}","password":"{ADMIN_PASSWORD}"}}"#
    );
    let r = srv
        .post_body("/api/auth/token", "application/json", body)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json(), json!({ "error": "Malformed JSON body" }));
    let form = format!(
        "email={}&email=nobody%40example.com&password={}",
        ADMIN_EMAIL.replace('@', "%40"),
        ADMIN_PASSWORD.replace(' ', "+")
    );
    let r = srv
        .post_body("/api/auth/token", "application/x-www-form-urlencoded", form)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({ "error": "Parameter email given more than once" })
    );
    // Nested too: an account's attributes.
    let admin = srv.admin_token().await;
    let body = r#"{"username":"twice","email":"twice@example.com","password":"a long enough password","roles":["user"],"attributes":{"a":"1","a":"2"}}"#;
    let r = srv
        .post(USERS)
        .bearer(&admin)
        .body("application/json", body)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        srv.running().hash_verifications(),
        hashes + 1,
        "only the admin's own sign-in was hashed"
    );
}

/// Writes `bytes` one at a time, `gap` apart, until the server closes the
/// connection or `bound` passes; returns what the server answered and
/// whether it closed.
async fn trickle(
    stream: &mut TcpStream,
    bytes: &[u8],
    gap: Duration,
    bound: Duration,
) -> (Vec<u8>, bool) {
    let mut seen = Vec::new();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 4096];
    for b in bytes.iter().cycle() {
        if started.elapsed() > bound {
            return (seen, false);
        }
        if stream.write_all(&[*b]).await.is_err() {
            break;
        }
        // Reads what has arrived within the gap; the gap paces the
        // trickle, it synchronises nothing.
        match tokio::time::timeout(gap, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (seen, true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    // The write failed: the server has closed; collect what it said.
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut seen)).await;
    (seen, true)
}

/// A client that sends its request head a byte at a time (a slowloris)
/// is cut off at the header deadline, counted from accept, however
/// steadily it sends; the server answers others meanwhile.
#[tokio::test]
async fn a_head_trickled_a_byte_at_a_time_is_cut_off_at_the_header_deadline() {
    let srv = Server::start_with(Layer {
        header_read_timeout: Some(1),
        ..Layer::default()
    })
    .await;
    let head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(TcpStream::connect(srv.addr).await.expect("connect"));
    }
    let addr = srv.addr;
    let trickles: Vec<_> = slow
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                trickle(
                    &mut s,
                    head,
                    Duration::from_millis(50),
                    Duration::from_secs(15),
                )
                .await
            })
        })
        .collect();
    // Meanwhile, others are answered.
    for _ in 0..5 {
        assert_eq!(At(addr).get("/healthz").send().await.status, StatusCode::OK);
    }
    for t in trickles {
        let (seen, closed) = t.await.expect("task");
        assert!(closed, "a trickled head kept its connection for 15 s");
        assert!(
            !String::from_utf8_lossy(&seen).contains("200 OK"),
            "{}",
            String::from_utf8_lossy(&seen)
        );
    }
    assert_eq!(srv.get("/healthz").send().await.status, StatusCode::OK);
}

/// A body sent a byte at a time is cut off at the body deadline
/// (`BODY_READ_TIMEOUT`, 30 s of real time, waited once here) with a 408
/// JSON answer, and the server answers others meanwhile; nothing of the
/// half-sent login reaches the password check.
#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_is_cut_off_with_a_408() {
    let srv = Server::start_with(Layer {
        header_read_timeout: Some(1),
        ..Layer::default()
    })
    .await;
    let hashes = srv.running().hash_verifications();
    let body = json!({ "username": ADMIN, "password": ADMIN_PASSWORD }).to_string();
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(
        format!(
            "POST {LOGIN} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len() + 10_000
        )
        .as_bytes(),
    )
    .await
    .expect("head");
    let addr = srv.addr;
    let slow = tokio::spawn(async move {
        trickle(
            &mut s,
            body.as_bytes(),
            Duration::from_millis(100),
            Duration::from_secs(45),
        )
        .await
    });
    for _ in 0..5 {
        assert_eq!(At(addr).get("/healthz").send().await.status, StatusCode::OK);
    }
    let (seen, closed) = slow.await.expect("task");
    let text = String::from_utf8_lossy(&seen);
    assert!(
        closed,
        "a trickled body kept its connection for 45 s: {text}"
    );
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("content-type: application/json"), "{text}");
    assert!(
        text.ends_with(r#"{"error":"request body took too long"}"#),
        "{text}"
    );
    assert_eq!(srv.running().hash_verifications(), hashes);
    assert_eq!(srv.get("/healthz").send().await.status, StatusCode::OK);
}

/// HEAD on every GET route and console file, over HTTP/1.1 and HTTP/2:
/// GET's status and (for the API) length, and no content. Over HTTP/2 a body sent
/// with a HEAD answer is a protocol error that makes the client reset the
/// stream, so before this was held every HEAD over HTTP/2 failed.
#[tokio::test]
async fn head_is_answered_without_content_over_http1_and_http2() {
    let srv = Server::start().await;
    let (key, _) = admin_key(&srv).await;
    let catalogue = latchkey::console::Catalogue::build().expect("catalogue");
    let mut paths: Vec<(String, bool)> = latchkey::api::routes()
        .iter()
        .filter(|r| r.method == Method::GET)
        .map(|r| (concrete(r.path), r.needs_principal()))
        .collect();
    paths.extend(catalogue.paths().map(|p| (p.to_string(), false)));
    for (path, needs_key) in paths {
        let with_key = |call: Call| if needs_key { call.bearer(&key) } else { call };
        let get = with_key(srv.get(&path)).send().await;
        for http2 in [false, true] {
            let mut call = with_key(srv.call(Method::HEAD, &path));
            if http2 {
                call = call.http2();
            }
            let head = tokio::time::timeout(Duration::from_secs(10), call.send())
                .await
                .unwrap_or_else(|_| panic!("HEAD {path} (HTTP/2: {http2}) not answered"));
            let what = format!("HEAD {path} (HTTP/2: {http2})");
            assert_eq!(head.status, get.status, "{what}");
            assert!(head.body.is_empty(), "{what}: {}", head.text());
            // The console leaves its HEAD answers' length unsaid, which
            // is allowed; an API answer says GET's (but for the metrics,
            // which change between the two requests).
            if get.status == StatusCode::OK && !path.starts_with("/admin") && path != "/metrics" {
                assert_eq!(
                    head.header("content-length"),
                    Some(get.body.len().to_string().as_str()),
                    "{what}"
                );
            }
        }
    }
}
