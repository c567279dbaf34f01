//! The only code that touches redb.
//!
//! One file, `latchkey.redb`, in the data directory holds every table below.
//! Keys are fixed-width where they can be (uuids as `u128`, digests as
//! `[u8; 32]`); values are JSON documents of the types in [`records`]. Every
//! change that touches more than one record happens inside one
//! [`WriteTx`], committed with `Durability::Immediate` (redb's default): when
//! a commit returns, the change is on disk, so a response is only sent after
//! the credential state it describes is durable.
//!
//! The schema version lives in the `meta` table. Opening a store written by
//! an older build runs the migrations in one write transaction; a store
//! written by a newer build is refused.

pub mod keyfile;
pub mod records;
mod stats;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use records::*;

/// The schema this build writes. See `migrate` for how older ones move up.
pub const SCHEMA_VERSION: u64 = 3;

/// The store file's name inside the data directory.
pub const STORE_FILE: &str = "latchkey.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ACCOUNTS: TableDefinition<u128, &[u8]> = TableDefinition::new("accounts");
const ACCOUNT_NUMBERS: TableDefinition<u64, u128> = TableDefinition::new("account_numbers");
const USERNAMES: TableDefinition<&str, u128> = TableDefinition::new("usernames");
const EMAILS: TableDefinition<&str, u128> = TableDefinition::new("emails");
const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions");
const ACCOUNT_SESSIONS: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("account_sessions");
const REFRESH_TOKENS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("refresh_tokens");
const REVOCATIONS: TableDefinition<u128, i64> = TableDefinition::new("revocations");
const SIGNING_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("signing_keys");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
// Schema 2.
const RESELLERS: TableDefinition<&str, &[u8]> = TableDefinition::new("resellers");
const MERCHANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("merchants");
const RESELLER_MERCHANTS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("reseller_merchants");
const TENANT_ACCOUNTS: TableDefinition<(&str, u64), u128> = TableDefinition::new("tenant_accounts");
const ROLES: TableDefinition<&str, &[u8]> = TableDefinition::new("roles");
const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
const ACCOUNT_KEYS: TableDefinition<(u128, &str), ()> = TableDefinition::new("account_keys");
const S2S_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("s2s_tokens");
const LOCKOUTS: TableDefinition<&str, &[u8]> = TableDefinition::new("lockouts");
const OPAQUE_TOKENS: TableDefinition<&[u8; 32], u128> = TableDefinition::new("opaque_tokens");
const EXTERNAL_IDENTITIES: TableDefinition<(&str, &str), u128> =
    TableDefinition::new("external_identities");
const ACCOUNT_LINKS: TableDefinition<(u128, &str), &str> = TableDefinition::new("account_links");
// Schema 3.
const RETIRED_TENANTS: TableDefinition<&str, i64> = TableDefinition::new("retired_tenants");

const META_SCHEMA: &str = "schema_version";
const META_NEXT_ACCOUNT: &str = "next_account_number";

/// The tenant index key of a reseller (`r:<id>`).
pub fn reseller_key(id: &str) -> String {
    format!("r:{id}")
}

/// The tenant index key of a merchant (`m:<id>`).
pub fn merchant_key(id: &str) -> String {
    format!("m:{id}")
}

fn tenant_keys(account: &Account) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(r) = &account.reseller_id {
        keys.push(reseller_key(r));
    }
    if let Some(m) = &account.merchant_id {
        keys.push(merchant_key(m));
    }
    keys
}

/// The lookup forms of an account's username and email, computed by the
/// domain (which owns the normalisation rules).
#[derive(Debug, Clone)]
pub struct IndexKeys {
    pub username: String,
    pub email: String,
}

/// Everything that can go wrong below the domain. The text is for the
/// operator's log and for `serve` refusing to start; clients never see it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error(
        "the store file {path} is empty (0 bytes). latchkey will not initialise over an existing file; \
         if this is a fresh install whose first start was interrupted, delete the file and start again"
    )]
    EmptyFile { path: PathBuf },
    #[error(
        "refusing the data directory {path}: it is writable by group or others (mode {mode:03o}), \
         so another user could replace the store or the master key. Run `chmod 700 {path}` and start again"
    )]
    UnsafeDataDir { path: PathBuf, mode: u32 },
    #[error("the store file {path} is damaged or is not a latchkey store: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("the store file {path} is in use by another latchkey process")]
    InUse { path: PathBuf },
    #[error(
        "the store was written by a newer latchkey (schema version {found}; this build understands up to {supported}). \
         Run the newer build, or restore a backup made for this one"
    )]
    TooNew { found: u64, supported: u64 },
    #[error("a stored {what} record is unreadable: {detail}")]
    BadRecord { what: &'static str, detail: String },
    #[error("storage error: {0}")]
    Storage(String),
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Storage(e.into().to_string())
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::BadRecord {
        what,
        detail: e.to_string(),
    })
}

/// Reads and decodes one JSON record; a table never written reads as empty.
fn get_json<'k, K: redb::Key + 'static, T: DeserializeOwned>(
    table: Option<impl ReadableTable<K, &'static [u8]>>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    let Some(table) = table else {
        return Ok(None);
    };
    match table.get(key).map_err(db_err)? {
        Some(v) => Ok(Some(decode(what, v.value())?)),
        None => Ok(None),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Storage(e.to_string()))
}

/// The open store. Cloning is cheap and shares the database.
#[derive(Clone)]
pub struct Store {
    /// The redb database; redb serialises writers and lets readers run
    /// alongside them.
    db: Arc<Database>,
    /// The file, for error messages.
    path: PathBuf,
    /// Queue of the group-commit writer, started on first use.
    group: Arc<OnceLock<mpsc::Sender<GroupJob>>>,
}

/// A change to run inside a group commit.
type Change = Box<dyn FnOnce(&mut WriteTx) -> Result<(), StoreError> + Send>;

