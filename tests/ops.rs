//! Merchants' order alerts and the admin moderation feed on the embedded default (SQLite, the
//! in-process outbox relay): live alerts, acks, redelivery on connect oldest first; the
//! banned-word filter, reports, deletes with tombstones, bans and the admin role.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn app_with(db: &TestDb, words: Option<&std::path::Path>) -> TestApp {
    let words = words.map(|p| p.to_path_buf());
    spawn_app(db, move |c| {
        c.admins = vec![("dev".into(), "root".into())];
        c.banned_words_file = words;
    })
    .await
}

async fn order(app: &TestApp, admin: &LoggedIn, merchant: &LoggedIn, item: &str) -> Value {
    let (s, v) = post(&app.http, format!("{}/api/v1/admin/orders", app.base()), &admin.token, json!({"merchant": merchant.id, "item": item, "amount_fen": 1990})).await;
    assert_eq!(s, 201, "{v}");
    v
}

#[tokio::test]
async fn alerts_reach_every_session_of_the_merchant_and_come_again_until_acked() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = app_with(&db, None).await;
    let root = login(&app.http, &app.base(), "root").await;
    let shop = login(&app.http, &app.base(), "flower-shop").await;
    let buyer = login(&app.http, &app.base(), "buyer").await;

    // Only admins create orders (until payments exist); bad input gets a code.
    let (s, v) = post(&app.http, format!("{}/api/v1/admin/orders", app.base()), &buyer.token, json!({"merchant": shop.id, "item": "x", "amount_fen": 1})).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("forbidden")));
    let (s, v) = post(&app.http, format!("{}/api/v1/admin/orders", app.base()), &root.token, json!({"merchant": shop.id, "item": "x", "amount_fen": 0})).await;
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid")));
    let (s, v) = post(&app.http, format!("{}/api/v1/admin/orders", app.base()), &root.token, json!({"merchant": "999999", "item": "x", "amount_fen": 5})).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));

    let mut phone = connect(app.addr, &shop.token, Proto::Json).await;
    let mut tablet = connect(app.addr, &shop.token, Proto::MsgPack).await;
    let o = order(&app, &root, &shop, "玫瑰 x 9").await;
    let mut alert_id = String::new();
    for c in [&mut phone, &mut tablet] {
        let a = c.recv_type("order_alert").await;
        assert_eq!(a["order"]["id"], o["id"], "{a}");
        assert_eq!(a["order"]["item"], "玫瑰 x 9");
        assert_eq!(a["order"]["amount_fen"], 1990);
        alert_id = a["alert"].as_str().unwrap().to_owned();
    }

    // Not acked: it comes again on the next connect.
    drop(tablet);
    let mut again = connect(app.addr, &shop.token, Proto::Json).await;
    let a = again.recv_type("order_alert").await;
    assert_eq!(a["alert"], alert_id.as_str());

    // Acked: never again. Someone else's alert, or a bad id, is an error.
    let mut other = connect(app.addr, &buyer.token, Proto::Json).await;
    other.send(json!({"type":"alert_ack","id":1,"alert":alert_id})).await;
    let e = other.recv_type("error").await;
    assert_eq!(e["code"], "not_found", "{e}");
    other.send(json!({"type":"alert_ack","id":2,"alert":"abc"})).await;
    assert_eq!(other.recv_type("error").await["code"], "invalid");
    phone.send(json!({"type":"alert_ack","id":3,"alert":alert_id})).await;
    let ok = phone.recv_type("alert_acked").await;
    assert_eq!((ok["id"].as_u64(), ok["alert"].as_str()), (Some(3), Some(alert_id.as_str())));
    drop(again);
    let mut later = connect(app.addr, &shop.token, Proto::Json).await;
    later.send(json!({"type":"ping","id":9})).await;
    assert_eq!(later.recv().await["type"], "pong", "no alert before the pong: it was acked");

    // Offline merchant: every alert on connect, oldest first.
    drop(phone);
    drop(later);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(order(&app, &root, &shop, &format!("小羊认领 #{i}")).await["id"].as_str().unwrap().to_owned());
    }
    // The REST view lists them too, oldest first.
    let wait_pending = async {
        loop {
            let (_, v) = get(&app.http, format!("{}/api/v1/alerts", app.base()), &shop.token).await;
            if v["items"].as_array().map(|a| a.len()) == Some(5) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let pending = tokio::time::timeout(WAIT, wait_pending).await.expect("five alerts recorded");
    let rest_order: Vec<&str> = pending["items"].as_array().unwrap().iter().map(|a| a["order"]["id"].as_str().unwrap()).collect();
    assert_eq!(rest_order, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let mut back = connect(app.addr, &shop.token, Proto::Json).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(back.recv_type("order_alert").await["order"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, ids, "oldest first");
    // Acked over REST as well.
    let first = pending["items"][0]["alert"].as_str().unwrap();
    let (s, _) = post(&app.http, format!("{}/api/v1/alerts/{first}/ack", app.base()), &shop.token, json!({})).await;
    assert_eq!(s, 200);
    let (_, v) = get(&app.http, format!("{}/api/v1/alerts", app.base()), &shop.token).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
    assert_eq!(metric(&app.metrics_base(), "jbk_outbox_dead").await, Some(0.0));
}

#[tokio::test]
async fn flagged_and_reported_messages_reach_admins_and_admins_act() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let words = db.dir.0.join("banned.txt");
    std::fs::write(&words, "# 违禁词\n赌博\nspam\n").unwrap();
    let app = app_with(&db, Some(&words)).await;
    let base = app.base();
    let root = login(&app.http, &base, "root").await;
    let a = login(&app.http, &base, "mod-a").await;
    let b = login(&app.http, &base, "mod-b").await;
    let outsider = login(&app.http, &base, "mod-out").await;
    let conv = direct(&app.http, &base, &a, &b).await;
    let mut admin = connect(app.addr, &root.token, Proto::Json).await;
    let mut ca = connect(app.addr, &a.token, Proto::Json).await;
    let mut cb = connect(app.addr, &b.token, Proto::MsgPack).await;

    // A clean message makes no item; a flagged one is delivered and becomes an item.
    assert_eq!(ca.say(1, &conv, "m1", "一起去看日出").await["type"], "ack");
    let ack = ca.say(2, &conv, "m2", "来赌博吧 SPAM").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let seq = ack["seq"].as_u64().unwrap();
    assert_eq!(cb.recv_type("msg").await["seq"], 1);
    assert_eq!(cb.recv_type("msg").await["seq"], seq);
    let m = admin.recv_type("moderation").await;
    assert_eq!(m["item"]["kind"], "flagged", "{m}");
    assert_eq!((m["item"]["conv"].as_str(), m["item"]["seq"].as_u64()), (Some(conv.as_str()), Some(seq)));
    assert_eq!(m["item"]["author"], a.id.as_str());
    assert_eq!(m["item"]["words"], json!(["赌博", "spam"]));

    // A report by a member; a non-member's report is forbidden; bad input is invalid.
    cb.send(json!({"type":"report","id":5,"conv":conv,"seq":1,"reason":"骚扰"})).await;
    let r = cb.recv_type("reported").await;
    assert_eq!(r["id"], 5);
    let m = admin.recv_type("moderation").await;
    assert_eq!((m["item"]["kind"].as_str(), m["item"]["reporter"].as_str(), m["item"]["reason"].as_str()), (Some("report"), Some(b.id.as_str()), Some("骚扰")));
    assert_eq!(m["item"]["id"], r["item"]);
    let mut co = connect(app.addr, &outsider.token, Proto::Json).await;
    co.send(json!({"type":"report","id":6,"conv":conv,"seq":1,"reason":"x"})).await;
    assert_eq!(co.recv_type("error").await["code"], "forbidden");
    cb.send(json!({"type":"report","id":7,"conv":conv,"seq":1,"reason":"  "})).await;
    assert_eq!(cb.recv_type("error").await["code"], "invalid");
    cb.send(json!({"type":"report","id":8,"conv":conv,"seq":999,"reason":"x"})).await;
    assert_eq!(cb.recv_type("error").await["code"], "not_found");

    // The feed over REST: admins only.
    let (s, v) = get(&app.http, format!("{base}/api/v1/admin/moderation"), &root.token).await;
    assert_eq!(s, 200);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (s, v) = get(&app.http, format!("{base}/api/v1/admin/moderation"), &a.token).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("forbidden")));

    // Delete: members are told, history keeps a tombstone.
    assert_eq!(delete(&app.http, format!("{base}/api/v1/admin/conversations/{conv}/messages/{seq}"), &a.token).await, 403);
    assert_eq!(delete(&app.http, format!("{base}/api/v1/admin/conversations/{conv}/messages/{seq}"), &root.token).await, 204);
    assert_eq!(delete(&app.http, format!("{base}/api/v1/admin/conversations/{conv}/messages/999"), &root.token).await, 404);
    for c in [&mut ca, &mut cb] {
        let d = c.recv_type("msg_deleted").await;
        assert_eq!((d["conv"].as_str(), d["seq"].as_u64()), (Some(conv.as_str()), Some(seq)));
    }
    let hist = ca.sync_all(&conv, 0).await;
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["body"]["text"], "一起去看日出");
    assert_eq!(hist[1]["body"], json!({"kind":"deleted"}));

    // The word list is reloaded from its file.
    std::fs::write(&words, "日出\n").unwrap();
    let (s, v) = post(&app.http, format!("{base}/api/v1/admin/banned-words/reload"), &root.token, json!({})).await;
    assert_eq!((s, v["words"].as_u64()), (200, Some(1)));
    let (_, log) = get(&app.http, format!("{base}/api/v1/admin/audit?action=banned_words.reload"), &root.token).await;
    assert_eq!((log["items"][0]["actor"].as_str(), &log["items"][0]["after"]), (Some(root.id.as_str()), &json!({"words": 1})), "{log}");
    let (s, _) = post(&app.http, format!("{base}/api/v1/admin/banned-words/reload"), &a.token, json!({})).await;
    assert_eq!(s, 403);
    ca.say(3, &conv, "m3", "赌博").await;
    ca.say(4, &conv, "m4", "看日出").await;
    let m = admin.recv_type("moderation").await;
    assert_eq!(m["item"]["words"], json!(["日出"]), "only the new list applies: {m}");

    // Ban: sessions closed (4003), login and upgrade refused; unban lets them back.
    assert_eq!(put(&app.http, format!("{base}/api/v1/admin/users/{}/ban", b.id), &a.token).await, 403);
    assert_eq!(put(&app.http, format!("{base}/api/v1/admin/users/{}/ban", b.id), &root.token).await, 204);
    let (code, reason) = cb.expect_close(WAIT).await.expect("close frame");
    assert_eq!((code, reason.as_str()), (4003, "banned"));
    let (s, v) = try_login(&app.http, &base, "mod-b").await;
    assert_eq!((s, v["code"].as_str()), (403, Some("banned")));
    match try_connect(app.addr, &b.token, Proto::Json).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("upgrade of a banned user must be refused: {:?}", other.map(|c| c.hello)),
    }
    // Their token still verifies, but every REST call is refused as the upgrade is.
    let (s, v) = get(&app.http, format!("{base}/api/v1/me"), &b.token).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("banned")));
    let (s, _) = get(&app.http, format!("{base}/api/v1/conversations"), &b.token).await;
    assert_eq!(s, 403);
    assert_eq!(put(&app.http, format!("{base}/api/v1/admin/users/{}/ban", root.id), &root.token).await, 422, "no self-ban");
    assert_eq!(delete(&app.http, format!("{base}/api/v1/admin/users/{}/ban", b.id), &root.token).await, 204);
    let b2 = login(&app.http, &base, "mod-b").await;
    connect(app.addr, &b2.token, Proto::Json).await;

    // Roles: set by an admin, then they work; a non-admin cannot set one. An operator works the
    // moderation feed but may not ban or set roles.
    let role = |id: &str, token: &str, role: &str| {
        let (http, url, token, body) = (app.http.clone(), format!("{base}/api/v1/admin/users/{id}/role"), token.to_owned(), json!({"role": role}));
        async move {
            let r = http.put(url).bearer_auth(token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(role(&b.id, &a.token, "admin").await.0, 403);
    assert_eq!(role(&a.id, &root.token, "operator").await, (200, json!({"user": a.id, "before": "none", "role": "operator"})));
    let (s, _) = get(&app.http, format!("{base}/api/v1/admin/moderation"), &a.token).await;
    assert_eq!(s, 200, "operators work the moderation feed");
    assert_eq!(put(&app.http, format!("{base}/api/v1/admin/users/{}/ban", b2.id), &a.token).await, 403, "operators do not ban");
    assert_eq!(role(&b.id, &a.token, "operator").await.0, 403, "operators do not set roles");
    assert_eq!(role(&a.id, &root.token, "admin").await.0, 200);
    let (_, me) = get(&app.http, format!("{base}/api/v1/me"), &a.token).await;
    assert_eq!(me["role"], "admin");
    assert_eq!(role(&a.id, &a.token, "none").await.0, 422, "no self-demotion");
    let (s, v) = role(&a.id, &root.token, "owner").await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("role")));
    assert_eq!(role("999999", &root.token, "admin").await.0, 404);
    assert_eq!(role(&a.id, &root.token, "none").await.0, 200);
    let (s, _) = get(&app.http, format!("{base}/api/v1/admin/moderation"), &a.token).await;
    assert_eq!(s, 403);

    // Each of those changes is in the audit log, newest first, with its actor and address.
    let (s, log) = get(&app.http, format!("{base}/api/v1/admin/audit?action=role.set"), &root.token).await;
    assert_eq!(s, 200, "{log}");
    let roles: Vec<(&str, &str)> = log["items"].as_array().unwrap().iter().map(|e| (e["before"]["role"].as_str().unwrap(), e["after"]["role"].as_str().unwrap())).collect();
    assert_eq!(roles, vec![("admin", "none"), ("operator", "admin"), ("none", "operator")]);
    assert_eq!(log["items"][0]["actor"], root.id.as_str());
    assert_eq!(log["items"][0]["target"], format!("user:{}", a.id));
    assert_eq!(log["items"][0]["ip"], "127.0.0.1");
    let (_, bans) = get(&app.http, format!("{base}/api/v1/admin/audit?actor={}&action=user.ban", root.id), &root.token).await;
    assert_eq!(bans["items"].as_array().unwrap().len(), 1, "{bans}");
    assert_eq!(bans["items"][0]["after"], json!({"banned": true}));
    assert_eq!(get(&app.http, format!("{base}/api/v1/admin/audit"), &a.token).await.0, 403);
    let (s, v) = get(&app.http, format!("{base}/api/v1/admin/audit?action=user.delete"), &root.token).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("action")));
}
