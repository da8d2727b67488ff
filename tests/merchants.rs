//! The merchants area end to end, on SQLite and MariaDB: applying (fields named, one open
//! application, the credit code's check character), the review by an operator with the live
//! `merchant_review` frame, the clear papers for staff (audited), public pages, suspension and
//! reinstatement by an admin, the audit trail, and the website's leads (no token, screened,
//! limited per address, the phone stored encrypted).

mod common;
use common::*;
use serde_json::{json, Value};

const LICENSE: &str = "91350100M000100Y43";

fn application(name: &str) -> Value {
    application_with(name, LICENSE)
}

fn application_with(name: &str, license: &str) -> Value {
    json!({"name": name, "category": "florist", "license_no": license, "contact_name": "王小花", "contact_phone": "+8613812345678"})
}

async fn anon_post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value, Option<String>) {
    let r = http.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

async fn become_a_merchant(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let words = tdb.dir.0.join("words.txt");
    std::fs::write(&words, "赌博\n").unwrap();
    let app = spawn_app(&tdb, |c| {
        c.admins = vec![("dev".into(), "mer-root".into())];
        c.banned_words_file = Some(words.clone());
    })
    .await;
    let (base, http) = (app.base(), &app.http);
    let root = login(http, &base, "mer-root").await;
    let op = login(http, &base, "mer-op").await;
    let shop = login(http, &base, "mer-shop").await;
    let other = login(http, &base, "mer-other").await;
    let r = http.put(format!("{base}/api/v1/admin/users/{}/role", op.id)).bearer_auth(&root.token).json(&json!({"role": "operator"})).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Every bad field is named; a wrong check character is caught; the name is screened.
    let (s, v) = post(http, format!("{base}/api/v1/merchants/applications"), &shop.token, json!({
        "name": "", "category": "bakery", "license_no": "91350100M000100Y44", "contact_name": "王", "contact_phone": "13812345678"
    })).await;
    assert_eq!(s, 422, "{v}");
    let fields: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["name", "category", "license_no", "contact_phone"]);
    assert!(v["fields"][2]["problem"].as_str().unwrap().contains("check character"), "{v}");
    let (s, v) = post(http, format!("{base}/api/v1/merchants/applications"), &shop.token, application("赌博花坊")).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("name")));

    // Applied: pending, papers masked; one open application per user.
    let (s, a) = post(http, format!("{base}/api/v1/merchants/applications"), &shop.token, application("大理花坊")).await;
    assert_eq!(s, 201, "{a}");
    assert_eq!((a["status"].as_str(), a["license_no"].as_str(), a["contact_phone"].as_str()), (Some("pending"), Some("9135**********0Y43"), Some("138****5678")));
    let app_id = a["id"].as_str().unwrap().to_owned();
    let (s, v) = post(http, format!("{base}/api/v1/merchants/applications"), &shop.token, application("第二家")).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")));
    let (s, mine) = get(http, format!("{base}/api/v1/me/merchant"), &shop.token).await;
    assert_eq!((s, mine["application"]["status"].as_str(), &mine["merchant"]), (200, Some("pending"), &Value::Null));

    // Only staff see the queue and the papers; the clear papers are for the review only, and
    // each opening is audited.
    assert_eq!(get(http, format!("{base}/api/v1/admin/merchant-applications"), &other.token).await.0, 403);
    let (s, q) = get(http, format!("{base}/api/v1/admin/merchant-applications?status=pending"), &op.token).await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect::<Vec<_>>(), vec![app_id.as_str()]);
    let (s, v) = get(http, format!("{base}/api/v1/admin/merchant-applications?status=maybe"), &op.token).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("status")));
    let (s, papers) = get(http, format!("{base}/api/v1/admin/merchant-applications/{app_id}/papers"), &op.token).await;
    assert_eq!((s, papers["license_no"].as_str(), papers["contact_phone"].as_str()), (200, Some(LICENSE), Some("+8613812345678")));
    assert_eq!(get(http, format!("{base}/api/v1/admin/merchant-applications/999999/papers"), &op.token).await.0, 404);

    // The operator approves; the applicant is told on the socket at once.
    let mut ws = connect(app.addr, &shop.token, Proto::Json).await;
    let (s, d) = post(http, format!("{base}/api/v1/admin/merchant-applications/{app_id}/approve"), &op.token, json!({})).await;
    assert_eq!((s, d["status"].as_str()), (200, Some("approved")), "{d}");
    let frame = ws.recv_type("merchant_review").await;
    assert_eq!((frame["application"].as_str(), frame["status"].as_str(), &frame["reason"]), (Some(app_id.as_str()), Some("approved"), &Value::Null));
    let (s, v) = post(http, format!("{base}/api/v1/admin/merchant-applications/{app_id}/approve"), &root.token, json!({})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")), "decided once");
    let (_, mine) = get(http, format!("{base}/api/v1/me/merchant"), &shop.token).await;
    assert_eq!((mine["merchant"]["id"].as_str(), mine["merchant"]["status"].as_str()), (Some(shop.id.as_str()), Some("active")), "{mine}");
    let (s, v) = post(http, format!("{base}/api/v1/merchants/applications"), &shop.token, application("又一家")).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")), "a merchant already");

    // Public: listed by category, its page has no contact data. (No token needed.)
    let list: Value = http.get(format!("{base}/api/v1/merchants?category=florist")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["name"], "大理花坊");
    let farms: Value = http.get(format!("{base}/api/v1/merchants?category=farm")).send().await.unwrap().json().await.unwrap();
    assert!(farms["items"].as_array().unwrap().is_empty());
    let page: Value = http.get(format!("{base}/api/v1/merchants/{}", shop.id)).send().await.unwrap().json().await.unwrap();
    assert_eq!((page["category"].as_str(), &page["rating"], page["reviews"].as_i64()), (Some("florist"), &Value::Null, Some(0)), "{page}");
    for private in ["contact_phone", "contact_name", "license_no", "status"] {
        assert!(page.get(private).is_none(), "{private} on a public page: {page}");
    }
    assert_eq!(http.get(format!("{base}/api/v1/merchants/{}", other.id)).send().await.unwrap().status(), 404);

    // Suspension is the admins': hidden from the list and the page; reinstated, back.
    let (s, _) = post(http, format!("{base}/api/v1/admin/merchants/{}/suspend", shop.id), &op.token, json!({"reason": "投诉较多"})).await;
    assert_eq!(s, 403, "operators do not suspend");
    let (s, m) = post(http, format!("{base}/api/v1/admin/merchants/{}/suspend", shop.id), &root.token, json!({"reason": "投诉较多"})).await;
    assert_eq!((s, m["status"].as_str(), m["suspend_reason"].as_str()), (200, Some("suspended"), Some("投诉较多")), "{m}");
    assert_eq!(post(http, format!("{base}/api/v1/admin/merchants/{}/suspend", shop.id), &root.token, json!({"reason": "x"})).await.0, 409);
    let list: Value = http.get(format!("{base}/api/v1/merchants")).send().await.unwrap().json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    assert_eq!(http.get(format!("{base}/api/v1/merchants/{}", shop.id)).send().await.unwrap().status(), 404);
    let (_, mine) = get(http, format!("{base}/api/v1/me/merchant"), &shop.token).await;
    assert_eq!(mine["merchant"]["status"], "suspended", "the merchant sees why");
    let (s, m) = post(http, format!("{base}/api/v1/admin/merchants/{}/reinstate", shop.id), &root.token, json!({})).await;
    assert_eq!((s, m["status"].as_str()), (200, Some("active")));
    assert_eq!(http.get(format!("{base}/api/v1/merchants/{}", shop.id)).send().await.unwrap().status(), 200);
    assert_eq!(post(http, format!("{base}/api/v1/admin/merchants/{}/suspend", other.id), &root.token, json!({"reason": "x"})).await.0, 404);

    // A rejection carries its reason, live too, and the user may apply again.
    let mut ows = connect(app.addr, &other.token, Proto::Json).await;
    // One licence number, one open or approved application: the shop's is taken.
    let (s, v) = post(http, format!("{base}/api/v1/merchants/applications"), &other.token, application("小农场")).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("营业执照"), "{v}");
    let farm_license = jiebanke_chat_core::merchants::rules::CreditCode::numbered(7).as_str().to_owned();
    let (_, a2) = post(http, format!("{base}/api/v1/merchants/applications"), &other.token, application_with("小农场", &farm_license)).await;
    let a2 = a2["id"].as_str().unwrap().to_owned();
    let (s, v) = post(http, format!("{base}/api/v1/admin/merchant-applications/{a2}/reject"), &op.token, json!({"reason": ""})).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("reason")));
    let (s, d) = post(http, format!("{base}/api/v1/admin/merchant-applications/{a2}/reject"), &op.token, json!({"reason": "执照照片模糊"})).await;
    assert_eq!((s, d["status"].as_str(), d["reason"].as_str()), (200, Some("rejected"), Some("执照照片模糊")));
    let frame = ows.recv_type("merchant_review").await;
    assert_eq!((frame["status"].as_str(), frame["reason"].as_str()), (Some("rejected"), Some("执照照片模糊")));
    let (s, _) = post(http, format!("{base}/api/v1/merchants/applications"), &other.token, application_with("小农场", &farm_license)).await;
    assert_eq!(s, 201, "a rejected applicant applies again, with the number the rejection freed");

    // The audit trail of all that, newest first, with the clear papers nowhere in it.
    let (s, log) = get(http, format!("{base}/api/v1/admin/audit?limit=100"), &root.token).await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec![
        "merchant_application.reject",
        "merchant.reinstate",
        "merchant.suspend",
        "merchant_application.approve",
        "merchant_application.reveal",
        "role.set",
    ]);
    assert_eq!(log["items"][3]["actor"], op.id.as_str());
    assert_eq!(log["items"][3]["target"], format!("merchant_application:{app_id}"));
    let text = log.to_string();
    assert!(!text.contains(LICENSE) && !text.contains("13812345678"), "personal data in the audit log: {text}");

    // Nor in the database: every file of the data dir (SQLite), the applications table (MariaDB).
    let bytes: Vec<u8> = match &tdb.mysql {
        None => std::fs::read_dir(&tdb.dir.0).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).flat_map(|p| std::fs::read(p).unwrap()).collect(),
        Some(m) => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::MySqlConnection::connect(&m.url).await.unwrap();
            let rows = sqlx::query("SELECT CONCAT_WS('|', license_cipher, license_masked, phone_cipher, phone_masked) AS r FROM merchant_applications").fetch_all(&mut conn).await.unwrap();
            rows.iter().flat_map(|r| r.get::<String, _>("r").into_bytes()).collect()
        }
    };
    assert!(bytes.windows(4).any(|w| w == b"0Y43"), "read the stored applications");
    for clear in [LICENSE.as_bytes(), b"13812345678"] {
        assert!(!bytes.windows(clear.len()).any(|w| w == clear), "{} is stored in clear", String::from_utf8_lossy(clear));
    }
    drop((ws, ows));
    app.shutdown.cancel();
}

