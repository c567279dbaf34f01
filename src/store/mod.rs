//! The only code that touches redb.
//!
//! One file, `latchkey.redb`, in the data directory holds every table. Keys
//! are fixed-width where they can be (uuids as `u128`, digests as
//! `[u8; 32]`); values are JSON documents of the types in [`records`]. Every
//! change that touches more than one record happens inside one
//! [`WriteTx`], committed with `Durability::Immediate` (redb's default): when
//! a commit returns, the change is on disk, so a response is only sent after
//! the credential state it describes is durable.
//!
//! Where things are:
//! - `tables.rs`: the table definitions, `meta` keys and the schema version
//!   (the on-disk layout);
//! - `records.rs`: the record types stored as JSON values;
//! - `open.rs`: opening the file, with the directory and file made private;
//! - `migrate.rs`: the schema check at open and the migrations from older
//!   schemas (a store written by a newer build is refused);
//! - `reads.rs`: [`ReadTx`] and [`WriteTx`], the two kinds of [`Tx`], and
//!   the reads both share, written once over redb's `ReadableTable`;
//! - `writes.rs`: the writes of a [`WriteTx`];
//! - `commit.rs`: the group commit ([`Store::write_grouped`]);
//! - `keyfile.rs`: the master key file beside the store;
//! - `backup.rs`: the online snapshot and the checks behind `verify`;
//! - `consistency.rs`: the cross-record rules `verify` checks (no key
//!   without its owner or index entry, no index entry without its record).

mod admin_reads;
pub use admin_reads::RecordCounts;
pub mod backup;
mod commit;
mod consistency;
mod key_index;
pub mod keyfile;
mod migrate;
mod open;
mod read_cache;
pub use open::new_private_file;
mod reads;
pub mod records;
mod stats;
mod tables;
mod writes;

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use redb::{Database, ReadableDatabase};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

pub use reads::{Lookup, ReadTx, Source, Tx, WriteTx};
pub use records::*;
pub use tables::{IndexKeys, SCHEMA_VERSION, STORE_FILE, merchant_key, reseller_key};

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
    #[error(
        "the master key file {path} is unusable: {detail}. Restore it from the backup made with this store \
         (`latchkey restore`), or, if it is lost, delete it: a new one is made and the signing key rotates"
    )]
    BadMasterKey { path: PathBuf, detail: String },
    #[error(
        "refusing the master key file {path}: it is writable by group or others (mode {mode:03o}), \
         so another user could have replaced it. If that may have happened, delete it (a new one is made and the signing key rotates); \
         otherwise run `chmod 600 {path}` and start again"
    )]
    UnsafeMasterKey { path: PathBuf, mode: u32 },
    #[error("the store file {path} is damaged or is not a latchkey store: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("the store file {path} is in use by another latchkey process")]
    InUse { path: PathBuf },
    #[error(
        "the store file {path} was written by a newer latchkey (schema version {found}; this build understands up to {supported}). \
         Run the newer build, or restore a backup made for this one"
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("a stored {what} record is unreadable: {detail}")]
    BadRecord { what: &'static str, detail: String },
    /// The file could not be read or written just now (a full disk, an
    /// I/O error): nothing of the failed transaction is stored, and the
    /// store reopens its file at the next request, so this passes once
    /// the cause is gone. Requests that meet it are answered 503.
    #[error("the store file cannot be read or written for now: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Storage(String),
}

impl StoreError {
    /// The same failure again, for a second waiter on one outcome (the
    /// group commit answers every change it carried): what the failure
    /// means survives, its text becomes the detail.
    pub(crate) fn again(&self) -> StoreError {
        match self {
            StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
            other => StoreError::Storage(other.to_string()),
        }
    }
}

thread_local! {
    /// Set by [`db_err`] on this thread when redb reports an I/O failure,
    /// after which redb refuses every later operation on that database
    /// until it is reopened. [`Store::write`] clears it before its
    /// transaction and reads it after, so it learns of a failure inside
    /// the caller's closure, whose error type it cannot look into.
    static IO_FAILED: Cell<bool> = const { Cell::new(false) };
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    let e = e.into();
    match e {
        redb::Error::Io(_) | redb::Error::PreviousIo => {
            IO_FAILED.set(true);
            StoreError::Unavailable(e.to_string())
        }
        // A read that was under way when the file was reopened.
        redb::Error::DatabaseClosed => StoreError::Unavailable(e.to_string()),
        e => StoreError::Storage(e.to_string()),
    }
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
    /// The redb database, in a slot that can be reopened; redb serialises
    /// writers and lets readers run alongside them.
    db: Arc<Slot>,
    /// The file, for error messages.
    path: PathBuf,
    /// Queue of the group-commit writer, started on first use.
    group: Arc<OnceLock<mpsc::Sender<commit::GroupJob>>>,
}

