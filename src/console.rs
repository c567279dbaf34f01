//! The browser console's files, in the binary and served under `/admin/`.
//!
//! `web/` (HTML, CSS, JavaScript modules) and `assets/` (icons) are
//! fingerprinted and compressed when the binary is built (`build.rs`, by
//! the rules in `console_build.rs`): every file's bytes, its gzip and
//! brotli copies (when they are smaller) and its SHA-256 are read-only data
//! in the binary, so nothing is read from disk, hashed or compressed at run
//! time, and a request only looks up and hands out a `Bytes` over that
//! data. The copy a request gets is the one its `Accept-Encoding` weighs
//! highest (brotli on a tie, being smaller), or the file as it is.
//!
//! Fingerprinting: every file other than `index.html` is served only at
//! `/admin/assets/<stem>.<hash>.<ext>`, where `<hash>` is the first 16 hex
//! digits of the SHA-256 of its bytes, with `Cache-Control: public,
//! max-age=31536000, immutable`. `index.html` names them as
//! `{{asset <file name>}}`, which the build replaces with those URLs;
//! it is served at `/admin` and `/admin/` (and `/admin/index.html`) with
//! `no-cache`, so a new binary's files are picked up at the next load.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

/// The build's rules, compiled here only for their tests.
#[cfg(test)]
#[path = "console_build.rs"]
mod plan;

/// Where the console lives.
pub const PREFIX: &str = "/admin";

/// The policy every console response carries: only our own files run,
/// nothing may frame the console, and forms post only to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'";

/// Cache-Control of a fingerprinted file: its URL changes with its bytes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Cache-Control of the HTML: always revalidated (cheap, with its ETag).
const NO_CACHE: &str = "no-cache";

/// Longest `If-None-Match` or `Accept-Encoding` header looked at; a
/// longer one is treated as absent rather than parsed.
const MAX_HEADER: usize = 4096;

/// One file as the build wrote it into the binary.
struct Built {
    /// The URLs it is served at.
    paths: &'static [&'static str],
    /// The bytes as they are.
    identity: &'static [u8],
    /// The gzip copy, when the type compresses and it is smaller.
    gzip: Option<&'static [u8]>,
    /// The brotli copy (quality 11), when the type compresses and it is
    /// smaller.
    brotli: Option<&'static [u8]>,
    /// Content-Type.
    content_type: &'static str,
    /// Hex SHA-256 of `identity`.
    hash: &'static str,
    /// Whether the URL is fingerprinted (immutable) or the page (no-cache).
    immutable: bool,
}

/// Every file of the console, as `build.rs` made them.
static BUILT: &[Built] = include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// One file as it is served: handles over the binary's read-only data.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The bytes as they are.
    pub identity: Bytes,
    /// The gzip-compressed bytes, when the type compresses and they are
    /// smaller.
    pub gzip: Option<Bytes>,
    /// The brotli-compressed bytes, when the type compresses and they are
    /// smaller.
    pub brotli: Option<Bytes>,
    /// Content-Type.
    pub content_type: &'static str,
    /// Hex SHA-256 of `identity`.
    pub hash: &'static str,
    /// Whether the URL is fingerprinted (immutable) or the HTML (no-cache).
    pub immutable: bool,
}

/// Every console URL and its file.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Path (as requested, e.g. `/admin/assets/app.0123abcd.js`) -> file.
    by_path: HashMap<&'static str, Asset>,
}

impl Catalogue {
    /// The files the build made, by URL: no copy, no hashing and no
    /// compression, only a map of handles. It never fails: what could be
    /// wrong with the files (a page naming a file that does not exist, a
    /// cycle of imports, a file of an unknown kind) fails the build
    /// instead. The `Result` stays so callers keep refusing to start on a
    /// broken console should a check ever move back here.
    pub fn build() -> Result<Catalogue, String> {
        let mut by_path = HashMap::new();
        for file in BUILT {
            let asset = Asset {
                identity: Bytes::from_static(file.identity),
                gzip: file.gzip.map(Bytes::from_static),
                brotli: file.brotli.map(Bytes::from_static),
                content_type: file.content_type,
                hash: file.hash,
                immutable: file.immutable,
            };
            for path in file.paths {
                if by_path.insert(*path, asset.clone()).is_some() {
                    return Err(format!("console: {path} is served twice"));
                }
            }
        }
        Ok(Catalogue { by_path })
    }

