//! Durable events across a cluster on the real engines (MariaDB, Redis, RabbitMQ), nodes as
//! separate processes: merchants' order alerts to another node and to a merchant who connects
//! later, the moderation feed and admin actions (delete, ban) across nodes, a RabbitMQ
//! connection cut and restored with no event lost, idempotent consumers and the dead-letter
//! queue.

mod common;
use common::*;
use futures_util::Future;
use jiebanke_chat_core::{DurableEvent, Order, OrderId, UserId};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "cluster-events-secret-0123456789abcdef";

struct Cluster {
    db: TestDb,
    redis: TestRedis,
    rabbit: TestRabbit,
    proxy: CutProxy,
    words: std::path::PathBuf,
}

impl Cluster {
    async fn new() -> Option<Cluster> {
        let db = TestDb::new(Db::MySql).await?;
        let redis = TestRedis::new()?;
        let rabbit = TestRabbit::new()?;
        let proxy = CutProxy::start(rabbit.port).await;
        let words = db.dir.0.join("banned.txt");
        std::fs::write(&words, "赌博\n").unwrap();
        Some(Cluster { db, redis, rabbit, proxy, words })
    }

    async fn node(&self, id: &str) -> ServerProcess {
        let env = [
            ("JBK_REDIS_URL", self.redis.url.clone()),
            ("JBK_REDIS_PREFIX", self.redis.prefix.clone()),
            ("JBK_NODE_ID", id.to_owned()),
            ("JBK_JWT_SECRET", SECRET.to_owned()),
            ("JBK_AMQP_URL", self.rabbit.url_via(self.proxy.port)),
            ("JBK_ADMINS", "dev:ce-root".to_owned()),
            ("JBK_BANNED_WORDS_FILE", self.words.display().to_string()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let p = ServerProcess::start_role(&self.db, "serve", free_port(), &env).await;
        p.wait_status("ready", Duration::from_secs(15)).await;
        p
    }
}

/// Polls `f` until it returns Some (panics after `WAIT` with `what`).
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn paid(http: &reqwest::Client, base: &str, admin: &LoggedIn, merchant: &LoggedIn, item: &str) -> Value {
    let (s, v) = post(http, format!("{base}/api/v1/admin/orders"), &admin.token, json!({"merchant": merchant.id, "item": item, "amount_fen": 520})).await;
    assert_eq!(s, 201, "{v}");
    v
}

/// Every page of the merchant's pending alerts.
async fn pending_alerts(http: &reqwest::Client, base: &str, merchant: &LoggedIn) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = format!("{base}/api/v1/alerts?limit=7");
    loop {
        let (s, v) = get(http, url.clone(), &merchant.token).await;
        assert_eq!(s, 200, "{v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => url = format!("{base}/api/v1/alerts?limit=7&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_moderation_and_bans_cross_nodes() {
    let Some(cl) = Cluster::new().await else { return };
    let n1 = cl.node("e1").await;
    let n2 = cl.node("e2").await;
    let n3 = cl.node("e3").await;
    let http = reqwest::Client::new();
    let root = login(&http, &n1.base(), "ce-root").await;
    let shop = login(&http, &n2.base(), "ce-shop").await;
    let later_shop = login(&http, &n3.base(), "ce-shop2").await;
    let a = login(&http, &n1.base(), "ce-a").await;
    let b = login(&http, &n3.base(), "ce-b").await;

    // An order paid through node 1 alerts the merchant connected to node 2.
    let mut cs = connect(n2.addr, &shop.token, Proto::Json).await;
    let o = paid(&http, &n1.base(), &root, &shop, "向日葵花束").await;
    let alert = cs.recv_type("order_alert").await;
    assert_eq!(alert["order"]["id"], o["id"], "{alert}");

    // A merchant offline when the order is paid gets it on connecting to node 3.
    let o2 = paid(&http, &n1.base(), &root, &later_shop, "认领小猪").await;
    eventually("the alert recorded", || async { (pending_alerts(&http, &n1.base(), &later_shop).await.len() == 1).then_some(()) }).await;
    let mut cl2 = connect(n3.addr, &later_shop.token, Proto::MsgPack).await;
    let alert = cl2.recv_type("order_alert").await;
    assert_eq!(alert["order"]["id"], o2["id"], "{alert}");

    // A flagged message on node 1 reaches the admin's sessions on nodes 2 and 3.
    let mut admin2 = connect(n2.addr, &root.token, Proto::Json).await;
    let mut admin3 = connect(n3.addr, &root.token, Proto::MsgPack).await;
    let conv = direct(&http, &n1.base(), &a, &b).await;
    let mut ca = connect(n1.addr, &a.token, Proto::Json).await;
    let mut cb3 = connect(n3.addr, &b.token, Proto::Json).await;
    let mut cb2 = connect(n2.addr, &b.token, Proto::MsgPack).await;
    let ack = ca.say(1, &conv, "f1", "一起赌博").await;
    let seq = ack["seq"].as_u64().unwrap();
    for adm in [&mut admin2, &mut admin3] {
        let m = adm.recv_type("moderation").await;
        assert_eq!((m["item"]["kind"].as_str(), m["item"]["seq"].as_u64()), (Some("flagged"), Some(seq)), "{m}");
    }
    // A report from node 3 too.
    cb3.send(json!({"type":"report","id":2,"conv":conv,"seq":seq,"reason":"不良信息"})).await;
    cb3.recv_type("reported").await;
    for adm in [&mut admin2, &mut admin3] {
        assert_eq!(adm.recv_type("moderation").await["item"]["kind"], "report");
    }

    // Deleted through node 1: the member on nodes 2 and 3 is told.
    assert_eq!(delete(&http, format!("{}/api/v1/admin/conversations/{conv}/messages/{seq}", n1.base()), &root.token).await, 204);
    for c in [&mut cb3, &mut cb2] {
        assert_eq!(c.recv_type("msg_deleted").await["seq"], seq);
    }

    // Banned through node 1: the sessions on nodes 2 and 3 close; no login anywhere.
    assert_eq!(put(&http, format!("{}/api/v1/admin/users/{}/ban", n1.base(), b.id), &root.token).await, 204);
    for c in [&mut cb3, &mut cb2] {
        let (code, reason) = c.expect_close(WAIT).await.expect("close frame");
        assert_eq!((code, reason.as_str()), (4003, "banned"));
    }
    for n in [&n1, &n2, &n3] {
        assert_eq!(try_login(&http, &n.base(), "ce-b").await.0, 403);
    }
    assert!(try_connect(n2.addr, &b.token, Proto::Json).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_cut_and_restored_loses_no_event_consumers_are_idempotent_and_dead_letter() {
    let Some(cl) = Cluster::new().await else { return };
    let n1 = cl.node("r1").await;
    let n2 = cl.node("r2").await;
    let http = reqwest::Client::new();
    let root = login(&http, &n1.base(), "ce-root").await;
    let shop = login(&http, &n2.base(), "rq-shop").await;
    let mut cs = connect(n2.addr, &shop.token, Proto::Json).await;

    // The broker becomes unreachable: nodes say so, and orders still commit into the outbox.
    cl.proxy.cut();
    n1.wait_status("degraded", WAIT).await;
    n2.wait_status("degraded", WAIT).await;
    let mut orders = Vec::new();
    for i in 0..20 {
        orders.push(paid(&http, &n1.base(), &root, &shop, &format!("断网订单 {i}")).await["id"].as_str().unwrap().to_owned());
    }
    eventually("the outbox holding all 20 events", || async {
        (metric(&n1.metrics_base(), "jbk_outbox_pending").await == Some(20.0)).then_some(())
    })
    .await;

    // Back: the relay drains the outbox; every alert arrives, once.
    cl.proxy.restore();
    n1.wait_status("ready", WAIT * 2).await;
    let mut got = Vec::new();
    while got.len() < 20 {
        let a = cs.recv_type("order_alert").await;
        let id = a["order"]["id"].as_str().unwrap().to_owned();
        assert!(!got.contains(&id), "alert {id} twice");
        got.push(id);
    }
    got.sort();
    orders.sort();
    assert_eq!(got, orders);
    eventually("an empty outbox", || async { (metric(&n1.metrics_base(), "jbk_outbox_pending").await == Some(0.0)).then_some(()) }).await;
    assert_eq!(pending_alerts(&http, &n1.base(), &shop).await.len(), 20);
    // They went through the broker (confirmed publishes), after the nodes saw the connection drop.
    let published = metric(&n1.metrics_base(), "jbk_amqp_published_total").await.unwrap() + metric(&n2.metrics_base(), "jbk_amqp_published_total").await.unwrap();
    assert!(published >= 20.0, "published {published}");
    assert!(metric(&n1.metrics_base(), "jbk_amqp_reconnects_total").await.unwrap() >= 1.0);

    // The same event delivered again (as after a relay crash between confirm and mark): the
    // consumer handles it and changes nothing.
    let conn = lapin::Connection::connect(&cl.rabbit.url(), lapin::ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let first = &pending_alerts(&http, &n1.base(), &shop).await[0];
    let event = DurableEvent::OrderPaid(Order {
        id: OrderId::parse(first["order"]["id"].as_str().unwrap()).unwrap(),
        merchant: UserId::parse(&shop.id).unwrap(),
        buyer: None,
        item: first["order"]["item"].as_str().unwrap().to_owned(),
        amount_fen: 520,
        paid_at: first["order"]["paid_at"].as_i64().unwrap(),
        details: Default::default(),
    });
    let consumed_before = metric(&n1.metrics_base(), "jbk_amqp_consumed_total").await.unwrap() + metric(&n2.metrics_base(), "jbk_amqp_consumed_total").await.unwrap();
    let publish = |payload: Vec<u8>, id: String| {
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                "jbk.events".into(),
                "order.paid".into(),
                BasicPublishOptions::default(),
                &payload,
                BasicProperties::default().with_message_id(id.as_str().into()).with_delivery_mode(2),
            )
            .await
            .unwrap();
        }
    };
    publish(jiebanke_storage::encode_event(&event).into_bytes(), first["alert"].as_str().unwrap().to_owned()).await;
    eventually("the redelivered event handled", || async {
        let now = metric(&n1.metrics_base(), "jbk_amqp_consumed_total").await.unwrap() + metric(&n2.metrics_base(), "jbk_amqp_consumed_total").await.unwrap();
        (now > consumed_before).then_some(())
    })
    .await;
    assert_eq!(pending_alerts(&http, &n1.base(), &shop).await.len(), 20, "no second alert for the same event");
    let again = cs.recv_type("order_alert").await;
    assert_eq!(again["alert"], first["alert"], "a redelivered unacked alert is shown again under the same id");

    // An event that can never be handled goes to the dead-letter queue.
    publish(b"not json".to_vec(), "77".into()).await;
    publish(jiebanke_storage::encode_event(&event).into_bytes(), "not-an-id".into()).await;
    eventually("two dead letters", || async {
        let q = ch
            .queue_declare("jbk.events.dead".into(), QueueDeclareOptions { passive: true, durable: true, ..Default::default() }, FieldTable::default())
            .await
            .ok()?;
        (q.message_count() == 2).then_some(())
    })
    .await;
    let dead = metric(&n1.metrics_base(), "jbk_amqp_dead_lettered_total").await.unwrap() + metric(&n2.metrics_base(), "jbk_amqp_dead_lettered_total").await.unwrap();
    assert_eq!(dead, 2.0);

    // The program declared its queues durable: the broker refuses to redeclare them otherwise.
    for q in ["jbk.events.handlers", "jbk.events.dead"] {
        let ch = conn.create_channel().await.unwrap();
        let transient = ch.queue_declare(q.into(), QueueDeclareOptions { durable: false, ..Default::default() }, FieldTable::default()).await;
        assert!(transient.is_err(), "{q} exists and is not transient");
        let ch = conn.create_channel().await.unwrap();
        let durable = ch.queue_declare(q.into(), QueueDeclareOptions { passive: true, durable: true, ..Default::default() }, FieldTable::default()).await;
        assert!(durable.is_ok(), "{q} exists");
    }
}

/// A node killed with `kill -9` while it commits orders and relays their events: every order
/// it acknowledged (201) gets its alert, once, through the surviving node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_mid_relay_loses_no_acknowledged_order() {
    let Some(cl) = Cluster::new().await else { return };
    let mut k1 = cl.node("k1").await;
    let k2 = cl.node("k2").await;
    let http = reqwest::Client::new();
    let root = login(&http, &k1.base(), "ce-root").await;
    let shop = login(&http, &k2.base(), "kill-shop").await;

    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writer = {
        let (http, base, acked) = (http.clone(), k1.base(), acked.clone());
        let (token, merchant) = (root.token.clone(), shop.id.clone());
        tokio::spawn(async move {
            for i in 0.. {
                let sent = http
                    .post(format!("{base}/api/v1/admin/orders"))
                    .bearer_auth(&token)
                    .json(&json!({"merchant": merchant, "item": format!("急单 {i}"), "amount_fen": 100}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = r.json().await.unwrap();
                        acked.lock().unwrap().push(v["id"].as_str().unwrap().to_owned());
                    }
                    _ => return,
                }
            }
        })
    };
    eventually("30 orders acknowledged", || async { (acked.lock().unwrap().len() >= 30).then_some(()) }).await;
    k1.kill9();
    writer.await.unwrap();
    let mut want = acked.lock().unwrap().clone();
    want.sort();
    let got = eventually("every acknowledged order's alert", || async {
        let mut ids: Vec<String> = pending_alerts(&http, &k2.base(), &shop).await.iter().map(|a| a["order"]["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        (ids.len() >= want.len()).then_some(ids)
    })
    .await;
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "one alert per order");
    for id in &want {
        assert!(got.contains(id), "order {id} was acknowledged and has no alert");
    }
}

/// Erasing an account ends its sessions on every node at once (close 4004, not the ban's
/// 4003), and its token is refused by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_ends_sessions_on_every_node() {
    let Some(cl) = Cluster::new().await else { return };
    let n1 = cl.node("x1").await;
    let n2 = cl.node("x2").await;
    let http = reqwest::Client::new();
    let e = login(&http, &n1.base(), "ce-erase").await;
    let mut s1 = connect(n1.addr, &e.token, Proto::Json).await;
    let mut s2 = connect(n2.addr, &e.token, Proto::Json).await;
    let r = http.delete(format!("{}/api/v1/me", n2.base())).bearer_auth(&e.token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for s in [&mut s1, &mut s2] {
        let (code, reason) = s.expect_close(WAIT).await.expect("a close frame");
        assert_eq!((code, reason.as_str()), (4004, "account_erased"));
    }
    for n in [&n1, &n2] {
        let (s, _) = get(&http, format!("{}/api/v1/me", n.base()), &e.token).await;
        assert_eq!(s, 401);
        assert!(try_connect(n.addr, &e.token, Proto::Json).await.is_err());
    }
    let again = login(&http, &n1.base(), "ce-erase").await;
    assert_ne!(again.id, e.id, "the next login makes a new account");
}

/// The real source of an alert: a buyer orders and pays (the local provider's callback) through
/// node 1, and the merchant's socket on node 2 gets the alert with the order's lines; a refund
/// approved through node 2 gives the money back once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_paid_on_one_node_alerts_the_merchant_on_another() {
    let Some(cl) = Cluster::new().await else { return };
    let n1 = cl.node("o1").await;
    let n2 = cl.node("o2").await;
    let http = reqwest::Client::new();
    let root = login(&http, &n1.base(), "ce-root").await;
    let shop = login(&http, &n2.base(), "ce-florist").await;
    let buyer = login(&http, &n1.base(), "ce-buyer").await;
    let (s, a) = post(&http, format!("{}/api/v1/merchants/applications", n2.base()), &shop.token, json!({"name": "洱海花坊", "category": "florist", "license_no": "91350100M000100Y43", "contact_name": "王", "contact_phone": "+8613812345678"})).await;
    assert_eq!(s, 201, "{a}");
    let (s, _) = post(&http, format!("{}/api/v1/admin/merchant-applications/{}/approve", n1.base(), a["id"].as_str().unwrap()), &root.token, json!({})).await;
    assert_eq!(s, 200);
    let (s, p) = post(&http, format!("{}/api/v1/merchant/products", n2.base()), &shop.token, json!({"kind": "flower", "title": "向日葵", "price_fen": 1500, "stock": 3})).await;
    assert_eq!(s, 201, "{p}");
    let mut cs = connect(n2.addr, &shop.token, Proto::Json).await;

    let tomorrow = jiebanke_chat_core::matching::Day::of_ms(jiebanke_chat_core::now_ms() + 8 * 3_600_000 + 86_400_000).to_string();
    let body = json!({"items": [{"product": p["id"], "quantity": 2}], "recipient": {"name": "李雷", "phone": "+8613912345678", "address": "大理古城"}, "deliver_on": tomorrow, "slot": "evening"});
    let (s, o) = post(&http, format!("{}/api/v1/orders", n1.base()), &buyer.token, body).await;
    assert_eq!(s, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let (_, pay) = post(&http, format!("{}/api/v1/orders/{id}/pay", n1.base()), &buyer.token, json!({})).await;
    let confirm = format!("{}/api/v1/payments/local/{}/confirm", n1.base(), pay["payment"].as_str().unwrap());
    assert_eq!(post(&http, confirm, &buyer.token, json!({})).await.0, 204);
    let alert = cs.recv_type("order_alert").await;
    assert_eq!((alert["order"]["id"].as_str(), alert["order"]["amount_fen"].as_i64()), (Some(id.as_str()), Some(3000)), "{alert}");
    assert_eq!(alert["order"]["lines"], json!([{"title": "向日葵", "quantity": 2}]));
    assert_eq!(alert["order"]["recipient"], "李* 139****5678");

    // A refund asked on node 1, approved on node 2: refunded once, the stock back.
    post(&http, format!("{}/api/v1/orders/{id}/refund", n1.base()), &buyer.token, json!({"reason": "送错了"})).await;
    let (s, r) = post(&http, format!("{}/api/v1/merchant/orders/{id}/refund/approve", n2.base()), &shop.token, json!({})).await;
    assert_eq!((s, r["state"].as_str()), (200, Some("refunded")), "{r}");
    let refunds = || async {
        let mut n = 0;
        for node in [&n1, &n2] {
            let text = reqwest::get(format!("{}/metrics", node.metrics_base())).await.unwrap().text().await.unwrap();
            n += text.lines().find_map(|l| l.strip_prefix("jbk_payment_callbacks_total{outcome=\"refund\"} ")).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        }
        (n == 1).then_some(())
    };
    eventually("the refund asked of the provider", refunds).await;
    // Past the outbox's redelivery window (and RabbitMQ's consumer retries): still once.
    past_redelivery_window().await;
    refunds().await.expect("the refund asked of the provider once");
    let page: Value = http.get(format!("{}/api/v1/products/{}", n2.base(), p["id"].as_str().unwrap())).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["stock"], 3);
}
