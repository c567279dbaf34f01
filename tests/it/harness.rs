//! The shared test harness: a real latchkey server on an ephemeral loopback
//! port with a temporary data directory and a manual clock, and a small
//! HTTP client that opens a real connection (optionally TLS, optionally
//! HTTP/2) for every request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use latchkey::config::{Layer, Settings};
use latchkey::domain::Clock;
use latchkey::{Bootstrap, Running};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;

/// The first admin's credentials in every harness server.
pub const ADMIN: &str = "admin";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// The canonical API's login route.
pub const LOGIN: &str = "/api/v1/auth/login";
/// The admin API's collection of accounts.
pub const USERS: &str = "/api/v1/admin/users";
/// The caller's own account.
pub const ME: &str = "/api/v1/auth/me";
/// The caller's API keys.
pub const KEYS: &str = "/api/v1/auth/keys";
/// The password most tests give the accounts they make; a test that
/// needs another one defines its own and passes it.
pub const PASSWORD: &str = "a long enough password";

/// Light argon2 parameters: hashing cost is not what most tests test.
pub fn light(layer: Layer) -> Layer {
    Layer {
        argon2_memory_kib: layer.argon2_memory_kib.or(Some(256)),
        argon2_iterations: layer.argon2_iterations.or(Some(1)),
        argon2_parallelism: layer.argon2_parallelism.or(Some(1)),
        ..layer
    }
}

/// `layer` behind a trusted proxy on the loopback, where every test client
/// connects from: `X-Forwarded-For` names the client.
pub fn behind_proxy(layer: Layer) -> Layer {
    Layer {
        trusted_proxies: Some(vec!["127.0.0.1".into()]),
        ..layer
    }
}

/// Login rate limits: attempts a minute per address and per account.
pub fn limits(per_ip: u32, per_account: u32) -> Layer {
    Layer {
        rate_login_per_ip: Some(per_ip),
        rate_login_per_account: Some(per_account),
        ..Layer::default()
    }
}

/// A server under test.
pub struct Server {
    pub addr: SocketAddr,
    pub clock: Clock,
    /// The layer it was started with (for restarts).
    pub layer: Layer,
    /// The first admin it was started with.
    pub bootstrap: Bootstrap,
    /// Trusted CA for TLS servers.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    running: Option<Running>,
    /// Holds the data directory for the server's life.
    pub dir: TempDir,
}

impl Server {
    /// A plain-HTTP server with light hashing and the default admin.
    pub async fn start() -> Server {
        Server::start_with(Layer::default()).await
    }

