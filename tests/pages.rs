//! The traveller's app (`/app/`) in a real browser: headless Chromium driven over WebDriver
//! against a real server. Two browsers chat live while one of them loses its network (a TCP
//! proxy the test cuts) and comes back showing every message once and in order, a message typed
//! while offline included; a match proposal shown in two browsers opens their chat; a flower
//! ordered and paid in the app reaches the merchant's socket, and the shop's other flows
//! (cancel, refund request, confirm receipt, review, a claim's live updates); every page passes
//! axe-core in both languages. Every test fails on any JavaScript error or unhandled rejection
//! in a page.
//!
//! `cargo run --example screenshots` writes docs/screenshots/ with the same harness (not run by CI).

mod browser;
mod common;

use browser::*;
use common::*;
use serde_json::{json, Value};

fn tomorrow() -> String {
    let ms = jiebanke_chat_core::now_ms() + 8 * 3_600_000 + 86_400_000;
    jiebanke_chat_core::matching::Day::of_ms(ms).to_string()
}

async fn order_state(http: &reqwest::Client, base: &str, who: &LoggedIn, id: &str) -> String {
    let (s, o) = get(http, format!("{base}/api/v1/orders/{id}"), &who.token).await;
    assert_eq!(s, 200, "{o}");
    o["state"].as_str().unwrap().to_owned()
}

