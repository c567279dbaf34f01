//! The JWT signing key's life: generated on first start, sealed with the
//! master key, kept in the store, loaded at every start.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::secrets::{b64, b64_decode, random_bytes, random_id};
use super::{CoreConfig, StartError, jwt};
use crate::store::{SigningKey, Store, keyfile};

/// Loads the active signing key, or makes one. If the active key cannot be
/// unsealed (the master key file was replaced or lost), a new key is made
/// and the old public keys stay published: access tokens already issued keep
/// verifying until they expire, and refresh tokens are not JWTs at all.
pub fn load_or_create(
    store: &Store,
    config: &CoreConfig,
    now: i64,
) -> Result<jwt::KeySet, StartError> {
    let (master, _) = keyfile::load_or_create(&config.data_dir, random_bytes::<32>())?;
    let stored = store.read()?.signing_keys()?;
    let mut public = Vec::new();
    let mut active = None;
    for key in &stored {
        let point = b64_decode(&key.public_key).ok_or_else(|| {
            StartError::Config(format!(
                "signing key {} has an unreadable public key",
                key.kid
            ))
        })?;
        public.push((key.kid.clone(), point));
        if key.active {
            match unseal(&master, key) {
                Some(pkcs8) => active = Some((key.kid.clone(), pkcs8)),
                None => tracing::warn!(
                    kid = %key.kid,
                    "the active signing key cannot be unsealed with this data directory's master key; generating a new one"
                ),
            }
        }
    }
    let (kid, pkcs8) = match active {
        Some(found) => found,
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
            };
            store.write(|tx| {
                for mut old in stored.iter().filter(|k| k.active).cloned() {
                    old.active = false;
                    tx.put_signing_key(&old)?;
                }
                tx.put_signing_key(&record)
            })?;
            (kid, generated.pkcs8)
        }
    };
    jwt::KeySet::new(
        kid,
        &pkcs8,
        public,
        config.issuer.clone(),
        config.audience.clone(),
    )
    .map_err(StartError::Config)
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

fn unseal(master: &[u8; 32], record: &SigningKey) -> Option<Vec<u8>> {
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