    /// A server with extra settings (over light hashing).
    pub async fn start_with(layer: Layer) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Clock::manual(now());
        Server::start_in(dir, layer, clock, None, bootstrap()).await
    }

    /// A server whose first admin has this password.
    pub async fn start_with_admin_password(layer: Layer, password: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let boot = Bootstrap {
            password: Some(password.to_string()),
            ..bootstrap()
        };
        Server::start_in(dir, layer, Clock::manual(now()), None, boot).await
    }

    /// A server on `dir` with `layer` as given.
    pub async fn start_in(
        dir: TempDir,
        layer: Layer,
        clock: Clock,
        tls: Option<Arc<rustls::ClientConfig>>,
        bootstrap: Bootstrap,
    ) -> Server {
        let full = Layer {
            data_dir: Some(dir.path().join("data")),
            listen: layer.listen.or(Some("127.0.0.1:0".parse().expect("addr"))),
            ..light(layer.clone())
        };
        let settings = Settings::resolve(full).expect("settings");
        let running = latchkey::start(&settings, clock.clone(), bootstrap.clone())
            .await
            .expect("server starts");
        Server {
            addr: running.addr,
            clock,
            layer,
            bootstrap,
            tls,
            running: Some(running),
            dir,
        }
    }

    /// A TLS server with a certificate for 127.0.0.1 and localhost, signed
    /// by a CA made for this test.
    pub async fn start_tls(layer: Layer) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::new(dir.path());
        let layer = Layer {
            tls_cert: Some(pki.cert.clone()),
            tls_key: Some(pki.key.clone()),
            ..layer
        };
        Server::start_in(
            dir,
            layer,
            Clock::manual(now()),
            Some(pki.client_config()),
            bootstrap(),
        )
        .await
    }

    /// The running server, for the few mechanism tests that look at
    /// internal bounds (limiter sizes, hashes in flight).
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("server is running")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server (graceful drain, store closed).
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// Stops and starts again on the same data directory and clock.
    pub async fn restart(&mut self) {
        self.stop().await;
        let full = Layer {
            data_dir: Some(self.data_dir()),
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..light(self.layer.clone())
        };
        let settings = Settings::resolve(full).expect("settings");
        let running = latchkey::start(&settings, self.clock.clone(), self.bootstrap.clone())
            .await
            .expect("server restarts");
        self.addr = running.addr;
        self.running = Some(running);
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.call(Method::DELETE, path)
    }

    pub fn patch(&self, path: &str) -> Call {
        self.call(Method::PATCH, path)
    }

    pub fn call(&self, method: Method, path: &str) -> Call {
        Call {
            addr: self.addr,
            tls: self.tls.clone(),
            http2: false,
            method,
            path: path.to_string(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// Logs in through the canonical API; returns the login response.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let r = self.try_login(username, password).await;
        assert_eq!(r.status, StatusCode::OK, "login failed: {}", r.text());
        r.json()
    }

    /// Tries a login through the canonical API, whatever the answer.
    pub async fn try_login(&self, username: &str, password: &str) -> Resp {
        login_call(self.post(LOGIN), username, password)
            .send()
            .await
    }

    /// The admin's access token.
    pub async fn admin_token(&self) -> String {
        self.token_of(ADMIN, ADMIN_PASSWORD).await
    }

    /// Logs in through the canonical API and returns the access token.
    pub async fn token_of(&self, username: &str, password: &str) -> String {
        self.login(username, password).await["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// POSTs `body` to `path` with `bearer`, asserts 201 Created, and
    /// returns the response.
    pub async fn created(&self, path: &str, bearer: &str, body: &Value) -> Resp {
        let r = self.post(path).bearer(bearer).json(body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text());
        r
    }

    /// Issues an S2S token described by `body` as `bearer`; asserts 200
    /// and returns its secret.
    pub async fn s2s_secret(&self, bearer: &str, body: &Value) -> String {
        let r = self.post_as(bearer, "/s2s-token", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["token"].as_str().expect("token").to_string()
    }

    /// Creates reseller `id` called `name` as `admin`; asserts it was
    /// created and returns its id.
    pub async fn reseller(&self, admin: &str, id: &str, name: &str) -> String {
        let body = json!({ "id": id, "name": name });
        self.created("/api/v1/admin/resellers", admin, &body)
            .await
            .json()["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Creates merchant `id` under `reseller`, called `name`, as `admin`;
    /// asserts it was created and returns its id.
    pub async fn merchant(&self, admin: &str, id: &str, reseller: &str, name: &str) -> String {
        let body = json!({ "id": id, "reseller_id": reseller, "name": name });
        self.created("/api/v1/admin/merchants", admin, &body)
            .await
            .json()["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Asks to create custom role `name` as `bearer`, whatever the answer.
    pub async fn create_role(&self, bearer: &str, name: &str) -> Resp {
        let body = json!({ "name": name });
        self.post_as(bearer, "/api/v1/admin/roles", &body).await
    }

    /// Creates an account through the admin API with `admin`'s bearer and
    /// exactly this body; asserts it was created and returns its id.
    pub async fn create_account(&self, admin: &str, body: &Value) -> String {
        self.created(USERS, admin, body).await.json()["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Creates account `name` (email `{name}@example.com`) with this
    /// password and these roles through the admin API; returns its id.
    pub async fn create_user(
        &self,
        admin: &str,
        name: &str,
        password: &str,
        roles: &[&str],
    ) -> String {
        self.create_user_with(admin, name, password, roles, json!({}))
            .await
    }

    /// As [`Server::create_user`], with the fields of `extra` (a tenant,
    /// say) added to the body, replacing any of the same name.
    pub async fn create_user_with(
        &self,
        admin: &str,
        name: &str,
        password: &str,
        roles: &[&str],
        extra: Value,
    ) -> String {
        let mut body = json!({
            "username": name,
            "email": format!("{name}@example.com"),
            "password": password,
            "roles": roles,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.create_account(admin, &body).await
    }

    /// `GET path` with this bearer.
    pub async fn get_as(&self, bearer: &str, path: &str) -> Resp {
        self.get(path).bearer(bearer).send().await
    }

    /// `POST path` with this bearer and JSON body.
    pub async fn post_as(&self, bearer: &str, path: &str, body: &Value) -> Resp {
        self.post(path).bearer(bearer).json(body).send().await
    }

    /// `PATCH path` with this bearer and JSON body.
    pub async fn patch_as(&self, bearer: &str, path: &str, body: &Value) -> Resp {
        self.patch(path).bearer(bearer).json(body).send().await
    }

    /// `DELETE path` with this bearer.
    pub async fn delete_as(&self, bearer: &str, path: &str) -> Resp {
        self.delete(path).bearer(bearer).send().await
    }

    /// `POST path` with no bearer and this body of this content type.
    pub async fn post_body(&self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Resp {
        self.post(path).body(content_type, body).send().await
    }

    /// `POST path` with this bearer and no body: an action such as
    /// disabling an account or making an API key.
    pub async fn act_as(&self, bearer: &str, path: &str) -> Resp {
        self.post(path).bearer(bearer).send().await
    }

    /// Signs in through the token document (`POST /api/auth/token`) and
    /// returns its opaque token; asserts 200.
    pub async fn opaque_token(&self, email: &str, password: &str) -> String {
        let body = json!({ "email": email, "password": password });
        let r = self.post_json("/api/auth/token", &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["token"].as_str().expect("token").to_string()
    }

    /// Gives account `id` these roles through the admin API, as `bearer`.
    pub async fn set_roles(&self, bearer: &str, id: &str, roles: &[&str]) -> Resp {
        let path = format!("{USERS}/{id}");
        self.patch_as(bearer, &path, &json!({ "roles": roles }))
            .await
    }

    /// Sets account `id`'s password through the admin API, as `bearer`.
    pub async fn set_password(&self, bearer: &str, id: &str, password: &str) -> Resp {
        let path = format!("{USERS}/{id}/password");
        self.post_as(bearer, &path, &json!({ "password": password }))
            .await
    }

    /// `POST path` with this JSON body and no credential.
    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.post(path).json(body).send().await
    }

    /// The JSON body `GET path` answers this bearer, whatever the status.
    pub async fn read(&self, bearer: &str, path: &str) -> Value {
        self.get(path).bearer(bearer).send().await.json()
    }

    /// `GET /api/v1/auth/me` with this bearer.
    pub async fn me(&self, bearer: &str) -> Resp {
        self.get(ME).bearer(bearer).send().await
    }

    /// Every item of a paged list route (`{"items": [..], "next": ..}`),
    /// following `next` cursors; asserts 200 on every page. `path` has a
    /// query string already.
    pub async fn all_pages(&self, bearer: &str, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut page_path = path.to_string();
        loop {
            let r = self.get(&page_path).bearer(bearer).send().await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let page = r.json();
            out.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next"].as_str() {
                Some(next) => page_path = format!("{path}&cursor={next}"),
                None => return out,
            }
        }
    }

    /// The status `GET /api/v1/auth/me` answers this bearer: whether the
    /// credential works.
    pub async fn me_status(&self, bearer: &str) -> StatusCode {
        self.get(ME).bearer(bearer).send().await.status
    }

    /// The `items` of a list route read with this bearer; asserts 200.
    pub async fn items(&self, bearer: &str, path: &str) -> Vec<Value> {
        let r = self.get(path).bearer(bearer).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["items"].as_array().expect("items").clone()
    }

    /// Every audit event `bearer` may see (at most 1000, one page).
    pub async fn audit(&self, bearer: &str) -> Vec<Value> {
        self.items(bearer, "/api/v1/admin/audit?limit=1000").await
    }

    /// A server whose password hashes are slow enough (tens of
    /// milliseconds or more) that another request lands while a login is
    /// in its hash.
    pub async fn start_slow_hashing() -> Server {
        Server::start_with(Layer {
            argon2_memory_kib: Some(32 * 1024),
            argon2_iterations: Some(4),
            ..Layer::default()
        })
        .await
    }

    /// Starts a v1 login for `name` with `password` and returns once its
    /// password is being hashed: the account has been read, the session
    /// is not yet opened.
    pub async fn login_in_flight(
        &self,
        name: &str,
        password: &str,
    ) -> tokio::task::JoinHandle<Resp> {
        // The hashes of earlier requests are over before their answers,
        // but wait rather than assume it.
        self.until_pool_idle().await;
        let call = self
            .post("/api/v1/auth/login")
            .json(&json!({ "username": name, "password": password }));
        let login = tokio::spawn(call.send());
        self.until_hashes_in_flight(1).await;
        login
    }

    /// Returns once the hashing pool holds at least `n` jobs (running or
    /// queued): requests sent before have reached it.
    pub async fn until_hashes_in_flight(&self, n: usize) {
        let running = self.running();
        until(&format!("{n} hashes in flight"), || {
            running.hashes_in_flight() >= n
        })
        .await;
    }

    /// Returns once the hashing pool holds no job.
    pub async fn until_pool_idle(&self) {
        let running = self.running();
        until("an idle hashing pool", || running.hashes_in_flight() == 0).await;
    }

    /// Waits for every write the server started in the background (the
    /// first-use audit events and last-use times of credentials) to be in
    /// the store, so what a test reads next is the settled state.
    pub async fn settle(&self) {
        self.running().core().drain_background().await;
    }
}

/// How long [`until`] waits for its condition before failing the test.
/// A bound on a poll, not a timing assertion: every condition polled is
/// expected within milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `done` every millisecond until it holds; panics naming `what`
/// if it still does not after [`PATIENCE`].
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that panicked leaves its server running on the test's
        // runtime, which is being torn down; nothing more to do.
        self.running.take();
    }
}

pub fn bootstrap() -> Bootstrap {
    Bootstrap {
        username: Some(ADMIN.into()),
        email: Some(ADMIN_EMAIL.into()),
        password: Some(ADMIN_PASSWORD.into()),
    }
}

/// The claims of a JWT: its payload, base64url-decoded and parsed.
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&unb64(payload)).expect("JSON claims")
}

/// A JWT: three base64url parts, the first two JSON objects, the third a
/// non-empty signature.
pub fn assert_jwt(token: &str) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    for (i, part) in parts.iter().enumerate() {
        let bytes = unb64(part);
        if i < 2 {
            let json: Value = serde_json::from_slice(&bytes).expect("JWT part is JSON");
            assert!(json.is_object(), "JWT part {i}: {json}");
        } else {
            assert!(!bytes.is_empty(), "empty signature");
        }
    }
}

/// An RFC 3339 time in UTC (`Z`), as Unix seconds.
pub fn rfc3339_utc(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert!(s.ends_with('Z'), "not UTC: {s}");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {s}"))
        .unix_timestamp()
}

/// base64url without padding, as JWTs and our secrets use it.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes of base64url without padding; panics on anything else.
pub fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text} is not base64url: {e}"))
}

/// The field names of a JSON object, sorted.
pub fn fields(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// The `Retry-After` of a response, in seconds.
pub fn retry_after(r: &Resp) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
        .parse()
        .expect("Retry-After in seconds")
}

/// Real Unix time, where manual clocks start.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

/// A canonical login request for this username and password.
fn login_call(call: Call, username: &str, password: &str) -> Call {
    call.json(&json!({ "username": username, "password": password }))
}

/// Requests to an address that is not a harness [`Server`] (a spawned
/// binary, say).
pub struct At(pub SocketAddr);

impl At {
    /// `GET /api/v1/auth/me` with this bearer.
    pub async fn me(&self, bearer: &str) -> Resp {
        self.get(ME).bearer(bearer).send().await
    }

    /// Tries a login through the canonical API, whatever the answer.
    pub async fn try_login(&self, username: &str, password: &str) -> Resp {
        login_call(self.post(LOGIN), username, password)
            .send()
            .await
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    pub fn call(&self, method: Method, path: &str) -> Call {
        Call {
            addr: self.0,
            tls: None,
            http2: false,
            method,
            path: path.to_string(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

/// One request being built.
pub struct Call {
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    http2: bool,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Call {
    pub fn header(mut self, name: &'static str, value: &str) -> Call {
        self.headers
            .append(name, value.parse().expect("header value"));
        self
    }

    pub fn bearer(self, token: &str) -> Call {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, body: &Value) -> Call {
        self.body = Bytes::from(body.to_string());
        self.header("content-type", "application/json")
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Call {
        self.body = body.into();
        self.header("content-type", content_type)
    }

    pub fn raw_body(mut self, body: impl Into<Bytes>) -> Call {
        self.body = body.into();
        self
    }

    pub fn http2(mut self) -> Call {
        self.http2 = true;
        self
    }

    pub async fn send(self) -> Resp {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str());
        if !self.http2 {
            builder = builder.header("host", format!("127.0.0.1:{}", self.addr.port()));
        } else {
            builder = builder.uri(format!(
                "{}://127.0.0.1:{}{}",
                if self.tls.is_some() { "https" } else { "http" },
                self.addr.port(),
                self.path
            ));
        }
        let mut request = builder.body(Full::new(self.body)).expect("request");
        request.headers_mut().extend(self.headers);
        match self.tls {
            Some(config) => {
                let mut config = (*config).clone();
                config.alpn_protocols = if self.http2 {
                    vec![b"h2".to_vec()]
                } else {
                    vec![b"http/1.1".to_vec()]
                };
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                let name = rustls_pki_types::ServerName::try_from("127.0.0.1")
                    .expect("name")
                    .to_owned();
                let tls = connector
                    .connect(name, stream)
                    .await
                    .expect("TLS handshake");
                exchange(TokioIo::new(tls), request, self.http2).await
            }
            None => exchange(TokioIo::new(stream), request, self.http2).await,
        }
    }
}

async fn exchange<T>(io: TokioIo<T>, request: Request<Full<Bytes>>, http2: bool) -> Resp
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let response = if http2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2 handshake");
        tokio::spawn(conn);
        sender.send_request(request).await.expect("response")
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("handshake");
        tokio::spawn(conn);
        sender.send_request(request).await.expect("response")
    };
    let version = response.version();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Resp {
        status,
        headers,
        body,
        version,
    }
}

/// A response, read in full.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Resp {
    /// Asserts the status (showing the body if it differs) and passes the
    /// response on.
    #[track_caller]
    pub fn assert(self, want: StatusCode) -> Resp {
        assert_eq!(self.status, want, "{}", self.text());
        self
    }

    /// Asserts the status and that the body is exactly
    /// `{"error": message}`.
    #[track_caller]
    pub fn assert_error(self, want: StatusCode, message: &str) {
        assert_eq!(self.status, want, "{}", self.text());
        assert_eq!(self.json(), serde_json::json!({ "error": message }));
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files.
pub struct TestPki {
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    pub fn new(dir: &Path) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "latchkey test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, leaf.pem()).expect("write cert");
        std::fs::write(&key, leaf_key.serialize_pem()).expect("write key");
        TestPki {
            ca_pem: ca.pem(),
            cert,
            key,
        }
    }

    /// A client configuration that trusts only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("ca pem")).expect("add root");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }
}

/// A store written by an earlier build, copied from `tests/fixtures/<name>`
/// into a new temporary data directory: the directory (holding `data/`)
/// and the fixture's description (`fixture.json`).
pub fn fixture_store(name: &str) -> (TempDir, Value) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let meta: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("fixture.json")).expect("fixture.json"))
            .expect("fixture.json is JSON");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    for f in ["latchkey.redb", "master.key"] {
        std::fs::copy(fixture.join(f), data.join(f)).expect("copy the fixture");
    }
    (dir, meta)
}

/// The environment a real-binary test server starts with: its data
/// directory, a free loopback port and cheap hashing. Callers add their own.
pub fn proc_env(data: &str) -> Vec<(&str, &str)> {
    vec![
        ("LATCHKEY_DATA_DIR", data),
        ("LATCHKEY_LISTEN", "127.0.0.1:0"),
        ("LATCHKEY_ARGON2_MEMORY_KIB", "256"),
        ("LATCHKEY_ARGON2_ITERATIONS", "1"),
    ]
}

/// Runs the `latchkey` binary.
pub fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
}

/// A `latchkey serve` process, with its stderr collected line by line.
pub struct Proc {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// Everything the process wrote to stderr so far.
    pub stderr: Arc<std::sync::Mutex<String>>,
    /// Receives once the process's stderr is closed and read to the end:
    /// the process has exited (or is exiting) and nothing more will come.
    closed: std::sync::mpsc::Receiver<()>,
}

impl Proc {
    /// Starts `latchkey serve` with these flags and environment, waits for
    /// the "listening" line, and returns. Panics if it exits first.
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Proc {
        use std::io::BufRead;
        let mut cmd = binary();
        cmd.arg("serve").args(args);
        cmd.env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn latchkey");
        let stderr = child.stderr.take().expect("stderr");
        let collected = Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        {
            let collected = collected.clone();
            std::thread::spawn(move || {
                let reader = std::io::BufReader::new(stderr);
                for line in reader.lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http").nth(1) {
                        let addr = rest
                            .trim_start_matches('s')
                            .trim_start_matches("://")
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let _ = tx.send(addr);
                    }
                    let mut all = collected.lock().expect("lock");
                    all.push_str(&line);
                    all.push('\n');
                }
                let _ = closed_tx.send(());
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "latchkey did not start: {}",
                    collected.lock().expect("lock")
                );
            }
        };
        Proc {
            child,
            addr,
            stderr: collected,
            closed,
        }
    }

    pub fn at(&self) -> At {
        At(self.addr)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Waits for the process to exit (up to [`PATIENCE`]) and returns its
    /// status, with all it wrote to stderr collected.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        if self.closed.recv_timeout(PATIENCE).is_err() {
            let _ = self.child.kill();
            panic!("latchkey did not exit: {}", self.stderr());
        }
        // Its stderr is closed, so it has exited or is about to: reaping
        // it does not wait long.
        self.child.wait().expect("wait")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `latchkey serve` on `data` with light hashing, the harness's admin
/// password and these extra variables, expecting it to refuse to start;
/// returns its exit code and output. One still running after [`PATIENCE`]
/// has started, so it is killed and reported with no exit code.
pub fn serve_refused(data: &Path, extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = binary();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LATCHKEY_DATA_DIR", data)
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .envs(extra.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn latchkey");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(PATIENCE) {
        Ok(out) => out,
        Err(_) => {
            // SAFETY: kill(2) with the pid of our own child, not yet reaped
            // (the thread above reaps it only once it has exited).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            rx.recv().expect("the waiting thread answers")
        }
    }
    .expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

/// Runs `latchkey` to completion with these arguments and environment;
/// returns (exit code, stderr).
pub fn run_to_end(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = binary();
    cmd.args(args).env_clear();
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run latchkey");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

/// A populated server for tenant tests: two resellers (`res_1`, `res_2`),
/// two merchants under each (`mer_1a`, `mer_1b`, `mer_2a`, `mer_2b`), and
/// one account per role and tenant, each signed in:
///
/// | name | roles | tenant |
/// | --- | --- | --- |
/// | `admin` | admin | none |
/// | `reseller1`, `reseller2` | reseller | `res_1`, `res_2` |
/// | `merchant1a`, `merchant1b`, `merchant2a` | merchant | that merchant |
/// | `user1a`, `user2a` | user | `mer_1a`, `mer_2a` |
///
/// Every password is [`WORLD_PASSWORD`].
pub struct World {
    /// Name -> account.
    pub accounts: std::collections::BTreeMap<String, Member>,
}

/// One account of the [`World`].
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub email: String,
    /// A fresh access token.
    pub token: String,
}

pub const WORLD_PASSWORD: &str = "world password 123";

/// A new account's request body, with the world's password.
pub fn person(name: &str, role: &str, reseller: Option<&str>, merchant: Option<&str>) -> Value {
    json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "password": WORLD_PASSWORD,
        "roles": [role],
        "reseller_id": reseller,
        "merchant_id": merchant,
    })
}

impl World {
    pub async fn build(srv: &Server) -> World {
        let admin = srv.admin_token().await;
        for r in ["res_1", "res_2"] {
            let resp = srv
                .post("/api/v1/admin/resellers")
                .bearer(&admin)
                .json(&json!({ "id": r, "name": format!("Reseller {r}") }))
                .send()
                .await;
            assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
        }
        for (m, r) in [
            ("mer_1a", "res_1"),
            ("mer_1b", "res_1"),
            ("mer_2a", "res_2"),
            ("mer_2b", "res_2"),
        ] {
            let resp = srv
                .post("/api/v1/admin/merchants")
                .bearer(&admin)
                .json(&json!({ "id": m, "reseller_id": r, "name": format!("Merchant {m}") }))
                .send()
                .await;
            assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
        }
        let people: [(&str, &str, Option<&str>, Option<&str>); 7] = [
            ("reseller1", "reseller", Some("res_1"), None),
            ("reseller2", "reseller", Some("res_2"), None),
            ("merchant1a", "merchant", None, Some("mer_1a")),
            ("merchant1b", "merchant", None, Some("mer_1b")),
            ("merchant2a", "merchant", None, Some("mer_2a")),
            ("user1a", "user", None, Some("mer_1a")),
            ("user2a", "user", None, Some("mer_2a")),
        ];
        let mut accounts = std::collections::BTreeMap::new();
        for (name, role, reseller, merchant) in people {
            let resp = srv
                .post_as(&admin, USERS, &person(name, role, reseller, merchant))
                .await;
            assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
            let body = resp.json();
            let token = srv.login(name, WORLD_PASSWORD).await["token"]
                .as_str()
                .expect("token")
                .to_string();
            accounts.insert(
                name.to_string(),
                Member {
                    id: body["id"].as_str().expect("id").to_string(),
                    email: format!("{name}@example.com"),
                    token,
                },
            );
        }
        let me = srv.read(&admin, "/api/v1/auth/me").await;
        accounts.insert(
            "admin".to_string(),
            Member {
                id: me["id"].as_str().expect("id").to_string(),
                email: ADMIN_EMAIL.into(),
                token: admin,
            },
        );
        World { accounts }
    }

    /// The member called `name`; panics if there is none.
    pub fn get(&self, name: &str) -> &Member {
        self.accounts
            .get(name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// A member's access token.
    pub fn token(&self, name: &str) -> &str {
        &self.get(name).token
    }
}
