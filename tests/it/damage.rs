//! Damaged storage (issue 14), with the real `latchkey` binary: a store
//! file truncated, zeroed, bit-flipped, foreign or empty, a `master.key`
//! of the wrong size or mode, a read-only data directory, and a disk that
//! fills while the server serves. At start the server refuses with one
//! line that names the file and what is wrong, exits non-zero, never
//! panics, and leaves the damaged file exactly as it was (bytes and
//! modification time); while serving, the write that meets a full disk is
//! a 503 with a JSON body and `Retry-After`, nothing of it is stored,
//! reads go on, and the next write after space comes back succeeds with no
//! restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use http::StatusCode;
use latchkey::store::{STORE_FILE, Store};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::*;

/// The data directory of a store this build wrote and served: the first
/// admin and one more account (`kept`), stopped cleanly.
fn served_store() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    seed(&data);
    (dir, data)
}

/// Starts the real server on `data` (created if need be), makes the
/// account `kept` and stops it with SIGTERM.
fn seed(data: &Path) {
    let data_str = data.to_str().expect("utf-8 path");
    let mut envs = proc_env(data_str);
    envs.push(("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD));
    let mut p = Proc::spawn(&[], &envs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let admin = admin_token(&p.at()).await;
        let r = create(&p.at(), &admin, "kept").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    });
    p.signal(libc::SIGTERM);
    assert!(p.wait().success(), "{}", p.stderr());
}

async fn admin_token(at: &At) -> String {
    let r = at.try_login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["token"].as_str().expect("token").to_string()
}

async fn create(at: &At, admin: &str, username: &str) -> Resp {
    at.post(USERS)
        .bearer(admin)
        .json(&json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
            "roles": ["user"],
        }))
        .send()
        .await
}

/// A file's length, the SHA-256 of its bytes and its modification time,
/// to show it was left alone.
#[derive(Debug, PartialEq)]
struct Untouched {
    len: Option<usize>,
    digest: Option<String>,
    modified: Option<SystemTime>,
}

fn untouched(path: &Path) -> Untouched {
    let bytes = std::fs::read(path).ok();
    Untouched {
        len: bytes.as_ref().map(Vec::len),
        digest: bytes.map(|b| b64(ring::digest::digest(&ring::digest::SHA256, &b).as_ref())),
        modified: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    }
}

/// Starts `latchkey serve` on `data`, expecting a refusal: exit status 1,
/// no panic, and one line of error that names `file` and says `what`.
/// Returns that line.
fn assert_refused(data: &Path, file: &Path, what: &str) -> String {
    let (code, out) = serve_refused(data, &[]);
    assert_eq!(code, Some(1), "expected a refusal with status 1: {out}");
    assert!(!out.contains("panicked"), "{out}");
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("latchkey: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {out}");
    let line = errors[0];
    assert!(
        line.contains(&file.display().to_string()),
        "names {}: {line}",
        file.display()
    );
    assert!(line.contains(what), "says {what:?}: {line}");
    line.to_string()
}

/// One way of damaging a data directory, what the refusal must say, and
/// which file it must name.
struct Case {
    /// What the damage is, for failure messages.
    name: &'static str,
    /// The file damaged (inside the data directory).
    file: &'static str,
    /// Words the one-line refusal must contain.
    says: &'static str,
    /// Does the damage.
    damage: fn(&Path),
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).expect("read");
    f(&mut bytes);
    std::fs::write(path, bytes).expect("write");
}

