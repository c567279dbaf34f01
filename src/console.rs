//! The browser console's files, embedded in the binary and served under
//! `/admin/`.
//!
//! `web/` (HTML, CSS, JavaScript modules) and `assets/` (icons) are
//! embedded with rust-embed; its `debug-embed` feature embeds them in debug
//! builds too, so nothing is ever read from disk at run time. At start the
//! [`Catalogue`] is built once: every file gets its content type, a strong
//! ETag (SHA-256 of its bytes) and, when it is worth it, a brotli and a
//! gzip copy, so a request only looks up and copies a `Bytes` handle. The
//! copy a request gets is the one its `Accept-Encoding` weighs highest
//! (brotli on a tie, being smaller), or the file as it is.
//!
//! Fingerprinting: every file other than `index.html` is served only at
//! `/admin/assets/<stem>.<hash>.<ext>`, where `<hash>` is the first 16 hex
//! digits of the SHA-256 of its bytes, with `Cache-Control: public,
//! max-age=31536000, immutable`. `index.html` names them as
//! `{{asset <file name>}}`, which the catalogue replaces with those URLs;
//! it is served at `/admin` and `/admin/` (and `/admin/index.html`) with
//! `no-cache`, so a new binary's files are picked up at the next load.

use std::collections::HashMap;
use std::io::Write;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use rust_embed::RustEmbed;

/// The console's HTML, CSS and JavaScript.
#[derive(RustEmbed)]
#[folder = "web/"]
struct Web;

/// The console's icons and images.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Images;

/// Where the console lives.
pub const PREFIX: &str = "/admin";

/// Where fingerprinted files live.
const ASSETS: &str = "/admin/assets/";

/// The page every console URL without a file serves.
const INDEX: &str = "index.html";

/// Hex digits of the SHA-256 kept in a fingerprinted URL: 64 bits, enough
/// that two versions of one file never share a URL.
const FINGERPRINT_LEN: usize = 16;

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

/// One file as it is served.
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
    pub hash: String,
    /// Whether the URL is fingerprinted (immutable) or the HTML (no-cache).
    pub immutable: bool,
}

/// Every console URL and its file, built once at start.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Path (as requested, e.g. `/admin/assets/app.0123abcd.js`) -> file.
    by_path: HashMap<String, Asset>,
}

impl Catalogue {
    /// Reads the embedded files, fingerprints them and compresses them.
    /// `Err` when `index.html` is missing or names a file that is not
    /// embedded: a build that would serve a broken page does not start.
    pub fn build() -> Result<Catalogue, String> {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for name in Web::iter() {
            if let Some(f) = Web::get(&name) {
                files.push((name.to_string(), f.data.into_owned()));
            }
        }
        for name in Images::iter() {
            if let Some(f) = Images::get(&name) {
                files.push((name.to_string(), f.data.into_owned()));
            }
        }
        let catalogue = Catalogue::from_files(files);
        give_back_start_up_memory();
        catalogue
    }

    /// The catalogue of these files (name relative to its folder, bytes).
    fn from_files(files: Vec<(String, Vec<u8>)>) -> Result<Catalogue, String> {
        let mut by_path = HashMap::new();
        let mut urls: HashMap<String, String> = HashMap::new();
        let mut index = None;
        let mut pending = Vec::new();
        for (name, data) in files {
            // The folders' READMEs are for people reading the source.
            if name.ends_with(".md") {
                continue;
            }
            if name == INDEX {
                index = Some(data);
                continue;
            }
            pending.push((name, data));
        }
        // A module names the modules it imports as `{{asset name}}` too, so
        // its bytes (and its fingerprint) change when theirs do: files are
        // fingerprinted once every file they name has its URL, and a cycle
        // or a name that is not embedded stops the start.
        while !pending.is_empty() {
            let before = pending.len();
            let mut waiting = Vec::new();
            for (name, data) in pending {
                let data = if name.ends_with(".js") {
                    let text = String::from_utf8(data)
                        .map_err(|_| format!("console file {name} is not UTF-8"))?;
                    if references(&text).iter().any(|r| !urls.contains_key(*r)) {
                        waiting.push((name, text.into_bytes()));
                        continue;
                    }
                    substitute(&name, &text, &urls)?.into_bytes()
                } else {
                    data
                };
                let content_type = content_type(&name)
                    .ok_or_else(|| format!("console file {name}: unknown content type"))?;
                let hash = sha256_hex(&data);
                let url = fingerprinted(&name, &hash);
                let asset = Asset::new(data, content_type, hash, true);
                if by_path.insert(url.clone(), asset).is_some()
                    || urls.insert(name.clone(), url).is_some()
                {
                    return Err(format!("console file {name} embedded twice"));
                }
            }
            if waiting.len() == before {
                let names: Vec<&str> = waiting.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "console: {} name files that are not embedded, or each other in a cycle",
                    names.join(", ")
                ));
            }
            pending = waiting;
        }
        let index = index.ok_or("console: web/index.html is not embedded")?;
        let html = String::from_utf8(index).map_err(|_| "console: index.html is not UTF-8")?;
        let html = substitute(INDEX, &html, &urls)?;
        let bytes = html.into_bytes();
        let hash = sha256_hex(&bytes);
        let page = Asset::new(bytes, "text/html; charset=utf-8", hash, false);
        for path in [
            PREFIX.to_string(),
            format!("{PREFIX}/"),
            format!("{PREFIX}/{INDEX}"),
        ] {
            by_path.insert(path, page.clone());
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
        self.by_path.keys().map(String::as_str)
    }
}

