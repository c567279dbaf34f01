//! The soak (issue 14, "load while it fails"), run by `scripts/soak`: a
//! latchkey binary on loopback under a mix of sign-ins, refreshes,
//! logouts, API-key and access-token use and admin writes, with a
//! concurrent flood of failed logins from many addresses for many
//! identifiers (so the limiters, the lockout records and the group commit
//! all fill), and one SIGKILL and restart a third of the way through.
//!
//! It samples the server's resident memory (VmRSS) every second and the
//! latency of every authenticated request, and at the end checks that
//! every admin write acknowledged before or after the kill is in the
//! store. It prints a summary and exits non-zero if an acknowledged write
//! is lost or memory kept growing after the restart (VmRSS less the store
//! file's size peaking, in the later half of the second life, more than
//! 5% and 2 MiB over the earlier half).
//!
//! `soak BINARY DATA_DIR SECONDS`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "soak admin password";
const PASSWORD: &str = "soak user password";
/// Accounts the sign-in mix uses.
const SIGNERS: usize = 8;
/// Concurrent connections of the login flood.
const FLOOD: usize = 8;
/// Seconds of the quiet baseline (the mix without the flood) for p99.
const QUIET: u64 = 5;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, bin, data, seconds] = args.as_slice() else {
        return Err("usage: soak BINARY DATA_DIR SECONDS".into());
    };
    let seconds: u64 = seconds.parse().map_err(|_| "SECONDS: a number")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(soak(PathBuf::from(bin), PathBuf::from(data), seconds))
}

/// A latchkey process on a fixed port, so the load finds it again after
/// the restart.
struct Server {
    /// The latchkey binary.
    bin: PathBuf,
    /// Its data directory (its log beside it, `data.log`).
    data: PathBuf,
    /// The loopback address it listens on, the same in both lives.
    addr: SocketAddr,
    /// The running process.
    child: Child,
}

impl Server {
    fn spawn(bin: &Path, data: &Path, addr: SocketAddr) -> Result<Child, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.with_extension("log"))
            .map_err(|e| e.to_string())?;
        Command::new(bin)
            .arg("serve")
            .env_clear()
            .env("LATCHKEY_DATA_DIR", data)
            .env("LATCHKEY_LISTEN", addr.to_string())
            .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // The flood comes from many addresses through a trusted proxy
            // (loopback), so the limiters hold many keys; the limits are
            // raised so the mix itself is never refused.
            .env("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")
            .env("LATCHKEY_RATE_LOGIN_PER_IP", "1000000000")
            .env("LATCHKEY_RATE_LOGIN_PER_ACCOUNT", "1000000000")
            .env("LATCHKEY_MAX_CONNECTIONS_PER_IP", "1024")
            // Revocations are kept as long as an access token can live
            // (15 minutes by default): a 60 s lifetime lets the revocation
            // set turn over within the soak, so its bound shows.
            .env("LATCHKEY_ACCESS_TTL", "60")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Waits (bounded) until `/healthz` answers 200.
async fn wait_up(addr: SocketAddr) -> Result<(), String> {
    for _ in 0..3000 {
        if let Some(r) = send(addr, Method::GET, "/healthz", "", None).await
            && r.0 == StatusCode::OK
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("no answer from {addr}/healthz"))
}

