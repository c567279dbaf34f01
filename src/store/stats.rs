//! Counts read for the metrics endpoint. Kept apart from `mod.rs` so that
//! the request paths' tables and methods stay where they are.

use serde::Deserialize;

use super::reads::Source;
use super::tables::SESSIONS;
use super::{ReadTx, StoreError, db_err, decode};

/// The two fields of a session record a count needs; the rest of the
/// record is skipped rather than decoded.
#[derive(Deserialize)]
struct SessionEnds {
    /// Absolute end of the session.
    expires_at: i64,
    /// Set once it is revoked.
    #[serde(default)]
    revoked_at: Option<i64>,
}

impl ReadTx {
    /// Sessions neither revoked nor past their end at `now`. Reads every
    /// session record: housekeeping deletes ended ones within about an
    /// hour, so this is the live sessions plus that hour's ended ones.
    pub fn live_session_count(&self, now: i64) -> Result<u64, StoreError> {
        let Some(sessions) = self.tx.table(SESSIONS)? else {
            return Ok(0);
        };
        let mut live = 0;
        for entry in redb::ReadableTable::iter(&sessions).map_err(db_err)? {
            let (_, value) = entry.map_err(db_err)?;
            // An unreadable record is not a live session; housekeeping
            // and the admin views report it.
            if let Ok(s) = decode::<SessionEnds>("session", value.value())
                && s.revoked_at.is_none()
                && s.expires_at > now
            {
                live += 1;
            }
        }
        Ok(live)
    }
}
