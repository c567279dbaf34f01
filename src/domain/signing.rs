//! The JWT signing key's life: generated on first start, sealed with the
//! master key, kept in the store, loaded at every start, and rotated by an
//! admin ([`Core::rotate_signing_key`]): the new key signs from then on,
//! the old one verifies until its last token can have expired.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::auth::{Principal, actor_still_valid};
use super::rbac::Scope;
use super::secrets::{b64, b64_decode, random_bytes, random_id};
use super::{Core, CoreConfig, Error, Outcome, StartError, jwt};
use crate::store::{SigningKey, Store, StoreError, WriteTx, keyfile};

/// A signing key as the admin API lists it: never its private half.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Its key id, as in the JWKS and in token headers.
    pub kid: String,
    /// Its algorithm (ES256).
    pub alg: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// Whether it signs new tokens (else it only verifies).
    pub active: bool,
    /// When it stopped signing, if it has.
    pub retired_at: Option<i64>,
    /// From when it no longer verifies and leaves the JWKS; `None` while
    /// it signs.
    pub verify_until: Option<i64>,
}

impl Core {
    /// The keys in the JWKS now, the signing one first, then the retired
    /// ones newest first. Admins only: the console's signing-key page.
    pub fn signing_keys(
        &self,
        principal: &Principal,
        page: &super::PageRequest,
    ) -> Result<super::Page<KeyInfo>, Error> {
        if principal.scope() != Scope::All {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let ttl = self.config.access_ttl;
        let mut keys: Vec<KeyInfo> = self
            .store
            .read()?
            .signing_keys()?
            .into_iter()
            .map(|k| KeyInfo {
                verify_until: k.retired_at.map(|at| verify_until(at, ttl)),
                kid: k.kid,
                alg: k.alg,
                created_at: k.created_at,
                active: k.active,
                retired_at: k.retired_at,
            })
            // Past its verify-until a key is out of the JWKS, waiting for
            // housekeeping to delete it.
            .filter(|k| k.active || k.verify_until.is_some_and(|until| now < until))
            .collect();
        keys.sort_by(|a, b| {
            b.active
                .cmp(&a.active)
                .then(b.created_at.cmp(&a.created_at))
                .then(a.kid.cmp(&b.kid))
        });
        page.in_memory(keys)
    }

    /// Makes a new signing key (admins only, with a recently re-entered
    /// password). In one write transaction every active key is retired
    /// (`retired_at` now) and the new one stored, sealed, with the audit
    /// entry; only once that is durable does the new key sign in memory.
    /// The old key stays in the JWKS and verifies until its last token can
    /// have expired ([`verify_until`]), then housekeeping deletes it
    /// ([`prune_retired`]). Rotations run one at a time, so the key that
    /// signs is always the one the store calls active.
    pub async fn rotate_signing_key(&self, principal: &Principal) -> Result<KeyInfo, Error> {
        if principal.scope() != Scope::All {
            return Err(Error::Forbidden);
        }
        self.require_recent_password(principal)?;
        let _one_at_a_time = self.keys.rotation.lock().await;
        let generated = jwt::generate().map_err(Error::Internal)?;
        let kid = random_id(16);
        let now = self.clock.now();
        let ttl = self.config.access_ttl;
        let data_dir = self.config.data_dir.clone();
        let audit = self.actor_entry(principal, "signing_key_rotated", Outcome::Success)?;
        let actor = principal.clone();
        let pkcs8 = generated.pkcs8.clone();
        let record_kid = kid.clone();
        let record = self
            .store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                // The master key as the data directory holds it now: what
                // the next start will unseal with.
                let (master, _) = keyfile::load_or_create(&data_dir, random_bytes::<32>())?;
                let record = SigningKey {
                    kid: record_kid.clone(),
                    alg: "ES256".into(),
                    created_at: now,
                    public_key: b64(&generated.public_point),
                    sealed_private_key: seal(&master, &record_kid, &pkcs8)
                        .map_err(|e| Error::Internal(e.to_string()))?,
                    active: true,
                    retired_at: None,
                };
                let mut retired = Vec::new();
                for mut old in tx.signing_keys()? {
                    if old.active || old.retired_at.is_none() {
                        old.active = false;
                        old.retired_at = Some(now);
                        tx.put_signing_key(&old)?;
                        retired.push(old.kid);
                    }
                }
                prune_retired(tx, now, ttl)?;
                tx.put_signing_key(&record)?;
                audit
                    .target(record.kid.clone())
                    .detail(format!("retired {}", retired.join(", ")))
                    .append(tx, now)?;
                Ok::<_, Error>(record)
            })
            .await?;
        self.keys
            .rotate(kid, &generated.pkcs8, verify_until(now, ttl), now)
            .map_err(Error::Internal)?;
        Ok(KeyInfo {
            kid: record.kid,
            alg: record.alg,
            created_at: record.created_at,
            active: true,
            retired_at: None,
            verify_until: None,
        })
    }
}

