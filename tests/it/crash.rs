//! Crash safety under every kind of write (issue 14): the real binary
//! under concurrent writes of every kind is killed with SIGKILL at a
//! random moment, its store is checked with `latchkey verify` (in place,
//! or on a copy so that the restarted server recovers the file as the
//! kill left it), and the server is started again on the same data
//! directory. After each restart every write the server acknowledged (a
//! 2xx, or a refused login whose failure was counted) must be there,
//! every credential ended must stay ended, and what a write in flight at
//! the kill did must be whole: it happened or it did not.
//!
//! The moment of each kill comes from a seeded generator; the seed is
//! printed, and `LATCHKEY_CRASH_SEED` replays it. `LATCHKEY_CRASH_KILLS`
//! sets the number of kills (10 here; `scripts/crash-loop` runs 100).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::harness::{
    ADMIN, ADMIN_PASSWORD, KEYS, LOGIN, ME, PASSWORD, PATIENCE, Proc, USERS, proc_env, run_to_end,
    until,
};

/// Failed passwords that lock an account in this test.
const THRESHOLD: u32 = 4;

/// The wrong password the lockout writer sends.
const WRONG: &str = "not the password at all";

/// Kills when `LATCHKEY_CRASH_KILLS` does not say.
const DEFAULT_KILLS: usize = 10;

/// How many items are checked after a restart besides those of the cycle
/// just killed (all of them while there are fewer): older items were each
/// checked fully after the kill that followed them, and the sample keeps
/// a long run's checks from growing with every kill.
const OLDER_CHECKED: usize = 300;

/// splitmix64: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// True once in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// A response, read in full.
struct Reply {
    /// The status.
    status: StatusCode,
    /// The headers (the console's Set-Cookie).
    headers: HeaderMap,
    /// The body, whole.
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn str(&self, field: &str) -> String {
        self.json()[field].as_str().unwrap_or_default().to_string()
    }
}

