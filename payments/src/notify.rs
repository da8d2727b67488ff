//! Opening a WeChat Pay callback, the one path both providers take: the signature over
//! `TIMESTAMP\nNONCE\nBODY\n` by a platform key we trust and a timestamp within five minutes,
//! then the `resource` decrypted and authenticated with the APIv3 key, then the merchant and
//! app ids checked against ours. Only then is the payload read.
//!
//! Only the fields the domain uses are required: a field WeChat Pay adds or drops elsewhere
//! must not turn a real payment's callback into a refusal (it retries, then gives up).

use crate::error::SetupError;
use crate::wechat::{decrypt_resource, PlatformKeys, WechatError};
use jiebanke_chat_core::commerce::pay::{Notice, NotifyError, NotifyHeaders};
use serde::Deserialize;

/// The APIv3 key (32 ASCII characters, set on the merchant platform): the AES-256-GCM key of
/// every callback's resource. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiV3Key([u8; 32]);

impl ApiV3Key {
    pub fn parse(text: &str) -> Result<Self, SetupError> {
        let text = text.trim();
        if !text.is_ascii() {
            return Err(SetupError::ApiV3Key);
        }
        text.as_bytes().try_into().map(ApiV3Key).map_err(|_| SetupError::ApiV3Key)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV3Key(…)")
    }
}

/// A callback's body.
#[derive(Deserialize)]
struct Envelope {
    event_type: String,
    resource: Resource,
}

#[derive(Deserialize)]
struct Resource {
    /// `transaction` for `TRANSACTION.*`, `refund` for `REFUND.*`: a resource of the other
    /// kind under an event's name is refused.
    #[serde(default)]
    original_type: String,
    algorithm: String,
    ciphertext: String,
    nonce: String,
    #[serde(default)]
    associated_data: String,
}

/// A `TRANSACTION.*` resource, decrypted.
#[derive(Deserialize)]
struct Transaction {
    appid: String,
    mchid: String,
    out_trade_no: String,
    transaction_id: String,
    trade_state: String,
    amount: TransactionAmount,
    #[serde(default)]
    success_time: Option<String>,
}

#[derive(Deserialize)]
struct TransactionAmount {
    total: i64,
}

/// A `REFUND.*` resource, decrypted. It names no app.
#[derive(Deserialize)]
struct RefundResult {
    mchid: String,
    out_trade_no: String,
    out_refund_no: String,
    refund_status: String,
    amount: RefundAmount,
}

#[derive(Deserialize)]
struct RefundAmount {
    refund: i64,
}

/// What a provider trusts a callback with.
pub(crate) struct NotificationOpener {
    pub(crate) platform: PlatformKeys,
    pub(crate) api_v3_key: ApiV3Key,
    pub(crate) mchid: String,
    pub(crate) appid: String,
}

impl NotificationOpener {
    pub(crate) fn open(&self, headers: &NotifyHeaders, body: &[u8], now_secs: i64) -> Result<Notice, NotifyError> {
        // Unsigned is not signed: no signature or key named is a bad signature, whatever else.
        if headers.signature.trim().is_empty() || headers.serial.trim().is_empty() {
            return Err(NotifyError::BadSignature);
        }
        self.platform
            .verify_notification(&headers.serial, &headers.timestamp, &headers.nonce, body, &headers.signature, now_secs)
            .map_err(|e| match e {
                WechatError::StaleTimestamp => NotifyError::StaleTimestamp,
                // An unknown serial is a key we lack (WeChat Pay rotated it): refusing with
                // BadSignature makes WeChat Pay retry while the operator adds it.
                _ => NotifyError::BadSignature,
            })?;
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| NotifyError::Malformed(format!("body: {e}")))?;
        let resource = &envelope.resource;
        if resource.algorithm != "AEAD_AES_256_GCM" {
            return Err(NotifyError::Malformed(format!("algorithm {:?}", short(&resource.algorithm))));
        }
        let plaintext = decrypt_resource(self.api_v3_key.bytes(), &resource.nonce, &resource.associated_data, &resource.ciphertext)
            .map_err(|_| NotifyError::BadCiphertext)?;
        let expected = if envelope.event_type.starts_with("TRANSACTION.") {
            "transaction"
        } else if envelope.event_type.starts_with("REFUND.") {
            "refund"
        } else {
            return Err(NotifyError::Malformed(format!("event_type {:?}", short(&envelope.event_type))));
        };
        if resource.original_type != expected {
            return Err(NotifyError::Malformed(format!("original_type {:?} under {:?}", short(&resource.original_type), short(&envelope.event_type))));
        }
        if expected == "transaction" {
            let t: Transaction = serde_json::from_slice(&plaintext).map_err(|e| NotifyError::Malformed(format!("transaction: {e}")))?;
            self.check_mchid(&t.mchid)?;
            if t.appid != self.appid {
                return Err(NotifyError::NotOurs(format!("appid {:?}", short(&t.appid))));
            }
            Ok(Notice::Transaction {
                out_trade_no: t.out_trade_no,
                transaction_id: t.transaction_id,
                trade_state: t.trade_state,
                amount_total: t.amount.total,
                success_time: t.success_time,
            })
        } else {
            let r: RefundResult = serde_json::from_slice(&plaintext).map_err(|e| NotifyError::Malformed(format!("refund: {e}")))?;
            self.check_mchid(&r.mchid)?;
            Ok(Notice::Refund { out_trade_no: r.out_trade_no, out_refund_no: r.out_refund_no, refund_status: r.refund_status, refund_fen: r.amount.refund })
        }
    }

    fn check_mchid(&self, mchid: &str) -> Result<(), NotifyError> {
        if mchid == self.mchid {
            Ok(())
        } else {
            Err(NotifyError::NotOurs(format!("mchid {:?}", short(mchid))))
        }
    }
}

/// A value from a callback, cut for an error message.
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}
