//! What authentication remembers between requests so that the common case
//! skips work that gives the same answer every time.
//!
//! [`VerifiedTokens`] remembers access tokens whose ECDSA signature and
//! claims were verified, keyed by the SHA-256 digest of the token's bytes,
//! so that the next request with the same token skips the signature check
//! and the claim parsing, and nothing else: the revocation set and the
//! account's state are checked on every request, hit or miss, exactly as
//! before. An entry is used only while the token is unexpired (`exp`, with
//! no leeway: a token in its leeway is verified again) and while the key
//! that signed it still verifies, so it can never accept what a full
//! verification at the same time would refuse. The cache is bounded by a
//! count, so a flood of distinct valid tokens cannot grow memory.
//!
//! [`KeyIndex`] holds what authenticating with an API key needs of it (its
//! digest, owner, roles, expiry; never the secret), filled on each key's
//! first use and kept by this process's own writes, so a key's request
//! reads nothing from the store after its first. A key is added after the commit that creates it, and
//! taken out, inside the write transaction and before its commit, by the
//! deletion of the key and by any change that restricts its owner
//! (`AccountStates::restrict` and `forget`: disable, fewer roles, another
//! tenant, deletion). A key not in the index is looked up in the store as
//! before, so the index can only ever be a subset of the store: what it
//! forgets costs a read, never a wrong answer. A key is added from a read
//! only when no removal happened since before that read (a read may
//! predate a deletion being committed): [`KeyIndex::insert_if_unchanged`].

use std::collections::HashMap;
use std::sync::RwLock;

use uuid::Uuid;

use crate::store::ApiKey;

/// Most verified tokens remembered at once.
pub const MAX_VERIFIED_TOKENS: usize = 100_000;
/// Shards of the cache: each has its own lock and is emptied on its own.
const SHARDS: usize = 16;

/// What a verified access token says, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The account the token acts for (`sub`).
    pub account: Uuid,
    /// The session the token belongs to (`sid`).
    pub session: Uuid,
    /// The role the token acts as.
    pub role: String,
    /// Every role the token carries.
    pub roles: Vec<String>,
    /// Reseller scope.
    pub reseller_id: Option<String>,
    /// Merchant scope.
    pub merchant_id: Option<String>,
    /// The token's `exp`: the entry is not used from then on.
    pub exp: i64,
    /// When the key that signed it stops verifying: the entry is not used
    /// from then on either.
    pub key_until: i64,
}

impl VerifiedToken {
    /// Whether a full verification at `now` would still accept the token's
    /// signature and lifetime (never beyond `exp`, never past the key).
    fn usable(&self, now: i64) -> bool {
        now < self.exp && now < self.key_until
    }
}

/// A bounded map from token digest to verified claims.
pub struct VerifiedTokens {
    /// Token digest -> claims; the shard is picked by the digest's first
    /// byte (the digest is uniform, so the shards fill evenly).
    shards: Vec<RwLock<HashMap<[u8; 32], VerifiedToken>>>,
    /// Most entries one shard holds.
    per_shard: usize,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens::with_capacity(MAX_VERIFIED_TOKENS)
    }
}

impl VerifiedTokens {
    /// A cache holding at most `capacity` entries (at least one a shard).
    pub fn with_capacity(capacity: usize) -> VerifiedTokens {
        VerifiedTokens {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, digest: &[u8; 32]) -> &RwLock<HashMap<[u8; 32], VerifiedToken>> {
        &self.shards[usize::from(digest[0]) % SHARDS]
    }

    /// The verified claims of the token with this digest, if remembered
    /// and still usable at `now`.
    pub fn get(&self, digest: &[u8; 32], now: i64) -> Option<VerifiedToken> {
        let shard = self.shard(digest).read().ok()?;
        shard.get(digest).filter(|t| t.usable(now)).cloned()
    }

    /// Remembers a token verified at `now`. A full shard first lets go of
    /// what is no longer usable and, if that frees too little, of
    /// everything: a token forgotten is only verified again.
    pub fn insert(&self, digest: [u8; 32], token: VerifiedToken, now: i64) {
        if !token.usable(now) {
            return;
        }
        let Ok(mut shard) = self.shard(&digest).write() else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.retain(|_, t| t.usable(now));
            // Emptying when most entries are live keeps each insertion
            // cheap: no scan on every insertion into a nearly full shard.
            if shard.len() >= self.per_shard / 4 * 3 {
                shard.clear();
            }
        }
        shard.insert(digest, token);
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map_or(0, |s| s.len()))
            .sum()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most tokens remembered at once.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }
}

