//! The operator's commands beside `serve`: `recover-admin`, `backup`,
//! `restore`, `verify`, `import`, `check-config` and `healthcheck`, and the backup
//! archive's format.
//!
//! Each command finds the server from the settings `serve` uses (`--config`,
//! `LATCHKEY_*`, flags), and reaches a running one only through the control
//! socket ([`crate::control`]). Each returns the text to print on success,
//! or an [`OpsError`] whose text says what went wrong and what to do.
//!
//! # The backup archive (format 1)
//!
//! | bytes | content |
//! | --- | --- |
//! | 16 | magic `LATCHKEY-BACKUP\n` |
//! | 4 | format version, big-endian (1) |
//! | 8 | schema version of the store inside, big-endian |
//! | 8 | creation time, Unix seconds, big-endian |
//! | 32 | the master key (it unseals the signing keys) |
//! | 8 | length `n` of the store, big-endian |
//! | n | the store: a redb file |
//! | 32 | SHA-256 of every byte before it |
//!
//! The archive holds the master key, so it is as sensitive as the data
//! directory: it is written 0600, and whoever holds it can sign tokens.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, Layer, Settings};
use crate::control::{self, CallError, Request};
use crate::store::backup::{self, Inspection};
use crate::store::{SCHEMA_VERSION, STORE_FILE, StoreError, keyfile::MASTER_KEY_FILE};

/// The archive's first bytes.
pub const MAGIC: &[u8; 16] = b"LATCHKEY-BACKUP\n";
/// The archive format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the store.
pub const HEADER_LEN: usize = 16 + 4 + 8 + 8 + 32 + 8;
/// Bytes of the trailing digest.
pub const DIGEST_LEN: usize = 32;
/// Largest store an archive may announce (1 TiB): a bound on what a
/// damaged length field can make `restore` try to write.
pub const MAX_STORE_BYTES: u64 = 1 << 40;

/// The git revision this binary was built from ("unknown" outside a
/// checkout).
pub const GIT_REVISION: &str = env!("LATCHKEY_GIT_REVISION");

/// The version line: the package version and the git revision it was
/// built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("LATCHKEY_GIT_REVISION"),
    ")"
);

/// A command that did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The settings are unusable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Anything else; the text is for the operator.
    #[error("{0}")]
    Failed(String),
}

fn failed(message: impl Into<String>) -> OpsError {
    OpsError::Failed(message.into())
}

/// Resolves the settings as `serve` does: the file under the environment
/// and flags, then defaults.
pub fn resolve(config: Option<&Path>, layer: Layer) -> Result<Settings, ConfigError> {
    let file = match config {
        Some(path) => Layer::from_file(path)?,
        None => Layer::default(),
    };
    Settings::resolve(layer.over(file))
}

/// The archive's header for a store of `store_len` bytes.
pub fn archive_header(schema_version: u64, master: &[u8; 32], store_len: u64) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    header.extend_from_slice(&schema_version.to_be_bytes());
    header.extend_from_slice(&now.to_be_bytes());
    header.extend_from_slice(master);
    header.extend_from_slice(&store_len.to_be_bytes());
    header
}

/// What an archive's header says.
struct Header {
    /// Schema version of the store inside.
    schema_version: u64,
    /// The master key.
    master: [u8; 32],
}

