//! The data directory's master key: 32 random bytes in `master.key`, mode
//! 0600, created once. It seals the JWT signing keys kept in the store, so a
//! copy of the store file alone (a backup, a stray disk image) cannot mint
//! tokens.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use super::StoreError;

/// The master key file's name inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Reads the master key, creating it with `fresh` if there is none yet.
/// Returns the key and whether it was created now.
pub fn load_or_create(dir: &Path, fresh: [u8; 32]) -> Result<([u8; 32], bool), StoreError> {
    let path = dir.join(MASTER_KEY_FILE);
    let err = |source: io::Error| StoreError::DataDir {
        path: path.clone(),
        source,
    };
    if let Some(key) = read_existing(dir)? {
        return Ok((key, false));
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(err)?;
    file.write_all(&fresh).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok((fresh, true))
}

/// Refuses a master key file that is there but unusable, before the
/// store is opened: a start that is going to fail on the key must not
/// write to the store first. A missing file passes (it is made later).
pub fn check(dir: &Path) -> Result<(), StoreError> {
    read_existing(dir).map(drop)
}

/// The master key in `dir`, `None` if there is no file. A file that is
/// not exactly 32 bytes, or that group or others may write, is refused
/// with an error naming it; its bytes are never rewritten.
pub fn read_existing(dir: &Path) -> Result<Option<[u8; 32]>, StoreError> {
    let path = dir.join(MASTER_KEY_FILE);
    let err = |source: io::Error| StoreError::DataDir {
        path: path.clone(),
        source,
    };
    let file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let meta = file.metadata().map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        // One that others may write could have been swapped for a key
        // someone else knows, which would seal the next signing key for
        // them: refused. One they may only read is narrowed, as the store
        // file is, and the operator told it may have leaked.
        if mode & 0o022 != 0 {
            return Err(StoreError::UnsafeMasterKey { path, mode });
        }
        if mode & 0o044 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(err)?;
            tracing::warn!(
                path = %path.display(),
                was = format!("{mode:03o}"),
                "the master key file was readable by group or others; its mode is now 0600. \
                 If anyone else could read it, treat it as leaked: delete it while the server is stopped \
                 and the signing key rotates at the next start"
            );
        }
    }
    let bad = |detail: String| StoreError::BadMasterKey {
        path: path.clone(),
        detail,
    };
    if !meta.is_file() {
        return Err(bad("it is not a regular file".into()));
    }
    let mut bytes = Vec::with_capacity(32);
    // One byte past the key is enough to tell a longer file.
    file.take(33).read_to_end(&mut bytes).map_err(err)?;
    let len = bytes.len();
    let key: [u8; 32] = bytes.try_into().map_err(|_| {
        bad(match len {
            33 => format!("it is {} bytes; a master key is 32 bytes", meta.len()),
            n => format!("it is {n} bytes; a master key is 32 bytes"),
        })
    })?;
    Ok(Some(key))
}
