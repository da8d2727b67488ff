//! The staff dashboard and the staff's user search, on SQLite and MariaDB: every count moves
//! with what it counts (users, today's new and active ones, online sessions, today's
//! messages, merchants, pending applications, open leads and moderation items), and users are
//! found by phone (through the blind index), id or nickname.

mod common;
use common::*;
use serde_json::{json, Value};

async fn dashboard_of(http: &reqwest::Client, base: &str, token: &str) -> Value {
    let (s, d) = get(http, format!("{base}/api/v1/admin/dashboard"), token).await;
    assert_eq!(s, 200, "{d}");
    d
}

/// Polls until `field` of the dashboard is `want` (activity is recorded in the background).
async fn eventually(http: &reqwest::Client, base: &str, token: &str, field: &str, want: u64) -> Value {
    for _ in 0..200 {
        let d = dashboard_of(http, base, token).await;
        if d[field].as_u64() == Some(want) {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{field} never became {want}: {}", dashboard_of(http, base, token).await);
}

async fn dashboard(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |c| c.admins = vec![("dev".into(), "db-root".into())]).await;
    let (base, http) = (app.base(), &app.http);
    let root = login(http, &base, "db-root").await;
    let op = staff_account(http, &base, &root.token, "db-operator", "operator").await;
    let d = eventually(http, &base, &op.token, "daily_active_users", 1).await;
    assert_eq!((d["users"].as_u64(), d["new_users_today"].as_u64(), d["online_sessions"].as_u64()), (Some(1), Some(1), Some(0)), "the staff account is not a user of the product: {d}");
    let zone_today = d["day"].as_str().unwrap().to_owned();
    assert_eq!(zone_today.len(), 10);

    let a = login(http, &base, "db-a").await;
    let b = login(http, &base, "db-b").await;
    http.put(format!("{base}/api/v1/me/phone")).bearer_auth(&b.token).json(&json!({"phone": "+8613812345678"})).send().await.unwrap();
    http.patch(format!("{base}/api/v1/me")).bearer_auth(&b.token).json(&json!({"nickname": "洱海小白"})).send().await.unwrap();
    let conv = direct(http, &base, &a, &b).await;
    let mut ws = connect(app.addr, &a.token, Proto::Json).await;
    let _ws2 = connect(app.addr, &a.token, Proto::Json).await;
    let _ws3 = connect(app.addr, &b.token, Proto::Json).await;
    ws.say(1, &conv, "db-1", "你好").await;
    ws.say(2, &conv, "db-2", "明天见").await;
    let (_, app1) = post(http, format!("{base}/api/v1/merchants/applications"), &a.token, json!({"name": "花坊", "category": "florist", "license_no": "91350100M000100Y43", "contact_name": "王", "contact_phone": "+8613812345678"})).await;
    post(http, format!("{base}/api/v1/merchants/applications"), &b.token, json!({"name": "农场", "category": "farm", "license_no": next_license(), "contact_name": "李", "contact_phone": "+8613812345679"})).await;
    post(http, format!("{base}/api/v1/admin/merchant-applications/{}/approve", app1["id"].as_str().unwrap()), &op.token, json!({})).await;
    http.post(format!("{base}/api/v1/merchant-leads")).json(&json!({"company": "C", "contact_name": "L", "phone": "+8613912345678", "category": "farm", "city": "大理"})).send().await.unwrap();
    post(http, format!("{base}/api/v1/users/{}/report", a.id), &b.token, json!({"reason": "r"})).await;

    let d = eventually(http, &base, &op.token, "daily_active_users", 3).await;
    let got = |k: &str| d[k].as_u64().unwrap();
    assert_eq!(
        (got("users"), got("new_users_today"), got("online_sessions"), got("messages_today"), got("merchants"), got("pending_applications"), got("open_leads"), got("open_moderation")),
        (3, 3, 3, 2, 1, 1, 1, 1),
        "{d}"
    );
    assert_eq!(get(http, format!("{base}/api/v1/admin/dashboard"), &a.token).await.0, 403);

    // Sessions closed, fewer online; an erased user is not counted.
    drop(ws);
    eventually(http, &base, &op.token, "online_sessions", 2).await;
    http.delete(format!("{base}/api/v1/me")).bearer_auth(&a.token).send().await.unwrap();
    eventually(http, &base, &op.token, "users", 2).await;

    // Looking users up: by phone (the blind index), by id, by nickname.
    let search = |q: &str| {
        let (http, url, token) = (http.clone(), format!("{base}/api/v1/admin/users?q={}", urlenc(q)), op.token.clone());
        async move { get(&http, url, &token).await }
    };
    let (s, v) = search("+8613812345678").await;
    assert_eq!((s, v["items"].as_array().unwrap().len(), v["items"][0]["id"].as_str()), (200, 1, Some(b.id.as_str())), "{v}");
    assert_eq!(v["items"][0]["phone"], "138****5678");
    let (_, v) = search(&b.id).await;
    assert!(v["items"].as_array().unwrap().iter().any(|u| u["id"] == b.id.as_str()), "{v}");
    let (_, v) = search("洱海").await;
    assert_eq!(v["items"].as_array().unwrap().iter().map(|u| u["nickname"].as_str().unwrap()).collect::<Vec<_>>(), vec!["洱海小白"]);
    let (_, v) = search("100%_!").await;
    assert!(v["items"].as_array().unwrap().is_empty(), "wildcards are text: {v}");
    let (s, v) = search("").await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("q")));
    assert_eq!(search("+86123").await.0, 422);
    assert_eq!(get(http, format!("{base}/api/v1/admin/users?q=x"), &b.token).await.0, 403);
    app.shutdown.cancel();
}

fn urlenc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn dashboard_sqlite() {
    dashboard(Db::Sqlite).await;
}

#[tokio::test]
async fn dashboard_mysql() {
    dashboard(Db::MySql).await;
}
