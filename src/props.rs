//! Property tests (issue 14) of the code that reads what a client sends:
//! the JWT verifier, the JSON body, form and percent decoders, the
//! `X-Forwarded-For` parser, identifier normalisation and the console's
//! file lookup (the router's own property is beside it, in
//! `api::tests`). Each runs a few hundred cases on the stable toolchain, so
//! the whole set takes seconds; a failure prints the shrunk input.
//!
//! Why no `cargo fuzz` target: cargo-fuzz needs nightly (libFuzzer's
//! sanitizer flags), and `afl` needs its own compiler wrapper and a
//! long-running fuzzer process; neither is a test that `cargo test` can run
//! on stable in seconds. `bolero` would run these same properties as a
//! fuzz target under cargo-bolero, but adds nothing to them under
//! `cargo test`; proptest's shrinking gives better failures here.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

use crate::domain::accounts::{LoginId, MAX_IDENTIFIER_BYTES, Username, username_key};
use crate::domain::jwt::{AccessClaims, KeySet, generate};
use crate::server::context::TrustedProxies;

/// Few enough cases that the set runs in seconds; no file of past failures
/// is written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NOW: i64 = 1_800_000_000;

fn keyset() -> KeySet {
    let k = generate().expect("key");
    KeySet::new(
        "k1".into(),
        &k.pkcs8,
        vec![],
        "iss".into(),
        "aud".into(),
        900,
    )
    .expect("keyset")
}

/// Claims the verifier must accept at [`NOW`]: any subject, ids, roles
/// and tenant, any issue time within the leeway and a lifetime within an
/// access token's.
fn valid_claims() -> impl Strategy<Value = AccessClaims> {
    (
        any::<String>(),
        "[a-z0-9-]{0,40}",
        proptest::collection::vec(any::<String>(), 0..4),
        proptest::option::of(any::<String>()),
        -20i64..20,
        1i64..900,
    )
        .prop_map(|(sub, jti, roles, tenant, skew, life)| AccessClaims {
            iss: "iss".into(),
            sub,
            aud: "aud".into(),
            iat: NOW + skew,
            nbf: NOW + skew,
            exp: NOW + skew + life,
            jti: jti.clone(),
            sid: jti,
            role: roles.first().cloned().unwrap_or_default(),
            roles,
            reseller_id: tenant.clone(),
            merchant_id: tenant,
        })
}

#[test]
fn jwt_arbitrary_input_is_refused_without_panic() {
    let keys = keyset();
    let real = keys.sign(&claims_at(NOW)).expect("sign");
    let parts: Vec<String> = real.split('.').map(str::to_string).collect();
    let part = prop_oneof![
        Just(parts[0].clone()),
        Just(parts[1].clone()),
        Just(parts[2].clone()),
        "[A-Za-z0-9_-]{0,120}",
        any::<String>(),
    ];
    let token = prop_oneof![
        any::<String>(),
        proptest::collection::vec(part, 0..5).prop_map(|p| p.join(".")),
    ];
    proptest!(config(512), |(token in token)| {
        prop_assert!(token == real || keys.verify(&token, NOW).is_err());
    });
}

fn claims_at(now: i64) -> AccessClaims {
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

#[test]
fn jwt_signed_claims_round_trip_and_every_single_byte_change_is_refused() {
    let keys = keyset();
    proptest!(config(96), |(claims in valid_claims(), at in any::<prop::sample::Index>(), byte in 0x21u8..0x7f)| {
        let token = keys.sign(&claims).expect("sign");
        let verified = keys.verify(&token, NOW).ok();
        prop_assert_eq!(verified.as_ref(), Some(&claims));
        let mut changed = token.clone().into_bytes();
        let i = at.index(changed.len());
        prop_assume!(changed[i] != byte);
        changed[i] = byte;
        let changed = String::from_utf8(changed).expect("ASCII");
        prop_assert!(keys.verify(&changed, NOW).is_err(), "{} accepted", changed);
    });
}

/// A body as a handler declares one.
#[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Body {
    /// A required string.
    name: String,
    /// An optional number.
    count: Option<u64>,
    /// A required list.
    tags: Vec<String>,
}

