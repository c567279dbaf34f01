//! The systemd unit, readiness and watchdog notifications from the real
//! binary, the packaged settings file, and the Debian package: its
//! contents, maintainer scripts, and (as root, when asked) an install,
//! upgrade, remove and purge on this machine.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::*;

const UNIT: &str = "packaging/latchkey.service";
const CONFFILE: &str = "packaging/latchkey.toml.example";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a command; returns (success, stdout and stderr together).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_warning() {
    // The unit names /usr/bin/latchkey, where the package puts it; verify
    // checks that the command exists, so the copy checked here names the
    // binary under test instead and is otherwise the unit as shipped.
    let unit = std::fs::read_to_string(repo(UNIT)).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/latchkey serve"), "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("latchkey.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/latchkey", env!("CARGO_BIN_EXE_latchkey")),
    )
    .unwrap();
    let (ok, out) = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy));
    // verify exits 0 on an unknown key and only warns: any output fails.
    assert!(ok && out.trim().is_empty(), "systemd-analyze verify: {out}");
}

/// The overall exposure `systemd-analyze security` gives a unit file.
fn exposure(unit: &Path) -> f64 {
    let (ok, out) = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit));
    assert!(ok, "systemd-analyze security: {out}");
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line: {out}"));
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"))
}

#[test]
fn the_unit_exposure_is_at_most_2_and_readme_states_it() {
    let score = exposure(&repo(UNIT));
    assert!(score <= 2.0, "exposure {score} > 2.0");
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    assert!(
        readme.contains(&format!("exposure level of {score:.1}")),
        "README does not state the exposure level {score:.1}"
    );

    // The same measure on the unit without its sandboxing scores as
    // exposed, so the bound above measures the sandboxing.
    let bare: String = std::fs::read_to_string(repo(UNIT))
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with("# Sandboxing"))
        .chain(["", "[Install]", "WantedBy=multi-user.target"])
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("latchkey.service");
    std::fs::write(&copy, bare).unwrap();
    assert!(exposure(&copy) > 5.0);
}

/// Every setting `latchkey serve` takes, by its settings-file key.
fn setting_keys() -> Vec<String> {
    use clap::CommandFactory;
    let cli = latchkey::cli::Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    serve
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "config" && *l != "help")
        .map(|l| l.replace('-', "_"))
        .collect()
}

#[test]
fn the_packaged_settings_file_lists_every_setting_and_its_defaults_are_the_real_ones() {
    let text = std::fs::read_to_string(repo(CONFFILE)).unwrap();
    let keys = setting_keys();
    assert!(keys.len() > 40, "{keys:?}");
    for key in &keys {
        let listed = text.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} = "))
        });
        assert!(listed, "{CONFFILE} does not list {key}");
    }
    // As shipped: loopback, plain HTTP, the package's data directory.
    let shipped = latchkey::config::Layer::from_file(&repo(CONFFILE)).unwrap();
    let shipped = latchkey::config::Settings::resolve(shipped).unwrap();
    assert!(shipped.listen.ip().is_loopback());
    assert!(shipped.tls.is_none());
    assert_eq!(shipped.data_dir, Path::new("/var/lib/latchkey"));

    // Every `# key = value` line is the default: uncommenting them all
    // resolves to the same settings.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| keys.iter().any(|key| key == k)) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(uncommented.matches('\n').count() > 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.toml");
    std::fs::write(&file, &uncommented).unwrap();
    let all = latchkey::config::Layer::from_file(&file).unwrap();
    let explicit_count = keys
        .iter()
        .filter(|k| {
            uncommented
                .lines()
                .any(|l| l.starts_with(&format!("{k} = ")))
        })
        .count();
    assert!(
        explicit_count > 35,
        "only {explicit_count} defaults written"
    );
    let all = latchkey::config::Settings::resolve(all).unwrap();
    assert_eq!(format!("{all:?}"), format!("{shipped:?}"));
}

// ---------------------------------------------------------------------------
// sd_notify from the real binary