/// What authenticating with an API key needs of it.
#[derive(Debug, Clone)]
pub struct IndexedKey {
    /// The SHA-256 digest of the whole key, base64url, as stored.
    pub digest: String,
    /// The account the key acts as.
    pub account: Uuid,
    /// The roles the key acts with (never empty in the index).
    pub roles: Vec<String>,
    /// When the key stops working, if it does.
    pub expires_at: Option<i64>,
    /// Its last use as stored when it was indexed, which tells its first
    /// use apart.
    pub last_used: Option<i64>,
}

/// A change that takes keys out, pending until dropped after its commit
/// (see [`KeyIndex::removal`]).
pub struct Removal<'a> {
    /// The index it holds back.
    index: &'a KeyIndex,
}

impl Drop for Removal<'_> {
    fn drop(&mut self) {
        // The count first, then the pending mark: a reader that sees no
        // removal pending also sees the count moved.
        self.index
            .removals
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.index
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// API keys by id, a subset of the store's kept exact by this process:
/// a key is added when this process creates it, or when it is first
/// authenticated from the store (nothing is loaded at start), and taken
/// out before the commit of any change that deletes it or restricts its
/// owner.
#[derive(Default)]
pub struct KeyIndex {
    /// Key id -> what authentication needs of it.
    map: RwLock<HashMap<String, IndexedKey>>,
    /// Bumped (under the map's write lock) by every removal, so a key read
    /// from the store before a removal is never added after it: see
    /// [`KeyIndex::insert_if_unchanged`].
    removals: std::sync::atomic::AtomicU64,
    /// Changes that take keys out and whose commit is not over yet (see
    /// [`KeyIndex::removal`]): while any is, no key read from the store is
    /// added, since the read may predate a commit still under way.
    pending: std::sync::atomic::AtomicU64,
    /// Keys looked up in the store since start because the index did not
    /// hold them, so tests can prove the index answers.
    store_lookups: std::sync::atomic::AtomicU64,
}

impl KeyIndex {
    /// Adds a key whose record is committed. A key with no roles of its
    /// own (made before keys carried roles) acts with its owner's roles
    /// as stored, so it is left to the store.
    pub fn insert(&self, key: &ApiKey) {
        if key.roles.is_empty() {
            return;
        }
        if let Ok(mut map) = self.map.write() {
            map.insert(key.id.clone(), indexed(key));
        }
    }

    /// The removal count now, taken before reading a key from the store.
    pub fn removals(&self) -> u64 {
        self.removals.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Adds a key read from the store (and just authenticated from it)
    /// unless a removal happened since `removals` was taken: that removal
    /// may be of this key or its owner, before a commit the read did not
    /// see, and adding the key would revive it. The key then simply stays
    /// in the store's hands until its next use.
    pub fn insert_if_unchanged(&self, key: &ApiKey, removals: u64) {
        if key.roles.is_empty() {
            return;
        }
        // `pending` first: a removal that settled after it was read has
        // already bumped the count (see `Removal`'s drop).
        if let Ok(mut map) = self.map.write()
            && self.pending.load(std::sync::atomic::Ordering::SeqCst) == 0
            && self.removals.load(std::sync::atomic::Ordering::SeqCst) == removals
        {
            map.insert(key.id.clone(), indexed(key));
        }
    }

    /// The key with this id, if indexed. A poisoned lock answers `None`,
    /// which sends the key to the store.
    pub fn get(&self, id: &str) -> Option<IndexedKey> {
        self.map.read().ok()?.get(id).cloned()
    }

    /// Marks a change that will take keys out, from before its write
    /// transaction until its commit is over (the guard's life). A key is
    /// taken out before the commit, so that it is refused from the moment
    /// its deletion can be seen; but a request that read the store before
    /// that commit still sees the key, and must not put it back. The
    /// removal count alone cannot tell, as the request may take it after
    /// the key was taken out: so nothing read from the store is added
    /// while a removal is pending, and the count moves again when it
    /// settles.
    pub fn removal(&self) -> Removal<'_> {
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Removal { index: self }
    }

    /// Takes a key out (before the commit that deletes it).
    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.map.write() {
            self.removals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            map.remove(id);
        }
    }

    /// Takes every key of `account` out (before the commit that
    /// restricts or deletes the account).
    pub fn forget_account(&self, account: Uuid) {
        if let Ok(mut map) = self.map.write() {
            self.removals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            map.retain(|_, k| k.account != account);
        }
    }

    /// How many keys are indexed.
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }

    /// Counts a key looked up in the store instead.
    pub fn note_store_lookup(&self) {
        self.store_lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Keys looked up in the store since start.
    pub fn store_lookups(&self) -> u64 {
        self.store_lookups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether no key is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the index keeps of a key.
fn indexed(key: &ApiKey) -> IndexedKey {
    IndexedKey {
        digest: key.digest.clone(),
        account: key.account,
        roles: key.roles.clone(),
        expires_at: key.expires_at,
        last_used: key.last_used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(exp: i64, key_until: i64) -> VerifiedToken {
        VerifiedToken {
            account: Uuid::from_u128(1),
            session: Uuid::from_u128(2),
            role: "user".into(),
            roles: vec!["user".into()],
            reseller_id: None,
            merchant_id: None,
            exp,
            key_until,
        }
    }

    fn digest_of(i: u64) -> [u8; 32] {
        crate::domain::secrets::digest(&i.to_be_bytes())
    }

    #[test]
    fn many_distinct_tokens_never_grow_the_cache_past_its_bound() {
        let cache = VerifiedTokens::with_capacity(64);
        let bound = cache.capacity();
        assert_eq!(bound, 64);
        for i in 0..(10 * bound as u64 + 1) {
            cache.insert(digest_of(i), token(1000, i64::MAX), 0);
            assert!(cache.len() <= bound, "{} > {bound}", cache.len());
        }
        // The latest one is remembered.
        let last = digest_of(10 * bound as u64);
        assert!(cache.get(&last, 0).is_some());
    }

    #[test]
    fn an_entry_is_never_used_past_its_expiry_or_its_keys_retirement() {
        let cache = VerifiedTokens::with_capacity(64);
        let (a, b) = (digest_of(1), digest_of(2));
        cache.insert(a, token(100, i64::MAX), 0);
        cache.insert(b, token(1000, 50), 0);
        assert!(cache.get(&a, 99).is_some());
        assert!(cache.get(&a, 100).is_none());
        assert!(cache.get(&b, 49).is_some());
        assert!(cache.get(&b, 50).is_none());
        // Nothing is remembered that is already unusable.
        let c = digest_of(3);
        cache.insert(c, token(100, i64::MAX), 100);
        assert!(cache.get(&c, 0).is_none());
    }

    fn key(id: &str, account: u128) -> ApiKey {
        ApiKey {
            id: id.into(),
            account: Uuid::from_u128(account),
            name: "k".into(),
            digest: "d".into(),
            created_at: 0,
            last_used: None,
            role: None,
            roles: vec!["user".into()],
            narrowed: false,
            expires_at: None,
        }
    }

    /// A key read from the store before a removal (of it, or of its
    /// owner's keys) is not added after it: the removal was for a commit
    /// the read did not see, and adding it would revive a deleted key.
    #[test]
    fn a_key_read_before_a_removal_is_not_indexed_after_it() {
        let index = KeyIndex::default();
        let (a, b) = (key("key_a", 1), key("key_b", 2));
        let before = index.removals();
        index.remove(&a.id);
        index.insert_if_unchanged(&a, before);
        assert!(index.get(&a.id).is_none());
        let before = index.removals();
        index.forget_account(b.account);
        index.insert_if_unchanged(&b, before);
        assert!(index.get(&b.id).is_none());
        // With no removal in between, the key is indexed.
        let before = index.removals();
        index.insert_if_unchanged(&a, before);
        assert!(index.get(&a.id).is_some());
    }

    /// A read that took the count after a key was taken out but read the
    /// store before that commit (the key still there) adds nothing, while
    /// the commit is under way or after it settles.
    #[test]
    fn a_key_read_before_a_pending_commit_is_not_indexed() {
        let index = KeyIndex::default();
        let a = key("key_a", 1);
        let settles = index.removal();
        index.remove(&a.id);
        let taken = index.removals();
        index.insert_if_unchanged(&a, taken);
        assert!(index.get(&a.id).is_none(), "added while the commit runs");
        drop(settles);
        index.insert_if_unchanged(&a, taken);
        assert!(index.get(&a.id).is_none(), "added after it settled");
        // A read begun after the commit settled is the store's truth.
        let after = index.removals();
        index.insert_if_unchanged(&a, after);
        assert!(index.get(&a.id).is_some());
    }
}
