//! A narrow ES256 JWT signer and verifier on `ring`.
//!
//! Only what latchkey issues is accepted: header `{"alg":"ES256",
//! "typ":"at+jwt","kid":...}` with no other members, a `kid` from our own key
//! set, and exactly the claims of [`AccessClaims`]. The algorithm is bound to
//! the key, never read from the token, so `none`, HS256 with the public key
//! as secret, and every other algorithm confusion are refused by
//! construction.

use std::collections::HashMap;

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
}

/// One verification key.
struct PublicKey {
    /// Uncompressed P-256 point.
    point: Vec<u8>,
}

/// The signing key and every key tokens may be verified with.
pub struct KeySet {
    /// Key id and key pair that sign new tokens.
    signer: (String, EcdsaKeyPair),
    /// Every published key by id, the signer's included.
    verifiers: HashMap<String, PublicKey>,
    /// Expected `iss`.
    issuer: String,
    /// Expected `aud`.
    audience: String,
    /// The JWKS document, rendered once.
    jwks: String,
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
    /// Builds the set from the active key's PKCS#8 and all public keys.
    pub fn new(
        signer_kid: String,
        signer_pkcs8: &[u8],
        public_keys: Vec<(String, Vec<u8>)>,
        issuer: String,
        audience: String,
    ) -> Result<KeySet, String> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, signer_pkcs8, &rng)
            .map_err(|_| "signing key unreadable".to_string())?;
        let mut verifiers = HashMap::new();
        for (kid, point) in public_keys {
            if point.len() != 65 || point.first() != Some(&4) {
                return Err(format!(
                    "public key {kid} is not an uncompressed P-256 point"
                ));
            }
            verifiers.insert(kid, PublicKey { point });
        }
        verifiers.insert(
            signer_kid.clone(),
            PublicKey {
                point: pair.public_key().as_ref().to_vec(),
            },
        );
        let jwks = render_jwks(&verifiers);
        Ok(KeySet {
            signer: (signer_kid, pair),
            verifiers,
            issuer,
            audience,
            jwks,
        })
    }

    /// The JWKS document (`{"keys":[...]}`).
    pub fn jwks(&self) -> &str {
        &self.jwks
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
        let header = Header {
            alg: ALG.into(),
            typ: ACCESS_TYP.into(),
            kid: self.signer.0.clone(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut token = format!("{}.{}", b64(&header), b64(&claims));
        let sig = self
            .signer
            .1
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|_| "signing failed".to_string())?;
        token.push('.');
        token.push_str(&b64(sig.as_ref()));
        Ok(token)
    }

    /// Verifies signature and claims at time `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
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
        let key = self
            .verifiers
            .get(&header.kid)
            .ok_or(TokenError::UnknownKey)?;
        let sig = b64_decode(s).ok_or(TokenError::Malformed)?;
        let signed_len = h.len() + 1 + c.len();
        let signed = token.get(..signed_len).ok_or(TokenError::Malformed)?;
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
        Ok(claims)
    }
}

fn render_jwks(keys: &HashMap<String, PublicKey>) -> String {
    let mut kids: Vec<&String> = keys.keys().collect();
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
        KeySet::new("k1".into(), &k.pkcs8, vec![], "iss".into(), "aud".into()).unwrap()
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
        let none = forge(
            r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#,
            &claims(now),
            b"",
        );
        assert_eq!(keys.verify(&none, now), Err(TokenError::Algorithm));
        let hs = forge(
            r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
            &claims(now),
            b"x",
        );
        assert_eq!(keys.verify(&hs, now), Err(TokenError::Algorithm));
        let kid = forge(
            r#"{"alg":"ES256","typ":"at+jwt","kid":"k2"}"#,
            &claims(now),
            b"x",
        );
        assert_eq!(keys.verify(&kid, now), Err(TokenError::UnknownKey));
        let jku = forge(
            r#"{"alg":"ES256","typ":"at+jwt","kid":"k1","jku":"http://evil"}"#,
            &claims(now),
            b"x",
        );
        assert_eq!(keys.verify(&jku, now), Err(TokenError::Malformed));

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
}