/// Checks an archive whole (length, digest, header) and writes its store
/// to `store_to` (created, mode 0600). Nothing is trusted before the
/// digest matches; on failure the partial store file is removed.
fn unpack(archive: &Path, store_to: &Path) -> Result<Header, OpsError> {
    let bad = |why: &str| {
        failed(format!(
            "{} is not a usable latchkey backup: {why}",
            archive.display()
        ))
    };
    let mut file = fs::File::open(archive)
        .map_err(|e| failed(format!("cannot read {}: {e}", archive.display())))?;
    let size = file
        .metadata()
        .map_err(|e| failed(format!("cannot read {}: {e}", archive.display())))?
        .len();
    let mut head = [0u8; HEADER_LEN];
    if size < (HEADER_LEN + DIGEST_LEN) as u64 || file.read_exact(&mut head).is_err() {
        return Err(bad("it is too short"));
    }
    if &head[..16] != MAGIC {
        return Err(bad("it does not start like one"));
    }
    let field = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let format = u32::from_be_bytes([head[16], head[17], head[18], head[19]]);
    if format != FORMAT_VERSION {
        return Err(bad(&format!(
            "its format is {format}; this build reads format {FORMAT_VERSION}"
        )));
    }
    let schema_version = field(20);
    let mut master = [0u8; 32];
    master.copy_from_slice(&head[36..68]);
    let store_len = field(68);
    if store_len > MAX_STORE_BYTES || size != HEADER_LEN as u64 + store_len + DIGEST_LEN as u64 {
        return Err(bad(
            "its length does not match what its header announces (truncated or damaged)",
        ));
    }
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(&head);
    let mut out = private_file(store_to)?;
    let copied = (|| {
        let mut left = store_len;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            file.read_exact(&mut buf[..want])?;
            digest.update(&buf[..want]);
            out.write_all(&buf[..want])?;
            left -= want as u64;
        }
        out.sync_all()?;
        let mut trailer = [0u8; DIGEST_LEN];
        file.read_exact(&mut trailer)?;
        Ok::<_, io::Error>(trailer)
    })();
    let matches = match copied {
        Ok(trailer) => trailer.as_slice() == digest.finish().as_ref(),
        Err(_) => false,
    };
    if !matches {
        let _ = fs::remove_file(store_to);
        return Err(bad(
            "its checksum does not match its contents (the file is damaged)",
        ));
    }
    Ok(Header {
        schema_version,
        master,
    })
}

/// Creates `path` for writing, mode 0600, refusing one that exists.
fn private_file(path: &Path) -> Result<fs::File, OpsError> {
    crate::store::new_private_file(path)
        .map_err(|e| failed(format!("cannot create {}: {e}", path.display())))
}

/// Creates a directory only its owner can enter.
fn private_dir(path: &Path) -> Result<(), OpsError> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .map_err(|e| failed(format!("cannot create {}: {e}", path.display())))
}

/// A private scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, OpsError> {
        let path =
            std::env::temp_dir().join(format!("latchkey-verify-{}", uuid::Uuid::new_v4().simple()));
        private_dir(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What a verified store holds.
struct Verified {
    /// Its outline and keys.
    inspection: Inspection,
    /// The signing key id that unsealed.
    kid: String,
}

/// Checks the store file at `store` with `master`: redb's integrity check,
/// a schema version this build can open, every account record readable,
/// and an active signing key that unseals.
fn verify_store(store: &Path, master: &[u8; 32]) -> Result<Verified, OpsError> {
    let inspection = backup::inspect(store).map_err(|e| match e {
        StoreError::InUse { .. } => failed(format!(
            "{} is in use by a running latchkey",
            store.display()
        )),
        other => failed(other.to_string()),
    })?;
    let found = inspection.outline.schema_version;
    if found > SCHEMA_VERSION {
        return Err(failed(format!(
            "the store was written by a newer latchkey (schema version {found}; this build understands up to {SCHEMA_VERSION})"
        )));
    }
    let active: Vec<_> = inspection
        .signing_keys
        .iter()
        .filter(|k| k.active)
        .collect();
    let kid = match active.as_slice() {
        [] => return Err(failed("the store holds no active signing key")),
        keys => keys
            .iter()
            .find(|k| crate::domain::signing::unseal(master, k).is_some())
            .map(|k| k.kid.clone())
            .ok_or_else(|| {
                failed(
                    "the active signing key does not unseal with this master key \
                     (the master.key file does not belong to this store)",
                )
            })?,
    };
    Ok(Verified { inspection, kid })
}

fn describe(verified: &Verified) -> String {
    let o = &verified.inspection.outline;
    let migrate = if o.schema_version < SCHEMA_VERSION {
        format!(" (older; this build migrates it to {SCHEMA_VERSION} when it opens it)")
    } else {
        String::new()
    };
    format!(
        "  integrity: ok\n  schema version: {}{migrate}\n  tables: {}\n  accounts: {}\n  signing key: {} unseals\n",
        o.schema_version, o.tables, o.accounts, verified.kid
    )
}

/// Verifies an archive: unpacks it into a scratch directory and checks the
/// store inside with the master key it carries.
fn verify_archive(archive: &Path) -> Result<(Header, Verified), OpsError> {
    let scratch = Scratch::new()?;
    let store = scratch.0.join(STORE_FILE);
    let header = unpack(archive, &store)?;
    let verified = verify_store(&store, &header.master)?;
    if verified.inspection.outline.schema_version != header.schema_version {
        return Err(failed(format!(
            "{}: the header names schema {} but the store inside records {}",
            archive.display(),
            header.schema_version,
            verified.inspection.outline.schema_version
        )));
    }
    Ok((header, verified))
}

/// Whether `path` starts with the archive magic.
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 16];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == MAGIC
}

