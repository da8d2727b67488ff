//! The server with WeChat Pay as its payment provider, against a stand-in of WeChat Pay's (and
//! WeChat login's) HTTP API started here on a free port: the stand-in checks our requests'
//! signatures with the merchant's public key and signs its answers with a platform key; the
//! buyer, logged in with WeChat, gets the five `wx.requestPayment` fields (their `paySign`
//! verified here); the callback is built as WeChat Pay builds it (resource encrypted with the
//! APIv3 key, signed with the platform key) and pays the order once; a refund reaches the
//! stand-in's refund API once.

mod common;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get as get_route, post as post_route};
use axum::Router;
use common::*;
use jiebanke_payments::wechat::{der_to_pem, encrypt_resource, request_message, PlatformKeys, SigningKey};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MCHID: &str = "1900000109";
const APPID: &str = "wxd678efh567hg6787";
const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD12345678";
const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0119000001092025010100000000000001";
const API_V3_KEY: &str = "0123456789abcdefghijklmnopqrstuv";
const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

fn now() -> i64 {
    jiebanke_chat_core::now_ms() / 1000
}

struct StandIn {
    /// The merchant's public key, to check our requests.
    merchant: PlatformKeys,
    platform: SigningKey,
    requests: Mutex<Vec<(String, Value)>>,
}

impl StandIn {
    fn check(&self, headers: &HeaderMap, uri: &Uri, body: &str) -> Result<(), String> {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let params = auth.strip_prefix("WECHATPAY2-SHA256-RSA2048 ").ok_or("wrong scheme")?;
        let fields: HashMap<&str, &str> = params.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k, v.trim_matches('"'))).collect();
        let field = |name: &str| fields.get(name).copied().ok_or(format!("no {name}"));
        if field("mchid")? != MCHID || field("serial_no")? != MERCHANT_SERIAL {
            return Err("unknown merchant or serial".into());
        }
        let ts: i64 = field("timestamp")?.parse().map_err(|_| "bad timestamp")?;
        let message = request_message("POST", &uri.to_string(), ts, field("nonce_str")?, body);
        self.merchant.verify(MERCHANT_SERIAL, &message, field("signature")?).map_err(|e| e.to_string())
    }

    /// Headers and body signed as WeChat Pay signs its answers and callbacks.
    fn signed(&self, body: &str) -> [(String, String); 4] {
        let (ts, nonce) = (now().to_string(), format!("{:032x}", rand::random::<u128>()));
        let signature = self.platform.sign(&format!("{ts}\n{nonce}\n{body}\n")).unwrap();
        [
            ("Wechatpay-Serial".into(), PLATFORM_SERIAL.into()),
            ("Wechatpay-Timestamp".into(), ts),
            ("Wechatpay-Nonce".into(), nonce),
            ("Wechatpay-Signature".into(), signature),
        ]
    }

    fn answer(&self, body: Value) -> Response {
        let body = body.to_string();
        let mut headers = HeaderMap::new();
        for (k, v) in self.signed(&body) {
            headers.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        headers.insert("content-type", "application/json".parse().unwrap());
        (StatusCode::OK, headers, body).into_response()
    }

    fn take(&self, headers: &HeaderMap, uri: &Uri, body: &Bytes) -> Result<Value, Response> {
        let body = String::from_utf8_lossy(body).into_owned();
        if let Err(why) = self.check(headers, uri, &body) {
            return Err((StatusCode::UNAUTHORIZED, json!({"code": "SIGN_ERROR", "message": why}).to_string()).into_response());
        }
        let v: Value = serde_json::from_str(&body).unwrap();
        self.requests.lock().unwrap().push((uri.path().to_owned(), v.clone()));
        Ok(v)
    }
}

async fn jsapi(State(s): State<Arc<StandIn>>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    match s.take(&headers, &uri, &body) {
        Ok(v) => s.answer(json!({ "prepay_id": format!("wx2026{}", v["out_trade_no"].as_str().unwrap()) })),
        Err(r) => r,
    }
}

