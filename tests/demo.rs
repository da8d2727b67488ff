//! `jiebanke demo`, run as the binary on a fresh store (SQLite, and MariaDB when one answers):
//! then a server on that store shows, through the REST API, what the demo promises (alice's
//! group chat with unread messages, the two merchants and their catalog, orders in each state,
//! a review with its reply, an active claim with updates, the florist's alert waiting). A second
//! run adds nothing. Refused in production, and on a store where the demo's users already have
//! data of their own.

mod common;
use common::*;
use jiebanke::demo::{self, Outcome};
use jiebanke::Config;
use serde_json::{json, Value};

/// Runs `jiebanke demo` on the test's store with `env`; its exit status and output.
fn demo_cli(tdb: &TestDb, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jiebanke"));
    cmd.arg("demo").env("JBK_DATA_DIR", &tdb.dir.0).env_remove("JBK_DATABASE_URL").env_remove("JBK_ENV").env_remove("RUST_LOG");
    if let Some(url) = tdb.url() {
        cmd.env("JBK_DATABASE_URL", url);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run jiebanke demo");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().unwrap_or_else(|| panic!("a page: {v}")).clone()
}

/// Checks the demo world through a server on the store; returns what was counted, to compare
/// runs.
async fn look(tdb: &TestDb) -> Value {
    let app = spawn_app(tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let alice = login_default(http, &base, "alice").await;
    let (flora, farmer) = (login_default(http, &base, "flora").await, login_default(http, &base, "farmer").await);
    let (carol, dave, erin) = (login_default(http, &base, "carol").await, login_default(http, &base, "dave").await, login_default(http, &base, "erin").await);

    // Alice: her profile, the group with 6 unread of 21, two direct conversations with unread.
    let (_, me) = get(http, format!("{base}/api/v1/me"), &alice.token).await;
    assert_eq!((me["nickname"].as_str(), me["gender"].as_str(), me["birth_year"].as_u64()), (Some("小艾"), Some("female"), Some(1996)), "{me}");
    let (s, convs) = get(http, format!("{base}/api/v1/conversations"), &alice.token).await;
    assert_eq!(s, 200);
    let convs = items(&convs);
    assert_eq!(convs.len(), 3, "{convs:?}");
    let group = convs.iter().find(|c| c["kind"] == "group").expect("the group");
    assert_eq!((group["title"].as_str(), group["owner"].as_str()), (Some(demo::GROUP_TITLE), Some(alice.id.as_str())));
    assert_eq!(group["members"].as_array().unwrap().len(), 5);
    assert_eq!((group["last_seq"].as_u64(), group["read_seq"].as_u64()), (Some(21), Some(15)), "6 unread");
    let mut unread: Vec<u64> = convs.iter().filter(|c| c["kind"] == "direct").map(|c| c["last_seq"].as_u64().unwrap() - c["read_seq"].as_u64().unwrap()).collect();
    unread.sort();
    assert_eq!(unread, vec![1, 2], "both direct conversations have something unread");
    let (s, history) = get(http, format!("{base}/api/v1/conversations/{}/messages?limit=200", group["id"].as_str().unwrap()), &alice.token).await;
    assert_eq!(s, 200);
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 21);
    assert_eq!(messages[0]["body"]["text"], "大家好！下周一起去大理的都在这里了，先认识一下～", "{}", messages[0]);
    let speakers: std::collections::HashSet<&str> = messages.iter().map(|m| m["from"].as_str().unwrap()).collect();
    assert_eq!(speakers.len(), 5, "every member speaks");

    // The two merchants, listed; the florist rated by carol's review, which has its reply.
    let (_, merchants) = get(http, format!("{base}/api/v1/merchants"), &alice.token).await;
    let mut names: Vec<String> = items(&merchants).iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(names, vec!["洱海花坊".to_owned(), "苍山脚下生态牧场".to_owned()]);
    let florist = items(&merchants).into_iter().find(|m| m["id"] == flora.id.as_str()).expect("flora is the florist");
    assert_eq!((florist["category"].as_str(), florist["rating"].as_f64(), florist["reviews"].as_i64()), (Some("florist"), Some(5.0), Some(1)));
    let (_, reviews) = get(http, format!("{base}/api/v1/merchants/{}/reviews", flora.id), &alice.token).await;
    let reviews = items(&reviews);
    assert_eq!((reviews.len(), reviews[0]["author"].as_str()), (1, Some(carol.id.as_str())));
    assert!(reviews[0]["reply"].as_str().is_some_and(|r| !r.is_empty()), "{reviews:?}");

    // The catalog: five flowers with photos that are served, three animals.
    let (_, products) = get(http, format!("{base}/api/v1/products?merchant={}", flora.id), &alice.token).await;
    let products = items(&products);
    assert_eq!(products.len(), 5);
    assert!(products.iter().all(|p| p["price_fen"].as_i64().unwrap() > 0 && p["photos"].as_array().unwrap().len() == 1), "{products:?}");
    let photo = http.get(format!("{base}{}", products[0]["photos"][0].as_str().unwrap())).send().await.unwrap();
    assert_eq!((photo.status().as_u16(), photo.headers()["content-type"].to_str().unwrap()), (200, "image/png"));
    let (_, animals) = get(http, format!("{base}/api/v1/animals?merchant={}", farmer.id), &alice.token).await;
    let animals = items(&animals);
    let mut species: Vec<&str> = animals.iter().map(|a| a["species"].as_str().unwrap()).collect();
    species.sort();
    assert_eq!(species, vec!["奶牛", "小猪", "羊"]);

    // Orders in each state, each the promised traveller's.
    let mut by_state = serde_json::Map::new();
    for (state, buyer) in [("paid", &dave), ("fulfilled", &alice), ("completed", &carol), ("cancelled", &erin)] {
        let (s, list) = get(http, format!("{base}/api/v1/merchant/orders?state={state}"), &flora.token).await;
        assert_eq!(s, 200, "{list}");
        let list = items(&list);
        assert_eq!(list.len(), 1, "one {state} order: {list:?}");
        assert_eq!(list[0]["buyer"], buyer.id.as_str(), "{state}");
        by_state.insert(state.into(), json!(list[0]["id"]));
    }
    // The florist has one alert waiting: the paid order's.
    let (_, alerts) = get(http, format!("{base}/api/v1/alerts"), &flora.token).await;
    let alerts = items(&alerts);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["order"]["id"], by_state["paid"]);
    let (_, dashboard) = get(http, format!("{base}/api/v1/merchant/dashboard"), &flora.token).await;
    assert_eq!(dashboard["unacked_alerts"], 1);
    let (_, farm_alerts) = get(http, format!("{base}/api/v1/alerts"), &farmer.token).await;
    assert_eq!(items(&farm_alerts).len(), 0, "the farm acked its claim's alert");

    // Alice's claim of the sheep: active, with the farm's two updates.
    let (_, claims) = get(http, format!("{base}/api/v1/claims"), &alice.token).await;
    let claims = items(&claims);
    assert_eq!((claims.len(), claims[0]["state"].as_str()), (1, Some("active")), "{claims:?}");
    let (s, updates) = get(http, format!("{base}/api/v1/claims/{}/updates", claims[0]["id"].as_str().unwrap()), &alice.token).await;
    assert_eq!((s, items(&updates).len()), (200, 2), "{updates}");

    // The demo's admin is one.
    let admin = login_default(http, &base, demo::ADMIN_CODE).await;
    let (_, a) = get(http, format!("{base}/api/v1/me"), &admin.token).await;
    assert_eq!(a["role"], "admin");

    let counts = json!({
        "conversations": convs.len(),
        "group_messages": messages.len(),
        "merchants": items(&merchants).len(),
        "products": products.len(),
        "animals": animals.len(),
        "orders": by_state,
        "alerts": alerts.len(),
        "claims": claims.len(),
        "reviews": reviews.len(),
        "alice_orders": items(&get(http, format!("{base}/api/v1/orders"), &alice.token).await.1).len(),
    });
    app.shutdown.cancel();
    app.handle.await.unwrap().unwrap();
    counts
}

