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
    match fs::File::open(&path) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(err)?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Damaged {
                path: path.clone(),
                detail: "the master key file is not 32 bytes".into(),
            })?;
            Ok((key, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
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
        Err(e) => Err(err(e)),
    }
}
