//! Companion matching (结伴) on the embedded default: a request waits or is matched at once;
//! both travellers' sessions get the proposal with their direct conversation; a new request
//! replaces the old; cancel; expiry; a traveller who goes offline stops waiting; bad input gets
//! a typed error with its request id; concurrent requests are each matched once; turning
//! matching off in the settings withdraws the waiting request.

mod common;
use common::*;
use jiebanke_chat_core::matching::Day;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The date `days` from today (UTC), as the wire writes it.
fn date(days: i32) -> String {
    Day::from_days(Day::of_ms(jiebanke_chat_core::now_ms()).days() + days).to_string()
}

fn request(id: u64, dest: &str, from: i32, to: i32) -> Value {
    json!({"type":"match_request","id":id,"destination":dest,"from":date(from),"to":date(to)})
}

/// The answer to request `id` (skipping other frames).
async fn answer(c: &mut Client, id: u64) -> Value {
    loop {
        let v = c.recv().await;
        if v["id"] == id {
            return v;
        }
    }
}

/// For a request that finds a companion: its answer and the proposal, in whichever order they
/// come (the proposal may be queued before the answer).
async fn matched(c: &mut Client, id: u64) -> (Value, Value) {
    let (mut reply, mut proposal) = (None, None);
    while reply.is_none() || proposal.is_none() {
        let v = c.recv().await;
        if v["type"] == "match_proposal" {
            assert!(proposal.replace(v).is_none(), "two proposals");
        } else if v["id"] == id {
            reply = Some(v);
        }
    }
    (reply.unwrap(), proposal.unwrap())
}

#[tokio::test]
async fn two_travellers_are_matched_into_their_direct_conversation() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |_| {}).await;
    let (a, b) = (login(&app.http, &app.base(), "ma").await, login(&app.http, &app.base(), "mb").await);
    let mut a1 = connect(app.addr, &a.token, Proto::Json).await;
    let mut a2 = connect(app.addr, &a.token, Proto::MsgPack).await;
    let mut b1 = connect(app.addr, &b.token, Proto::Json).await;

    a1.send(request(1, " 大理 ", 10, 15)).await;
    let w = answer(&mut a1, 1).await;
    assert_eq!((w["type"].as_str(), w["matched"].as_bool()), (Some("match_requested"), Some(false)), "{w}");
    assert!(w["expires_at"].as_i64().unwrap() > jiebanke_chat_core::now_ms());

    b1.send(request(2, "大理", 13, 20)).await;
    let (m, pb) = matched(&mut b1, 2).await;
    assert_eq!(m["matched"], true, "{m}");
    let match_id = m["match"].as_str().unwrap().to_owned();

    let pa1 = a1.recv_type("match_proposal").await;
    let pa2 = a2.recv_type("match_proposal").await;
    for (p, peer) in [(&pa1, &b.id), (&pa2, &b.id), (&pb, &a.id)] {
        assert_eq!(p["match"], match_id.as_str(), "{p}");
        assert_eq!(p["peer"], peer.as_str());
        assert_eq!(p["destination"], "大理");
        assert_eq!((p["from"].as_str().unwrap(), p["to"].as_str().unwrap()), (date(13).as_str(), date(15).as_str()));
    }
    // The conversation is the pair's one direct conversation, and they can talk in it.
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    assert_eq!(pa1["conv"], conv.as_str());
    assert_eq!(pb["conv"], conv.as_str());
    let ack = b1.say(3, &conv, "hi-1", "一起去大理吧").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(a1.recv_type("msg").await["body"]["text"], "一起去大理吧");

    // Both requests are gone: a third traveller waits.
    let c = login(&app.http, &app.base(), "mc").await;
    let mut c1 = connect(app.addr, &c.token, Proto::Json).await;
    c1.send(request(4, "大理", 10, 20)).await;
    assert_eq!(answer(&mut c1, 4).await["matched"], false);
    a1.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_new_request_replaces_the_old_and_cancel_withdraws_it() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |_| {}).await;
    let (a, b, c) = (
        login(&app.http, &app.base(), "ra").await,
        login(&app.http, &app.base(), "rb").await,
        login(&app.http, &app.base(), "rc").await,
    );
    let mut a1 = connect(app.addr, &a.token, Proto::Json).await;
    let mut b1 = connect(app.addr, &b.token, Proto::Json).await;
    let mut c1 = connect(app.addr, &c.token, Proto::Json).await;

    a1.send(request(1, "大理", 5, 9)).await;
    assert_eq!(answer(&mut a1, 1).await["matched"], false);
    a1.send(request(2, "丽江", 5, 9)).await;
    assert_eq!(answer(&mut a1, 2).await["matched"], false);
    // a no longer waits for 大理.
    b1.send(request(3, "大理", 5, 9)).await;
    assert_eq!(answer(&mut b1, 3).await["matched"], false);
    // Windows that do not overlap do not match; a minimum of shared days is respected.
    c1.send(request(4, "丽江", 10, 12)).await;
    assert_eq!(answer(&mut c1, 4).await["matched"], false);
    c1.send(json!({"type":"match_request","id":5,"destination":"大理","from":date(8),"to":date(12),"min_days":3})).await;
    assert_eq!(answer(&mut c1, 5).await["matched"], false, "2 shared days < 3");

    b1.send(json!({"type":"match_cancel","id":6})).await;
    let r = answer(&mut b1, 6).await;
    assert_eq!((r["type"].as_str(), r["cancelled"].as_bool()), (Some("match_cancelled"), Some(true)), "{r}");
    b1.send(json!({"type":"match_cancel","id":7})).await;
    assert_eq!(answer(&mut b1, 7).await["cancelled"], false);
    // c waits for 大理 (8..12, at least 3 shared days); a's new request shares 9..11.
    a1.send(json!({"type":"match_request","id":8,"destination":"大理","from":date(9),"to":date(11),"min_days":3})).await;
    assert_eq!(matched(&mut a1, 8).await.0["matched"], true);
    assert_eq!(c1.recv_type("match_proposal").await["peer"], a.id.as_str());
    b1.expect_silence(Duration::from_millis(200)).await;
}