/// The systemd side of `$NOTIFY_SOCKET`: a datagram socket the test binds.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        NotifySocket { socket, path }
    }

    /// The next message that contains `wanted`, and every message seen
    /// before it; gives up after 30 seconds.
    fn until(&self, wanted: &str) -> (String, Vec<String>) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.lines().any(|l| l == wanted) {
                    return (msg, seen);
                }
                seen.push(msg);
            }
        }
        panic!("no {wanted} within 30 s; saw {seen:?}");
    }
}

/// `latchkey serve` started as systemd would: with `$NOTIFY_SOCKET` and
/// `$WATCHDOG_USEC`. Its stderr goes to a thread that keeps it.
fn spawn_notified(
    data: &Path,
    port: u16,
    notify: &Path,
    watchdog_usec: &str,
) -> std::process::Child {
    let mut cmd = binary();
    cmd.arg("serve")
        .env_clear()
        .env("LATCHKEY_DATA_DIR", data)
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", watchdog_usec)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
    child
}

/// A status line read from a fresh plain HTTP/1.1 connection.
fn healthz(port: u16) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.lines().next().unwrap_or("").to_string())
}

/// Signals a child process.
fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on a child this test started, with a valid signal.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

#[test]
fn systemd_hears_ready_once_the_port_answers_then_watchdog_reload_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    // A port free a moment ago, so the test knows where to connect before
    // the server says anything.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // 200 ms: the server pings every 100 ms.
    let mut child = spawn_notified(&dir.path().join("data"), port, &notify.path, "200000");

    let (_, before) = notify.until("READY=1");
    assert!(before.iter().all(|m| !m.contains("READY")), "{before:?}");
    // READY=1 came after the bind: the port answers at once.
    assert_eq!(
        healthz(port).expect("connect right after READY=1"),
        "HTTP/1.1 200 OK"
    );

    // The watchdog is pinged while the server runs.
    notify.until("WATCHDOG=1");
    notify.until("WATCHDOG=1");

    // A reload is announced with the monotonic time systemd 253 matches,
    // and ends with READY=1.
    signal(&child, libc::SIGHUP);
    let (reloading, _) = notify.until("RELOADING=1");
    assert!(
        reloading.lines().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|n| n.parse::<u64>().is_ok())),
        "{reloading:?}"
    );
    notify.until("READY=1");

    signal(&child, libc::SIGTERM);
    notify.until("STOPPING=1");
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        let _ = notify.socket.recv(&mut [0u8; 512]);
    }
    let _ = child.kill();
    assert!(status.expect("latchkey did not exit").success());
}

// ---------------------------------------------------------------------------
// The Debian package

/// The package, built once per test run from the binary the tests already
/// built (no second compilation): `cargo deb --no-build`.
fn deb() -> &'static Path {
    static DEB: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DEB.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let exe = Path::new(env!("CARGO_BIN_EXE_latchkey"));
        let profile = match exe
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
        {
            Some("debug") => "dev",
            Some(other) => other,
            None => "dev",
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let (ok, log) = run(Command::new(cargo)
            .args([
                "deb",
                "--no-build",
                "--strip",
                "--fast",
                "--profile",
                profile,
            ])
            .arg("--manifest-path")
            .arg(repo("Cargo.toml"))
            .arg("--output")
            .arg(out.path()));
        assert!(
            ok,
            "cargo deb failed (scripts/test installs cargo-deb when it is missing): {log}"
        );
        let deb = std::fs::read_dir(out.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .unwrap_or_else(|| panic!("no .deb written: {log}"));
        (out, deb)
    });
    path
}

fn dpkg_deb(args: &[&str]) -> String {
    let (ok, out) = run(Command::new("dpkg-deb").args(args).arg(deb()));
    assert!(ok, "dpkg-deb {args:?}: {out}");
    out
}

/// One maintainer script or control file of the package.
fn control_file(name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb())
        .arg(dir.path()));
    assert!(ok, "{out}");
    std::fs::read_to_string(dir.path().join(name)).unwrap_or_default()
}

