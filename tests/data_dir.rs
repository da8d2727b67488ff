//! The data dir is the server's alone: the real binary, started on a fresh data dir, makes
//! every folder 0700 and every file 0600 (the database and its journal, the development keys,
//! uploaded photos), and makes an older, world-readable data dir private at start-up.

mod common;
use common::images::jpeg_with_metadata;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every path below `dir` (and `dir`) with its mode bits.
fn modes(dir: &Path) -> Vec<(String, bool, u32)> {
    let mut out = vec![(dir.display().to_string(), true, std::fs::metadata(dir).unwrap().permissions().mode() & 0o777)];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(modes(&e.path()));
        } else {
            out.push((e.path().display().to_string(), false, m.permissions().mode() & 0o777));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_is_private() {
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    // As an older version left it: world-readable.
    std::fs::set_permissions(&tdb.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = ServerProcess::start(&tdb, &[]).await;
    let http = reqwest::Client::new();
    let me = login(&http, &server.base(), "dd-user").await;
    let part = reqwest::multipart::Part::bytes(jpeg_with_metadata()).file_name("a.jpg").mime_str("image/jpeg").unwrap();
    let r = http.post(format!("{}/api/v1/uploads", server.base())).bearer_auth(&me.token).multipart(reqwest::multipart::Form::new().part("file", part)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let all = modes(&tdb.dir.0);
    let files = all.iter().filter(|(p, dir, _)| !dir && !p.ends_with(".log")).count();
    assert!(files >= 4, "the database, its journal, keys and a photo: {all:?}");
    // The test's own server log (made by the test, not the server) is left out.
    let open: Vec<_> = all.iter().filter(|(p, dir, m)| !p.ends_with(".log") && if *dir { *m != 0o700 } else { *m != 0o600 }).collect();
    assert!(open.is_empty(), "readable by others: {open:?}");
}
