//! The console in a real browser: Debian's Chromium driven by
//! playwright-core from tests/browser/console.mjs (no browser download).
//! Where Chromium, node or the pinned playwright-core is missing the test
//! fails with the command that installs it; it never skips.

use std::path::PathBuf;
use std::process::Command;

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::Value;

use crate::harness::{PASSWORD, Server, light};

const CHROMIUM: &str = "/usr/bin/chromium";
const NEW_PASSWORD: &str = "a brand new long password";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser tests, with how to install it.
fn missing() -> Vec<String> {
    let mut out = Vec::new();
    if !std::path::Path::new(CHROMIUM).exists() {
        out.push("Chromium: apt-get install chromium (or run scripts/test)".to_string());
    }
    if Command::new("node").arg("--version").output().is_err() {
        out.push("node: apt-get install nodejs npm (or run scripts/test)".to_string());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        out.push(
            "playwright-core: npm ci --prefix tests/browser (or run scripts/test)".to_string(),
        );
    }
    out
}

/// Runs `tests/browser/<script>` against `srv` with `env` and returns its
/// report, failing the test (with the browser's words) unless every step
/// passed with no problem seen. `expect_steps` is how many steps the
/// script must report, so a script that stops early cannot pass.
pub async fn browse(
    srv: &Server,
    script: &str,
    env: &[(&str, String)],
    expect_steps: usize,
) -> Value {
    let missing = missing();
    assert!(missing.is_empty(), "the browser tests need: {missing:?}");
    let url = format!("http://127.0.0.1:{}", srv.addr.port());
    let script = browser_dir().join(script);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .current_dir(browser_dir())
            .env("LATCHKEY_URL", url)
            .env("CHROMIUM", CHROMIUM)
            .envs(env)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!("no report from the browser run\nstdout: {stdout}\nstderr: {stderr}")
        });
    assert!(
        run.status.success() && report["ok"] == true,
        "{report}\nstderr: {stderr}"
    );
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["steps"].as_array().map(Vec::len),
        Some(expect_steps),
        "{report}"
    );
    report
}

/// Sign in through the page, see the shell, change the password through
/// the page (a wrong current password shown beside its field first), sign
/// out, and the old password fails (in the page, with the API's words,
/// and on the API) while the new one works.
#[tokio::test]
async fn sign_in_change_password_sign_out_in_chromium() {
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "dana", PASSWORD, &["user"]).await;
    browse(
        &srv,
        "console.mjs",
        &[
            ("LATCHKEY_USER", "dana".to_string()),
            ("LATCHKEY_OLD_PASSWORD", PASSWORD.to_string()),
            ("LATCHKEY_NEW_PASSWORD", NEW_PASSWORD.to_string()),
        ],
        7,
    )
    .await;
    // What the page did, as the API sees it.
    let old = srv.try_login("dana", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.text());
    srv.login("dana", NEW_PASSWORD).await;
}
