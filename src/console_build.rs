//! The console's catalogue as the build makes it: `build.rs` runs this over
//! `web/` and `assets/` and writes the result into the binary as
//! read-only data, so a start fingerprints and compresses nothing. The
//! library compiles it only for its own tests (`console::plan`), which is
//! how its rules are tested: a build script has no tests of its own.
//!
//! Every file other than `index.html` gets the URL
//! `/admin/assets/<stem>.<first 16 hex of its SHA-256>.<ext>`.
//! `index.html`, and every JavaScript module, names the files it uses as
//! `{{asset <file name>}}`, replaced with those URLs; a module is
//! fingerprinted after the modules it names, so its URL changes with
//! theirs. A name that is not a file, a cycle, a file of an unknown kind or
//! a file that is not UTF-8 where text is needed fails the build.

use std::collections::HashMap;
use std::io::Write;

/// Where fingerprinted files live.
pub const ASSETS: &str = "/admin/assets/";

/// The page every console URL without a file serves.
pub const INDEX: &str = "index.html";

/// The URLs the page is served at.
pub const PAGE_PATHS: [&str; 3] = ["/admin", "/admin/", "/admin/index.html"];

/// Hex digits of the SHA-256 kept in a fingerprinted URL: 64 bits, enough
/// that two versions of one file never share a URL.
pub const FINGERPRINT_LEN: usize = 16;

/// Brotli's quality: its best, since it costs only build time.
const BROTLI_QUALITY: u32 = 11;

/// Smallest and largest brotli window (log2 of bytes) the format allows
/// for a stream; the file's own size decides in between (past it a larger
/// window compresses no better).
const BROTLI_MIN_WINDOW: u32 = 10;
const BROTLI_MAX_WINDOW: u32 = 24;

/// One file as it will be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The URLs it is served at.
    pub paths: Vec<String>,
    /// The bytes as they are (with `{{asset}}` references replaced).
    pub identity: Vec<u8>,
    /// gzip (best compression), when the type compresses and it is
    /// smaller.
    pub gzip: Option<Vec<u8>>,
    /// brotli (quality 11), when the type compresses and it is smaller.
    pub brotli: Option<Vec<u8>>,
    /// Content-Type.
    pub content_type: &'static str,
    /// Hex SHA-256 of `identity`: the ETag, and the URL's fingerprint.
    pub hash: String,
    /// Whether the URL is fingerprinted (immutable) or the page (no-cache).
    pub immutable: bool,
}

/// The catalogue of these files (name relative to its folder, bytes),
/// with `sha256_hex` as the digest (the build script and the library's
/// tests each bring their own).
pub fn plan(
    files: Vec<(String, Vec<u8>)>,
    sha256_hex: fn(&[u8]) -> String,
) -> Result<Vec<Planned>, String> {
    let mut planned = Vec::new();
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
    // Files are fingerprinted once every file they name has its URL.
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
            if urls.insert(name.clone(), url.clone()).is_some() {
                return Err(format!("console file {name} embedded twice"));
            }
            planned.push(Planned::new(vec![url], data, content_type, hash, true)?);
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
    let html = substitute(INDEX, &html, &urls)?.into_bytes();
    let hash = sha256_hex(&html);
    let paths = PAGE_PATHS.iter().map(|p| p.to_string()).collect();
    planned.push(Planned::new(
        paths,
        html,
        "text/html; charset=utf-8",
        hash,
        false,
    )?);
    Ok(planned)
}