/// One request on a new connection. `None` when the connection fails or
/// breaks (the server was killed), so the writers stop without a panic.
async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Option<Reply> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{}", addr.port()));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let bytes = match body {
            Some(b) => {
                builder = builder.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let response = sender
            .send_request(builder.body(Full::new(bytes)).ok()?)
            .await
            .ok()?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some(Reply {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .ok()
        .flatten()
}

/// What the last acknowledged write left an item as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Created, or a credential that still works.
    Live,
    /// Deleted, revoked, ended.
    Dead,
}

/// Something a writer made, and how to look at it.
#[derive(Debug, Clone)]
enum Kind {
    /// An account, by id.
    Account { id: String },
    /// An API key (the secret) and its owner's item.
    Key {
        id: String,
        secret: String,
        owner: usize,
    },
    /// A session, by its access token.
    Session { access: String },
    /// A console session, by its cookie.
    Console { cookie: String },
    /// An S2S token.
    S2s { secret: String },
    /// A reseller or merchant, by its admin API path.
    Tenant { path: String },
    /// A refresh token family: the current token and those rotated out.
    Family {
        current: String,
        rotated: Vec<String>,
    },
    /// An account whose wrong passwords are counted: acknowledged
    /// failures since it was made (or since it was last seen locked).
    Lockout {
        name: String,
        failures: u32,
        locked: bool,
    },
}

/// A tracked item.
#[derive(Debug, Clone)]
struct Item {
    /// The kill cycle that made it.
    cycle: usize,
    /// What it is, and what a check needs to look at it.
    kind: Kind,
    /// What the last acknowledged write on it left it as.
    fate: Fate,
    /// A write on it was sent and not acknowledged: after the kill either
    /// outcome is right, and what the restarted server shows is kept.
    pending: bool,
}

/// Every item, and the count of acknowledged writes.
#[derive(Default)]
struct Ledger {
    /// Every item made, in order; writers refer to them by index.
    items: Vec<Item>,
    /// Writes acknowledged over the whole run.
    acked: usize,
    /// Writes in flight when a kill came (never acknowledged).
    unacked: usize,
}

type Shared = Arc<Mutex<Ledger>>;

fn push(ledger: &Shared, cycle: usize, kind: Kind, fate: Fate) -> usize {
    let mut l = ledger.lock().expect("ledger");
    l.items.push(Item {
        cycle,
        kind,
        fate,
        pending: false,
    });
    l.items.len() - 1
}

/// A writer's context.
#[derive(Clone)]
struct Ctx {
    /// The server's address in this cycle.
    addr: SocketAddr,
    /// An admin's access token.
    admin: String,
    /// The kill cycle.
    cycle: usize,
    /// Where acknowledged writes are recorded.
    ledger: Shared,
    /// Writes acknowledged in this cycle: the kill waits for a number.
    acked: Arc<AtomicUsize>,
    /// Requests sent and not yet answered: those cut off by the kill.
    inflight: Arc<AtomicUsize>,
}

/// Why a writer stopped other than by the kill.
type Stop = Result<(), String>;

impl Ctx {
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> Option<Reply> {
        let auth = format!("Bearer {bearer}");
        let headers: Vec<(&str, &str)> = if bearer.is_empty() {
            vec![]
        } else {
            vec![("authorization", auth.as_str())]
        };
        self.send(method, path, &headers, body).await
    }

    /// [`send`], counted in flight until answered.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Option<Reply> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let r = send(self.addr, method, path, headers, body).await;
        if r.is_some() {
            self.inflight.fetch_sub(1, Ordering::SeqCst);
        }
        r
    }

    fn ack(&self) {
        self.acked.fetch_add(1, Ordering::SeqCst);
        self.ledger.lock().expect("ledger").acked += 1;
    }

    fn set_pending(&self, i: usize) {
        self.ledger.lock().expect("ledger").items[i].pending = true;
    }

    /// An acknowledged write left item `i` as `fate`.
    fn settle(&self, i: usize, fate: Fate) {
        let mut l = self.ledger.lock().expect("ledger");
        l.items[i].fate = fate;
        l.items[i].pending = false;
        l.acked += 1;
        drop(l);
        self.acked.fetch_add(1, Ordering::SeqCst);
    }

    fn item(&self, i: usize) -> Item {
        self.ledger.lock().expect("ledger").items[i].clone()
    }

    /// Creates an account as the admin; `None` once the server is gone.
    async fn create_account(&self, name: &str) -> Result<Option<usize>, String> {
        let body = json!({
            "username": name, "email": format!("{name}@example.com"),
            "password": PASSWORD, "roles": ["user"],
        });
        let Some(r) = self
            .call(Method::POST, USERS, &self.admin, Some(&body))
            .await
        else {
            return Ok(None);
        };
        if r.status != StatusCode::CREATED {
            return Err(format!("creating {name}: {} {}", r.status, r.text()));
        }
        self.ack();
        let kind = Kind::Account { id: r.str("id") };
        Ok(Some(push(&self.ledger, self.cycle, kind, Fate::Live)))
    }

    /// Deletes account item `i` as the admin, with every item that dies
    /// with it (`with`) following it.
    async fn delete_account(&self, i: usize, with: &[usize]) -> Result<bool, String> {
        let Kind::Account { id } = self.item(i).kind else {
            return Err("not an account".into());
        };
        for &j in std::iter::once(&i).chain(with) {
            self.set_pending(j);
        }
        let path = format!("{USERS}/{id}");
        let Some(r) = self.call(Method::DELETE, &path, &self.admin, None).await else {
            return Ok(false);
        };
        if r.status != StatusCode::NO_CONTENT {
            return Err(format!("deleting {id}: {} {}", r.status, r.text()));
        }
        self.settle(i, Fate::Dead);
        let mut l = self.ledger.lock().expect("ledger");
        for &j in with {
            l.items[j].fate = Fate::Dead;
            l.items[j].pending = false;
        }
        Ok(true)
    }

    /// Signs `name` in through the canonical API: (access, refresh).
    async fn login(&self, name: &str) -> Result<Option<(String, String)>, String> {
        let body = json!({ "username": name, "password": PASSWORD });
        let Some(r) = self.call(Method::POST, LOGIN, "", Some(&body)).await else {
            return Ok(None);
        };
        if r.status != StatusCode::OK {
            return Err(format!("login {name}: {} {}", r.status, r.text()));
        }
        self.ack();
        Ok(Some((r.str("token"), r.str("refreshToken"))))
    }
}