/// `latchkey backup --to FILE`.
pub async fn backup(settings: &Settings, to: &Path) -> Result<String, OpsError> {
    let dir = &settings.data_dir;
    let mut reply = match control::call(dir, &Request::Backup).await {
        Ok(reply) => reply,
        Err(CallError::NotRunning) => {
            return Err(failed(format!(
                "no latchkey is running on {} (no control socket there). `backup` asks the \
                 running server for a consistent snapshot; with the server stopped, copy the \
                 data directory ({STORE_FILE} and {MASTER_KEY_FILE}) as it is",
                dir.display()
            )));
        }
        Err(CallError::Failed(why)) => return Err(failed(format!("backup failed: {why}"))),
    };
    let len = reply
        .answer
        .bytes
        .ok_or_else(|| failed("backup failed: the server announced no length"))?;
    if len > MAX_STORE_BYTES + (HEADER_LEN + DIGEST_LEN) as u64 {
        return Err(failed(
            "backup failed: the server announced an impossible length",
        ));
    }
    let partial = partial_path(to);
    let _ = fs::remove_file(&partial);
    let mut out = private_file(&partial)?;
    let received = control::copy_exact(&mut reply.rest, len, |chunk| out.write_all(chunk))
        .await
        .and_then(|()| out.sync_all());
    if let Err(e) = received {
        let _ = fs::remove_file(&partial);
        return Err(failed(format!("backup failed while receiving: {e}")));
    }
    drop(out);
    let checked = {
        let partial = partial.clone();
        tokio::task::spawn_blocking(move || verify_archive(&partial))
            .await
            .map_err(|e| failed(e.to_string()))?
    };
    let (_, verified) = match checked {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(failed(format!("the backup received does not verify: {e}")));
        }
    };
    fs::rename(&partial, to)
        .map_err(|e| failed(format!("cannot move the backup to {}: {e}", to.display())))?;
    Ok(format!(
        "backup written to {} ({len} bytes, mode 0600), taken from the running server through {}; verified:\n{}\
         It holds the master key: keep it as safe as the data directory.\n",
        to.display(),
        dir.join(control::SOCKET_FILE).display(),
        describe(&verified)
    ))
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    to.with_file_name(name)
}

/// `latchkey restore --from FILE`: fills an empty (or missing) data
/// directory; refuses one with anything in it.
pub fn restore(settings: &Settings, from: &Path) -> Result<String, OpsError> {
    let dir = &settings.data_dir;
    let created = match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(failed(format!(
                    "refusing to restore into {}: it is not empty. Restore into a new or empty \
                     data directory (--data-dir or LATCHKEY_DATA_DIR), then point the server at it",
                    dir.display()
                )));
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            private_dir(dir)?;
            true
        }
        Err(e) => return Err(failed(format!("cannot read {}: {e}", dir.display()))),
    };
    let store = dir.join(STORE_FILE);
    let key = dir.join(MASTER_KEY_FILE);
    let done = (|| {
        let header = unpack(from, &store)?;
        let mut out = private_file(&key)?;
        out.write_all(&header.master)
            .and_then(|()| out.sync_all())
            .map_err(|e| failed(format!("cannot write {}: {e}", key.display())))?;
        verify_store(&store, &header.master)
    })();
    match done {
        Ok(verified) => Ok(format!(
            "restored {} into {}:\n{}Start the server with this data directory.\n",
            from.display(),
            dir.display(),
            describe(&verified)
        )),
        Err(e) => {
            let _ = fs::remove_file(&store);
            let _ = fs::remove_file(&key);
            if created {
                let _ = fs::remove_dir(dir);
            }
            Err(e)
        }
    }
}

