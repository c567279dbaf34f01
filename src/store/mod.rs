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

pub mod backup;
mod commit;
mod consistency;
mod key_index;
pub mod keyfile;
mod migrate;
mod open;
pub use open::new_private_file;
mod reads;
pub mod records;
mod stats;
mod tables;
mod writes;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

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
    /// Queue of the group-commit writer, started on first use.
    group: Arc<OnceLock<mpsc::Sender<commit::GroupJob>>>,
}

impl Store {
    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<ReadTx, StoreError> {
        Ok(Tx {
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
        let mut tx = Tx {
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
