//! `GET /metrics`: counters and gauges in the Prometheus text format.
//!
//! One [`Metrics`] holds the registry. Three hooks feed it, each in one
//! place: the domain's password check and its authentication report through
//! [`Observer`], and the server reports each answered request through
//! [`Handler::completed`](crate::server::Handler::completed). What the
//! domain already counts (the hashing pool, live sessions, the store's
//! size) is read at scrape time instead of being mirrored here.
//!
//! Every label value comes from a closed set: documents and outcomes are
//! matched against known names, and a request is labelled by its route's
//! pattern (`/api/v1/admin/users/{id}`), never its path, so no client can
//! grow the number of series.
//!
//! Who may read it: loopback clients only, by default; when `metrics_token`
//! is set, only requests carrying it as a bearer credential (compared in
//! constant time), from anywhere. With `metrics_listen` set it is served
//! on that listener alone (to whoever reaches it, with the token when one
//! is set), and the main listener answers 404.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::api::http::error;
use crate::config::Secret;
use crate::domain::Core;
use crate::domain::auth::CredentialKind;
use crate::domain::observe::{CheckOutcome, Observer};
use crate::server::{Handler, RequestContext, ResponseFuture};

/// One label.
type Label = (&'static str, &'static str);

/// Request latency buckets, seconds: from a cached read (well under a
/// millisecond) to a sign-in waiting for the hashing pool.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The documents a sign-in may name; anything else is counted as `other`.
const DOCUMENTS: [&str; 5] = [
    "v1",
    "client-login-refresh",
    "tenant-login-and-s2s",
    "token-and-social-login",
    "account-roles-token",
];

/// Who may read the metrics.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The bearer secret every scrape must carry, if set.
    pub token: Option<Secret>,
    /// Whether `/metrics` is served on a listener of its own (and so not
    /// on the main one).
    pub own_listener: bool,
}

/// Why a scrape was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Served elsewhere (the metrics listener).
    NotHere,
    /// Not a loopback client, and no token is set.
    NotLoopback,
    /// The token is set and the request did not carry it.
    NoToken,
}

/// The registry and what feeds it.
pub struct Metrics {
    /// What the counters and histograms are registered in.
    registry: Registry,
    /// Password sign-ins by document and outcome.
    sign_ins: Family<[Label; 2], Counter>,
    /// Current-password checks (a password change) by outcome.
    password_checks: Family<[Label; 1], Counter>,
    /// Password checks refused by a rate limit, by check (`login`,
    /// `password_check`).
    rate_limited: Family<[Label; 1], Counter>,
    /// Password checks refused because the account or identifier was
    /// locked, by check.
    locked_out: Family<[Label; 1], Counter>,
    /// Bearer credentials presented, by kind and outcome.
    authentications: Family<[Label; 2], Counter>,
    /// Answered requests' latency, by method and route pattern.
    requests: Family<[Label; 2], Histogram, fn() -> Histogram>,
    /// Route patterns by path, to label a request by its pattern.
    routes: matchit::Router<&'static str>,
    /// Who may read.
    access: Access,
    /// One scrape at a time: a scrape reads every session record.
    scraping: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// A registry with every series registered, labelling requests by the
    /// patterns of `routes`.
    pub fn new(access: Access, routes: &[&'static str]) -> Result<Metrics, String> {
        let mut registry = Registry::with_prefix("latchkey");
        let sign_ins = Family::<[Label; 2], Counter>::default();
        registry.register(
            "sign_ins",
            "Password sign-ins by document and outcome",
            sign_ins.clone(),
        );
        let password_checks = Family::<[Label; 1], Counter>::default();
        registry.register(
            "password_checks",
            "Current-password checks (changing one's own password) by outcome",
            password_checks.clone(),
        );
        let rate_limited = Family::<[Label; 1], Counter>::default();
        registry.register(
            "rate_limited",
            "Password checks refused by a rate limit, by check (login or password_check)",
            rate_limited.clone(),
        );
        let locked_out = Family::<[Label; 1], Counter>::default();
        registry.register(
            "locked_out",
            "Password checks refused because the account or identifier is locked, by check",
            locked_out.clone(),
        );
        let authentications = Family::<[Label; 2], Counter>::default();
        registry.register(
            "authentications",
            "Bearer credentials presented, by kind and outcome (success, refused, error)",
            authentications.clone(),
        );
        let requests = Family::<[Label; 2], Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's head to its answer, by method and route pattern",
            Unit::Seconds,
            requests.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new([
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", crate::ops::GIT_REVISION),
            ]),
        );
        let mut router = matchit::Router::new();
        for path in routes.iter().copied().collect::<BTreeSet<_>>() {
            router
                .insert(path, path)
                .map_err(|e| format!("metrics route {path}: {e}"))?;
        }
        Ok(Metrics {
            registry,
            sign_ins,
            password_checks,
            rate_limited,
            locked_out,
            authentications,
            requests,
            routes: router,
            access,
            scraping: tokio::sync::Mutex::new(()),
        })
    }

    /// Records one answered request. `path` is matched to its route's
    /// pattern; a path no route matches is `unmatched`.
    pub fn request_completed(&self, method: &Method, path: &str, elapsed: Duration) {
        let route = self
            .routes
            .at(path)
            .map(|m| *m.value)
            .unwrap_or("unmatched");
        self.requests
            .get_or_create(&[("method", method_label(method)), ("route", route)])
            .observe(elapsed.as_secs_f64());
    }

