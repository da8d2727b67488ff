//! Staff accounts end to end, on SQLite and MariaDB: the first admin made with the real binary's
//! `jiebanke staff create`, console logins with username, password and a TOTP code computed
//! here from the secret it printed (RFC 6238; the fixed-clock vectors are chat-core's unit
//! tests), a code used once, failures limited per (username, address) and per address (429
//! `rate_limited`, the owner elsewhere not held, an unknown name refused byte for byte as a
//! wrong password), staff made and disabled by an admin (a disabled account's sessions end at
//! once), all audited. Client addresses come through a trusted proxy's `X-Forwarded-For`, as
//! in a deployment.

mod common;
use common::*;
use jiebanke_chat_core::staff::totp;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

/// The code of `secret` for the step `offset` steps from now.
fn code(secret: &[u8], offset: i64) -> String {
    let step = (totp::step_at(jiebanke_chat_core::now_ms()) as i64 + offset) as u64;
    format!("{:06}", totp::hotp(secret, step, 6))
}

async fn staff_login(http: &reqwest::Client, base: &str, username: &str, password: &str, totp: &str) -> (u16, Value) {
    let r = http.post(format!("{base}/api/v1/auth/staff/login")).json(&json!({"username": username, "password": password, "totp": totp})).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A login from `client` (behind the trusted proxy): the status, `Retry-After` and the body's
/// bytes.
async fn staff_login_from(http: &reqwest::Client, base: &str, client: &str, username: &str, password: &str, totp: &str) -> (u16, Option<String>, String) {
    let r = http
        .post(format!("{base}/api/v1/auth/staff/login"))
        .header("x-forwarded-for", client)
        .json(&json!({"username": username, "password": password, "totp": totp}))
        .send()
        .await
        .unwrap();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), retry, r.text().await.unwrap())
}

