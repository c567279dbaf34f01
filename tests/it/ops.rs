//! Operating the server (issue 12): the first admin on a start that can
//! serve, its password file, recover-admin with the server running and
//! stopped, backup while writing, restore, verify, the control socket,
//! check-config, --version and healthcheck. The commands run as the real
//! binary, against in-process servers or `latchkey serve` processes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use latchkey::config::Layer;
use latchkey::domain::Clock;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::*;

const LIGHT: [(&str, &str); 2] = [
    ("LATCHKEY_ARGON2_MEMORY_KIB", "256"),
    ("LATCHKEY_ARGON2_ITERATIONS", "1"),
];

/// The environment of a command aimed at the data directory `data`.
fn env_for(data: &Path, extra: &[(&'static str, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("LATCHKEY_DATA_DIR".into(), data.display().to_string()),
        ("LATCHKEY_LISTEN".into(), "127.0.0.1:0".into()),
    ];
    env.extend(LIGHT.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// Runs the binary to its end off the async workers (an in-process server
/// may be serving on this runtime); returns (exit code, stderr + stdout).
async fn cli(args: &[&str], env: Vec<(String, String)>) -> (Option<i32>, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_to_end(&args, &env)
    })
    .await
    .expect("command ran")
}

/// The value after `name: ` on a line of `text`.
fn field(text: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in: {text}"))
        .to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

async fn login_status(at: &At, username: &str, password: &str) -> StatusCode {
    at.post("/api/v1/auth/login")
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .status
}

#[tokio::test]
async fn a_first_start_that_cannot_listen_leaves_the_first_admin_to_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().to_string();
    let admin = [("LATCHKEY_ADMIN_USERNAME", "boss".to_string())];

    let mut env = env_for(&data, &admin);
    env.push(("LATCHKEY_LISTEN".into(), port.clone()));
    let (code, out) = cli(&["serve"], env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("password:"), "no admin was made: {out}");
    assert!(data.join("latchkey.redb").exists(), "the store was opened");

    // A certificate path that is wrong, as a first configuration may have.
    let mut env = env_for(&data, &admin);
    env.push(("LATCHKEY_TLS_CERT".into(), "/nonexistent/cert.pem".into()));
    env.push(("LATCHKEY_TLS_KEY".into(), "/nonexistent/key.pem".into()));
    let (code, out) = cli(&["serve"], env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("/nonexistent/cert.pem"), "{out}");
    assert!(!out.contains("password:"), "no admin was made: {out}");

    let env = env_for(&data, &admin);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = Proc::spawn(&[], &env);
    let err = p.stderr();
    assert_eq!(field(&err, "username"), "boss", "{err}");
    assert_eq!(field(&err, "email"), "admin@localhost", "{err}");
    let password = field(&err, "password");
    assert_eq!(
        login_status(&p.at(), "boss", &password).await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&p.at(), "admin@localhost", &password).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn under_systemd_the_first_password_goes_to_a_private_file_and_not_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = env_for(&data, &[("INVOCATION_ID", "0123456789abcdef".to_string())]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = Proc::spawn(&[], &env);
    let file = data.join("initial-admin-password");
    let err = p.stderr();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(field(&text, "username"), "admin");
    assert_eq!(field(&text, "email"), "admin@localhost");
    let password = field(&text, "password");
    assert!(!err.contains(&password), "the password stays out of stderr");
    assert!(!err.contains("password: "), "{err}");
    assert_eq!(
        login_status(&p.at(), "admin", &password).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_password_file_goes_when_that_password_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let boot = latchkey::Bootstrap {
        password: None,
        ..bootstrap()
    };
    let layer = Layer {
        admin_password_file: Some(true),
        ..Layer::default()
    };
    let srv = Server::start_in(dir, layer, Clock::manual(now()), None, boot).await;
    let first = srv
        .running()
        .first_admin
        .clone()
        .expect("made the first admin");
    assert_eq!(first.password, None, "not returned for the terminal");
    let file = first.file.expect("written to a file");
    assert_eq!(file, srv.data_dir().join("initial-admin-password"));
    assert_eq!(mode(&file), 0o600);
    let password = field(&std::fs::read_to_string(&file).unwrap(), "password");
    let token = srv.token_of(ADMIN, &password).await;
    let me = srv.get(ME).bearer(&token).send().await.json();

    // Housekeeping leaves it while the password stands.
    srv.running().housekeeping().await;
    assert!(file.exists());

    let r = srv
        .post(&format!("{USERS}/{}/password", me["id"].as_str().unwrap()))
        .bearer(&token)
        .json(&json!({ "password": PASSWORD, "current_password": password }))
        .send()
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert!(!file.exists(), "removed as the change was answered");
}

#[tokio::test]
async fn recover_admin_through_the_running_server() {
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(3),
        ..Layer::default()
    })
    .await;
    let first = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let token = first["token"].as_str().unwrap().to_string();
    let refresh = first["refreshToken"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(
            login_status(&At(srv.addr), ADMIN, "not the password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right password is refused now.
    assert_ne!(
        login_status(&At(srv.addr), ADMIN, ADMIN_PASSWORD).await,
        StatusCode::OK
    );

    let (code, out) = cli(&["recover-admin"], env_for(&srv.data_dir(), &[])).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("asked the running server"), "{out}");
    assert_eq!(field(&out, "username"), ADMIN);
    assert_eq!(field(&out, "sessions ended"), "1");
    let password = field(&out, "password");

    assert_eq!(srv.me_status(&token).await, StatusCode::UNAUTHORIZED);
    let r = srv
        .post("/api/v1/auth/refresh")
        .json(&json!({ "refreshToken": refresh }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(
        login_status(&At(srv.addr), ADMIN, ADMIN_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    let fresh = srv.token_of(ADMIN, &password).await;
    let me = srv.get(ME).bearer(&fresh).send().await.json();
    let audit = srv.audit(&fresh).await;
    let entry = audit
        .iter()
        .find(|e| e["event"] == "admin_recovered")
        .unwrap_or_else(|| panic!("no recovery in the audit log: {audit:?}"));
    assert_eq!(entry["target"], me["id"]);
    assert!(!entry.to_string().contains(&password));
}

#[tokio::test]
async fn recover_admin_on_a_stopped_server_opens_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let boot = [("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string())];
    let env = env_for(&data, &boot);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut p = Proc::spawn(&[], &env);
    let socket = data.join("control.sock");
    assert_eq!(mode(&socket), 0o600);
    let body = p
        .at()
        .post("/api/v1/auth/login")
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .json();
    let token = body["token"].as_str().unwrap().to_string();
    p.signal(libc::SIGTERM);
    assert!(p.wait().success());
    assert!(!socket.exists(), "a clean stop removes the socket");

    let (code, out) = cli(&["recover-admin", "admin"], env_for(&data, &[])).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("the server is not running: changed the store directly"),
        "{out}"
    );
    assert_eq!(field(&out, "sessions ended"), "1");
    let password = field(&out, "password");

    let p = Proc::spawn(&[], &env);
    let r = p.at().get(ME).bearer(&token).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login_status(&p.at(), ADMIN, ADMIN_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    let body = p
        .at()
        .post("/api/v1/auth/login")
        .json(&json!({ "username": ADMIN, "password": password }))
        .send()
        .await
        .json();
    let fresh = body["token"].as_str().expect("signed in").to_string();
    let audit = p
        .at()
        .get("/api/v1/admin/audit?limit=1000")
        .bearer(&fresh)
        .send()
        .await
        .json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "admin_recovered"),
        "{audit}"
    );
}

#[tokio::test]
async fn recovery_makes_a_disabled_user_an_enabled_admin() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let bob = srv
        .create_account(
            &admin,
            &json!({ "username": "bob", "email": "bob@example.com", "password": PASSWORD, "roles": ["user"] }),
        )
        .await;
    let r = srv
        .post(&format!("{USERS}/{bob}/disable"))
        .bearer(&admin)
        .send()
        .await;
    assert!(r.status.is_success(), "{}", r.text());

    let core = srv.running().core().clone();
    let unknown = core.recover_admin(Some("nobody")).await;
    assert!(unknown.is_err());
    let recovered = core.recover_admin(Some("bob@example.com")).await.unwrap();
    assert_eq!(recovered.username, "bob");
    let token = srv.token_of("bob", &recovered.password).await;
    let me = srv.get(ME).bearer(&token).send().await.json();
    assert_eq!(me["id"], bob.as_str());
    // Bob may now do what only an admin may.
    let r = srv
        .get("/api/v1/admin/audit?limit=1")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// The usernames the admin list holds.
async fn usernames(srv: &Server, admin: &str) -> Vec<String> {
    srv.items(admin, &format!("{USERS}?limit=1000"))
        .await
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_backup_taken_while_writing_restores_every_write_acknowledged_before_it() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (at, admin, acked, stop) = (At(srv.addr), admin.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                let name = format!("writer{n}");
                let r = at
                    .post(USERS)
                    .bearer(&admin)
                    .json(
                        &json!({ "username": name, "email": format!("{name}@example.com"),
                                   "password": PASSWORD, "roles": ["user"] }),
                    )
                    .send()
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
                acked.lock().unwrap().push(name);
                n += 1;
            }
        })
    };
    crate::harness::until("ten acknowledged writes", || {
        acked.lock().unwrap().len() >= 10
    })
    .await;
    let before: Vec<String> = acked.lock().unwrap().clone();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("latchkey.backup");
    let (code, out) = cli(
        &["backup", "--to", file.to_str().unwrap()],
        env_for(&srv.data_dir(), &[]),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("taken from the running server"), "{out}");
    assert_eq!(mode(&file), 0o600);

    let (code, out) = cli(
        &["verify", file.to_str().unwrap()],
        env_for(&srv.data_dir(), &[]),
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signing key"), "{out}");

    let second = tempfile::tempdir().unwrap();
    let restored = second.path().join("data");
    let (code, out) = cli(
        &["restore", "--from", file.to_str().unwrap()],
        env_for(&restored, &[]),
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(mode(&restored), 0o700);
    assert_eq!(mode(&restored.join("latchkey.redb")), 0o600);
    assert_eq!(mode(&restored.join("master.key")), 0o600);
    let (code, out) = cli(&["verify"], env_for(&restored, &[])).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("checked the file directly"), "{out}");

    // A server on the restored directory holds every acknowledged write,
    // and signs with the same key (a token from the first still verifies).
    let copy = Server::start_in(
        second,
        Layer::default(),
        Clock::manual(now()),
        None,
        bootstrap(),
    )
    .await;
    let names = usernames(&copy, &copy.admin_token().await).await;
    for name in &before {
        assert!(
            names.contains(name),
            "{name} was acknowledged before the backup and is lost"
        );
    }
    assert_eq!(copy.me_status(&admin).await, StatusCode::OK);
}

#[tokio::test]
async fn verify_and_restore_refuse_a_damaged_backup() {
    let srv = Server::start().await;
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("good.backup");
    let env = || env_for(&srv.data_dir(), &[]);
    let (code, out) = cli(&["backup", "--to", file.to_str().unwrap()], env()).await;
    assert_eq!(code, Some(0), "{out}");
    let good = std::fs::read(&file).unwrap();

    let flipped = out_dir.path().join("flipped.backup");
    let mut bytes = good.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&flipped, &bytes).unwrap();
    let (code, out) = cli(&["verify", flipped.to_str().unwrap()], env()).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("checksum does not match"), "{out}");

    let short = out_dir.path().join("short.backup");
    std::fs::write(&short, &good[..good.len() - 100]).unwrap();
    let (code, out) = cli(&["verify", short.to_str().unwrap()], env()).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("length does not match"), "{out}");

    let target = out_dir.path().join("restored");
    let (code, out) = cli(
        &["restore", "--from", flipped.to_str().unwrap()],
        env_for(&target, &[]),
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(!target.exists(), "a refused restore leaves nothing behind");

    // A good backup restores, once; the filled directory is refused.
    let (code, out) = cli(
        &["restore", "--from", file.to_str().unwrap()],
        env_for(&target, &[]),
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cli(
        &["restore", "--from", file.to_str().unwrap()],
        env_for(&target, &[]),
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("it is not empty"), "{out}");

    // A master key that is not the store's: the signing key does not unseal.
    std::fs::write(target.join("master.key"), [7u8; 32]).unwrap();
    let (code, out) = cli(&["verify"], env_for(&target, &[])).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("does not unseal"), "{out}");

    // A file that is neither a backup nor a store.
    let junk = out_dir.path().join("junk");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    std::fs::copy(target.join("master.key"), out_dir.path().join("master.key")).unwrap();
    let (code, out) = cli(&["verify", junk.to_str().unwrap()], env()).await;
    assert_eq!(code, Some(1), "{out}");
}

/// Sends one raw line to the control socket and reads the answer line.
async fn raw_control(socket: &Path, line: &[u8]) -> Value {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (read, mut write) = stream.into_split();
    // The server may answer and close before it reads everything sent.
    let _ = write.write_all(line).await;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await.unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|_| panic!("not JSON: {answer}"))
}

#[tokio::test]
async fn the_control_socket_is_private_bounded_and_not_blocked_by_a_stale_file() {
    let mut srv = Server::start().await;
    let socket: PathBuf = srv.data_dir().join("control.sock");
    assert_eq!(mode(&socket), 0o600);
    assert!(
        mode(&srv.data_dir()) & 0o077 == 0,
        "the directory is private"
    );

    let ping = raw_control(&socket, b"{\"op\":\"ping\"}\n").await;
    assert_eq!(ping["ok"], true);
    assert_eq!(ping["pid"], std::process::id());
    let mut long = br#"{"op":"ping","pad":""#.to_vec();
    long.extend(std::iter::repeat_n(b'x', 2048));
    long.extend(b"\"}\n");
    let refused = raw_control(&socket, &long).await;
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"].as_str().unwrap().contains("too long"),
        "{refused}"
    );
    let unknown = raw_control(&socket, b"{\"op\":\"shutdown\"}\n").await;
    assert_eq!(unknown["ok"], false);

    // A socket file left by a process that died does not block the next.
    srv.stop().await;
    assert!(!socket.exists());
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    srv.restart().await;
    assert_eq!(
        raw_control(&socket, b"{\"op\":\"ping\"}\n").await["ok"],
        true
    );
}

