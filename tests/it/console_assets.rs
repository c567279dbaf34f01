//! The console's embedded files under `/admin/`: content types, strong
//! ETags, fingerprinted immutable URLs, gzip, the security headers, and
//! 404s for every path that names no file or tries to step outside.

use std::io::Read;

use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Resp, Server};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'";

fn sha256_hex(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

#[track_caller]
fn assert_console_headers(r: &Resp) {
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

/// The fingerprinted URLs the page names.
fn asset_urls(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|p| p.starts_with("/admin/assets/"))
        .map(str::to_string)
        .collect()
}

/// `/admin` and `/admin/` serve the page, revalidated on every load, with
/// the console's security headers and a strong ETag of its bytes.
#[tokio::test]
async fn admin_serves_the_page() {
    let srv = Server::start().await;
    let mut bodies = Vec::new();
    for path in ["/admin", "/admin/"] {
        let r = srv.get(path).send().await.assert(StatusCode::OK);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_console_headers(&r);
        let etag = format!("\"{}\"", sha256_hex(&r.body));
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert!(r.text().contains("<!doctype html>"), "{}", r.text());
        assert!(!r.text().contains("{{"), "{}", r.text());
        bodies.push(r.body);
    }
    assert_eq!(bodies[0], bodies[1]);
}

/// Every file the page names is served at a URL that carries the first 16
/// hex digits of its SHA-256, with its type, its hash as strong ETag, and
/// a year-long immutable cache; its unfingerprinted name is not served.
#[tokio::test]
async fn assets_are_fingerprinted_and_immutable() {
    let srv = Server::start().await;
    let page = srv.get("/admin/").send().await.assert(StatusCode::OK);
    let urls = asset_urls(&page.text());
    let mut kinds = Vec::new();
    for url in &urls {
        let r = srv.get(url).send().await.assert(StatusCode::OK);
        let hash = sha256_hex(&r.body);
        let (stem_hash, ext) = url.rsplit_once('.').expect("extension");
        let (stem, fingerprint) = stem_hash.rsplit_once('.').expect("fingerprint");
        assert_eq!(fingerprint, &hash[..16], "{url}");
        assert_eq!(
            r.header("etag"),
            Some(format!("\"{hash}\"").as_str()),
            "{url}"
        );
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{url}"
        );
        assert_console_headers(&r);
        let want = match ext {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset kind {other}"),
        };
        assert_eq!(r.header("content-type"), Some(want), "{url}");
        kinds.push(ext.to_string());
        // The plain name and a wrong fingerprint name no file.
        let plain = format!("{stem}.{ext}");
        srv.get(&plain).send().await.assert(StatusCode::NOT_FOUND);
        let wrong = format!("{stem}.{}.{ext}", "0".repeat(16));
        srv.get(&wrong).send().await.assert(StatusCode::NOT_FOUND);
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["css", "js", "svg"]);
}

/// A client holding the current ETag gets a 304 with no body; one
/// holding another gets the file.
#[tokio::test]
async fn if_none_match_answers_304() {
    let srv = Server::start().await;
    let page = srv.get("/admin/").send().await.assert(StatusCode::OK);
    let mut paths = asset_urls(&page.text());
    paths.push("/admin/".to_string());
    for path in &paths {
        let first = srv.get(path).send().await.assert(StatusCode::OK);
        let etag = first.header("etag").expect("etag").to_string();
        let again = srv
            .get(path)
            .header("if-none-match", &etag)
            .send()
            .await
            .assert(StatusCode::NOT_MODIFIED);
        assert!(again.body.is_empty(), "{path}");
        assert_eq!(again.header("etag"), Some(etag.as_str()), "{path}");
        let listed = format!("\"nope\", W/{etag}");
        srv.get(path)
            .header("if-none-match", &listed)
            .send()
            .await
            .assert(StatusCode::NOT_MODIFIED);
        let other = srv
            .get(path)
            .header("if-none-match", "\"0000\"")
            .send()
            .await
            .assert(StatusCode::OK);
        assert_eq!(other.body, first.body, "{path}");
    }
}