const DAMAGED: &str = "is damaged or is not a latchkey store";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "truncated to half",
            file: STORE_FILE,
            says: "truncated",
            damage: |p| rewrite(p, |b| b.truncate(b.len() / 2)),
        },
        Case {
            name: "truncated to one page",
            file: STORE_FILE,
            says: DAMAGED,
            damage: |p| rewrite(p, |b| b.truncate(4096)),
        },
        Case {
            name: "zeroed",
            file: STORE_FILE,
            says: DAMAGED,
            damage: |p| rewrite(p, |b| b.fill(0)),
        },
        Case {
            // The magic number, the format version and the header's layout
            // fields, each with one bit flipped.
            name: "bits flipped in the header",
            file: STORE_FILE,
            says: DAMAGED,
            damage: |p| {
                rewrite(p, |b| {
                    for at in [3, 0x10, 0x40] {
                        b[at] ^= 0x10;
                    }
                })
            },
        },
        Case {
            name: "a PNG image",
            file: STORE_FILE,
            says: DAMAGED,
            damage: |p| {
                let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
                png.resize(8192, 0x5a);
                std::fs::write(p, png).expect("write");
            },
        },
        Case {
            name: "an SQLite database",
            file: STORE_FILE,
            says: DAMAGED,
            damage: |p| {
                let mut sqlite = b"SQLite format 3\0\x10\0\x01\x01".to_vec();
                sqlite.resize(16384, 0);
                std::fs::write(p, sqlite).expect("write");
            },
        },
        Case {
            name: "0 bytes",
            file: STORE_FILE,
            says: "empty (0 bytes)",
            damage: |p| std::fs::write(p, b"").expect("write"),
        },
        Case {
            name: "a master key one byte short",
            file: "master.key",
            says: "a master key is 32 bytes",
            damage: |p| rewrite(p, |b| b.truncate(31)),
        },
        Case {
            name: "a master key twice as long",
            file: "master.key",
            says: "a master key is 32 bytes",
            damage: |p| rewrite(p, |b| b.extend_from_slice(&b.clone())),
        },
        Case {
            name: "an empty master key",
            file: "master.key",
            says: "a master key is 32 bytes",
            damage: |p| std::fs::write(p, b"").expect("write"),
        },
    ]
}

/// Every damaged file is refused at start with one line naming it, a
/// non-zero exit and no panic, and is left exactly as it was: not
/// repaired, not initialised over, not narrowed.
#[test]
fn a_damaged_file_is_refused_by_name_and_left_as_it_was() {
    let (_dir, data) = served_store();
    for case in cases() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let copy = scratch.path().join("data");
        copy_dir(&data, &copy);
        let file = copy.join(case.file);
        (case.damage)(&file);
        let before = untouched(&file);
        let others: Vec<_> = [STORE_FILE, "master.key"]
            .iter()
            .map(|f| untouched(&copy.join(f)))
            .collect();
        let line = assert_refused(&copy, &file, case.says);
        assert_eq!(untouched(&file), before, "{}: {line}", case.name);
        // `latchkey verify` finds it too, and writes to it no more.
        let copy_str = copy.to_str().expect("utf-8 path");
        let (code, out) = run_to_end(&["verify", "--data-dir", copy_str], &[]);
        assert_eq!(code, Some(1), "{}: {out}", case.name);
        assert!(!out.contains("panicked"), "{}: {out}", case.name);
        assert_eq!(untouched(&file), before, "{}: verify: {out}", case.name);
        let after: Vec<_> = [STORE_FILE, "master.key"]
            .iter()
            .map(|f| untouched(&copy.join(f)))
            .collect();
        assert_eq!(after, others, "{}: nothing else written", case.name);
    }
}

