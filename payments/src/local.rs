//! `LocalProvider`: the payment provider of the embedded default, for development. The buyer
//! "pays" by confirming; the provider then writes the callback WeChat Pay would send (the
//! resource encrypted with its APIv3 key, the body signed with its stand-in platform key)
//! and the shop opens it with the very code that opens WeChat Pay's. Nothing is remembered
//! here: the domain stores payments.
//!
//! Its keys live in the data dir, created on first start (mode 0600), so that a callback
//! made before a restart still opens after it.

use crate::error::SetupError;
use crate::format::{beijing_rfc3339, nonce};
use crate::notify::{ApiV3Key, NotificationOpener};
use crate::wechat::{der_to_pem, encrypt_resource, PlatformKeys, SigningKey};
use async_trait::async_trait;
use jiebanke_chat_core::commerce::pay::{Notice, NotifyError, NotifyHeaders, PayParams, PaymentProvider, Prepay, Refund, RefundStatus};
use jiebanke_chat_core::error::{CoreError, Result};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The local provider's merchant and app ids.
pub const LOCAL_MCHID: &str = "local";
pub const LOCAL_APPID: &str = "local";
/// The serial its callbacks name.
pub const LOCAL_SERIAL: &str = "LOCAL_PLATFORM";
const PLATFORM_KEY_FILE: &str = "local-pay-platform-key.pem";
const API_V3_KEY_FILE: &str = "local-pay-apiv3-key";

/// A payment's end, as the local provider's callback tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPayment {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount_total: i64,
    /// `SUCCESS` pays.
    pub trade_state: String,
}

/// A refund's end, as the local provider's callback tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRefund {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub out_refund_no: String,
    pub refund_fen: i64,
    pub total_fen: i64,
    /// `SUCCESS`, `CLOSED` or `ABNORMAL`.
    pub refund_status: String,
}

pub struct LocalProvider {
    platform_key: SigningKey,
    opener: NotificationOpener,
}

