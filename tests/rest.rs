//! The REST shell against a real server: login (dev and the real WeChat client against a local
//! jscode2session), conversations, errors with codes, health; and start-up refusals.

mod common;
use axum::routing::get as route_get;
use axum::{extract::Query, Router};
use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;

async fn app() -> (TestDb, TestApp) {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |_| {}).await;
    (db, app)
}

#[tokio::test]
async fn dev_login_same_code_same_user_and_safe_ids() {
    let (_db, app) = app().await;
    let base = app.base();
    let r1: Value = app.http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code":"张三"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(r1["code"], "invalid", "codes are visible ASCII: {r1}");
    let a1 = login(&app.http, &base, "wx-code-a").await;
    let a2 = login(&app.http, &base, "wx-code-a").await;
    let b = login(&app.http, &base, "wx-code-b").await;
    assert_eq!(a1.id, a2.id);
    assert_ne!(a1.id, b.id);
    let (s, me) = get(&app.http, format!("{base}/api/v1/me"), &a1.token).await;
    assert_eq!(s, 200);
    assert!(me["id"].is_string(), "ids are strings in JSON: {me}");
    assert_eq!(me["id"], a1.id.as_str());
    let (s, e) = get(&app.http, format!("{base}/api/v1/me"), "nope").await;
    assert_eq!((s, e["code"].as_str()), (401, Some("unauthorized")));
    let r = app.http.get(format!("{base}/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn conversations_rest() {
    let (_db, app) = app().await;
    let base = app.base();
    let a = login(&app.http, &base, "a").await;
    let b = login(&app.http, &base, "b").await;
    let c = login(&app.http, &base, "c").await;
    let url = format!("{base}/api/v1/conversations");
    // Direct: the same pair always gets the same conversation, either way round, numbers or strings.
    let (s, d1) = post(&app.http, url.clone(), &a.token, json!({"kind":"direct","members":[b.id]})).await;
    assert_eq!(s, 200);
    let b_num: u64 = b.id.parse().unwrap();
    let (_, d2) = post(&app.http, url.clone(), &a.token, json!({"kind":"direct","members":[b_num]})).await;
    let (_, d3) = post(&app.http, url.clone(), &b.token, json!({"kind":"direct","members":[a.id]})).await;
    assert_eq!(d1["id"], d2["id"]);
    assert_eq!(d1["id"], d3["id"]);
    assert_eq!(d1["kind"], "direct");
    // Errors with codes.
    let (s, e) = post(&app.http, url.clone(), &a.token, json!({"kind":"direct","members":[a.id]})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid")));
    let (s, e) = post(&app.http, url.clone(), &a.token, json!({"kind":"direct","members":["424242"]})).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));
    let (s, e) = post(&app.http, url.clone(), &a.token, json!({"kind":"channel","members":[]})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid")));
    let (s, e) = post(&app.http, url.clone(), &a.token, json!({"kind":"group","members":[]})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid")), "a group needs a title");
    let r = app.http.post(url.clone()).bearer_auth(&a.token).header("content-type", "application/json").body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "bad_request");
    let r = app.http.post(url.clone()).bearer_auth(&a.token).header("content-type", "application/json")
        .body(format!("{{\"kind\":\"group\",\"title\":\"{}\"}}", "x".repeat(70_000))).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "too_large");

    // Group: the owner adds and removes; others may not.
    let (s, g) = post(&app.http, url.clone(), &a.token, json!({"kind":"group","title":"喀纳斯","members":[b.id]})).await;
    assert_eq!(s, 200);
    let gid = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["owner"], a.id.as_str());
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    let (s, e) = post(&app.http, format!("{url}/{gid}/members"), &b.token, json!({"members":[c.id]})).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")));
    let (s, g2) = post(&app.http, format!("{url}/{gid}/members"), &a.token, json!({"members":[c.id]})).await;
    assert_eq!(s, 200);
    assert_eq!(g2["members"].as_array().unwrap().len(), 3);
    let (s, _) = get(&app.http, format!("{url}/{gid}"), &c.token).await;
    assert_eq!(s, 200);
    let del = |who: &LoggedIn, user: &str| {
        app.http.delete(format!("{url}/{gid}/members/{user}")).bearer_auth(who.token.clone()).send()
    };
    assert_eq!(del(&b, &c.id).await.unwrap().status(), 403);
    assert_eq!(del(&a, &c.id).await.unwrap().status(), 204);
    assert_eq!(del(&a, &c.id).await.unwrap().status(), 404, "c is no longer a member");
    let (s, e) = get(&app.http, format!("{url}/{gid}"), &c.token).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")), "non-members do not see it");
    assert_eq!(del(&b, &b.id).await.unwrap().status(), 204, "a member may leave");

    // List mine.
    let (s, list) = get(&app.http, url.clone(), &a.token).await;
    assert_eq!(s, 200);
    let convs = list["items"].as_array().unwrap();
    assert_eq!(convs.len(), 2);
    for c in convs {
        assert_eq!(c["last_seq"], 0);
        assert_eq!(c["read_seq"], 0);
    }
    let (s, _) = get(&app.http, format!("{url}/not-a-number"), &a.token).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn health_and_readiness() {
    let (_db, app) = app().await;
    let r = app.http.get(format!("{}/healthz", app.base())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = app.http.get(format!("{}/readyz", app.base())).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["database"], "ok");
}

/// A stand-in for WeChat's jscode2session on a local port: the real client code talks to it
/// over HTTP exactly as it would to api.weixin.qq.com.
async fn fake_wechat() -> String {
    async fn code2session(Query(q): Query<HashMap<String, String>>) -> String {
        assert_eq!(q.get("appid").map(String::as_str), Some("wx-app"));
        assert_eq!(q.get("secret").map(String::as_str), Some("wx-secret"));
        assert_eq!(q.get("grant_type").map(String::as_str), Some("authorization_code"));
        match q.get("js_code").map(String::as_str) {
            Some("good-1") | Some("good-2") => r#"{"openid":"o-traveller","session_key":"k"}"#.into(),
            Some("busy") => r#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#.into(),
            Some("broken") => r#"{"errcode":-1,"errmsg":"system error"}"#.into(),
            _ => r#"{"errcode":40029,"errmsg":"invalid code"}"#.into(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/sns/jscode2session", route_get(code2session))).await.unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn wechat_login_through_jscode2session() {
    let wechat = fake_wechat().await;
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |c| {
        c.dev_login = false;
        c.wechat = Some(jiebanke::config::WeChatConfig {
            app_id: "wx-app".into(),
            secret: jiebanke_rest::auth::Secret::new("wx-secret"),
            api_base: wechat,
        });
    })
    .await;
    let url = format!("{}/api/v1/auth/login", app.base());
    let one: Value = app.http.post(&url).json(&json!({"code":"good-1"})).send().await.unwrap().json().await.unwrap();
    let two: Value = app.http.post(&url).json(&json!({"code":"good-2"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["user"]["id"], two["user"]["id"], "same openid, same user: {one} {two}");
    assert_eq!(one["user"]["provider"], "wechat");
    let bad = app.http.post(&url).json(&json!({"code":"expired"})).send().await.unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "unauthorized");
    let busy = app.http.post(&url).json(&json!({"code":"busy"})).send().await.unwrap();
    assert_eq!(busy.status(), 429);
    let broken = app.http.post(&url).json(&json!({"code":"broken"})).send().await.unwrap();
    assert_eq!(broken.status(), 502);
    assert_eq!(broken.json::<Value>().await.unwrap()["code"], "unavailable");
    // The dev provider is off here: asking for it is refused.
    let dev = app.http.post(&url).json(&json!({"code":"x","provider":"dev"})).send().await.unwrap();
    assert_eq!(dev.status(), 422);
    // The token works on the socket.
    let c = connect(app.addr, one["token"].as_str().unwrap(), Proto::Json).await;
    assert_eq!(c.hello["user"], one["user"]["id"]);
}

fn serve_args(env: &[(&str, &str)]) -> anyhow::Result<jiebanke::Config> {
    use clap::Parser;
    // Only the variables given count: clear the JBK_ ones the test process may have.
    for (k, _) in std::env::vars() {
        if k.starts_with("JBK_") {
            unsafe { std::env::remove_var(k) };
        }
    }
    for (k, v) in env {
        unsafe { std::env::set_var(k, v) };
    }
    let cli = jiebanke::config::Cli::try_parse_from(["jiebanke", "serve"])?;
    let (role, args) = cli.command.into_parts().expect("a serving command");
    jiebanke::Config::from_args(role, args)
}

#[test]
fn production_refuses_the_dev_login_and_insecure_settings() {
    let secret = "0123456789abcdef0123456789abcdef";
    let e = serve_args(&[("JBK_ENV", "production"), ("JBK_DEV_LOGIN", "true"), ("JBK_JWT_SECRET", secret)]).unwrap_err();
    assert!(e.to_string().contains("JBK_DEV_LOGIN"), "{e}");
    let e = serve_args(&[("JBK_ENV", "production"), ("JBK_WECHAT_APPID", "a"), ("JBK_WECHAT_SECRET", "s")]).unwrap_err();
    assert!(e.to_string().contains("JBK_JWT_SECRET"), "{e}");
    let e = serve_args(&[("JBK_ENV", "production"), ("JBK_JWT_SECRET", secret)]).unwrap_err();
    assert!(e.to_string().contains("login provider"), "{e}");
    let wechat = [("JBK_ENV", "production"), ("JBK_JWT_SECRET", secret), ("JBK_WECHAT_APPID", "a"), ("JBK_WECHAT_SECRET", "s")];
    let e = serve_args(&wechat).unwrap_err();
    assert!(e.to_string().contains("JBK_DATA_KEY"), "{e}");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let e = serve_args(&[wechat.as_slice(), &[("JBK_DATA_KEY", "c2hvcnQ=")]].concat()).unwrap_err();
    assert!(e.to_string().contains("32 bytes"), "{e}");
    let e = serve_args(&[wechat.as_slice(), &[("JBK_DATA_KEY", key)]].concat()).unwrap_err();
    assert!(e.to_string().contains("WeChat Pay"), "production needs a real payment provider: {e}");
    let pay = [
        ("JBK_WECHATPAY_MCHID", "1900000001"),
        ("JBK_WECHATPAY_SERIAL", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"),
        ("JBK_WECHATPAY_KEY_FILE", "/secrets/apiclient_key.pem"),
        ("JBK_WECHATPAY_APIV3_KEY", "0123456789abcdef0123456789abcdef"),
        ("JBK_WECHATPAY_PLATFORM_KEYS", "PUB_KEY_ID_0114232134912410000=/secrets/pub_key.pem"),
        ("JBK_WECHATPAY_NOTIFY_URL", "https://api.example.cn/api/v1/payments/wechat/notify"),
    ];
    let e = serve_args(&[wechat.as_slice(), &[("JBK_DATA_KEY", key)], &pay[..5]].concat()).unwrap_err();
    assert!(e.to_string().contains("JBK_WECHATPAY_NOTIFY_URL"), "all WeChat Pay settings or none: {e}");
    let ok = serve_args(&[wechat.as_slice(), &[("JBK_DATA_KEY", key)], &pay[..]].concat()).unwrap();
    let w = ok.wechat_pay.as_ref().unwrap();
    assert_eq!((w.settings.appid.as_str(), w.settings.platform_keys.len()), ("a", 1), "the mini-program's app id by default");
    assert!(!format!("{ok:?}").contains("0123456789abcdef0123456789abcdef"), "the APIv3 key never prints");
    assert!(!format!("{ok:?}").contains(key), "the data key never prints");
    assert!(!ok.dev_login, "dev login is off by default in production");
    assert!(!format!("{ok:?}").contains(secret), "secrets never print");
    let dev = serve_args(&[]).unwrap();
    assert!(dev.dev_login);
    assert_eq!(dev.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(dev.gateway.max_frame_bytes, 64 * 1024);
    let e = serve_args(&[("JBK_TIMEZONE", "Mars/Olympus_Mons")]).unwrap_err();
    assert!(e.to_string().contains("JBK_TIMEZONE"), "{e}");
    assert_eq!(dev.zone.name(), "Asia/Shanghai");
    // The compiled-in tz database knows daylight saving: New York is UTC-4 in July, UTC-5 in
    // January; the local day of 2026-07-01T02:00Z there is still June 30.
    let ny = jiebanke::config::business_zone("America/New_York").unwrap();
    let july_1_2am_utc = 1_782_871_200_000;
    assert_eq!(ny.day(july_1_2am_utc), july_1_2am_utc / 86_400_000 - 1);
    assert_eq!(ny.year(1_767_229_200_000), 2025, "2026-01-01T01:00Z is still 2025 in New York (UTC-5)");
    let e = serve_args(&[("JBK_MSG_RATE", "0")]).unwrap_err();
    assert!(e.to_string().contains("JBK_MSG_RATE"));
}

#[tokio::test]
async fn group_size_is_limited_by_configuration() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |c| c.max_group_members = 3).await;
    let base = app.base();
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(login(&app.http, &base, &format!("gs{i}")).await);
    }
    let url = format!("{base}/api/v1/conversations");
    let (s, e) = post(&app.http, url.clone(), &users[0].token, json!({"kind":"group","title":"t","members":[users[1].id, users[2].id, users[3].id]})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid")), "{e}");
    let (s, g) = post(&app.http, url.clone(), &users[0].token, json!({"kind":"group","title":"t","members":[users[1].id, users[2].id]})).await;
    assert_eq!(s, 200);
    let (s, e) = post(&app.http, format!("{url}/{}/members", g["id"].as_str().unwrap()), &users[0].token, json!({"members":[users[3].id]})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid")));
}