/// A store a newer build wrote (schema 99) is refused with one line that
/// names the file and both versions, and is not migrated down: it still
/// says schema 99 afterwards, and `verify` refuses it the same way. (Its
/// bytes are not compared: the schema is read from inside the store, once
/// redb has opened and checked the file, which updates redb's own
/// bookkeeping in it; no record is written.)
#[test]
fn a_store_from_a_newer_build_is_refused_by_name_and_left_at_its_schema() {
    let (_dir, data) = served_store();
    let store = Store::open(&data).expect("open");
    store
        .write(|tx| tx.set_meta("schema_version", &99u64.to_be_bytes()))
        .expect("write");
    drop(store);
    let file = data.join(STORE_FILE);
    let line = assert_refused(
        &data,
        &file,
        "was written by a newer latchkey (schema version 99; this build understands up to",
    );
    let again = Store::open(&data).err().map(|e| e.to_string());
    assert!(
        again
            .as_deref()
            .is_some_and(|e| e.contains("schema version 99")),
        "{line} / {again:?}"
    );
    let (code, out) = run_to_end(
        &["verify", "--data-dir", data.to_str().expect("utf-8")],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("newer latchkey"), "{out}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    set_mode(to, 0o700);
    for f in [STORE_FILE, "master.key"] {
        std::fs::copy(from.join(f), to.join(f)).expect("copy");
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A master key that group or others may write could have been swapped
/// for one someone else knows (which would seal the next signing key for
/// them), so it is refused; neither the key nor the store is written, and
/// its mode is left for the operator to judge. One they may only read is
/// narrowed to 0600 with a warning that it may have leaked, as the store
/// file is.
#[test]
fn a_master_key_others_may_write_is_refused_and_one_they_may_read_is_narrowed() {
    let (_dir, data) = served_store();
    let key = data.join("master.key");
    for mode in [0o620, 0o602, 0o666, 0o660] {
        set_mode(&key, mode);
        let before = (untouched(&key), untouched(&data.join(STORE_FILE)));
        let line = assert_refused(&data, &key, &format!("mode {mode:03o}"));
        assert!(line.contains("chmod 600"), "{line}");
        let after = (untouched(&key), untouched(&data.join(STORE_FILE)));
        assert_eq!(after, before, "{line}");
        assert_eq!(
            file_mode(&key),
            mode,
            "not narrowed behind the operator's back"
        );
    }
    for mode in [0o644, 0o640, 0o604] {
        set_mode(&key, mode);
        let bytes = std::fs::read(&key).expect("key");
        let (status, log) = start_and_login_logged(&data, "kept", PASSWORD);
        assert_eq!(status, StatusCode::OK, "{log}");
        assert_eq!(file_mode(&key), 0o600, "{mode:03o}");
        assert_eq!(std::fs::read(&key).expect("key"), bytes, "the same key");
        assert!(log.contains("treat it as leaked"), "{log}");
    }
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Starts the real server on `data`, signs `username` in with `password`
/// and stops it; returns the sign-in's status and what the server wrote
/// to stderr. Panics if it does not start, does not stop cleanly, or
/// panics.
fn start_and_login_logged(data: &Path, username: &str, password: &str) -> (StatusCode, String) {
    let data_str = data.to_str().expect("utf-8 path");
    let mut p = Proc::spawn(&[], &proc_env(data_str));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = rt.block_on(p.at().try_login(username, password)).status;
    p.signal(libc::SIGTERM);
    assert!(p.wait().success(), "{}", p.stderr());
    assert!(!p.stderr().contains("panicked"), "{}", p.stderr());
    (status, p.stderr())
}

/// A missing master key, or another 32-byte one, beside a store that
/// holds a signing key is not damage to refuse: replacing `master.key` is
/// how an operator rotates the signing key after a leak (see
/// `harden_tokens`), and a lost one can only be replaced. What must hold
/// is that nothing else is lost: the server starts, says in its log that
/// the stored signing key does not unseal and a new one is made, and every
/// account is still there and signs in. (`storage.rs` holds what happens
/// to tokens signed before; this is the real binary on a store it served.)
#[test]
fn a_missing_or_replaced_master_key_rotates_the_signing_key_and_loses_nothing() {
    let (_dir, data) = served_store();
    let key = data.join("master.key");
    for (what, replace) in [("missing", None), ("another key", Some([0x42u8; 32]))] {
        let old = std::fs::read(&key).expect("key");
        match replace {
            None => std::fs::remove_file(&key).expect("rm"),
            Some(bytes) => std::fs::write(&key, bytes).expect("write"),
        }
        let data_str = data.to_str().expect("utf-8 path");
        let mut p = Proc::spawn(&[], &proc_env(data_str));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for (user, password) in [(ADMIN, ADMIN_PASSWORD), ("kept", PASSWORD)] {
                let r = p.at().try_login(user, password).await;
                assert_eq!(r.status, StatusCode::OK, "{what}: {user}: {}", r.text());
            }
        });
        p.signal(libc::SIGTERM);
        assert!(p.wait().success(), "{what}: {}", p.stderr());
        let log = p.stderr();
        assert!(!log.contains("panicked"), "{what}: {log}");
        assert!(
            log.contains("cannot be unsealed with this data directory's master key"),
            "{what}: {log}"
        );
        let now = std::fs::read(&key).expect("a key is there again");
        assert_eq!(now.len(), 32, "{what}");
        assert_ne!(now, old, "{what}: a different key");
        assert_eq!(file_mode(&key), 0o600, "{what}");
    }
}

/// A tmpfs mounted for one test, unmounted when dropped (after the server
/// that used it, which the test declares later and so drops first).
struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs of `size` on `at`, if this process may (root, as in
    /// CI); `None` where it may not.
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).expect("mount point");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=700"),
                "tmpfs",
            ])
            .arg(at)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Mount(at.to_path_buf()))
    }

    /// Remounts it read-only.
    fn read_only(&self) {
        let done = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(done, "remount read-only");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A data directory the server cannot write: a read-only mount where the
/// test may mount (root ignores file modes, so `chmod` proves nothing
/// there), else a directory and files without write permission. The
/// server refuses to start with one line naming the store file and the
/// cause, and writes nothing.
#[test]
fn a_read_only_data_directory_is_refused_by_name() {
    let (dir, seeded) = served_store();
    let at = dir.path().join("ro");
    let mount = Mount::tmpfs(&at, "8m");
    let data = at.join("data");
    copy_dir(&seeded, &data);
    let store = data.join(STORE_FILE);
    let says = match &mount {
        Some(m) => {
            m.read_only();
            "Read-only file system"
        }
        None => {
            set_mode(&store, 0o400);
            set_mode(&data, 0o500);
            "Permission denied"
        }
    };
    let before = untouched(&store);
    let line = assert_refused(&data, &store, says);
    assert!(
        !line.contains("damaged"),
        "the file is not to blame: {line}"
    );
    assert_eq!(untouched(&store), before, "{line}");
    drop(mount);
}

/// How the full-disk test takes the space away and gives it back.
enum Space {
    /// The data directory is on a tmpfs of a few MiB mounted for the test
    /// (root may mount, as in CI); a filler file takes what is left.
    Tmpfs { filler: PathBuf },
    /// No mount allowed: the running server's file size limit
    /// (RLIMIT_FSIZE, set with prlimit) is lowered to the store file's
    /// size, so any growth of it fails with EFBIG (the server ignores
    /// SIGXFSZ, which would otherwise kill it).
    FileSize { pid: i32, store: PathBuf },
}

impl Space {
    fn take(&self) {
        match self {
            Space::Tmpfs { filler } => {
                use std::io::Write;
                let mut f = std::fs::File::create(filler).expect("filler");
                let chunk = vec![0x5au8; 64 * 1024];
                // Bounded by the mount's size; ends at ENOSPC.
                while f.write_all(&chunk).is_ok() {}
                // The last partial chunk may have left a few bytes free.
                while f.write_all(&[0x5a]).is_ok() {}
            }
            Space::FileSize { pid, store } => {
                let len = std::fs::metadata(store).expect("store").len();
                set_file_size_limit(*pid, len);
            }
        }
    }

    fn give_back(&self) {
        match self {
            Space::Tmpfs { filler } => std::fs::remove_file(filler).expect("rm filler"),
            Space::FileSize { pid, .. } => set_file_size_limit(*pid, libc::RLIM_INFINITY),
        }
    }
}

fn set_file_size_limit(pid: i32, soft: u64) {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit with a pid of our own child, a valid resource and
    // pointers to two live rlimit values.
    let got = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, std::ptr::null(), &mut old) };
    assert_eq!(got, 0, "read the limit");
    let new = libc::rlimit {
        rlim_cur: soft.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: as above.
    let set = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &new, std::ptr::null_mut()) };
    assert_eq!(set, 0, "set the limit");
}

