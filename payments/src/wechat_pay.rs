//! `WechatPay`: the client of WeChat Pay APIv3 for a mini-program merchant (JSAPI prepay,
//! domestic refunds) and the opener of its callbacks.
//!
//! Every request is signed with the merchant key; every 2xx answer is verified like a
//! callback (WeChat Pay signs its answers the same way), and one that does not verify is
//! refused: a forged `prepay_id` would send the buyer to pay someone else's order. Error
//! answers are not verified (they decide nothing) and become `unavailable` with WeChat Pay's
//! `code` and `message`.

use crate::error::SetupError;
use crate::format::{beijing_rfc3339, nonce, now_secs};
use crate::notify::{ApiV3Key, NotificationOpener};
use crate::wechat::{authorization, pay_sign, PlatformKeys, SigningKey};
use async_trait::async_trait;
use jiebanke_chat_core::commerce::pay::{Notice, NotifyError, NotifyHeaders, PayParams, PaymentProvider, Prepay, Refund, RefundStatus};
use jiebanke_chat_core::error::{CoreError, Result};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// How long a call to WeChat Pay may take before the buyer is told to retry.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What `WechatPay` runs with.
pub struct WechatPayConfig {
    /// The merchant id (`mchid`).
    pub mchid: String,
    /// The mini-program's app id, bound to the merchant.
    pub appid: String,
    /// The merchant's API private key; its `serial` is the merchant certificate's serial.
    pub merchant_key: SigningKey,
    pub api_v3_key: ApiV3Key,
    /// WeChat Pay's keys: platform certificates by serial, or the public key by `PUB_KEY_ID_…`.
    pub platform: PlatformKeys,
    /// Scheme and host, `https://api.mch.weixin.qq.com` (`WechatPayConfig::API_BASE`).
    pub api_base: String,
    /// Where WeChat Pay sends callbacks (https, no query).
    pub notify_url: String,
}

impl std::fmt::Debug for WechatPayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPayConfig")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_key", &self.merchant_key)
            .field("api_base", &self.api_base)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}

/// Where the merchant's keys are, as the operator configures them.
#[derive(Clone)]
pub struct WechatPaySettings {
    pub mchid: String,
    pub appid: String,
    /// The merchant API certificate's serial.
    pub merchant_serial: String,
    /// The merchant API private key (`apiclient_key.pem`, PKCS#8).
    pub merchant_key_file: PathBuf,
    /// 32 ASCII characters; a secret.
    pub api_v3_key: String,
    /// Each platform key's serial (a certificate serial, or `PUB_KEY_ID_…`) and its PEM file
    /// (the public key, or the platform certificate). Two during a rotation.
    pub platform_keys: Vec<(String, PathBuf)>,
    pub notify_url: String,
}

impl std::fmt::Debug for WechatPaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPaySettings")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_serial", &self.merchant_serial)
            .field("merchant_key_file", &self.merchant_key_file)
            .field("platform_keys", &self.platform_keys)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}

impl WechatPayConfig {
    pub const API_BASE: &'static str = "https://api.mch.weixin.qq.com";

    /// Reads the keys the settings name; `api_base` is WeChat Pay's.
    pub fn from_files(settings: &WechatPaySettings) -> Result<Self, SetupError> {
        let path = &settings.merchant_key_file;
        let pem = std::fs::read(path).map_err(SetupError::io(path))?;
        let merchant_key = SigningKey::from_pkcs8(&pem, settings.merchant_serial.clone()).map_err(|source| SetupError::Key { path: path.clone(), source })?;
        let mut platform = PlatformKeys::default();
        for (serial, path) in &settings.platform_keys {
            let pem = std::fs::read(path).map_err(SetupError::io(path))?;
            platform.add(serial.clone(), &pem).map_err(|source| SetupError::Key { path: path.clone(), source })?;
        }
        if settings.platform_keys.is_empty() {
            return Err(SetupError::NoPlatformKey);
        }
        Ok(WechatPayConfig {
            mchid: settings.mchid.clone(),
            appid: settings.appid.clone(),
            merchant_key,
            api_v3_key: ApiV3Key::parse(&settings.api_v3_key)?,
            platform,
            api_base: Self::API_BASE.to_string(),
            notify_url: settings.notify_url.clone(),
        })
    }
}

/// WeChat Pay, as a `PaymentProvider`. `prepay` asked again for an order answers WeChat Pay's
/// same `prepay_id` because every field is the same again (`time_expire` comes from the
/// stored `expires_at`); `refund` is idempotent at WeChat Pay by `out_refund_no`.
pub struct WechatPay {
    merchant_key: SigningKey,
    api_base: String,
    notify_url: String,
    /// Holds the platform keys, which also verify answers, and our ids.
    opener: NotificationOpener,
    http: reqwest::Client,
}

