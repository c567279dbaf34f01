//! Issue 9, items 13 to 16, as an attacker would try them: a signing key
//! that outlives its retirement, a token with an endless lifetime, the
//! high-S twin of a signature, a foreign Microsoft tenant or Google domain
//! taking over an account, and settings that hand out power.

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
pub(crate) fn steal_signing_key(srv: &Server) -> (String, Vec<u8>) {
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
pub(crate) fn forge(pkcs8: &[u8], kid: &str, template: &Value, now: i64, lifetime: i64) -> String {
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

// Item 13.

#[tokio::test]
async fn a_replaced_master_key_retires_the_old_signing_key_after_one_access_lifetime() {
    let mut srv = Server::start().await;
    let before = srv.token_of(ADMIN, ADMIN_PASSWORD).await;
    let template = jwt_claims(&before);
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
    assert_eq!(srv.me_status(&before).await, StatusCode::OK);
    // A forged token with an access token's lifetime verifies while the
    // old key does; one that lives ten years never does.
    let now = srv.clock.now();
    let honest = forge(&old_pkcs8, &old_kid, &template, now, 900);
    assert_eq!(srv.me_status(&honest).await, StatusCode::OK);
    let decade = forge(&old_pkcs8, &old_kid, &template, now, 10 * 365 * 24 * 3600);
    assert_eq!(srv.me_status(&decade).await, StatusCode::UNAUTHORIZED);

    // One second before access lifetime plus leeway after retirement, the
    // old key still verifies a fresh forgery...
    srv.advance(900 + 30 - 1);
    let late = forge(&old_pkcs8, &old_kid, &template, srv.clock.now(), 900);
    assert_eq!(srv.me_status(&late).await, StatusCode::OK);
    assert!(published_kids(&srv).await.contains(&old_kid));
    // ...and from then on nothing it signs is accepted, and it is gone
    // from the JWKS.
    srv.advance(1);
    assert_eq!(srv.clock.now(), retired_at + 900 + 30);
    let later = forge(&old_pkcs8, &old_kid, &template, srv.clock.now(), 900);
    assert_eq!(srv.me_status(&later).await, StatusCode::UNAUTHORIZED);
    assert_eq!(srv.me_status(&late).await, StatusCode::UNAUTHORIZED);
    assert_eq!(published_kids(&srv).await, vec![new_kid.clone()]);
    // The new key signs as before.
    let fresh = srv.admin_token().await;
    assert_eq!(srv.me_status(&fresh).await, StatusCode::OK);

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
    let template = jwt_claims(
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
    assert_eq!(srv.me_status(&forged).await, StatusCode::UNAUTHORIZED);
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
        let token = srv.token_of(ADMIN, ADMIN_PASSWORD).await;
        assert_eq!(srv.me_status(&token).await, StatusCode::OK);
        let twin = high_s_twin(&token);
        assert_ne!(twin, token);
        let r = srv.me(&twin).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
}

// Item 15.

use crate::external::{
    Answer, GOOGLE_TOKEN, MS_APP, MS_TENANT, StandIn, assert_refused, google, google_info,
    graph_me, microsoft, ms_token_in,
};

/// The `external_linked` audit events, newest first.
async fn link_events(srv: &Server) -> Vec<Value> {
    let admin = srv.admin_token().await;
    srv.items(&admin, "/api/v1/admin/audit?event=external_linked")
        .await
}

#[tokio::test]
async fn a_foreign_entra_tenant_cannot_take_over_an_account_by_its_mail() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    // The attacker's tenant has a user whose mail says the admin's
    // address, and a token for our app id.
    provider.answer(Answer::Json(200, graph_me(ADMIN_EMAIL, "attacker-oid")));
    let foreign = ms_token_in(MS_APP, "66666666-6666-6666-6666-666666666666");
    assert_refused(&microsoft(&srv, ADMIN_EMAIL, &foreign).await);
    // A token without a tenant claim is no better.
    let mut no_tid = ms_token_in(MS_APP, MS_TENANT);
    no_tid = {
        let parts: Vec<&str> = no_tid.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&unb64(parts[1])).expect("claims");
        claims.as_object_mut().expect("object").remove("tid");
        format!(
            "{}.{}.{}",
            parts[0],
            b64(claims.to_string().as_bytes()),
            parts[2]
        )
    };
    assert_refused(&microsoft(&srv, ADMIN_EMAIL, &no_tid).await);
    // Refused before Graph was asked, and nothing was linked.
    assert!(provider.seen().is_empty(), "{:?}", provider.seen());
    assert!(link_events(&srv).await.is_empty());

    // The real admin, from the allowed tenant (spelled in capitals, as
    // some tokens do), signs in and is linked to its own id, which proves
    // the attacker's id was never linked to the account.
    provider.answer(Answer::Json(200, graph_me(ADMIN_EMAIL, "admin-oid")));
    let r = microsoft(
        &srv,
        ADMIN_EMAIL,
        &ms_token_in(MS_APP, &MS_TENANT.to_uppercase()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = link_events(&srv).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["detail"],
        format!("microsoft: id admin-oid, tenant {MS_TENANT}")
    );
    assert_eq!(events[0]["actor_name"], ADMIN, "{:?}", events[0]);
    // And the attacker's id, even from the allowed tenant now, is refused:
    // the link decides.
    provider.answer(Answer::Json(200, graph_me(ADMIN_EMAIL, "attacker-oid")));
    assert_refused(&microsoft(&srv, ADMIN_EMAIL, &ms_token_in(MS_APP, MS_TENANT)).await);
    assert_eq!(link_events(&srv).await.len(), 1);
}

#[tokio::test]
async fn google_hosted_domains_admit_only_their_accounts_when_set() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(latchkey::config::Layer {
        google_hosted_domains: Some(vec!["Example.com".into()]),
        ..provider.layer()
    })
    .await;
    // A consumer account (no hd) and another Workspace domain are refused,
    // whatever email they claim.
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "consumer-sub")));
    assert_refused(&google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await);
    let mut other = google_info(ADMIN_EMAIL, "other-sub");
    other["hd"] = json!("evil.example");
    provider.answer(Answer::Json(200, other));
    assert_refused(&google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await);
    assert!(link_events(&srv).await.is_empty());

    let mut ours = google_info(ADMIN_EMAIL, "workspace-sub");
    ours["hd"] = json!("example.com");
    provider.answer(Answer::Json(200, ours));
    let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = link_events(&srv).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["detail"],
        "google: id workspace-sub, hosted domain example.com"
    );

    // Without the setting, a consumer account is admitted as before.
    let open = Server::start_with(provider.layer()).await;
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "consumer-sub")));
    let r = google(&open, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        link_events(&open).await[0]["detail"],
        "google: id consumer-sub, hosted domain none"
    );
}