async fn usernames(at: &At, admin: &str) -> Vec<String> {
    let r = at
        .get(&format!("{USERS}?limit=1000"))
        .bearer(admin)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_string())
        .collect()
}

/// The disk fills while the server serves (a tmpfs it fills where the
/// test may mount one, else a file size limit: the test prints which).
/// The write that meets it is a 503 with a JSON body and `Retry-After`,
/// and nothing of it is stored; reads go on; every write acknowledged
/// before is kept; once space is back the same write succeeds on the same
/// process, with no restart; and the store then passes `latchkey verify`
/// and holds exactly the acknowledged accounts. Set
/// `LATCHKEY_TEST_FULL_DISK=fsize` to run the file-size variant as root.
#[test]
fn a_full_disk_is_a_503_while_reads_go_on_and_writes_resume_when_space_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = dir.path().join("small");
    let forced = std::env::var("LATCHKEY_TEST_FULL_DISK").is_ok_and(|v| v == "fsize");
    let mount = if forced {
        None
    } else {
        Mount::tmpfs(&at, "6m")
    };
    let data = if mount.is_some() {
        at.join("data")
    } else {
        dir.path().join("data")
    };
    let data_str = data.to_str().expect("utf-8 path").to_string();
    let mut envs = proc_env(&data_str);
    envs.push(("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD));
    let mut p = Proc::spawn(&[], &envs);
    let space = match &mount {
        Some(_) => Space::Tmpfs {
            filler: at.join("filler"),
        },
        None => Space::FileSize {
            pid: p.child.id() as i32,
            store: data.join(STORE_FILE),
        },
    };
    eprintln!(
        "full disk by {}",
        match space {
            Space::Tmpfs { .. } => "a 6 MiB tmpfs filled with a filler file",
            Space::FileSize { .. } => "RLIMIT_FSIZE on the server process",
        }
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (acknowledged, refused) = rt.block_on(async {
        let at = p.at();
        let admin = admin_token(&at).await;
        assert_eq!(
            create(&at, &admin, "before").await.status,
            StatusCode::CREATED
        );
        space.take();

        // Writes until one meets the full disk; each is acknowledged (201)
        // or refused (503), never anything else.
        let mut acknowledged = vec!["before".to_string()];
        let mut refused = None;
        for i in 0..500 {
            let name = format!("full{i}");
            let r = create(&at, &admin, &name).await;
            match r.status {
                StatusCode::CREATED => acknowledged.push(name),
                StatusCode::SERVICE_UNAVAILABLE => {
                    refused = Some((name, r));
                    break;
                }
                other => panic!("{name}: {other} {}", r.text()),
            }
        }
        let (name, r) = refused.expect("a write met the full disk within 500");
        let body: Value = serde_json::from_slice(r.body.as_ref()).expect("a JSON body");
        assert!(body.is_object(), "{body}");
        assert!(
            !r.text().contains("space"),
            "no cause in the body: {}",
            r.text()
        );
        assert!(retry_after(&r) >= 1, "Retry-After");

        // Reads go on, again and again, while the disk stays full.
        for _ in 0..3 {
            assert_eq!(at.me(&admin).await.status, StatusCode::OK);
            let names = usernames(&at, &admin).await;
            for a in &acknowledged {
                assert!(names.contains(a), "{a} acknowledged and kept: {names:?}");
            }
            assert!(
                !names.contains(&name),
                "nothing of the refused write: {names:?}"
            );
        }
        // A wrong password while full cannot be counted toward the
        // lockout, so it is refused the same way rather than answered
        // 401: a full disk must not lift the limit on guessing.
        for _ in 0..3 {
            let r = at.try_login("before", "a wrong password").await;
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
            assert!(retry_after(&r) >= 1, "Retry-After");
        }
        // Another write while still full: refused the same way, not a 500.
        let again = create(&at, &admin, &name).await;
        assert!(
            matches!(
                again.status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::CREATED
            ),
            "{} {}",
            again.status,
            again.text()
        );
        if again.status == StatusCode::CREATED {
            acknowledged.push(name.clone());
        }

        space.give_back();
        // The next write succeeds, on the same process.
        let after = create(&at, &admin, "after").await;
        assert_eq!(after.status, StatusCode::CREATED, "{}", after.text());
        acknowledged.push("after".into());
        if !acknowledged.contains(&name) {
            let retried = create(&at, &admin, &name).await;
            assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text());
            acknowledged.push(name.clone());
        }
        let r = at.try_login("after", PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        (acknowledged, name)
    });
    assert!(p.child.try_wait().expect("wait").is_none(), "no restart");
    p.signal(libc::SIGTERM);
    assert!(p.wait().success(), "{}", p.stderr());
    let log = p.stderr();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("the store file was reopened"), "{log}");

    let (code, out) = run_to_end(&["verify", "--data-dir", &data_str], &[]);
    assert_eq!(code, Some(0), "{out}");
    let store = Store::open(&data).expect("open");
    let tx = store.read().expect("read");
    for name in &acknowledged {
        assert!(
            tx.account_by_username(name).expect("read").is_some(),
            "{name}"
        );
    }
    assert_eq!(
        tx.account_count().expect("count"),
        acknowledged.len() as u64 + 1,
        "exactly the acknowledged accounts and the admin (refused once: {refused})"
    );
    drop(tx);
    drop(store);
    drop(p);
    drop(mount);
}

/// Flips one bit of every byte at `offsets`.
fn flip(path: &Path, offsets: &[usize]) {
    rewrite(path, |b| {
        for &at in offsets {
            b[at] ^= 0x04;
        }
    });
}

/// Starts `latchkey serve` on `data` and tells how it went: `Ok` once it
/// listens (then stopped with SIGTERM, cleanly), or its exit status and
/// output if it ends first. Stops waiting at the first of the two.
fn try_start(data: &Path) -> Result<(), (Option<i32>, String)> {
    use std::io::BufRead;
    let mut child = binary()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LATCHKEY_DATA_DIR", data)
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn latchkey");
    let stderr = child.stderr.take().expect("stderr");
    let mut out = String::new();
    let mut listening = false;
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        out.push_str(&line);
        out.push('\n');
        if line.contains("listening on http") {
            listening = true;
            // SAFETY: kill(2) with the pid of our own child, not reaped yet.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
        }
    }
    let status = child.wait().expect("wait");
    assert!(!out.contains("panicked"), "{out}");
    if listening {
        assert!(status.success(), "a clean stop: {out}");
        Ok(())
    } else {
        Err((status.code(), out))
    }
}

