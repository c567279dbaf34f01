//! Reads for the in-memory API key index the domain loads at start.

use super::reads::Source;
use super::records::ApiKey;
use super::tables::API_KEYS;
use super::{StoreError, Tx};

impl<T: Source> Tx<T> {
    /// Every API key, in id order: one pass over the table, so start-up
    /// costs no read per account.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.all_json(API_KEYS, "api key")
    }
}
