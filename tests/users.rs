//! The users area over real HTTP and WebSocket, on SQLite and MariaDB: profile and its 422
//! fields, privacy settings and blocks enforced on chat and presence, the phone sealed at rest
//! (read back from the database files and the MySQL table), consent, export, cursor pages, and
//! the OpenAPI document with its browsable page.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const PHONE: &str = "+8613812345678";
const PHONE_DIGITS: &str = "13812345678";

async fn patch(http: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let resp = http.patch(url).bearer_auth(token).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn put(http: &reqwest::Client, url: String, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = http.put(url).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn delete(http: &reqwest::Client, url: String, token: &str) -> u16 {
    http.delete(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

fn field_names(e: &Value) -> Vec<String> {
    e["fields"].as_array().map(|f| f.iter().map(|p| p["field"].as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

async fn profile_and_settings(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let words = tdb.dir.0.join("words.txt");
    std::fs::write(&words, "违禁词\n").unwrap();
    let app = spawn_app(&tdb, |c| c.banned_words_file = Some(words.clone())).await;
    let (base, http) = (app.base(), &app.http);
    let a = login_default(http, &base, "u-a").await;
    let b = login_default(http, &base, "u-b").await;

    // Profile: every bad field named at once; good ones kept.
    let (s, e) = patch(http, format!("{base}/api/v1/me"), &a.token, json!({
        "nickname": "", "gender": "robot", "birth_year": 1800, "bio": "x".repeat(501),
        "tags": ["ok", "违禁词", "y".repeat(17)], "avatar_url": "ftp://x/y.png"
    })).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid")), "{e}");
    assert_eq!(field_names(&e), vec!["nickname", "avatar_url", "gender", "birth_year", "bio", "tags[1]", "tags[2]"]);
    let (s, e) = patch(http, format!("{base}/api/v1/me"), &a.token, json!({"nickname": "含违禁词的名字"})).await;
    assert_eq!((s, field_names(&e)), (422, vec!["nickname".to_owned()]), "screened: {e}");
    let (s, e) = patch(http, format!("{base}/api/v1/me"), &a.token, json!({"nickname": 5})).await;
    assert_eq!((s, field_names(&e)), (422, vec!["nickname".to_owned()]), "a wrong type names its field: {e}");
    // An avatar is one of my own uploads: another host, someone else's photo or a path that is
    // no upload is refused.
    let mine = upload_photo(http, &base, &a.token).await;
    let stranger = login_default(http, &base, "pr-stranger").await;
    let theirs = upload_photo(http, &base, &stranger.token).await;
    for bad in ["https://cdn.example.com/a.jpg".to_owned(), theirs, "/uploads/../../etc/passwd".to_owned(), format!("{mine}x")] {
        let (s, e) = patch(http, format!("{base}/api/v1/me"), &a.token, json!({"avatar_url": bad})).await;
        assert_eq!((s, field_names(&e)), (422, vec!["avatar_url".to_owned()]), "{bad}: {e}");
    }
    let (s, me) = patch(http, format!("{base}/api/v1/me"), &a.token, json!({
        "nickname": "小明", "gender": "male", "birth_year": 1995, "bio": "爱徒步", "tags": ["徒步", "摄影"],
        "avatar_url": mine
    })).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!((me["nickname"].as_str(), me["tags"][1].as_str(), me["birth_year"].as_u64()), (Some("小明"), Some("摄影"), Some(1995)));
    let (_, me) = patch(http, format!("{base}/api/v1/me"), &a.token, json!({"avatar_url": null})).await;
    assert!(me["avatar_url"].is_null() && me["nickname"] == "小明", "null clears, absent keeps: {me}");
    // Someone else sees the public profile only.
    let (s, p) = get(http, format!("{base}/api/v1/users/{}", a.id), &b.token).await;
    assert_eq!(s, 200);
    assert_eq!(p["nickname"], "小明");
    for private in ["phone", "last_seen", "provider", "admin", "role"] {
        assert!(p.get(private).is_none(), "{private} is not public: {p}");
    }
    assert_eq!(get(http, format!("{base}/api/v1/users/999999"), &b.token).await.0, 404);

    // Settings: the product's defaults, then enforced.
    let (s, st) = get(http, format!("{base}/api/v1/me/settings"), &b.token).await;
    assert_eq!(s, 200);
    assert_eq!(st, json!({"dm_from":"everyone","group_add_from":"contacts","presence_to":"contacts","matchable":true}));
    let (s, e) = patch(http, format!("{base}/api/v1/me/settings"), &b.token, json!({"dm_from":"friends","presence_to":"x"})).await;
    assert_eq!((s, field_names(&e)), (422, vec!["dm_from".to_owned(), "presence_to".to_owned()]));
    let convs = format!("{base}/api/v1/conversations");
    // group_add_from = contacts: a stranger cannot add b.
    let (s, e) = post(http, convs.clone(), &a.token, json!({"kind":"group","title":"t","members":[b.id]})).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")), "{e}");
    // dm_from = nobody: no new direct conversation.
    patch(http, format!("{base}/api/v1/me/settings"), &b.token, json!({"dm_from":"nobody"})).await;
    let (s, _) = post(http, convs.clone(), &a.token, json!({"kind":"direct","members":[b.id]})).await;
    assert_eq!(s, 403);
    let (_, st) = patch(http, format!("{base}/api/v1/me/settings"), &b.token, json!({"dm_from":"everyone"})).await;
    assert_eq!(st["dm_from"], "everyone");
    let dm = direct(http, &base, &a, &b).await;
    // Now contacts: the group works.
    let (s, _) = post(http, convs.clone(), &a.token, json!({"kind":"group","title":"t","members":[b.id]})).await;
    assert_eq!(s, 200);

    // Presence: hidden from a non-contact, shown to a contact, hidden by `nobody` and by blocks.
    let c = login_default(http, &base, "u-c").await;
    let mut cs = connect(app.addr, &c.token, Proto::Json).await;
    cs.send(json!({"type":"presence_subscribe","id":1,"users":[b.id]})).await;
    let p = cs.recv_type("presence").await;
    assert_eq!((p["online"].as_bool(), p["last_seen"].is_null()), (Some(false), true), "hidden: {p}");
    let bs = connect(app.addr, &b.token, Proto::Json).await;
    cs.expect_silence(Duration::from_millis(300)).await; // c does not see b come online
    let mut as_ = connect(app.addr, &a.token, Proto::Json).await;
    as_.send(json!({"type":"presence_subscribe","id":1,"users":[b.id]})).await;
    assert_eq!(as_.recv_type("presence").await["online"], true, "a contact sees b");

    // Blocks: b blocks a; the direct conversation closes both ways, presence is hidden (a's
    // live watch of b ends at once, with b reported offline).
    assert_eq!(put(http, format!("{base}/api/v1/me/blocks/{}", a.id), &b.token, None).await.0, 204);
    let p = as_.recv_type("presence").await;
    assert_eq!((p["user"].as_str(), p["online"].as_bool(), p["last_seen"].is_null()), (Some(b.id.as_str()), Some(false), true), "{p}");
    drop(bs); // b goes offline...
    let mut bs = connect(app.addr, &b.token, Proto::Json).await; // ...and online again
    as_.expect_silence(Duration::from_millis(400)).await; // neither reaches a
    assert_eq!(put(http, format!("{base}/api/v1/me/blocks/{}", b.id), &b.token, None).await.0, 422, "not myself");
    assert_eq!(put(http, format!("{base}/api/v1/me/blocks/999999"), &b.token, None).await.0, 404);
    as_.send(json!({"type":"send","id":2,"conv":dm,"cmid":"blocked-1","body":{"kind":"text","text":"hi"}})).await;
    let e = as_.recv_type("error").await;
    assert_eq!(e["code"], "forbidden", "{e}");
    bs.send(json!({"type":"send","id":3,"conv":dm,"cmid":"blocked-2","body":{"kind":"text","text":"hi"}})).await;
    assert_eq!(bs.recv_type("error").await["code"], "forbidden");
    let (s, _) = post(http, convs.clone(), &a.token, json!({"kind":"direct","members":[b.id]})).await;
    assert_eq!(s, 403);
    as_.send(json!({"type":"presence_subscribe","id":4,"users":[b.id]})).await;
    let p = as_.recv_type("presence").await;
    assert_eq!((p["online"].as_bool(), p["last_seen"].is_null()), (Some(false), true), "blocked: hidden {p}");
    let (s, list) = get(http, format!("{base}/api/v1/me/blocks"), &b.token).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"][0]["user"], a.id.as_str());
    assert!(list["next_cursor"].is_null());
    assert_eq!(delete(http, format!("{base}/api/v1/me/blocks/{}", a.id), &b.token).await, 204);
    assert_eq!(delete(http, format!("{base}/api/v1/me/blocks/{}", a.id), &b.token).await, 404);
    let sent = as_.say(5, &dm, "after-unblock", "hello again").await;
    assert_eq!(sent["type"], "ack", "{sent}");
    // Unblocked, a subscribes again and watches b live again.
    as_.send(json!({"type":"presence_subscribe","id":6,"users":[b.id]})).await;
    assert_eq!(as_.recv_type("presence").await["online"], true);
    drop(bs);
    let p = as_.recv_type("presence").await;
    assert_eq!((p["online"].as_bool(), p["last_seen"].is_i64()), (Some(false), true), "b went offline, seen live: {p}");
    let bs = connect(app.addr, &b.token, Proto::Json).await;

    // matchable = false: matching is refused.
    patch(http, format!("{base}/api/v1/me/settings"), &c.token, json!({"matchable": false})).await;
    use jiebanke_chat_core::matching::Day;
    let soon = Day::from_days(Day::of_ms(jiebanke_chat_core::now_ms()).days() + 5).to_string();
    cs.send(json!({"type":"match_request","id":9,"destination":"大理","from":soon,"to":soon})).await;
    assert_eq!(cs.recv_type("error").await["code"], "forbidden");
    drop((as_, bs, cs));
    app.shutdown.cancel();
}

#[tokio::test]
async fn profile_and_settings_sqlite() {
    profile_and_settings(Db::Sqlite).await;
}

#[tokio::test]
async fn profile_and_settings_mysql() {
    profile_and_settings(Db::MySql).await;
}

/// 422 answers name every bad field at once: a conversation's `kind`, `title` (screened for
/// banned words) and `members`; a login's `code` and `provider`; a report's `reason` (screened:
/// staff read it) and `about`, over REST and the socket.
#[tokio::test]
async fn conversations_logins_and_reports_name_their_bad_fields() {
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    let words = tdb.dir.0.join("words.txt");
    std::fs::write(&words, "违禁词\n").unwrap();
    let app = spawn_app(&tdb, |c| c.banned_words_file = Some(words.clone())).await;
    let (base, http) = (app.base(), &app.http);
    let a = login(http, &base, "f-a").await;
    let b = login(http, &base, "f-b").await;
    let convs = format!("{base}/api/v1/conversations");
    let invalid = |s: u16, e: &Value| {
        assert_eq!((s, e["code"].as_str()), (422, Some("invalid")), "{e}");
        field_names(e)
    };
    for (body, fields) in [
        (json!({"kind":"channel","title":"含违禁词","members":["x", b.id]}), vec!["kind", "title", "members[0]"]),
        (json!({"kind":"group","title":"一起去违禁词","members":[b.id]}), vec!["title"]),
        (json!({"kind":"group","members":[b.id]}), vec!["title"]),
        (json!({"kind":"group","title":"  "}), vec!["title"]),
        (json!({"kind":"direct","members":[]}), vec!["members"]),
        (json!({"kind":"direct","members":[b.id, a.id]}), vec!["members"]),
        (json!({"kind":"direct","members":[a.id]}), vec!["members"]),
    ] {
        let (s, e) = post(http, convs.clone(), &a.token, body.clone()).await;
        assert_eq!(invalid(s, &e), fields, "{body}");
    }
    let (s, g) = post(http, convs.clone(), &a.token, json!({"kind":"group","title":"大理","members":[b.id]})).await;
    assert_eq!((s, g["title"].as_str()), (200, Some("大理")), "{g}");

    let login_url = format!("{base}/api/v1/auth/login");
    for (body, fields) in [
        (json!({"code":"", "provider":"nope"}), vec!["code", "provider"]),
        (json!({"code":"a b"}), vec!["code"]),
        (json!({"code":"fine", "provider":"wechat"}), vec!["provider"]),
    ] {
        let r = http.post(login_url.clone()).json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        assert_eq!(invalid(s, &r.json().await.unwrap()), fields, "{body}");
    }

    let report = format!("{base}/api/v1/users/{}/report", b.id);
    let (s, e) = post(http, report.clone(), &a.token, json!({"reason":"违禁词", "about":"bio"})).await;
    assert_eq!(invalid(s, &e), vec!["reason", "about"]);
    let (s, e) = post(http, report.clone(), &a.token, json!({"reason":"他一直发违禁词"})).await;
    assert_eq!(invalid(s, &e), vec!["reason"]);
    assert_eq!(post(http, report, &a.token, json!({"reason":"骚扰"})).await.0, 201);
    // A message's report over the socket: the same screen.
    let mut sa = connect(app.addr, &a.token, Proto::Json).await;
    let seq = sa.say(1, g["id"].as_str().unwrap(), "f-1", "你好").await["seq"].as_u64().unwrap();
    sa.send(json!({"type":"report","id":2,"conv":g["id"],"seq":seq,"reason":"违禁词"})).await;
    let e = sa.recv_type("error").await;
    assert_eq!((e["code"].as_str(), e["id"].as_u64()), (Some("invalid"), Some(2)), "{e}");
    assert!(e["message"].as_str().unwrap().contains("reason"), "{e}");
    drop(sa);
    app.shutdown.cancel();
}

/// The settings' audiences not covered above, over real HTTP and WebSocket: `dm_from=contacts`
/// (a stranger cannot open a direct conversation, a contact can), `group_add_from` `everyone`
/// (a stranger adds me) and `nobody` (not even a contact), `presence_to` `nobody` (a contact
/// sees me offline, never seen) and `everyone` (a stranger sees me online).
async fn settings_audiences(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let a = login_default(http, &base, "au-a").await;
    let b = login_default(http, &base, "au-b").await;
    let c = login_default(http, &base, "au-c").await;
    let settings = format!("{base}/api/v1/me/settings");
    let convs = format!("{base}/api/v1/conversations");
    let set = |who: &LoggedIn, body: Value| {
        let (url, token) = (settings.clone(), who.token.clone());
        async move {
            let (s, v) = patch(http, url, &token, body).await;
            assert_eq!(s, 200, "{v}");
        }
    };

    // group_add_from = everyone: a stranger adds c to a group (the default, contacts, refuses).
    let (s, _) = post(http, convs.clone(), &b.token, json!({"kind":"group","title":"t0","members":[c.id]})).await;
    assert_eq!(s, 403, "contacts only by default");
    set(&c, json!({"group_add_from":"everyone"})).await;
    let (s, g) = post(http, convs.clone(), &b.token, json!({"kind":"group","title":"t1","members":[c.id]})).await;
    assert_eq!(s, 200, "{g}");
    // b and c are contacts now (they share a conversation); a is a stranger to both.

    // dm_from = contacts: the stranger is refused, the contact may.
    set(&b, json!({"dm_from":"contacts"})).await;
    let (s, e) = post(http, convs.clone(), &a.token, json!({"kind":"direct","members":[b.id]})).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")), "{e}");
    let (s, d) = post(http, convs.clone(), &c.token, json!({"kind":"direct","members":[b.id]})).await;
    assert_eq!((s, d["kind"].as_str()), (200, Some("direct")), "{d}");

    // group_add_from = nobody: not even a contact adds c, to a new group or an existing one.
    set(&c, json!({"group_add_from":"nobody"})).await;
    let (s, _) = post(http, convs.clone(), &b.token, json!({"kind":"group","title":"t2","members":[c.id]})).await;
    assert_eq!(s, 403);
    let (s, g2) = post(http, convs.clone(), &b.token, json!({"kind":"group","title":"t3"})).await;
    assert_eq!(s, 200);
    let (s, _) = post(http, format!("{base}/api/v1/conversations/{}/members", g2["id"].as_str().unwrap()), &b.token, json!({"members":[c.id]})).await;
    assert_eq!(s, 403);

    // presence_to = nobody: c is online, yet its contact b sees it offline and never seen.
    let cs = connect(app.addr, &c.token, Proto::Json).await;
    drop(cs); // c has been seen once...
    // ...which an observer (another session of b) waits to see, then c comes back online. The
    // observer takes the frames of those changes (a live change and a subscription's answer
    // may come in either order), so the session the test asks with sees none of them.
    let mut observer = connect(app.addr, &b.token, Proto::Json).await;
    observer.send(json!({"type":"presence_subscribe","id":1,"users":[c.id]})).await;
    loop {
        let p = observer.recv_type("presence").await;
        if p["online"] == false && p["last_seen"].is_i64() {
            break;
        }
    }
    let cs = connect(app.addr, &c.token, Proto::Json).await;
    loop {
        if observer.recv_type("presence").await["online"] == true {
            break;
        }
    }
    drop(observer);
    let mut bs = connect(app.addr, &b.token, Proto::Json).await;
    bs.send(json!({"type":"presence_subscribe","id":1,"users":[c.id]})).await;
    assert_eq!(bs.recv_type("presence").await["online"], true, "a contact sees c by default");
    set(&c, json!({"presence_to":"nobody"})).await;
    bs.send(json!({"type":"presence_subscribe","id":2,"users":[c.id]})).await;
    let p = bs.recv_type("presence").await;
    assert_eq!((p["user"].as_str(), p["online"].as_bool(), p["last_seen"].is_null()), (Some(c.id.as_str()), Some(false), true), "hidden: {p}");
    // presence_to = everyone: even the stranger a sees c online.
    let mut as_ = connect(app.addr, &a.token, Proto::Json).await;
    as_.send(json!({"type":"presence_subscribe","id":3,"users":[c.id]})).await;
    let p = as_.recv_type("presence").await;
    assert_eq!((p["online"].as_bool(), p["last_seen"].is_null()), (Some(false), true), "nobody: {p}");
    set(&c, json!({"presence_to":"everyone"})).await;
    as_.send(json!({"type":"presence_subscribe","id":4,"users":[c.id]})).await;
    assert_eq!(as_.recv_type("presence").await["online"], true, "everyone: a stranger sees c");
    bs.send(json!({"type":"presence_subscribe","id":5,"users":[c.id]})).await;
    assert_eq!(bs.recv_type("presence").await["online"], true);
    drop((as_, bs, cs));
    app.shutdown.cancel();
}

#[tokio::test]
async fn settings_audiences_sqlite() {
    settings_audiences(Db::Sqlite).await;
}

#[tokio::test]
async fn settings_audiences_mysql() {
    settings_audiences(Db::MySql).await;
}

/// Reads every byte the database holds: the files of the data dir (the SQLite files, and the
/// log of a server run as a child process), or on MySQL every text column of every table of
/// the test's database (found through `information_schema`, so that a new table or column is
/// read too).
async fn stored_bytes(tdb: &TestDb) -> Vec<u8> {
    match &tdb.mysql {
        None => {
            let mut all = Vec::new();
            for e in std::fs::read_dir(&tdb.dir.0).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    all.extend(std::fs::read(&p).unwrap());
                }
            }
            all
        }
        Some(m) => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::MySqlConnection::connect(&m.url).await.unwrap();
            let cols = sqlx::query(
                "SELECT CAST(TABLE_NAME AS CHAR) AS t, CAST(COLUMN_NAME AS CHAR) AS c FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('char','varchar','tinytext','text','mediumtext','longtext','json','enum','set','binary','varbinary','tinyblob','blob','mediumblob','longblob') \
                 ORDER BY TABLE_NAME, ORDINAL_POSITION",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let cols: Vec<(String, String)> = cols.iter().map(|r| (r.get("t"), r.get("c"))).collect();
            assert!(cols.iter().any(|(t, c)| t == "users" && c == "phone_cipher"), "the scan sees the users table: {cols:?}");
            assert!(cols.iter().any(|(t, _)| t == "merchant_applications"), "and every other table");
            let mut all = Vec::new();
            for (t, c) in &cols {
                let sql = format!("SELECT CAST(`{c}` AS BINARY) AS v FROM `{t}` WHERE `{c}` IS NOT NULL");
                for r in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap() {
                    all.extend(r.get::<Vec<u8>, _>("v"));
                    all.push(b'|');
                }
            }
            assert!(!all.is_empty());
            all
        }
    }
}

/// A merchant's contact phone (another number than the user's own).
const CONTACT: &str = "+8613912345670";
const CONTACT_DIGITS: &str = "13912345670";
const LICENSE: &str = "91350100M000100Y43";

async fn phone_consent_export(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    // The real binary as a child process, logging at debug level into the data dir: what it
    // logs is read back below, with the database.
    let server = ServerProcess::start(&tdb, &[("JBK_PRIVACY_VERSION", "v7"), ("JBK_ADMINS", "dev:p-root"), ("RUST_LOG", "debug")]).await;
    let (base, http) = (server.base(), &reqwest::Client::new());
    // The login answer says whether the current policy was accepted.
    let r: Value = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code":"p-a"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["privacy"]["version"], "v7");
    assert_eq!(r["privacy"]["accepted"], false);
    let a = LoggedIn { token: r["token"].as_str().unwrap().into(), id: r["user"]["id"].as_str().unwrap().into() };
    let b = login(http, &base, "p-b").await;
    let root = login(http, &base, "p-root").await;
    let (s, e) = put(http, format!("{base}/api/v1/me/consent"), &a.token, Some(json!({"version":"v6"}))).await;
    assert_eq!((s, field_names(&e)), (422, vec!["version".to_owned()]));
    let (s, c) = put(http, format!("{base}/api/v1/me/consent"), &a.token, Some(json!({"version":"v7"}))).await;
    assert_eq!((s, c["accepted"].as_bool()), (200, Some(true)), "{c}");
    let r: Value = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code":"p-a"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["privacy"]["accepted"], true);

    // Phone: validated, answered masked, unique, never stored in clear.
    for bad in ["13812345678", "+8612812345678", "+86 13812345678"] {
        let (s, e) = put(http, format!("{base}/api/v1/me/phone"), &a.token, Some(json!({"phone": bad}))).await;
        assert_eq!((s, field_names(&e)), (422, vec!["phone".to_owned()]), "{bad}");
    }
    let (s, p) = put(http, format!("{base}/api/v1/me/phone"), &a.token, Some(json!({"phone": PHONE}))).await;
    assert_eq!((s, p["phone"].as_str()), (200, Some("138****5678")));
    let (s, e) = put(http, format!("{base}/api/v1/me/phone"), &b.token, Some(json!({"phone": PHONE}))).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("conflict")));
    let (_, me) = get(http, format!("{base}/api/v1/me"), &a.token).await;
    assert_eq!(me["phone"], "138****5678");
    // A merchant application's papers are personal data too.
    let (s, ap) = post(http, format!("{base}/api/v1/merchants/applications"), &a.token, json!({
        "name": "导出花坊", "category": "florist", "license_no": LICENSE, "contact_name": "王小花", "contact_phone": CONTACT
    })).await;
    assert_eq!(s, 201, "{ap}");
    let app_id = ap["id"].as_str().unwrap().to_owned();
    let (s, d) = post(http, format!("{base}/api/v1/admin/merchant-applications/{app_id}/approve"), &root.token, json!({})).await;
    assert_eq!(s, 200, "{d}");
    let bytes = stored_bytes(&tdb).await;
    let hay = String::from_utf8_lossy(&bytes);
    for clear in [PHONE_DIGITS, CONTACT_DIGITS, LICENSE] {
        assert!(!hay.contains(clear), "{clear} is in the database (or the log) in clear");
    }
    assert!(hay.contains("138****5678"), "the masked form is stored (the read above saw the rows)");

    // Export: everything about me, the phone and the papers in clear.
    let dm = direct(http, &base, &a, &b).await;
    let mut s1 = connect(server.addr, &a.token, Proto::Json).await;
    s1.say(1, &dm, "e-1", "导出我").await;
    put(http, format!("{base}/api/v1/me/blocks/{}", b.id), &a.token, None).await;
    let part = reqwest::multipart::Part::bytes(common::images::jpeg_with_metadata()).file_name("me.jpg");
    let r = http.post(format!("{base}/api/v1/uploads")).bearer_auth(&a.token).multipart(reqwest::multipart::Form::new().part("file", part)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let upload: Value = r.json().await.unwrap();
    assert_eq!(post(http, format!("{base}/api/v1/users/{}/report", b.id), &a.token, json!({"reason":"骚扰"})).await.0, 201);
    let (s, x) = get(http, format!("{base}/api/v1/me/export"), &a.token).await;
    assert_eq!(s, 200, "{x}");
    assert_eq!(x["phone"], PHONE);
    assert_eq!(x["account"]["id"], a.id.as_str());
    assert_eq!(x["privacy"]["accepted_version"], "v7");
    assert_eq!(x["blocks"][0]["user"], b.id.as_str());
    assert_eq!(x["conversations"][0]["id"], dm.as_str());
    assert_eq!(x["messages"][0]["body"]["text"], "导出我");
    assert_eq!(x["settings"]["dm_from"], "everyone");
    let apps = &x["merchant_applications"];
    assert_eq!((apps[0]["application"]["id"].as_str(), apps[0]["application"]["status"].as_str()), (Some(app_id.as_str()), Some("approved")), "{x}");
    assert_eq!((apps[0]["papers"]["license_no"].as_str(), apps[0]["papers"]["contact_phone"].as_str()), (Some(LICENSE), Some(CONTACT)));
    assert_eq!((x["merchant"]["id"].as_str(), x["merchant"]["status"].as_str()), (Some(a.id.as_str()), Some("active")), "{x}");
    assert_eq!(x["uploads"].as_array().unwrap().len(), 1, "{x}");
    assert_eq!((x["uploads"][0]["id"].as_str(), x["uploads"][0]["url"].as_str()), (upload["id"].as_str(), upload["url"].as_str()));
    let filed = x["filed"].as_array().unwrap();
    assert_eq!(filed.len(), 1, "{x}");
    assert_eq!(
        (filed[0]["kind"].as_str(), filed[0]["subject_kind"].as_str(), filed[0]["subject_id"].as_str(), filed[0]["reason"].as_str(), filed[0]["status"].as_str()),
        (Some("report"), Some("user"), Some(b.id.as_str()), Some("骚扰"), Some("open"))
    );
    assert!(filed[0]["text"].is_null(), "a report's excerpt is the reported user's text, not mine");
    // Someone else's export has none of it; an appeal is the appellant's.
    let (_, y) = get(http, format!("{base}/api/v1/me/export"), &b.token).await;
    assert_eq!((y["merchant_applications"].as_array().map(Vec::len), &y["merchant"], y["uploads"].as_array().map(Vec::len), y["filed"].as_array().map(Vec::len)), (Some(0), &Value::Null, Some(0), Some(0)), "{y}");
    assert_eq!(put(http, format!("{base}/api/v1/admin/users/{}/ban", b.id), &root.token, None).await.0, 204);
    let refused: Value = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code":"p-b"})).send().await.unwrap().json().await.unwrap();
    let appeal_token = refused["appeal_token"].as_str().expect("an appeal token");
    assert_eq!(post(http, format!("{base}/api/v1/appeals"), appeal_token, json!({"text":"我没有骚扰任何人"})).await.0, 201);
    let (s, y) = get(http, format!("{base}/api/v1/me/export"), &b.token).await;
    assert_eq!(s, 200, "a banned user exports: {y}");
    assert_eq!((y["filed"][0]["kind"].as_str(), y["filed"][0]["text"].as_str(), y["filed"][0]["subject_id"].as_str()), (Some("appeal"), Some("我没有骚扰任何人"), Some(b.id.as_str())), "{y}");
    drop(s1);

    // Stopped: nothing of the clear numbers anywhere, the log included (SQLite: in the data
    // dir, read with the database files; MySQL: read here). The log was written: it is no
    // empty file that proves nothing.
    server.sigterm();
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        let _ = server.child.wait();
        server
    })
    .await
    .unwrap();
    let log = server.log_text();
    assert!(log.contains("DEBUG"), "the log is captured at debug level: {} bytes", log.len());
    for clear in [PHONE_DIGITS, CONTACT_DIGITS, LICENSE] {
        assert!(!log.contains(clear), "{clear} in the log");
    }
    let hay = String::from_utf8_lossy(&stored_bytes(&tdb).await).into_owned();
    for clear in [PHONE_DIGITS, CONTACT_DIGITS, LICENSE] {
        assert!(!hay.contains(clear), "{clear} stored in clear");
    }
}

#[tokio::test]
async fn phone_consent_export_sqlite() {
    phone_consent_export(Db::Sqlite).await;
}

#[tokio::test]
async fn phone_consent_export_mysql() {
    phone_consent_export(Db::MySql).await;
}

/// Cursor pages: every item once across pages while new conversations are made between the
/// page reads; bad limits and cursors are named.
#[tokio::test]
async fn cursor_pages_neither_repeat_nor_skip() {
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    let app = spawn_app(&tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let me = login(http, &base, "pg-me").await;
    let mut before = Vec::new();
    for i in 0..7 {
        let other = login(http, &base, &format!("pg-{i}")).await;
        before.push(direct(http, &base, &me, &other).await);
    }
    let mut seen = Vec::new();
    let mut url = format!("{base}/api/v1/conversations?limit=3");
    let mut pages = 0;
    loop {
        let (s, page) = get(http, url.clone(), &me.token).await;
        assert_eq!(s, 200, "{page}");
        pages += 1;
        seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        // A conversation made between page reads is neither repeated nor makes one skipped.
        let other = login(http, &base, &format!("pg-new-{pages}")).await;
        direct(http, &base, &me, &other).await;
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("{base}/api/v1/conversations?limit=3&cursor={c}"),
            None => break,
        }
    }
    before.reverse();
    assert_eq!(seen, before, "newest first, each once");
    assert_eq!(pages, 3);
    let (s, e) = get(http, format!("{base}/api/v1/conversations?limit=0"), &me.token).await;
    assert_eq!((s, field_names(&e)), (422, vec!["limit".to_owned()]));
    let (s, e) = get(http, format!("{base}/api/v1/conversations?limit=101&cursor=bm9wZQ"), &me.token).await;
    assert_eq!((s, field_names(&e)), (422, vec!["limit".to_owned(), "cursor".to_owned()]));
    let (s, page) = get(http, format!("{base}/api/v1/conversations"), &me.token).await;
    assert_eq!((s, page["items"].as_array().unwrap().len()), (200, 10), "default limit 20, all 10 here");
    app.shutdown.cancel();
}

/// `/openapi.json` lists every route the server has, and `/docs` serves the browsable page and
/// its assets from the binary.
#[tokio::test]
async fn openapi_and_docs() {
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    let app = spawn_app(&tdb, |_| {}).await;
    let base = app.base();
    let doc: Value = app.http.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in ["/api/v1/auth/login", "/api/v1/me", "/api/v1/me/settings", "/api/v1/me/blocks/{user}", "/api/v1/conversations", "/healthz"] {
        assert!(paths.contains_key(p), "{p} documented");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["WireMessage"].is_object(), "history uses the socket's message type");
    // Every cursor-paged list documents the bounds of its `limit` (what the server enforces).
    let (mut paged, mut unbounded) = (Vec::new(), Vec::new());
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let Some(params) = op["parameters"].as_array() else { continue };
            let query = |name: &str| params.iter().find(|p| p["in"] == "query" && p["name"] == name);
            if query("cursor").is_none() {
                continue;
            }
            let schema = query("limit").map(|l| &l["schema"]);
            if schema.map(|s| (s["minimum"].as_f64(), s["maximum"].as_f64())) != Some((Some(1.0), Some(100.0))) {
                unbounded.push(format!("{method} {path}"));
            }
            paged.push(format!("{method} {path}"));
        }
    }
    assert!(unbounded.is_empty(), "lists whose `limit` has no documented bounds 1..100: {unbounded:?}");
    for p in ["get /api/v1/conversations", "get /api/v1/admin/users", "get /api/v1/merchants"] {
        assert!(paged.iter().any(|x| x == p), "{p} is a cursor-paged list: {paged:?}");
    }
    let page = app.http.get(format!("{base}/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-eval"), "the docs page has a CSP: {csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "the Swagger UI page");
    let js = app.http.get(format!("{base}/docs/swagger-ui-bundle.js")).send().await.unwrap();
    assert_eq!(js.status(), 200, "assets come from the binary");
    // Private answers are never cached; every answer says nosniff.
    let me = login(&app.http, &base, "oa-me").await;
    for path in ["/api/v1/me/export", "/api/v1/me", "/api/v1/conversations?limit=0"] {
        let r = app.http.get(format!("{base}{path}")).bearer_auth(&me.token).send().await.unwrap();
        assert_eq!(r.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{path}");
        assert_eq!(r.headers().get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{path}");
    }
    let r = app.http.get(format!("{base}/api/v1/merchants")).send().await.unwrap();
    assert_eq!(r.headers().get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"));
    app.shutdown.cancel();
}

/// Sets a stored message's time back (to test the recall window without waiting for it).
async fn age_message(tdb: &TestDb, conv: &str, seq: u64, ms: i64) {
    use sqlx::Connection;
    let sql = "UPDATE messages SET ts = ts - ? WHERE conv_id = ? AND seq = ?";
    let conv: i64 = conv.parse().unwrap();
    match &tdb.mysql {
        Some(m) => {
            let mut c = sqlx::MySqlConnection::connect(&m.url).await.unwrap();
            sqlx::query(sql).bind(ms).bind(conv).bind(seq as i64).execute(&mut c).await.unwrap();
        }
        None => {
            let url = format!("sqlite:{}", tdb.dir.0.join("jiebanke.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sql).bind(ms).bind(conv).bind(seq as i64).execute(&mut c).await.unwrap();
        }
    }
}

async fn recall(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let a = login(http, &base, "rc-a").await;
    let b = login(http, &base, "rc-b").await;
    let dm = direct(http, &base, &a, &b).await;
    let mut sa = connect(app.addr, &a.token, Proto::Json).await;
    let mut sb = connect(app.addr, &b.token, Proto::Json).await;
    let seq = sa.say(1, &dm, "rc-1", "发错了").await["seq"].as_u64().unwrap();
    assert_eq!(sb.recv_type("msg").await["seq"], seq);
    // Someone else's message: forbidden. No such message: not_found.
    sb.send(json!({"type":"recall","id":2,"conv":dm,"seq":seq})).await;
    assert_eq!(sb.recv_type("error").await["code"], "forbidden");
    sa.send(json!({"type":"recall","id":3,"conv":dm,"seq":999})).await;
    assert_eq!(sa.recv_type("error").await["code"], "not_found");
    // Recalled: the sender's reply carries the id, every member is told.
    sa.send(json!({"type":"recall","id":4,"conv":dm,"seq":seq})).await;
    // Two frames for the sender, in either order: the reply (with the id) and the broadcast
    // every member's sessions get (without).
    let (r1, r2) = (sa.recv_type("msg_recalled").await, sa.recv_type("msg_recalled").await);
    let (reply, told) = if r1.get("id").is_some() { (r1, r2) } else { (r2, r1) };
    assert_eq!((reply["id"].as_u64(), reply["seq"].as_u64(), reply["conv"].as_str()), (Some(4), Some(seq), Some(dm.as_str())), "{reply}");
    assert_eq!((told.get("id"), told["seq"].as_u64()), (None, Some(seq)), "{told}");
    let r = sb.recv_type("msg_recalled").await;
    assert_eq!((r.get("id"), r["seq"].as_u64()), (None, Some(seq)), "{r}");
    let (_, h) = get(http, format!("{base}/api/v1/conversations/{dm}/messages"), &b.token).await;
    assert_eq!(h["messages"][0]["body"], json!({"kind":"recalled"}), "a tombstone, the text gone: {h}");
    // Again: fine, nobody is told twice.
    sa.send(json!({"type":"recall","id":5,"conv":dm,"seq":seq})).await;
    assert_eq!(sa.recv_type("msg_recalled").await["id"], 5);
    sb.expect_silence(Duration::from_millis(300)).await;
    // Past two minutes: conflict.
    let old = sa.say(6, &dm, "rc-2", "老消息").await["seq"].as_u64().unwrap();
    sb.recv_type("msg").await;
    age_message(&tdb, &dm, old, 121_000).await;
    sa.send(json!({"type":"recall","id":7,"conv":dm,"seq":old})).await;
    assert_eq!(sa.recv_type("error").await["code"], "conflict");
    // A client cannot send a tombstone.
    sa.send(json!({"type":"send","id":8,"conv":dm,"cmid":"rc-3","body":{"kind":"recalled"}})).await;
    assert_eq!(sa.recv_type("error").await["code"], "invalid");
    drop((sa, sb));
    app.shutdown.cancel();
}

#[tokio::test]
async fn recall_sqlite() {
    recall(Db::Sqlite).await;
}

#[tokio::test]
async fn recall_mysql() {
    recall(Db::MySql).await;
}

async fn erase(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |c| c.admins = vec![("dev".into(), "er-root".into())]).await;
    let (base, http) = (app.base(), &app.http);
    let root = login(http, &base, "er-root").await;
    let e = login(http, &base, "er-e").await;
    let f = login(http, &base, "er-f").await;
    let (s, p) = put(http, format!("{base}/api/v1/me/phone"), &e.token, Some(json!({"phone": PHONE}))).await;
    assert_eq!((s, p["phone"].as_str()), (200, Some("138****5678")), "{p}");
    const BIO: &str = "要被删除的简介";
    const TEXT: &str = "我的消息 er-erase-8f3a";
    let (s, p) = patch(http, format!("{base}/api/v1/me"), &e.token, json!({ "bio": BIO })).await;
    assert_eq!((s, p["bio"].as_str()), (200, Some(BIO)), "{p}");
    let dm = direct(http, &base, &e, &f).await;
    let mut se1 = connect(app.addr, &e.token, Proto::Json).await;
    let mut se2 = connect(app.addr, &e.token, Proto::MsgPack).await;
    assert_eq!(se1.say(1, &dm, "er-1", TEXT).await["type"], "ack");
    // The scan below sees them while they are there.
    let before = String::from_utf8_lossy(&stored_bytes(&tdb).await).into_owned();
    for there in ["138****5678", BIO, TEXT] {
        assert!(before.contains(there), "{there} is stored before the erasure");
    }

    assert_eq!(delete(http, format!("{base}/api/v1/me"), &e.token).await, 204);
    for s in [&mut se1, &mut se2] {
        let (code, reason) = s.expect_close(Duration::from_secs(5)).await.expect("a close frame");
        assert_eq!((code, reason.as_str()), (4004, "account_erased"));
    }
    // The old token is refused everywhere.
    let (s, x) = get(http, format!("{base}/api/v1/me"), &e.token).await;
    assert_eq!((s, x["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(delete(http, format!("{base}/api/v1/me"), &e.token).await, 401);
    let upgrade = try_connect(app.addr, &e.token, Proto::Json).await;
    match upgrade {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        Err(other) => panic!("upgrade: {other}"),
        Ok(_) => panic!("an erased account's token opened a session"),
    }
    // What others see: an anonymized profile, a tombstone.
    let (_, p) = get(http, format!("{base}/api/v1/users/{}", e.id), &f.token).await;
    assert_eq!((p["nickname"].as_str(), p["erased"].as_bool(), p["bio"].as_str()), (Some("已注销用户"), Some(true), Some("")));
    let (_, h) = get(http, format!("{base}/api/v1/conversations/{dm}/messages"), &f.token).await;
    assert_eq!(h["messages"][0]["body"], json!({"kind":"deleted"}));
    // Nothing of it is left in the stored bytes (SQLite's files, free pages and WAL included;
    // every text column on MySQL): not the masked phone, the bio, or the message's text.
    let after = String::from_utf8_lossy(&stored_bytes(&tdb).await).into_owned();
    for gone in ["138****5678", BIO, TEXT] {
        assert!(!after.contains(gone), "{gone} is still stored after the erasure");
    }
    // The same identity logs in as a new account.
    let again = login(http, &base, "er-e").await;
    assert_ne!(again.id, e.id);

    // A banned user may still erase; the identity stays banned.
    let x = login(http, &base, "er-x").await;
    assert_eq!(put(http, format!("{base}/api/v1/admin/users/{}/ban", x.id), &root.token, None).await.0, 204);
    assert_eq!(get(http, format!("{base}/api/v1/me"), &x.token).await.0, 403);
    assert_eq!(get(http, format!("{base}/api/v1/me/export"), &x.token).await.0, 200, "a banned user may export");
    assert_eq!(delete(http, format!("{base}/api/v1/me"), &x.token).await, 204);
    let r = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code":"er-x"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "banned");
    app.shutdown.cancel();
}

#[tokio::test]
async fn erase_sqlite() {
    erase(Db::Sqlite).await;
}

#[tokio::test]
async fn erase_mysql() {
    erase(Db::MySql).await;
}
