//! A narrow ES256 JWT signer and verifier on `ring`.
//!
//! Only what latchkey issues is accepted: header `{"alg":"ES256",
//! "typ":"at+jwt","kid":...}` with no other members, a `kid` from our own key
//! set, and exactly the claims of [`AccessClaims`]. The algorithm is bound to
//! the key, never read from the token, so `none`, HS256 with the public key
//! as secret, and every other algorithm confusion are refused by
//! construction.
//!
//! Two more rules close what ECDSA and key rotation leave open. A signature
//! is accepted only in its low-S form (`s <= n/2`), and the signer only
//! emits that form, so a token has exactly one valid string. A key that no
//! longer signs verifies only until the last token it could have signed has
//! expired, and a token whose lifetime (`exp - iat`) is longer than an
//! access token's plus the leeway is refused whatever key signed it, so a
//! leaked old key cannot mint tokens that outlive its retirement.

use std::collections::HashMap;

use arc_swap::ArcSwap;

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

use super::secrets::{b64, b64_decode};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 30;
/// The `typ` header of access tokens (RFC 9068). Other kinds of credential
/// are not JWTs at all, so none can pass as an access token.
pub const ACCESS_TYP: &str = "at+jwt";
const ALG: &str = "ES256";

/// The order n of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// floor(n / 2). For every valid `s` above this, `n - s` is at or below it
/// and makes an equally valid signature: the one of the pair we accept.
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];
/// Length of a fixed-width ES256 signature, `r || s`.
const SIG_LEN: usize = 64;

/// The claims of an access token, all required unless optional here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    pub iss: String,
    /// Account uuid.
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// Session uuid: revocation is checked against it.
    pub sid: String,
    /// The role this token acts as.
    pub role: String,
    /// Every role the token carries (the chosen one only, for a token
    /// issued for one role).
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// Why a token was refused. The API maps every variant to the same 401; the
/// variants exist for tests and for debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("token malformed")]
    Malformed,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("wrong issuer or audience")]
    WrongIssuerOrAudience,
    #[error("signed by a retired key past its last token's expiry")]
    RetiredKey,
    #[error("lifetime longer than an access token's")]
    Lifetime,
}

/// One verification key.
struct PublicKey {
    /// Uncompressed P-256 point.
    point: Vec<u8>,
    /// Unix seconds from which the key no longer verifies and is no longer
    /// published: for a retired key, its retirement plus the longest a
    /// token it signed could stay valid; `i64::MAX` for the signing key.
    until: i64,
}

/// A key that once signed and no longer does.
pub struct RetiredKey {
    /// Its key id.
    pub kid: String,
    /// Uncompressed P-256 point.
    pub point: Vec<u8>,
    /// Unix seconds from which it no longer verifies.
    pub verify_until: i64,
}

/// The signing key and every key tokens may be verified with.
pub struct KeySet {
    /// The signer and the verifiers, replaced whole by a rotation, so a
    /// request sees either the keys before it or the keys after it.
    current: ArcSwap<Keys>,
    /// Makes rotations one at a time, so the key that signs in memory is
    /// the one the store last recorded as active (see `signing::rotate`).
    pub(crate) rotation: tokio::sync::Mutex<()>,
    /// Expected `iss`.
    issuer: String,
    /// Expected `aud`.
    audience: String,
    /// The longest `exp - iat` accepted: the access lifetime plus leeway.
    max_lifetime: i64,
    /// ECDSA verifications run since start, counted where they run, so
    /// tests can prove the verified-token cache spares them.
    verifications: std::sync::atomic::AtomicU64,
}

/// What signs and verifies at one moment.
struct Keys {
    /// Key id and key pair that sign new tokens.
    signer: (String, EcdsaKeyPair),
    /// Every published key by id, the signer's included.
    verifiers: HashMap<String, PublicKey>,
}