async fn refunds(State(s): State<Arc<StandIn>>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    match s.take(&headers, &uri, &body) {
        Ok(v) => s.answer(json!({
            "refund_id": "50000000382019052709732678859", "out_refund_no": v["out_refund_no"], "out_trade_no": v["out_trade_no"],
            "transaction_id": "4200000001", "status": "PROCESSING", "create_time": "2026-12-04T13:29:35+08:00",
            "amount": {"total": v["amount"]["total"], "refund": v["amount"]["refund"], "currency": "CNY"},
        })),
        Err(r) => r,
    }
}

/// WeChat login's `jscode2session`: every code is the one buyer.
async fn code2session(Query(q): Query<HashMap<String, String>>) -> Response {
    assert_eq!(q.get("appid").map(String::as_str), Some(APPID));
    json!({"openid": OPENID, "session_key": "tiihtNczf5v6AKRyjwEUhQ=="}).to_string().into_response()
}

/// The callback of a payment, as WeChat Pay writes it.
fn callback(s: &StandIn, out_trade_no: &str, total: i64) -> (Vec<(String, String)>, String) {
    let transaction = json!({
        "appid": APPID, "mchid": MCHID, "out_trade_no": out_trade_no, "transaction_id": "4200000001202612040000000001",
        "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "CMC",
        "success_time": "2026-12-04T14:10:20+08:00", "payer": {"openid": OPENID},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    });
    let nonce = "fdasflkja484";
    let ciphertext = encrypt_resource(API_V3_KEY.as_bytes(), nonce, "transaction", transaction.to_string().as_bytes()).unwrap();
    let body = json!({
        "id": "EV-2018022511223320873", "create_time": "2026-12-04T14:10:21+08:00", "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext, "associated_data": "transaction", "nonce": nonce},
    })
    .to_string();
    (s.signed(&body).to_vec(), body)
}