/// Turning matching off (`PATCH /api/v1/me/settings {"matchable":false}`) withdraws the
/// request that waits: a compatible traveller who comes after is not matched with it.
#[tokio::test]
async fn turning_matching_off_withdraws_the_waiting_request() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let (a, b) = (login(http, &base, "wa").await, login(http, &base, "wb").await);
    let mut a1 = connect(app.addr, &a.token, Proto::Json).await;
    let mut b1 = connect(app.addr, &b.token, Proto::Json).await;
    let matchable = |who: &LoggedIn, on: bool| {
        let (url, token) = (format!("{base}/api/v1/me/settings"), who.token.clone());
        async move {
            let r = http.patch(url).bearer_auth(token).json(&json!({"matchable": on})).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.json::<Value>().await.unwrap()["matchable"], on);
        }
    };

    a1.send(request(1, "大理", 5, 9)).await;
    assert_eq!(answer(&mut a1, 1).await["matched"], false);
    matchable(&a, false).await;
    b1.send(request(2, "大理", 5, 9)).await;
    assert_eq!(answer(&mut b1, 2).await["matched"], false, "matched with a traveller who turned matching off");
    a1.expect_silence(Duration::from_millis(300)).await;
    a1.send(json!({"type":"match_cancel","id":3})).await;
    assert_eq!(answer(&mut a1, 3).await["cancelled"], false, "nothing of a's waits any more");
    // Off, a new request is refused; on again, a asks again and finds b.
    a1.send(request(4, "大理", 5, 9)).await;
    assert_eq!(answer(&mut a1, 4).await["code"], "forbidden");
    matchable(&a, true).await;
    a1.send(request(5, "大理", 5, 9)).await;
    assert_eq!(matched(&mut a1, 5).await.0["matched"], true);
    assert_eq!(b1.recv_type("match_proposal").await["peer"], a.id.as_str());
}