#[tokio::test]
async fn become_a_merchant_sqlite() {
    become_a_merchant(Db::Sqlite).await;
}

#[tokio::test]
async fn become_a_merchant_mysql() {
    become_a_merchant(Db::MySql).await;
}

async fn leads_from_the_website(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let words = tdb.dir.0.join("words.txt");
    std::fs::write(&words, "赌博\n").unwrap();
    let app = spawn_app(&tdb, |c| {
        c.admins = vec![("dev".into(), "lead-root".into())];
        c.banned_words_file = Some(words.clone());
        c.leads_per_hour = std::num::NonZeroU32::new(3).unwrap();
    })
    .await;
    let (base, http) = (app.base(), &app.http);
    let root = login(http, &base, "lead-root").await;
    let user = login(http, &base, "lead-user").await;
    let lead = |company: &str, msg: &str| json!({"company": company, "contact_name": "李雷", "phone": "+8613912345678", "category": "farm", "city": "大理", "message": msg});

    // No token; every bad field named; texts screened.
    let (s, v, _) = anon_post(http, format!("{base}/api/v1/merchant-leads"), json!({"company": "", "contact_name": "", "phone": "1", "category": "x", "city": ""})).await;
    assert_eq!(s, 422, "{v}");
    let fields: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["company", "contact_name", "phone", "category", "city"]);
    let (s, v, _) = anon_post(http, format!("{base}/api/v1/merchant-leads"), lead("洱海农场", "我们也做赌博")).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("message")));
    let (s, r, _) = anon_post(http, format!("{base}/api/v1/merchant-leads"), lead("洱海农场", "想认领小羊")).await;
    assert_eq!((s, r["status"].as_str()), (201, Some("received")), "{r}");
    let lead_id = r["id"].as_str().unwrap().to_owned();
    // The limit per address: three an hour here (the refused ones above counted too).
    let (s, v, retry) = anon_post(http, format!("{base}/api/v1/merchant-leads"), lead("又一家", "")).await;
    assert_eq!((s, v["code"].as_str()), (429, Some("rate_limited")), "{v}");
    assert!(v["retry_after_ms"].as_u64().unwrap() > 1000 && retry.is_some(), "{v}");

    // Staff see it, the phone masked; handled once.
    assert_eq!(get(http, format!("{base}/api/v1/admin/merchant-leads"), &user.token).await.0, 403);
    let (s, list) = get(http, format!("{base}/api/v1/admin/merchant-leads"), &root.token).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!((list["items"][0]["phone"].as_str(), list["items"][0]["status"].as_str()), (Some("139****5678"), Some("open")));
    let (s, h) = post(http, format!("{base}/api/v1/admin/merchant-leads/{lead_id}/handle"), &root.token, json!({"note": "已电话联系, 请其在小程序中申请"})).await;
    assert_eq!((s, h["status"].as_str(), h["handled_by"].as_str()), (200, Some("handled"), Some(root.id.as_str())), "{h}");
    assert_eq!(post(http, format!("{base}/api/v1/admin/merchant-leads/{lead_id}/handle"), &root.token, json!({"note": "again"})).await.0, 409);
    let (_, open) = get(http, format!("{base}/api/v1/admin/merchant-leads"), &root.token).await;
    assert!(open["items"].as_array().unwrap().is_empty());
    let (_, all) = get(http, format!("{base}/api/v1/admin/merchant-leads?status=all"), &root.token).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let (_, log) = get(http, format!("{base}/api/v1/admin/audit?action=merchant_lead.handle"), &root.token).await;
    assert_eq!(log["items"][0]["target"], format!("merchant_lead:{lead_id}"));

    // The clear number is nowhere in the database (SQLite: every file of the data dir;
    // MariaDB: the leads table).
    let bytes: Vec<u8> = match &tdb.mysql {
        None => std::fs::read_dir(&tdb.dir.0).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).flat_map(|p| std::fs::read(p).unwrap()).collect(),
        Some(m) => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::MySqlConnection::connect(&m.url).await.unwrap();
            let rows = sqlx::query("SELECT CONCAT_WS('|', phone_cipher, phone_masked) AS r FROM merchant_leads").fetch_all(&mut conn).await.unwrap();
            rows.iter().flat_map(|r| r.get::<String, _>("r").into_bytes()).collect()
        }
    };
    assert!(bytes.windows(4).any(|w| w == b"5678"), "read the stored leads");
    let needle = b"13912345678";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the clear phone is stored");
    app.shutdown.cancel();
}

#[tokio::test]
async fn leads_from_the_website_sqlite() {
    leads_from_the_website(Db::Sqlite).await;
}

#[tokio::test]
async fn leads_from_the_website_mysql() {
    leads_from_the_website(Db::MySql).await;
}