    /// The text a scrape gets: the registered series, then what is read
    /// from the domain now.
    pub async fn render(&self, core: &Core) -> String {
        let _one = self.scraping.lock().await;
        let mut out = String::new();
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics: could not encode the registry");
        }
        let mut now = Registry::with_prefix("latchkey");
        let pool = core.pool_state();
        now.register(
            "hash_pool_running",
            "Password hashes running on a worker",
            ConstGauge::new(gauge(pool.running as u64)),
        );
        now.register(
            "hash_pool_queued",
            "Password hashes admitted and waiting for a worker",
            ConstGauge::new(gauge(pool.queued as u64)),
        );
        now.register(
            "hash_pool_refused",
            "Password hashes refused because the pool was full (answered 503)",
            ConstCounter::new(pool.refused),
        );
        match core.live_sessions().await {
            Ok(live) => now.register(
                "live_sessions",
                "Sessions neither revoked nor past their end",
                ConstGauge::new(gauge(live)),
            ),
            Err(e) => tracing::warn!(error = %e, "metrics: could not count sessions"),
        }
        match std::fs::metadata(core.store().path()) {
            Ok(meta) => now.register_with_unit(
                "store_size",
                "Size of the store file",
                Unit::Bytes,
                ConstGauge::new(gauge(meta.len())),
            ),
            Err(e) => tracing::warn!(error = %e, "metrics: could not read the store's size"),
        }
        if let Err(e) = prometheus_text::encode(&mut out, &now) {
            tracing::warn!(error = %e, "metrics: could not encode the current values");
        }
        out
    }

    /// Whether this request may read the metrics: see the module comment.
    fn admit(
        &self,
        own_listener: bool,
        client: IpAddr,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        if self.access.own_listener != own_listener {
            return Err(Refusal::NotHere);
        }
        match &self.access.token {
            Some(token) => {
                let presented = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim())
                    .unwrap_or("");
                if crate::domain::secrets::constant_time_eq(
                    presented.as_bytes(),
                    token.expose().as_bytes(),
                ) {
                    Ok(())
                } else {
                    Err(Refusal::NoToken)
                }
            }
            None if own_listener || client.to_canonical().is_loopback() => Ok(()),
            None => Err(Refusal::NotLoopback),
        }
    }

    /// Answers `GET /metrics`, on the main listener or on its own.
    pub async fn answer(
        &self,
        core: &Core,
        own_listener: bool,
        client: IpAddr,
        headers: &HeaderMap,
    ) -> Response<Bytes> {
        match self.admit(own_listener, client, headers) {
            Ok(()) => {
                let mut response = Response::new(Bytes::from(self.render(core).await));
                let h = response.headers_mut();
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
                );
                h.insert(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                );
                response
            }
            Err(Refusal::NotHere) => error(StatusCode::NOT_FOUND, "Not found"),
            Err(Refusal::NotLoopback) => error(
                StatusCode::FORBIDDEN,
                "metrics are served to loopback clients only (or set metrics_token)",
            ),
            Err(Refusal::NoToken) => {
                let mut response = error(StatusCode::UNAUTHORIZED, "metrics token required");
                response.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="metrics""#),
                );
                response
            }
        }
    }
}

/// A gauge's value from a count (saturating; no count here nears it).
fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A method as a label: the methods routes use, or `other`, so a client
/// cannot add series with made-up methods.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Observer for Metrics {
    fn password_checked(&self, event: &'static str, via: &str, outcome: CheckOutcome) {
        let check = if event == "login" {
            let document = DOCUMENTS
                .iter()
                .find(|d| **d == via)
                .copied()
                .unwrap_or("other");
            self.sign_ins
                .get_or_create(&[("document", document), ("outcome", outcome.as_str())])
                .inc();
            "login"
        } else {
            self.password_checks
                .get_or_create(&[("outcome", outcome.as_str())])
                .inc();
            "password_check"
        };
        match outcome {
            CheckOutcome::RateLimited => {
                self.rate_limited.get_or_create(&[("check", check)]).inc();
            }
            CheckOutcome::Locked => {
                self.locked_out.get_or_create(&[("check", check)]).inc();
            }
            _ => {}
        }
    }

    fn authenticated(&self, kind: Option<CredentialKind>, accepted: Result<bool, ()>) {
        let outcome = match accepted {
            Ok(true) => "success",
            Ok(false) => "refused",
            Err(()) => "error",
        };
        let kind = kind.map_or("none", CredentialKind::as_str);
        self.authentications
            .get_or_create(&[("kind", kind), ("outcome", outcome)])
            .inc();
    }
}

/// The metrics listener's handler (`metrics_listen`): `GET /metrics` and
/// nothing else.
pub struct Endpoint {
    /// The domain, read at scrape time.
    pub core: Arc<Core>,
    /// The registry.
    pub metrics: Arc<Metrics>,
}

impl Handler for Endpoint {
    fn handle(&self, request: Request<Bytes>) -> ResponseFuture {
        let core = self.core.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let Some(ctx) = request.extensions().get::<RequestContext>() else {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
            };
            if request.uri().path() != "/metrics" {
                return error(StatusCode::NOT_FOUND, "Not found");
            }
            if request.method() != Method::GET && request.method() != Method::HEAD {
                let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
                response
                    .headers_mut()
                    .insert(http::header::ALLOW, HeaderValue::from_static("GET"));
                return response;
            }
            metrics
                .answer(&core, true, ctx.client_ip, request.headers())
                .await
        })
    }

    fn completed(&self, method: &Method, path: &str, _status: StatusCode, elapsed: Duration) {
        self.metrics.request_completed(method, path, elapsed);
    }
}