/// A freshly generated key pair: the PKCS#8 document and public point.
pub struct GeneratedKey {
    pub pkcs8: Vec<u8>,
    pub public_point: Vec<u8>,
}

/// Generates a new P-256 key pair.
pub fn generate() -> Result<GeneratedKey, String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "key generation failed".to_string())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| "generated key unusable".to_string())?;
    Ok(GeneratedKey {
        public_point: pair.public_key().as_ref().to_vec(),
        pkcs8: pkcs8.as_ref().to_vec(),
    })
}

impl KeySet {
    /// Builds the set from the active key's PKCS#8 and the retired keys
    /// that may still verify. `access_ttl` bounds every token's lifetime.
    pub fn new(
        signer_kid: String,
        signer_pkcs8: &[u8],
        retired: Vec<RetiredKey>,
        issuer: String,
        audience: String,
        access_ttl: i64,
    ) -> Result<KeySet, String> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, signer_pkcs8, &rng)
            .map_err(|_| "signing key unreadable".to_string())?;
        let mut verifiers = HashMap::new();
        for key in retired {
            if key.point.len() != 65 || key.point.first() != Some(&4) {
                return Err(format!(
                    "public key {} is not an uncompressed P-256 point",
                    key.kid
                ));
            }
            verifiers.insert(
                key.kid,
                PublicKey {
                    point: key.point,
                    until: key.verify_until,
                },
            );
        }
        verifiers.insert(
            signer_kid.clone(),
            PublicKey {
                point: pair.public_key().as_ref().to_vec(),
                until: i64::MAX,
            },
        );
        Ok(KeySet {
            current: ArcSwap::from_pointee(Keys {
                signer: (signer_kid, pair),
                verifiers,
            }),
            rotation: tokio::sync::Mutex::new(()),
            issuer,
            audience,
            max_lifetime: access_ttl.saturating_add(LEEWAY_SECS),
            verifications: Default::default(),
        })
    }

    /// The JWKS document (`{"keys":[...]}`) at time `now`: the keys that
    /// still verify then.
    pub fn jwks(&self, now: i64) -> String {
        render_jwks(&self.current.load().verifiers, now)
    }

    /// Makes `kid` (its PKCS#8 document) the signing key. The key that
    /// signed until now keeps verifying, and stays published, until
    /// `retired_until`; keys already past their own verify-until are
    /// dropped. Tokens in flight keep verifying throughout: the swap is
    /// of the whole set at once.
    pub fn rotate(
        &self,
        kid: String,
        pkcs8: &[u8],
        retired_until: i64,
        now: i64,
    ) -> Result<(), String> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| "signing key unreadable".to_string())?;
        let old = self.current.load();
        let mut verifiers: HashMap<String, PublicKey> = old
            .verifiers
            .iter()
            .filter(|(_, key)| now < key.until)
            .map(|(k, key)| {
                (
                    k.clone(),
                    PublicKey {
                        point: key.point.clone(),
                        until: if *k == old.signer.0 {
                            retired_until
                        } else {
                            key.until
                        },
                    },
                )
            })
            .collect();
        verifiers.insert(
            kid.clone(),
            PublicKey {
                point: pair.public_key().as_ref().to_vec(),
                until: i64::MAX,
            },
        );
        self.current.store(std::sync::Arc::new(Keys {
            signer: (kid, pair),
            verifiers,
        }));
        Ok(())
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The expected audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, String> {
        let keys = self.current.load();
        let header = Header {
            alg: ALG.into(),
            typ: ACCESS_TYP.into(),
            kid: keys.signer.0.clone(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut token = format!("{}.{}", b64(&header), b64(&claims));
        let sig = keys
            .signer
            .1
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|_| "signing failed".to_string())?;
        let sig =
            low_s(sig.as_ref()).ok_or_else(|| "signature of unexpected length".to_string())?;
        token.push('.');
        token.push_str(&b64(&sig));
        Ok(token)
    }

    /// Verifies signature and claims at time `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        self.verify_keyed(token, now).map(|(claims, _)| claims)
    }

    /// ECDSA verifications run since start.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// [`KeySet::verify`], also telling from when the key that signed the
    /// token stops verifying (Unix seconds), which bounds how long the
    /// verified claims may be remembered.
    pub fn verify_keyed(&self, token: &str, now: i64) -> Result<(AccessClaims, i64), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = b64_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != ALG {
            return Err(TokenError::Algorithm);
        }
        if header.typ != ACCESS_TYP {
            return Err(TokenError::Malformed);
        }
        let keys = self.current.load();
        let key = keys
            .verifiers
            .get(&header.kid)
            .ok_or(TokenError::UnknownKey)?;
        if now >= key.until {
            return Err(TokenError::RetiredKey);
        }
        let sig = b64_decode(s).ok_or(TokenError::Malformed)?;
        // ring accepts both `s` and `n - s`; only the low one is ours.
        if !sig
            .get(32..)
            .is_some_and(|s| sig.len() == SIG_LEN && s <= &P256_HALF_N[..])
        {
            return Err(TokenError::Signature);
        }
        let signed_len = h.len() + 1 + c.len();
        let signed = token.get(..signed_len).ok_or(TokenError::Malformed)?;
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.point)
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| TokenError::Signature)?;
        let claims: AccessClaims = b64_decode(c)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(TokenError::WrongIssuerOrAudience);
        }
        if claims.exp <= now - LEEWAY_SECS {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now + LEEWAY_SECS || claims.iat > now + LEEWAY_SECS {
            return Err(TokenError::NotYetValid);
        }
        if claims
            .exp
            .checked_sub(claims.iat)
            .is_none_or(|lifetime| lifetime > self.max_lifetime)
        {
            return Err(TokenError::Lifetime);
        }
        Ok((claims, key.until))
    }
}