#[test]
fn microsoft_sign_in_cannot_start_without_tenant_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = serve_refused(
        &dir.path().join("data"),
        &[("LATCHKEY_MICROSOFT_CLIENT_IDS", MS_APP)],
    );
    assert!(
        code.is_some_and(|c| c != 0),
        "started or was killed ({code:?}): {out}"
    );
    assert!(out.contains("LATCHKEY_MICROSOFT_TENANT_IDS"), "{out}");
    assert!(!out.contains("listening"), "{out}");
}

// Item 16.

#[tokio::test]
async fn settings_that_grant_power_or_name_nothing_stop_the_start() {
    // A store with the tenants of the World, so that only the setting
    // under test is wrong.
    let mut srv = Server::start().await;
    World::build(&srv).await;
    srv.stop().await;
    let data = srv.data_dir();
    let cases: [(&str, &[(&str, &str)]); 8] = [
        (
            "LATCHKEY_EXTERNAL_DEFAULT_ROLE",
            &[
                ("LATCHKEY_EXTERNAL_AUTO_CREATE", "true"),
                ("LATCHKEY_EXTERNAL_DEFAULT_ROLE", "admin"),
            ],
        ),
        (
            "LATCHKEY_EXTERNAL_DEFAULT_ROLE",
            &[("LATCHKEY_EXTERNAL_DEFAULT_ROLE", "Reseller")],
        ),
        (
            "LATCHKEY_EXTERNAL_DEFAULT_ROLE",
            &[
                ("LATCHKEY_EXTERNAL_AUTO_CREATE", "true"),
                ("LATCHKEY_EXTERNAL_DEFAULT_ROLE", "no-such-role"),
            ],
        ),
        (
            "LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID",
            &[
                ("LATCHKEY_EXTERNAL_AUTO_CREATE", "true"),
                ("LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID", "res_404"),
            ],
        ),
        (
            "LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID",
            &[
                ("LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID", "res_1"),
                ("LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID", "mer_404"),
            ],
        ),
        (
            "LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID",
            &[
                ("LATCHKEY_EXTERNAL_AUTO_CREATE", "true"),
                ("LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID", "res_1"),
                ("LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID", "mer_2a"),
            ],
        ),
        (
            "LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID",
            &[("LATCHKEY_EXTERNAL_DEFAULT_ROLE", "merchant")],
        ),
        (
            "LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID",
            &[("LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID", "mer_1a")],
        ),
    ];
    for (setting, env) in cases {
        let (code, out) = serve_refused(&data, env);
        assert!(
            code.is_some_and(|c| c != 0),
            "{env:?} started or was killed ({code:?}): {out}"
        );
        assert!(out.contains(setting), "{env:?}: {out}");
        assert!(!out.contains("listening"), "{env:?}: {out}");
    }
    // The same store starts with defaults that exist and grant nothing.
    let mut ok = Proc::spawn(
        &[],
        &[
            ("LATCHKEY_DATA_DIR", data.to_str().expect("path")),
            ("LATCHKEY_LISTEN", "127.0.0.1:0"),
            ("LATCHKEY_EXTERNAL_AUTO_CREATE", "true"),
            ("LATCHKEY_EXTERNAL_DEFAULT_ROLE", "merchant"),
            ("LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID", "res_1"),
            ("LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID", "mer_1a"),
        ],
    );
    let r = ok.at().get("/healthz").send().await;
    assert_eq!(r.status, StatusCode::OK);
    ok.signal(libc::SIGTERM);
    let status = ok.wait();
    assert!(status.success(), "{status:?}: {}", ok.stderr());
}