/// A change waiting for a group commit, and where to say how it went.
struct GroupJob {
    change: Change,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Most changes one group commit carries.
const GROUP_MAX: usize = 256;

impl Store {
    /// Opens (or, in an empty directory, creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(STORE_FILE);
        let db = match fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => return Err(StoreError::EmptyFile { path }),
            Ok(meta) => {
                tighten_file(&path, &meta)?;
                Database::builder()
                    .open(&path)
                    .map_err(|e| open_error(&path, e))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_private_file(&path)?;
                Database::builder()
                    .create(&path)
                    .map_err(|e| open_error(&path, e))?
            }
            Err(source) => return Err(StoreError::DataDir { path, source }),
        };
        let store = Store {
            db: Arc::new(db),
            path,
            group: Arc::new(OnceLock::new()),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            let found = tx.schema_version()?;
            match found {
                None => {
                    tx.set_meta(META_NEXT_ACCOUNT, &1u64.to_be_bytes())?;
                    tx.set_schema_version(SCHEMA_VERSION)
                }
                Some(v) if v > SCHEMA_VERSION => Err(StoreError::TooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                }),
                Some(v) if v < SCHEMA_VERSION => migrate(tx, v),
                Some(_) => Ok(()),
            }
        })
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<ReadTx, StoreError> {
        Ok(ReadTx {
            tx: self.db.begin_read().map_err(db_err)?,
        })
    }

    /// Runs `f` in one write transaction, committing if it returns `Ok` and
    /// discarding every change if it returns `Err`. Blocks on disk I/O; from
    /// async code use [`Store::write_async`].
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut tx = WriteTx {
            tx: self.db.begin_write().map_err(db_err)?,
        };
        match f(&mut tx) {
            Ok(value) => {
                tx.tx.commit().map_err(db_err)?;
                Ok(value)
            }
            Err(e) => {
                // Dropping aborts too; aborting explicitly surfaces nothing
                // useful, so the domain error wins.
                let _ = tx.tx.abort();
                Err(e)
            }
        }
    }

    /// [`Store::write`] on the blocking pool, so a commit's fsync never
    /// stalls the async workers that serve other requests.
    pub async fn write_async<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || store.write(f)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Storage(format!("write task failed: {e}")).into()),
        }
    }
}

impl Store {
    /// Runs `change` in a write transaction shared with other changes that
    /// arrive meanwhile, and returns once that transaction is committed
    /// (durably). Under a flood of small writes (failed logins: a lockout
    /// counter and an audit entry each) this makes one fsync serve many
    /// requests instead of one each. `change` must only fail on storage
    /// errors: a failure aborts the whole group.
    pub async fn write_grouped<F>(&self, change: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut WriteTx) -> Result<(), StoreError> + Send + 'static,
    {
        let sender = self.group.get_or_init(|| self.start_group_writer());
        let (done, outcome) = oneshot::channel();
        let job = GroupJob {
            change: Box::new(change),
            done,
        };
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::Storage("the group writer stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Storage("the group writer stopped".into()))?
    }

    /// The writer holds the database only weakly, so dropping the last
    /// `Store` closes the database, drops the queue, and ends the writer.
    fn start_group_writer(&self) -> mpsc::Sender<GroupJob> {
        let (sender, mut queue) = mpsc::channel::<GroupJob>(4096);
        let db = Arc::downgrade(&self.db);
        let path = self.path.clone();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < GROUP_MAX {
                    match queue.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let Some(db) = db.upgrade() else {
                    break;
                };
                let store = Store {
                    db,
                    path: path.clone(),
                    group: Arc::new(OnceLock::new()),
                };
                let ran = tokio::task::spawn_blocking(move || {
                    let mut waiting = Vec::with_capacity(jobs.len());
                    let result = store.write(|tx| {
                        for job in jobs {
                            waiting.push(job.done);
                            (job.change)(tx)?;
                        }
                        Ok::<_, StoreError>(())
                    });
                    (result, waiting)
                })
                .await;
                if let Ok((result, waiting)) = ran {
                    for done in waiting {
                        let _ = done.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(StoreError::Storage(e.to_string())),
                        });
                    }
                }
            }
        });
        sender
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(err)?;
    }
    if !dir.is_dir() {
        return Err(err(io::Error::other("not a directory")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir).map_err(err)?.permissions().mode() & 0o777;
        // Whoever can write the directory can swap the store or the master
        // key for their own, so that is refused; a readable one only lets
        // others see names, since the files inside are 0600.
        if mode & 0o022 != 0 {
            return Err(StoreError::UnsafeDataDir {
                path: dir.to_path_buf(),
                mode,
            });
        }
        if mode & 0o044 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:03o}"),
                "the data directory is readable by group or others; 0700 is recommended"
            );
        }
    }
    Ok(())
}

/// Creates the empty store file, readable and writable by its owner only,
/// before redb writes anything into it: password hashes must never sit in
/// a file others can read, whatever the directory's mode or the umask.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::DataDir {
            path: path.to_path_buf(),
            source,
        })
}