impl Planned {
    fn new(
        paths: Vec<String>,
        identity: Vec<u8>,
        content_type: &'static str,
        hash: String,
        immutable: bool,
    ) -> Result<Planned, String> {
        let (gzip, brotli) = if compressible(content_type) {
            let smaller = |z: Vec<u8>| (z.len() < identity.len()).then_some(z);
            (
                smaller(gzip(&identity).map_err(|e| format!("gzip: {e}"))?),
                smaller(brotli(&identity).map_err(|e| format!("brotli: {e}"))?),
            )
        } else {
            (None, None)
        };
        Ok(Planned {
            paths,
            identity,
            gzip,
            brotli,
            content_type,
            hash,
            immutable,
        })
    }
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
/// these kinds, and a file of another kind fails the build.
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

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Brotli at its best quality, with a window that fits the file.
fn brotli(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let bits =
        (usize::BITS - data.len().leading_zeros()).clamp(BROTLI_MIN_WINDOW, BROTLI_MAX_WINDOW);
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, BROTLI_QUALITY, bits);
        writer.write_all(data)?;
        writer.flush()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(data: &[u8]) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, data);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn files(html: &str) -> Vec<(String, Vec<u8>)> {
        vec![
            ("index.html".into(), html.as_bytes().to_vec()),
            ("app.js".into(), b"console.log(1);".to_vec()),
        ]
    }

    fn page(planned: &[Planned]) -> String {
        let page = planned.iter().find(|p| !p.immutable).expect("the page");
        String::from_utf8(page.identity.clone()).expect("utf-8")
    }

    fn by_url<'a>(planned: &'a [Planned], url: &str) -> Option<&'a Planned> {
        planned.iter().find(|p| p.paths.iter().any(|u| u == url))
    }

    /// A page that names a file that is not embedded fails the build
    /// rather than shipping a broken console.
    #[test]
    fn missing_reference_fails_the_build() {
        let err = plan(files("<script src=\"{{asset nope.js}}\">"), sha256_hex).unwrap_err();
        assert!(err.contains("nope.js"), "{err}");
        let planned = plan(files("<script src=\"{{asset app.js}}\">"), sha256_hex).expect("plan");
        let html = page(&planned);
        let url = html.split('"').nth(1).expect("src");
        let app = by_url(&planned, url).expect("app.js served");
        assert_eq!(url, format!("/admin/assets/app.{}.js", &app.hash[..16]));
        assert_eq!(app.hash, sha256_hex(b"console.log(1);"));
    }

    /// A module's imports are fingerprinted URLs, and a change to an
    /// imported module changes the importer's URL too (a browser holding
    /// the old importer forever never runs it against the new import).
    #[test]
    fn module_imports_are_fingerprinted_through() {
        let build = |lib: &str| {
            let planned = plan(
                vec![
                    (
                        "index.html".into(),
                        b"<script src=\"{{asset app.js}}\">".to_vec(),
                    ),
                    (
                        "app.js".into(),
                        b"import { f } from '{{asset lib/f.js}}';".to_vec(),
                    ),
                    ("lib/f.js".into(), lib.as_bytes().to_vec()),
                ],
                sha256_hex,
            )
            .expect("plan");
            let html = page(&planned);
            let app_url = html.split('"').nth(1).expect("src").to_string();
            let app = by_url(&planned, &app_url).expect("app.js served");
            let app = String::from_utf8(app.identity.clone()).expect("utf-8");
            let lib_url = app.split('\'').nth(1).expect("import").to_string();
            assert!(lib_url.starts_with("/admin/assets/lib/f."), "{app}");
            assert!(by_url(&planned, &lib_url).is_some(), "{lib_url}");
            (app_url, lib_url)
        };
        let (app1, lib1) = build("export const f = 1;");
        let (app2, lib2) = build("export const f = 2;");
        assert_ne!(lib1, lib2);
        assert_ne!(app1, app2);
    }

    /// Modules that name each other, or a module that names a missing
    /// file, fail the build.
    #[test]
    fn module_cycles_and_missing_imports_fail_the_build() {
        let err = plan(
            vec![
                ("index.html".into(), b"{{asset a.js}}".to_vec()),
                ("a.js".into(), b"import '{{asset b.js}}';".to_vec()),
                ("b.js".into(), b"import '{{asset a.js}}';".to_vec()),
            ],
            sha256_hex,
        )
        .unwrap_err();
        assert!(err.contains("a.js") && err.contains("b.js"), "{err}");
        let err = plan(
            vec![
                ("index.html".into(), b"{{asset a.js}}".to_vec()),
                ("a.js".into(), b"import '{{asset gone.js}}';".to_vec()),
            ],
            sha256_hex,
        )
        .unwrap_err();
        assert!(err.contains("a.js"), "{err}");
    }

    /// A file of a kind the console does not serve, a file given twice
    /// (`web/` and `assets/` share one namespace) and a missing page each
    /// fail the build.
    #[test]
    fn unknown_kinds_duplicates_and_no_page_fail_the_build() {
        let mut with_exe = files("{{asset app.js}}");
        with_exe.push(("tool.exe".into(), b"MZ".to_vec()));
        let err = plan(with_exe, sha256_hex).unwrap_err();
        assert!(err.contains("tool.exe"), "{err}");
        let mut twice = files("{{asset app.js}}");
        twice.push(("app.js".into(), b"console.log(2);".to_vec()));
        let err = plan(twice, sha256_hex).unwrap_err();
        assert!(err.contains("twice"), "{err}");
        let err = plan(vec![("app.js".into(), b"1".to_vec())], sha256_hex).unwrap_err();
        assert!(err.contains("index.html"), "{err}");
    }

    /// A text file gets a gzip and a brotli copy that decompress to its
    /// bytes; an image that is compressed already, and a text too short
    /// to shrink, get none.
    #[test]
    fn compressed_copies_decompress_to_the_file_and_only_when_smaller() {
        use std::io::Read;
        let script = "export function f() { return 'the same words again'; }\n".repeat(50);
        let planned = plan(
            vec![
                (
                    "index.html".into(),
                    b"{{asset a.js}}{{asset i.png}}{{asset t.css}}".to_vec(),
                ),
                ("a.js".into(), script.clone().into_bytes()),
                ("i.png".into(), script.clone().into_bytes()),
                ("t.css".into(), b"b{}".to_vec()),
            ],
            sha256_hex,
        )
        .expect("plan");
        let kind = |t: &str| {
            planned
                .iter()
                .find(|p| p.content_type.starts_with(t))
                .expect(t)
        };
        let a = kind("text/javascript");
        let gz = a.gzip.as_ref().expect("gzip");
        let br = a.brotli.as_ref().expect("brotli");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, script.as_bytes());
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut out)
            .expect("unbrotli");
        assert_eq!(out, script.as_bytes());
        assert!(br.len() < gz.len() && gz.len() < script.len());
        for t in ["image/png", "text/css"] {
            let p = kind(t);
            assert_eq!((p.gzip.is_none(), p.brotli.is_none()), (true, true), "{t}");
        }
        let page = planned.iter().find(|p| !p.immutable).expect("page");
        assert_eq!(page.paths, PAGE_PATHS);
    }
}