/// `latchkey verify [FILE]`: a backup archive, a store file (with the
/// `master.key` beside it), a data directory, or (without FILE) the
/// configured data directory, through the running server when there is one.
pub async fn verify(settings: &Settings, file: Option<&Path>) -> Result<String, OpsError> {
    let target = file.unwrap_or(&settings.data_dir);
    if target.is_file() && is_archive(target) {
        let path = target.to_path_buf();
        let (_, verified) = tokio::task::spawn_blocking(move || verify_archive(&path))
            .await
            .map_err(|e| failed(e.to_string()))??;
        return Ok(format!(
            "{} is a good backup:\n{}",
            target.display(),
            describe(&verified)
        ));
    }
    let (store, dir) = if target.is_dir() {
        (target.join(STORE_FILE), target.to_path_buf())
    } else {
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        (target.to_path_buf(), dir)
    };
    if !store.is_file() {
        return Err(failed(format!("there is no store at {}", store.display())));
    }
    let master = backup::read_master_key(&dir).map_err(|e| failed(e.to_string()))?;
    let direct = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || verify_store(&store, &master))
            .await
            .map_err(|e| failed(e.to_string()))?
    };
    match direct {
        Ok(verified) => Ok(format!(
            "{} is a good store (the server is not running; checked the file directly):\n{}",
            store.display(),
            describe(&verified)
        )),
        Err(_) if backup::inspect(&store).is_err_and(|e| matches!(e, StoreError::InUse { .. })) => {
            // The server holds it: check a snapshot of it instead.
            let scratch = Scratch::new()?;
            let archive = scratch.0.join("snapshot.latchkey-backup");
            let temp = Settings {
                data_dir: dir.clone(),
                ..settings.clone()
            };
            backup(&temp, &archive).await?;
            let (_, verified) = verify_archive(&archive)?;
            Ok(format!(
                "{} is in use by the running server; a snapshot taken through its control socket is good:\n{}",
                store.display(),
                describe(&verified)
            ))
        }
        Err(e) => Err(e),
    }
}

/// `latchkey recover-admin [USERNAME]`.
pub async fn recover_admin(
    settings: &Settings,
    username: Option<&str>,
) -> Result<String, OpsError> {
    let dir = &settings.data_dir;
    let request = Request::RecoverAdmin {
        username: username.map(str::to_string),
    };
    let (how, r) = match control::call(dir, &request).await {
        Ok(reply) => {
            let a = reply.answer;
            (
                format!(
                    "asked the running server through {}",
                    dir.join(control::SOCKET_FILE).display()
                ),
                crate::domain::recovery::Recovered {
                    username: a.username.unwrap_or_default(),
                    email: a.email.unwrap_or_default(),
                    password: a
                        .password
                        .ok_or_else(|| failed("the server answered without a password"))?,
                    sessions_ended: a.sessions_ended.unwrap_or(0),
                },
            )
        }
        Err(CallError::Failed(why)) => return Err(failed(format!("recover-admin failed: {why}"))),
        Err(CallError::NotRunning) => {
            let store = dir.join(STORE_FILE);
            if !store.is_file() {
                return Err(failed(format!(
                    "there is no store at {}: check --config or LATCHKEY_DATA_DIR",
                    store.display()
                )));
            }
            let core = crate::open_core(settings).await.map_err(|e| match e {
                crate::domain::StartError::Store(StoreError::InUse { .. }) => failed(format!(
                    "the store is in use by a running latchkey, but it does not answer on {}",
                    dir.join(control::SOCKET_FILE).display()
                )),
                other => failed(other.to_string()),
            })?;
            let recovered = core
                .recover_admin(username)
                .await
                .map_err(|e| failed(format!("recover-admin failed: {e}")))?;
            (
                format!(
                    "the server is not running: changed the store directly ({})",
                    store.display()
                ),
                recovered,
            )
        }
    };
    Ok(format!(
        "latchkey: admin account recovered ({how}).\n  username: {}\n  email: {}\n  password: {}\n  \
         sessions ended: {}\nThe account is enabled, unlocked and holds the admin role. \
         This password is shown once; change it after signing in.\n",
        r.username, r.email, r.password, r.sessions_ended
    ))
}