#[test]
fn the_deb_holds_the_binary_unit_and_settings_with_scripts_that_need_no_systemd() {
    let contents = dpkg_deb(&["-c"]);
    for (mode, path) in [
        ("-rwxr-xr-x", "./usr/bin/latchkey"),
        ("-rw-r--r--", "./usr/lib/systemd/system/latchkey.service"),
        ("-rw-r-----", "./etc/latchkey/latchkey.toml"),
        ("-rw-r--r--", "./usr/share/doc/latchkey/README.md"),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{path} ({mode}) missing from:\n{contents}"
        );
    }
    assert_eq!(
        dpkg_deb(&["-f"])
            .lines()
            .find(|l| l.starts_with("Package:")),
        Some("Package: latchkey")
    );
    let depends = dpkg_deb(&["-f"]);
    assert!(
        depends
            .lines()
            .any(|l| l.starts_with("Depends:") && l.contains("adduser")),
        "{depends}"
    );
    assert_eq!(
        control_file("conffiles").trim(),
        "/etc/latchkey/latchkey.toml"
    );

    let postinst = control_file("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(postinst.contains("install -d -o latchkey -g latchkey -m 0700 /var/lib/latchkey"));
    assert!(
        postinst.contains("deb-systemd-helper enable latchkey.service"),
        "{postinst}"
    );
    // Started on install, restarted on upgrade, only where systemd runs:
    // the script must not fail without it.
    assert!(postinst.contains("_dh_action=restart"), "{postinst}");
    assert!(
        postinst.contains("if [ -d /run/systemd/system ]"),
        "{postinst}"
    );
    let postrm = control_file("postrm");
    let purge = postrm.rfind("\"purge\"").expect("a purge branch");
    assert!(
        postrm[purge..].contains("rm -rf /var/lib/latchkey"),
        "{postrm}"
    );
    assert!(!postrm.contains("\"remove\" ]; then\n    rm"), "{postrm}");
    for script in ["postinst", "postrm", "prerm"] {
        let text = control_file(script);
        assert!(text.starts_with("#!/bin/sh\n"), "{script}");
        let (ok, out) = run(Command::new("sh").arg("-n").arg("-c").arg(&text));
        assert!(ok, "{script} does not parse: {out}");
    }

    // The unit and settings in the package are the ones in packaging/.
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb())
        .arg(dir.path()));
    assert!(ok, "{out}");
    for (inside, ours) in [
        ("usr/lib/systemd/system/latchkey.service", UNIT),
        ("etc/latchkey/latchkey.toml", CONFFILE),
    ] {
        assert_eq!(
            std::fs::read(dir.path().join(inside)).unwrap(),
            std::fs::read(repo(ours)).unwrap(),
            "{inside}"
        );
    }
    let (ok, out) = run(Command::new(dir.path().join("usr/bin/latchkey")).arg("--help"));
    assert!(ok && out.contains("serve"), "{out}");

    // README's build command installs the cargo-deb that scripts/test pins.
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let package = readme
        .split("## Package")
        .nth(1)
        .expect("a Package section");
    let script = std::fs::read_to_string(repo("scripts/test")).unwrap();
    let pin = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("cargo install cargo-deb "))
        .expect("scripts/test installs cargo-deb");
    assert!(
        package.contains(&format!("cargo install cargo-deb {pin}")),
        "README and scripts/test disagree on cargo-deb {pin}"
    );
}

/// Whether this run may install packages on this machine: as root, and
/// only when asked (`LATCHKEY_TEST_DPKG=1`) or in CI.
fn may_install() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let asked = std::env::var("LATCHKEY_TEST_DPKG").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    root && asked
}

fn mode_owner(path: &str) -> (u32, String, String) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |id: u32, db: &str| {
        let (_, out) = run(Command::new("getent").args([db, &id.to_string()]));
        out.split(':').next().unwrap_or("").to_string()
    };
    (
        meta.mode() & 0o7777,
        name(meta.uid(), "passwd"),
        name(meta.gid(), "group"),
    )
}

