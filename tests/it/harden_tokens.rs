//! Issue 9, items 13 to 16, as an attacker would try them: a signing key
//! that outlives its retirement, a token with an endless lifetime, the
//! high-S twin of a signature, a foreign Microsoft tenant or Google domain
//! taking over an account, and settings that hand out power.

use base64::Engine;
use http::StatusCode;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use crate::harness::*;

/// The order n of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

/// `a - b` on 256-bit big-endian numbers, `a >= b`.
fn sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0u8;
    for i in (0..32).rev() {
        let (d, o1) = a[i].overflowing_sub(b[i]);
        let (d, o2) = d.overflowing_sub(borrow);
        out[i] = d;
        borrow = u8::from(o1 || o2);
    }
    out
}

/// The same token with its signature's `s` replaced by `n - s`: the other
/// signature ECDSA considers valid for the same bytes.
fn high_s_twin(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').expect("three parts");
    let sig = unb64(sig);
    assert_eq!(sig.len(), 64);
    let mut twin = sig[..32].to_vec();
    twin.extend(sub(&P256_N, &sig[32..]));
    format!("{signed}.{}", b64(&twin))
}

/// A token's claims.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&unb64(payload)).expect("claims")
}

/// The kids the server publishes.
async fn published_kids(srv: &Server) -> Vec<String> {
    let jwks = srv.get("/.well-known/jwks.json").send().await.json();
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// The signing key records of a stopped server's store.
fn stored_keys(srv: &Server) -> Vec<latchkey::store::SigningKey> {
    let store = latchkey::store::Store::open(&srv.data_dir()).expect("store opens");
    store
        .read()
        .expect("read")
        .signing_keys()
        .expect("signing keys")
}

/// What a thief holding the data directory (store and master key) has:
/// the active key's id and private PKCS#8 document, unsealed the way the
/// server does it. The server must be stopped.
fn steal_signing_key(srv: &Server) -> (String, Vec<u8>) {
    let master = std::fs::read(srv.data_dir().join("master.key")).expect("master key");
    let record = stored_keys(srv)
        .into_iter()
        .find(|k| k.active)
        .expect("an active key");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &master).expect("aes key"));
    let sealed = unb64(&record.sealed_private_key);
    let (nonce, sealed) = sealed.split_at(NONCE_LEN);
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).expect("nonce"),
            Aad::from(record.kid.as_bytes()),
            &mut buf,
        )
        .expect("unseal");
    (record.kid, plain.to_vec())
}

/// A token signed with a stolen key: `template`'s claims with a new `jti`,
/// `iat = nbf = now` and `exp = now + lifetime`, in low-S form so only the
/// key's standing decides.
fn forge(pkcs8: &[u8], kid: &str, template: &Value, now: i64, lifetime: i64) -> String {
    let rng = SystemRandom::new();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).expect("pkcs8");
    let mut claims = template.clone();
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + lifetime);
    claims["jti"] = json!(format!("forged{now}{lifetime}"));
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = pair.sign(&rng, signed.as_bytes()).expect("sign");
    let sig = sig.as_ref();
    let mut half = P256_N;
    // floor(n / 2), by halving the big-endian number byte by byte.
    let mut carry = 0u8;
    for b in half.iter_mut() {
        let next = *b & 1;
        *b = (*b >> 1) | (carry << 7);
        carry = next;
    }
    let mut out = sig[..32].to_vec();
    if sig[32..] > half[..] {
        out.extend(sub(&P256_N, &sig[32..]));
    } else {
        out.extend_from_slice(&sig[32..]);
    }
    format!("{signed}.{}", b64(&out))
}

async fn me_status(srv: &Server, token: &str) -> StatusCode {
    srv.get("/api/v1/auth/me").bearer(token).send().await.status
}

// Item 13.