#[tokio::test]
async fn bad_requests_get_typed_errors_with_their_ids() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |_| {}).await;
    let a = login(&app.http, &app.base(), "ba").await;
    let mut a1 = connect(app.addr, &a.token, Proto::Json).await;
    let cases = [
        json!({"type":"match_request","id":1,"destination":"  ","from":date(1),"to":date(2)}),
        json!({"type":"match_request","id":2,"destination":"大理","from":"2026-02-30","to":date(2)}),
        json!({"type":"match_request","id":3,"destination":"大理","from":date(5),"to":date(2)}),
        json!({"type":"match_request","id":4,"destination":"大理","from":date(1),"to":date(200)}),
        json!({"type":"match_request","id":5,"destination":"大理","from":date(-10),"to":date(-5)}),
        json!({"type":"match_request","id":6,"destination":"大理","from":date(1),"to":date(2),"min_days":5}),
        json!({"type":"match_request","id":7,"destination":"x".repeat(65),"from":date(1),"to":date(2)}),
        json!({"type":"match_request","id":8,"destination":"大理","from":date(1)}),
        json!({"type":"match_request","id":9,"destination":"大理","from":date(1),"to":date(2),"min_days":-1}),
    ];
    for (i, frame) in cases.into_iter().enumerate() {
        a1.send(frame).await;
        let e = a1.recv().await;
        assert_eq!((e["type"].as_str(), e["code"].as_str(), e["id"].as_u64()), (Some("error"), Some("invalid"), Some(i as u64 + 1)), "{e}");
    }
    // The session lives on.
    a1.send(request(10, "大理", 1, 2)).await;
    assert_eq!(answer(&mut a1, 10).await["matched"], false);
}

#[tokio::test]
async fn a_request_expires_and_an_offline_traveller_stops_waiting() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |c| c.matching.ttl = Duration::from_millis(1_500)).await;
    let (a, b, c) = (
        login(&app.http, &app.base(), "ea").await,
        login(&app.http, &app.base(), "eb").await,
        login(&app.http, &app.base(), "ec").await,
    );
    let mut a1 = connect(app.addr, &a.token, Proto::MsgPack).await;
    a1.send(request(1, "大理", 3, 4)).await;
    assert_eq!(answer(&mut a1, 1).await["matched"], false);
    let x = a1.recv_type("match_expired").await;
    assert_eq!((x["destination"].as_str(), x["from"].as_str()), (Some("大理"), Some(date(3).as_str())), "{x}");
    // Expired: the next traveller waits.
    let mut b1 = connect(app.addr, &b.token, Proto::Json).await;
    b1.send(request(2, "大理", 3, 4)).await;
    assert_eq!(answer(&mut b1, 2).await["matched"], false);
    // b goes away (its last session): once b is offline, c is not matched with b.
    let mut c1 = connect(app.addr, &c.token, Proto::Json).await;
    c1.send(json!({"type":"presence_subscribe","id":50,"users":[b.id]})).await;
    let p = c1.recv_type("presence").await;
    assert_eq!(p["online"], true, "{p}");
    drop(b1);
    let p = c1.recv_type("presence").await;
    assert_eq!(p["online"], false, "{p}");
    c1.send(request(3, "大理", 3, 4)).await;
    assert_eq!(answer(&mut c1, 3).await["matched"], false, "matched with a traveller who is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_each_matched_once() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |_| {}).await;
    let n = 40;
    let mut users = Vec::new();
    for i in 0..n {
        users.push(login(&app.http, &app.base(), &format!("cc{i}")).await);
    }
    let mut clients = Vec::new();
    for u in &users {
        clients.push(connect(app.addr, &u.token, Proto::Json).await);
    }
    // Everyone at once, same destination and window: 20 pairs, nobody twice, nobody left.
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                c.send(request(1, "大理", 1, 3)).await;
                let (first, p) = matched(&mut c, 1).await;
                assert_eq!(first["type"], "match_requested", "{first}");
                c.expect_silence(Duration::from_millis(300)).await;
                (p["match"].as_str().unwrap().to_owned(), p["peer"].as_str().unwrap().to_owned(), p["conv"].as_str().unwrap().to_owned())
            })
        })
        .collect();
    let mut by_match: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (t, u) in tasks.into_iter().zip(&users) {
        let (m, peer, conv) = t.await.unwrap();
        by_match.entry(m).or_default().push((u.id.clone(), peer));
        let _ = conv;
    }
    assert_eq!(by_match.len(), n / 2);
    let mut seen = HashSet::new();
    for pair in by_match.values() {
        assert_eq!(pair.len(), 2, "{pair:?}");
        assert_eq!(pair[0].1, pair[1].0, "each is the other's peer");
        assert_eq!(pair[1].1, pair[0].0);
        assert!(seen.insert(pair[0].0.clone()) && seen.insert(pair[1].0.clone()), "matched twice");
    }
    assert_eq!(metric(&app.metrics_base(), "jbk_match_proposals_total").await, Some((n / 2) as f64));
}