/// Bits flipped inside the store's pages, past the header. redb keeps a
/// checksum of every page its committed trees use, and the server has it
/// check them all as it opens the file (a plain redb open trusts a file it
/// closed cleanly, serves a flipped record as it finds it, and may panic on
/// a flipped branch). So a flip in a page that holds live records is
/// refused at start like any damage, the file is left as it was, and
/// `latchkey verify` reports it too, writing nothing. A flip in a page no
/// committed tree uses (an older copy of a record, freed by a later
/// commit) is one no checksum covers, and it holds nothing: the honest
/// assertion there is that the server starts and stops without a panic,
/// the account signs in, its record reads as it was written, and `verify`
/// calls the store good. The test flips a bit in each copy of one
/// account's record that the schema-3 fixture's file holds (it holds live
/// and freed ones), one copy at a time, and holds each flip to one of
/// those two outcomes; at least one must be each.
#[test]
fn a_flipped_bit_in_a_table_page_is_refused_and_one_in_a_freed_page_loses_nothing() {
    let (fixture, meta) = fixture_store("store-v3");
    let data = fixture.path().join("data");
    let account = &meta["accounts"][0];
    let username = account["username"].as_str().expect("username");
    let password = account["password"].as_str().expect("password");
    let email = format!("{username}@example.com");
    let bytes = std::fs::read(data.join(STORE_FILE)).expect("store");
    let copies: Vec<usize> = bytes
        .windows(email.len())
        .enumerate()
        .filter(|(_, w)| *w == email.as_bytes())
        .map(|(i, _)| i)
        .collect();
    let (mut refused, mut served) = (0, 0);
    for at in copies {
        let scratch = tempfile::tempdir().expect("tempdir");
        let copy = scratch.path().join("data");
        copy_dir(&data, &copy);
        let file = copy.join(STORE_FILE);
        flip(&file, &[at]);
        let before = untouched(&file);
        let copy_str = copy.to_str().expect("utf-8 path").to_string();
        match try_start(&copy) {
            Err((code, out)) => {
                // Refused: by name, the file as it was, and verify agrees
                // without writing to it.
                assert_eq!(code, Some(1), "flip at {at}: {out}");
                assert!(out.contains(DAMAGED), "flip at {at}: {out}");
                assert!(out.contains(&file.display().to_string()), "{out}");
                assert_eq!(untouched(&file), before, "flip at {at}");
                let (code, out) = run_to_end(&["verify", "--data-dir", &copy_str], &[]);
                assert_eq!(code, Some(1), "flip at {at}: {out}");
                assert!(
                    out.contains("integrity check failed"),
                    "flip at {at}: {out}"
                );
                assert_eq!(untouched(&file), before, "verify wrote to it: {out}");
                refused += 1;
            }
            Ok(()) => {
                // It served: nothing is lost.
                let (status, log) = start_and_login_logged(&copy, username, password);
                assert_eq!(status, StatusCode::OK, "flip at {at}: {log}");
                let (code, out) = run_to_end(&["verify", "--data-dir", &copy_str], &[]);
                assert_eq!(code, Some(0), "flip at {at}: {out}");
                let store = Store::open(&copy).expect("open");
                let record = store
                    .read()
                    .expect("read")
                    .account_by_username(username)
                    .expect("read")
                    .expect("the account is there");
                assert_eq!(record.email, email, "flip at {at}");
                served += 1;
            }
        }
    }
    assert!(refused >= 1, "the live copy's flip is refused");
    assert!(served >= 1, "a freed copy's flip was tried");
}