fn dpkg(args: &[&str]) {
    let (ok, out) = run(Command::new("dpkg")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(ok, "dpkg {args:?}: {out}");
}

#[test]
fn the_deb_installs_upgrades_removes_and_purges_on_this_machine() {
    if !may_install() {
        eprintln!("not installing the .deb: needs root and LATCHKEY_TEST_DPKG=1 or CI");
        return;
    }
    let (installed, _) = run(Command::new("dpkg-query").args(["-W", "latchkey"]));
    assert!(
        !installed,
        "a latchkey package is already installed here; not touching it"
    );
    let deb = deb().to_str().unwrap().to_string();

    // Purged however the test ends, even when a step below (or the
    // install itself) fails half-way: a later run refuses to touch an
    // installed package.
    struct Purge;
    impl Drop for Purge {
        fn drop(&mut self) {
            let _ = Command::new("dpkg").args(["--purge", "latchkey"]).output();
        }
    }
    let _purge = Purge;
    dpkg(&["-i", &deb]);

    let (ok, user) = run(Command::new("getent").args(["passwd", "latchkey"]));
    assert!(ok, "no latchkey user");
    let fields: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(fields[5], "/var/lib/latchkey");
    assert!(fields[6].ends_with("nologin"), "{user}");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid < 1000, "not a system user: {user}");
    assert_eq!(
        mode_owner("/var/lib/latchkey"),
        (0o700, "latchkey".into(), "latchkey".into())
    );
    assert_eq!(
        mode_owner("/etc/latchkey"),
        (0o750, "root".into(), "latchkey".into())
    );
    assert_eq!(
        mode_owner("/etc/latchkey/latchkey.toml"),
        (0o640, "root".into(), "latchkey".into())
    );
    // Enabled, even though systemd is not running to start it.
    assert!(
        std::fs::symlink_metadata("/etc/systemd/system/multi-user.target.wants/latchkey.service")
            .is_ok(),
        "latchkey.service not enabled"
    );
    let (ok, out) = run(Command::new("systemd-analyze").args([
        "verify",
        "--man=no",
        "/usr/lib/systemd/system/latchkey.service",
    ]));
    assert!(ok && out.trim().is_empty(), "installed unit: {out}");

    // Where systemd runs, the install started the service on loopback;
    // stop it so the run below has the store to itself.
    if Path::new("/run/systemd/system").exists() {
        let (active, out) = run(Command::new("systemctl").args(["is-active", "latchkey"]));
        assert!(active, "latchkey.service not started on install: {out}");
        let (ok, out) = run(Command::new("systemctl").args(["stop", "latchkey"]));
        assert!(ok, "{out}");
    }

    // The service user can read its settings and make its store, and
    // README's Operations section works as written on what was installed.
    operations_as_readme_tells();
    let store = "/var/lib/latchkey/latchkey.redb";
    let (_, owner, _) = mode_owner(store);
    assert_eq!(owner, "latchkey", "{store}");

    // An upgrade (the same package again) keeps the data and an edited
    // settings file.
    std::fs::write("/var/lib/latchkey/marker", "kept").unwrap();
    let edited = std::fs::read_to_string("/etc/latchkey/latchkey.toml").unwrap()
        + "\nrate_login_per_ip = 31\n";
    std::fs::write("/etc/latchkey/latchkey.toml", &edited).unwrap();
    dpkg(&["-i", "--force-confold", &deb]);
    assert_eq!(
        std::fs::read_to_string("/var/lib/latchkey/marker").unwrap(),
        "kept"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/latchkey/latchkey.toml").unwrap(),
        edited
    );

    // Remove keeps data and settings; purge deletes both.
    dpkg(&["-r", "latchkey"]);
    assert!(!Path::new("/usr/bin/latchkey").exists());
    assert!(Path::new("/var/lib/latchkey/marker").exists());
    assert!(Path::new("/etc/latchkey/latchkey.toml").exists());
    dpkg(&["--purge", "latchkey"]);
    assert!(!Path::new("/var/lib/latchkey").exists());
    assert!(!Path::new("/etc/latchkey").exists());
}

