//! Opening the store file: the data directory and the file made private
//! to their owner before anything secret is written, an existing file
//! narrowed to 0600, and redb's open errors turned into ones an operator
//! can act on.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use redb::Database;

use super::{STORE_FILE, Slot, Store, StoreError};

impl Store {
    /// Opens (or, in an empty directory, creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(dir)?;
        super::keyfile::check(dir)?;
        let path = dir.join(STORE_FILE);
        let db = match fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => return Err(StoreError::EmptyFile { path }),
            Ok(meta) => {
                tighten_file(&path, &meta)?;
                // redb trusts a file it shut down cleanly and may panic on
                // one altered since; checking every page's checksum as it
                // opens turns a flipped bit into an error that names the
                // file, for the cost of reading the file once (what the
                // open after a crash does anyway).
                builder()
                    .set_check_integrity_on_open(true)
                    .open(&path)
                    .map_err(|e| open_error(&path, e))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_private_file(&path)?;
                builder().create(&path).map_err(|e| open_error(&path, e))?
            }
            Err(source) => return Err(StoreError::DataDir { path, source }),
        };
        let store = Store {
            db: Arc::new(Slot::new(db)),
            path,
            group: Arc::new(OnceLock::new()),
        };
        // A record the schema check or a migration cannot read is damage
        // to this file, and the refusal names it.
        store.check_schema().map_err(|e| match e {
            StoreError::BadRecord { .. } => StoreError::Damaged {
                path: store.path.clone(),
                detail: e.to_string(),
            },
            e => e,
        })?;
        Ok(store)
    }
}

impl Store {
    /// Closes the database redb reported an I/O failure on and opens the
    /// file again (see [`Slot`]). Done by the first request after the
    /// failure; while the cause lasts (the disk is still full) the reopened
    /// file serves reads and the next write fails the same way. Refused,
    /// for this request only, while another thread still holds the old
    /// database to begin a transaction, or while redb keeps it open for a
    /// write transaction still running.
    pub(super) fn reopen(&self) -> Result<(), StoreError> {
        let mut current = self
            .db
            .current
            .write()
            .map_err(|_| StoreError::Storage("the store's lock is poisoned".into()))?;
        if !self.db.broken.load(Ordering::Acquire) {
            // Another request reopened it while this one waited.
            return Ok(());
        }
        let busy = || StoreError::Unavailable("the store file is being reopened".into());
        if let Some(old) = current.take() {
            match Arc::try_unwrap(old) {
                // Closing flushes what it can; what failed before fails
                // again and is already reported, and no commit is lost by
                // it: a commit that failed was never acknowledged.
                Ok(db) => drop(db.close()),
                Err(old) => {
                    *current = Some(old);
                    return Err(busy());
                }
            }
        }
        let db = builder()
            .open(&self.path)
            .map_err(|e| StoreError::Unavailable(format!("reopening the store file: {e}")))?;
        *current = Some(Arc::new(db));
        self.db.broken.store(false, Ordering::Release);
        tracing::warn!(path = %self.path.display(), "the store file was reopened after an I/O failure");
        Ok(())
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
    new_private_file(path)
        .map(drop)
        .map_err(|source| StoreError::DataDir {
            path: path.to_path_buf(),
            source,
        })
}

/// Creates `path` for writing, mode 0600 from its first byte, refusing one
/// that exists (so never writing through a link someone left there). The
/// store file and everything the operator's commands write (backups, a
/// restored store and key) are made this way.
pub fn new_private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
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

/// Most memory redb keeps as its page cache (90% for pages read, 10% for
/// pages written and not yet flushed). redb's own default is 1 GiB, a
/// ceiling it fills as pages are touched and never gives back: the
/// integrity check at open reads every page, and a long run's resident
/// memory grew with the store file (the soak, measured). Pages past this
/// are read again from the file, which the kernel caches anyway; an
/// account lookup touches a handful of them.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// redb's builder with latchkey's cache bound.
fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_cache_size(CACHE_BYTES);
    b
}

pub(super) fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path },
        // Bytes that are not a redb file, or end too soon, are damage;
        // any other I/O failure is the file system's (no permission, a
        // read-only mount, a full disk) and says nothing about the file.
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => {
            if matches!(
                source.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) {
                StoreError::Damaged {
                    path,
                    detail: source.to_string(),
                }
            } else {
                StoreError::DataDir { path, source }
            }
        }
        other => StoreError::Damaged {
            path,
            detail: other.to_string(),
        },
    }
}
