//! Random secrets, their digests, and constant-time comparison.
//!
//! Every bearer secret latchkey hands out (refresh tokens, opaque tokens, API
//! keys, S2S tokens) has 256 random bits and is stored only as its SHA-256
//! digest. These secrets are not passwords: with 256 bits of entropy a fast
//! digest cannot be brute-forced, so lookups stay cheap.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// Fills `N` bytes from the operating system's CSPRNG.
///
/// The OS generator failing is not something a server can recover from or
/// work around safely (every secret would be weak), so it aborts the process
/// rather than continuing with predictable bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if SystemRandom::new().fill(&mut out).is_err() {
        // Documented abort: continuing would hand out guessable credentials.
        eprintln!("latchkey: the operating system's random number generator failed");
        std::process::abort();
    }
    out
}

/// 256 random bits as 43 characters of unpadded base64url.
pub fn random_token() -> String {
    b64(&random_bytes::<32>())
}

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; `None` for anything else.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// An identifier part made of lowercase letters and digits, `len` long,
/// drawn uniformly (rejection sampling, so no modulo bias).
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes::<32>() {
            // 252 = 7 * 36: values at or above it would bias the alphabet.
            if byte < 252 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(byte % 36)]));
            }
        }
    }
    out
}

/// SHA-256 of a secret, as stored.
pub fn digest(secret: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits() {
        let t = random_token();
        assert_eq!(b64_decode(&t).map(|b| b.len()), Some(32));
        assert_ne!(t, random_token());
    }

    #[test]
    fn ids_use_the_alphabet() {
        let id = random_id(40);
        assert_eq!(id.len(), 40);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
