//! Decoded account records kept for `/me`, exact by construction.
//!
//! `/me` answers the caller's own account on every request; reading it
//! meant a read transaction, a B-tree lookup and a JSON decode each time.
//! This cache holds the decoded record, and stays exact without knowing
//! which writes touch which account:
//!
//! - every write transaction, committed or not, empties it after its commit
//!   and moves the epoch on;
//! - a record read from the store enters only if no write was running when
//!   the read began and none has finished since (the epoch is unchanged),
//!   checked under the same lock the emptying takes.
//!
//! So a record that a write replaced is either emptied out after the write
//! or was never let in: a read whose snapshot predates a write either saw
//! that write running when it began, or the write began after the check
//! that let the record in, and empties it after committing. Between a
//! commit and its emptying, a cached record can be served that the write
//! just replaced; the write has not returned to its caller yet, so no
//! answer to it has been given that the stale record could contradict.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

use super::records::Account;

/// The most records held; beyond it records are read, not kept. Each is a
/// few hundred bytes.
pub const CAPACITY: usize = 1024;

/// See the module documentation.
#[derive(Default)]
pub struct AccountCache {
    /// The records, by account id.
    records: Mutex<HashMap<Uuid, Arc<Account>>>,
    /// Write transactions begun and not yet emptied the cache.
    writing: AtomicUsize,
    /// Write transactions that have emptied the cache.
    epoch: AtomicU64,
}

/// What a read must show to let its record in: the epoch when it began, or
/// nothing when a write was running then.
#[derive(Clone, Copy)]
pub struct ReadTicket(Option<u64>);

impl AccountCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<Account>>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached record of `id`, if any.
    pub fn get(&self, id: Uuid) -> Option<Arc<Account>> {
        self.lock().get(&id).cloned()
    }

    /// Taken before a read transaction begins.
    pub fn ticket(&self) -> ReadTicket {
        let epoch = self.epoch.load(Ordering::SeqCst);
        if self.writing.load(Ordering::SeqCst) > 0 {
            ReadTicket(None)
        } else {
            ReadTicket(Some(epoch))
        }
    }

    /// Lets in a record read under `ticket`, if no write has run since.
    pub fn offer(&self, ticket: ReadTicket, account: Arc<Account>) {
        let Some(epoch) = ticket.0 else { return };
        let mut records = self.lock();
        if self.writing.load(Ordering::SeqCst) == 0
            && self.epoch.load(Ordering::SeqCst) == epoch
            && records.len() < CAPACITY
        {
            records.insert(account.id, account);
        }
    }

    /// Called before a write transaction begins.
    pub fn write_begins(&self) {
        self.writing.fetch_add(1, Ordering::SeqCst);
    }

    /// Called after a write transaction committed or failed.
    pub fn write_ended(&self) {
        let mut records = self.lock();
        records.clear();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        drop(records);
        self.writing.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> Arc<Account> {
        Arc::new(Account {
            id: Uuid::from_u128(7),
            username: name.into(),
            ..Account::default()
        })
    }

    #[test]
    fn a_read_that_began_during_a_write_is_not_kept() {
        let cache = AccountCache::default();
        cache.write_begins();
        let ticket = cache.ticket();
        cache.offer(ticket, account("old"));
        assert!(cache.get(Uuid::from_u128(7)).is_none());
        cache.write_ended();
        assert!(cache.get(Uuid::from_u128(7)).is_none());
    }

    #[test]
    fn a_read_overtaken_by_a_whole_write_is_not_kept() {
        let cache = AccountCache::default();
        let ticket = cache.ticket();
        cache.write_begins();
        cache.write_ended();
        cache.offer(ticket, account("old"));
        assert!(cache.get(Uuid::from_u128(7)).is_none());
    }

    #[test]
    fn a_write_that_begins_after_the_record_is_kept_empties_it() {
        let cache = AccountCache::default();
        let ticket = cache.ticket();
        cache.offer(ticket, account("old"));
        assert_eq!(cache.get(Uuid::from_u128(7)).unwrap().username, "old");
        cache.write_begins();
        cache.write_ended();
        assert!(cache.get(Uuid::from_u128(7)).is_none());
        // And a read after it is kept again.
        let ticket = cache.ticket();
        cache.offer(ticket, account("new"));
        assert_eq!(cache.get(Uuid::from_u128(7)).unwrap().username, "new");
    }

    #[test]
    fn it_holds_at_most_its_capacity() {
        let cache = AccountCache::default();
        for n in 0..(CAPACITY as u128 + 10) {
            let ticket = cache.ticket();
            let a = Account {
                id: Uuid::from_u128(n),
                ..Account::default()
            };
            cache.offer(ticket, Arc::new(a));
        }
        assert_eq!(cache.lock().len(), CAPACITY);
    }
}