/// Narrows an existing store file that others could read or write (as
/// earlier builds left it in a directory that already existed) to 0600.
fn tighten_file(path: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|source| {
                StoreError::DataDir {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            tracing::warn!(
                path = %path.display(),
                was = format!("{mode:03o}"),
                "the store file was open to group or others; its mode is now 0600"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path },
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => {
            if source.kind() == io::ErrorKind::PermissionDenied {
                StoreError::DataDir { path, source }
            } else {
                StoreError::Damaged {
                    path,
                    detail: source.to_string(),
                }
            }
        }
        other => StoreError::Damaged {
            path,
            detail: other.to_string(),
        },
    }
}

/// One migration step: the schema it starts from, and what it does.
type Step = (u64, fn(&mut WriteTx) -> Result<(), StoreError>);

/// Every step, oldest first. There is no schema 0: schema 1 is the first
/// this project wrote.
const MIGRATIONS: [Step; 2] = [(1, schema_1_to_2), (2, schema_2_to_3)];

/// Moves a store from schema `from` to [`SCHEMA_VERSION`], inside the
/// caller's transaction: either every step lands or none does.
fn migrate(tx: &mut WriteTx, from: u64) -> Result<(), StoreError> {
    for (start, step) in MIGRATIONS {
        if start >= from {
            step(tx)?;
        }
    }
    tx.set_schema_version(SCHEMA_VERSION)
}

/// Schema 1 had no tenant index and took the next account number from the
/// highest one in use, which would hand a deleted account's number to the
/// next account. Schema 2 keeps a counter and indexes accounts by tenant.
fn schema_1_to_2(tx: &mut WriteTx) -> Result<(), StoreError> {
    let mut next = 1;
    let mut accounts = Vec::new();
    for entry in tx.open(ACCOUNTS)?.iter().map_err(db_err)? {
        let (_, v) = entry.map_err(db_err)?;
        accounts.push(decode::<Account>("account", v.value())?);
    }
    for account in &accounts {
        next = next.max(account.number + 1);
        for key in tenant_keys(account) {
            tx.open(TENANT_ACCOUNTS)?
                .insert((key.as_str(), account.number), account.id.as_u128())
                .map_err(db_err)?;
        }
    }
    tx.set_meta(META_NEXT_ACCOUNT, &u64::to_be_bytes(next))
}

/// Schema 2 let a deleted reseller's or merchant's id be taken again, and
/// the new tenant then inherited the old one's audit trail. Schema 3 keeps
/// every removed tenant id in `retired_tenants`; this step finds the ones
/// a schema-2 store already removed from the tenant ids its audit log
/// names that no longer exist, dated by the last event naming each.
fn schema_2_to_3(tx: &mut WriteTx) -> Result<(), StoreError> {
    let mut gone: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    {
        let audit = tx.open(AUDIT)?;
        let resellers = tx.open(RESELLERS)?;
        let merchants = tx.open(MERCHANTS)?;
        for entry in audit.iter().map_err(db_err)? {
            let (_, v) = entry.map_err(db_err)?;
            let event: AuditEvent = decode("audit event", v.value())?;
            if let Some(r) = &event.reseller_id
                && resellers.get(r.as_str()).map_err(db_err)?.is_none()
            {
                gone.insert(reseller_key(r), event.at);
            }
            if let Some(m) = &event.merchant_id
                && merchants.get(m.as_str()).map_err(db_err)?.is_none()
            {
                gone.insert(merchant_key(m), event.at);
            }
        }
    }
    let mut retired = tx.open(RETIRED_TENANTS)?;
    for (key, at) in gone {
        retired.insert(key.as_str(), at).map_err(db_err)?;
    }
    Ok(())
}

/// A read-only snapshot.
pub struct ReadTx {
    tx: ReadTransaction,
}

/// A write transaction; see [`Store::write`].
pub struct WriteTx {
    tx: WriteTransaction,
}

// The read methods, written once for both transaction kinds: the two kinds
// hand out different table types that share the `ReadableTable` trait.
macro_rules! reads {
    ($ty:ty) => {
        impl $ty {
            pub fn schema_version(&self) -> Result<Option<u64>, StoreError> {
                let t = open!(self, META);
                let Some(t) = t else { return Ok(None) };
                match t.get(META_SCHEMA).map_err(db_err)? {
                    Some(v) => {
                        let bytes: [u8; 8] =
                            v.value().try_into().map_err(|_| StoreError::BadRecord {
                                what: "schema version",
                                detail: "not 8 bytes".into(),
                            })?;
                        Ok(Some(u64::from_be_bytes(bytes)))
                    }
                    None => Ok(None),
                }
            }

            pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                let Some(t) = open!(self, META) else {
                    return Ok(None);
                };
                Ok(t.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
            }

            pub fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
                get_json(open!(self, ACCOUNTS), id.as_u128(), "account")
            }

            pub fn account_by_number(&self, number: u64) -> Result<Option<Account>, StoreError> {
                let Some(t) = open!(self, ACCOUNT_NUMBERS) else {
                    return Ok(None);
                };
                let id = t.get(number).map_err(db_err)?.map(|v| v.value());
                match id {
                    Some(id) => self.account(Uuid::from_u128(id)),
                    None => Ok(None),
                }
            }

            /// `key` is the lookup form (see `domain::accounts::username_key`).
            pub fn account_by_username(&self, key: &str) -> Result<Option<Account>, StoreError> {
                let Some(t) = open!(self, USERNAMES) else {
                    return Ok(None);
                };
                let id = t.get(key).map_err(db_err)?.map(|v| v.value());
                match id {
                    Some(id) => self.account(Uuid::from_u128(id)),
                    None => Ok(None),
                }
            }

            /// `key` is the lookup form (see `domain::accounts::email_key`).
            pub fn account_by_email(&self, key: &str) -> Result<Option<Account>, StoreError> {
                let Some(t) = open!(self, EMAILS) else {
                    return Ok(None);
                };
                let id = t.get(key).map_err(db_err)?.map(|v| v.value());
                match id {
                    Some(id) => self.account(Uuid::from_u128(id)),
                    None => Ok(None),
                }
            }

            pub fn account_count(&self) -> Result<u64, StoreError> {
                let Some(t) = open!(self, ACCOUNTS) else {
                    return Ok(0);
                };
                redb::ReadableTableMetadata::len(&t).map_err(db_err)
            }

            /// Accounts in number order, starting after `after`.
            pub fn accounts_after(
                &self,
                after: u64,
                limit: usize,
            ) -> Result<Vec<Account>, StoreError> {
                let Some(t) = open!(self, ACCOUNT_NUMBERS) else {
                    return Ok(Vec::new());
                };
                let mut ids = Vec::new();
                for entry in t.range(after.saturating_add(1)..).map_err(db_err)? {
                    let (_, id) = entry.map_err(db_err)?;
                    ids.push(Uuid::from_u128(id.value()));
                    if ids.len() >= limit {
                        break;
                    }
                }
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(a) = self.account(id)? {
                        out.push(a);
                    }
                }
                Ok(out)
            }

            pub fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
                get_json(open!(self, SESSIONS), id.as_u128(), "session")
            }

            pub fn account_sessions(&self, account: Uuid) -> Result<Vec<Session>, StoreError> {
                let Some(t) = open!(self, ACCOUNT_SESSIONS) else {
                    return Ok(Vec::new());
                };
                let a = account.as_u128();
                let mut ids = Vec::new();
                for entry in t.range((a, 0)..=(a, u128::MAX)).map_err(db_err)? {
                    let (k, _) = entry.map_err(db_err)?;
                    ids.push(Uuid::from_u128(k.value().1));
                }
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(s) = self.session(id)? {
                        out.push(s);
                    }
                }
                Ok(out)
            }

            pub fn refresh_token(
                &self,
                digest: &[u8; 32],
            ) -> Result<Option<RefreshRecord>, StoreError> {
                get_json(open!(self, REFRESH_TOKENS), digest, "refresh token")
            }

            /// Every remembered revocation: session id and the time after
            /// which no access token of that session can still be valid.
            pub fn revocations(&self) -> Result<Vec<(Uuid, i64)>, StoreError> {
                let Some(t) = open!(self, REVOCATIONS) else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in t.iter().map_err(db_err)? {
                    let (k, v) = entry.map_err(db_err)?;
                    out.push((Uuid::from_u128(k.value()), v.value()));
                }
                Ok(out)
            }

            pub fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
                let Some(t) = open!(self, SIGNING_KEYS) else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in t.iter().map_err(db_err)? {
                    let (_, v) = entry.map_err(db_err)?;
                    out.push(decode("signing key", v.value())?);
                }
                Ok(out)
            }

            /// Calls `f` with accounts in number order after `after`, from
            /// one tenant's index or from all, until it returns false.
            pub fn scan_accounts(
                &self,
                tenant_key: Option<&str>,
                after: u64,
                mut f: impl FnMut(Account) -> bool,
            ) -> Result<(), StoreError> {
                let mut ids = Vec::new();
                // Ids are collected in batches so that `f` may read the
                // store while the scan goes on.
                let mut from = after;
                loop {
                    ids.clear();
                    match tenant_key {
                        Some(key) => {
                            let Some(t) = open!(self, TENANT_ACCOUNTS) else {
                                return Ok(());
                            };
                            let start = from.saturating_add(1);
                            for entry in t.range((key, start)..=(key, u64::MAX)).map_err(db_err)? {
                                let (k, v) = entry.map_err(db_err)?;
                                ids.push((k.value().1, Uuid::from_u128(v.value())));
                                if ids.len() >= 256 {
                                    break;
                                }
                            }
                        }
                        None => {
                            let Some(t) = open!(self, ACCOUNT_NUMBERS) else {
                                return Ok(());
                            };
                            for entry in t.range(from.saturating_add(1)..).map_err(db_err)? {
                                let (k, v) = entry.map_err(db_err)?;
                                ids.push((k.value(), Uuid::from_u128(v.value())));
                                if ids.len() >= 256 {
                                    break;
                                }
                            }
                        }
                    }
                    if ids.is_empty() {
                        return Ok(());
                    }
                    for (number, id) in ids.drain(..).collect::<Vec<_>>() {
                        from = number;
                        if let Some(account) = self.account(id)? {
                            if !f(account) {
                                return Ok(());
                            }
                        }
                    }
                }
            }

            /// Whether any account belongs to this tenant index key.
            pub fn tenant_has_accounts(&self, tenant_key: &str) -> Result<bool, StoreError> {
                let Some(t) = open!(self, TENANT_ACCOUNTS) else {
                    return Ok(false);
                };
                Ok(t.range((tenant_key, 0)..=(tenant_key, u64::MAX))
                    .map_err(db_err)?
                    .next()
                    .is_some())
            }

            /// Whether a tenant index key (`r:<id>`, `m:<id>`) names a
            /// tenant that was removed: its id is never used again.
            pub fn tenant_retired(&self, tenant_key: &str) -> Result<bool, StoreError> {
                let Some(t) = open!(self, RETIRED_TENANTS) else {
                    return Ok(false);
                };
                Ok(t.get(tenant_key).map_err(db_err)?.is_some())
            }

            /// The account a provider's immutable id is linked to.
            pub fn external_identity(
                &self,
                provider: &str,
                subject: &str,
            ) -> Result<Option<Uuid>, StoreError> {
                let Some(t) = open!(self, EXTERNAL_IDENTITIES) else {
                    return Ok(None);
                };
                Ok(t.get((provider, subject))
                    .map_err(db_err)?
                    .map(|v| Uuid::from_u128(v.value())))
            }

            /// The provider id an account is linked to, if any.
            pub fn account_link(
                &self,
                account: Uuid,
                provider: &str,
            ) -> Result<Option<String>, StoreError> {
                let Some(t) = open!(self, ACCOUNT_LINKS) else {
                    return Ok(None);
                };
                Ok(t.get((account.as_u128(), provider))
                    .map_err(db_err)?
                    .map(|v| v.value().to_string()))
            }

            /// The session an opaque token (by digest) belongs to.
            pub fn opaque_token(&self, digest: &[u8; 32]) -> Result<Option<Uuid>, StoreError> {
                let Some(t) = open!(self, OPAQUE_TOKENS) else {
                    return Ok(None);
                };
                Ok(t.get(digest)
                    .map_err(db_err)?
                    .map(|v| Uuid::from_u128(v.value())))
            }

            /// `key` is an identifier in lookup form.
            pub fn lockout(&self, key: &str) -> Result<Option<Lockout>, StoreError> {
                get_json(open!(self, LOCKOUTS), key, "lockout")
            }

            pub fn reseller(&self, id: &str) -> Result<Option<Reseller>, StoreError> {
                get_json(open!(self, RESELLERS), id, "reseller")
            }

            /// Resellers in id order after `after`.
            pub fn resellers_after(
                &self,
                after: &str,
                limit: usize,
            ) -> Result<Vec<Reseller>, StoreError> {
                let Some(t) = open!(self, RESELLERS) else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in t
                    .range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .map_err(db_err)?
                {
                    let (_, v) = entry.map_err(db_err)?;
                    out.push(decode("reseller", v.value())?);
                    if out.len() >= limit {
                        break;
                    }
                }
                Ok(out)
            }

            pub fn merchant(&self, id: &str) -> Result<Option<Merchant>, StoreError> {
                get_json(open!(self, MERCHANTS), id, "merchant")
            }

            /// Merchants in id order after `after`, of one reseller or all.
            pub fn merchants_after(
                &self,
                reseller: Option<&str>,
                after: &str,
                limit: usize,
            ) -> Result<Vec<Merchant>, StoreError> {
                let mut out = Vec::new();
                match reseller {
                    Some(r) => {
                        let Some(t) = open!(self, RESELLER_MERCHANTS) else {
                            return Ok(Vec::new());
                        };
                        let mut ids = Vec::new();
                        for entry in t
                            .range::<(&str, &str)>((
                                std::ops::Bound::Excluded((r, after)),
                                std::ops::Bound::Unbounded,
                            ))
                            .map_err(db_err)?
                        {
                            let (k, _) = entry.map_err(db_err)?;
                            let (owner, id) = k.value();
                            if owner != r || ids.len() >= limit {
                                break;
                            }
                            ids.push(id.to_string());
                        }
                        for id in ids {
                            if let Some(m) = self.merchant(&id)? {
                                out.push(m);
                            }
                        }
                    }
                    None => {
                        let Some(t) = open!(self, MERCHANTS) else {
                            return Ok(Vec::new());
                        };
                        for entry in t
                            .range::<&str>((
                                std::ops::Bound::Excluded(after),
                                std::ops::Bound::Unbounded,
                            ))
                            .map_err(db_err)?
                        {
                            let (_, v) = entry.map_err(db_err)?;
                            out.push(decode("merchant", v.value())?);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                }
                Ok(out)
            }

            /// Whether a reseller has any merchant.
            pub fn reseller_has_merchants(&self, reseller: &str) -> Result<bool, StoreError> {
                let Some(t) = open!(self, RESELLER_MERCHANTS) else {
                    return Ok(false);
                };
                let mut range = t.range::<(&str, &str)>((reseller, "")..).map_err(db_err)?;
                match range.next() {
                    Some(entry) => Ok(entry.map_err(db_err)?.0.value().0 == reseller),
                    None => Ok(false),
                }
            }

            /// How many merchants a reseller has, counting no further than
            /// `limit`, so a check against a bound reads at most that many
            /// index entries.
            pub fn reseller_merchant_count(
                &self,
                reseller: &str,
                limit: usize,
            ) -> Result<usize, StoreError> {
                let Some(t) = open!(self, RESELLER_MERCHANTS) else {
                    return Ok(0);
                };
                let mut count = 0usize;
                for entry in t.range::<(&str, &str)>((reseller, "")..).map_err(db_err)? {
                    if count >= limit || entry.map_err(db_err)?.0.value().0 != reseller {
                        break;
                    }
                    count += 1;
                }
                Ok(count)
            }

            pub fn custom_roles(&self) -> Result<Vec<CustomRole>, StoreError> {
                let Some(t) = open!(self, ROLES) else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in t.iter().map_err(db_err)? {
                    let (_, v) = entry.map_err(db_err)?;
                    out.push(decode("role", v.value())?);
                }
                Ok(out)
            }

            pub fn custom_role(&self, name: &str) -> Result<Option<CustomRole>, StoreError> {
                get_json(open!(self, ROLES), name, "role")
            }

            pub fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
                get_json(open!(self, API_KEYS), id, "api key")
            }

            /// An account's API keys, in id order.
            pub fn account_keys(&self, account: Uuid) -> Result<Vec<ApiKey>, StoreError> {
                let Some(t) = open!(self, ACCOUNT_KEYS) else {
                    return Ok(Vec::new());
                };
                let a = account.as_u128();
                let mut ids = Vec::new();
                for entry in t.range::<(u128, &str)>((a, "")..).map_err(db_err)? {
                    let (k, _) = entry.map_err(db_err)?;
                    let (owner, id) = k.value();
                    if owner != a {
                        break;
                    }
                    ids.push(id.to_string());
                }
                let mut out = Vec::new();
                for id in ids {
                    if let Some(k) = self.api_key(&id)? {
                        out.push(k);
                    }
                }
                Ok(out)
            }

            pub fn s2s_token(&self, id: &str) -> Result<Option<S2sToken>, StoreError> {
                get_json(open!(self, S2S_TOKENS), id, "s2s token")
            }

            /// S2S tokens in id order after `after` that `keep` accepts,
            /// at most `limit` of them. At most `scan` records are looked
            /// at, so a selective `keep` cannot make one call read the
            /// whole table. Returns the tokens and the id of the last
            /// record looked at when the scan stopped before the table's
            /// end (where a next call starts), else `None`.
            pub fn s2s_tokens_after(
                &self,
                after: &str,
                mut keep: impl FnMut(&S2sToken) -> bool,
                limit: usize,
                scan: usize,
            ) -> Result<(Vec<S2sToken>, Option<String>), StoreError> {
                let Some(t) = open!(self, S2S_TOKENS) else {
                    return Ok((Vec::new(), None));
                };
                let mut out = Vec::new();
                let mut last = None;
                let mut looked = 0usize;
                for entry in t
                    .range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .map_err(db_err)?
                {
                    if looked >= scan || out.len() >= limit {
                        return Ok((out, last));
                    }
                    looked += 1;
                    let (k, v) = entry.map_err(db_err)?;
                    last = Some(k.value().to_string());
                    let token: S2sToken = decode("s2s token", v.value())?;
                    if keep(&token) {
                        out.push(token);
                    }
                }
                Ok((out, None))
            }

            /// Audit events, newest first, with `seq` below `before`, that
            /// `keep` accepts. At most `scan` events are looked at, so a
            /// selective filter cannot make one page read the whole log.
            /// Returns the events and the last `seq` looked at (where the
            /// next page starts), if any was.
            pub fn audit_before(
                &self,
                before: u64,
                limit: usize,
                scan: usize,
                mut keep: impl FnMut(&AuditEvent) -> bool,
            ) -> Result<(Vec<AuditEvent>, Option<u64>), StoreError> {
                let Some(t) = open!(self, AUDIT) else {
                    return Ok((Vec::new(), None));
                };
                let mut out = Vec::new();
                let mut last = None;
                for (looked, entry) in t.range(..before).map_err(db_err)?.rev().enumerate() {
                    if looked >= scan {
                        break;
                    }
                    let (k, v) = entry.map_err(db_err)?;
                    last = Some(k.value());
                    let event: AuditEvent = decode("audit event", v.value())?;
                    if keep(&event) {
                        out.push(event);
                        if out.len() >= limit {
                            break;
                        }
                    }
                }
                Ok((out, last))
            }
        }
    };
}

