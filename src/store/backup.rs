//! Snapshots and checks of a store file, for `latchkey backup` and
//! `latchkey verify`.
//!
//! A snapshot is one read transaction of the running store copied, table by
//! table, into a fresh redb file: redb's read transactions see exactly the
//! commits made before they began, so the copy is consistent while writers
//! go on, and it never waits for them nor makes them wait. Every table the
//! source holds must be one this build knows, so a table added later and
//! forgotten here fails the backup instead of vanishing from it.

use std::fs::File;
use std::io;
use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};

use super::open::open_error;
use super::tables::{
    ACCOUNT_KEYS, ACCOUNT_LINKS, ACCOUNT_NUMBERS, ACCOUNT_SESSIONS, ACCOUNTS, API_KEYS, AUDIT,
    EMAILS, EXTERNAL_IDENTITIES, LOCKOUTS, MERCHANTS, META, OPAQUE_TOKENS, REFRESH_TOKENS,
    RESELLER_MERCHANTS, RESELLERS, RETIRED_TENANTS, REVOCATIONS, ROLES, S2S_TOKENS, SESSIONS,
    SIGNING_KEYS, TENANT_ACCOUNTS, USERNAMES,
};
use super::{ReadTx, SigningKey, Store, StoreError, db_err, keyfile};

/// What a snapshot or a checked store holds, in outline.
#[derive(Debug, Clone)]
pub struct Outline {
    /// The schema version recorded in the store.
    pub schema_version: u64,
    /// Accounts stored.
    pub accounts: u64,
    /// Tables copied or found.
    pub tables: usize,
}

/// A store checked by [`inspect`].
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Its outline.
    pub outline: Outline,
    /// Its signing keys, sealed, for the caller to unseal.
    pub signing_keys: Vec<SigningKey>,
}

/// Runs `$f!(TABLE)` for every table of the schema this build writes.
macro_rules! every_table {
    ($f:ident) => {
        [
            $f!(META),
            $f!(ACCOUNTS),
            $f!(ACCOUNT_NUMBERS),
            $f!(USERNAMES),
            $f!(EMAILS),
            $f!(SESSIONS),
            $f!(ACCOUNT_SESSIONS),
            $f!(REFRESH_TOKENS),
            $f!(REVOCATIONS),
            $f!(SIGNING_KEYS),
            $f!(AUDIT),
            $f!(RESELLERS),
            $f!(MERCHANTS),
            $f!(RESELLER_MERCHANTS),
            $f!(TENANT_ACCOUNTS),
            $f!(ROLES),
            $f!(API_KEYS),
            $f!(ACCOUNT_KEYS),
            $f!(S2S_TOKENS),
            $f!(LOCKOUTS),
            $f!(OPAQUE_TOKENS),
            $f!(EXTERNAL_IDENTITIES),
            $f!(ACCOUNT_LINKS),
            $f!(RETIRED_TENANTS),
        ]
    };
}

/// The names of every table this build knows.
fn known_tables() -> Vec<&'static str> {
    macro_rules! name {
        ($t:ident) => {
            $t.name()
        };
    }
    use redb::TableHandle as _;
    every_table!(name).to_vec()
}

/// Refuses a store holding a table this build does not know.
fn check_tables(tx: &ReadTransaction, path: &Path) -> Result<usize, StoreError> {
    use redb::TableHandle as _;
    let known = known_tables();
    let mut n = 0;
    for table in tx.list_tables().map_err(db_err)? {
        if !known.contains(&table.name()) {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                detail: format!(
                    "it holds a table this build does not know: {}",
                    table.name()
                ),
            });
        }
        n += 1;
    }
    if tx.list_multimap_tables().map_err(db_err)?.next().is_some() {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: "it holds a multimap table, which latchkey never writes".into(),
        });
    }
    Ok(n)
}

/// Copies one table, if the source has it.
fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let source = match from.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(db_err(e)),
    };
    let mut target = to.open_table(def).map_err(db_err)?;
    for entry in redb::ReadableTable::iter(&source).map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        target.insert(k.value(), v.value()).map_err(db_err)?;
    }
    Ok(())
}