#[tokio::test]
async fn check_config_shows_the_effective_settings_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-made");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:9443\"\naccess_ttl = 600\n",
            data.display()
        ),
    )
    .unwrap();
    let env = vec![
        ("LATCHKEY_ACCESS_TTL".to_string(), "300".to_string()),
        (
            "LATCHKEY_ADMIN_PASSWORD".to_string(),
            "a secret admin password".to_string(),
        ),
    ];
    let (code, out) = cli(&["check-config", "--config", config.to_str().unwrap()], env).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("listen = 127.0.0.1:9443"), "{out}");
    assert!(
        out.contains("access_ttl = 300"),
        "the environment wins: {out}"
    );
    assert!(
        out.contains("refresh_ttl = 604800"),
        "defaults shown: {out}"
    );
    assert!(
        out.contains("LATCHKEY_ADMIN_PASSWORD = (set, hidden)"),
        "{out}"
    );
    assert!(!out.contains("a secret admin password"), "{out}");
    assert!(!data.exists(), "nothing was started or created");

    // A certificate that is not there is found before any start.
    std::fs::write(
        &config,
        "tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
    )
    .unwrap();
    let (code, out) = cli(
        &["check-config", "--config", config.to_str().unwrap()],
        vec![],
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("cannot read certificate /nonexistent/cert.pem"),
        "{out}"
    );

    std::fs::write(&config, "listn = \"127.0.0.1:1\"\n").unwrap();
    let (code, out) = cli(
        &["check-config", "--config", config.to_str().unwrap()],
        vec![],
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unknown field"), "{out}");
}

