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

use std::collections::HashMap;
use std::sync::RwLock;

use uuid::Uuid;

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
}
