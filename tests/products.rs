//! The catalog end to end, on SQLite and MariaDB: only an approved merchant that is not
//! suspended lists, changes and hides flowers (every bad field named, texts screened);
//! everyone browses the visible products of active merchants, by merchant or title; farm
//! animals to claim are listed and browsed the same way.

mod common;
use common::*;
use serde_json::{json, Value};

async fn public(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn catalog(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let words = tdb.dir.0.join("words.txt");
    std::fs::write(&words, "赌博\n").unwrap();
    let app = spawn_app(&tdb, |c| {
        c.admins = vec![("dev".into(), "pr-root".into())];
        c.banned_words_file = Some(words.clone());
    })
    .await;
    let (base, http) = (app.base(), &app.http);
    let root = login(http, &base, "pr-root").await;
    let shop = merchant(http, &base, &root, "pr-shop").await;
    let other = merchant(http, &base, &root, "pr-other").await;
    let buyer = login(http, &base, "pr-buyer").await;
    let photo = upload_photo(http, &base, &shop.token).await;
    let rose = json!({"kind": "flower", "title": "红玫瑰 11 枝", "description": "大理当天鲜切", "price_fen": 19900, "stock": 5, "photos": [photo]});
    // Photos are the merchant's own uploads: another's, or another host's, are refused.
    let others = upload_photo(http, &base, &other.token).await;
    let (s, v) = post(http, format!("{base}/api/v1/merchant/products"), &shop.token, json!({"kind": "flower", "title": "红玫瑰", "price_fen": 100, "stock": 1, "photos": [photo, others, "https://evil.example/x.jpg"]})).await;
    let fields: Vec<&str> = v["fields"].as_array().map(|f| f.iter().map(|p| p["field"].as_str().unwrap()).collect()).unwrap_or_default();
    assert_eq!((s, fields), (422, vec!["photos[1]", "photos[2]"]), "{v}");

    // Only merchants sell.
    assert_eq!(post(http, format!("{base}/api/v1/merchant/products"), &buyer.token, rose.clone()).await.0, 403);
    let (s, v) = post(http, format!("{base}/api/v1/merchant/products"), &shop.token, json!({"kind": "animal", "title": "", "price_fen": 0, "stock": -1, "photos": ["ftp://x"]})).await;
    assert_eq!(s, 422, "{v}");
    let fields: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["kind"]);
    let (s, v) = post(http, format!("{base}/api/v1/merchant/products"), &shop.token, json!({"kind": "flower", "title": "", "description": "赌博", "price_fen": 0, "stock": -1, "photos": ["ftp://x"]})).await;
    assert_eq!(s, 422, "{v}");
    let fields: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["title", "description", "price_fen", "stock", "photos[0]"]);
    let (s, p) = post(http, format!("{base}/api/v1/merchant/products"), &shop.token, rose.clone()).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!((p["merchant"].as_str(), p["stock"].as_u64(), p["price_fen"].as_i64()), (Some(shop.id.as_str()), Some(5), Some(19900)));
    let rose_id = p["id"].as_str().unwrap().to_owned();
    let (_, lily) = post(http, format!("{base}/api/v1/merchant/products"), &other.token, json!({"kind": "flower", "title": "百合", "price_fen": 9900, "stock": 2})).await;
    let lily_id = lily["id"].as_str().unwrap().to_owned();

    // Everyone browses, by merchant or by title.
    let (s, page) = public(http, format!("{base}/api/v1/products/{rose_id}")).await;
    assert_eq!((s, page["title"].as_str(), page["stock"].as_u64()), (200, Some("红玫瑰 11 枝"), Some(5)));
    let (_, all) = public(http, format!("{base}/api/v1/products")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, by) = public(http, format!("{base}/api/v1/products?merchant={}", other.id)).await;
    assert_eq!(by["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect::<Vec<_>>(), vec![lily_id.as_str()]);
    let (_, found) = public(http, format!("{base}/api/v1/products?q=%E7%8E%AB%E7%91%B0")).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    let (s, v) = public(http, format!("{base}/api/v1/products?merchant=x")).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("merchant")));

    // Changes: only the fields sent; only the owner; the whole checked again.
    let patch = |token: String, id: String, body: Value| {
        let (http, url) = (http.clone(), format!("{base}/api/v1/merchant/products/{id}"));
        async move {
            let r = http.patch(url).bearer_auth(token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, p) = patch(shop.token.clone(), rose_id.clone(), json!({"stock": 8, "price_fen": 18800})).await;
    assert_eq!((s, p["stock"].as_u64(), p["price_fen"].as_i64(), p["title"].as_str()), (200, Some(8), Some(18800), Some("红玫瑰 11 枝")));
    assert_eq!(patch(other.token.clone(), rose_id.clone(), json!({"stock": 0})).await.0, 404, "not its product");
    assert_eq!(patch(shop.token.clone(), rose_id.clone(), json!({"title": "赌博玫瑰"})).await.0, 422);

    // A suspended merchant's products disappear and it cannot sell; reinstated, they are back.
    post(http, format!("{base}/api/v1/admin/merchants/{}/suspend", shop.id), &root.token, json!({"reason": "投诉"})).await;
    assert_eq!(public(http, format!("{base}/api/v1/products/{rose_id}")).await.0, 404);
    let (_, all) = public(http, format!("{base}/api/v1/products")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    assert_eq!(post(http, format!("{base}/api/v1/merchant/products"), &shop.token, rose.clone()).await.0, 403);
    post(http, format!("{base}/api/v1/admin/merchants/{}/reinstate", shop.id), &root.token, json!({})).await;
    assert_eq!(public(http, format!("{base}/api/v1/products/{rose_id}")).await.0, 200);

    // Deleted: hidden from everyone but its merchant's own list.
    let r = http.delete(format!("{base}/api/v1/merchant/products/{rose_id}")).bearer_auth(&shop.token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = http.delete(format!("{base}/api/v1/merchant/products/{rose_id}")).bearer_auth(&shop.token).send().await.unwrap();
    assert_eq!(r.status(), 404, "hidden once");
    assert_eq!(public(http, format!("{base}/api/v1/products/{rose_id}")).await.0, 404);
    let (_, mine) = get(http, format!("{base}/api/v1/merchant/products"), &shop.token).await;
    assert_eq!((mine["items"][0]["id"].as_str(), mine["items"][0]["hidden"].as_bool()), (Some(rose_id.as_str()), Some(true)));
    assert_eq!(get(http, format!("{base}/api/v1/merchant/products"), &buyer.token).await.0, 403);

    // Farm animals to claim: listed by active merchants, every bad field named, browsed by all.
    let sheep = json!({"species": "羊", "name": "咩咩", "story": "在洱海边长大", "price_fen": 9900, "period_days": 30, "slots": 3, "photos": [upload_photo(http, &base, &shop.token).await]});
    assert_eq!(post(http, format!("{base}/api/v1/merchant/animals"), &buyer.token, sheep.clone()).await.0, 403);
    let (s, v) = post(http, format!("{base}/api/v1/merchant/animals"), &shop.token, json!({"species": "", "name": "赌博", "price_fen": 1, "period_days": 400, "slots": 0})).await;
    assert_eq!(s, 422, "{v}");
    let fields: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["species", "name", "period_days", "slots"]);
    let (s, a) = post(http, format!("{base}/api/v1/merchant/animals"), &shop.token, sheep).await;
    assert_eq!((s, a["period_days"].as_u64(), a["slots"].as_u64()), (201, Some(30), Some(3)), "{a}");
    let animal_id = a["id"].as_str().unwrap().to_owned();
    let (s, page) = public(http, format!("{base}/api/v1/animals/{animal_id}")).await;
    assert_eq!((s, page["name"].as_str()), (200, Some("咩咩")));
    let (_, list) = public(http, format!("{base}/api/v1/animals?merchant={}", shop.id)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    post(http, format!("{base}/api/v1/admin/merchants/{}/suspend", shop.id), &root.token, json!({"reason": "投诉"})).await;
    assert_eq!(public(http, format!("{base}/api/v1/animals/{animal_id}")).await.0, 404);
    let (_, list) = public(http, format!("{base}/api/v1/animals")).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    assert_eq!(public(http, format!("{base}/api/v1/animals/999999")).await.0, 404);
    app.shutdown.cancel();
}

#[tokio::test]
async fn catalog_sqlite() {
    catalog(Db::Sqlite).await;
}

#[tokio::test]
async fn catalog_mysql() {
    catalog(Db::MySql).await;
}