#[test]
fn version_names_the_git_revision() {
    let (code, out) = run_to_end(&["--version"], &[]);
    assert_eq!(code, Some(0), "{out}");
    let expected = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.trim(),
        format!("latchkey {} (git {expected})", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn healthcheck_passes_only_when_the_server_answers() {
    let srv = Server::start().await;
    let listen = [("LATCHKEY_LISTEN", srv.addr.to_string())];
    let (code, out) = cli(&["healthcheck"], env_for(&srv.data_dir(), &listen)).await;
    assert_eq!(code, Some(0), "{out}");

    let tls = Server::start_tls(Layer::default()).await;
    let settings = [
        ("LATCHKEY_LISTEN", tls.addr.to_string()),
        (
            "LATCHKEY_TLS_CERT",
            tls.layer.tls_cert.clone().unwrap().display().to_string(),
        ),
        (
            "LATCHKEY_TLS_KEY",
            tls.layer.tls_key.clone().unwrap().display().to_string(),
        ),
    ];
    let (code, out) = cli(&["healthcheck"], env_for(&tls.data_dir(), &settings)).await;
    assert_eq!(code, Some(0), "{out}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, out) = cli(
        &["healthcheck"],
        env_for(&srv.data_dir(), &[("LATCHKEY_LISTEN", addr)]),
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
}

/// Nothing is answered before the first admin exists. The listener is
/// bound first (a busy port fails the start before any account is made),
/// but a client that connects while the first start is still hashing the
/// admin's password waits in the backlog and is then answered as the admin
/// it asked to sign in as, never "Invalid credentials".
#[tokio::test]
async fn a_client_that_connects_during_the_first_start_waits_for_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    // Hashing slow enough that the first admin takes a noticeable moment.
    let settings = latchkey::config::Settings::resolve(Layer {
        data_dir: Some(dir.path().join("data")),
        listen: Some(addr),
        argon2_memory_kib: Some(64 * 1024),
        argon2_iterations: Some(6),
        ..Layer::default()
    })
    .unwrap();
    let starting =
        tokio::spawn(
            async move { latchkey::start(&settings, Clock::manual(now()), bootstrap()).await },
        );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut stream = loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            break stream;
        }
        assert!(tokio::time::Instant::now() < deadline, "never bound");
        tokio::task::yield_now().await;
    };
    // The test is about this window; were the start already over, it
    // would prove nothing.
    assert!(
        !starting.is_finished(),
        "the start finished before the client connected"
    );
    let body = json!({ "username": ADMIN, "password": ADMIN_PASSWORD }).to_string();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("\"refreshToken\""), "{answer}");
    let running = starting.await.unwrap().unwrap();
    running.shutdown().await;
}