/// `latchkey import --from FILE`: adds the accounts of a JSON Lines file
/// whose passwords are already hashed (see [`crate::domain::import`]).
///
/// It needs the server stopped and refuses otherwise. The server's store
/// allows one writer process, and the alternative, asking a running server
/// through the control socket to read a file the operator names, would
/// have the service's user open paths on the operator's behalf; an import
/// is a one-off migration, done before the accounts are in use.
pub async fn import(settings: &Settings, from: &Path) -> Result<String, OpsError> {
    use crate::domain::import::MAX_IMPORT_FILE_BYTES;
    let dir = &settings.data_dir;
    let file =
        fs::File::open(from).map_err(|e| failed(format!("cannot read {}: {e}", from.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_IMPORT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(format!("cannot read {}: {e}", from.display())))?;
    if bytes.len() as u64 > MAX_IMPORT_FILE_BYTES {
        return Err(failed(format!(
            "{} is larger than {MAX_IMPORT_FILE_BYTES} bytes: split it into several imports",
            from.display()
        )));
    }
    let store = dir.join(STORE_FILE);
    if !store.is_file() {
        return Err(failed(format!(
            "there is no store at {}: start the server once to create it (and its first admin), stop it, then import; or check --config or LATCHKEY_DATA_DIR",
            store.display()
        )));
    }
    let core = crate::open_core(settings).await.map_err(|e| match e {
        crate::domain::StartError::Store(StoreError::InUse { .. }) => failed(format!(
            "the server is running (the store {} is in use): stop it, import, then start it again",
            store.display()
        )),
        other => failed(other.to_string()),
    })?;
    let count = core
        .import_accounts(&bytes)
        .await
        .map_err(|e| failed(format!("import of {} failed: {e}", from.display())))?;
    Ok(format!(
        "latchkey: imported {count} accounts from {} into {}.\n",
        from.display(),
        store.display()
    ))
}

/// `latchkey check-config`: the effective settings, secrets masked, after
/// the checks `serve` makes before it opens anything: the certificate and
/// key load as a pair, and the providers' CA files parse.
pub fn check_config(settings: &Settings, config: Option<&Path>) -> Result<String, OpsError> {
    if let Some((cert, key)) = &settings.tls {
        crate::server::tls::server_config(cert, key).map_err(failed)?;
    }
    crate::server::outbound::HttpsClient::new(
        &settings.provider_ca_files,
        std::time::Duration::from_secs(settings.provider_timeout),
    )
    .map_err(failed)?;
    let mut out = String::new();
    match config {
        Some(path) => out.push_str(&format!("# settings file: {}\n", path.display())),
        None => out.push_str("# no settings file\n"),
    }
    out.push_str("# effective settings (flag > LATCHKEY_* > file > default)\n");
    for (name, value) in effective(settings) {
        let shown = if is_secret(name) {
            "(set, hidden)".to_string()
        } else {
            value
        };
        out.push_str(&format!("{name} = {shown}\n"));
    }
    if std::env::var_os("LATCHKEY_ADMIN_PASSWORD").is_some() {
        out.push_str("LATCHKEY_ADMIN_PASSWORD = (set, hidden)\n");
    }
    out.push_str("configuration OK\n");
    Ok(out)
}

/// Names whose values are never printed.
fn is_secret(name: &str) -> bool {
    name.contains("secret") || name.contains("password")
}

fn effective(s: &Settings) -> Vec<(&'static str, String)> {
    let path = |p: &Path| p.display().to_string();
    let list = |l: &[String]| format!("{l:?}");
    vec![
        ("data_dir", path(&s.data_dir)),
        ("listen", s.listen.to_string()),
        (
            "tls_cert",
            s.tls.as_ref().map(|t| path(&t.0)).unwrap_or_default(),
        ),
        (
            "tls_key",
            s.tls.as_ref().map(|t| path(&t.1)).unwrap_or_default(),
        ),
        ("insecure_http", s.insecure_http.to_string()),
        ("issuer", s.issuer.clone()),
        ("audience", s.audience.clone()),
        ("access_ttl", s.access_ttl.to_string()),
        ("refresh_ttl", s.refresh_ttl.to_string()),
        ("session_ttl", s.session_ttl.to_string()),
        ("argon2_memory_kib", s.hash_params.memory_kib.to_string()),
        ("argon2_iterations", s.hash_params.iterations.to_string()),
        ("argon2_parallelism", s.hash_params.parallelism.to_string()),
        ("hash_workers", s.hash_workers.to_string()),
        ("hash_queue", s.hash_queue.to_string()),
        ("max_body_bytes", s.max_body_bytes.to_string()),
        ("max_header_bytes", s.max_header_bytes.to_string()),
        ("max_connections", s.max_connections.to_string()),
        (
            "max_connections_per_ip",
            s.max_connections_per_ip.to_string(),
        ),
        ("header_read_timeout", s.header_read_timeout.to_string()),
        ("shutdown_timeout", s.shutdown_timeout.to_string()),
        ("rate_login_per_ip", s.rate_login_per_ip.to_string()),
        (
            "rate_login_per_account",
            s.rate_login_per_account.to_string(),
        ),
        ("lockout_threshold", s.lockout_threshold.to_string()),
        ("lockout_seconds", s.lockout_seconds.to_string()),
        (
            "max_api_keys_per_account",
            s.max_api_keys_per_account.to_string(),
        ),
        (
            "max_s2s_tokens_per_tenant",
            s.max_s2s_tokens_per_tenant.to_string(),
        ),
        ("s2s_max_ttl", s.s2s_max_ttl.to_string()),
        ("console_idle_timeout", s.console_idle_timeout.to_string()),
        (
            "console_session_lifetime",
            s.console_session_lifetime.to_string(),
        ),
        ("console_reauth_window", s.console_reauth_window.to_string()),
        ("trusted_proxies", format!("{:?}", s.trusted_proxies)),
        ("token_query_param", s.token_query_param.to_string()),
        ("google_client_ids", list(&s.external.google_client_ids)),
        (
            "microsoft_client_ids",
            list(&s.external.microsoft_client_ids),
        ),
        (
            "microsoft_tenant_ids",
            list(&s.external.microsoft_tenant_ids),
        ),
        (
            "google_hosted_domains",
            list(&s.external.google_hosted_domains),
        ),
        (
            "google_tokeninfo_url",
            s.external.google_tokeninfo_url.clone(),
        ),
        (
            "microsoft_userinfo_url",
            s.external.microsoft_userinfo_url.clone(),
        ),
        ("provider_ca_files", format!("{:?}", s.provider_ca_files)),
        ("provider_timeout", s.provider_timeout.to_string()),
        ("external_auto_create", s.external.auto_create.to_string()),
        ("external_default_role", s.external.default_role.clone()),
        (
            "external_default_reseller_id",
            s.external.default_reseller_id.clone().unwrap_or_default(),
        ),
        (
            "external_default_merchant_id",
            s.external.default_merchant_id.clone().unwrap_or_default(),
        ),
        ("log_format", format!("{:?}", s.log_format).to_lowercase()),
        ("admin_password_file", s.admin_password_file.to_string()),
        ("log_level", s.log_level.clone()),
        (
            "metrics_token",
            if s.metrics_token.is_some() {
                "(set, hidden)"
            } else {
                ""
            }
            .to_string(),
        ),
        (
            "metrics_listen",
            s.metrics_listen.map(|a| a.to_string()).unwrap_or_default(),
        ),
    ]
}

/// `latchkey healthcheck`: whether the configured server answers 200.
pub async fn healthcheck(settings: &Settings) -> Result<String, OpsError> {
    // Ready, not merely alive: /readyz commits a write and signs a token.
    const PATH: &str = "/readyz";
    let status = crate::server::probe::status(settings.listen, settings.tls.is_some(), PATH)
        .await
        .map_err(|e| failed(format!("healthcheck: {e}")))?;
    if status == 200 {
        Ok(format!("healthy: {PATH} answered 200\n"))
    } else {
        Err(failed(format!("unhealthy: {PATH} answered {status}")))
    }
}
