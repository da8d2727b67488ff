//! The pages people use, served by the same binary: today the traveller's app at `/app/` (the
//! H5 version of the mini-program's pages), later the merchant and admin consoles and the
//! website on the same foundation.
//!
//! Every file under `web/assets/` is compiled into the binary (`rust-embed`, embedded in debug
//! builds too), so the pages work offline and a deploy is one file. There is no build step: the
//! pages are ES modules written against Vue's runtime-only build (vendored, version in the
//! path) with `htm` tagged templates standing in for a template compiler, so the
//! Content-Security-Policy needs neither `unsafe-eval` nor `unsafe-inline`.
//!
//! URL layout:
//! - `/app/` → `assets/app/index.html`; `/app/<file>` → `assets/app/<file>` (the app's pages);
//! - `/assets/lib/<file>` → the modules every page and console shares (the socket client, the
//!   REST client, i18n, the template helper);
//! - `/assets/vendor/<name>-<version>/<file>` → third-party files, kept with their licence.
//!
//! Caching: vendored files have their version in the path and are `immutable` for a year; every
//! other file is `no-cache` with a strong `ETag` (its SHA-256), so a browser revalidates and gets
//! `304` until the binary changes. Text files over 1 KiB go out gzipped to a client that accepts
//! it (compressed once per file and kept: the files never change while the process runs).

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Assets;

/// What the pages' headers need to know of the deployment.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Origins images may come from besides this server (`img-src`), e.g. the object storage's
    /// public base URL for uploads (`https://bucket.cos.ap-shanghai.myqcloud.com`).
    pub image_origins: Vec<String>,
}

impl WebConfig {
    /// The Content-Security-Policy of every page: scripts, styles and connections (REST and
    /// the WebSocket) only from this origin; no `eval`, no inline script or style.
    pub fn content_security_policy(&self) -> String {
        let mut img = String::from("'self' data: blob:");
        for origin in &self.image_origins {
            img.push(' ');
            img.push_str(origin);
        }
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src {img}; connect-src 'self'; \
             font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    }
}

/// The routes of the pages and their assets (merged into the server's router).
pub fn router(config: WebConfig) -> Router {
    let csp = HeaderValue::from_str(&config.content_security_policy()).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let app_csp = csp.clone();
    let page_csp = csp;
    Router::new()
        .route("/", get(|| async { Redirect::to("/app/") }))
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(move |headers: HeaderMap| { let csp = app_csp.clone(); async move { serve("app/index.html", &headers, &csp) } }))
        .route(
            "/app/{*path}",
            get(move |Path(path): Path<String>, headers: HeaderMap| {
                let csp = page_csp.clone();
                async move { serve(&format!("app/{path}"), &headers, &csp) }
            }),
        )
        .route("/assets/{*path}", get(|Path(path): Path<String>, headers: HeaderMap| async move {
            if path.starts_with("app/") {
                return not_found();
            }
            serve(&path, &headers, &HeaderValue::from_static("default-src 'none'"))
        }))
}

/// The embedded files' paths (for tests and the docs).
pub fn files() -> impl Iterator<Item = String> {
    Assets::iter().map(|p| p.into_owned())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether a file of this type is worth compressing (text; images are compressed already).
fn compressible(path: &str) -> bool {
    matches!(path.rsplit('.').next(), Some("html" | "js" | "mjs" | "css" | "svg" | "json" | "txt" | "webmanifest"))
}

/// Whether the request's `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .filter_map(|v| v.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
    })
}

/// The gzipped bytes of an embedded file, made on first use and kept (bounded by the embedded
/// files themselves).
fn gzipped(path: &str, data: &[u8]) -> std::sync::Arc<Vec<u8>> {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        return hit.clone();
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 3), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    let bytes = Arc::new(enc.finish().unwrap_or_default());
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_owned(), bytes.clone());
    bytes
}

