//! Records the git revision the binary is built from, for `--version`.
//! Outside a git checkout (a source tarball, a crate package) it is
//! "unknown"; nothing here may fail the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    // The console's files are embedded (rust-embed): a file added under
    // them must rebuild the crate too, not only a changed one.
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=assets");
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LATCHKEY_GIT_REVISION={revision}");
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it
    // names (a commit). In a worktree these live outside `.git/`.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["rev-parse", "--symbolic-full-name", "HEAD"])
            .and_then(|name| git(&["rev-parse", "--git-path", &name])),
    ]
    .into_iter()
    .flatten()
    {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
