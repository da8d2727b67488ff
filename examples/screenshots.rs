//! Screenshots of every page of the traveller's app at a phone and a desktop size into
//! `docs/screenshots/`, of the demo world (`jiebanke demo`) as alice sees it, in headless
//! Chromium through chromedriver (the page tests' harness). Run by hand:
//! `cargo run --example screenshots`; CI builds it but does not run it (it must not change the
//! tree).

#[path = "../tests/browser/mod.rs"]
mod browser;
#[path = "../tests/common/mod.rs"]
mod common;

use browser::*;
use common::*;
use serde_json::{json, Value};

#[tokio::main]
async fn main() {
    let Some(mut driver) = Driver::start().await else {
        eprintln!("screenshots need chromium and chromedriver (apt-get install -y chromium chromium-driver)");
        std::process::exit(1);
    };
    let tdb = TestDb::new(Db::Sqlite).await.unwrap();
    jiebanke::demo::run(jiebanke::Config::dev(tdb.dir.0.clone())).await.expect("demo world");
    let app = spawn_app(&tdb, |_| {}).await;
    let (http, base) = (&app.http, app.base());
    let alice = login_default(http, &base, "alice").await;
    let first = |v: &Value, pick: &dyn Fn(&Value) -> bool| -> String {
        v["items"].as_array().unwrap().iter().find(|i| pick(i)).unwrap_or_else(|| panic!("nothing to show in {v}"))["id"].as_str().unwrap().to_owned()
    };
    let (_, convs) = get(http, format!("{base}/api/v1/conversations"), &alice.token).await;
    let group = first(&convs, &|c| c["kind"] == "group");
    let dm = first(&convs, &|c| c["kind"] == "direct");
    let (_, products) = get(http, format!("{base}/api/v1/products"), &alice.token).await;
    let product = first(&products, &|_| true);
    let (_, animals) = get(http, format!("{base}/api/v1/animals"), &alice.token).await;
    let animal = first(&animals, &|_| true);
    let (_, orders) = get(http, format!("{base}/api/v1/orders"), &alice.token).await;
    let order = first(&orders, &|o| o["kind"] == "flower");
    let (_, claims) = get(http, format!("{base}/api/v1/claims"), &alice.token).await;
    let claim = first(&claims, &|c| c["state"] == "active");
    let (_, c) = get(http, format!("{base}/api/v1/conversations/{dm}"), &alice.token).await;
    let friend = c["members"].as_array().unwrap().iter().find(|m| **m != json!(alice.id)).unwrap().as_str().unwrap().to_owned();
    let shots = [
        ("chats", "#/chats".to_owned(), ".list"),
        ("chat", format!("#/chat/{group}"), ".messages li[data-seq]"),
        ("new-chat", "#/new-chat".to_owned(), "#group-title"),
        ("match", "#/match".to_owned(), "#match-dest"),
        ("shop", "#/shop".to_owned(), "[data-product] img"),
        ("animals", "#/shop/animals".to_owned(), "[data-animal] img"),
        ("product", format!("#/product/{product}"), ".review"),
        ("animal", format!("#/animal/{animal}"), "#claim-periods"),
        ("orders", "#/orders".to_owned(), "[data-order]"),
        ("order", format!("#/order/{order}"), "[data-order-state]"),
        ("claim", format!("#/claim/{claim}"), "[data-update]"),
        ("user", format!("#/user/{friend}"), "[data-test=dm]"),
        ("me", "#/me".to_owned(), "#me-nickname"),
    ];
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    for (size, w, h) in [("phone", 390, 844), ("desktop", 1280, 800)] {
        let mut page = driver.browser(w, h).await;
        page.base = base.clone();
        page.open("#/login").await;
        page.wait_css("#login-code").await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        std::fs::write(out.join(format!("login-{size}.png")), page.c.screenshot().await.unwrap()).unwrap();
        page.login("alice").await;
        for (name, hash, ready) in &shots {
            page.go(hash).await;
            page.wait_css(ready).await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            std::fs::write(out.join(format!("{name}-{size}.png")), page.c.screenshot().await.unwrap()).unwrap();
        }
        page.assert_no_errors().await;
        page.close().await;
    }
}
