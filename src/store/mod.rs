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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use records::*;

/// The schema this build writes. See `migrate` for how older ones move up.
pub const SCHEMA_VERSION: u64 = 1;

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

const META_SCHEMA: &str = "schema_version";

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
}

impl Store {
    /// Opens (or, in an empty directory, creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(STORE_FILE);
        let db = match fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => return Err(StoreError::EmptyFile { path }),
            Ok(_) => Database::builder()
                .open(&path)
                .map_err(|e| open_error(&path, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Database::builder()
                .create(&path)
                .map_err(|e| open_error(&path, e))?,
            Err(source) => return Err(StoreError::DataDir { path, source }),
        };
        let store = Store {
            db: Arc::new(db),
            path,
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
                None => tx.set_schema_version(SCHEMA_VERSION),
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

/// Moves a store from schema `from` to [`SCHEMA_VERSION`], inside the
/// caller's transaction: either every step lands or none does.
fn migrate(tx: &mut WriteTx, from: u64) -> Result<(), StoreError> {
    // Each arm moves one version up. There is no version 0 in the wild:
    // schema 1 is the first this project wrote.
    let mut version = from;
    while version < SCHEMA_VERSION {
        version += 1;
    }
    tx.set_schema_version(version)
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
                let Some(t) = open!(self, ACCOUNTS) else {
                    return Ok(None);
                };
                match t.get(id.as_u128()).map_err(db_err)? {
                    Some(v) => Ok(Some(decode("account", v.value())?)),
                    None => Ok(None),
                }
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
                let Some(t) = open!(self, SESSIONS) else {
                    return Ok(None);
                };
                match t.get(id.as_u128()).map_err(db_err)? {
                    Some(v) => Ok(Some(decode("session", v.value())?)),
                    None => Ok(None),
                }
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
                let Some(t) = open!(self, REFRESH_TOKENS) else {
                    return Ok(None);
                };
                match t.get(digest).map_err(db_err)? {
                    Some(v) => Ok(Some(decode("refresh token", v.value())?)),
                    None => Ok(None),
                }
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

            /// Audit events, newest first, with `seq` below `before`.
            pub fn audit_before(
                &self,
                before: u64,
                limit: usize,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let Some(t) = open!(self, AUDIT) else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in t.range(..before).map_err(db_err)?.rev() {
                    let (_, v) = entry.map_err(db_err)?;
                    out.push(decode("audit event", v.value())?);
                    if out.len() >= limit {
                        break;
                    }
                }
                Ok(out)
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

    /// The next free account number (1, 2, ...), reserved in this transaction.
    pub fn next_account_number(&mut self) -> Result<u64, StoreError> {
        let t = self.open(ACCOUNT_NUMBERS)?;
        let last = t
            .last()
            .map_err(db_err)?
            .map(|(k, _)| k.value())
            .unwrap_or(0);
        Ok(last + 1)
    }

    /// Writes an account and keeps its lookup indexes in step. `previous` is
    /// the record being replaced, if any, so stale index entries go.
    /// Uniqueness is the domain's to check before calling.
    pub fn put_account(
        &mut self,
        account: &Account,
        previous: Option<&Account>,
        username_key: &str,
        email_key: &str,
        previous_keys: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let id = account.id.as_u128();
        if let (Some(_), Some((old_user, old_email))) = (previous, previous_keys) {
            if old_user != username_key {
                self.open(USERNAMES)?.remove(old_user).map_err(db_err)?;
            }
            if old_email != email_key {
                self.open(EMAILS)?.remove(old_email).map_err(db_err)?;
            }
        }
        self.open(ACCOUNTS)?
            .insert(id, encode(account)?.as_slice())
            .map_err(db_err)?;
        self.open(ACCOUNT_NUMBERS)?
            .insert(account.number, id)
            .map_err(db_err)?;
        self.open(USERNAMES)?
            .insert(username_key, id)
            .map_err(db_err)?;
        self.open(EMAILS)?.insert(email_key, id).map_err(db_err)?;
        Ok(())
    }

    pub fn put_session(&mut self, session: &Session) -> Result<(), StoreError> {
        let id = session.id.as_u128();
        self.open(SESSIONS)?
            .insert(id, encode(session)?.as_slice())
            .map_err(db_err)?;
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
        self.open(REFRESH_TOKENS)?
            .insert(digest, encode(record)?.as_slice())
            .map_err(db_err)?;
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

    pub fn put_signing_key(&mut self, key: &SigningKey) -> Result<(), StoreError> {
        self.open(SIGNING_KEYS)?
            .insert(key.kid.as_str(), encode(key)?.as_slice())
            .map_err(db_err)?;
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