// Opens a table for reading. A read transaction on a store where the table
// was never written has no such table: that reads as empty (`None`).
macro_rules! open {
    ($self:ident, $def:expr) => {
        $self.open_read($def)?
    };
}

impl ReadTx {
    fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
        match self.tx.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(db_err(e)),
        }
    }
}

impl WriteTx {
    fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Option<redb::Table<'_, K, V>>, StoreError> {
        self.tx.open_table(def).map(Some).map_err(db_err)
    }

    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, StoreError> {
        self.tx.open_table(def).map_err(db_err)
    }

    /// Encodes and writes one JSON record.
    fn insert_json<'k, K: redb::Key + 'static, T: Serialize>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: &T,
    ) -> Result<(), StoreError> {
        self.open(def)?
            .insert(key, encode(value)?.as_slice())
            .map_err(db_err)?;
        Ok(())
    }

    fn set_schema_version(&mut self, version: u64) -> Result<(), StoreError> {
        self.open(META)?
            .insert(META_SCHEMA, version.to_be_bytes().as_slice())
            .map_err(db_err)?;
        Ok(())
    }

    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.open(META)?.insert(key, value).map_err(db_err)?;
        Ok(())
    }

    /// The next account number (1, 2, ...), reserved in this transaction.
    /// Numbers are never reused, even after an account is deleted.
    pub fn next_account_number(&mut self) -> Result<u64, StoreError> {
        let next = match self.meta(META_NEXT_ACCOUNT)? {
            Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                StoreError::BadRecord {
                    what: "account counter",
                    detail: "not 8 bytes".into(),
                }
            })?),
            None => 1,
        };
        self.set_meta(META_NEXT_ACCOUNT, &(next + 1).to_be_bytes())?;
        Ok(next)
    }

    /// Writes an account and keeps its indexes (number, username, email,
    /// tenants) in step. `previous` is the stored version being replaced.
    /// Uniqueness is the domain's to check before calling.
    pub fn put_account(
        &mut self,
        account: &Account,
        keys: &IndexKeys,
        previous: Option<(&Account, &IndexKeys)>,
    ) -> Result<(), StoreError> {
        if let Some((old, old_keys)) = previous {
            self.remove_account_indexes(old, old_keys)?;
        }
        let id = account.id.as_u128();
        self.insert_json(ACCOUNTS, id, account)?;
        self.open(ACCOUNT_NUMBERS)?
            .insert(account.number, id)
            .map_err(db_err)?;
        self.open(USERNAMES)?
            .insert(keys.username.as_str(), id)
            .map_err(db_err)?;
        self.open(EMAILS)?
            .insert(keys.email.as_str(), id)
            .map_err(db_err)?;
        for key in tenant_keys(account) {
            self.open(TENANT_ACCOUNTS)?
                .insert((key.as_str(), account.number), id)
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn remove_account_indexes(
        &mut self,
        account: &Account,
        keys: &IndexKeys,
    ) -> Result<(), StoreError> {
        self.open(USERNAMES)?
            .remove(keys.username.as_str())
            .map_err(db_err)?;
        self.open(EMAILS)?
            .remove(keys.email.as_str())
            .map_err(db_err)?;
        for key in tenant_keys(account) {
            self.open(TENANT_ACCOUNTS)?
                .remove((key.as_str(), account.number))
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Deletes an account, its indexes, API keys and provider links. Its
    /// sessions stay, revoked by the caller, so their revocations keep
    /// being honoured.
    pub fn remove_account(
        &mut self,
        account: &Account,
        keys: &IndexKeys,
    ) -> Result<(), StoreError> {
        self.remove_account_indexes(account, keys)?;
        self.open(ACCOUNTS)?
            .remove(account.id.as_u128())
            .map_err(db_err)?;
        self.open(ACCOUNT_NUMBERS)?
            .remove(account.number)
            .map_err(db_err)?;
        for key in self.account_keys(account.id)? {
            self.remove_api_key(&key)?;
        }
        self.remove_external_links(account.id)?;
        Ok(())
    }

    /// Links a provider's immutable id to an account, both ways.
    pub fn put_external_link(
        &mut self,
        provider: &str,
        subject: &str,
        account: Uuid,
    ) -> Result<(), StoreError> {
        self.open(EXTERNAL_IDENTITIES)?
            .insert((provider, subject), account.as_u128())
            .map_err(db_err)?;
        self.open(ACCOUNT_LINKS)?
            .insert((account.as_u128(), provider), subject)
            .map_err(db_err)?;
        Ok(())
    }

    /// Removes every provider link of an account, both ways, and returns
    /// what was removed as (provider, immutable id) pairs.
    pub fn remove_external_links(
        &mut self,
        account: Uuid,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let a = account.as_u128();
        let mut links = Vec::new();
        for entry in self
            .open(ACCOUNT_LINKS)?
            .range::<(u128, &str)>((a, "")..)
            .map_err(db_err)?
        {
            let (k, v) = entry.map_err(db_err)?;
            if k.value().0 != a {
                break;
            }
            links.push((k.value().1.to_string(), v.value().to_string()));
        }
        for (provider, subject) in &links {
            self.open(ACCOUNT_LINKS)?
                .remove((a, provider.as_str()))
                .map_err(db_err)?;
            self.open(EXTERNAL_IDENTITIES)?
                .remove((provider.as_str(), subject.as_str()))
                .map_err(db_err)?;
        }
        Ok(links)
    }

    pub fn put_opaque_token(&mut self, digest: &[u8; 32], session: Uuid) -> Result<(), StoreError> {
        self.open(OPAQUE_TOKENS)?
            .insert(digest, session.as_u128())
            .map_err(db_err)?;
        Ok(())
    }

    pub fn put_lockout(&mut self, key: &str, lockout: &Lockout) -> Result<(), StoreError> {
        self.insert_json(LOCKOUTS, key, lockout)?;
        Ok(())
    }

    pub fn remove_lockout(&mut self, key: &str) -> Result<(), StoreError> {
        self.open(LOCKOUTS)?.remove(key).map_err(db_err)?;
        Ok(())
    }

    pub fn put_reseller(&mut self, reseller: &Reseller) -> Result<(), StoreError> {
        self.insert_json(RESELLERS, reseller.id.as_str(), reseller)?;
        Ok(())
    }

    /// Removes a reseller and retires its id for good (see
    /// [`ReadTx::tenant_retired`]).
    pub fn remove_reseller(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        self.open(RESELLERS)?.remove(id).map_err(db_err)?;
        self.open(RETIRED_TENANTS)?
            .insert(reseller_key(id).as_str(), at)
            .map_err(db_err)?;
        Ok(())
    }

    pub fn put_merchant(&mut self, merchant: &Merchant) -> Result<(), StoreError> {
        self.insert_json(MERCHANTS, merchant.id.as_str(), merchant)?;
        self.open(RESELLER_MERCHANTS)?
            .insert((merchant.reseller_id.as_str(), merchant.id.as_str()), ())
            .map_err(db_err)?;
        Ok(())
    }

    /// Removes a merchant and retires its id for good (see
    /// [`ReadTx::tenant_retired`]).
    pub fn remove_merchant(&mut self, merchant: &Merchant, at: i64) -> Result<(), StoreError> {
        self.open(MERCHANTS)?
            .remove(merchant.id.as_str())
            .map_err(db_err)?;
        self.open(RETIRED_TENANTS)?
            .insert(merchant_key(&merchant.id).as_str(), at)
            .map_err(db_err)?;
        self.open(RESELLER_MERCHANTS)?
            .remove((merchant.reseller_id.as_str(), merchant.id.as_str()))
            .map_err(db_err)?;
        Ok(())
    }

    pub fn put_custom_role(&mut self, role: &CustomRole) -> Result<(), StoreError> {
        self.insert_json(ROLES, role.name.as_str(), role)?;
        Ok(())
    }

    pub fn remove_custom_role(&mut self, name: &str) -> Result<(), StoreError> {
        self.open(ROLES)?.remove(name).map_err(db_err)?;
        Ok(())
    }

    pub fn put_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        self.insert_json(API_KEYS, key.id.as_str(), key)?;
        self.open(ACCOUNT_KEYS)?
            .insert((key.account.as_u128(), key.id.as_str()), ())
            .map_err(db_err)?;
        Ok(())
    }

    pub fn remove_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        self.open(API_KEYS)?
            .remove(key.id.as_str())
            .map_err(db_err)?;
        self.open(ACCOUNT_KEYS)?
            .remove((key.account.as_u128(), key.id.as_str()))
            .map_err(db_err)?;
        Ok(())
    }

    pub fn put_s2s_token(&mut self, token: &S2sToken) -> Result<(), StoreError> {
        self.insert_json(S2S_TOKENS, token.id.as_str(), token)?;
        Ok(())
    }

    pub fn put_session(&mut self, session: &Session) -> Result<(), StoreError> {
        let id = session.id.as_u128();
        self.insert_json(SESSIONS, id, session)?;
        self.open(ACCOUNT_SESSIONS)?
            .insert((session.account.as_u128(), id), ())
            .map_err(db_err)?;
        Ok(())
    }

    pub fn put_refresh_token(
        &mut self,
        digest: &[u8; 32],
        record: &RefreshRecord,
    ) -> Result<(), StoreError> {
        self.insert_json(REFRESH_TOKENS, digest, record)?;
        Ok(())
    }

    /// Remembers that `session` is revoked until `until` (Unix seconds).
    pub fn put_revocation(&mut self, session: Uuid, until: i64) -> Result<(), StoreError> {
        self.open(REVOCATIONS)?
            .insert(session.as_u128(), until)
            .map_err(db_err)?;
        Ok(())
    }

    /// Forgets revocations that no token can outlive any more.
    pub fn prune_revocations(&mut self, now: i64) -> Result<usize, StoreError> {
        let mut t = self.open(REVOCATIONS)?;
        let before = redb::ReadableTableMetadata::len(&t).map_err(db_err)?;
        t.retain(|_, until| until >= now).map_err(db_err)?;
        let after = redb::ReadableTableMetadata::len(&t).map_err(db_err)?;
        Ok(usize::try_from(before.saturating_sub(after)).unwrap_or(usize::MAX))
    }

    /// Deletes what can no longer be used, so the store does not grow with
    /// every sign-in forever: sessions ended more than `grace` seconds ago
    /// (with their account index entries and opaque tokens), refresh
    /// tokens past their expiry, and failure counts untouched for
    /// `failures_kept` seconds that hold no live lock. Revoked sessions are
    /// deleted on the same rule: once a session has ended, its revocation
    /// has nothing left to refuse. Returns how many records went.
    /// Deletes an S2S token record (one ended long enough ago).
    pub fn remove_s2s_token(&mut self, id: &str) -> Result<(), StoreError> {
        self.open(S2S_TOKENS)?.remove(id).map_err(db_err)?;
        Ok(())
    }

    /// Deletes S2S token records revoked, or expired, more than `grace`
    /// seconds before `now` (`max_ttl` dates a token stored without an
    /// expiry). A deleted token authenticates as nothing, exactly like a
    /// revoked one, and cannot come back. Returns how many went.
    pub fn prune_s2s_tokens(
        &mut self,
        now: i64,
        grace: i64,
        max_ttl: i64,
    ) -> Result<u64, StoreError> {
        let mut t = self.open(S2S_TOKENS)?;
        let before = redb::ReadableTableMetadata::len(&t).map_err(db_err)?;
        t.retain(|_, v| {
            // An unreadable record is left for an operator to see.
            serde_json::from_slice::<S2sToken>(v).map_or(true, |token| {
                let ended = token.revoked_at.unwrap_or(i64::MAX).min(
                    token
                        .expires_at
                        .unwrap_or_else(|| token.created_at.saturating_add(max_ttl)),
                );
                ended.saturating_add(grace) >= now
            })
        })
        .map_err(db_err)?;
        let after = redb::ReadableTableMetadata::len(&t).map_err(db_err)?;
        Ok(before - after)
    }

    pub fn prune_expired(
        &mut self,
        now: i64,
        grace: i64,
        failures_kept: i64,
    ) -> Result<u64, StoreError> {
        fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
            t: &redb::Table<'_, K, V>,
        ) -> Result<u64, StoreError> {
            redb::ReadableTableMetadata::len(t).map_err(db_err)
        }
        let mut removed = 0;

        let mut ended = Vec::new();
        {
            let sessions = self.open(SESSIONS)?;
            for entry in sessions.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                // An unreadable record is left for an operator to see.
                if let Ok(s) = decode::<Session>("session", v.value())
                    && s.expires_at + grace < now
                {
                    ended.push((k.value(), s.account.as_u128()));
                }
            }
        }
        for (id, account) in &ended {
            self.open(SESSIONS)?.remove(*id).map_err(db_err)?;
            self.open(ACCOUNT_SESSIONS)?
                .remove((*account, *id))
                .map_err(db_err)?;
        }
        removed += ended.len() as u64;
        let ended: std::collections::HashSet<u128> = ended.into_iter().map(|(id, _)| id).collect();

        let mut t = self.open(OPAQUE_TOKENS)?;
        let before = count(&t)?;
        t.retain(|_, session| !ended.contains(&session))
            .map_err(db_err)?;
        removed += before - count(&t)?;
        drop(t);

        let mut t = self.open(REFRESH_TOKENS)?;
        let before = count(&t)?;
        t.retain(|_, v| {
            serde_json::from_slice::<RefreshRecord>(v).map_or(true, |r| r.expires_at + grace >= now)
        })
        .map_err(db_err)?;
        removed += before - count(&t)?;
        drop(t);

        let mut t = self.open(LOCKOUTS)?;
        let before = count(&t)?;
        t.retain(|_, v| {
            serde_json::from_slice::<Lockout>(v).map_or(true, |l| {
                l.locked_until.is_some_and(|u| u > now) || l.updated_at + failures_kept >= now
            })
        })
        .map_err(db_err)?;
        removed += before - count(&t)?;
        Ok(removed)
    }

    pub fn put_signing_key(&mut self, key: &SigningKey) -> Result<(), StoreError> {
        self.insert_json(SIGNING_KEYS, key.kid.as_str(), key)?;
        Ok(())
    }

    /// Deletes a signing key (a retired one no token can still need).
    pub fn remove_signing_key(&mut self, kid: &str) -> Result<(), StoreError> {
        self.open(SIGNING_KEYS)?.remove(kid).map_err(db_err)?;
        Ok(())
    }

    /// Appends an event, numbering it after the last one.
    pub fn append_audit(&mut self, mut event: AuditEvent) -> Result<u64, StoreError> {
        let mut t = self.open(AUDIT)?;
        let seq = t
            .last()
            .map_err(db_err)?
            .map(|(k, _)| k.value())
            .unwrap_or(0)
            + 1;
        event.seq = seq;
        t.insert(seq, encode(&event)?.as_slice()).map_err(db_err)?;
        Ok(seq)
    }
}

reads!(ReadTx);
reads!(WriteTx);

/// The lookups the domain's placement rules need, from either kind of
/// transaction.
pub trait Lookup {
    fn reseller(&self, id: &str) -> Result<Option<Reseller>, StoreError>;
    fn merchant(&self, id: &str) -> Result<Option<Merchant>, StoreError>;
    fn custom_role(&self, name: &str) -> Result<Option<CustomRole>, StoreError>;
    fn custom_roles(&self) -> Result<Vec<CustomRole>, StoreError>;
}

macro_rules! lookup {
    ($ty:ty) => {
        impl Lookup for $ty {
            fn reseller(&self, id: &str) -> Result<Option<Reseller>, StoreError> {
                <$ty>::reseller(self, id)
            }
            fn merchant(&self, id: &str) -> Result<Option<Merchant>, StoreError> {
                <$ty>::merchant(self, id)
            }
            fn custom_role(&self, name: &str) -> Result<Option<CustomRole>, StoreError> {
                <$ty>::custom_role(self, name)
            }
            fn custom_roles(&self) -> Result<Vec<CustomRole>, StoreError> {
                <$ty>::custom_roles(self)
            }
        }
    };
}

lookup!(ReadTx);
lookup!(WriteTx);