/// `jiebanke staff create` on the test's database; the secret it printed.
fn cli_create(tdb: &TestDb, username: &str, role: &str, password: &str) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jiebanke"));
    cmd.args(["staff", "create", "--username", username, "--role", role])
        .env("JBK_DATA_DIR", &tdb.dir.0)
        .env("JBK_STAFF_PASSWORD", password)
        .env_remove("JBK_DATABASE_URL")
        .env_remove("JBK_DATA_KEY")
        .env_remove("JBK_ENV");
    if let Some(url) = tdb.url() {
        cmd.env("JBK_DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn secret_of(cli_output: &str) -> Vec<u8> {
    let line = cli_output.lines().find(|l| l.starts_with("TOTP secret")).unwrap_or_else(|| panic!("no secret in {cli_output}"));
    decode_base32(line.rsplit(' ').next().unwrap().trim())
}

async fn console_logins(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    // The first admin, from the command line (the data key and database the server will use).
    let (ok, out) = cli_create(&tdb, "root", "admin", "short");
    assert!(!ok && out.contains("password"), "a weak password is refused: {out}");
    let (ok, out) = cli_create(&tdb, "root", "admin", PASSWORD);
    assert!(ok, "{out}");
    assert!(out.contains("otpauth://totp/Jiebanke:root?secret="), "{out}");
    let root_secret = secret_of(&out);
    let (ok, out) = cli_create(&tdb, "root", "admin", PASSWORD);
    assert!(!ok && out.contains("taken"), "{out}");

    let app = spawn_app(&tdb, |c| c.http.trusted_proxies = jiebanke::listener::parse_trusted_proxies("127.0.0.1/32").unwrap()).await;
    let (base, http) = (app.base(), &app.http);
    let first = code(&root_secret, 0);
    let (s, v) = staff_login(http, &base, "root", PASSWORD, &first).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["user"]["role"].as_str(), v["user"]["provider"].as_str(), v["user"]["nickname"].as_str()), (Some("admin"), Some("staff"), Some("root")));
    let root = v["token"].as_str().unwrap().to_owned();
    let root_id = v["user"]["id"].as_str().unwrap().to_owned();
    // The same code again is refused: each code logs in once.
    let (s, v) = staff_login(http, &base, "root", PASSWORD, &first).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "{v}");
    let (s, _) = staff_login(http, &base, "root", PASSWORD, &code(&root_secret, 1)).await;
    assert_eq!(s, 200, "the next step's code (clock drift of one step) works once");

    // The admin makes an operator; its secret is shown once.
    let (s, e) = post(http, format!("{base}/api/v1/admin/staff"), &root, json!({"username": "anna", "password": PASSWORD, "role": "operator"})).await;
    assert_eq!(s, 201, "{e}");
    let anna_secret = decode_base32(e["totp_secret"].as_str().unwrap());
    let anna_id = e["id"].as_str().unwrap().to_owned();
    let (s, v) = post(http, format!("{base}/api/v1/admin/staff"), &root, json!({"username": "Anna!", "password": "x", "role": "boss"})).await;
    assert_eq!(s, 422);
    let fields: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["username", "password", "role"]);
    assert_eq!(post(http, format!("{base}/api/v1/admin/staff"), &root, json!({"username": "anna", "password": PASSWORD, "role": "admin"})).await.0, 409);
    let traveller = login(http, &base, "staff-traveller").await;
    assert_eq!(post(http, format!("{base}/api/v1/admin/staff"), &traveller.token, json!({"username": "evil", "password": PASSWORD, "role": "admin"})).await.0, 403);

    // Every wrong part answers the same 401, byte for byte: an unknown username too.
    let mut bodies = Vec::new();
    for (user, pw, c) in [("anna", "wrong password!!", code(&anna_secret, 0)), ("anna", PASSWORD, "000000".to_owned()), ("nobody", PASSWORD, code(&anna_secret, 0))] {
        let (s, retry, body) = staff_login_from(http, &base, "192.0.2.50", user, pw, &c).await;
        assert_eq!((s, retry), (401, None), "{user}: {body}");
        bodies.push(body);
    }
    assert_eq!(bodies[0], r#"{"code":"unauthorized","message":"unauthorized: invalid username, password or code"}"#);
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    let (s, v) = staff_login(http, &base, "anna", PASSWORD, &code(&anna_secret, 0)).await;
    assert_eq!(s, 200, "{v}");
    let anna = v["token"].as_str().unwrap().to_owned();
    assert_eq!(get(http, format!("{base}/api/v1/admin/moderation"), &anna).await.0, 200, "an operator works the queue");
    assert_eq!(get(http, format!("{base}/api/v1/admin/staff"), &anna).await.0, 403, "but does not manage staff");

    // A stranger fails five times as anna from one address: that pair is limited (429, even
    // with the right password and code), for the rest of its 15 minutes...
    let stranger = "198.51.100.7";
    for _ in 0..5 {
        assert_eq!(staff_login_from(http, &base, stranger, "anna", "wrong password!!", "000000").await.0, 401);
    }
    let (s, retry, body) = staff_login_from(http, &base, stranger, "anna", PASSWORD, &code(&anna_secret, 1)).await;
    assert_eq!(s, 429, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "rate_limited");
    assert!(v["retry_after_ms"].as_u64().unwrap() > 14 * 60 * 1000, "{v}");
    assert!(retry.unwrap().parse::<u64>().unwrap() > 14 * 60, "Retry-After in seconds");
    // ... but anna, from her own address, logs in (with the code the stranger could not use).
    let (s, _, body) = staff_login_from(http, &base, "203.0.113.5", "anna", PASSWORD, &code(&anna_secret, 1)).await;
    assert_eq!(s, 200, "the owner is not locked out: {body}");
    // An unknown username is limited the same way, with the same body but for the wait.
    for _ in 0..5 {
        assert_eq!(staff_login_from(http, &base, "198.51.100.8", "ghost", "wrong password!!", "000000").await.0, 401);
    }
    let (s, _, ghost) = staff_login_from(http, &base, "198.51.100.8", "ghost", "wrong password!!", "000000").await;
    let ghost: Value = serde_json::from_str(&ghost).unwrap();
    assert_eq!((s, ghost["code"].as_str(), ghost["message"].as_str()), (429, v["code"].as_str(), v["message"].as_str()));
    // One address spraying twenty names is limited whatever the name, the right one too.
    let sprayer = "198.51.100.9";
    for i in 0..20 {
        assert_eq!(staff_login_from(http, &base, sprayer, &format!("guess{i}"), "wrong password!!", "000000").await.0, 401, "guess {i}");
    }
    assert_eq!(staff_login_from(http, &base, sprayer, "root", PASSWORD, &code(&root_secret, 0)).await.0, 429);
    // Ten attempts sent at once: five are checked (401), the others are over the limit.
    let racing = futures_util::future::join_all((0..10).map(|_| staff_login_from(http, &base, "198.51.100.10", "racer", "wrong password!!", "000000"))).await;
    let mut statuses: Vec<u16> = racing.iter().map(|r| r.0).collect();
    statuses.sort();
    assert_eq!(statuses, [[401; 5], [429; 5]].concat(), "attempts at once cannot pass the limit");
    let (_, list) = get(http, format!("{base}/api/v1/admin/staff"), &root).await;
    let anna_row = list["items"].as_array().unwrap().iter().find(|i| i["username"] == "anna").unwrap().clone();
    assert!(anna_row.get("totp_secret").is_none() && anna_row.get("password_hash").is_none(), "{anna_row}");

    // Disabled: her sessions end at once (the token she holds answers 401).
    assert_eq!(post(http, format!("{base}/api/v1/admin/staff/{root_id}/disable"), &root, json!({})).await.0, 422, "not yourself");
    let (s, d) = post(http, format!("{base}/api/v1/admin/staff/{anna_id}/disable"), &root, json!({})).await;
    assert_eq!((s, d["disabled"].as_bool(), d["role"].as_str()), (200, Some(true), Some("none")), "{d}");
    assert_eq!(get(http, format!("{base}/api/v1/admin/moderation"), &anna).await.0, 401, "her sessions ended with it");
    assert_eq!(post(http, format!("{base}/api/v1/admin/staff/{anna_id}/disable"), &root, json!({})).await.0, 409);
    let (s, en) = post(http, format!("{base}/api/v1/admin/staff/{anna_id}/enable"), &root, json!({})).await;
    assert_eq!((s, en["disabled"].as_bool()), (200, Some(false)));
    assert_eq!(post(http, format!("{base}/api/v1/admin/staff/{}/disable", traveller.id), &root, json!({})).await.0, 404, "not a staff account");

    // The audit log: made from the command line, made by root, anna's pair limited (the account
    // as actor, the stranger's address), disabled, enabled; nothing for unknown names.
    let (_, log) = get(http, format!("{base}/api/v1/admin/audit"), &root).await;
    let got: Vec<(String, String, Option<String>)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actor"].as_str().unwrap().to_owned(), e["ip"].as_str().map(str::to_owned)))
        .collect();
    let local = Some("127.0.0.1".to_owned());
    assert_eq!(got, vec![
        ("staff.enable".to_owned(), root_id.clone(), local.clone()),
        ("staff.disable".to_owned(), root_id.clone(), local.clone()),
        ("staff.login_limited".to_owned(), anna_id.clone(), Some(stranger.to_owned())),
        ("staff.create".to_owned(), root_id.clone(), local.clone()),
        ("staff.create".to_owned(), root_id.clone(), Some("cli".to_owned())),
    ]);
    assert!(!log.to_string().contains(PASSWORD));
    let limited = log["items"].as_array().unwrap().iter().find(|e| e["action"] == "staff.login_limited").unwrap();
    assert_eq!(limited["after"], json!({"username": "anna", "address": stranger, "failures": 5}), "{limited}");

    // A staff account erased takes its credentials with it: no login, the username free again.
    // (Anna used this step's codes; cara, new, logs in to erase herself.)
    let (s, e) = post(http, format!("{base}/api/v1/admin/staff"), &root, json!({"username": "cara", "password": PASSWORD, "role": "operator"})).await;
    assert_eq!(s, 201, "{e}");
    let cara_secret = decode_base32(e["totp_secret"].as_str().unwrap());
    let (s, v) = staff_login(http, &base, "cara", PASSWORD, &code(&cara_secret, 0)).await;
    assert_eq!(s, 200, "{v}");
    let cara = v["token"].as_str().unwrap().to_owned();
    let r = http.delete(format!("{base}/api/v1/me")).bearer_auth(&cara).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(staff_login(http, &base, "cara", PASSWORD, &code(&cara_secret, 1)).await.0, 401);
    assert_eq!(post(http, format!("{base}/api/v1/admin/staff"), &root, json!({"username": "cara", "password": PASSWORD, "role": "operator"})).await.0, 201);
    app.shutdown.cancel();
}

#[tokio::test]
async fn console_logins_sqlite() {
    console_logins(Db::Sqlite).await;
}

#[tokio::test]
async fn console_logins_mysql() {
    console_logins(Db::MySql).await;
}