#[tokio::test]
async fn a_replaced_master_key_retires_the_old_signing_key_after_one_access_lifetime() {
    let mut srv = Server::start().await;
    let before = srv.login(ADMIN, ADMIN_PASSWORD).await["token"]
        .as_str()
        .expect("token")
        .to_string();
    let template = claims_of(&before);
    srv.stop().await;
    let (old_kid, old_pkcs8) = steal_signing_key(&srv);
    // The master key is replaced, as after a leak.
    std::fs::write(srv.data_dir().join("master.key"), [7u8; 32]).expect("new master key");
    srv.restart().await;
    let retired_at = srv.clock.now();
    let kids = published_kids(&srv).await;
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old_kid), "the old key is still published");
    let new_kid = kids.iter().find(|k| **k != old_kid).expect("new").clone();

    // A real token issued before the replacement keeps working.
    assert_eq!(me_status(&srv, &before).await, StatusCode::OK);
    // A forged token with an access token's lifetime verifies while the
    // old key does; one that lives ten years never does.
    let now = srv.clock.now();
    let honest = forge(&old_pkcs8, &old_kid, &template, now, 900);
    assert_eq!(me_status(&srv, &honest).await, StatusCode::OK);
    let decade = forge(&old_pkcs8, &old_kid, &template, now, 10 * 365 * 24 * 3600);
    assert_eq!(me_status(&srv, &decade).await, StatusCode::UNAUTHORIZED);

    // One second before access lifetime plus leeway after retirement, the
    // old key still verifies a fresh forgery...
    srv.advance(900 + 30 - 1);
    let late = forge(&old_pkcs8, &old_kid, &template, srv.clock.now(), 900);
    assert_eq!(me_status(&srv, &late).await, StatusCode::OK);
    assert!(published_kids(&srv).await.contains(&old_kid));
    // ...and from then on nothing it signs is accepted, and it is gone
    // from the JWKS.
    srv.advance(1);
    assert_eq!(srv.clock.now(), retired_at + 900 + 30);
    let later = forge(&old_pkcs8, &old_kid, &template, srv.clock.now(), 900);
    assert_eq!(me_status(&srv, &later).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&srv, &late).await, StatusCode::UNAUTHORIZED);
    assert_eq!(published_kids(&srv).await, vec![new_kid.clone()]);
    // The new key signs as before.
    let fresh = srv.admin_token().await;
    assert_eq!(me_status(&srv, &fresh).await, StatusCode::OK);

    // Housekeeping deletes the retired record, sealed private half and all;
    // the retirement time it was judged by was stored when it retired.
    srv.running().housekeeping().await;
    srv.stop().await;
    let left = stored_keys(&srv);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].kid, new_kid);
    assert!(left[0].active);
}

#[tokio::test]
async fn the_retirement_time_is_stored_and_survives_a_restart() {
    let mut srv = Server::start().await;
    let template = claims_of(
        srv.login(ADMIN, ADMIN_PASSWORD).await["token"]
            .as_str()
            .expect("token"),
    );
    srv.stop().await;
    let (old_kid, old_pkcs8) = steal_signing_key(&srv);
    std::fs::write(srv.data_dir().join("master.key"), [9u8; 32]).expect("new master key");
    srv.restart().await;
    let retired_at = srv.clock.now();
    srv.stop().await;
    let old = stored_keys(&srv)
        .into_iter()
        .find(|k| k.kid == old_kid)
        .expect("old key kept");
    assert!(!old.active);
    assert_eq!(old.retired_at, Some(retired_at));

    // Restarting later does not restart the old key's clock.
    srv.advance(600);
    srv.restart().await;
    srv.advance(330);
    let forged = forge(&old_pkcs8, &old_kid, &template, srv.clock.now(), 900);
    assert_eq!(me_status(&srv, &forged).await, StatusCode::UNAUTHORIZED);
    assert!(!published_kids(&srv).await.contains(&old_kid));
    // A start after verify-until deletes the record too.
    srv.restart().await;
    srv.stop().await;
    assert!(stored_keys(&srv).iter().all(|k| k.kid != old_kid));
}

// Item 14.

#[tokio::test]
async fn the_high_s_twin_of_a_real_token_is_refused() {
    let srv = Server::start().await;
    // Several logins, so both halves of ring's signatures are covered: the
    // server normalises each to low S, and the twin is refused every time.
    for _ in 0..8 {
        let token = srv.login(ADMIN, ADMIN_PASSWORD).await["token"]
            .as_str()
            .expect("token")
            .to_string();
        assert_eq!(me_status(&srv, &token).await, StatusCode::OK);
        let twin = high_s_twin(&token);
        assert_ne!(twin, token);
        let r = srv.get("/api/v1/auth/me").bearer(&twin).send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
}