/// The texts of the messages a chat page shows, in the order shown.
async fn shown(page: &Page) -> Vec<String> {
    let v = page.eval("return [...document.querySelectorAll('.messages li[data-seq] .bubble')].map((b) => b.innerText)", vec![]).await;
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

async fn say(page: &Page, text: &str) {
    page.fill("#composer-input", text).await;
    page.click("[data-test=send]").await;
}

#[tokio::test]
async fn two_browsers_chat_live_and_a_cut_network_loses_and_duplicates_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(mut driver) = Driver::start().await else { return };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |_| {}).await;
    let (http, base) = (&app.http, app.base());
    let alice = login(http, &base, "alice").await;
    let bob = login(http, &base, "bob").await;
    let conv = direct(http, &base, &alice, &bob).await;
    let proxy = Proxy::start(app.addr).await;

    let mut a = driver.browser(390, 844).await;
    a.base = proxy.base();
    let mut b = driver.browser(390, 844).await;
    b.base = base.clone();
    a.login("alice").await;
    b.login("bob").await;

    // The list shows the conversation; both open it.
    for p in [&a, &b] {
        p.click(&format!("[data-conv='{conv}']")).await;
        p.wait_css("#composer-input").await;
    }
    // Presence: alice sees bob online.
    a.wait_css(".topbar .dot.on").await;

    // Enter sends (Shift+Enter would be a new line).
    b.fill("#composer-input", "明天一起去洱海吗？\u{E007}").await;
    a.until("bob's first message", "return document.querySelector('.messages li[data-seq=\"1\"]')", vec![]).await;
    // Alice has it on screen: bob sees the read receipt.
    b.wait_css("[data-read='1']").await;
    // Typing reaches the other side.
    a.fill("#composer-input", "好").await;
    b.until("alice typing", "return document.querySelector('.typing').innerText.length > 0", vec![]).await;
    a.fill("#composer-input", "").await;

    // Alice's network goes away.
    proxy.cut();
    a.wait_css("[data-net='offline']").await;
    for text in ["第二条", "第三条", "第四条"] {
        say(&b, text).await;
    }
    b.until("bob's three acks", "return document.querySelectorAll('.messages li[data-seq]').length === 4 && !document.querySelector('[data-pending]')", vec![]).await;
    // Alice writes while offline: shown as sending, once.
    say(&a, "我离线时写的").await;
    a.wait_css("[data-pending]").await;
    assert_eq!(a.eval("return document.querySelectorAll('[data-pending]').length", vec![]).await, json!(1));

    proxy.restore();
    let expected = ["明天一起去洱海吗？", "第二条", "第三条", "第四条", "我离线时写的"];
    a.until("every message once after the reconnect", "return document.querySelectorAll('.messages li[data-seq]').length === 5 && !document.querySelector('[data-pending]') && !document.querySelector('[data-net]')", vec![]).await;
    assert_eq!(shown(&a).await, expected, "alice: every message once, in order");
    b.until("alice's offline message", "return document.querySelectorAll('.messages li[data-seq]').length === 5", vec![]).await;
    assert_eq!(shown(&b).await, expected, "bob: the same");
    // Stored once each.
    let (s, h) = get(http, format!("{base}/api/v1/conversations/{conv}/messages?after=0"), &alice.token).await;
    assert_eq!(s, 200);
    let stored: Vec<&str> = h["messages"].as_array().unwrap().iter().map(|m| m["body"]["text"].as_str().unwrap()).collect();
    assert_eq!(stored, expected);

    // Alice recalls her message: bob's page shows the tombstone.
    a.click(".messages li[data-seq='5'] button").await;
    b.until("the recall", "const b = document.querySelector('.messages li[data-seq=\"5\"] .bubble'); return b && b.classList.contains('tomb')", vec![]).await;

    a.assert_no_errors().await;
    b.assert_no_errors().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_match_proposal_in_two_browsers_opens_their_chat() {
    let _serial = SERIAL.lock().await;
    let Some(mut driver) = Driver::start().await else { return };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |_| {}).await;
    let (http, base) = (&app.http, app.base());
    let carol = login(http, &base, "carol").await;
    let dave = login(http, &base, "dave").await;
    let (_, dave_me) = get(http, format!("{base}/api/v1/me"), &dave.token).await;

    let mut a = driver.browser(390, 844).await;
    let mut b = driver.browser(1280, 800).await;
    a.base = base.clone();
    b.base = base.clone();
    a.login("carol").await;
    b.login("dave").await;
    for p in [&a, &b] {
        p.click("[data-tab=match]").await;
        p.fill("#match-dest", "大理").await;
    }
    a.click("[data-test=match-submit]").await;
    a.wait_css("[data-test=match-waiting]").await;
    b.click("[data-test=match-submit]").await;
    for p in [&a, &b] {
        p.wait_css(".proposal").await;
        p.click("[data-test=open-match-chat]").await;
        p.wait_css("#composer-input").await;
    }
    // Carol's chat is with dave, and it is their direct conversation.
    let title = a.text_of("[data-test=chat-title]").await;
    assert_eq!(title, dave_me["nickname"].as_str().unwrap());
    let hash = a.eval("return location.hash", vec![]).await;
    let conv = hash.as_str().unwrap().trim_start_matches("#/chat/").to_owned();
    let (s, c) = get(http, format!("{base}/api/v1/conversations/{conv}"), &carol.token).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["kind"], "direct");
    assert!(c["members"].as_array().unwrap().contains(&json!(dave.id)));
    assert_eq!(b.eval("return location.hash", vec![]).await, hash, "dave opened the same chat");
    say(&b, "你好，一起走吧").await;
    a.until("dave's hello", "return document.querySelectorAll('.messages li[data-seq]').length === 1", vec![]).await;

    // Carol starts a group with dave, now a contact; it reaches dave's list with its first message.
    a.go("#/new-chat").await;
    a.fill("#group-title", "洱海骑行小队").await;
    a.click(&format!("#pick-{}", dave.id)).await;
    a.click("#group-title ~ button[type=submit], form button[type=submit]").await;
    a.until("the group's chat", "const t = document.querySelector('[data-test=chat-title]'); return t && t.innerText === '洱海骑行小队'", vec![]).await;
    say(&a, "周六早上八点古城南门集合").await;
    b.go("#/chats").await;
    b.until("the group in dave's list", "return [...document.querySelectorAll('.item-title')].some((e) => e.innerText.includes('洱海骑行小队'))", vec![]).await;

    a.assert_no_errors().await;
    b.assert_no_errors().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_flower_ordered_in_the_app_alerts_the_merchant_and_the_shop_flows_work() {
    let _serial = SERIAL.lock().await;
    let Some(mut driver) = Driver::start().await else { return };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |c| c.admins = vec![("dev".into(), "pg-root".into())]).await;
    let (http, base) = (&app.http, app.base());
    let admin = login(http, &base, "pg-root").await;
    let shop = merchant(http, &base, &admin, "pg-shop").await;
    let (s, p) = post(http, format!("{base}/api/v1/merchant/products"), &shop.token, json!({"kind": "flower", "title": "红玫瑰", "description": "云南玫瑰 11 枝", "price_fen": 19900, "stock": 5})).await;
    assert_eq!(s, 201, "{p}");
    let product = p["id"].as_str().unwrap().to_owned();
    let (s, a) = post(http, format!("{base}/api/v1/merchant/animals"), &shop.token, json!({"species": "羊", "name": "咩咩", "story": "洱海边长大", "price_fen": 9900, "period_days": 30, "slots": 2})).await;
    assert_eq!(s, 201, "{a}");
    let animal = a["id"].as_str().unwrap().to_owned();
    // The merchant console comes later: a socket client stands in for it.
    let mut console = connect(app.addr, &shop.token, Proto::Json).await;

    let erin = login(http, &base, "erin").await;
    let mut page = driver.browser(390, 844).await;
    page.base = base.clone();
    page.login("erin").await;

    // Browse, order, pay.
    page.click("[data-tab=shop]").await;
    page.click(&format!("[data-product='{product}']")).await;
    page.fill("#order-name", "王小花").await;
    page.fill("#order-phone", "+8613812345678").await;
    page.fill("#order-address", "大理古城人民路 1 号").await;
    page.click("[data-test=place-order]").await;
    page.until("the order paid", "const e = document.querySelector('[data-order-state]'); return e && e.dataset.orderState === 'paid'", vec![]).await;
    let order = page.eval("return location.hash", vec![]).await.as_str().unwrap().trim_start_matches("#/order/").to_owned();
    let alert = console.recv_type("order_alert").await;
    assert_eq!(alert["order"]["id"], json!(order), "{alert}");
    assert_eq!(alert["order"]["amount_fen"], 19900);
    assert_eq!(alert["order"]["recipient"], "王* 138****5678");

    // The merchant delivers; erin confirms receipt and reviews.
    let (s, v) = post(http, format!("{base}/api/v1/merchant/orders/{order}/fulfil"), &shop.token, json!({})).await;
    assert_eq!(s, 200, "{v}");
    page.c.refresh().await.unwrap();
    page.click("[data-test=complete]").await;
    page.until("completed", "const e = document.querySelector('[data-order-state]'); return e && e.dataset.orderState === 'completed'", vec![]).await;
    page.fill("#review-text", "花很新鲜，准时送到").await;
    // With a photo: a real file through the file input, uploaded before the review is posted.
    let pics = TempDir::new("review");
    let file = pics.0.join("flowers.png");
    std::fs::write(&file, common::images::one_pixel_png()).unwrap();
    page.c.find(fantoccini::Locator::Css("#review-photos")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    page.wait_css(".thumbs img").await;
    page.click("[data-test=review]").await;
    page.until("the review posted", "return !document.querySelector('#review-text')", vec![]).await;
    let (_, reviews) = get(http, format!("{base}/api/v1/merchants/{}/reviews", shop.id), &erin.token).await;
    assert_eq!(reviews["items"][0]["text"], "花很新鲜，准时送到");
    let photos = reviews["items"][0]["photos"].as_array().unwrap();
    assert!(photos.len() == 1 && photos[0].as_str().unwrap().starts_with("/uploads/"), "{reviews}");

    // An unpaid order is cancelled in the app; a paid one gets a refund request.
    let body = json!({"items": [{"product": product, "quantity": 1}], "recipient": {"name": "王小花", "phone": "+8613812345678", "address": "大理"}, "deliver_on": tomorrow(), "slot": "morning"});
    let (s, unpaid) = post(http, format!("{base}/api/v1/orders"), &erin.token, body.clone()).await;
    assert_eq!(s, 201, "{unpaid}");
    let unpaid = unpaid["id"].as_str().unwrap().to_owned();
    page.go(&format!("#/order/{unpaid}")).await;
    page.click("[data-test=cancel]").await;
    page.until("cancelled", "const e = document.querySelector('[data-order-state]'); return e && e.dataset.orderState === 'cancelled'", vec![]).await;
    assert_eq!(order_state(http, &base, &erin, &unpaid).await, "cancelled");

    let (_, second) = post(http, format!("{base}/api/v1/orders"), &erin.token, body).await;
    let second = second["id"].as_str().unwrap().to_owned();
    page.go(&format!("#/order/{second}")).await;
    page.click("[data-test=pay]").await;
    page.until("paid", "const e = document.querySelector('[data-order-state]'); return e && e.dataset.orderState === 'paid'", vec![]).await;
    page.fill("#refund-reason", "行程有变").await;
    page.click("[data-test=refund]").await;
    page.until("refund requested", "const e = document.querySelector('[data-order-state]'); return e && e.dataset.orderState === 'refunding'", vec![]).await;
    assert_eq!(order_state(http, &base, &erin, &second).await, "refunding");

    // My orders lists all three.
    page.go("#/orders").await;
    page.until("three orders", "return document.querySelectorAll('[data-order]').length === 3", vec![]).await;

    // A farm animal claimed and paid in the app; the farm's update appears live on its page.
    page.go(&format!("#/animal/{animal}")).await;
    page.click("[data-test=claim]").await;
    page.until("an active claim", "const e = document.querySelector('[data-claim-state]'); return e && e.dataset.claimState === 'active'", vec![]).await;
    let (s, u) = post(http, format!("{base}/api/v1/merchant/animals/{animal}/updates"), &shop.token, json!({"text": "咩咩今天剪毛了"})).await;
    assert_eq!(s, 201, "{u}");
    page.until("the live update", "const u = document.querySelector('[data-update]'); return u && u.innerText.includes('咩咩今天剪毛了')", vec![]).await;

    page.assert_no_errors().await;
    page.close().await;
}