    /// The file a path names. Paths that could step out of `/admin/` (dot
    /// segments, percent escapes, backslashes) are never looked up, so no
    /// decoding anywhere can turn them into a file.
    pub fn get(&self, path: &str) -> Option<&Asset> {
        if path.contains("..") || path.contains('%') || path.contains('\\') {
            return None;
        }
        self.by_path.get(path)
    }

    /// Every served path, for tests and for the HTML's references.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().copied()
    }
}

/// Whether a path is the console's (and so answered by [`serve`]).
pub fn owns(path: &str) -> bool {
    path == PREFIX || path.starts_with("/admin/")
}

/// The answer to a request for a console path: the file, a 304, a 405 for
/// a method other than GET or HEAD, or a 404 JSON error. Every answer
/// carries the console's security headers.
pub fn serve(
    catalogue: &Catalogue,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response<Bytes> {
    let mut response = if method != Method::GET && method != Method::HEAD {
        let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        match catalogue.get(path) {
            Some(asset) => answer(asset, method, headers),
            None => json_error(StatusCode::NOT_FOUND, "Not found"),
        }
    };
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// A file's answer: the encoding the client takes, or 304 when its ETag
/// matches that encoding's.
fn answer(asset: &Asset, method: &Method, headers: &HeaderMap) -> Response<Bytes> {
    let (body, encoding, etag) = match chosen(asset, headers) {
        Some((z, Coding::Brotli)) => (z.clone(), Some("br"), format!("\"{}-br\"", asset.hash)),
        Some((z, Coding::Gzip)) => (z.clone(), Some("gzip"), format!("\"{}-gz\"", asset.hash)),
        None => (asset.identity.clone(), None, format!("\"{}\"", asset.hash)),
    };
    let fresh = if_none_match(headers, &etag);
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let send_body = !fresh && method != Method::HEAD;
    let mut response = Response::new(if send_body { body } else { Bytes::new() });
    *response.status_mut() = status;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable { IMMUTABLE } else { NO_CACHE }),
    );
    if asset.gzip.is_some() || asset.brotli.is_some() {
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if !fresh {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        if let Some(e) = encoding {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(e));
        }
    }
    response
}

/// A compressed form the catalogue keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
}

/// The compressed copy to send: of those the asset has, the one
/// `Accept-Encoding` weighs highest above zero, brotli on a tie; `None`
/// for the file as it is.
fn chosen<'a>(asset: &'a Asset, headers: &HeaderMap) -> Option<(&'a Bytes, Coding)> {
    let (br, gz) = weights(headers);
    let brotli = asset.brotli.as_ref().filter(|_| br > 0.0);
    let gzip = asset.gzip.as_ref().filter(|_| gz > 0.0);
    match (brotli, gzip) {
        (Some(b), Some(g)) => Some(if gz > br {
            (g, Coding::Gzip)
        } else {
            (b, Coding::Brotli)
        }),
        (Some(b), None) => Some((b, Coding::Brotli)),
        (None, Some(g)) => Some((g, Coding::Gzip)),
        (None, None) => None,
    }
}

/// The weights (`q`, 0 to 1) `Accept-Encoding` gives brotli and gzip
/// (RFC 9110 12.5.3): a coding named takes its own weight (1 without
/// `q`, 0 for a `q` that does not parse), one not named takes `*`'s, and
/// one refused or absent weighs 0.
fn weights(headers: &HeaderMap) -> (f32, f32) {
    let (mut br, mut gzip, mut star) = (None, None, None);
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        if text.len() > MAX_HEADER {
            continue;
        }
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0_f32;
            for p in parts {
                let p = p.trim();
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0);
                }
            }
            match coding.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => star = Some(q),
                _ => {}
            }
        }
    }
    (br.or(star).unwrap_or(0.0), gzip.or(star).unwrap_or(0.0))
}