/// Loads the active signing key, or makes one. If the active key cannot be
/// unsealed (the master key file was replaced or lost), a new key is made
/// and the old one is retired: its public key stays published, and tokens
/// it signed keep verifying, only until the last of them has expired
/// ([`verify_until`]); refresh tokens are not JWTs at all. Retired keys
/// past that time are deleted here and by [`prune_retired`].
pub fn load_or_create(
    store: &Store,
    config: &CoreConfig,
    now: i64,
) -> Result<jwt::KeySet, StartError> {
    let (master, _) = keyfile::load_or_create(&config.data_dir, random_bytes::<32>())?;
    let stored = store.read()?.signing_keys()?;
    let mut active = None;
    for key in stored.iter().filter(|k| k.active) {
        match unseal(&master, key) {
            Some(pkcs8) => active = Some((key.kid.clone(), pkcs8)),
            None => tracing::warn!(
                kid = %key.kid,
                "the active signing key cannot be unsealed with this data directory's master key; generating a new one and retiring it"
            ),
        }
    }
    let fresh = match active {
        Some(_) => None,
        None => {
            let generated = jwt::generate().map_err(StartError::Config)?;
            let kid = random_id(16);
            let record = SigningKey {
                kid: kid.clone(),
                alg: "ES256".into(),
                created_at: now,
                public_key: b64(&generated.public_point),
                sealed_private_key: seal(&master, &kid, &generated.pkcs8)?,
                active: true,
                retired_at: None,
            };
            Some((record, generated.pkcs8))
        }
    };
    let signer_kid = fresh
        .as_ref()
        .map(|(record, _)| record.kid.clone())
        .or_else(|| active.as_ref().map(|(kid, _)| kid.clone()));
    // Every key but the signer is retired; one that is not stamped yet (it
    // stopped signing just now, or before retirement was recorded) is
    // stamped now, and one past its verify-until is deleted.
    let mut changed = Vec::new();
    let mut expired = Vec::new();
    let mut retired = Vec::new();
    for key in &stored {
        if Some(&key.kid) == signer_kid.as_ref() {
            continue;
        }
        let retired_at = key.retired_at.unwrap_or(now);
        if key.active || key.retired_at.is_none() {
            let mut stamped = key.clone();
            stamped.active = false;
            stamped.retired_at = Some(retired_at);
            changed.push(stamped);
        }
        let until = verify_until(retired_at, config.access_ttl);
        if now >= until {
            expired.push(key.kid.clone());
            continue;
        }
        let point = b64_decode(&key.public_key).ok_or_else(|| {
            StartError::Config(format!(
                "signing key {} has an unreadable public key",
                key.kid
            ))
        })?;
        retired.push(jwt::RetiredKey {
            kid: key.kid.clone(),
            point,
            verify_until: until,
        });
    }
    if fresh.is_some() || !changed.is_empty() || !expired.is_empty() {
        store.write(|tx| {
            for key in &changed {
                tx.put_signing_key(key)?;
            }
            for kid in &expired {
                tx.remove_signing_key(kid)?;
            }
            match &fresh {
                Some((record, _)) => tx.put_signing_key(record),
                None => Ok(()),
            }
        })?;
    }
    for kid in &expired {
        tracing::info!(%kid, "deleted a retired signing key no token can still need");
    }
    let (kid, pkcs8) = match (fresh, active) {
        (Some((record, pkcs8)), _) => (record.kid, pkcs8),
        (None, Some(found)) => found,
        (None, None) => return Err(StartError::Config("no signing key".into())),
    };
    jwt::KeySet::new(
        kid,
        &pkcs8,
        retired,
        config.issuer.clone(),
        config.audience.clone(),
        config.access_ttl,
    )
    .map_err(StartError::Config)
}

