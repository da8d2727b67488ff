//! `WechatPay` against a stand-in of WeChat Pay's HTTP API on a free port: the stand-in checks
//! our `Authorization` the way WeChat Pay does (the merchant's public key, mchid, serial,
//! timestamp) and signs its answers with a platform key; callbacks are built here by hand,
//! as WeChat Pay writes them, independently of the local provider's code.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use jiebanke_chat_core::commerce::pay::{Notice, NotifyError, NotifyHeaders, PayParams, PaymentProvider, Prepay, Refund, RefundStatus};
use jiebanke_chat_core::error::CoreError;
use jiebanke_payments::wechat::{der_to_pem, encrypt_resource, request_message, PlatformKeys, SigningKey};
use jiebanke_payments::wechat_pay::{WechatPay, WechatPayConfig, WechatPaySettings};
use jiebanke_payments::{ApiV3Key, SetupError};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const MCHID: &str = "1900000109";
const APPID: &str = "wxd678efh567hg6787";
const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD12345678";
const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0119000001092025010100000000000001";
const API_V3_KEY: &str = "0123456789abcdefghijklmnopqrstuv";
const NOTIFY_URL: &str = "https://jiebanke.example/api/pay/wechat/notify";
const NOW: i64 = 1_790_000_000;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A new key and its PKCS#8 DER (to make a second handle on it).
fn key(serial: &str) -> (SigningKey, Vec<u8>) {
    SigningKey::generate(serial).unwrap()
}

/// What the stand-in knows and what it saw.
struct StandIn {
    merchant: PlatformKeys,
    platform: SigningKey,
    /// Each verified request: its path and JSON body.
    requests: Mutex<Vec<(String, Value)>>,
}