/// Every store fixture under `tests/fixtures/` (`store-v<schema>`, one per
/// schema this project has written; every schema before the current one
/// must have one), opened by the real binary: the admin and every account
/// the fixture names sign in with their passwords, and are listed with
/// their roles; a deleted tenant's id stays retired; the server stops
/// cleanly and `latchkey verify` finds the store good at the current
/// schema. A fixture added for a new schema is covered the day it lands.
#[test]
fn every_schema_fixture_opens_with_the_real_binary_and_reads_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut schemas: Vec<u64> = std::fs::read_dir(&root)
        .expect("fixtures")
        .filter_map(|e| {
            let name = e.expect("entry").file_name().into_string().ok()?;
            name.strip_prefix("store-v")?.parse().ok()
        })
        .collect();
    schemas.sort_unstable();
    let current = latchkey::store::SCHEMA_VERSION;
    for earlier in 1..current {
        assert!(schemas.contains(&earlier), "no fixture of schema {earlier}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for schema in schemas {
        let name = format!("store-v{schema}");
        let (dir, meta) = fixture_store(&name);
        let data = dir.path().join("data");
        set_mode(&data, 0o700);
        let data_str = data.to_str().expect("utf-8 path").to_string();
        let mut p = Proc::spawn(&[], &proc_env(&data_str));
        rt.block_on(async {
            let at = p.at();
            let r = at
                .try_login(ADMIN, meta["admin_password"].as_str().expect("password"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
            let admin = r.json()["token"].as_str().expect("token").to_string();
            let r = at
                .get(&format!("{USERS}?limit=1000"))
                .bearer(&admin)
                .send()
                .await;
            assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
            let listed = r.json()["items"].as_array().expect("items").clone();
            let accounts = meta["accounts"].as_array().expect("accounts");
            assert_eq!(listed.len(), accounts.len() + 1, "{name}: {listed:?}");
            for account in accounts {
                let username = account["username"].as_str().expect("username");
                let item = listed
                    .iter()
                    .find(|u| u["username"] == username)
                    .unwrap_or_else(|| panic!("{name}: {username} listed"));
                assert_eq!(item["roles"], account["roles"], "{name}: {username}");
                let password = account["password"].as_str().expect("password");
                let r = at.try_login(username, password).await;
                assert_eq!(r.status, StatusCode::OK, "{name}: {username}: {}", r.text());
            }
            if let Some(retired) = meta["retired"]["merchant"].as_str() {
                let r = at
                    .post("/api/v1/admin/merchants")
                    .bearer(&admin)
                    .json(&json!({
                        "id": retired,
                        "reseller_id": meta["retired"]["merchant_reseller"],
                        "name": "Again",
                    }))
                    .send()
                    .await;
                assert_eq!(r.status, StatusCode::CONFLICT, "{name}: {}", r.text());
            }
        });
        p.signal(libc::SIGTERM);
        assert!(p.wait().success(), "{name}: {}", p.stderr());
        assert!(!p.stderr().contains("panicked"), "{name}: {}", p.stderr());
        let (code, out) = run_to_end(&["verify", "--data-dir", &data_str], &[]);
        assert_eq!(code, Some(0), "{name}: {out}");
        assert!(
            out.contains(&format!("schema version: {current}\n")),
            "{name}: {out}"
        );
    }
}