/// A refund's callback, as WeChat Pay writes it.
fn refund_callback(s: &StandIn, out_trade_no: &str, status: &str, refund: i64) -> (Vec<(String, String)>, String) {
    let result = json!({
        "mchid": MCHID, "out_trade_no": out_trade_no, "transaction_id": "4200000001202612040000000001",
        "out_refund_no": format!("{out_trade_no}R"), "refund_id": "50000000382019052709732678859",
        "refund_status": status, "success_time": "2026-12-04T14:20:20+08:00", "user_received_account": "招商银行信用卡0403",
        "amount": {"total": refund, "refund": refund, "payer_total": refund, "payer_refund": refund},
    });
    let nonce = "a1b2c3d4e5f6";
    let ciphertext = encrypt_resource(API_V3_KEY.as_bytes(), nonce, "refund", result.to_string().as_bytes()).unwrap();
    let body = json!({
        "id": "EV-2018022511223320874", "create_time": "2026-12-04T14:20:21+08:00", "resource_type": "encrypt-resource",
        "event_type": format!("REFUND.{status}"), "summary": "退款",
        "resource": {"original_type": "refund", "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext, "associated_data": "refund", "nonce": nonce},
    })
    .to_string();
    (s.signed(&body).to_vec(), body)
}

#[tokio::test]
async fn wechat_pay_end_to_end() {
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    // The keys: the merchant's (ours) and the platform's (the stand-in's).
    let (merchant_key, merchant_der) = SigningKey::generate(MERCHANT_SERIAL).unwrap();
    let (platform_key, _) = SigningKey::generate(PLATFORM_SERIAL).unwrap();
    let key_file = tdb.dir.0.join("apiclient_key.pem");
    std::fs::write(&key_file, der_to_pem("PRIVATE KEY", &merchant_der)).unwrap();
    let platform_file = tdb.dir.0.join("pub_key.pem");
    std::fs::write(&platform_file, der_to_pem("PUBLIC KEY", &platform_key.public_key_der().unwrap())).unwrap();
    let mut merchant_public = PlatformKeys::default();
    merchant_public.add(MERCHANT_SERIAL, &merchant_key.public_key_der().unwrap()).unwrap();
    let stand_in = Arc::new(StandIn { merchant: merchant_public, platform: platform_key, requests: Mutex::new(Vec::new()) });
    let api = Router::new()
        .route("/v3/pay/transactions/jsapi", post_route(jsapi))
        .route("/v3/refund/domestic/refunds", post_route(refunds))
        .route("/sns/jscode2session", get_route(code2session))
        .with_state(stand_in.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });

    let app = spawn_app(&tdb, |c| {
        c.admins = vec![("dev".into(), "wp-root".into())];
        c.wechat = Some(jiebanke::config::WeChatConfig { app_id: APPID.into(), secret: jiebanke_rest::auth::Secret::new("s"), api_base: api_base.clone() });
        c.wechat_pay = Some(jiebanke::config::WechatPayConfig {
            settings: jiebanke_payments::wechat_pay::WechatPaySettings {
                mchid: MCHID.into(),
                appid: APPID.into(),
                merchant_serial: MERCHANT_SERIAL.into(),
                merchant_key_file: key_file.clone(),
                api_v3_key: API_V3_KEY.into(),
                platform_keys: vec![(PLATFORM_SERIAL.into(), platform_file.clone())],
                notify_url: "https://jiebanke.example/api/v1/payments/wechat/notify".into(),
            },
            api_base: api_base.clone(),
        });
    })
    .await;
    let (base, http) = (app.base(), &app.http);
    let dev = |code: &str| {
        let (http, base, code) = (http.clone(), base.clone(), code.to_owned());
        async move {
            let r = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code": code, "provider": "dev"})).send().await.unwrap();
            let v: Value = r.json().await.unwrap();
            LoggedIn { token: v["token"].as_str().unwrap().to_owned(), id: v["user"]["id"].as_str().unwrap().to_owned() }
        }
    };
    let root = dev("wp-root").await;
    let shop = dev("wp-shop").await;
    let (_, a) = post(http, format!("{base}/api/v1/merchants/applications"), &shop.token, json!({"name": "花坊", "category": "florist", "license_no": "91350100M000100Y43", "contact_name": "王", "contact_phone": "+8613812345678"})).await;
    post(http, format!("{base}/api/v1/admin/merchant-applications/{}/approve", a["id"].as_str().unwrap()), &root.token, json!({})).await;
    let (_, p) = post(http, format!("{base}/api/v1/merchant/products"), &shop.token, json!({"kind": "flower", "title": "百合", "price_fen": 2990, "stock": 2})).await;
    // The buyer logs in with WeChat (the stand-in's jscode2session names their openid).
    let r = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"code": "081abc"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let buyer = LoggedIn { token: v["token"].as_str().unwrap().to_owned(), id: v["user"]["id"].as_str().unwrap().to_owned() };
    let tomorrow = jiebanke_chat_core::matching::Day::of_ms(jiebanke_chat_core::now_ms() + 8 * 3_600_000 + 86_400_000).to_string();
    let (s, o) = post(http, format!("{base}/api/v1/orders"), &buyer.token, json!({"items": [{"product": p["id"], "quantity": 1}], "recipient": {"name": "韩梅梅", "phone": "+8613712345678", "address": "大理"}, "deliver_on": tomorrow, "slot": "morning"})).await;
    assert_eq!(s, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let trade = format!("JBK{:012}", id.parse::<i64>().unwrap());
    let mut ws = connect(app.addr, &shop.token, Proto::Json).await;

    // Pay: the prepay request reached the stand-in signed, for this payer and amount.
    let (s, pay) = post(http, format!("{base}/api/v1/orders/{id}/pay"), &buyer.token, json!({})).await;
    assert_eq!(s, 200, "{pay}");
    assert_eq!((pay["provider"].as_str(), pay["signType"].as_str()), (Some("wechat"), Some("RSA")));
    assert_eq!(pay["package"].as_str().unwrap(), format!("prepay_id=wx2026{trade}"));
    let mut ours = PlatformKeys::default();
    ours.add(MERCHANT_SERIAL, &merchant_key.public_key_der().unwrap()).unwrap();
    let signed = format!("{APPID}\n{}\n{}\n{}\n", pay["timeStamp"].as_str().unwrap(), pay["nonceStr"].as_str().unwrap(), pay["package"].as_str().unwrap());
    ours.verify(MERCHANT_SERIAL, &signed, pay["paySign"].as_str().unwrap()).expect("paySign verifies with the merchant's key");
    {
        let seen = stand_in.requests.lock().unwrap();
        let (path, req) = seen.last().unwrap();
        assert_eq!(path, "/v3/pay/transactions/jsapi");
        assert_eq!((req["out_trade_no"].as_str(), req["amount"]["total"].as_i64(), req["payer"]["openid"].as_str()), (Some(trade.as_str()), Some(2990), Some(OPENID)));
        assert_eq!((req["mchid"].as_str(), req["appid"].as_str()), (Some(MCHID), Some(APPID)));
    }
    assert_eq!(get(http, format!("{base}/api/v1/orders/{id}"), &buyer.token).await.1["state"], "created", "asking to pay pays nothing");
    // The local provider is not there when WeChat Pay is.
    assert_eq!(post(http, format!("{base}/api/v1/payments/local/{trade}/confirm"), &buyer.token, json!({})).await.0, 404);

    // WeChat Pay's callback, twice: paid once, one alert.
    for _ in 0..2 {
        let (headers, body) = callback(&stand_in, &trade, 2990);
        let mut req = http.post(format!("{base}/api/v1/payments/wechat/notify")).header("content-type", "application/json").body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        assert_eq!(req.send().await.unwrap().status(), 204);
    }
    let alert = ws.recv_type("order_alert").await;
    assert_eq!(alert["order"]["id"], id.as_str());
    past_redelivery_window().await;
    ws.expect_silence(Duration::from_millis(300)).await;
    let o = get(http, format!("{base}/api/v1/orders/{id}"), &buyer.token).await.1;
    assert_eq!(o["state"], "paid");

    // A signed refund callback for a refund never asked (the order is paid, not refunded) is
    // refused in WeChat Pay's shape, and counts as no confirmation; so is a 1 MB body.
    let (headers, body) = refund_callback(&stand_in, &trade, "SUCCESS", 2990);
    let mut req = http.post(format!("{base}/api/v1/payments/wechat/notify")).header("content-type", "application/json").body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "FAIL");
    let r = http.post(format!("{base}/api/v1/payments/wechat/notify")).header("content-type", "application/json").body(vec![b' '; 1 << 20]).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "FAIL", "an oversized callback is answered in WeChat Pay's shape");

    // A refund: asked of WeChat Pay once, with the order's refund id.
    post(http, format!("{base}/api/v1/orders/{id}/refund"), &buyer.token, json!({"reason": "不要了"})).await;
    let (s, r) = post(http, format!("{base}/api/v1/merchant/orders/{id}/refund/approve"), &shop.token, json!({})).await;
    assert_eq!((s, r["state"].as_str()), (200, Some("refunded")));
    let refunds = || -> Vec<Value> { stand_in.requests.lock().unwrap().iter().filter(|(p, _)| p == "/v3/refund/domestic/refunds").map(|(_, v)| v.clone()).collect() };
    let deadline = tokio::time::Instant::now() + WAIT;
    while refunds().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no refund reached WeChat Pay");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the outbox's redelivery window: still one.
    past_redelivery_window().await;
    let refunds = refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let r = &refunds[0];
    assert_eq!((r["out_trade_no"].as_str(), r["out_refund_no"].as_str(), r["amount"]["refund"].as_i64()), (Some(trade.as_str()), Some(format!("{trade}R").as_str()), Some(2990)));
    // The refund's end comes back as its own callback: SUCCESS counted; anything else counted
    // as a failure for staff.
    for status in ["SUCCESS", "ABNORMAL"] {
        let (headers, body) = refund_callback(&stand_in, &trade, status, 2990);
        let mut req = http.post(format!("{base}/api/v1/payments/wechat/notify")).header("content-type", "application/json").body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        assert_eq!(req.send().await.unwrap().status(), 204);
    }
    let text = http.get(format!("{}/metrics", app.metrics_base())).send().await.unwrap().text().await.unwrap();
    for line in ["jbk_payment_callbacks_total{outcome=\"refund_not_asked\"} 1", "jbk_payment_callbacks_total{outcome=\"refund_confirmed\"} 1", "jbk_payment_callbacks_total{outcome=\"refund_failure\"} 1", "jbk_payment_callbacks_total{outcome=\"paid\"} 1", "jbk_payment_callbacks_total{outcome=\"duplicate\"} 1"] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}