fn req(content_type: &str, body: Vec<u8>, query: &str) -> crate::api::http::Req {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    let peer = "127.0.0.1:1".parse().expect("addr");
    crate::api::http::Req {
        uri: format!("/x{query}").parse().unwrap_or_default(),
        headers,
        body: body.into(),
        params: Vec::new(),
        ctx: crate::server::RequestContext::of_peer(peer, false),
    }
}

#[test]
fn json_bodies_decode_without_panic_and_round_trip() {
    use crate::api::http::{BodyError, json_body};
    proptest!(config(512), |(bytes in any::<Vec<u8>>(), ct in prop_oneof![Just("application/json".to_string()), Just("text/plain".to_string()), any::<String>()])| {
        let _ = json_body::<Body>(&req(&ct, bytes, ""));
    });
    proptest!(config(256), |(name in any::<String>(), count in any::<Option<u64>>(), tags in proptest::collection::vec(any::<String>(), 0..5))| {
        let body = Body { name, count, tags };
        let bytes = serde_json::to_vec(&body).expect("json");
        prop_assert_eq!(json_body::<Body>(&req("application/json", bytes.clone(), "")), Ok(body));
        // The same object with its first field given again is malformed.
        let mut twice = b"{\"tags\":[],".to_vec();
        twice.extend_from_slice(&bytes[1..]);
        prop_assert_eq!(json_body::<Body>(&req("application/json", twice, "")), Err(BodyError::NotJson));
    });
}

#[test]
fn forms_and_query_strings_round_trip_and_never_replace_bad_bytes() {
    use crate::api::http::form_pairs;
    let pair = (any::<String>(), any::<String>());
    proptest!(config(256), |(pairs in proptest::collection::vec(pair, 0..6))| {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        prop_assert_eq!(form_pairs(encoded.as_bytes()), Some(pairs.clone()));
        let r = req("application/x-www-form-urlencoded", Vec::new(), &format!("?{encoded}"));
        prop_assert!(r.query_is_utf8());
        if let Some((name, value)) = pairs.first() {
            // The first pair of a name is the one a query lookup finds.
            prop_assert_eq!(r.query(name), Some(value.clone()));
        }
    });
    // Arbitrary bytes, escaped or raw: never a panic, and a U+FFFD in the
    // answer only where the input itself spelled one in UTF-8.
    let input = proptest::collection::vec(
        prop_oneof![
            any::<u8>(),
            Just(b'%'),
            Just(b'+'),
            Just(b'&'),
            Just(b'='),
            prop::sample::select(b"0123456789ABCDEFabcdef".to_vec()),
        ],
        0..40,
    );
    proptest!(config(1024), |(input in input)| {
        let decoded = percent_encoding::percent_decode(&input).collect::<Vec<u8>>();
        let spelled = String::from_utf8(decoded.clone())
            .map(|s| s.matches('\u{FFFD}').count())
            .ok();
        match form_pairs(&input) {
            Some(pairs) => {
                let replaced: usize = pairs
                    .iter()
                    .map(|(k, v)| k.matches('\u{FFFD}').count() + v.matches('\u{FFFD}').count())
                    .sum();
                prop_assert_eq!(Some(replaced), spelled);
            }
            None => prop_assert!(spelled.is_none()),
        }
    });
}

/// IPv4-mapped IPv6 addresses are their IPv4 address to the parser.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// An address as a proxy may write it into `X-Forwarded-For`.
fn written(ip: IpAddr, form: u8, port: u16) -> String {
    match (ip, form % 3) {
        (IpAddr::V4(v4), 1) => format!("{v4}:{port}"),
        (IpAddr::V6(v6), 1) => format!("[{v6}]:{port}"),
        (IpAddr::V6(v6), 2) => format!("[{v6}]"),
        (ip, _) => ip.to_string(),
    }
}

fn headers_with(values: &[String]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.append("x-forwarded-for", v);
        }
    }
    headers
}