/// One request on a new connection: status and JSON body.
async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<&Value>,
) -> Option<(StatusCode, Value)> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    exchange(&mut sender, addr, method, path, bearer, "10.0.0.1", body).await
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    bearer: &str,
    client: &str,
    body: Option<&Value>,
) -> Option<(StatusCode, Value)> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("x-forwarded-for", client);
    if !bearer.is_empty() {
        builder = builder.header("authorization", format!("Bearer {bearer}"));
    }
    let bytes = match body {
        Some(b) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let request = builder.body(Full::new(bytes)).ok()?;
    let fut = async {
        let response = sender.send_request(request).await.ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .ok()
        .flatten()
}

/// A kept-alive connection, made again after a failure.
struct Conn {
    /// Where to connect.
    addr: SocketAddr,
    /// The connection, while it lasts.
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        bearer: &str,
        client: &str,
        body: Option<&Value>,
    ) -> Option<(StatusCode, Value)> {
        if self.sender.is_none() {
            let stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .ok()?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut()?;
        if sender.ready().await.is_err() {
            self.sender = None;
            return None;
        }
        let r = exchange(sender, self.addr, method, path, bearer, client, body).await;
        if r.is_none() {
            self.sender = None;
        }
        r
    }
}

/// What the load saw, shared by its tasks.
#[derive(Default)]
struct Seen {
    /// Latencies (µs) of authenticated requests answered 200, with the
    /// second of the run they were sent in.
    latencies: Vec<(u64, u64)>,
    /// Account ids whose creation was acknowledged, and not their deletion.
    created: Vec<String>,
    /// Account ids whose deletion was acknowledged.
    deleted: Vec<String>,
    /// Resident memory samples: (second of the run, KiB, life of the
    /// process: 0 before the kill, 1 after, KiB of the store file).
    rss: Vec<(u64, u64, u8, u64)>,
}

/// Counters of what the load did.
#[derive(Default)]
struct Counts {
    /// Successful password sign-ins of the mix.
    sign_ins: AtomicU64,
    /// Successful refresh rotations.
    refreshes: AtomicU64,
    /// Authenticated requests answered 200.
    authenticated: AtomicU64,
    /// Admin writes acknowledged.
    admin_writes: AtomicU64,
    /// Flood logins refused as they should be (401 or 403).
    flood: AtomicU64,
    /// Flood logins refused at once by a full hashing pool (503).
    busy: AtomicU64,
    /// Requests of the mix that got no answer or an unexpected one.
    failures: AtomicU64,
}

/// The run, shared by the load's tasks.
struct Load {
    /// The server's address.
    addr: SocketAddr,
    /// When the load started.
    start: Instant,
    /// When it stops.
    end: Instant,
    /// The flood starts after the quiet baseline.
    flooding: AtomicBool,
    /// What was measured and acknowledged.
    seen: Mutex<Seen>,
    /// What was done.
    counts: Counts,
}

impl Load {
    fn running(&self) -> bool {
        Instant::now() < self.end
    }

    fn second(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    fn failed(&self) {
        self.counts.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// A short pause after a failed request (the server is restarting), so a
/// task does not spin.
async fn back_off() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Sign in, refresh three times, use the token, log out.
async fn signer(load: Arc<Load>, n: usize) {
    let mut conn = Conn {
        addr: load.addr,
        sender: None,
    };
    let client = format!("10.1.0.{n}");
    let login = json!({ "username": format!("soak{}", n % SIGNERS), "password": PASSWORD });
    while load.running() {
        let Some((StatusCode::OK, body)) = conn
            .call(
                Method::POST,
                "/api/v1/auth/login",
                "",
                &client,
                Some(&login),
            )
            .await
        else {
            load.failed();
            back_off().await;
            continue;
        };
        load.counts.sign_ins.fetch_add(1, Ordering::Relaxed);
        let mut refresh = body["refreshToken"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut access = body["token"].as_str().unwrap_or_default().to_string();
        for _ in 0..3 {
            let b = json!({ "refreshToken": refresh });
            match conn
                .call(Method::POST, "/api/v1/auth/refresh", "", &client, Some(&b))
                .await
            {
                Some((StatusCode::OK, body)) => {
                    load.counts.refreshes.fetch_add(1, Ordering::Relaxed);
                    refresh = body["refreshToken"].as_str().unwrap_or_default().into();
                    access = body["token"].as_str().unwrap_or_default().into();
                }
                _ => load.failed(),
            }
        }
        let _ = timed_me(&load, &mut conn, &access, &client).await;
        if !matches!(
            conn.call(Method::POST, "/api/v1/auth/logout", &access, &client, None)
                .await,
            Some((StatusCode::OK, _))
        ) {
            load.failed();
        }
    }
}

/// `GET /api/v1/auth/me` with `bearer`, its latency recorded; whether it
/// was answered 200.
async fn timed_me(load: &Load, conn: &mut Conn, bearer: &str, client: &str) -> bool {
    let second = load.second();
    let t = Instant::now();
    match conn
        .call(Method::GET, "/api/v1/auth/me", bearer, client, None)
        .await
    {
        Some((StatusCode::OK, _)) => {
            let us = t.elapsed().as_micros() as u64;
            load.counts.authenticated.fetch_add(1, Ordering::Relaxed);
            let mut seen = load.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.latencies.push((second, us));
            true
        }
        Some((StatusCode::UNAUTHORIZED, _)) => false,
        _ => {
            load.failed();
            back_off().await;
            false
        }
    }
}

/// Authenticated reads, as the benchmark's p99 measures them: with an API
/// key (`key`), or with an access token of `user`'s, signed in again when
/// it expires (and after the restart, whose first answer refuses nothing
/// it should not: a token refused is just signed in again).
async fn reader(load: Arc<Load>, key: Option<String>, user: String, n: usize) {
    let mut conn = Conn {
        addr: load.addr,
        sender: None,
    };
    let client = format!("10.2.0.{n}");
    let login = json!({ "username": user, "password": PASSWORD });
    let mut bearer = key.clone().unwrap_or_default();
    while load.running() {
        if bearer.is_empty() {
            match conn
                .call(
                    Method::POST,
                    "/api/v1/auth/login",
                    "",
                    &client,
                    Some(&login),
                )
                .await
            {
                Some((StatusCode::OK, body)) => {
                    load.counts.sign_ins.fetch_add(1, Ordering::Relaxed);
                    bearer = body["token"].as_str().unwrap_or_default().to_string();
                }
                _ => {
                    load.failed();
                    back_off().await;
                    continue;
                }
            }
        }
        if !timed_me(&load, &mut conn, &bearer, &client).await && key.is_none() {
            bearer.clear();
        }
    }
}

/// Admin writes: accounts created, a third of them deleted again, and a
/// reseller every tenth write.
async fn admin_writer(load: Arc<Load>) {
    let mut conn = Conn {
        addr: load.addr,
        sender: None,
    };
    let client = "10.3.0.1";
    let mut n = 0u64;
    let mut admin = String::new();
    let login = json!({ "username": "admin", "password": ADMIN_PASSWORD });
    while load.running() {
        // The admin's access token expires with the short lifetime: sign
        // in again when it is refused (or was never had).
        if admin.is_empty() {
            match conn
                .call(Method::POST, "/api/v1/auth/login", "", client, Some(&login))
                .await
            {
                Some((StatusCode::OK, body)) => {
                    admin = body["token"].as_str().unwrap_or_default().to_string();
                }
                _ => {
                    load.failed();
                    back_off().await;
                    continue;
                }
            }
        }
        n += 1;
        let name = format!("w{n}");
        let body = json!({ "username": name, "email": format!("{name}@example.com"),
            "password": PASSWORD, "roles": ["user"] });
        match conn
            .call(
                Method::POST,
                "/api/v1/admin/users",
                &admin,
                client,
                Some(&body),
            )
            .await
        {
            Some((StatusCode::CREATED, body)) => {
                load.counts.admin_writes.fetch_add(1, Ordering::Relaxed);
                let id = body["id"].as_str().unwrap_or_default().to_string();
                load.seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .created
                    .push(id);
            }
            Some((StatusCode::UNAUTHORIZED, _)) => {
                admin.clear();
                continue;
            }
            _ => {
                load.failed();
                back_off().await;
                continue;
            }
        }
        if n.is_multiple_of(3) {
            let victim = {
                let seen = load.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.created.get(seen.created.len() / 2).cloned()
            };
            if let Some(id) = victim {
                let path = format!("/api/v1/admin/users/{id}");
                if let Some((StatusCode::NO_CONTENT, _)) =
                    conn.call(Method::DELETE, &path, &admin, client, None).await
                {
                    load.counts.admin_writes.fetch_add(1, Ordering::Relaxed);
                    let mut seen = load.seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.created.retain(|c| *c != id);
                    seen.deleted.push(id);
                } else {
                    load.failed();
                }
            }
        }
        if n.is_multiple_of(10) {
            let body = json!({ "id": format!("soak_r{n}"), "name": "soak" });
            match conn
                .call(
                    Method::POST,
                    "/api/v1/admin/resellers",
                    &admin,
                    client,
                    Some(&body),
                )
                .await
            {
                Some((StatusCode::CREATED, _)) => {
                    load.counts.admin_writes.fetch_add(1, Ordering::Relaxed);
                }
                _ => load.failed(),
            }
        }
    }
}

/// Failed logins from ever new addresses for ever new identifiers (and one
/// real account, which locks): every one is a durable failure record.
async fn flooder(load: Arc<Load>, n: u64) {
    let mut conn = Conn {
        addr: load.addr,
        sender: None,
    };
    let mut i = 0u64;
    while load.running() {
        if !load.flooding.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        i += 1;
        let k = i * FLOOD as u64 + n;
        let client = format!("172.{}.{}.{}", 16 + (k >> 16) % 16, (k >> 8) % 256, k % 256);
        let who = if k.is_multiple_of(10) {
            "soak_victim".to_string()
        } else {
            format!("ghost{k}")
        };
        let body = json!({ "username": who, "password": "not the password" });
        match conn
            .call(Method::POST, "/api/v1/auth/login", "", &client, Some(&body))
            .await
        {
            Some((StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _)) => {
                load.counts.flood.fetch_add(1, Ordering::Relaxed);
            }
            // A full hashing pool says 503 at once: that is the flood
            // being refused cheaply, not a failure.
            Some((StatusCode::SERVICE_UNAVAILABLE, _)) => {
                load.counts.busy.fetch_add(1, Ordering::Relaxed);
            }
            _ => back_off().await,
        }
    }
}

/// KiB of the process's VmRSS.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// KiB of the store file.
fn store_kib(data: &Path) -> u64 {
    std::fs::metadata(data.join("latchkey.redb")).map_or(0, |m| m.len() / 1024)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

async fn login_token(addr: SocketAddr, user: &str, password: &str) -> Result<String, String> {
    let body = json!({ "username": user, "password": password });
    match send(addr, Method::POST, "/api/v1/auth/login", "", Some(&body)).await {
        Some((StatusCode::OK, b)) => Ok(b["token"].as_str().unwrap_or_default().to_string()),
        other => Err(format!("login {user}: {other:?}")),
    }
}

async fn soak(bin: PathBuf, data: PathBuf, seconds: u64) -> Result<(), String> {
    // A free loopback port, kept across the restart.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?
    };
    let mut server = Server {
        child: Server::spawn(&bin, &data, addr)?,
        bin,
        data,
        addr,
    };
    wait_up(addr).await?;
    let admin = login_token(addr, "admin", ADMIN_PASSWORD).await?;
    for n in 0..SIGNERS {
        let name = format!("soak{n}");
        let body = json!({ "username": name, "email": format!("{name}@example.com"),
            "password": PASSWORD, "roles": ["user"] });
        send(
            addr,
            Method::POST,
            "/api/v1/admin/users",
            &admin,
            Some(&body),
        )
        .await;
    }
    let body = json!({ "username": "soak_victim", "email": "soak_victim@example.com",
        "password": PASSWORD, "roles": ["user"] });
    send(
        addr,
        Method::POST,
        "/api/v1/admin/users",
        &admin,
        Some(&body),
    )
    .await;
    let reader_token = login_token(addr, "soak0", PASSWORD).await?;
    let key = match send(
        addr,
        Method::POST,
        "/api/v1/auth/keys",
        &reader_token,
        Some(&json!({ "name": "soak" })),
    )
    .await
    {
        Some((StatusCode::CREATED, b)) => b["apiKey"].as_str().unwrap_or_default().to_string(),
        other => return Err(format!("API key: {other:?}")),
    };

    let start = Instant::now();
    let load = Arc::new(Load {
        addr,
        start,
        end: start + Duration::from_secs(seconds),
        flooding: AtomicBool::new(false),
        seen: Mutex::default(),
        counts: Counts::default(),
    });
    let mut tasks = Vec::new();
    for n in 0..2 {
        tasks.push(tokio::spawn(signer(load.clone(), n)));
    }
    tasks.push(tokio::spawn(reader(
        load.clone(),
        Some(key),
        String::new(),
        0,
    )));
    tasks.push(tokio::spawn(reader(load.clone(), None, "soak1".into(), 1)));
    tasks.push(tokio::spawn(admin_writer(load.clone())));
    for n in 0..FLOOD as u64 {
        tasks.push(tokio::spawn(flooder(load.clone(), n)));
    }

    let kill_at = seconds / 3;
    let mut life = 0u8;
    let mut restarted_at = 0;
    while load.running() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let second = load.second();
        if second >= QUIET {
            load.flooding.store(true, Ordering::Relaxed);
        }
        if life == 0 && second >= kill_at {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe {
                libc::kill(server.pid() as i32, libc::SIGKILL);
            }
            let _ = server.child.wait();
            server.child = Server::spawn(&server.bin, &server.data, server.addr)?;
            wait_up(addr).await?;
            life = 1;
            restarted_at = load.second();
            eprintln!("soak: killed at {second} s, answering again at {restarted_at} s");
            continue;
        }
        if let Some(kib) = rss_kib(server.pid()) {
            load.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .rss
                .push((second, kib, life, store_kib(&server.data)));
        }
    }
    for t in tasks {
        let _ = t.await;
    }

    // Every acknowledged admin write, before the kill or after it, is there.
    let admin = login_token(addr, "admin", ADMIN_PASSWORD).await?;
    let seen = std::mem::take(&mut *load.seen.lock().unwrap_or_else(|e| e.into_inner()));
    let mut lost = Vec::new();
    for (ids, want) in [
        (&seen.created, StatusCode::OK),
        (&seen.deleted, StatusCode::NOT_FOUND),
    ] {
        for id in ids {
            let path = format!("/api/v1/admin/users/{id}");
            match send(addr, Method::GET, &path, &admin, None).await {
                Some((status, _)) if status == want => {}
                other => lost.push(format!("{id}: wanted {want}, got {other:?}")),
            }
        }
    }
    let final_rss = rss_kib(server.pid()).unwrap_or(0);
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(server.pid() as i32, libc::SIGTERM);
    }
    let _ = server.child.wait();

    // Latency: the quiet baseline against the rest, the second after the
    // restart left out (connections being made again).
    let mut quiet: Vec<u64> = Vec::new();
    let mut loaded: Vec<u64> = Vec::new();
    for &(s, us) in &seen.latencies {
        if s < QUIET {
            quiet.push(us);
        } else if s != restarted_at {
            loaded.push(us);
        }
    }
    quiet.sort_unstable();
    loaded.sort_unstable();
    let (p99_quiet, p99_loaded) = (percentile(&quiet, 0.99), percentile(&loaded, 0.99));
    let ratio = if p99_quiet > 0.0 {
        p99_loaded / p99_quiet
    } else {
        0.0
    };

    // Memory after the restart, less the store file's size (redb's page
    // cache holds the file's pages, up to its cache size, so a growing
    // store shows in VmRSS): its later half must not rise above its
    // earlier half by more than 5% and 2 MiB (it flattens).
    let after: Vec<(u64, u64)> = seen
        .rss
        .iter()
        .filter(|r| r.2 == 1)
        .map(|r| (r.0, r.1.saturating_sub(r.3)))
        .collect();
    let half = after.len() / 2;
    let max = |s: &[(u64, u64)]| s.iter().map(|r| r.1).max().unwrap_or(0);
    let (early, late) = (max(&after[..half]), max(&after[half..]));
    let bounded = late <= early + early / 20 + 2048;
    // The rise over the later half, per minute: what a longer run would add.
    let later = &after[half..];
    let slope = match (later.first(), later.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => {
            (b.1 as f64 - a.1 as f64) / 1024.0 * 60.0 / (b.0 - a.0) as f64
        }
        _ => 0.0,
    };
    let before_max = seen
        .rss
        .iter()
        .filter(|r| r.2 == 0)
        .map(|r| r.1)
        .max()
        .unwrap_or(0);
    let mib = |k: u64| k as f64 / 1024.0;
    let c = &load.counts;
    println!("soak: {seconds} s, killed with SIGKILL and restarted at {kill_at} s");
    println!(
        "  load: {} sign-ins, {} refreshes, {} authenticated requests, {} admin writes acknowledged, \
         {} flood logins refused after a hash and {} at once by the full hashing pool, \
         {} requests failed (most while the server was down)",
        c.sign_ins.load(Ordering::Relaxed),
        c.refreshes.load(Ordering::Relaxed),
        c.authenticated.load(Ordering::Relaxed),
        c.admin_writes.load(Ordering::Relaxed),
        c.flood.load(Ordering::Relaxed),
        c.busy.load(Ordering::Relaxed),
        c.failures.load(Ordering::Relaxed),
    );
    println!(
        "  acknowledged accounts: {} kept, {} deleted; lost or resurrected after the restart: {}",
        seen.created.len(),
        seen.deleted.len(),
        lost.len()
    );
    println!(
        "  p99 of authenticated requests: {p99_quiet:.2} ms quiet (first {QUIET} s, {} requests), \
         {p99_loaded:.2} ms under the flood ({} requests): ratio {ratio:.2} (benchmark goal <= 2: {})",
        quiet.len(),
        loaded.len(),
        if ratio <= 2.0 { "met" } else { "missed" }
    );
    println!(
        "  resident memory: peak {:.1} MiB before the kill, {:.1} MiB at the end; after the \
         restart, VmRSS less the store file peaks at {:.1} MiB in the first half of that life and \
         {:.1} MiB in the second ({slope:+.2} MiB a minute over the second half): {}",
        mib(before_max),
        mib(final_rss),
        mib(early),
        mib(late),
        if bounded {
            "flat (within 5% + 2 MiB)"
        } else {
            "STILL GROWING"
        }
    );
    let samples: Vec<String> = seen
        .rss
        .iter()
        .step_by((seen.rss.len() / 12).max(1))
        .map(|r| format!("{}s:{:.1}/{:.1}", r.0, mib(r.1), mib(r.3)))
        .collect();
    println!(
        "  samples (second: VmRSS MiB / store file MiB): {}",
        samples.join(" ")
    );
    for l in lost.iter().take(10) {
        println!("  LOST: {l}");
    }
    if !lost.is_empty() || !bounded {
        return Err("the soak failed".into());
    }
    Ok(())
}