fn serve(path: &str, headers: &HeaderMap, csp: &HeaderValue) -> Response {
    // Paths are matched against the embedded list exactly: `..`, `//` or a directory name
    // never reach the file system (there is none at run time).
    let Some(file) = Assets::get(path) else { return not_found() };
    let hash = file.metadata.sha256_hash();
    let compress = compressible(path) && file.data.len() > 1024;
    let gzip = compress && accepts_gzip(headers);
    // Each representation has its own tag.
    let etag = format!("\"{}{}\"", hex(&hash[..16]), if gzip { "-gz" } else { "" });
    let cache = if path.starts_with("vendor/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let is_html = path.ends_with(".html");
    let mut out = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = if gzip {
            let mut r = axum::body::Body::from(gzipped(path, &file.data).as_ref().clone()).into_response();
            r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            file.data.into_owned().into_response()
        };
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
        r
    };
    let h = out.headers_mut();
    if compress {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if is_html {
        h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    out
}

fn not_found() -> Response {
    let mut r = (StatusCode::NOT_FOUND, r#"{"code":"not_found","message":"not found (未找到)"}"#).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(uri: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(tag) = etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        router(WebConfig { image_origins: vec!["https://img.example.com".into()] }).oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn the_app_is_served_with_its_policy_and_revalidates_by_etag() {
        let r = get("/app/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(csp.contains("img-src 'self' data: blob: https://img.example.com;"), "{csp}");
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert!(std::str::from_utf8(&body).unwrap().contains("<html"));

        let again = get("/app/", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG].to_str().unwrap(), etag);
        assert!(again.into_body().collect().await.unwrap().to_bytes().is_empty());

        let other = get("/app/", Some("\"0000\"")).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn text_goes_out_gzipped_to_who_accepts_it_with_its_own_etag() {
        let vue = files().find(|f| f.starts_with("vendor/vue-") && f.ends_with(".js")).unwrap();
        let uri = format!("/assets/{vue}");
        let req = |enc: &str| Request::get(&uri).header(header::ACCEPT_ENCODING, enc).body(Body::empty()).unwrap();
        let app = router(WebConfig::default());
        let plain = app.clone().oneshot(Request::get(&uri).body(Body::empty()).unwrap()).await.unwrap();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        let plain_tag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
        let original = plain.into_body().collect().await.unwrap().to_bytes();

        let gz = app.clone().oneshot(req("br, gzip;q=0.8")).await.unwrap();
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers()[header::VARY], "accept-encoding");
        let gz_tag = gz.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_ne!(gz_tag, plain_tag);
        let body = gz.into_body().collect().await.unwrap().to_bytes();
        assert!(body.len() < original.len() / 2, "{} of {}", body.len(), original.len());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut back).unwrap();
        assert_eq!(back, original);

        let refused = app.clone().oneshot(req("gzip;q=0, identity")).await.unwrap();
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
        let again = app.clone().oneshot(Request::get(&uri).header(header::ACCEPT_ENCODING, "gzip").header(header::IF_NONE_MATCH, &gz_tag).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        // A small file stays as it is.
        let icon = app.oneshot(Request::get("/app/icon.svg").header(header::ACCEPT_ENCODING, "gzip").body(Body::empty()).unwrap()).await.unwrap();
        assert!(icon.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn vendored_files_are_immutable_and_scripts_are_javascript() {
        let vue = files().find(|f| f.starts_with("vendor/vue-") && f.ends_with(".js")).expect("vue is vendored");
        let r = get(&format!("/assets/{vue}"), None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let lib = get("/assets/lib/client.js", None).await;
        assert_eq!(lib.status(), StatusCode::OK);
        assert_eq!(lib.headers()[header::CACHE_CONTROL], "no-cache");
    }

    #[tokio::test]
    async fn unknown_and_escaping_paths_are_json_404s() {
        for uri in ["/app/nope.js", "/assets/../Cargo.toml", "/assets/lib/", "/assets/app/index.html", "/app/..%2fCargo.toml"] {
            let r = get(uri, None).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json", "{uri}");
        }
        assert_eq!(get("/app", None).await.status(), StatusCode::PERMANENT_REDIRECT);
    }

    #[test]
    fn the_vendored_vue_is_the_version_its_path_names() {
        let path = files().find(|f| f.starts_with("vendor/vue-") && f.ends_with(".js")).unwrap();
        let version = path.trim_start_matches("vendor/vue-").split('/').next().unwrap().to_owned();
        let file = Assets::get(&path).unwrap();
        let head = String::from_utf8_lossy(&file.data[..200]).into_owned();
        assert!(head.contains(&format!("vue v{version}")), "{head}");
        // The runtime-only build: no template compiler, so nothing calls eval.
        assert!(!String::from_utf8_lossy(&file.data).contains("new Function("));
    }

    #[test]
    fn every_vendored_library_keeps_its_licence() {
        let all: Vec<String> = files().collect();
        let dirs: std::collections::BTreeSet<&str> =
            all.iter().filter_map(|f| f.strip_prefix("vendor/")).filter_map(|f| f.split('/').next()).collect();
        assert!(!dirs.is_empty());
        for d in dirs {
            assert!(all.contains(&format!("vendor/{d}/LICENSE.txt")), "vendor/{d} has no LICENSE.txt");
        }
    }
}