// ---------------------------------------------------------------------------
// README's Operations section, on the installed package

/// The settings file the package installs and its unit names.
const PACKAGED_CONFIG: &str = "/etc/latchkey/latchkey.toml";

/// The installed `/usr/bin/latchkey` run as the service user, as systemd
/// would run it (`INVOCATION_ID` set; no admin password given), with the
/// package's settings found as README's Operations section says
/// (`LATCHKEY_CONFIG`). Argon2 is made light to keep the test short.
fn as_service(args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=latchkey",
        "--regid=latchkey",
        "--init-groups",
        "--",
        "/usr/bin/latchkey",
    ])
    .args(args)
    .env_clear()
    .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    .env("LATCHKEY_CONFIG", PACKAGED_CONFIG)
    .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
    .env("LATCHKEY_ARGON2_ITERATIONS", "1")
    .stdin(Stdio::null());
    cmd
}

/// Runs one command of README's Operations section as the service user;
/// its output, which must say it succeeded.
fn operate(args: &[&str]) -> String {
    let (ok, out) = run(&mut as_service(args));
    assert!(ok, "latchkey {args:?} failed: {out}");
    out
}

/// A `latchkey serve` run as the service user, with its stderr kept; killed
/// when dropped, so a failed step leaves no server behind to block the purge.
struct Serving {
    /// The `setpriv` process, which became latchkey (same pid).
    child: std::process::Child,
    /// Its stderr, line by line, from a thread that reads it.
    lines: std::sync::mpsc::Receiver<String>,
    /// Everything it wrote on stderr so far.
    log: String,
    /// The port it listens on, from its `listening on` line.
    port: u16,
}

impl Serving {
    /// Starts the installed unit's `ExecStart` command, with `config` for
    /// the settings file it names and `extra` flags, and waits (at most
    /// 30 s) until it says where it listens.
    fn start(config: &str, extra: &[&str]) -> Serving {
        let unit = std::fs::read_to_string("/usr/lib/systemd/system/latchkey.service").unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/latchkey "))
            .expect("the installed unit's ExecStart");
        assert!(exec.contains(PACKAGED_CONFIG), "{exec}");
        let exec = exec.replace(PACKAGED_CONFIG, config);
        let mut args: Vec<&str> = exec.split_whitespace().collect();
        args.extend_from_slice(extra);
        let mut cmd = as_service(&args);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut serving = Serving {
            child,
            lines,
            log: String::new(),
            port: 0,
        };
        let port = loop {
            match serving.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    serving.log.push_str(&line);
                    serving.log.push('\n');
                    let port = line
                        .split_once("listening on http")
                        .and_then(|(_, rest)| rest.split_whitespace().next())
                        .and_then(|url| url.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    if let Some(port) = port {
                        break port;
                    }
                }
                Err(_) => panic!(
                    "the installed binary did not serve as latchkey with {extra:?}: {}",
                    serving.log
                ),
            }
        };
        serving.port = port;
        serving
    }

    /// Stops it as systemd does (SIGTERM) and returns all it logged.
    fn stop(mut self) -> String {
        signal(&self.child, libc::SIGTERM);
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.log.push_str(&line);
            self.log.push('\n');
        }
        assert!(status.success(), "{}", self.log);
        std::mem::take(&mut self.log)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One curl call as README's examples make it: the status (0 when no
/// answer came, e.g. a TLS handshake refused) and the body.
fn curl(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&str>,
    ca: Option<&Path>,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "20",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        url,
    ]);
    if let Some(token) = bearer {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d", body]);
    }
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.output().expect("curl (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Signs in with README's login call; the status and the access token.
fn sign_in(base: &str, username: &str, password: &str, ca: Option<&Path>) -> (u16, String) {
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let (status, answer) = curl(
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(&body),
        ca,
    );
    let token = serde_json::from_str::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, token)
}