impl LocalProvider {
    /// Reads the keys from `data_dir`, creating them on first start. Concurrent starters agree:
    /// each file appears whole, once, and every starter reads the one that did.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SetupError> {
        std::fs::create_dir_all(data_dir).map_err(SetupError::io(data_dir))?;
        let key_path = data_dir.join(PLATFORM_KEY_FILE);
        let pem = read_or_create(&key_path, || {
            let (_, der) = SigningKey::generate(LOCAL_SERIAL).map_err(|source| SetupError::Key { path: key_path.clone(), source })?;
            Ok(der_to_pem("PRIVATE KEY", &der))
        })?;
        let platform_key = SigningKey::from_pkcs8(&pem, LOCAL_SERIAL).map_err(|source| SetupError::Key { path: key_path.clone(), source })?;
        let api_v3_key = read_or_create(&data_dir.join(API_V3_KEY_FILE), || nonce(16).map_err(|e| SetupError::Randomness(e.to_string())))?;
        let api_v3_key = ApiV3Key::parse(&String::from_utf8_lossy(&api_v3_key))?;
        let mut platform = PlatformKeys::default();
        let public = platform_key.public_key_der().map_err(|source| SetupError::Key { path: key_path.clone(), source })?;
        platform.add(LOCAL_SERIAL, &public).map_err(|source| SetupError::Key { path: key_path, source })?;
        let opener = NotificationOpener { platform, api_v3_key, mchid: LOCAL_MCHID.to_string(), appid: LOCAL_APPID.to_string() };
        Ok(LocalProvider { platform_key, opener })
    }

    /// The callback WeChat Pay would send for `payment`, made at `now_secs`.
    pub fn notification(&self, payment: &LocalPayment, now_secs: i64) -> Result<(NotifyHeaders, Vec<u8>)> {
        let mut transaction = json!({
            "appid": LOCAL_APPID,
            "mchid": LOCAL_MCHID,
            "out_trade_no": payment.out_trade_no,
            "transaction_id": payment.transaction_id,
            "trade_type": "JSAPI",
            "trade_state": payment.trade_state,
            "trade_state_desc": payment.trade_state,
            "bank_type": "OTHERS",
            "attach": "",
            "amount": { "total": payment.amount_total, "payer_total": payment.amount_total, "currency": "CNY", "payer_currency": "CNY" },
        });
        if payment.trade_state == "SUCCESS" {
            transaction["success_time"] = json!(beijing_rfc3339(now_secs));
        }
        self.seal(&format!("TRANSACTION.{}", payment.trade_state), "支付成功", "transaction", &transaction, now_secs)
    }

    /// The callback WeChat Pay would send for `refund`, made at `now_secs`.
    pub fn refund_notification(&self, refund: &LocalRefund, now_secs: i64) -> Result<(NotifyHeaders, Vec<u8>)> {
        let mut result = json!({
            "mchid": LOCAL_MCHID,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": format!("LOCAL-{}", refund.out_refund_no),
            "refund_status": refund.refund_status,
            "user_received_account": "支付用户零钱",
            "amount": { "total": refund.total_fen, "refund": refund.refund_fen, "payer_total": refund.total_fen, "payer_refund": refund.refund_fen },
        });
        if refund.refund_status == "SUCCESS" {
            result["success_time"] = json!(beijing_rfc3339(now_secs));
        }
        self.seal(&format!("REFUND.{}", refund.refund_status), "退款状态变更", "refund", &result, now_secs)
    }

    /// Encrypts `resource` and signs the body, as WeChat Pay does.
    fn seal(&self, event_type: &str, summary: &str, original_type: &str, resource: &serde_json::Value, now_secs: i64) -> Result<(NotifyHeaders, Vec<u8>)> {
        let random = |bytes| nonce(bytes).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")));
        // AES-GCM takes a 12-byte nonce; WeChat Pay sends 12 ASCII characters.
        let resource_nonce = random(6)?;
        let ciphertext = encrypt_resource(self.opener.api_v3_key.bytes(), &resource_nonce, original_type, resource.to_string().as_bytes()).map_err(CoreError::unavailable)?;
        let body = json!({
            "id": format!("EV-{}", random(16)?),
            "create_time": beijing_rfc3339(now_secs),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": original_type,
                "nonce": resource_nonce,
            },
        })
        .to_string();
        let timestamp = now_secs.to_string();
        let header_nonce = random(16)?;
        let signature = self.platform_key.sign(&format!("{timestamp}\n{header_nonce}\n{body}\n")).map_err(CoreError::unavailable)?;
        Ok((NotifyHeaders { serial: LOCAL_SERIAL.to_string(), signature, timestamp, nonce: header_nonce }, body.into_bytes()))
    }
}

/// The file at `path`; if there is none, `make`'s content, written so that a reader never
/// sees half of it and concurrent makers all end up with the first one's.
fn read_or_create(path: &Path, make: impl FnOnce() -> Result<String, SetupError>) -> Result<Vec<u8>, SetupError> {
    match std::fs::read(path) {
        Ok(content) => return Ok(content),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SetupError::io(path)(e)),
    }
    static TEMP_FILES: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.{}.tmp", std::process::id(), TEMP_FILES.fetch_add(1, Ordering::Relaxed)));
    let written = write_private(&temp, make()?.as_bytes());
    // A hard link appears whole and never replaces: the first maker wins, the others read its file.
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SetupError::io(path)(e)),
    }
    std::fs::read(path).map_err(SetupError::io(path))
}

fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

#[async_trait]
impl PaymentProvider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn prepay(&self, prepay: &Prepay) -> Result<PayParams> {
        Ok(PayParams::Local { payment: prepay.out_trade_no.clone() })
    }

    /// No money moved, so there is none to return: every refund succeeds, as often as asked.
    async fn refund(&self, _refund: &Refund) -> Result<RefundStatus> {
        Ok(RefundStatus::Success)
    }

    fn open_notification(&self, headers: &NotifyHeaders, body: &[u8], now_secs: i64) -> std::result::Result<Notice, NotifyError> {
        self.opener.open(headers, body, now_secs)
    }
}