/// When a key retired at `retired_at` stops verifying: the last token it
/// signed was issued at the latest then, lives at most `access_ttl`, and is
/// accepted for the leeway after its expiry.
pub fn verify_until(retired_at: i64, access_ttl: i64) -> i64 {
    retired_at
        .saturating_add(access_ttl)
        .saturating_add(jwt::LEEWAY_SECS)
}

/// Deletes retired keys past their verify-until inside `tx`; returns how
/// many. The verifier already refuses them by time; this keeps their sealed
/// private halves from lingering in the store.
pub fn prune_retired(tx: &mut WriteTx, now: i64, access_ttl: i64) -> Result<usize, StoreError> {
    let mut removed = 0;
    for key in tx.signing_keys()? {
        if let Some(retired_at) = key.retired_at
            && !key.active
            && now >= verify_until(retired_at, access_ttl)
        {
            tx.remove_signing_key(&key.kid)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn aead_key(master: &[u8; 32]) -> Result<LessSafeKey, StartError> {
    UnboundKey::new(&AES_256_GCM, master)
        .map(LessSafeKey::new)
        .map_err(|_| StartError::Config("master key unusable".into()))
}

fn seal(master: &[u8; 32], kid: &str, pkcs8: &[u8]) -> Result<String, StartError> {
    let key = aead_key(master)?;
    let nonce = random_bytes::<NONCE_LEN>();
    let mut sealed = pkcs8.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(kid.as_bytes()),
        &mut sealed,
    )
    .map_err(|_| StartError::Config("sealing the signing key failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(b64(&out))
}

pub(crate) fn unseal(master: &[u8; 32], record: &SigningKey) -> Option<Vec<u8>> {
    let key = aead_key(master).ok()?;
    let bytes = b64_decode(&record.sealed_private_key)?;
    let (nonce, sealed) = bytes.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(record.kid.as_bytes()), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> CoreConfig {
        CoreConfig {
            data_dir: dir.to_path_buf(),
            issuer: "iss".into(),
            audience: "aud".into(),
            access_ttl: 900,
            refresh_ttl: 3600,
            session_ttl: 3600,
            hash_params: Default::default(),
            hash_workers: 1,
            hash_queue: 1,
            external: Default::default(),
            rate_login_per_ip: 1,
            rate_login_per_account: 1,
            lockout_threshold: 1,
            lockout_seconds: 1,
            max_api_keys_per_account: 1,
            max_s2s_tokens_per_tenant: 1,
            s2s_max_ttl: 3600,
        }
    }

    /// A key retired before `retired_at` was recorded (written by an older
    /// build) is stamped at the first start, verifies for one access
    /// lifetime plus leeway from then, and is deleted at the first start
    /// after that.
    #[test]
    fn a_key_retired_before_the_field_existed_is_stamped_then_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let now = 1_700_000_000;
        let store = Store::open(dir.path()).unwrap();
        let legacy = jwt::generate().unwrap();
        // The JSON an older build wrote: no `retired_at` member at all.
        let record: SigningKey = serde_json::from_value(serde_json::json!({
            "kid": "legacy",
            "alg": "ES256",
            "created_at": now - 86_400,
            "public_key": b64(&legacy.public_point),
            "sealed_private_key": "",
            "active": false,
        }))
        .unwrap();
        assert_eq!(record.retired_at, None);
        store.write(|tx| tx.put_signing_key(&record)).unwrap();

        let keys = load_or_create(&store, &config, now).unwrap();
        assert!(keys.jwks(now).contains("legacy"));
        let stamped = store.read().unwrap().signing_keys().unwrap();
        let old = stamped.iter().find(|k| k.kid == "legacy").unwrap();
        assert_eq!(old.retired_at, Some(now));
        let until = verify_until(now, 900);
        assert!(!keys.jwks(until).contains("legacy"));

        // A later start before verify-until keeps it and its stamp.
        let later = load_or_create(&store, &config, until - 1).unwrap();
        assert!(later.jwks(until - 1).contains("legacy"));
        let kept = store.read().unwrap().signing_keys().unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().any(|k| k.retired_at == Some(now)));

        // The first start after it deletes the record.
        load_or_create(&store, &config, until).unwrap();
        let left = store.read().unwrap().signing_keys().unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].active && left[0].kid != "legacy");
    }
}