/// Gives a path to the service user, as an operator would its backup
/// directory or certificate copies.
fn chown_to_service(path: &Path) {
    let (ok, out) = run(Command::new("chown")
        .args(["-R", "latchkey:latchkey"])
        .arg(path));
    assert!(ok, "{out}");
}

/// Writes a test CA's certificate and key where the settings name them,
/// as README's certbot deploy hook does (`install -m 0640 -g latchkey`);
/// returns the CA a client must trust.
fn install_certificate(pki_dir: &Path, tls: &Path) -> PathBuf {
    std::fs::create_dir_all(pki_dir).unwrap();
    let pki = TestPki::new(pki_dir);
    for (from, to) in [(&pki.cert, "fullchain.pem"), (&pki.key, "privkey.pem")] {
        let (ok, out) = run(Command::new("install")
            .args(["-m", "0640", "-g", "latchkey"])
            .arg(from)
            .arg(tls.join(to)));
        assert!(ok, "{out}");
    }
    let ca = pki_dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    ca
}

/// Issue 12's "done when", on the package this run installed: README's
/// Operations section followed as written, every command the installed
/// binary run as the service user.
fn operations_as_readme_tells() {
    // The commands below are README's: the package's settings through
    // `LATCHKEY_CONFIG` (as `as_service` sets it), then each command.
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let operations = readme
        .split("## Operations")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("an Operations section");
    for told in [
        &format!("export LATCHKEY_CONFIG={PACKAGED_CONFIG}\n"),
        "sudo cat /var/lib/latchkey/initial-admin-password",
        "latchkey backup --to ",
        "latchkey verify /",
        "latchkey restore --from ",
        " --data-dir ",
        "latchkey recover-admin ",
    ] {
        assert!(
            operations.contains(told),
            "README's Operations no longer say {told:?}"
        );
    }
    const NEW_PASSWORD: &str = "the admin's own new password";
    const BOB_PASSWORD: &str = "bob's password before the backup";
    // Owned by the service user, as its backup directory would be.
    let work = tempfile::tempdir().unwrap();
    chown_to_service(work.path());

    // First start under systemd: the password goes to a file only the
    // service user reads, and the log names the file, never the password.
    // The login limits are raised so the lockout below, not a rate limit,
    // is what refuses the admin.
    let serving = Serving::start(
        PACKAGED_CONFIG,
        &[
            "--listen",
            "127.0.0.1:0",
            "--rate-login-per-ip",
            "1000",
            "--rate-login-per-account",
            "1000",
        ],
    );
    let base = format!("http://127.0.0.1:{}", serving.port);
    let file = "/var/lib/latchkey/initial-admin-password";
    assert_eq!(
        mode_owner(file),
        (0o600, "latchkey".into(), "latchkey".into())
    );
    // What `sudo cat` shows: the account and its password, on lines of
    // their own.
    let shown = std::fs::read_to_string(file).unwrap();
    assert!(shown.lines().any(|l| l == "username: admin"), "{shown}");
    let first = shown
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password line in {file}"));
    assert!(first.len() >= 16, "a short first password");
    assert!(serving.log.contains(file), "{}", serving.log);
    assert!(!serving.log.contains(first), "the password is in the log");

    // Sign in with it, then change it: the file goes.
    let (status, token) = sign_in(&base, "admin@localhost", first, None);
    assert_eq!(status, 200, "sign-in with the first password");
    let change = serde_json::json!({ "current_password": first, "new_password": NEW_PASSWORD });
    let (status, body) = curl(
        "POST",
        &format!("{base}/api/v1/auth/password"),
        Some(&token),
        Some(&change.to_string()),
        None,
    );
    assert_eq!(status, 204, "{body}");
    assert!(
        !Path::new(file).exists(),
        "{file} outlived the password change"
    );
    assert_eq!(sign_in(&base, "admin@localhost", first, None).0, 401);
    let (status, token) = sign_in(&base, "admin@localhost", NEW_PASSWORD, None);
    assert_eq!(status, 200);

    // A write acknowledged just before the backup, taken while serving.
    let bob = serde_json::json!({
        "username": "bob", "email": "bob@example.com",
        "password": BOB_PASSWORD, "roles": ["user"]
    });
    let (status, body) = curl(
        "POST",
        &format!("{base}/api/v1/admin/users"),
        Some(&token),
        Some(&bob.to_string()),
        None,
    );
    assert_eq!(status, 201, "{body}");
    let backup = work.path().join("latchkey-2026-11-29.backup");
    let backup_arg = backup.to_str().unwrap();
    operate(&["backup", "--to", backup_arg]);
    assert_eq!(
        mode_owner(backup_arg),
        (0o600, "latchkey".into(), "latchkey".into())
    );
    assert_eq!(
        curl("GET", &format!("{base}/healthz"), None, None, None).0,
        200
    );

    // Lock the admin out, then recover it through the running server.
    for _ in 0..10 {
        let (status, _) = sign_in(&base, "admin@localhost", "not the password", None);
        assert_eq!(status, 401);
    }
    let (status, _) = sign_in(&base, "admin@localhost", NEW_PASSWORD, None);
    assert_ne!(status, 200, "the admin is not locked out");
    let out = operate(&["recover-admin"]);
    assert!(out.contains("asked the running server"), "{out}");
    let recovered = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed: {out}"));
    assert_eq!(
        sign_in(&base, "admin@localhost", recovered, None).0,
        200,
        "sign-in with the recovered password"
    );
    let log = serving.stop();
    assert!(
        !log.contains(first) && !log.contains(recovered),
        "a password is in the log"
    );

    // Restore on a second data directory, check it, and serve it.
    let restored = work.path().join("restored");
    let restored_arg = restored.to_str().unwrap();
    operate(&["verify", backup_arg]);
    operate(&["restore", "--from", backup_arg, "--data-dir", restored_arg]);
    operate(&["verify", "--data-dir", restored_arg]);

    // Served over TLS from a copy of the packaged settings with tls_cert
    // and tls_key set, as README's Package section says.
    let tls = work.path().join("tls");
    let (ok, out) = run(Command::new("install")
        .args(["-d", "-m", "0750", "-g", "latchkey"])
        .arg(&tls));
    assert!(ok, "{out}");
    let old_ca = install_certificate(&work.path().join("pki-old"), &tls);
    let settings = work.path().join("latchkey.toml");
    let text = std::fs::read_to_string(PACKAGED_CONFIG).unwrap()
        + &format!(
            "\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            tls.join("fullchain.pem").display(),
            tls.join("privkey.pem").display()
        );
    std::fs::write(&settings, text).unwrap();
    chown_to_service(&settings);
    let settings_arg = settings.to_str().unwrap();
    let serving = Serving::start(
        settings_arg,
        &["--data-dir", restored_arg, "--listen", "127.0.0.1:0"],
    );
    let base = format!("https://127.0.0.1:{}", serving.port);
    // The restored store holds the write made before the backup, and the
    // admin's password as it was then.
    assert_eq!(
        sign_in(&base, "bob", BOB_PASSWORD, Some(&old_ca)).0,
        200,
        "bob, written before the backup, is not in the restored store"
    );
    assert_eq!(
        sign_in(&base, "admin@localhost", NEW_PASSWORD, Some(&old_ca)).0,
        200
    );

    // Renew the certificate in place and reload: a new TLS client sees the
    // new one, and the old CA no longer vouches for what is served.
    let new_ca = install_certificate(&work.path().join("pki-new"), &tls);
    let healthz = |ca: &Path| curl("GET", &format!("{base}/healthz"), None, None, Some(ca)).0;
    assert_eq!(
        healthz(&new_ca),
        0,
        "the new certificate is served before the reload"
    );
    signal(&serving.child, libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while healthz(&new_ca) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate is not served 30 s after SIGHUP"
        );
    }
    assert_eq!(healthz(&old_ca), 0, "the old certificate is still served");
    assert_eq!(
        sign_in(&base, "admin@localhost", NEW_PASSWORD, Some(&new_ca)).0,
        200
    );
    serving.stop();
}
