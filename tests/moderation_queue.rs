//! The moderation queue as a workflow, end to end on SQLite and MariaDB: items of several
//! subjects (a flagged message, a reported user, a reported profile, a ban appeal) in one
//! shape, live on staff sockets and listed by status and kind; resolved by operators (dismiss,
//! delete) and admins (ban, unban) with their effects; a banned user's refused login carries
//! the one-purpose token of their appeal.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn queue(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let words = tdb.dir.0.join("words.txt");
    std::fs::write(&words, "赌博\n").unwrap();
    let app = spawn_app(&tdb, |c| {
        c.admins = vec![("dev".into(), "mq-root".into())];
        c.banned_words_file = Some(words.clone());
    })
    .await;
    let (base, http) = (app.base(), &app.http);
    let root = login(http, &base, "mq-root").await;
    let op = staff_account(http, &base, &root.token, "mq-operator", "operator").await;
    let a = login(http, &base, "mq-a").await;
    let b = login(http, &base, "mq-b").await;
    let mut op_ws = connect(app.addr, &op.token, Proto::Json).await;
    let mut b_ws = connect(app.addr, &b.token, Proto::Json).await;

    // A flagged message: live on the operator's socket, in the queue, with its subject.
    let conv = direct(http, &base, &a, &b).await;
    let mut a_ws = connect(app.addr, &a.token, Proto::Json).await;
    a_ws.say(1, &conv, "mq-1", "来赌博吧").await;
    let live = op_ws.recv_type("moderation").await;
    let item = &live["item"];
    assert_eq!((item["kind"].as_str(), item["subject"]["kind"].as_str(), item["status"].as_str()), (Some("flagged"), Some("message"), Some("open")), "{live}");
    assert_eq!(item["subject"]["id"], format!("{conv}:1"));
    assert_eq!((item["conv"].as_str(), item["seq"].as_u64()), (Some(conv.as_str()), Some(1)));
    let flagged = item["id"].as_str().unwrap().to_owned();

    // Reports of a user and of a profile.
    let (s, v) = post(http, format!("{base}/api/v1/users/{}/report", a.id), &b.token, json!({"reason": "骚扰"})).await;
    assert_eq!(s, 201, "{v}");
    let reported_user = v["item"].as_str().unwrap().to_owned();
    // Reported again by the same reporter: the same open item, no second one in the queue.
    let (s, v) = post(http, format!("{base}/api/v1/users/{}/report", a.id), &b.token, json!({"reason": "还在骚扰"})).await;
    assert_eq!((s, v["item"].as_str()), (201, Some(reported_user.as_str())), "{v}");
    assert_eq!(post(http, format!("{base}/api/v1/users/{}/report", b.id), &b.token, json!({"reason": "x"})).await.0, 422, "not yourself");
    assert_eq!(post(http, format!("{base}/api/v1/users/999999/report", ), &b.token, json!({"reason": "x"})).await.0, 404);
    let live = op_ws.recv_type("moderation").await;
    assert_eq!((live["item"]["subject"]["kind"].as_str(), live["item"]["subject"]["id"].as_str()), (Some("user"), Some(a.id.as_str())));
    assert_eq!((&live["item"]["conv"], live["item"]["reporter"].as_str()), (&Value::Null, Some(b.id.as_str())));

    // The queue, filtered.
    let (s, q) = get(http, format!("{base}/api/v1/admin/moderation?kind=user"), &op.token).await;
    assert_eq!(s, 200);
    assert_eq!(q["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect::<Vec<_>>(), vec![reported_user.as_str()]);
    let (s, v) = get(http, format!("{base}/api/v1/admin/moderation?status=maybe&kind=thing"), &op.token).await;
    assert_eq!(s, 422);
    assert_eq!(v["fields"].as_array().unwrap().len(), 2, "{v}");

    // The operator deletes the flagged message: the members see the tombstone.
    let resolve = |id: String, token: String, action: &str| {
        let (http, url, body) = (http.clone(), format!("{base}/api/v1/admin/moderation/{id}/resolve"), json!({"action": action}));
        async move {
            let r = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, r) = resolve(flagged.clone(), op.token.clone(), "delete").await;
    assert_eq!((s, r["status"].as_str(), r["resolution"]["action"].as_str()), (200, Some("resolved"), Some("delete")), "{r}");
    assert_eq!(r["resolution"]["by"], op.id.as_str());
    let gone = b_ws.recv_type("msg_deleted").await;
    assert_eq!(gone["conv"].as_str(), Some(conv.as_str()));
    assert_eq!(resolve(flagged.clone(), op.token.clone(), "dismiss").await.0, 409, "resolved once");
    assert_eq!(resolve(reported_user.clone(), op.token.clone(), "delete").await.0, 422, "a user has no content to delete");
    assert_eq!(resolve(reported_user.clone(), op.token.clone(), "ban").await.0, 403, "bans are the admins'");
    assert_eq!(resolve(reported_user.clone(), root.token.clone(), "shout").await.0, 422);
    assert_eq!(resolve("999999".into(), root.token.clone(), "dismiss").await.0, 404);

    // The admin bans the reported user: their sockets close, their login is refused with an
    // appeal token that is no session token.
    let (s, _) = resolve(reported_user.clone(), root.token.clone(), "ban").await;
    assert_eq!(s, 200);
    assert_eq!(a_ws.expect_close(Duration::from_secs(5)).await.map(|c| c.0), Some(4003));
    let r = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code": "mq-a"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let refused: Value = r.json().await.unwrap();
    assert_eq!(refused["code"], "banned");
    let appeal_token = refused["appeal_token"].as_str().expect("an appeal token").to_owned();
    assert_eq!(get(http, format!("{base}/api/v1/me"), &appeal_token).await.0, 401, "an appeal token opens no session");
    assert!(try_connect(app.addr, &appeal_token, Proto::Json).await.is_err());
    let appeal = |token: String, text: &str| {
        let (http, url, body) = (http.clone(), format!("{base}/api/v1/appeals"), json!({"text": text}));
        async move {
            let r = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(appeal(a.token.clone(), "我没有骚扰").await.0, 401, "a session token is no appeal token");
    assert_eq!(appeal(appeal_token.clone(), "").await.0, 422);
    assert_eq!(appeal(appeal_token.clone(), "我没有赌博").await.0, 422, "screened");
    let (s, v) = appeal(appeal_token.clone(), "我没有骚扰, 请复查").await;
    assert_eq!(s, 201, "{v}");
    let appeal_item = v["item"].as_str().unwrap().to_owned();
    assert_eq!(appeal(appeal_token.clone(), "再申诉").await.0, 409, "one open appeal");
    let live = op_ws.recv_type("moderation").await;
    assert_eq!((live["item"]["kind"].as_str(), live["item"]["subject"]["kind"].as_str(), live["item"]["excerpt"].as_str()), (Some("appeal"), Some("appeal"), Some("我没有骚扰, 请复查")));

    // Granted: unbanned, the user logs in again.
    assert_eq!(resolve(appeal_item.clone(), op.token.clone(), "unban").await.0, 403);
    assert_eq!(resolve(appeal_item.clone(), root.token.clone(), "unban").await.0, 200);
    login(http, &base, "mq-a").await;
    assert_eq!(appeal(appeal_token.clone(), "again").await.0, 409, "not banned any more");

    // A profile reported and deleted is reset.
    http.patch(format!("{base}/api/v1/me")).bearer_auth(&b.token).json(&json!({"nickname": "坏名字", "bio": "坏简介"})).send().await.unwrap();
    let a = login(http, &base, "mq-a").await;
    let (s, v) = post(http, format!("{base}/api/v1/users/{}/report", b.id), &a.token, json!({"reason": "不当资料", "about": "profile"})).await;
    assert_eq!(s, 201, "{v}");
    let profile_item = v["item"].as_str().unwrap().to_owned();
    let (_, q) = get(http, format!("{base}/api/v1/admin/moderation?kind=profile"), &op.token).await;
    assert_eq!(q["items"].as_array().unwrap().len(), 1);
    assert_eq!((q["items"][0]["id"].as_str(), q["items"][0]["excerpt"].as_str()), (Some(profile_item.as_str()), Some("坏名字 坏简介")));
    assert_eq!(resolve(profile_item.clone(), op.token.clone(), "delete").await.0, 200);
    let (_, p) = get(http, format!("{base}/api/v1/users/{}", b.id), &a.token).await;
    assert_eq!((p["nickname"].as_str(), p["bio"].as_str()), (Some("旅行者"), Some("")), "{p}");

    // The resolved list, and the audit trail of each resolution.
    let (_, done) = get(http, format!("{base}/api/v1/admin/moderation?status=resolved"), &op.token).await;
    assert_eq!(done["items"].as_array().unwrap().len(), 4, "{done}");
    let (_, log) = get(http, format!("{base}/api/v1/admin/audit?action=moderation.resolve"), &root.token).await;
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["after"]["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["delete", "unban", "ban", "delete"]);
    drop((op_ws, b_ws));
    app.shutdown.cancel();
}

#[tokio::test]
async fn moderation_queue_sqlite() {
    queue(Db::Sqlite).await;
}

#[tokio::test]
async fn moderation_queue_mysql() {
    queue(Db::MySql).await;
}
