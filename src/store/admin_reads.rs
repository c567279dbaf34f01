//! Reads the admin API's console views need (issue 11): every account's
//! API keys in pages, and how many records some tables hold, for the
//! overview. Kept apart from `reads.rs` so the request paths' reads stay
//! where they are.

use std::ops::Bound::{Excluded, Unbounded};

use redb::{ReadableTable, ReadableTableMetadata};

use super::reads::Source;
use super::tables::{API_KEYS, MERCHANTS, RESELLERS, S2S_TOKENS};
use super::{ApiKey, S2sToken, StoreError, Tx, db_err, decode};

/// How many records some tables hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordCounts {
    /// Resellers.
    pub resellers: u64,
    /// Merchants.
    pub merchants: u64,
    /// API keys, of every account, expired ones included.
    pub api_keys: u64,
    /// S2S tokens kept, ended ones included until housekeeping deletes
    /// them.
    pub s2s_tokens: u64,
}

impl<T: Source> Tx<T> {
    /// API keys in id order after `after` that `keep` accepts, at most
    /// `limit` of them. At most `scan` records are looked at, so a
    /// selective `keep` cannot make one call read the whole table. Returns
    /// the keys and the id of the last record looked at when the scan
    /// stopped before the table's end (where a next call starts), else
    /// `None`.
    pub fn api_keys_after(
        &self,
        after: &str,
        mut keep: impl FnMut(&ApiKey) -> bool,
        limit: usize,
        scan: usize,
    ) -> Result<(Vec<ApiKey>, Option<String>), StoreError> {
        let (mut out, mut last, mut looked, mut stopped) = (Vec::new(), None, 0usize, false);
        let Some(table) = self.tx.table(API_KEYS)? else {
            return Ok((out, None));
        };
        for entry in table
            .range::<&str>((Excluded(after), Unbounded))
            .map_err(db_err)?
        {
            if looked >= scan || out.len() >= limit {
                stopped = true;
                break;
            }
            let (id, value) = entry.map_err(db_err)?;
            looked += 1;
            last = Some(id.value().to_string());
            let key: ApiKey = decode("api key", value.value())?;
            if keep(&key) {
                out.push(key);
            }
        }
        Ok((out, last.filter(|_| stopped)))
    }

    /// S2S tokens in id order, each handed to `f` until it returns false
    /// or `scan` were seen; returns how many were seen.
    pub fn each_s2s_token(
        &self,
        scan: usize,
        mut f: impl FnMut(&S2sToken) -> bool,
    ) -> Result<usize, StoreError> {
        let mut seen = 0usize;
        let Some(table) = self.tx.table(S2S_TOKENS)? else {
            return Ok(0);
        };
        for entry in table.iter().map_err(db_err)? {
            if seen >= scan {
                break;
            }
            let (_, value) = entry.map_err(db_err)?;
            seen += 1;
            let token: S2sToken = decode("s2s token", value.value())?;
            if !f(&token) {
                break;
            }
        }
        Ok(seen)
    }

    /// How many records some tables hold (read from each table's length,
    /// not by decoding its records).
    pub fn record_counts(&self) -> Result<RecordCounts, StoreError> {
        let count = |def| -> Result<u64, StoreError> {
            match self.tx.table(def)? {
                Some(t) => t.len().map_err(db_err),
                None => Ok(0),
            }
        };
        Ok(RecordCounts {
            resellers: count(RESELLERS)?,
            merchants: count(MERCHANTS)?,
            api_keys: count(API_KEYS)?,
            s2s_tokens: count(S2S_TOKENS)?,
        })
    }
}
