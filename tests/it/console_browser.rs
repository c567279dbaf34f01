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

/// Sign in through the page, see the shell, change the password through
/// the page (a wrong current password shown beside its field first), sign
/// out, and the old password fails (in the page, with the API's words,
/// and on the API) while the new one works.
#[tokio::test]
async fn sign_in_change_password_sign_out_in_chromium() {
    let missing = missing();
    assert!(missing.is_empty(), "the browser tests need: {missing:?}");
    let srv = Server::start_with(light(Layer::default())).await;
    let admin = srv.admin_token().await;
    srv.create_user(&admin, "dana", PASSWORD, &["user"]).await;
    let url = format!("http://127.0.0.1:{}", srv.addr.port());
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(browser_dir().join("console.mjs"))
            .current_dir(browser_dir())
            .env("LATCHKEY_URL", url)
            .env("LATCHKEY_USER", "dana")
            .env("LATCHKEY_OLD_PASSWORD", PASSWORD)
            .env("LATCHKEY_NEW_PASSWORD", NEW_PASSWORD)
            .env("CHROMIUM", CHROMIUM)
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
    assert_eq!(
        report["steps"].as_array().map(Vec::len),
        Some(7),
        "{report}"
    );
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    // What the page did, as the API sees it.
    let old = srv.try_login("dana", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.text());
    srv.login("dana", NEW_PASSWORD).await;
}