/// A client that accepts gzip gets the same bytes compressed, smaller,
/// under an ETag of its own; one that refuses it (`q=0`) or does not name
/// it gets them as they are.
#[tokio::test]
async fn gzip_when_accepted() {
    let srv = Server::start().await;
    let page = srv.get("/admin/").send().await.assert(StatusCode::OK);
    let mut paths: Vec<String> = asset_urls(&page.text())
        .into_iter()
        .filter(|u| u.ends_with(".js") || u.ends_with(".css"))
        .collect();
    paths.push("/admin/".to_string());
    assert!(paths.len() >= 3, "{paths:?}");
    for path in &paths {
        let plain = srv.get(path).send().await.assert(StatusCode::OK);
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert_eq!(plain.header("vary"), Some("Accept-Encoding"), "{path}");
        let zipped = srv
            .get(path)
            .header("accept-encoding", "br;q=0.5, gzip;q=0.8")
            .send()
            .await
            .assert(StatusCode::OK);
        assert_eq!(zipped.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(zipped.header("vary"), Some("Accept-Encoding"), "{path}");
        assert!(zipped.body.len() < plain.body.len(), "{path}");
        assert_eq!(gunzip(&zipped.body), plain.body.to_vec(), "{path}");
        let zipped_etag = zipped.header("etag").expect("etag");
        assert_ne!(Some(zipped_etag), plain.header("etag"), "{path}");
        srv.get(path)
            .header("accept-encoding", "gzip")
            .header("if-none-match", zipped_etag)
            .send()
            .await
            .assert(StatusCode::NOT_MODIFIED);
        let refused = srv
            .get(path)
            .header("accept-encoding", "gzip;q=0, identity")
            .send()
            .await
            .assert(StatusCode::OK);
        assert_eq!(refused.header("content-encoding"), None, "{path}");
        assert_eq!(refused.body, plain.body, "{path}");
    }
}

/// HEAD answers GET's headers without the body; other methods are 405
/// with `Allow`.
#[tokio::test]
async fn head_and_other_methods() {
    let srv = Server::start().await;
    let get = srv.get("/admin/").send().await.assert(StatusCode::OK);
    let head = srv
        .call(Method::HEAD, "/admin/")
        .send()
        .await
        .assert(StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_console_headers(&head);
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let r = srv
            .call(method, "/admin/")
            .send()
            .await
            .assert(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        assert!(r.json()["error"].is_string());
    }
}

/// Paths that name no file, or try to climb out of `/admin/` (dot
/// segments, percent-encoded dots and slashes, backslashes), are a 404
/// JSON error with the console's headers, never a file.
#[tokio::test]
async fn escapes_and_unknown_paths_are_404() {
    let srv = Server::start().await;
    let page = srv.get("/admin/").send().await.assert(StatusCode::OK);
    let js = asset_urls(&page.text())
        .into_iter()
        .find(|u| u.ends_with(".js"))
        .expect("a script");
    let name = js.trim_start_matches("/admin/assets/");
    let paths = [
        "/admin/nope".to_string(),
        "/admin/assets/".to_string(),
        "/admin/README.md".to_string(),
        "/admin/assets/../index.html".to_string(),
        "/admin/../admin/".to_string(),
        "/admin/%2e%2e/api/v1/auth/me".to_string(),
        "/admin/assets/%2E%2E/index.html".to_string(),
        format!("/admin/assets/..%2f{name}"),
        format!("/admin/assets/%2e/{name}"),
        format!("/admin/x/../assets/{name}"),
        "/admin/index%2ehtml".to_string(),
        "/admin//index.html".to_string(),
        "/administrator".to_string(),
    ];
    for path in &paths {
        let r = srv.get(path).send().await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        assert_eq!(r.json()["error"], "Not found", "{path}");
        if path.starts_with("/admin/") {
            assert_console_headers(&r);
        }
    }
    // A backslash cannot be written through an http::Uri; send it raw.
    for target in [
        format!("/admin\\assets\\{name}"),
        format!("/admin/assets\\..\\assets/{name}"),
    ] {
        let mut s = tokio::net::TcpStream::connect(srv.addr)
            .await
            .expect("connect");
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        let text = String::from_utf8_lossy(&out);
        let status_line = text.lines().next().unwrap_or("");
        assert!(
            status_line.contains(" 404 ") || status_line.contains(" 400 "),
            "{target}: {text}"
        );
        assert!(!text.contains("text/javascript"), "{target}: {text}");
    }
}
