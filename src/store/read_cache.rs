//! Decoded records that authenticated requests read on every request,
//! kept exact by construction: account records (`/me` answers the caller's
//! own account) and S2S token records (checked on every request with an
//! S2S token). Reading one meant a read transaction, a B-tree lookup and a
//! JSON decode each time. This cache holds the decoded records, and stays
//! exact without knowing which writes touch which record:
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

use super::records::{Account, S2sToken};

/// The most records of each kind held; beyond it records are read, not
/// kept. Each is a few hundred bytes.
pub const CAPACITY: usize = 1024;

/// See the module documentation.
#[derive(Default)]
pub struct ReadCache {
    /// The records.
    records: Mutex<Records>,
    /// Write transactions begun and not yet emptied the cache.
    writing: AtomicUsize,
    /// Write transactions that have emptied the cache.
    epoch: AtomicU64,
}

/// What a read must show to let its record in: the epoch when it began, or
/// nothing when a write was running then.
#[derive(Clone, Copy)]
pub struct ReadTicket(Option<u64>);

/// The records held, by kind.
#[derive(Default)]
struct Records {
    /// Accounts, by id.
    accounts: HashMap<Uuid, Arc<Account>>,
    /// S2S tokens, by id.
    s2s: HashMap<String, Arc<S2sToken>>,
}

impl ReadCache {
    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached account `id`, if any.
    pub fn account(&self, id: Uuid) -> Option<Arc<Account>> {
        self.lock().accounts.get(&id).cloned()
    }

    /// The cached S2S token `id`, if any.
    pub fn s2s_token(&self, id: &str) -> Option<Arc<S2sToken>> {
        self.lock().s2s.get(id).cloned()
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

    /// Lets in an account read under `ticket`, if no write has run since.
    pub fn offer_account(&self, ticket: ReadTicket, account: Arc<Account>) {
        self.offer(ticket, |records| {
            insert_bounded(&mut records.accounts, account.id, account)
        });
    }

    /// Lets in an S2S token read under `ticket`, if no write has run since.
    pub fn offer_s2s_token(&self, ticket: ReadTicket, token: Arc<S2sToken>) {
        self.offer(ticket, |records| {
            insert_bounded(&mut records.s2s, token.id.clone(), token)
        });
    }

    fn offer(&self, ticket: ReadTicket, insert: impl FnOnce(&mut Records)) {
        let Some(epoch) = ticket.0 else { return };
        let mut records = self.lock();
        if self.writing.load(Ordering::SeqCst) == 0 && self.epoch.load(Ordering::SeqCst) == epoch {
            insert(&mut records);
        }
    }

    /// Called before a write transaction begins.
    pub fn write_begins(&self) {
        self.writing.fetch_add(1, Ordering::SeqCst);
    }

    /// Called after a write transaction committed or failed.
    pub fn write_ended(&self) {
        let mut records = self.lock();
        records.accounts.clear();
        records.s2s.clear();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        drop(records);
        self.writing.fetch_sub(1, Ordering::SeqCst);
    }
}

fn insert_bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() < CAPACITY {
        map.insert(key, value);
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
        let cache = ReadCache::default();
        cache.write_begins();
        let ticket = cache.ticket();
        cache.offer_account(ticket, account("old"));
        assert!(cache.account(Uuid::from_u128(7)).is_none());
        cache.write_ended();
        assert!(cache.account(Uuid::from_u128(7)).is_none());
    }

    #[test]
    fn a_read_overtaken_by_a_whole_write_is_not_kept() {
        let cache = ReadCache::default();
        let ticket = cache.ticket();
        cache.write_begins();
        cache.write_ended();
        cache.offer_account(ticket, account("old"));
        assert!(cache.account(Uuid::from_u128(7)).is_none());
    }

    #[test]
    fn a_write_that_begins_after_the_record_is_kept_empties_it() {
        let cache = ReadCache::default();
        let ticket = cache.ticket();
        cache.offer_account(ticket, account("old"));
        assert_eq!(cache.account(Uuid::from_u128(7)).unwrap().username, "old");
        cache.write_begins();
        cache.write_ended();
        assert!(cache.account(Uuid::from_u128(7)).is_none());
        // And a read after it is kept again.
        let ticket = cache.ticket();
        cache.offer_account(ticket, account("new"));
        assert_eq!(cache.account(Uuid::from_u128(7)).unwrap().username, "new");
    }

    #[test]
    fn it_holds_at_most_its_capacity() {
        let cache = ReadCache::default();
        for n in 0..(CAPACITY as u128 + 10) {
            let ticket = cache.ticket();
            let a = Account {
                id: Uuid::from_u128(n),
                ..Account::default()
            };
            cache.offer_account(ticket, Arc::new(a));
        }
        assert_eq!(cache.lock().accounts.len(), CAPACITY);
    }
}
