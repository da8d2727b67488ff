//! Uploads over real HTTP: photos recognised by their bytes, EXIF/XMP/text metadata stripped,
//! served back with their content type; stored in the data dir (SQLite), and in S3-compatible
//! object storage (a real S3 server: moto's `moto_server`, from PyPI, started by the test);
//! deleted, blobs and rows, when their owner erases their account. Decompression bombs (a
//! header claiming too many pixels) are refused with 422 and nothing stored; a JPEG+ZIP
//! polyglot is stored without its ZIP.

mod common;
use common::images::{jpeg_claiming, jpeg_with_metadata, png_claiming, png_with_metadata};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn send(http: &reqwest::Client, base: &str, token: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str("image/jpeg").unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = http.post(format!("{base}/api/v1/uploads")).bearer_auth(token).multipart(form).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn round_trip(app: &TestApp) -> Vec<String> {
    let (base, http) = (app.base(), &app.http);
    let me = login(http, &base, "up-user").await;
    let mut urls = Vec::new();
    for (name, raw, ct, gone) in [
        ("photo.jpg", jpeg_with_metadata(), "image/jpeg", ["GPS", "xmpmeta"]),
        ("not-a-jpeg.jpg", png_with_metadata(), "image/png", ["Lijiang", "GPSINFO"]),
    ] {
        let (s, up) = send(http, &base, &me.token, name, raw).await;
        assert_eq!(s, 201, "{up}");
        assert_eq!(up["content_type"], ct, "judged by the bytes, not the name");
        let url = up["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("/uploads/") && up["id"].is_string(), "{up}");
        let r = http.get(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], ct);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let body = r.bytes().await.unwrap();
        let text = String::from_utf8_lossy(&body);
        for g in gone {
            assert!(!text.contains(g), "{g} was not stripped from {name}");
        }
        assert_eq!(body.len() as u64, up["size"].as_u64().unwrap());
        urls.push(url);
    }
    // An avatar takes such a URL.
    let r = http.patch(format!("{base}/api/v1/me")).bearer_auth(&me.token).json(&json!({"avatar_url": urls[0]})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Refusals, in the one error shape.
    let (s, e) = send(http, &base, &me.token, "x.jpg", b"<svg onload=alert(1)>".to_vec()).await;
    assert_eq!((s, e["fields"][0]["field"].as_str()), (422, Some("file")), "{e}");
    let (s, e) = send(http, &base, &me.token, "big.jpg", [jpeg_with_metadata(), vec![0; 5 * 1024 * 1024]].concat()).await;
    assert_eq!((s, e["code"].as_str()), (413, Some("too_large")), "{e}");
    let r = http.post(format!("{base}/api/v1/uploads")).bearer_auth(&me.token).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 415);
    let form = reqwest::multipart::Form::new().text("other", "x");
    let r = http.post(format!("{base}/api/v1/uploads")).bearer_auth(&me.token).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let part = reqwest::multipart::Part::bytes(jpeg_with_metadata()).file_name("a.jpg");
    let r = http.post(format!("{base}/api/v1/uploads")).multipart(reqwest::multipart::Form::new().part("file", part)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    for missing in ["/uploads/0123456789abcdef0123456789abcdef.jpg", "/uploads/..%2f..%2fjiebanke.db", "/uploads/x.png"] {
        let r = http.get(format!("{base}{missing}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_found");
    }
    // The wrong extension for a stored name is not found either.
    let swapped = urls[0].replace(".jpg", ".png");
    assert_eq!(http.get(format!("{base}{swapped}")).send().await.unwrap().status(), 404);
    urls
}

#[tokio::test]
async fn uploads_in_the_data_dir() {
    uploads_in_the_data_dir_on(Db::Sqlite).await;
}

#[tokio::test]
async fn uploads_in_the_data_dir_with_mysql() {
    uploads_in_the_data_dir_on(Db::MySql).await;
}

async fn uploads_in_the_data_dir_on(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |_| {}).await;
    let urls = round_trip(&app).await;
    let files: Vec<_> = urls.iter().map(|u| tdb.dir.0.join("uploads").join(u.trim_start_matches("/uploads/"))).collect();
    assert!(files.iter().all(|f| f.is_file()), "stored under the data dir");
    bombs_are_refused(&app, &tdb.dir.0.join("uploads")).await;
    erase_takes_the_uploads(&app, &urls).await;
    for f in &files {
        assert!(!f.exists(), "{} left in the data dir", f.display());
    }
    app.shutdown.cancel();
}

/// Headers claiming too many pixels: 422 naming `file` and why, and no file written. A
/// JPEG+ZIP polyglot: stored, without the ZIP.
async fn bombs_are_refused(app: &TestApp, dir: &std::path::Path) {
    let (base, http) = (app.base(), &app.http);
    let me = login(http, &base, "up-bomber").await;
    let stored = || std::fs::read_dir(dir).unwrap().count();
    let before = stored();
    for (name, raw, says) in [
        ("bomb.png", png_claiming(50_000, 50_000), "50000×50000"),
        ("bomb.jpg", jpeg_claiming(65_535, 65_535), "65535×65535"),
        ("tall.png", png_claiming(1, 8_193), "1×8193"),
        ("many.png", png_claiming(8_000, 6_000), "at most 40000000"),
    ] {
        let (s, e) = send(http, &base, &me.token, name, raw).await;
        assert_eq!((s, e["code"].as_str(), e["fields"][0]["field"].as_str()), (422, Some("invalid"), Some("file")), "{name}: {e}");
        let problem = e["fields"][0]["problem"].as_str().unwrap();
        assert!(problem.starts_with("图片") && problem.contains(says), "{name}: {problem}");
    }
    assert_eq!(stored(), before, "nothing stored for a refused image");
    let zip = b"PK\x03\x04\x14\0\0\0\0\0secret.txt PK\x05\x06\0\0\0\0".to_vec();
    let (s, up) = send(http, &base, &me.token, "polyglot.jpg", [jpeg_with_metadata(), zip].concat()).await;
    assert_eq!(s, 201, "{up}");
    let body = http.get(format!("{base}{}", up["url"].as_str().unwrap())).send().await.unwrap().bytes().await.unwrap();
    assert!(body.ends_with(&[0xFF, 0xD9]) && !body.windows(2).any(|w| w == b"PK"), "the ZIP after the JPEG's end is not stored");
    assert_eq!(stored(), before + 1);
}

/// Erases the account of `round_trip`'s user: its uploads answer 404, another user's stays.
async fn erase_takes_the_uploads(app: &TestApp, urls: &[String]) {
    let (base, http) = (app.base(), &app.http);
    let other = login(http, &base, "up-other").await;
    let (s, kept) = send(http, &base, &other.token, "kept.png", png_with_metadata()).await;
    assert_eq!(s, 201, "{kept}");
    let kept = kept["url"].as_str().unwrap().to_owned();
    let me = login(http, &base, "up-user").await;
    assert_eq!(delete(http, format!("{base}/api/v1/me"), &me.token).await, 204);
    for url in urls {
        let r = http.get(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{url} of an erased account");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_found");
    }
    assert_eq!(http.get(format!("{base}{kept}")).send().await.unwrap().status(), 200, "another user's upload stays");
}

/// A real S3 server for one test: moto's `moto_server` (PyPI `moto[server]`), from
/// `JBK_TEST_MOTO_SERVER` or the PATH.
struct S3Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn s3_server() -> Option<S3Server> {
    let bin = std::env::var("JBK_TEST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = free_port();
    let child = std::process::Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            if jiebanke_storage::testing::services_required() {
                panic!("an S3 server is required (JBK_REQUIRE_SERVICES=1): {bin}: {e}");
            }
            jiebanke_storage::testing::skipped(&format!("S3 test, {bin} not runnable: {e}"));
            return None;
        }
    };
    let server = S3Server { child, port };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("http://127.0.0.1:{port}/")).send().await.is_ok() {
            return Some(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto_server did not answer on port {port}");
}

#[tokio::test]
async fn uploads_in_s3_compatible_storage() {
    let Some(s3) = s3_server().await else { return };
    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    let http = reqwest::Client::new();
    let r = http.put(format!("{endpoint}/jbk-uploads")).send().await.unwrap();
    assert!(r.status().is_success(), "bucket made: {}", r.status());
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    let cfg = jiebanke_storage::S3Config {
        endpoint: endpoint.clone(),
        bucket: "jbk-uploads".into(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
    };
    let app = spawn_app(&tdb, |c| c.s3 = Some(cfg.clone())).await;
    let (s, ready) = get(&app.http, format!("{}/readyz", app.base()), "").await;
    assert_eq!((s, ready["checks"]["object_storage"].as_str()), (200, Some("ok")), "{ready}");
    let urls = round_trip(&app).await;
    // The object is in the bucket (read back with a signed S3 GET), not in the data dir.
    use jiebanke_chat_core::uploads::BlobStore;
    let key = urls[0].trim_start_matches('/');
    let client = jiebanke_storage::ObjectBlobs::s3(&cfg).unwrap();
    let obj = client.get(key).await.unwrap().expect("in the bucket");
    assert!(!String::from_utf8_lossy(&obj).contains("GPS"), "stored stripped");
    assert!(!tdb.dir.0.join(key).exists(), "not in the data dir");
    // Erased with its account: gone from the bucket too.
    erase_takes_the_uploads(&app, &urls).await;
    for url in &urls {
        assert_eq!(client.get(url.trim_start_matches('/')).await.unwrap(), None, "{url} left in the bucket");
    }
    // The store gone: the node is degraded, an upload is unavailable (not lost silently).
    drop(s3);
    let (s, ready) = get(&app.http, format!("{}/readyz", app.base()), "").await;
    assert_eq!((s, ready["checks"]["object_storage"].as_str()), (200, Some("down")), "{ready}");
    let me = login(&app.http, &app.base(), "up-after").await;
    let (s, e) = send(&app.http, &app.base(), &me.token, "a.jpg", jpeg_with_metadata()).await;
    assert_eq!((s, e["code"].as_str()), (503, Some("unavailable")), "{e}");
    app.shutdown.cancel();
}