/// An error answer's body.
#[derive(Deserialize, Default)]
struct ErrorAnswer {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct PrepayAnswer {
    prepay_id: String,
}

#[derive(Deserialize)]
struct RefundAnswer {
    status: String,
}

impl WechatPay {
    pub fn new(config: WechatPayConfig) -> Result<Self, SetupError> {
        let api_base = config.api_base.trim_end_matches('/').to_string();
        match reqwest::Url::parse(&api_base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => return Err(SetupError::ApiBase(config.api_base)),
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // WeChat Pay refuses requests without a User-Agent.
            .user_agent(concat!("jiebanke-payments/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(WechatPay {
            merchant_key: config.merchant_key,
            api_base,
            notify_url: config.notify_url,
            opener: NotificationOpener { platform: config.platform, api_v3_key: config.api_v3_key, mchid: config.mchid, appid: config.appid },
            http,
        })
    }

    /// POSTs `body` to `path`, signed; answers the verified 2xx answer's body.
    async fn post<T: DeserializeOwned>(&self, path: &str, body: &serde_json::Value) -> Result<T> {
        let body = body.to_string();
        let url = reqwest::Url::parse(&format!("{}{path}", self.api_base)).map_err(|e| CoreError::unavailable(format!("WeChat Pay URL: {e}")))?;
        // WeChat Pay signs the path and query it receives, whatever the host.
        let signed_url = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let nonce = nonce(16).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        let auth = authorization(&self.opener.mchid, &self.merchant_key, "POST", &signed_url, now_secs(), &nonce, &body).map_err(CoreError::unavailable)?;
        let answer = self
            .http
            .post(url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| CoreError::unavailable(format!("WeChat Pay cannot be reached: {e}")))?;
        let status = answer.status();
        let headers = answer_headers(answer.headers());
        let bytes = answer.bytes().await.map_err(|e| CoreError::unavailable(format!("WeChat Pay's answer was cut: {e}")))?;
        if !status.is_success() {
            let error: ErrorAnswer = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(CoreError::unavailable(format!("WeChat Pay refused ({status}): {} {}", error.code, error.message)));
        }
        self.opener
            .platform
            .verify_notification(&headers.serial, &headers.timestamp, &headers.nonce, &bytes, &headers.signature, now_secs())
            .map_err(|e| CoreError::unavailable(format!("WeChat Pay's answer does not verify: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| CoreError::unavailable(format!("WeChat Pay's answer is malformed: {e}")))
    }
}

/// The `Wechatpay-*` headers of an answer (absent ones empty, so that verification fails).
fn answer_headers(headers: &HeaderMap) -> NotifyHeaders {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    NotifyHeaders { serial: get("Wechatpay-Serial"), signature: get("Wechatpay-Signature"), timestamp: get("Wechatpay-Timestamp"), nonce: get("Wechatpay-Nonce") }
}

#[async_trait]
impl PaymentProvider for WechatPay {
    fn name(&self) -> &'static str {
        "wechat"
    }

    async fn prepay(&self, prepay: &Prepay) -> Result<PayParams> {
        let openid = prepay.payer_openid.as_deref().filter(|o| !o.is_empty()).ok_or_else(|| CoreError::invalid("WeChat Pay needs the payer's openid"))?;
        if prepay.amount_fen <= 0 {
            return Err(CoreError::invalid("the amount must be positive"));
        }
        if prepay.description.is_empty() || prepay.description.len() > 127 {
            return Err(CoreError::invalid("the description must be 1 to 127 bytes"));
        }
        let answer: PrepayAnswer = self
            .post(
                "/v3/pay/transactions/jsapi",
                &json!({
                    "appid": self.opener.appid,
                    "mchid": self.opener.mchid,
                    "description": prepay.description,
                    "out_trade_no": prepay.out_trade_no,
                    "time_expire": beijing_rfc3339(prepay.expires_at.div_euclid(1000)),
                    "notify_url": self.notify_url,
                    "amount": { "total": prepay.amount_fen, "currency": "CNY" },
                    "payer": { "openid": openid },
                }),
            )
            .await?;
        let package = format!("prepay_id={}", answer.prepay_id);
        let time_stamp = now_secs();
        let nonce_str = nonce(16).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        let pay_sign = pay_sign(&self.opener.appid, time_stamp, &nonce_str, &package, &self.merchant_key).map_err(CoreError::unavailable)?;
        Ok(PayParams::Wechat { time_stamp: time_stamp.to_string(), nonce_str, package, sign_type: "RSA".to_string(), pay_sign })
    }

    async fn refund(&self, refund: &Refund) -> Result<RefundStatus> {
        if refund.refund_fen <= 0 || refund.refund_fen > refund.total_fen {
            return Err(CoreError::invalid("the refund must be positive and at most the total"));
        }
        let mut body = json!({
            "out_trade_no": refund.out_trade_no,
            "out_refund_no": refund.out_refund_no,
            "notify_url": self.notify_url,
            "amount": { "refund": refund.refund_fen, "total": refund.total_fen, "currency": "CNY" },
        });
        // Optional, and shown to the buyer: an empty one is left out rather than refused.
        if !refund.reason.is_empty() {
            body["reason"] = json!(refund.reason);
        }
        let answer: RefundAnswer = self.post("/v3/refund/domestic/refunds", &body).await?;
        match answer.status.as_str() {
            "SUCCESS" => Ok(RefundStatus::Success),
            "PROCESSING" => Ok(RefundStatus::Processing),
            "CLOSED" | "ABNORMAL" => Ok(RefundStatus::Failed),
            other => Err(CoreError::unavailable(format!("WeChat Pay answered the refund status {:?}", other.chars().take(40).collect::<String>()))),
        }
    }

    fn open_notification(&self, headers: &NotifyHeaders, body: &[u8], now_secs: i64) -> std::result::Result<Notice, NotifyError> {
        self.opener.open(headers, body, now_secs)
    }
}