/// Copies one read transaction of `store` into `file` (empty, open for
/// reading and writing) as a new redb database, committed durably.
/// Blocking: run it off the async workers.
pub fn snapshot_into(store: &Store, file: File) -> Result<Outline, StoreError> {
    let from = store.read()?.tx;
    let tables = check_tables(&from, store.path())?;
    let target = Database::builder()
        .create_with_backend(redb::backends::FileBackend::new(file).map_err(db_err)?)
        .map_err(db_err)?;
    let to = target.begin_write().map_err(db_err)?;
    macro_rules! copy_table {
        ($t:ident) => {
            copy(&from, &to, $t)
        };
    }
    for copied in every_table!(copy_table) {
        copied?;
    }
    to.commit().map_err(db_err)?;
    let outline = {
        let read = ReadTx {
            tx: target.begin_read().map_err(db_err)?,
        };
        Outline {
            schema_version: read.schema_version()?.unwrap_or(0),
            accounts: read.account_count()?,
            tables,
        }
    };
    drop(target);
    Ok(outline)
}

/// Checks the store file at `path` (refused while a server has it open):
/// runs redb's full integrity check and reads its schema version, its
/// tables and its signing keys. A file the check had to repair is refused
/// too: what it lost is unknown. The check runs on a private copy in the
/// temporary directory, so neither it nor a repair writes to the file the
/// operator asked about: a damaged store stays exactly as it was found.
pub fn inspect(path: &Path) -> Result<Inspection, StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(damaged("the file is missing or empty".into()));
    }
    // Held while the file is copied, so no server opens it meanwhile. A
    // file redb would not open read-only (one a crash left to repair, or
    // a damaged one) is copied all the same, and its copy checked.
    let held = match Database::builder().open_read_only(path) {
        Ok(db) => Some(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(StoreError::InUse {
                path: path.to_path_buf(),
            });
        }
        Err(_) => None,
    };
    let copy_err = |source| StoreError::DataDir {
        path: std::env::temp_dir(),
        source,
    };
    let (mut copy, backend) = anonymous_file(&std::env::temp_dir()).map_err(copy_err)?;
    let mut original = File::open(path).map_err(|source| StoreError::DataDir {
        path: path.to_path_buf(),
        source,
    })?;
    io::copy(&mut original, &mut copy).map_err(copy_err)?;
    drop(held);
    let mut db = Database::builder()
        .create_with_backend(redb::backends::FileBackend::new(backend).map_err(db_err)?)
        .map_err(|e| open_error(path, e))?;
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => {
            return Err(damaged(
                "redb's integrity check failed (it was repaired in place, so records may be lost)"
                    .into(),
            ));
        }
        Err(e) => return Err(damaged(format!("redb's integrity check failed: {e}"))),
    }
    let read = ReadTx {
        tx: db.begin_read().map_err(db_err)?,
    };
    let tables = check_tables(&read.tx, path)?;
    let schema_version = read
        .schema_version()?
        .ok_or_else(|| damaged("it records no schema version".into()))?;
    // No change is half-written across tables (what a kill mid-write would
    // show if a transaction were not atomic).
    let problems = super::consistency::problems(&read)?;
    if !problems.is_empty() {
        return Err(damaged(format!(
            "its records disagree: {}",
            problems.join("; ")
        )));
    }
    // Reading every account decodes every account record.
    let mut accounts = 0;
    read.scan_accounts(None, 0, |_| {
        accounts += 1;
        true
    })?;
    Ok(Inspection {
        outline: Outline {
            schema_version,
            accounts,
            tables,
        },
        signing_keys: read.signing_keys()?,
    })
}

/// Reads the data directory's master key without creating one.
pub fn read_master_key(dir: &Path) -> Result<[u8; 32], StoreError> {
    keyfile::read_existing(dir)?.ok_or_else(|| StoreError::DataDir {
        path: dir.join(keyfile::MASTER_KEY_FILE),
        source: io::Error::from(io::ErrorKind::NotFound),
    })
}

/// An unnamed file in `dir` for a snapshot: created 0600 and unlinked at
/// once, so a crash leaves nothing behind. Returns two handles on it: one
/// for redb, one to read it back.
pub fn anonymous_file(dir: &Path) -> io::Result<(File, File)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let name = format!(".snapshot-{}.tmp", uuid::Uuid::new_v4().simple());
    let path = dir.join(name);
    let file = options.open(&path)?;
    std::fs::remove_file(&path)?;
    let other = file.try_clone()?;
    Ok((file, other))
}