impl StandIn {
    /// WeChat Pay's check of a request: the scheme, the mchid, the serial, the timestamp, the signature.
    fn check(&self, headers: &HeaderMap, uri: &Uri, body: &str) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        if header("user-agent").is_empty() || header("accept") != "application/json" || header("content-type") != "application/json" {
            return Err("user-agent, accept and content-type are required".into());
        }
        let auth = header("authorization");
        let params = auth.strip_prefix("WECHATPAY2-SHA256-RSA2048 ").ok_or("wrong scheme")?;
        let fields: HashMap<&str, &str> = params.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k, v.trim_matches('"'))).collect();
        let field = |name: &str| fields.get(name).copied().ok_or(format!("no {name}"));
        if field("mchid")? != MCHID || field("serial_no")? != MERCHANT_SERIAL {
            return Err("unknown merchant or serial".into());
        }
        let ts: i64 = field("timestamp")?.parse().map_err(|_| "bad timestamp")?;
        if (ts - now()).abs() > 300 {
            return Err("stale timestamp".into());
        }
        let message = request_message("POST", &uri.to_string(), ts, field("nonce_str")?, body);
        self.merchant.verify(MERCHANT_SERIAL, &message, field("signature")?).map_err(|e| e.to_string())
    }

    /// An answer signed as WeChat Pay signs; `forge` signs another body, or names another key.
    fn answer(&self, status: StatusCode, body: Value, forge: Option<&str>) -> Response {
        let body = body.to_string();
        let (ts, nonce) = (now().to_string(), "A1B2C3D4E5F6A1B2C3D4E5F6A1B2C3D4");
        let signed = if forge == Some("body") { format!("{body} ") } else { body.clone() };
        let signature = self.platform.sign(&format!("{ts}\n{nonce}\n{signed}\n")).unwrap();
        let serial = if forge == Some("serial") { "PUB_KEY_ID_SOMEONE_ELSE" } else { PLATFORM_SERIAL };
        let headers = [
            ("Wechatpay-Serial", serial.to_string()),
            ("Wechatpay-Timestamp", ts),
            ("Wechatpay-Nonce", nonce.to_string()),
            ("Wechatpay-Signature", signature),
            ("Request-ID", "08F78BB5AF0610D302A9E28A1B012345".to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        (status, headers, body).into_response()
    }

    fn refuse(&self, status: StatusCode, code: &str, message: &str) -> Response {
        (status, json!({ "code": code, "message": message }).to_string()).into_response()
    }
}

/// `out_trade_no` (prepay) or `out_refund_no` (refund) says how the stand-in answers:
/// `ERR…` refuses, `FORGED-BODY…` and `FORGED-SERIAL…` answer with a bad signature,
/// `SUCCESS-…` etc. name the refund status.
async fn jsapi(State(s): State<Arc<StandIn>>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    if let Err(why) = s.check(&headers, &uri, &body) {
        return s.refuse(StatusCode::UNAUTHORIZED, "SIGN_ERROR", &why);
    }
    let request: Value = serde_json::from_str(&body).unwrap();
    s.requests.lock().unwrap().push((uri.path().to_string(), request.clone()));
    let out_trade_no = request["out_trade_no"].as_str().unwrap_or_default().to_string();
    if out_trade_no.starts_with("ERR") {
        return s.refuse(StatusCode::BAD_REQUEST, "PARAM_ERROR", "time_expire格式错误");
    }
    let forge = out_trade_no.strip_prefix("FORGED-").map(|f| if f.starts_with("BODY") { "body" } else { "serial" });
    s.answer(StatusCode::OK, json!({ "prepay_id": format!("wx2026{out_trade_no}") }), forge)
}

async fn refunds(State(s): State<Arc<StandIn>>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    if let Err(why) = s.check(&headers, &uri, &body) {
        return s.refuse(StatusCode::UNAUTHORIZED, "SIGN_ERROR", &why);
    }
    let request: Value = serde_json::from_str(&body).unwrap();
    s.requests.lock().unwrap().push((uri.path().to_string(), request.clone()));
    let out_refund_no = request["out_refund_no"].as_str().unwrap_or_default().to_string();
    if out_refund_no.starts_with("ERR") {
        return s.refuse(StatusCode::FORBIDDEN, "NOT_ENOUGH", "基本账户余额不足");
    }
    let status = out_refund_no.split('-').next().unwrap_or_default();
    let answer = json!({
        "refund_id": "50000000382019052709732678859",
        "out_refund_no": out_refund_no,
        "transaction_id": "1217752501201407033233368018",
        "out_trade_no": request["out_trade_no"],
        "channel": "ORIGINAL",
        "user_received_account": "招商银行信用卡0403",
        "create_time": "2026-12-04T13:29:35+08:00",
        "status": status,
        "amount": { "total": request["amount"]["total"], "refund": request["amount"]["refund"], "payer_total": request["amount"]["total"], "payer_refund": request["amount"]["refund"], "currency": "CNY" },
    });
    s.answer(StatusCode::OK, answer, None)
}

struct Fixture {
    pay: WechatPay,
    stand_in: Arc<StandIn>,
    merchant_public: PlatformKeys,
    /// The platform key, to sign callbacks with.
    platform: SigningKey,
}

/// A stand-in on a free port and a `WechatPay` pointed at it; `merchant` is the key our
/// client signs with (the stand-in always trusts the fixture's own).
async fn fixture_with(merchant: Option<SigningKey>) -> Fixture {
    let (merchant_key, _) = key(MERCHANT_SERIAL);
    let mut merchant_public = PlatformKeys::default();
    merchant_public.add(MERCHANT_SERIAL, &merchant_key.public_key_der().unwrap()).unwrap();
    let (platform, platform_der) = key(PLATFORM_SERIAL);
    let mut platform_keys = PlatformKeys::default();
    platform_keys.add(PLATFORM_SERIAL, &platform.public_key_der().unwrap()).unwrap();
    let stand_in = Arc::new(StandIn { merchant: merchant_public.clone(), platform, requests: Mutex::default() });
    let app = Router::new().route("/v3/pay/transactions/jsapi", post(jsapi)).route("/v3/refund/domestic/refunds", post(refunds)).with_state(stand_in.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let pay = WechatPay::new(WechatPayConfig {
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_key: merchant.unwrap_or(merchant_key),
        api_v3_key: ApiV3Key::parse(API_V3_KEY).unwrap(),
        platform: platform_keys,
        api_base,
        notify_url: NOTIFY_URL.into(),
    })
    .unwrap();
    Fixture { pay, stand_in, merchant_public, platform: SigningKey::from_pkcs8(&platform_der, PLATFORM_SERIAL).unwrap() }
}

async fn fixture() -> Fixture {
    fixture_with(None).await
}

fn prepay(out_trade_no: &str) -> Prepay {
    Prepay {
        out_trade_no: out_trade_no.into(),
        description: "结伴客-鲜花 向日葵×3".into(),
        amount_fen: 8_800,
        payer_openid: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
        // 2026-12-04T14:00:00+08:00
        expires_at: 1_796_364_000_123,
    }
}

fn refund(out_refund_no: &str) -> Refund {
    Refund { out_trade_no: "T-1".into(), out_refund_no: out_refund_no.into(), reason: "商家缺货".into(), refund_fen: 8_800, total_fen: 8_800 }
}

fn unavailable(e: CoreError) -> String {
    match e {
        CoreError::Unavailable(why) => why,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn prepay_answers_what_wx_request_payment_needs() {
    let f = fixture().await;
    let before = now();
    let params = f.pay.prepay(&prepay("T-1")).await.unwrap();
    let PayParams::Wechat { time_stamp, nonce_str, package, sign_type, pay_sign } = params else { panic!("{params:?}") };
    assert_eq!(package, "prepay_id=wx2026T-1");
    assert_eq!(sign_type, "RSA");
    assert_eq!(nonce_str.len(), 32);
    let ts: i64 = time_stamp.parse().unwrap();
    assert!((before..=now()).contains(&ts), "{ts}");
    // The mini-program's wx.requestPayment: WeChat checks paySign with the merchant's public key.
    f.merchant_public.verify(MERCHANT_SERIAL, &format!("{APPID}\n{time_stamp}\n{nonce_str}\n{package}\n"), &pay_sign).unwrap();
    assert!(f.merchant_public.verify(MERCHANT_SERIAL, &format!("{APPID}\n{time_stamp}\n{nonce_str}\nprepay_id=other\n"), &pay_sign).is_err());
    let requests = f.stand_in.requests.lock().unwrap();
    assert_eq!(
        requests[..],
        [(
            "/v3/pay/transactions/jsapi".to_string(),
            json!({
                "appid": APPID, "mchid": MCHID, "description": "结伴客-鲜花 向日葵×3", "out_trade_no": "T-1",
                "time_expire": "2026-12-04T14:00:00+08:00", "notify_url": NOTIFY_URL,
                "amount": { "total": 8800, "currency": "CNY" }, "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
            })
        )]
    );
}

#[tokio::test]
async fn the_stand_in_refuses_a_request_signed_with_another_key() {
    // Shows that the stand-in's check is real: the happy path above passes it for a reason.
    let (impostor, _) = key(MERCHANT_SERIAL);
    let f = fixture_with(Some(impostor)).await;
    let why = unavailable(f.pay.prepay(&prepay("T-1")).await.unwrap_err());
    assert!(why.contains("401") && why.contains("SIGN_ERROR"), "{why}");
    assert!(f.stand_in.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn prepay_refuses_an_answer_that_does_not_verify() {
    let f = fixture().await;
    for out_trade_no in ["FORGED-BODY-1", "FORGED-SERIAL-1"] {
        let why = unavailable(f.pay.prepay(&prepay(out_trade_no)).await.unwrap_err());
        assert!(why.contains("does not verify"), "{out_trade_no}: {why}");
    }
    // The stand-in did answer both: the refusal is ours.
    assert_eq!(f.stand_in.requests.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_refusal_of_wechat_pay_is_unavailable_with_its_code() {
    let f = fixture().await;
    let why = unavailable(f.pay.prepay(&prepay("ERR-1")).await.unwrap_err());
    assert!(why.contains("400") && why.contains("PARAM_ERROR") && why.contains("time_expire格式错误"), "{why}");
    let why = unavailable(f.pay.refund(&refund("ERR-1")).await.unwrap_err());
    assert!(why.contains("403") && why.contains("NOT_ENOUGH"), "{why}");
}

#[tokio::test]
async fn an_unreachable_wechat_pay_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (merchant_key, _) = key(MERCHANT_SERIAL);
    let (platform, _) = key(PLATFORM_SERIAL);
    let mut platform_keys = PlatformKeys::default();
    platform_keys.add(PLATFORM_SERIAL, &platform.public_key_der().unwrap()).unwrap();
    let pay = WechatPay::new(WechatPayConfig {
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_key,
        api_v3_key: ApiV3Key::parse(API_V3_KEY).unwrap(),
        platform: platform_keys,
        api_base: format!("http://127.0.0.1:{port}"),
        notify_url: NOTIFY_URL.into(),
    })
    .unwrap();
    let why = unavailable(pay.prepay(&prepay("T-1")).await.unwrap_err());
    assert!(why.contains("cannot be reached"), "{why}");
}

#[tokio::test]
async fn prepay_without_openid_or_amount_is_invalid_and_asks_nothing() {
    let f = fixture().await;
    for p in [Prepay { payer_openid: None, ..prepay("T-1") }, Prepay { payer_openid: Some(String::new()), ..prepay("T-1") }, Prepay { amount_fen: 0, ..prepay("T-1") }, Prepay { description: "花".repeat(43), ..prepay("T-1") }] {
        let e = f.pay.prepay(&p).await.unwrap_err();
        assert!(matches!(e, CoreError::Invalid(_)), "{p:?}: {e:?}");
    }
    assert!(f.stand_in.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn refunds_answer_wechat_pay_s_status() {
    let f = fixture().await;
    assert_eq!(f.pay.refund(&refund("SUCCESS-1")).await.unwrap(), RefundStatus::Success);
    assert_eq!(f.pay.refund(&refund("PROCESSING-1")).await.unwrap(), RefundStatus::Processing);
    assert_eq!(f.pay.refund(&refund("CLOSED-1")).await.unwrap(), RefundStatus::Failed);
    assert_eq!(f.pay.refund(&refund("ABNORMAL-1")).await.unwrap(), RefundStatus::Failed);
    assert!(unavailable(f.pay.refund(&refund("LOST-1")).await.unwrap_err()).contains("LOST"));
    let requests = f.stand_in.requests.lock().unwrap();
    assert_eq!(
        requests[0],
        (
            "/v3/refund/domestic/refunds".to_string(),
            json!({
                "out_trade_no": "T-1", "out_refund_no": "SUCCESS-1", "reason": "商家缺货", "notify_url": NOTIFY_URL,
                "amount": { "refund": 8800, "total": 8800, "currency": "CNY" },
            })
        )
    );
}

// Callbacks, written as WeChat Pay writes them.

fn transaction(mchid: &str, appid: &str) -> Value {
    json!({
        "mchid": mchid, "appid": appid, "out_trade_no": "T-1", "transaction_id": "4200001234202612041234567890",
        "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "CMC", "attach": "",
        "success_time": "2026-12-04T13:30:00+08:00", "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
        "amount": { "total": 8800, "payer_total": 8800, "currency": "CNY", "payer_currency": "CNY" },
    })
}

/// A callback body: `resource` encrypted under `key`, its associated data `original_type`.
fn envelope(key: &str, event_type: &str, original_type: &str, resource: &Value) -> String {
    let ciphertext = encrypt_resource(key.as_bytes(), "fdasflkja484", original_type, resource.to_string().as_bytes()).unwrap();
    json!({
        "id": "EV-2018022511223320873", "create_time": "2026-12-04T13:30:01+08:00", "resource_type": "encrypt-resource",
        "event_type": event_type, "summary": "支付成功",
        "resource": { "original_type": original_type, "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext, "associated_data": original_type, "nonce": "fdasflkja484" },
    })
    .to_string()
}

fn signed(key: &SigningKey, body: &str, ts: i64) -> NotifyHeaders {
    let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    NotifyHeaders { serial: key.serial.clone(), signature: key.sign(&format!("{ts}\n{nonce}\n{body}\n")).unwrap(), timestamp: ts.to_string(), nonce: nonce.into() }
}

fn open(f: &Fixture, body: &str, ts: i64) -> Result<Notice, NotifyError> {
    f.pay.open_notification(&signed(&f.platform, body, ts), body.as_bytes(), NOW)
}

#[tokio::test]
async fn a_payment_callback_opens() {
    let f = fixture().await;
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    assert_eq!(
        open(&f, &body, NOW - 299).unwrap(),
        Notice::Transaction {
            out_trade_no: "T-1".into(),
            transaction_id: "4200001234202612041234567890".into(),
            trade_state: "SUCCESS".into(),
            amount_total: 8800,
            success_time: Some("2026-12-04T13:30:00+08:00".into()),
        }
    );
}

#[tokio::test]
async fn a_refund_callback_opens() {
    let f = fixture().await;
    let result = json!({
        "mchid": MCHID, "out_trade_no": "T-1", "transaction_id": "4200001234202612041234567890", "out_refund_no": "R-1",
        "refund_id": "50000000382019052709732678859", "refund_status": "SUCCESS", "success_time": "2026-12-04T15:00:00+08:00",
        "user_received_account": "支付用户零钱", "amount": { "total": 8800, "refund": 3000, "payer_total": 8800, "payer_refund": 3000 },
    });
    let body = envelope(API_V3_KEY, "REFUND.SUCCESS", "refund", &result);
    assert_eq!(open(&f, &body, NOW).unwrap(), Notice::Refund { out_trade_no: "T-1".into(), out_refund_no: "R-1".into(), refund_status: "SUCCESS".into(), refund_fen: 3000 });
    // Another merchant's refund is not ours.
    let mut theirs = result.clone();
    theirs["mchid"] = json!("1900000110");
    let body = envelope(API_V3_KEY, "REFUND.SUCCESS", "refund", &theirs);
    assert!(matches!(open(&f, &body, NOW), Err(NotifyError::NotOurs(_))));
    // A refund's resource that says it is a transaction's is refused.
    let body = envelope(API_V3_KEY, "REFUND.SUCCESS", "transaction", &result);
    assert!(matches!(open(&f, &body, NOW), Err(NotifyError::Malformed(why)) if why.contains("original_type")));
}

#[tokio::test]
async fn a_callback_whose_signature_does_not_verify_is_refused() {
    let f = fixture().await;
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    let headers = signed(&f.platform, &body, NOW);
    // The body changed after signing (a trailing space is enough).
    assert_eq!(f.pay.open_notification(&headers, format!("{body} ").as_bytes(), NOW), Err(NotifyError::BadSignature));
    // Signed by someone else under our platform key's serial.
    let (impostor, _) = key(PLATFORM_SERIAL);
    assert_eq!(f.pay.open_notification(&signed(&impostor, &body, NOW), body.as_bytes(), NOW), Err(NotifyError::BadSignature));
    // WeChat Pay's probe of whether merchants verify at all.
    let probe = NotifyHeaders { signature: format!("WECHATPAY/SIGNTEST/{}", headers.signature), ..headers.clone() };
    assert_eq!(f.pay.open_notification(&probe, body.as_bytes(), NOW), Err(NotifyError::BadSignature));
    assert!(f.pay.open_notification(&headers, body.as_bytes(), NOW).is_ok());
}

#[tokio::test]
async fn a_callback_signed_by_an_unknown_key_is_refused() {
    let f = fixture().await;
    let (other, _) = key("PUB_KEY_ID_0119000001092025010100000000000002");
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    assert_eq!(f.pay.open_notification(&signed(&other, &body, NOW), body.as_bytes(), NOW), Err(NotifyError::BadSignature));
}

#[tokio::test]
async fn a_stale_callback_is_refused() {
    let f = fixture().await;
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    assert_eq!(open(&f, &body, NOW - 301), Err(NotifyError::StaleTimestamp));
    assert_eq!(open(&f, &body, NOW + 301), Err(NotifyError::StaleTimestamp));
    assert!(open(&f, &body, NOW + 300).is_ok());
}

#[tokio::test]
async fn a_callback_whose_resource_does_not_decrypt_is_refused() {
    let f = fixture().await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    // One bit of the ciphertext flipped, the body signed again: only the AEAD can tell.
    let mut v: Value = serde_json::from_str(&body).unwrap();
    let mut raw = b64.decode(v["resource"]["ciphertext"].as_str().unwrap()).unwrap();
    raw[3] ^= 0x20;
    v["resource"]["ciphertext"] = json!(b64.encode(&raw));
    assert_eq!(open(&f, &v.to_string(), NOW), Err(NotifyError::BadCiphertext));
    // Another associated data.
    let mut v: Value = serde_json::from_str(&body).unwrap();
    v["resource"]["associated_data"] = json!("refund");
    assert_eq!(open(&f, &v.to_string(), NOW), Err(NotifyError::BadCiphertext));
    // Another APIv3 key.
    let body = envelope("vutsrqponmlkjihgfedcba9876543210", "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    assert_eq!(open(&f, &body, NOW), Err(NotifyError::BadCiphertext));
}

#[tokio::test]
async fn another_merchant_s_or_app_s_payment_is_not_ours() {
    let f = fixture().await;
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction("1900000110", APPID));
    assert!(matches!(open(&f, &body, NOW), Err(NotifyError::NotOurs(why)) if why.contains("mchid")));
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, "wx0000000000000000"));
    assert!(matches!(open(&f, &body, NOW), Err(NotifyError::NotOurs(why)) if why.contains("appid")));
}

#[tokio::test]
async fn a_malformed_callback_is_refused() {
    let f = fixture().await;
    let mut no_amount = transaction(MCHID, APPID);
    no_amount.as_object_mut().unwrap().remove("amount");
    let mut string_total = transaction(MCHID, APPID);
    string_total["amount"]["total"] = json!("8800");
    let good = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    let mut other_algorithm: Value = serde_json::from_str(&good).unwrap();
    other_algorithm["resource"]["algorithm"] = json!("AEAD_SM4_GCM");
    let mut no_resource: Value = serde_json::from_str(&good).unwrap();
    no_resource.as_object_mut().unwrap().remove("resource");
    for body in [
        "not json".to_string(),
        no_resource.to_string(),
        other_algorithm.to_string(),
        envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &no_amount),
        envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &string_total),
        envelope(API_V3_KEY, "MCHTRANSFER.BILL.FINISHED", "transaction", &transaction(MCHID, APPID)),
        envelope(API_V3_KEY, "REFUND.SUCCESS", "refund", &transaction(MCHID, APPID)),
        // A payment's resource whose `original_type` says it is a refund's.
        envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "refund", &transaction(MCHID, APPID)),
        envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "", &transaction(MCHID, APPID)),
    ] {
        assert!(matches!(open(&f, &body, NOW), Err(NotifyError::Malformed(_))), "{body}");
    }
}

#[tokio::test]
async fn the_configuration_reads_the_operator_s_files() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wechat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (merchant, merchant_der) = key(MERCHANT_SERIAL);
    let (platform, _) = key(PLATFORM_SERIAL);
    std::fs::write(dir.join("apiclient_key.pem"), der_to_pem("PRIVATE KEY", &merchant_der)).unwrap();
    std::fs::write(dir.join("pub_key.pem"), der_to_pem("PUBLIC KEY", &platform.public_key_der().unwrap())).unwrap();
    std::fs::write(dir.join("not_a_key.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").unwrap();
    let settings = WechatPaySettings {
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_serial: MERCHANT_SERIAL.into(),
        merchant_key_file: dir.join("apiclient_key.pem"),
        api_v3_key: API_V3_KEY.into(),
        platform_keys: vec![(PLATFORM_SERIAL.into(), dir.join("pub_key.pem"))],
        notify_url: NOTIFY_URL.into(),
    };
    let config = WechatPayConfig::from_files(&settings).unwrap();
    assert_eq!(config.api_base, "https://api.mch.weixin.qq.com");
    assert_eq!(config.merchant_key.serial, MERCHANT_SERIAL);
    assert_eq!(config.merchant_key.public_key_der().unwrap(), merchant.public_key_der().unwrap());
    // The secret does not print.
    assert!(!format!("{config:?} {:?}", config.api_v3_key).contains(API_V3_KEY));
    // The platform key read from its file verifies WeChat Pay's callbacks.
    let pay = WechatPay::new(config).unwrap();
    let body = envelope(API_V3_KEY, "TRANSACTION.SUCCESS", "transaction", &transaction(MCHID, APPID));
    assert!(pay.open_notification(&signed(&platform, &body, NOW), body.as_bytes(), NOW).is_ok());

    let missing = WechatPaySettings { merchant_key_file: dir.join("missing.pem"), ..settings.clone() };
    assert!(matches!(WechatPayConfig::from_files(&missing), Err(SetupError::Io { path, .. }) if path.ends_with("missing.pem")));
    let bad_platform = WechatPaySettings { platform_keys: vec![(PLATFORM_SERIAL.into(), dir.join("not_a_key.pem"))], ..settings.clone() };
    assert!(matches!(WechatPayConfig::from_files(&bad_platform), Err(SetupError::Key { path, .. }) if path.ends_with("not_a_key.pem")));
    let no_platform = WechatPaySettings { platform_keys: vec![], ..settings.clone() };
    assert!(matches!(WechatPayConfig::from_files(&no_platform), Err(SetupError::NoPlatformKey)));
    let short_key = WechatPaySettings { api_v3_key: "0123456789abcdef".into(), ..settings.clone() };
    assert!(matches!(WechatPayConfig::from_files(&short_key), Err(SetupError::ApiV3Key)));
    let _ = std::fs::remove_dir_all(&dir);
}
