//! The log as an operator reads it (issue 12): with `log_format = "json"`
//! every line is one JSON object, every line written while a request is
//! handled carries that request's id, latencies are whole microseconds, and
//! no secret the request carried appears anywhere.

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// A `latchkey serve` writing JSON logs, with every line it wrote so far.
struct JsonProc {
    /// The process.
    child: std::process::Child,
    /// Every line it wrote to stderr so far.
    lines: Arc<Mutex<Vec<String>>>,
    /// Where it listens.
    addr: std::net::SocketAddr,
    /// Its data directory, removed when the test ends.
    _dir: tempfile::TempDir,
}

impl Drop for JsonProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl JsonProc {
    fn spawn() -> JsonProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut child = binary()
            .arg("serve")
            .env_clear()
            .env("LATCHKEY_DATA_DIR", &data)
            .env("LATCHKEY_LISTEN", "127.0.0.1:0")
            .env("LATCHKEY_LOG_FORMAT", "json")
            // The domain's debug lines too: they are the ones written from
            // inside a request.
            .env("LATCHKEY_LOG", "latchkey=debug,info")
            .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
            .env("LATCHKEY_ARGON2_ITERATIONS", "1")
            .env("LATCHKEY_ADMIN_USERNAME", ADMIN)
            .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn latchkey");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && let Some(addr) = v["addr"].as_str()
                    {
                        let _ = tx.send(addr.to_string());
                    }
                    lines.lock().expect("lock").push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => panic!("latchkey did not start: {:?}", lines.lock().expect("lock")),
        };
        JsonProc {
            child,
            lines,
            addr,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// Waits (bounded) until the access line of request `id` is read.
    async fn wait_for_request(&self, id: &str) {
        for _ in 0..500 {
            if self
                .lines()
                .iter()
                .any(|l| l.contains(id) && l.contains("latchkey::access"))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no access line for {id}: {:#?}", self.lines());
    }
}

/// The request id a JSON log line was written under.
fn request_id(line: &Value) -> Option<&str> {
    line["span"]["request_id"].as_str()
}

#[tokio::test]
async fn json_log_lines_carry_the_request_id_and_no_secret() {
    let proc = JsonProc::spawn();
    let at = At(proc.addr);
    let login = at
        .post("/api/v1/auth/login")
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let body = login.json();
    let token = body["token"].as_str().expect("token").to_string();
    let refresh = body["refreshToken"].as_str().expect("refresh").to_string();
    let me = at.get("/api/v1/auth/me").bearer(&token).send().await;
    assert_eq!(me.status, StatusCode::OK);
    // A refused token: the domain logs why at debug level, from inside the
    // request.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let refused = at.get("/api/v1/auth/me").bearer(&forged).send().await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let ids: Vec<String> = [&login, &me, &refused]
        .iter()
        .map(|r| r.header("x-request-id").expect("x-request-id").to_string())
        .collect();
    for id in &ids {
        proc.wait_for_request(id).await;
    }

    let lines = proc.lines();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for (line, raw) in parsed.iter().zip(&lines) {
        assert!(line["timestamp"].is_string(), "{raw}");
        assert!(line["level"].is_string(), "{raw}");
        for secret in [
            ADMIN_PASSWORD,
            token.as_str(),
            forged.as_str(),
            refresh.as_str(),
        ] {
            assert!(!raw.contains(secret), "a secret in the log: {raw}");
        }
        assert!(!raw.to_ascii_lowercase().contains("bearer"), "{raw}");
    }
    // One access line per request, under its id, with an integer latency.
    for id in &ids {
        let access: Vec<&Value> = parsed
            .iter()
            .filter(|l| l["target"] == "latchkey::access" && request_id(l) == Some(id))
            .collect();
        assert_eq!(access.len(), 1, "{id}: {lines:#?}");
        assert!(access[0]["latency_us"].is_u64(), "{}", access[0]);
        assert!(access[0]["path"].is_string());
    }
    // The refusal's reason was logged from inside its request, and so
    // carries that request's id.
    let reason = parsed
        .iter()
        .find(|l| l["message"] == "access token refused")
        .unwrap_or_else(|| panic!("no refusal line: {lines:#?}"));
    assert_eq!(request_id(reason), Some(ids[2].as_str()), "{reason}");
}

/// A log reader that stops reading (a stalled journald, a full pipe) no
/// longer stops the server: requests are answered while stderr takes
/// nothing, access lines beyond the buffer are dropped, and once stderr is
/// read again every request is either in the log or in the count of
/// dropped lines that the server writes.
#[tokio::test]
async fn a_log_reader_that_stops_reading_stops_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = binary()
        .arg("serve")
        .env_clear()
        .env("LATCHKEY_DATA_DIR", dir.path().join("data"))
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LATCHKEY_MAX_CONNECTIONS_PER_IP", "64")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn latchkey");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    // Read up to the listening line, then not at all: the pipe (64 KiB on
    // Linux) fills after a few hundred access lines.
    let mut head = String::new();
    let addr: std::net::SocketAddr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).expect("read") > 0, "{head}");
        head.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("addr")
                .parse()
                .expect("addr");
        }
    };
    // Well past the pipe and the server's 1 MiB buffer: about 150 bytes a
    // line.
    const REQUESTS: usize = 12_000;
    const CONNECTIONS: usize = 16;
    let at = Arc::new(At(addr));
    let answered = tokio::time::timeout(Duration::from_secs(60), async {
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let at = at.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..REQUESTS / CONNECTIONS {
                    assert_eq!(at.get("/healthz").send().await.status, StatusCode::OK);
                }
            }));
        }
        for t in tasks {
            t.await.expect("requests");
        }
    })
    .await;
    assert!(answered.is_ok(), "requests stalled behind an unread stderr");
    // Read again: the waiting lines and the count of the dropped ones come
    // out, then a clean stop writes the rest.
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SAFETY: kill sends a signal to the child we spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
    let rest = reader.join().expect("reader");
    let logged = rest
        .lines()
        .filter(|l| l.contains("latchkey::access") && l.contains("path=/healthz"))
        .count();
    let dropped: usize = rest
        .lines()
        .filter_map(|l| l.strip_prefix("latchkey: "))
        .filter(|l| l.contains("log lines dropped"))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(
        dropped > 0,
        "nothing was dropped: the test did not fill the buffer"
    );
    assert_eq!(
        logged + dropped,
        REQUESTS,
        "every request logged or counted"
    );
}