/// Empties the read cache when a write transaction is over, however it
/// ended (a commit, an abort, an error, a panic in the change).
struct EmptiedAfter<'a>(&'a read_cache::ReadCache);

impl Drop for EmptiedAfter<'_> {
    fn drop(&mut self) {
        self.0.write_ended();
    }
}

/// The open database and whether it must be reopened. After an I/O
/// failure (a full disk) redb refuses every later operation on the
/// database it happened in, reads included, until it is closed and opened
/// again; the slot does that at the next request, so the server recovers
/// by itself once the cause is gone instead of failing until a restart.
pub(super) struct Slot {
    /// The database; `None` after a reopen that failed (the next request
    /// tries again).
    current: RwLock<Option<Arc<Database>>>,
    /// Set when redb reported an I/O failure on `current`.
    broken: AtomicBool,
    /// Decoded account and S2S token records, emptied by every write.
    cached: read_cache::ReadCache,
}

impl Slot {
    pub(super) fn new(db: Database) -> Slot {
        Slot {
            current: RwLock::new(Some(Arc::new(db))),
            broken: AtomicBool::new(false),
            cached: read_cache::ReadCache::default(),
        }
    }
}

impl Store {
    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database to begin a transaction on, reopened first if redb
    /// reported an I/O failure on it. The `Arc` is held only to begin the
    /// transaction: a live transaction keeps redb's own state alive.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        if self.db.broken.load(Ordering::Acquire) {
            self.reopen()?;
        }
        let current = self
            .db
            .current
            .read()
            .map_err(|_| StoreError::Storage("the store's lock is poisoned".into()))?;
        current
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store file is not open".into()))
    }

    /// Notes an I/O failure that redb reported on this thread since
    /// [`IO_FAILED`] was cleared: the next transaction reopens the file.
    fn note_io_failure(&self) {
        if IO_FAILED.take() && !self.db.broken.swap(true, Ordering::AcqRel) {
            tracing::error!(
                path = %self.path.display(),
                "the store file could not be read or written (is the disk full?); \
                 requests that need it get 503 and the file is reopened at the next one"
            );
        }
    }

    /// The account `id` as it is now, from the read cache when it holds
    /// it (see `read_cache`); for `/me`, which reads it on every request.
    pub fn current_account(&self, id: uuid::Uuid) -> Result<Option<Arc<Account>>, StoreError> {
        if let Some(account) = self.db.cached.account(id) {
            return Ok(Some(account));
        }
        let ticket = self.db.cached.ticket();
        let Some(account) = self.read()?.account(id)? else {
            return Ok(None);
        };
        let account = Arc::new(account);
        self.db.cached.offer_account(ticket, account.clone());
        Ok(Some(account))
    }

    /// The S2S token `id` as it is now, from the read cache when it holds
    /// it; checked on every request with an S2S token.
    pub fn current_s2s_token(&self, id: &str) -> Result<Option<Arc<S2sToken>>, StoreError> {
        if let Some(token) = self.db.cached.s2s_token(id) {
            return Ok(Some(token));
        }
        let ticket = self.db.cached.ticket();
        let Some(token) = self.read()?.s2s_token(id)? else {
            return Ok(None);
        };
        let token = Arc::new(token);
        self.db.cached.offer_s2s_token(ticket, token.clone());
        Ok(Some(token))
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<ReadTx, StoreError> {
        let db = self.database()?;
        IO_FAILED.set(false);
        let tx = db.begin_read().map_err(db_err);
        self.note_io_failure();
        Ok(Tx { tx: tx? })
    }

    /// Runs `f` in one write transaction, committing if it returns `Ok` and
    /// discarding every change if it returns `Err`. Blocks on disk I/O; from
    /// async code use [`Store::write_async`].
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        // Before the transaction begins: reads from here on keep nothing
        // in the read cache until it has been emptied after the commit.
        self.db.cached.write_begins();
        let _emptied = EmptiedAfter(&self.db.cached);
        let db = self.database()?;
        IO_FAILED.set(false);
        let began = db.begin_write().map_err(db_err);
        drop(db);
        let result = match began {
            Ok(tx) => {
                let mut tx = Tx { tx };
                match f(&mut tx) {
                    Ok(value) => tx
                        .tx
                        .commit()
                        .map(|()| value)
                        .map_err(|e| E::from(db_err(e))),
                    Err(e) => {
                        // Dropping aborts too; aborting explicitly surfaces
                        // nothing useful, so the domain error wins.
                        let _ = tx.tx.abort();
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e.into()),
        };
        self.note_io_failure();
        result
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