impl Asset {
    fn new(data: Vec<u8>, content_type: &'static str, hash: String, immutable: bool) -> Asset {
        let compress = compressible(content_type);
        let smaller = |z: Option<Vec<u8>>| z.filter(|z| z.len() < data.len()).map(Bytes::from);
        let gzip = smaller(compress.then(|| gzip(&data)).flatten());
        let brotli = smaller(compress.then(|| brotli(&data)).flatten());
        Asset {
            identity: Bytes::from(data),
            gzip,
            brotli,
            content_type,
            hash,
            immutable,
        }
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

/// The file names a text refers to as `{{asset name}}` (an unclosed
/// reference names nothing here; [`substitute`] refuses it).
fn references(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{asset ") {
        let after = &rest[start + "{{asset ".len()..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// `{{asset name}}` in `file` replaced by the named file's fingerprinted
/// URL.
fn substitute(file: &str, text: &str, urls: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{asset ") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{{asset ".len()..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("console: {file} has an unclosed {{{{asset"))?;
        let name = after[..end].trim();
        let url = urls
            .get(name)
            .ok_or_else(|| format!("console: {file} names {name}, which is not embedded"))?;
        out.push_str(url);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `/admin/assets/<stem>.<hash>.<ext>` for a file name.
fn fingerprinted(name: &str, hash: &str) -> String {
    let short = &hash[..FINGERPRINT_LEN.min(hash.len())];
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{ASSETS}{stem}.{short}.{ext}"),
        None => format!("{ASSETS}{name}.{short}"),
    }
}

/// The content type of a file name's extension; the console ships only
/// these kinds, and a file of another kind fails the start.
fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// Whether compressing a type saves anything (images other than SVG and
/// fonts are compressed already).
fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg+xml")
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}

/// Brotli at its best quality (11) and a 4 MiB window: done once per file
/// at start, so the time it takes is paid once.
fn brotli(data: &[u8]) -> Option<Vec<u8>> {
    // The window need not be larger than the file: past that it compresses
    // no better, and the encoder's tables grow with it (a
    // 4 MiB window for a 40 KiB file cost start-up time and left the
    // allocator holding megabytes).
    let bits =
        (usize::BITS - data.len().leading_zeros()).clamp(BROTLI_MIN_WINDOW, BROTLI_MAX_WINDOW);
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, BROTLI_QUALITY, bits);
        writer.write_all(data).ok()?;
        writer.flush().ok()?;
    }
    Some(out)
}

/// Hands the memory the compression at start freed back to the system:
/// glibc keeps freed blocks in its arenas otherwise, and the start's
/// transient buffers would count as resident for the process's life.
fn give_back_start_up_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory the allocator holds;
    // it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Brotli's quality: 9 compresses these files within a few percent of 11
/// at many times its speed (quality 11 took about 150 ms of every start
/// for 115 KiB of scripts, measured).
const BROTLI_QUALITY: u32 = 9;

/// Smallest and largest brotli window (log2 of bytes) the format allows
/// for a stream; the file's own size decides in between.
const BROTLI_MIN_WINDOW: u32 = 10;
const BROTLI_MAX_WINDOW: u32 = 22;

fn sha256_hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(html: &str) -> Vec<(String, Vec<u8>)> {
        vec![
            ("index.html".into(), html.as_bytes().to_vec()),
            ("app.js".into(), b"console.log(1);".to_vec()),
        ]
    }

    /// The shipped page names only embedded files, and every reference
    /// became a fingerprinted URL the catalogue serves.
    #[test]
    fn shipped_index_references_resolve() {
        let c = Catalogue::build().expect("catalogue");
        let page = c.get("/admin/").expect("index");
        let html = std::str::from_utf8(&page.identity).expect("utf-8");
        assert!(!html.contains("{{"), "{html}");
        let mut seen = 0;
        for part in html.split('"').filter(|p| p.starts_with(ASSETS)) {
            assert!(c.get(part).is_some_and(|a| a.immutable), "{part}");
            seen += 1;
        }
        assert!(seen >= 3, "{html}");
    }

    /// A page that names a file that is not embedded stops the start
    /// rather than serving a broken console.
    #[test]
    fn missing_reference_fails_the_build() {
        let err = Catalogue::from_files(files("<script src=\"{{asset nope.js}}\">")).unwrap_err();
        assert!(err.contains("nope.js"), "{err}");
        assert!(Catalogue::from_files(files("<script src=\"{{asset app.js}}\">")).is_ok());
    }

    /// A module's imports are fingerprinted URLs, and a change to an
    /// imported module changes the importer's URL too (a browser holding
    /// the old importer forever never runs it against the new import).
    #[test]
    fn module_imports_are_fingerprinted_through() {
        let build = |lib: &str| {
            let c = Catalogue::from_files(vec![
                (
                    "index.html".into(),
                    b"<script src=\"{{asset app.js}}\">".to_vec(),
                ),
                (
                    "app.js".into(),
                    b"import { f } from '{{asset lib/f.js}}';".to_vec(),
                ),
                ("lib/f.js".into(), lib.as_bytes().to_vec()),
            ])
            .expect("catalogue");
            let page = c.get("/admin/").expect("index").identity.clone();
            let html = String::from_utf8(page.to_vec()).expect("utf-8");
            let app_url = html.split('"').nth(1).expect("src").to_string();
            let app = c.get(&app_url).expect("app.js served").identity.clone();
            let app = String::from_utf8(app.to_vec()).expect("utf-8");
            let lib_url = app.split('\'').nth(1).expect("import").to_string();
            assert!(lib_url.starts_with("/admin/assets/lib/f."), "{app}");
            assert!(c.get(&lib_url).is_some(), "{lib_url}");
            (app_url, lib_url)
        };
        let (app1, lib1) = build("export const f = 1;");
        let (app2, lib2) = build("export const f = 2;");
        assert_ne!(lib1, lib2);
        assert_ne!(app1, app2);
    }

    /// Modules that name each other, or a module that names a missing
    /// file, stop the start.
    #[test]
    fn module_cycles_and_missing_imports_fail_the_build() {
        let err = Catalogue::from_files(vec![
            ("index.html".into(), b"{{asset a.js}}".to_vec()),
            ("a.js".into(), b"import '{{asset b.js}}';".to_vec()),
            ("b.js".into(), b"import '{{asset a.js}}';".to_vec()),
        ])
        .unwrap_err();
        assert!(err.contains("a.js") && err.contains("b.js"), "{err}");
        let err = Catalogue::from_files(vec![
            ("index.html".into(), b"{{asset a.js}}".to_vec()),
            ("a.js".into(), b"import '{{asset gone.js}}';".to_vec()),
        ])
        .unwrap_err();
        assert!(err.contains("a.js"), "{err}");
    }

    /// Every answer hands out the bytes compressed when the catalogue was
    /// built (the same buffer, not a copy made per request), and the
    /// shipped files do have a compressed copy.
    #[test]
    fn answers_share_the_bytes_compressed_at_start() {
        let c = Catalogue::build().expect("catalogue");
        for (accept, brotli) in [("gzip", false), ("br", true)] {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static(accept));
            let mut compressed = 0;
            for path in c.paths().map(str::to_string).collect::<Vec<_>>() {
                let asset = c.get(&path).expect("asset");
                let kept = if brotli { &asset.brotli } else { &asset.gzip };
                let Some(z) = kept else { continue };
                for _ in 0..2 {
                    let r = serve(&c, &Method::GET, &path, &h);
                    assert_eq!(r.body().as_ptr(), z.as_ptr(), "{accept} {path}");
                    assert_eq!(r.body().len(), z.len(), "{accept} {path}");
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