async fn demo_world(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let (ok, out, err) = demo_cli(&tdb, &[]);
    assert!(ok, "demo failed:\n{out}\n{err}");
    for needle in ["演示数据已就绪", "/app/", "alice", "bob", "carol", "dave", "erin", "frank", "flora", "farmer", "demo-admin"] {
        assert!(out.contains(needle), "the summary names {needle}:\n{out}");
    }
    let store = match tdb.url() {
        // The URL is printed without its password, if it has one: look for the database.
        Some(url) => url.rsplit('/').next().unwrap().to_owned(),
        None => tdb.dir.0.join("jiebanke.db").display().to_string(),
    };
    assert!(out.contains(&store), "the summary says where the world is ({store}):\n{out}");
    let first = look(&tdb).await;

    // Again: nothing added.
    let (ok, out, err) = demo_cli(&tdb, &[]);
    assert!(ok, "demo failed:\n{out}\n{err}");
    assert!(out.contains("演示数据已存在"), "{out}");
    let mut config = Config::dev(tdb.dir.0.clone());
    config.database_url = tdb.url();
    assert_eq!(demo::run(config).await.unwrap(), Outcome::AlreadyThere, "the library says so too");
    assert_eq!(look(&tdb).await, first);
}

#[tokio::test]
async fn demo_on_sqlite() {
    demo_world(Db::Sqlite).await;
}

#[tokio::test]
async fn demo_on_mysql() {
    demo_world(Db::MySql).await;
}

#[tokio::test]
async fn refused_in_production() {
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let (ok, out, err) = demo_cli(&tdb, &[("JBK_ENV", "production")]);
    assert!(!ok, "{out}");
    assert!(err.contains("JBK_ENV=production"), "a clear error: {err}");
    assert!(!tdb.dir.0.join("jiebanke.db").exists(), "nothing was made");
    let mut config = Config::dev(tdb.dir.0.clone());
    config.env = jiebanke::config::Environment::Production;
    assert!(demo::run(config).await.unwrap_err().to_string().contains("production"));
}

/// A store where alice has a conversation of her own (but no demo) is left as it is.
#[tokio::test]
async fn refused_where_the_demo_users_have_data_of_their_own() {
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let (alice, bob) = (login_default(http, &base, "alice").await, login_default(http, &base, "bob").await);
    direct(http, &base, &alice, &bob).await;
    app.shutdown.cancel();
    app.handle.await.unwrap().unwrap();

    let err = demo::run(Config::dev(tdb.dir.0.clone())).await.unwrap_err().to_string();
    assert!(err.contains("Nothing was added"), "{err}");
    let app = spawn_app(&tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let alice = login_default(http, &base, "alice").await;
    let (_, convs) = get(http, format!("{base}/api/v1/conversations"), &alice.token).await;
    assert_eq!(items(&convs).len(), 1);
    let (_, merchants) = get(http, format!("{base}/api/v1/merchants"), &alice.token).await;
    assert_eq!(items(&merchants).len(), 0);
}