/// The socket client module (`/assets/lib/client.js`, which every page and the later consoles
/// use) in the browser against a scripted socket: seq order and no duplicates across a gap, a
/// duplicate frame and a sync; a rate-limited send resent with its cmid; sends kept across a
/// dropped connection (in storage too, found again by a reloaded page) and resent on reconnect, an ack `duplicate: true` and the
/// same message in history shown once; backoff, the 1012 restart delay, and no reconnect after a
/// ban.
#[tokio::test]
async fn the_socket_client_keeps_order_and_cmids_across_gaps_drops_and_restarts() {
    let _serial = SERIAL.lock().await;
    let Some(mut driver) = Driver::start().await else { return };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |_| {}).await;
    let mut page = driver.browser(390, 844).await;
    page.base = app.base();
    page.open("#/login").await;
    page.wait_css("#login-code").await;
    let out = page
        .c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            (async () => {
              const { JbkClient } = await import('/assets/lib/client.js');
              const sockets = [];
              class FakeSocket {
                constructor(url, proto) { this.url = url; this.proto = proto; this.readyState = 1; this.sent = []; sockets.push(this); }
                send(s) { this.sent.push(JSON.parse(s)); }
                close(code) { this.readyState = 3; }
                push(f) { this.onmessage({ data: JSON.stringify(f) }); }
                drop(code, reason) { this.readyState = 3; this.onclose({ code, reason: reason || '' }); }
                frames(type) { return this.sent.filter((f) => f.type === type); }
              }
              const check = (ok, what) => { if (!ok) throw new Error('failed: ' + what); };
              const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
              const text = (seq, t, from) => ({ conv: '9', seq, from: from || '2', cmid: 'c' + seq, ts: seq, body: { kind: 'text', text: t } });
              const hello = { type: 'hello', user: '1', session: 's', heartbeat_ms: 25000, max_frame_bytes: 65536, protocol: 'jbk.v1.json' };
              const Real = window.WebSocket;
              window.WebSocket = FakeSocket;
              const mem = new Map();
              const storage = { getItem: (k) => mem.has(k) ? mem.get(k) : null, setItem: (k, v) => mem.set(k, v) };
              const c = new JbkClient({ token: () => 'tok', user: '1', url: 'ws://test/ws', storage });
              try {
                const got = [];
                c.addEventListener('message', (e) => got.push(e.detail.seq + ':' + (e.detail.body.text || e.detail.body.kind)));
                c.track('9', 0);
                c.start();
                let ws = sockets[0];
                check(ws.url === 'ws://test/ws' && JSON.stringify(ws.proto) === '["jbk.v1.json","jbk.auth.tok"]', 'connects with jbk.v1.json and its token as a protocol, none in the URL');
                ws.push(hello);
                check(c.status === 'online', 'online after hello');
                const s1 = ws.frames('sync');
                check(s1.length === 1 && s1[0].conv === '9' && s1[0].after === 0, 'syncs a tracked conversation on hello');
                ws.push({ type: 'history', id: s1[0].id, conv: '9', messages: [text(1, 'a')], more: false });
                ws.push({ type: 'msg', ...text(2, 'b') });
                ws.push({ type: 'msg', ...text(2, 'b') });
                ws.push({ type: 'msg', ...text(4, 'd') });
                check(got.join() === '1:a,2:b', 'a duplicate is dropped and a message past a gap waits: ' + got.join());
                await sleep(450);
                const s2 = ws.frames('sync');
                check(s2.length === 2 && s2[1].after === 2, 'the gap is synced from the last seq held');
                ws.push({ type: 'history', id: s2[1].id, conv: '9', messages: [text(3, 'c'), text(4, 'd')], more: false });
                check(got.join() === '1:a,2:b,3:c,4:d', 'in order, once each: ' + got.join());

                const first = c.send('9', 'hi');
                const sends = ws.frames('send');
                check(sends.length === 1 && sends[0].cmid === first && sends[0].body.text === 'hi', 'a send carries its cmid');
                ws.push({ type: 'error', id: sends[0].id, code: 'rate_limited', message: 'slow down', retry_after_ms: 50 });
                await sleep(150);
                check(ws.frames('send').length === 2 && ws.frames('send')[1].cmid === first, 'a rate-limited send is resent with the same cmid');

                ws.drop(1006);
                check(c.status === 'offline', 'offline after a drop');
                const second = c.send('9', 'offline');
                const kept = JSON.parse(storage.getItem('jbk.pending.1')).map((p) => p.cmid);
                check(kept.join() === [first, second].join(), 'unacked sends are kept in storage');
                const reloaded = new JbkClient({ token: () => 'tok', user: '1', url: 'ws://test/ws', storage });
                check(reloaded.pending.map((p) => p.cmid + ':' + p.text).join() === first + ':hi,' + second + ':offline', 'a reloaded page finds them');
                await sleep(900);
                check(sockets.length === 2, 'reconnects after a backoff of about half a second');
                ws = sockets[1];
                ws.push(hello);
                const s3 = ws.frames('sync');
                check(s3.length === 1 && s3[0].after === 4, 'syncs from the last seq after a reconnect');
                check(ws.frames('send').map((f) => f.cmid).join() === [first, second].join(), 'resends every unacked send with its cmid');
                ws.push({ type: 'ack', id: 'send:' + first, conv: '9', cmid: first, seq: 5, ts: 5, duplicate: true });
                ws.push({ type: 'history', id: s3[0].id, conv: '9', messages: [text(5, 'hi', '1')], more: false });
                ws.push({ type: 'ack', id: 'send:' + second, conv: '9', cmid: second, seq: 6, ts: 6, duplicate: false });
                check(got.join() === '1:a,2:b,3:c,4:d,5:hi,6:offline', 'acked and synced copies shown once: ' + got.join());
                check(c.pending.length === 0 && JSON.parse(storage.getItem('jbk.pending.1')).length === 0, 'nothing left pending');

                ws.drop(1012, 'server_restart; reconnect_after_ms=50');
                await sleep(200);
                check(sockets.length === 3, 'a restart reconnects after the delay it names');
                sockets[2].push(hello);
                sockets[2].drop(4003, 'banned');
                await sleep(1200);
                check(sockets.length === 3 && c.status === 'closed', 'a ban does not reconnect');
                done({ ok: true, got });
              } catch (e) {
                done({ ok: false, error: String(e && e.stack || e) });
              } finally {
                c.stop();
                window.WebSocket = Real;
              }
            })();"#,
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(out["ok"], json!(true), "{out}");
    page.assert_no_errors().await;
    page.close().await;
}