/// Accounts created and deleted.
async fn accounts_writer(ctx: Ctx, mut rng: Rng) -> Stop {
    let mut live = Vec::new();
    for n in 0.. {
        let Some(i) = ctx.create_account(&format!("c{}a{n}", ctx.cycle)).await? else {
            return Ok(());
        };
        live.push(i);
        if rng.one_in(2) && live.len() > 1 {
            let victim = live.remove(rng.range(0, live.len() as u64) as usize);
            if !ctx.delete_account(victim, &[]).await? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// API keys issued and revoked by their owner, and owners deleted with
/// their keys.
async fn keys_writer(ctx: Ctx, mut rng: Rng) -> Stop {
    for n in 0.. {
        let name = format!("c{}k{n}", ctx.cycle);
        let Some(owner) = ctx.create_account(&name).await? else {
            return Ok(());
        };
        let Some((access, _)) = ctx.login(&name).await? else {
            return Ok(());
        };
        // The owner's session: no session outlives its account.
        let session = push(
            &ctx.ledger,
            ctx.cycle,
            Kind::Session {
                access: access.clone(),
            },
            Fate::Live,
        );
        let mut keys = Vec::new();
        for k in 0..3 {
            let body = json!({ "name": format!("key {k}") });
            let Some(r) = ctx.call(Method::POST, KEYS, &access, Some(&body)).await else {
                return Ok(());
            };
            if r.status != StatusCode::CREATED {
                return Err(format!("key: {} {}", r.status, r.text()));
            }
            ctx.ack();
            let kind = Kind::Key {
                id: r.str("keyId"),
                secret: r.str("apiKey"),
                owner,
            };
            keys.push(push(&ctx.ledger, ctx.cycle, kind, Fate::Live));
        }
        let revoked = keys.remove(rng.range(0, keys.len() as u64) as usize);
        let Kind::Key { id, .. } = ctx.item(revoked).kind else {
            return Err("not a key".into());
        };
        ctx.set_pending(revoked);
        let path = format!("{KEYS}/{id}");
        let Some(r) = ctx.call(Method::DELETE, &path, &access, None).await else {
            return Ok(());
        };
        if r.status != StatusCode::NO_CONTENT {
            return Err(format!("key delete: {} {}", r.status, r.text()));
        }
        ctx.settle(revoked, Fate::Dead);
        keys.push(session);
        if rng.one_in(2) && !ctx.delete_account(owner, &keys).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Sessions opened, and ended by their own logout, by the admin one by
/// one, or by the admin all at once.
async fn sessions_writer(ctx: Ctx, mut rng: Rng, user: String, user_id: String) -> Stop {
    let mut live: Vec<usize> = Vec::new();
    loop {
        let Some((access, _)) = ctx.login(&user).await? else {
            return Ok(());
        };
        let i = push(
            &ctx.ledger,
            ctx.cycle,
            Kind::Session {
                access: access.clone(),
            },
            Fate::Live,
        );
        let (ended, path, method, want) = match rng.range(0, 6) {
            0 | 1 => {
                live.push(i);
                continue;
            }
            2 | 3 => (
                vec![i],
                "/api/v1/auth/logout".to_string(),
                Method::POST,
                StatusCode::OK,
            ),
            4 => {
                let sid = crate::harness::jwt_claims(&access)["sid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (
                    vec![i],
                    format!("{USERS}/{user_id}/sessions/{sid}"),
                    Method::DELETE,
                    StatusCode::NO_CONTENT,
                )
            }
            _ => {
                live.push(i);
                (
                    std::mem::take(&mut live),
                    format!("{USERS}/{user_id}/sessions"),
                    Method::DELETE,
                    StatusCode::OK,
                )
            }
        };
        for &j in &ended {
            ctx.set_pending(j);
        }
        let bearer = if method == Method::POST {
            access.as_str()
        } else {
            ctx.admin.as_str()
        };
        let Some(r) = ctx.call(method, &path, bearer, None).await else {
            return Ok(());
        };
        if r.status != want {
            return Err(format!(
                "ending sessions ({path}): {} {}",
                r.status,
                r.text()
            ));
        }
        ctx.ack();
        let mut l = ctx.ledger.lock().expect("ledger");
        for &j in &ended {
            l.items[j].fate = Fate::Dead;
            l.items[j].pending = false;
        }
    }
}

/// Refresh tokens rotated, and rotated ones replayed (which ends the
/// family).
async fn refresh_writer(ctx: Ctx, mut rng: Rng, user: String) -> Stop {
    loop {
        let Some((_, refresh)) = ctx.login(&user).await? else {
            return Ok(());
        };
        let i = push(
            &ctx.ledger,
            ctx.cycle,
            Kind::Family {
                current: refresh,
                rotated: vec![],
            },
            Fate::Live,
        );
        for _ in 0..rng.range(1, 5) {
            let Kind::Family { current, .. } = ctx.item(i).kind else {
                return Err("not a family".into());
            };
            ctx.set_pending(i);
            let body = json!({ "refreshToken": current });
            let Some(r) = ctx
                .call(Method::POST, "/api/v1/auth/refresh", "", Some(&body))
                .await
            else {
                return Ok(());
            };
            if r.status != StatusCode::OK {
                return Err(format!("refresh: {} {}", r.status, r.text()));
            }
            let next = r.str("refreshToken");
            {
                let mut l = ctx.ledger.lock().expect("ledger");
                if let Kind::Family { current, rotated } = &mut l.items[i].kind {
                    rotated.push(std::mem::replace(current, next));
                }
            }
            ctx.settle(i, Fate::Live);
        }
        if rng.one_in(2) {
            let Kind::Family { rotated, .. } = ctx.item(i).kind else {
                return Err("not a family".into());
            };
            let old = &rotated[rng.range(0, rotated.len() as u64) as usize];
            ctx.set_pending(i);
            let body = json!({ "refreshToken": old });
            let Some(r) = ctx
                .call(Method::POST, "/api/v1/auth/refresh", "", Some(&body))
                .await
            else {
                return Ok(());
            };
            if r.status != StatusCode::UNAUTHORIZED {
                return Err(format!("replay: {} {}", r.status, r.text()));
            }
            ctx.settle(i, Fate::Dead);
        }
    }
}

/// Wrong passwords on one account, each failure counted durably before
/// its answer.
async fn lockout_writer(ctx: Ctx, i: usize) -> Stop {
    let Kind::Lockout { name, .. } = ctx.item(i).kind else {
        return Err("not a lockout".into());
    };
    loop {
        ctx.set_pending(i);
        let body = json!({ "username": name, "password": WRONG });
        let Some(r) = ctx.call(Method::POST, LOGIN, "", Some(&body)).await else {
            return Ok(());
        };
        let locked = match r.status {
            StatusCode::UNAUTHORIZED => false,
            StatusCode::FORBIDDEN => true,
            s => return Err(format!("wrong password: {s} {}", r.text())),
        };
        {
            let mut l = ctx.ledger.lock().expect("ledger");
            if let Kind::Lockout {
                failures,
                locked: seen,
                ..
            } = &mut l.items[i].kind
            {
                *failures += u32::from(!locked);
                *seen |= locked;
            }
        }
        ctx.settle(i, Fate::Live);
        if locked {
            return Ok(());
        }
    }
}

/// Resellers and merchants created.
async fn tenants_writer(ctx: Ctx, mut rng: Rng) -> Stop {
    let mut resellers: Vec<String> = Vec::new();
    for n in 0.. {
        let id = format!("c{}t{n}", ctx.cycle);
        let (path, body) = if resellers.is_empty() || rng.one_in(2) {
            ("resellers", json!({ "id": id, "name": format!("R {id}") }))
        } else {
            let under = &resellers[rng.range(0, resellers.len() as u64) as usize];
            (
                "merchants",
                json!({ "id": id, "reseller_id": under, "name": format!("M {id}") }),
            )
        };
        let collection = format!("/api/v1/admin/{path}");
        let Some(r) = ctx
            .call(Method::POST, &collection, &ctx.admin, Some(&body))
            .await
        else {
            return Ok(());
        };
        if r.status != StatusCode::CREATED {
            return Err(format!("{path}: {} {}", r.status, r.text()));
        }
        ctx.ack();
        if path == "resellers" {
            resellers.push(id.clone());
        }
        let kind = Kind::Tenant {
            path: format!("{collection}/{id}"),
        };
        push(&ctx.ledger, ctx.cycle, kind, Fate::Live);
    }
    Ok(())
}

/// S2S tokens issued and revoked.
async fn s2s_writer(ctx: Ctx, mut rng: Rng, reseller: String) -> Stop {
    for n in 0.. {
        let body =
            json!({ "name": format!("svc {n}"), "role": "reseller", "reseller_id": reseller });
        let Some(r) = ctx
            .call(Method::POST, "/s2s-token", &ctx.admin, Some(&body))
            .await
        else {
            return Ok(());
        };
        if r.status != StatusCode::OK {
            return Err(format!("s2s: {} {}", r.status, r.text()));
        }
        ctx.ack();
        let secret = r.str("token");
        let id: String = secret.chars().skip(4).take(16).collect();
        let i = push(&ctx.ledger, ctx.cycle, Kind::S2s { secret }, Fate::Live);
        if rng.one_in(2) {
            ctx.set_pending(i);
            let path = format!("/api/v1/admin/s2s-tokens/{id}");
            let Some(r) = ctx.call(Method::DELETE, &path, &ctx.admin, None).await else {
                return Ok(());
            };
            if r.status != StatusCode::NO_CONTENT {
                return Err(format!("s2s revoke: {} {}", r.status, r.text()));
            }
            ctx.settle(i, Fate::Dead);
        }
    }
    Ok(())
}

/// Console sessions opened and closed, as the page does it.
async fn console_writer(ctx: Ctx, mut rng: Rng, user: String) -> Stop {
    let origin = format!("http://127.0.0.1:{}", ctx.addr.port());
    loop {
        let body = json!({ "username": user, "password": PASSWORD });
        let Some(r) = ctx
            .send(Method::POST, "/api/v1/console/session", &[], Some(&body))
            .await
        else {
            return Ok(());
        };
        if r.status != StatusCode::OK {
            return Err(format!("console: {} {}", r.status, r.text()));
        }
        ctx.ack();
        let cookie = r
            .headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .to_string();
        let csrf = r.str("csrf_token");
        let i = push(
            &ctx.ledger,
            ctx.cycle,
            Kind::Console {
                cookie: cookie.clone(),
            },
            Fate::Live,
        );
        if rng.one_in(3) {
            continue;
        }
        ctx.set_pending(i);
        let headers = [
            ("cookie", cookie.as_str()),
            ("x-csrf-token", csrf.as_str()),
            ("origin", origin.as_str()),
        ];
        let Some(r) = ctx
            .send(Method::DELETE, "/api/v1/console/session", &headers, None)
            .await
        else {
            return Ok(());
        };
        if r.status != StatusCode::NO_CONTENT {
            return Err(format!("console close: {} {}", r.status, r.text()));
        }
        ctx.settle(i, Fate::Dead);
    }
}

/// The server's environment: light hashing, login limits out of the way
/// (the lockout rule is what is tested), a short lockout threshold.
fn server_env(data: &str) -> Vec<(&str, &str)> {
    let mut env = proc_env(data);
    env.extend([
        ("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("LATCHKEY_RATE_LOGIN_PER_IP", "1000000"),
        ("LATCHKEY_RATE_LOGIN_PER_ACCOUNT", "1000000"),
        ("LATCHKEY_LOCKOUT_THRESHOLD", "4"),
        ("LATCHKEY_LOCKOUT_SECONDS", "86400"),
        ("LATCHKEY_ACCESS_TTL", "86400"),
        ("LATCHKEY_MAX_CONNECTIONS_PER_IP", "1024"),
    ]);
    env
}

/// A signed-in admin on the server at `addr`.
async fn admin_token(addr: SocketAddr) -> String {
    let body = json!({ "username": ADMIN, "password": ADMIN_PASSWORD });
    let r = send(addr, Method::POST, LOGIN, &[], Some(&body))
        .await
        .expect("the server answers");
    assert_eq!(r.status, StatusCode::OK, "admin login: {}", r.text());
    r.str("token")
}

/// `latchkey verify` on the data directory as the kill left it: on the
/// directory itself after even kills (what an operator runs before
/// starting again), and on a copy after odd ones, since verify's open
/// repairs the file it checks and the restarted server must then be the
/// one to recover the original.
fn verify_killed(data: &Path, scratch: &Path, in_place: bool) {
    let target = if in_place {
        data
    } else {
        std::fs::create_dir_all(scratch).expect("scratch");
        for f in ["latchkey.redb", "master.key"] {
            std::fs::copy(data.join(f), scratch.join(f)).expect("copy the store");
        }
        scratch
    };
    let (code, out) = run_to_end(
        &["verify"],
        &[("LATCHKEY_DATA_DIR", target.to_str().expect("utf-8 path"))],
    );
    assert_eq!(
        code,
        Some(0),
        "latchkey verify refuses the killed store: {out}"
    );
    assert!(out.contains("checked the file directly"), "{out}");
    if !in_place {
        std::fs::remove_dir_all(scratch).expect("scratch removed");
    }
}

/// What the server shows of `item` after a restart, or why that is no
/// state any history of acknowledged writes allows. A refresh family is
/// ended by the check itself (so `item.fate` becomes dead); a lockout is
/// locked by it.
async fn observe(addr: SocketAddr, admin: &str, item: &mut Item) -> Result<Fate, String> {
    let bearer = |t: &str| format!("Bearer {t}");
    let me = |auth: String| async move {
        let r = send(addr, Method::GET, ME, &[("authorization", &auth)], None)
            .await
            .ok_or("no answer")?;
        match r.status {
            StatusCode::OK => Ok(Fate::Live),
            StatusCode::UNAUTHORIZED => Ok(Fate::Dead),
            s => Err(format!("{ME}: {s} {}", r.text())),
        }
    };
    let get = |path: String| async move {
        let auth = bearer(admin);
        let r = send(addr, Method::GET, &path, &[("authorization", &auth)], None)
            .await
            .ok_or("no answer")?;
        match r.status {
            StatusCode::OK => Ok((Fate::Live, r.json())),
            StatusCode::NOT_FOUND => Ok((Fate::Dead, Value::Null)),
            s => Err(format!("{path}: {s} {}", r.text())),
        }
    };
    let refresh = |token: String| async move {
        let body = json!({ "refreshToken": token });
        let r = send(addr, Method::POST, "/api/v1/auth/refresh", &[], Some(&body))
            .await
            .ok_or("no answer")?;
        match r.status {
            StatusCode::OK => Ok(Some(r.str("refreshToken"))),
            StatusCode::UNAUTHORIZED => Ok(None),
            s => Err(format!("refresh: {s} {}", r.text())),
        }
    };
    match &mut item.kind {
        Kind::Account { id } => Ok(get(format!("{USERS}/{id}")).await?.0),
        Kind::Tenant { path } => Ok(get(path.clone()).await?.0),
        Kind::Session { access } => me(bearer(access)).await,
        Kind::S2s { secret } => me(bearer(secret)).await,
        Kind::Key { secret, .. } => me(bearer(secret)).await,
        Kind::Console { cookie } => {
            let r = send(addr, Method::GET, ME, &[("cookie", cookie.as_str())], None)
                .await
                .ok_or("no answer")?;
            match r.status {
                StatusCode::OK => Ok(Fate::Live),
                StatusCode::UNAUTHORIZED => Ok(Fate::Dead),
                s => Err(format!("console {ME}: {s} {}", r.text())),
            }
        }
        Kind::Family { current, rotated } => {
            // The acknowledged current token works (a rotation, recorded
            // like any other); then a rotated one is refused, and that
            // replay ends the family: the newest token is refused too.
            let seen = match refresh(current.clone()).await? {
                Some(next) => {
                    rotated.push(std::mem::replace(current, next));
                    Fate::Live
                }
                None => Fate::Dead,
            };
            for old in rotated.iter().take(2) {
                if let Some(next) = refresh(old.clone()).await? {
                    return Err(format!("rotated refresh token {old} works again ({next})"));
                }
            }
            if let Some(next) = refresh(current.clone()).await? {
                return Err(format!(
                    "a replayed refresh token did not end its family: {current} rotated to {next}"
                ));
            }
            item.fate = Fate::Dead;
            Ok(seen)
        }
        Kind::Lockout {
            name,
            failures,
            locked,
        } => {
            // Top the acknowledged failures up to the threshold: the
            // account must then be locked, so no acknowledged failure was
            // lost (one in flight at the kill may have counted too).
            let wrong = json!({ "username": name, "password": WRONG });
            if !*locked {
                for _ in *failures..THRESHOLD {
                    let r = send(addr, Method::POST, LOGIN, &[], Some(&wrong))
                        .await
                        .ok_or("no answer")?;
                    if !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                        return Err(format!("wrong password: {} {}", r.status, r.text()));
                    }
                }
            }
            let right = json!({ "username": name, "password": PASSWORD });
            let r = send(addr, Method::POST, LOGIN, &[], Some(&right))
                .await
                .ok_or("no answer")?;
            if r.status != StatusCode::FORBIDDEN {
                return Err(format!(
                    "{name}: {} acknowledged failures (locked seen: {locked}) and the \
                     threshold topped up, yet the right password answers {} {}",
                    failures,
                    r.status,
                    r.text()
                ));
            }
            *locked = true;
            Ok(Fate::Live)
        }
    }
}

/// Checks items after a restart: each settled item shows its fate, a
/// pending one shows either and keeps what it shows, a live key's owner
/// is live and lists it, and a dead key is listed by no one.
async fn check(addr: SocketAddr, ledger: &Shared, cycle: usize, rng: &mut Rng) -> usize {
    let admin = admin_token(addr).await;
    let items = ledger.lock().expect("ledger").items.clone();
    let (recent, older): (Vec<usize>, Vec<usize>) =
        (0..items.len()).partition(|&i| items[i].cycle + 1 >= cycle);
    let mut chosen = recent;
    if older.len() <= OLDER_CHECKED {
        chosen.extend(older);
    } else {
        for _ in 0..OLDER_CHECKED {
            chosen.push(older[rng.range(0, older.len() as u64) as usize]);
        }
        chosen.sort_unstable();
        chosen.dedup();
    }
    let mut observed: Vec<(usize, Item, Fate)> = Vec::new();
    // Eight at a time: the checks are many small requests.
    for batch in chosen.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for &i in batch {
            let mut item = items[i].clone();
            let admin = admin.clone();
            set.spawn(async move {
                let seen = observe(addr, &admin, &mut item).await;
                if let (Ok(fate), false) = (&seen, matches!(item.kind, Kind::Family { .. })) {
                    item.fate = *fate;
                }
                (i, item, seen)
            });
        }
        while let Some(done) = set.join_next().await {
            let (i, item, seen) = done.expect("check task");
            let seen = seen.unwrap_or_else(|e| panic!("item {i} {:?}: {e}", items[i].kind));
            observed.push((i, item, seen));
        }
    }
    {
        let mut l = ledger.lock().expect("ledger");
        for (i, item, seen) in &observed {
            let was = &items[*i];
            if !was.pending {
                assert_eq!(
                    *seen, was.fate,
                    "item {i} (cycle {}) {:?}: acknowledged as {:?}, after the restart {:?}",
                    was.cycle, was.kind, was.fate, seen
                );
            }
            l.items[*i] = Item {
                pending: false,
                ..item.clone()
            };
        }
    }
    // No key without its owner: a live key's owner is live and lists it;
    // a dead key is in no list.
    let keys: Vec<(String, usize, Fate)> = observed
        .iter()
        .filter_map(|(_, item, seen)| match &item.kind {
            Kind::Key { id, owner, .. } => Some((id.clone(), *owner, *seen)),
            _ => None,
        })
        .collect();
    for (key, owner, fate) in keys {
        let Kind::Account { id } = &items[owner].kind else {
            panic!("a key's owner is not an account");
        };
        let auth = format!("Bearer {admin}");
        let path = format!("{USERS}/{id}/keys?limit=1000");
        let r = send(addr, Method::GET, &path, &[("authorization", &auth)], None)
            .await
            .expect("an answer");
        let listed = r.status == StatusCode::OK
            && r.json()["items"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k["keyId"] == key.as_str()));
        match fate {
            Fate::Live => assert!(
                listed,
                "key {key} works but its owner {id} does not list it: {} {}",
                r.status,
                r.text()
            ),
            Fate::Dead => assert!(!listed, "key {key} is refused but still listed"),
        }
    }
    observed.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_nothing_ended_comes_back() {
    let kills: usize = std::env::var("LATCHKEY_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let seed: u64 = std::env::var("LATCHKEY_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash loop: {kills} kills, LATCHKEY_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_s = data.to_str().expect("utf-8 path").to_string();
    let scratch = dir.path().join("verify");
    let ledger: Shared = Arc::default();
    let mut checked = 0;
    let mut proc = tokio::task::block_in_place(|| Proc::spawn(&[], &server_env(&data_s)));
    for cycle in 0..kills {
        let addr = proc.addr;
        let admin = admin_token(addr).await;
        let acked = Arc::new(AtomicUsize::new(0));
        let inflight = Arc::new(AtomicUsize::new(0));
        let ctx = Ctx {
            addr,
            admin,
            cycle,
            ledger: ledger.clone(),
            acked: acked.clone(),
            inflight: inflight.clone(),
        };
        // Accounts and a tenant the cycle's writers act as or on.
        let mut users = Vec::new();
        for role in ["s", "r", "o"] {
            let name = format!("c{cycle}{role}");
            let i = ctx
                .create_account(&name)
                .await
                .expect("setup")
                .expect("the server answers");
            let Kind::Account { id } = ctx.item(i).kind else {
                unreachable!("an account was pushed");
            };
            users.push((name, id));
        }
        let victim = format!("c{cycle}lock");
        ctx.create_account(&victim)
            .await
            .expect("setup")
            .expect("the server answers");
        let lock = push(
            &ledger,
            cycle,
            Kind::Lockout {
                name: victim,
                failures: 0,
                locked: false,
            },
            Fate::Live,
        );
        let reseller = format!("c{cycle}s2s");
        let body = json!({ "id": reseller, "name": "S2S" });
        let r = ctx
            .call(
                Method::POST,
                "/api/v1/admin/resellers",
                &ctx.admin,
                Some(&body),
            )
            .await
            .expect("the server answers");
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        let mut writers = tokio::task::JoinSet::new();
        let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut spawn = |writer: std::pin::Pin<Box<dyn Future<Output = Stop> + Send>>| {
            let refused = refused.clone();
            writers.spawn(async move {
                let stop = writer.await;
                refused.fetch_or(stop.is_err(), Ordering::SeqCst);
                stop
            });
        };
        let mut fork = || Rng(rng.next());
        spawn(Box::pin(accounts_writer(ctx.clone(), fork())));
        spawn(Box::pin(keys_writer(ctx.clone(), fork())));
        let [(s, s_id), (r, _), (o, _)] = <[_; 3]>::try_from(users).expect("three users");
        spawn(Box::pin(sessions_writer(ctx.clone(), fork(), s, s_id)));
        spawn(Box::pin(refresh_writer(ctx.clone(), fork(), r)));
        spawn(Box::pin(console_writer(ctx.clone(), fork(), o)));
        spawn(Box::pin(lockout_writer(ctx.clone(), lock)));
        spawn(Box::pin(tenants_writer(ctx.clone(), fork())));
        spawn(Box::pin(s2s_writer(ctx.clone(), fork(), reseller)));

        // The kill comes after a random number of acknowledged writes,
        // while every writer has its next one in flight.
        let target = rng.range(20, 120) as usize;
        // A writer refused before then ends the wait (and the test, below).
        until(&format!("{target} acknowledged writes"), || {
            acked.load(Ordering::SeqCst) >= target || refused.load(Ordering::SeqCst)
        })
        .await;
        proc.signal(libc::SIGKILL);
        tokio::task::block_in_place(|| proc.wait());
        while let Some(done) = writers.join_next().await {
            if let Err(e) = done.expect("writer task") {
                panic!("a writer was refused before the kill: {e}");
            }
        }
        ledger.lock().expect("ledger").unacked += inflight.load(Ordering::SeqCst);

        tokio::task::block_in_place(|| verify_killed(&data, &scratch, cycle % 2 == 0));
        proc = tokio::task::block_in_place(|| Proc::spawn(&[], &server_env(&data_s)));
        checked += check(proc.addr, &ledger, cycle, &mut rng).await;
    }
    let l = ledger.lock().expect("ledger");
    eprintln!(
        "crash loop: {kills} kills, {} writes acknowledged, {} in flight at a kill, \
         {} items tracked, {checked} checks after restarts, nothing lost (seed {seed})",
        l.acked,
        l.unacked,
        l.items.len()
    );
    drop(l);
    proc.signal(libc::SIGTERM);
    let status = tokio::task::block_in_place(|| proc.wait());
    assert!(status.success(), "{}", proc.stderr());
}
