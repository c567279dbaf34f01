//! The README is true: its curl walk-through runs against a real server,
//! and CI runs its test command.

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
    let script = block_after(&readme(), "<!-- walkthrough");
    let base_line = "BASE=http://127.0.0.1:8080";
    assert!(
        script.contains(base_line),
        "the walk-through uses the embedded default"
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
