//! QR login end to end with two clients, on SQLite and MariaDB: a web page (no token) asks for
//! a ticket and polls it; a phone (the mini-program's session) confirms it; the page gets a
//! token for the phone's user exactly once, even when it polls twice at once. Tickets expire,
//! are confirmed once, and unknown or malformed ones are 404.

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;

async fn poll(http: &reqwest::Client, base: &str, ticket: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/api/v1/auth/qr/{ticket}")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn new_ticket(http: &reqwest::Client, base: &str) -> Value {
    let r = http.post(format!("{base}/api/v1/auth/qr")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

fn pct(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

async fn qr_login(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |c| c.admins = vec![("dev".into(), "qr-root".into())]).await;
    let (base, http) = (app.base(), &app.http);
    let phone = login(http, &base, "qr-phone").await;
    let other = login(http, &base, "qr-other").await;

    // The page: a ticket, its QR payload and an SVG of it.
    let t = new_ticket(http, &base).await;
    let ticket = t["ticket"].as_str().unwrap().to_owned();
    assert_eq!(t["qr"].as_str().unwrap(), format!("jiebanke:qr-login:{ticket}"));
    assert!(t["qr_svg"].as_str().unwrap().contains("<svg"), "{t}");
    assert!(t["expires_at"].as_i64().unwrap() > jiebanke_chat_core::now_ms());
    let (s, p) = poll(http, &base, &ticket).await;
    assert_eq!((s, p["status"].as_str(), &p["login"]), (200, Some("pending"), &Value::Null));

    // The phone scans and confirms with its own token (the scanned text, as it is).
    let confirm = |token: String, what: String| {
        let http = http.clone();
        let url = format!("{base}/api/v1/auth/qr/{}/confirm", pct(&what));
        async move { http.post(url).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(confirm(String::from("not a token"), ticket.clone()).await, 401);
    assert_eq!(confirm(phone.token.clone(), t["qr"].as_str().unwrap().to_owned()).await, 204);
    assert_eq!(confirm(other.token.clone(), ticket.clone()).await, 409, "confirmed once");

    // The page's next polls, two at once: exactly one gets the token, for the phone's user.
    let (a, b) = tokio::join!(poll(http, &base, &ticket), poll(http, &base, &ticket));
    let answers = [a, b];
    let logged: Vec<&Value> = answers.iter().filter(|(_, v)| v["status"] == "logged_in").map(|(_, v)| v).collect();
    assert_eq!(logged.len(), 1, "{answers:?}");
    assert!(answers.iter().any(|(_, v)| v["status"] == "consumed"), "{answers:?}");
    let token = logged[0]["login"]["token"].as_str().unwrap().to_owned();
    assert_eq!(logged[0]["login"]["user"]["id"].as_str(), Some(phone.id.as_str()));
    let (s, me) = get(http, format!("{base}/api/v1/me"), &token).await;
    assert_eq!((s, me["id"].as_str()), (200, Some(phone.id.as_str())), "the page is logged in as the phone's user");
    let (_, p) = poll(http, &base, &ticket).await;
    assert_eq!((p["status"].as_str(), &p["login"]), (Some("consumed"), &Value::Null));
    connect(app.addr, &token, Proto::Json).await;

    // Unknown and malformed tickets name nothing.
    let unknown = "A".repeat(43);
    assert_eq!(poll(http, &base, &unknown).await.0, 404);
    assert_eq!(poll(http, &base, "short").await.0, 404);
    assert_eq!(confirm(phone.token.clone(), unknown).await, 404);

    // A user banned after confirming gets no token on the page.
    let root = login(http, &base, "qr-root").await;
    let t2 = new_ticket(http, &base).await;
    let t2 = t2["ticket"].as_str().unwrap().to_owned();
    assert_eq!(confirm(other.token.clone(), t2.clone()).await, 204);
    let r = http.put(format!("{base}/api/v1/admin/users/{}/ban", other.id)).bearer_auth(&root.token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (s, v) = poll(http, &base, &t2).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("banned")));
    app.shutdown.cancel();

    // Tickets are short-lived.
    let app = spawn_app(&tdb, |c| c.qr_ttl = Duration::from_millis(300)).await;
    let base = app.base();
    let t = new_ticket(&app.http, &base).await;
    let ticket = t["ticket"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, p) = poll(&app.http, &base, &ticket).await;
    assert_eq!(p["status"], "expired");
    let phone = login(&app.http, &base, "qr-phone").await;
    let r = app.http.post(format!("{base}/api/v1/auth/qr/{ticket}/confirm")).bearer_auth(&phone.token).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!((status, v["message"].as_str()), (409, Some("conflict: the login ticket expired")));
    app.shutdown.cancel();
}

#[tokio::test]
async fn qr_login_sqlite() {
    qr_login(Db::Sqlite).await;
}

#[tokio::test]
async fn qr_login_mysql() {
    qr_login(Db::MySql).await;
}