#[tokio::test]
async fn qr_login_profile_settings_blocks_and_an_avatar_upload_in_the_app() {
    let _serial = SERIAL.lock().await;
    let Some(mut driver) = Driver::start().await else { return };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |_| {}).await;
    let (http, base) = (&app.http, app.base());
    let frank = login(http, &base, "frank").await;
    let grace = login(http, &base, "grace").await;
    let mut page = driver.browser(390, 844).await;
    page.base = base.clone();

    // QR login: the page shows the code; the mini-program (here: frank's token) confirms it.
    page.open("#/login").await;
    page.click("[data-test=qr-start]").await;
    page.wait_css("img.qr").await;
    let ticket = page.text_of("[data-test=qr-ticket]").await;
    let r = http.post(format!("{base}/api/v1/auth/qr/{ticket}/confirm")).bearer_auth(&frank.token).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    page.after_login().await;
    let me = page.eval("return JSON.parse(localStorage.getItem('jbk.session')).me.id", vec![]).await;
    assert_eq!(me, json!(frank.id), "logged in as the one who confirmed");

    // Profile.
    page.go("#/me").await;
    page.fill("#me-nickname", "老方头").await;
    page.fill("#me-bio", "退休地理老师").await;
    page.fill("#me-tags", "摄影, 慢旅行").await;
    page.click("[data-test=save-profile]").await;
    let deadline = tokio::time::Instant::now() + PAGE_WAIT;
    loop {
        let (_, v) = get(http, format!("{base}/api/v1/me"), &frank.token).await;
        if v["nickname"] == "老方头" {
            assert_eq!(v["bio"], "退休地理老师");
            assert_eq!(v["tags"], json!(["摄影", "慢旅行"]));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "profile never saved: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A bad field is named, not swallowed.
    page.eval("document.getElementById('me-nickname').removeAttribute('maxlength'); return 1", vec![]).await;
    page.eval("const e = document.getElementById('me-nickname'); e.value = '长'.repeat(40); e.dispatchEvent(new Event('input')); return 1", vec![]).await;
    page.click("[data-test=save-profile]").await;
    page.until("the nickname named in the error", "const e = document.querySelector('.error-text'); return e && e.innerText.includes('nickname')", vec![]).await;

    // Settings.
    page.c.find(fantoccini::Locator::Css("#set-dm_from")).await.unwrap().select_by_value("nobody").await.unwrap();
    let deadline = tokio::time::Instant::now() + PAGE_WAIT;
    loop {
        let (_, v) = get(http, format!("{base}/api/v1/me/settings"), &frank.token).await;
        if v["dm_from"] == "nobody" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "setting never saved: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // An avatar: a real file through the file input, uploaded and set.
    let png = TempDir::new("avatar");
    let file = png.0.join("avatar.png");
    std::fs::write(&file, common::images::one_pixel_png()).unwrap();
    page.c.find(fantoccini::Locator::Css("#avatar-file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    page.until("the avatar shown", "const i = document.querySelector('img.avatar'); return i && i.src.includes('/uploads/')", vec![]).await;
    let (_, v) = get(http, format!("{base}/api/v1/me"), &frank.token).await;
    assert!(v["avatar_url"].as_str().unwrap().starts_with("/uploads/"), "{v}");

    // Block grace from her profile, then unblock her from my list.
    page.go(&format!("#/user/{}", grace.id)).await;
    page.click("[data-test=dm] ~ button.secondary").await;
    let blocked = |v: &Value| v["items"].as_array().unwrap().iter().any(|b| b["user"] == json!(grace.id));
    let deadline = tokio::time::Instant::now() + PAGE_WAIT;
    loop {
        let (_, v) = get(http, format!("{base}/api/v1/me/blocks"), &frank.token).await;
        if blocked(&v) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never blocked: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    page.go("#/me").await;
    page.click("[aria-labelledby=blocks-title] button").await;
    let deadline = tokio::time::Instant::now() + PAGE_WAIT;
    loop {
        let (_, v) = get(http, format!("{base}/api/v1/me/blocks"), &frank.token).await;
        if !blocked(&v) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never unblocked: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Log out: back to the login page, the session gone, here and at the server (its token
    // is refused).
    let stored = page.eval("return localStorage.getItem('jbk.session')", vec![]).await;
    let token = serde_json::from_str::<Value>(stored.as_str().unwrap()).unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(get(http, format!("{base}/api/v1/me"), &token).await.0, 200);
    page.click("[data-test=logout]").await;
    page.wait_css("#login-code").await;
    assert_eq!(page.eval("return localStorage.getItem('jbk.session')", vec![]).await, Value::Null);
    assert_eq!(get(http, format!("{base}/api/v1/me"), &token).await.0, 401, "the server ended the session");

    page.assert_no_errors().await;
    page.close().await;
}

/// Every route of the app, with data behind it; returns (hash, what to wait for).
async fn world(http: &reqwest::Client, base: &str) -> (LoggedIn, Vec<(String, &'static str)>) {
    let admin = login(http, base, "ax-root").await;
    let shop = merchant(http, base, &admin, "ax-shop").await;
    let (_, p) = post(http, format!("{base}/api/v1/merchant/products"), &shop.token, json!({"kind": "flower", "title": "向日葵", "description": "三枝装", "price_fen": 5900, "stock": 9})).await;
    let product = p["id"].as_str().unwrap().to_owned();
    let (_, a) = post(http, format!("{base}/api/v1/merchant/animals"), &shop.token, json!({"species": "猪", "name": "小花", "story": "爱吃红薯", "price_fen": 19900, "period_days": 90, "slots": 3})).await;
    let animal = a["id"].as_str().unwrap().to_owned();
    let me = login(http, base, "ax-traveller").await;
    let friend = login(http, base, "ax-friend").await;
    let conv = direct(http, base, &me, &friend).await;
    let (_, o) = post(http, format!("{base}/api/v1/orders"), &me.token, json!({"items": [{"product": product, "quantity": 2}], "recipient": {"name": "李四", "phone": "+8613912345678", "address": "丽江"}, "deliver_on": tomorrow(), "slot": "evening", "note": "生日快乐"})).await;
    let order = o["id"].as_str().unwrap().to_owned();
    let (_, c) = post(http, format!("{base}/api/v1/animals/{animal}/claims"), &me.token, json!({"periods": 1})).await;
    let claim = c["claim"]["id"].as_str().unwrap().to_owned();
    // A completed order: its page has the review form (photos included).
    let (_, done) = post(http, format!("{base}/api/v1/orders"), &me.token, json!({"items": [{"product": product, "quantity": 1}], "recipient": {"name": "李四", "phone": "+8613912345678", "address": "丽江"}, "deliver_on": tomorrow(), "slot": "morning"})).await;
    let done = done["id"].as_str().unwrap().to_owned();
    let (s, p) = post(http, format!("{base}/api/v1/orders/{done}/pay"), &me.token, json!({})).await;
    assert_eq!(s, 200, "{p}");
    let (s, _) = post(http, format!("{base}/api/v1/payments/local/{}/confirm", p["payment"].as_str().unwrap()), &me.token, json!({})).await;
    assert_eq!(s, 204);
    assert_eq!(post(http, format!("{base}/api/v1/merchant/orders/{done}/fulfil"), &shop.token, json!({})).await.0, 200);
    assert_eq!(post(http, format!("{base}/api/v1/orders/{done}/complete"), &me.token, json!({})).await.0, 200);
    let routes = vec![
        ("#/chats".to_owned(), ".list"),
        (format!("#/chat/{conv}"), "#composer-input"),
        ("#/new-chat".to_owned(), "#group-title"),
        ("#/match".to_owned(), "#match-dest"),
        ("#/shop".to_owned(), "[data-product]"),
        ("#/shop/animals".to_owned(), "[data-animal]"),
        (format!("#/product/{product}"), "#order-name"),
        (format!("#/animal/{animal}"), "#claim-periods"),
        ("#/orders".to_owned(), "[data-order]"),
        (format!("#/order/{order}"), "[data-order-state]"),
        (format!("#/order/{done}"), "#review-photos"),
        (format!("#/claim/{claim}"), "[data-claim-state]"),
        (format!("#/user/{}", friend.id), "[data-test=dm]"),
        ("#/me".to_owned(), "#me-nickname"),
    ];
    (me, routes)
}

#[tokio::test]
async fn every_page_passes_axe_in_both_languages_and_the_switch_sticks() {
    let _serial = SERIAL.lock().await;
    let Some(mut driver) = Driver::start().await else { return };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |c| c.admins = vec![("dev".into(), "ax-root".into())]).await;
    let base = app.base();
    let (_, routes) = world(&app.http, &base).await;
    let mut page = driver.browser(390, 844).await;
    page.base = base.clone();

    // The pages before a session: login, then the privacy policy.
    page.open("#/login").await;
    page.wait_css("#login-code").await;
    let mut found = Vec::new();
    for v in page.axe().await {
        found.push(format!("login: {v}"));
    }
    // By keyboard: the code, then Enter submits the form.
    page.fill("#login-code", "ax-traveller\u{E007}").await;
    page.wait_css("[data-test=accept]").await;
    for v in page.axe().await {
        found.push(format!("consent: {v}"));
    }
    page.click("[data-test=accept]").await;
    page.wait_css(".tabbar").await;

    for lang in ["zh-CN", "en-US"] {
        if lang == "en-US" {
            page.go("#/me").await;
            page.wait_css("[data-test=lang-select]").await;
            page.c.find(fantoccini::Locator::Css("[data-test=lang-select]")).await.unwrap().select_by_value("en-US").await.unwrap();
            page.until("English", "return document.documentElement.lang === 'en-US' && document.querySelector('[data-tab=chats]').innerText.includes('Chats')", vec![]).await;
            // It sticks across a reload.
            page.c.refresh().await.unwrap();
            page.until("English after a reload", "return document.documentElement.lang === 'en-US' && document.querySelector('[data-tab=me]') && document.querySelector('[data-tab=me]').innerText.includes('Me')", vec![]).await;
        }
        for (hash, ready) in &routes {
            page.go(hash).await;
            page.wait_css(ready).await;
            for v in page.axe().await {
                found.push(format!("{lang} {hash}: {v}"));
            }
        }
        assert_eq!(page.eval("return document.documentElement.lang", vec![]).await, json!(lang));
    }
    // Back to Chinese from the English page.
    page.go("#/me").await;
    page.c.find(fantoccini::Locator::Css("[data-test=lang-select]")).await.unwrap().select_by_value("zh-CN").await.unwrap();
    page.until("Chinese again", "return document.querySelector('[data-tab=chats]').innerText.includes('聊天')", vec![]).await;

    assert!(found.is_empty(), "axe found serious or critical violations:\n{}", found.join("\n"));
    // The checker does see a fault when there is one: an image without a text alternative.
    page.eval("const i = document.createElement('img'); i.src = '/app/icon.svg'; document.querySelector('main').appendChild(i); return 1", vec![]).await;
    let seen = page.axe().await;
    assert!(seen.iter().any(|v| v.contains("image-alt")), "axe missed an image without alt: {seen:?}");
    page.assert_no_errors().await;
    page.close().await;
}

#[tokio::test]
async fn the_pages_are_served_with_their_policy_and_a_failing_script_is_caught() {
    let _serial = SERIAL.lock().await;
    let Some(mut driver) = Driver::start().await else { return };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |_| {}).await;
    let base = app.base();
    let r = app.http.get(format!("{base}/app/")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(!csp.contains("unsafe-eval") && !csp.contains("unsafe-inline"), "{csp}");
    let mut page = driver.browser(390, 844).await;
    page.base = base.clone();
    page.open("#/login").await;
    page.wait_css("#login-code").await;
    page.assert_no_errors().await;
    // The hook the tests rely on does catch what a page throws (and eval stays forbidden).
    // A failed request of the pages' own REST client that nobody awaits, and a throw (a script the
    // driver injects throws as a muted "Script error.").
    page.eval("import('/assets/lib/api.js').then((m) => { m.createApi().get('/nope'); }); setTimeout(() => { throw new Error('boom'); }, 0); return 1", vec![]).await;
    page.until("the collected errors", "return (window.__jbkErrors || []).length >= 2", vec![]).await;
    let errors = page.errors().await;
    assert!(errors.iter().any(|e| e.starts_with("error:")) && errors.iter().any(|e| e.contains("unhandledrejection")), "{errors:?}");
    // The policy holds in the browser: an inline script does not run.
    let ran = page.eval("const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.appendChild(s); return window.__inline === 1", vec![]).await;
    assert_eq!(ran, json!(false), "the policy forbids inline scripts");
    page.close().await;
}
