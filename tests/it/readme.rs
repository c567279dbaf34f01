//! The README is true: its curl walk-through and its administration
//! examples run against a real server, and CI runs its test command.

use crate::harness::*;

fn readme() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// The first ```sh block after `marker`.
fn block_after(text: &str, marker: &str) -> String {
    let rest = text.split(marker).nth(1).expect("marker in README");
    let start = rest.find("```sh\n").expect("sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("block end") + start;
    rest[start..end].to_string()
}

#[tokio::test]
async fn the_curl_walkthrough_works_as_written() {
    let srv = Server::start().await;
    let stdout = run_block(&srv, block_after(&readme(), "<!-- walkthrough")).await;
    assert!(stdout.contains(r#""refreshToken":"lk_rt_"#), "{stdout}");
    assert!(stdout.contains(r#""username":"admin""#), "{stdout}");
    assert!(
        stdout.contains(r#"{"message":"Successfully logged out"}"#),
        "{stdout}"
    );
    let last = stdout.rsplit("Successfully logged out").next().unwrap();
    assert!(last.starts_with("\"}HTTP/1.1 401"), "{last}");
    assert!(last.contains(r#"error="invalid_token""#), "{last}");
}

/// Runs a README block with bash against `srv`, its `BASE` pointed there;
/// returns stdout, asserting the script succeeded.
async fn run_block(srv: &Server, script: String) -> String {
    let base_line = "BASE=http://127.0.0.1:8080";
    assert!(
        script.contains(base_line),
        "the block uses the embedded default"
    );
    let script = script.replace(base_line, &format!("BASE=http://{}", srv.addr));
    // On the blocking pool: the server runs on this test's runtime.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(&script)
            .env("PASSWORD", ADMIN_PASSWORD)
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The administration examples, on a server whose first admin was made as
/// a first start makes it (email `admin@localhost`, as README says).
#[tokio::test]
async fn the_administration_examples_work_as_written() {
    let boot = latchkey::Bootstrap {
        username: None,
        email: None,
        password: Some(ADMIN_PASSWORD.into()),
    };
    let srv = Server::start_in(
        tempfile::tempdir().expect("tempdir"),
        latchkey::config::Layer::default(),
        latchkey::domain::Clock::manual(now()),
        None,
        boot,
    )
    .await;
    let readme = readme();
    assert!(readme.contains("`admin@localhost`"));
    let stdout = run_block(&srv, block_after(&readme, "<!-- administration")).await;
    // curl prints answers without a newline: one answer a line here.
    let split = stdout
        .replace("}{", "}\n{")
        .replace("}[", "}\n[")
        .replace("]{", "]\n{")
        .replace("}204", "}\n204");
    let lines: Vec<&str> = split.lines().collect();
    let line = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}:\n{stdout}"))
            .to_string()
    };
    // Tenants made, the account made, then moved into the merchant.
    assert!(stdout.contains(r#""id":"acme""#), "{stdout}");
    assert!(stdout.contains(r#""id":"acme-shop""#), "{stdout}");
    assert!(line(r#""username":"alice""#).contains(r#""roles":["user"]"#));
    let patched = line(r#""roles":["merchant"]"#);
    assert!(
        patched.contains(r#""merchant_id":"acme-shop""#),
        "{patched}"
    );
    // Her password change (204), the unlock of a real lock, the key, the
    // S2S token and its revocation (204).
    let codes: Vec<&str> = lines.iter().copied().filter(|l| *l == "204").collect();
    assert_eq!(codes.len(), 2, "{stdout}");
    assert!(stdout.contains(r#"{"was_locked":true}"#), "{stdout}");
    assert!(stdout.contains(r#""apiKey":"sk_live_"#), "{stdout}");
    let me = line(r#""kind":"api_key""#);
    assert!(me.contains(r#""username":"alice""#), "{me}");
    assert!(stdout.contains(r#""token":"s2s_"#), "{stdout}");
    // The audit log answered, and names the password change.
    let audit = line(r#""event":"password_changed""#);
    assert!(audit.contains(r#""actor_name":"alice""#), "{audit}");
    // And the server agrees: the new password signs in, the S2S token is
    // revoked.
    srv.login("alice", "alice second password").await;
    let admin = srv.token_of("admin", ADMIN_PASSWORD).await;
    let tokens = srv.items(&admin, "/api/v1/admin/s2s-tokens").await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens[0]["revoked_at"].is_string(), "{tokens:?}");
}

#[tokio::test]
async fn the_monitoring_examples_work_as_written() {
    let srv = Server::start().await;
    srv.login(ADMIN, ADMIN_PASSWORD).await;
    let stdout = run_block(&srv, block_after(&readme(), "<!-- monitoring")).await;
    assert!(
        stdout.starts_with(r#"{"status":"ok"}{"checks":"#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""status":"ready"}"#), "{stdout}");
    assert!(
        stdout.contains(r#"latchkey_sign_ins_total{document="v1",outcome="success"} 1"#),
        "{stdout}"
    );
    assert!(stdout.contains("latchkey_build_info{version="), "{stdout}");
}

/// Nothing the README or `docs/` points at lies outside the repository,
/// and every file they link exists.
#[test]
fn documentation_links_stay_inside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    let docs = root.join("docs/api");
    for entry in std::fs::read_dir(&docs).expect("docs/api") {
        pages.push(entry.expect("entry").path());
    }
    assert!(pages.len() >= 7, "{pages:?}");
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("page");
        assert!(!text.contains("../"), "{} points outside", page.display());
        assert!(!text.contains("reference-apis"), "{}", page.display());
        let dir = page.parent().expect("parent");
        for target in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            assert!(
                dir.join(target).is_file(),
                "{} links {target}, which does not exist",
                page.display()
            );
        }
    }
    // Every published document has its page, linked from README.
    let readme = readme();
    for doc in [
        "tenant-login-and-s2s",
        "client-login-refresh",
        "token-and-social-login",
        "account-roles-token",
        "canonical",
        "admin",
    ] {
        let page = format!("docs/api/{doc}.md");
        assert!(root.join(&page).is_file(), "{page}");
        assert!(readme.contains(&page), "README does not link {page}");
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = readme();
    let ci =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run"))
            .expect(".ci/run");
    let commands = block_after(&readme, "## Two commands");
    let test_command = commands
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .expect("a test command");
    assert_eq!(test_command, "./scripts/test");
    assert!(
        ci.lines().any(|l| l.trim() == test_command),
        ".ci/run does not run `{test_command}`"
    );
    assert!(commands.contains("cargo run --release -- serve"));
}