/// Whether `If-None-Match` names this ETag (weak comparison, as RFC 9110
/// 13.1.2 asks for this header) or is `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(IF_NONE_MATCH).iter().any(|value| {
        let Ok(text) = value.to_str() else {
            return false;
        };
        text.len() <= MAX_HEADER
            && text
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    })
}

/// A JSON error, as the API words its own.
fn json_error(status: StatusCode, message: &str) -> Response<Bytes> {
    crate::api::http::error(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped page names only embedded files, and every reference
    /// became a fingerprinted URL the catalogue serves.
    #[test]
    fn shipped_index_references_resolve() {
        let c = Catalogue::build().expect("catalogue");
        let page = c.get("/admin/").expect("index");
        let html = std::str::from_utf8(&page.identity).expect("utf-8");
        assert!(!html.contains("{{"), "{html}");
        let mut seen = 0;
        for part in html.split('"').filter(|p| p.starts_with(plan::ASSETS)) {
            assert!(c.get(part).is_some_and(|a| a.immutable), "{part}");
            seen += 1;
        }
        assert!(seen >= 3, "{html}");
    }

    /// Every answer hands out the bytes the build wrote into the binary
    /// (the very read-only data, not a copy made at start or per request),
    /// and the shipped files do have compressed copies.
    #[test]
    fn answers_hand_out_the_bytes_compressed_at_build() {
        let c = Catalogue::build().expect("catalogue");
        for (accept, brotli) in [("gzip", false), ("br", true), ("identity", false)] {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static(accept));
            let mut compressed = 0;
            for built in BUILT {
                let kept = match accept {
                    "identity" => Some(built.identity),
                    _ if brotli => built.brotli,
                    _ => built.gzip,
                };
                let Some(z) = kept else { continue };
                for path in built.paths {
                    for _ in 0..2 {
                        let r = serve(&c, &Method::GET, path, &h);
                        assert_eq!(r.body().as_ptr(), z.as_ptr(), "{accept} {path}");
                        assert_eq!(r.body().len(), z.len(), "{accept} {path}");
                    }
                }
                compressed += 1;
            }
            assert!(compressed >= 3, "{accept}: {compressed}");
        }
    }

    /// `gzip;q=0` refuses gzip, `*` takes it, absence refuses it; the
    /// same for brotli; and the higher weight wins, brotli on a tie.
    #[test]
    fn accept_encoding_weights() {
        let weighed = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_str(v).expect("value"));
            weights(&h)
        };
        let with = |v: &str| weighed(v).1 > 0.0;
        assert!(with("gzip"));
        assert!(with("br, gzip;q=0.5"));
        assert!(!with("gzip;q=0"));
        assert!(!with("gzip;q=0, *"));
        assert!(with("*"));
        assert!(!with("br, deflate"));
        assert_eq!(weights(&HeaderMap::new()), (0.0, 0.0));
        assert_eq!(weighed("br;q=0.5, gzip"), (0.5, 1.0));
        assert_eq!(weighed("br;q=0, *"), (0.0, 1.0));
        assert_eq!(weighed("br;q=nonsense, gzip;q=2"), (0.0, 0.0));
        let c = Catalogue::build().expect("catalogue");
        let page = c.get("/admin/").expect("index");
        let pick = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_str(v).expect("value"));
            chosen(page, &h).map(|(_, coding)| coding)
        };
        assert_eq!(pick("gzip, br"), Some(Coding::Brotli));
        assert_eq!(pick("gzip, br;q=0.9"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0, gzip;q=0.1"), Some(Coding::Gzip));
        assert_eq!(pick("deflate"), None);
    }
}