/// The signature with `s` replaced by `n - s` when it is the high one of
/// the pair, so that every token latchkey issues passes its own low-S rule.
/// `None` if the signature is not `r || s` of 32 bytes each.
fn low_s(sig: &[u8]) -> Option<Vec<u8>> {
    if sig.len() != SIG_LEN {
        return None;
    }
    let (r, s) = sig.split_at(32);
    let s: [u8; 32] = s.try_into().ok()?;
    let mut out = r.to_vec();
    if s > P256_HALF_N {
        out.extend_from_slice(&sub_be(&P256_N, &s));
    } else {
        out.extend_from_slice(&s);
    }
    Some(out)
}

/// `a - b` for 256-bit big-endian numbers with `a >= b` (wraps otherwise).
fn sub_be(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0u8;
    for i in (0..32).rev() {
        let (d, o1) = a[i].overflowing_sub(b[i]);
        let (d, o2) = d.overflowing_sub(borrow);
        out[i] = d;
        borrow = u8::from(o1 || o2);
    }
    out
}

fn render_jwks(keys: &HashMap<String, PublicKey>, now: i64) -> String {
    let mut kids: Vec<&String> = keys
        .iter()
        .filter(|(_, key)| now < key.until)
        .map(|(kid, _)| kid)
        .collect();
    kids.sort();
    let keys: Vec<serde_json::Value> = kids
        .into_iter()
        .filter_map(|kid| {
            let point = &keys.get(kid)?.point;
            Some(serde_json::json!({
                "kty": "EC",
                "crv": "P-256",
                "alg": ALG,
                "use": "sig",
                "kid": kid,
                "x": b64(point.get(1..33)?),
                "y": b64(point.get(33..65)?),
            }))
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset() -> KeySet {
        let k = generate().unwrap();
        KeySet::new(
            "k1".into(),
            &k.pkcs8,
            vec![],
            "iss".into(),
            "aud".into(),
            900,
        )
        .unwrap()
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            sub: "s".into(),
            aud: "aud".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: "j".into(),
            sid: "sid".into(),
            role: "admin".into(),
            roles: vec!["admin".into()],
            reseller_id: None,
            merchant_id: None,
        }
    }

    fn forge(header: &str, claims: &AccessClaims, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(&serde_json::to_vec(claims).unwrap()),
            b64(sig)
        )
    }

    #[test]
    fn round_trip_and_rejections() {
        let keys = keyset();
        let now = 1_700_000_000;
        let token = keys.sign(&claims(now)).unwrap();
        assert_eq!(keys.verify(&token, now).unwrap(), claims(now));

        // Expiry and not-before, with leeway.
        assert!(keys.verify(&token, now + 900 + LEEWAY_SECS - 1).is_ok());
        assert_eq!(
            keys.verify(&token, now + 900 + LEEWAY_SECS),
            Err(TokenError::Expired)
        );
        assert_eq!(
            keys.verify(&token, now - LEEWAY_SECS - 1),
            Err(TokenError::NotYetValid)
        );

        // Tampered payload.
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(now);
        c.role = "superuser".into();
        let forged_claims = b64(&serde_json::to_vec(&c).unwrap());
        parts[1] = &forged_claims;
        assert_eq!(
            keys.verify(&parts.join("."), now),
            Err(TokenError::Signature)
        );

        // alg none, HS256, unknown kid, extra header members.
        let forged: [(&str, &[u8], TokenError); 4] = [
            (
                r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#,
                b"",
                TokenError::Algorithm,
            ),
            (
                r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
                b"x",
                TokenError::Algorithm,
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"k2"}"#,
                b"x",
                TokenError::UnknownKey,
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"k1","jku":"http://evil"}"#,
                b"x",
                TokenError::Malformed,
            ),
        ];
        for (header, sig, want) in forged {
            let token = forge(header, &claims(now), sig);
            assert_eq!(keys.verify(&token, now), Err(want), "{header}");
        }

        // Wrong issuer or audience, signed by our own key.
        let mut other = claims(now);
        other.aud = "someone-else".into();
        let t = keys.sign(&other).unwrap();
        assert_eq!(keys.verify(&t, now), Err(TokenError::WrongIssuerOrAudience));

        // Size bound.
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(keys.verify(&big, now), Err(TokenError::TooLarge));

        // A token from another key set with the same kid.
        let stranger = keyset().sign(&claims(now)).unwrap();
        assert_eq!(keys.verify(&stranger, now), Err(TokenError::Signature));
    }

    /// Splits a token into its signed part and its raw signature.
    fn split_sig(token: &str) -> (&str, Vec<u8>) {
        let (signed, sig) = token.rsplit_once('.').unwrap();
        (signed, b64_decode(sig).unwrap())
    }

    fn big(n: u128) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[16..].copy_from_slice(&n.to_be_bytes());
        out
    }

    #[test]
    fn subtraction_on_fixed_arrays() {
        assert_eq!(sub_be(&big(1000), &big(1)), big(999));
        // A borrow that runs through every byte of the low half.
        assert_eq!(sub_be(&big(1 << 64), &big(1)), big((1 << 64) - 1));
        let mut top = [0u8; 32];
        top[0] = 1;
        let mut all_but = [0xffu8; 32];
        all_but[0] = 0;
        assert_eq!(sub_be(&top, &big(1)), all_but);
        assert_eq!(sub_be(&P256_N, &P256_N), [0u8; 32]);
        // n is odd: n - floor(n/2) = floor(n/2) + 1, the smallest high s.
        let mut half_plus_one = P256_HALF_N;
        half_plus_one[31] += 1;
        assert_eq!(sub_be(&P256_N, &P256_HALF_N), half_plus_one);
        assert_eq!(sub_be(&P256_N, &half_plus_one), P256_HALF_N);
    }

    #[test]
    fn the_signer_only_emits_low_s() {
        let keys = keyset();
        let now = 1_700_000_000;
        let mut normalised = 0;
        for i in 0..200 {
            let mut c = claims(now);
            c.jti = format!("j{i}");
            let token = keys.sign(&c).unwrap();
            let (_, sig) = split_sig(&token);
            assert_eq!(sig.len(), SIG_LEN);
            assert!(sig[32..] <= P256_HALF_N[..], "high S emitted");
            assert!(keys.verify(&token, now).is_ok());
            // ring's raw signature is high about half the time; count the
            // ones the signer turned, so the test shows it had work to do.
            let raw = keys
                .current
                .load()
                .signer
                .1
                .sign(&SystemRandom::new(), b"probe")
                .unwrap();
            if raw.as_ref()[32..] > P256_HALF_N[..] {
                normalised += 1;
            }
        }
        assert!(normalised > 0, "ring never produced a high S to normalise");
    }

    #[test]
    fn the_high_s_twin_is_refused() {
        let keys = keyset();
        let now = 1_700_000_000;
        let token = keys.sign(&claims(now)).unwrap();
        let (signed, sig) = split_sig(&token);
        let s: [u8; 32] = sig[32..].try_into().unwrap();
        let mut twin = sig[..32].to_vec();
        twin.extend_from_slice(&sub_be(&P256_N, &s));
        let twin = format!("{signed}.{}", b64(&twin));
        // The twin is a mathematically valid signature: ring takes it.
        let (_, twin_sig) = split_sig(&twin);
        let point = keys.current.load().signer.1.public_key().as_ref().to_vec();
        assert!(
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .verify(signed.as_bytes(), &twin_sig)
                .is_ok()
        );
        assert_eq!(keys.verify(&twin, now), Err(TokenError::Signature));
        assert!(keys.verify(&token, now).is_ok());
    }

    #[test]
    fn a_lifetime_longer_than_an_access_token_is_refused() {
        let keys = keyset();
        let now = 1_700_000_000;
        let mut c = claims(now);
        c.exp = now + 900 + LEEWAY_SECS;
        assert!(keys.verify(&keys.sign(&c).unwrap(), now).is_ok());
        c.exp += 1;
        assert_eq!(
            keys.verify(&keys.sign(&c).unwrap(), now),
            Err(TokenError::Lifetime)
        );
        // Ten years out, and an iat so far back the difference overflows.
        c.exp = now + 10 * 365 * 24 * 3600;
        assert_eq!(
            keys.verify(&keys.sign(&c).unwrap(), now),
            Err(TokenError::Lifetime)
        );
        c.exp = i64::MAX;
        c.iat = i64::MIN;
        assert_eq!(
            keys.verify(&keys.sign(&c).unwrap(), now),
            Err(TokenError::Lifetime)
        );
    }

    #[test]
    fn a_retired_key_verifies_until_its_time_then_leaves_the_jwks() {
        let old = keyset();
        let now = 1_700_000_000;
        let token = old.sign(&claims(now)).unwrap();
        let current = generate().unwrap();
        let until = now + 900 + LEEWAY_SECS;
        let keys = KeySet::new(
            "k2".into(),
            &current.pkcs8,
            vec![RetiredKey {
                kid: "k1".into(),
                point: old.current.load().signer.1.public_key().as_ref().to_vec(),
                verify_until: until,
            }],
            "iss".into(),
            "aud".into(),
            900,
        )
        .unwrap();
        let kids = |at: i64| -> Vec<String> {
            let jwks: serde_json::Value = serde_json::from_str(&keys.jwks(at)).unwrap();
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(keys.verify(&token, until - 1).is_ok());
        assert_eq!(kids(until - 1), ["k1", "k2"]);
        // A token the old key signs later, with an honest lifetime, is no
        // better: the key itself has stopped verifying.
        let mut late = claims(until);
        late.jti = "late".into();
        let late = old.sign(&late).unwrap();
        assert_eq!(keys.verify(&late, until), Err(TokenError::RetiredKey));
        assert_eq!(kids(until), ["k2"]);
    }
}