#[test]
fn x_forwarded_for_names_the_right_most_untrusted_hop() {
    let proxies =
        TrustedProxies::parse(&["10.0.0.0/8".into(), "fd00::/8".into()]).expect("proxies");
    let trusted_peer: IpAddr = "10.1.2.3".parse().expect("ip");
    let anything = proptest::collection::vec(any::<String>(), 0..4);
    proptest!(config(512), |(values in anything, peer in any::<IpAddr>())| {
        let headers = headers_with(&values);
        // An untrusted peer is the client, whatever it says.
        if !proxies.trusts(peer) {
            prop_assert_eq!(proxies.client_ip(peer, &headers), Ok(canonical(peer)));
        }
        // A trusted one: a client named in the header, or a refusal;
        // never the proxy itself unless the header names it.
        if let Ok(ip) = proxies.client_ip(trusted_peer, &headers) {
            prop_assert!(ip != trusted_peer || values.iter().any(|v| v.contains("10.1.2.3")));
        }
    });
    let hop = (any::<IpAddr>(), any::<u8>(), any::<u16>());
    let chain = proptest::collection::vec((any::<u8>(), any::<u16>(), any::<u8>(), 0u8..255), 0..4);
    proptest!(config(512), |(client in hop, chain in chain, split in any::<bool>())| {
        let (ip, form, port) = client;
        prop_assume!(!proxies.trusts(ip));
        let mut hops = vec![written(ip, form, port)];
        for (f, p, a, b) in chain {
            let proxy: IpAddr = if f % 2 == 0 {
                format!("10.{a}.{b}.1").parse().expect("v4")
            } else {
                format!("fd00::{a:x}:{b:x}").parse().expect("v6")
            };
            hops.push(written(proxy, f, p));
        }
        let values = if split { hops.clone() } else { vec![hops.join(", ")] };
        let got = proxies.client_ip(trusted_peer, &headers_with(&values));
        prop_assert_eq!(got, Ok(canonical(ip)), "{:?}", values);
    });
}

/// A string in which Latin letters become fullwidth forms.
fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            c => c,
        })
        .collect()
}

#[test]
fn username_keys_are_stable_and_equal_exactly_when_they_should() {
    proptest!(config(1024), |(s in any::<String>())| {
        let key = username_key(&s);
        // Idempotent, and blind to the normalisation form it was given.
        prop_assert_eq!(username_key(&key), key.clone());
        prop_assert_eq!(username_key(&s.nfd().collect::<String>()), key.clone());
        prop_assert_eq!(username_key(&s.nfc().collect::<String>()), key.clone());
        // A username's display form parses to itself.
        if let Ok(u) = Username::parse(&s) {
            prop_assert_eq!(Username::parse(u.as_str()).ok(), Some(u.clone()));
            prop_assert_eq!(username_key(u.as_str()), key.clone());
        }
        // Over the byte bound: refused, whatever it would normalise to.
        if s.len() > MAX_IDENTIFIER_BYTES {
            prop_assert!(LoginId::parse(&s, "username").is_err());
            prop_assert!(Username::parse(&s).is_err());
        }
    });
    // Among ASCII names, keys are equal exactly when the names are equal
    // but for case; a fullwidth spelling is the same name; a Cyrillic
    // look-alike letter makes another.
    let name = "[A-Za-z0-9._+-]{1,16}";
    proptest!(config(512), |(a in name, b in name)| {
        prop_assert_eq!(username_key(&a) == username_key(&b), a.eq_ignore_ascii_case(&b));
        prop_assert_eq!(username_key(&fullwidth(&a)), username_key(&a));
        let lookalike = a.replacen('a', "\u{0430}", 1).replacen('o', "\u{043E}", 1);
        if lookalike != a {
            prop_assert_ne!(username_key(&lookalike), username_key(&a));
            prop_assert!(Username::parse(&lookalike).is_err());
        }
    });
}

#[test]
fn the_console_serves_nothing_outside_admin() {
    let catalogue = crate::console::Catalogue::build().expect("catalogue");
    let served: Vec<String> = catalogue.paths().map(str::to_string).collect();
    let segment = prop_oneof![
        Just("admin".to_string()),
        Just("assets".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("index.html".to_string()),
        prop::sample::select(served.clone()).prop_map(|p| p.trim_start_matches('/').to_string()),
        "[a-z0-9.%\\\\]{0,10}",
        any::<String>(),
    ];
    let path = proptest::collection::vec(segment, 0..6).prop_map(|s| format!("/{}", s.join("/")));
    proptest!(config(2000), |(path in path)| {
        if catalogue.get(&path).is_some() {
            prop_assert!(crate::console::owns(&path), "{}", path);
            prop_assert!(path == "/admin" || path.starts_with("/admin/"), "{}", path);
            prop_assert!(!path.contains("..") && !path.contains('%') && !path.contains('\\'), "{}", path);
            prop_assert!(served.contains(&path), "{}", path);
        }
    });
}
