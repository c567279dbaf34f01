//! Records the git revision the binary is built from, for `--version`
//! (outside a git checkout, a source tarball or a crate package, it is
//! "unknown", and that never fails the build), and builds the console's
//! catalogue: `web/` and `assets/` fingerprinted and compressed here, once,
//! into read-only data the binary serves as it is (`src/console.rs`), so
//! that a start does none of that work. A console that would be broken (a
//! page naming a file that does not exist) fails the build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/console_build.rs"]
mod console_build;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    // Cargo watches every file under these folders: a file added under
    // them rebuilds the catalogue too, not only a changed one.
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=src/console_build.rs");
    if let Err(e) = console() {
        panic!("the console's files: {e}");
    }
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

/// Every regular file under `dir`, named relative to it with `/`
/// separators, in a fixed order (so two builds of one tree write the same
/// binary).
fn files_under(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(dir.join(&folder)).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let relative = folder.join(entry.file_name());
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", relative.display()))?;
            if kind.is_dir() {
                folders.push(relative);
            } else if kind.is_file() {
                let name = relative
                    .to_str()
                    .ok_or_else(|| format!("{} is not UTF-8", relative.display()))?
                    .replace(std::path::MAIN_SEPARATOR, "/");
                let bytes = std::fs::read(entry.path()).map_err(|e| format!("{}: {e}", name))?;
                out.push((name, bytes));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `$OUT_DIR/console/<n>[.gz|.br]` and `$OUT_DIR/console_files.rs`,
/// the table `src/console.rs` includes: one entry per served file, its
/// bytes through `include_bytes!`.
fn console() -> Result<(), String> {
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let mut files = files_under(Path::new("web"))?;
    files.extend(files_under(Path::new("assets"))?);
    let planned = console_build::plan(files, sha256_hex)?;
    let dir = out.join("console");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |name: String, bytes: &[u8]| -> Result<String, String> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let path = path.to_str().ok_or("OUT_DIR is not UTF-8")?.to_string();
        Ok(format!("include_bytes!({path:?})"))
    };
    let mut table = String::from("&[\n");
    for (n, file) in planned.iter().enumerate() {
        let identity = write(n.to_string(), &file.identity)?;
        let gzip = match &file.gzip {
            Some(z) => format!("Some({})", write(format!("{n}.gz"), z)?),
            None => "None".into(),
        };
        let brotli = match &file.brotli {
            Some(z) => format!("Some({})", write(format!("{n}.br"), z)?),
            None => "None".into(),
        };
        let _ = writeln!(
            table,
            "    Built {{ paths: &{:?}, identity: {identity}, gzip: {gzip}, brotli: {brotli}, \
             content_type: {:?}, hash: {:?}, immutable: {} }},",
            file.paths, file.content_type, file.hash, file.immutable
        );
    }
    table.push_str("]\n");
    let path = out.join("console_files.rs");
    std::fs::write(&path, table).map_err(|e| format!("{}: {e}", path.display()))
}
