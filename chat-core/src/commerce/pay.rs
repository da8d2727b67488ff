//! The payment port: what the shop asks of a payment provider (WeChat Pay v3 in production, the
//! local provider of the embedded default), and what a provider's verified callback tells it.
//! Adapters live outside the domain (`jiebanke-payments`); they verify and open callbacks
//! themselves (each provider signs its own way), so what reaches the domain is already
//! authentic. The domain checks what only it knows: the order named, its amount, its state.
//!
//! Guarantees an adapter gives:
//! - `prepay` may be called again for the same `out_trade_no` with the same amount (the client
//!   lost its answer): it answers parameters for the same payment, never a second one.
//! - `refund` is idempotent by `out_refund_no`: called again (a redelivered event), the provider
//!   refunds once.
//! - `open_notification` answers `Ok` only for a callback whose signature verifies with a
//!   platform key the provider trusts, whose timestamp is within five minutes of `now_secs`,
//!   whose resource decrypts and authenticates, and whose merchant and app ids are ours.

use crate::error::Result;
use async_trait::async_trait;

/// What the buyer's client needs to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayParams {
    /// The five fields the mini-program passes to `wx.requestPayment`.
    Wechat { time_stamp: String, nonce_str: String, package: String, sign_type: String, pay_sign: String },
    /// The local provider (development): the buyer confirms `payment` to "pay".
    Local { payment: String },
}

/// A payment to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepay {
    /// Our id of the payment at the provider: one per order.
    pub out_trade_no: String,
    /// What the buyer sees on the payment sheet (at most 127 bytes).
    pub description: String,
    pub amount_fen: i64,
    /// The payer's openid for this mini-program (JSAPI needs it; the local provider ignores it).
    pub payer_openid: Option<String>,
    /// Unix milliseconds after which the provider refuses to take the money.
    pub expires_at: i64,
}

/// A refund to make, whole orders only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub out_trade_no: String,
    /// Our id of the refund: the idempotency key.
    pub out_refund_no: String,
    pub reason: String,
    pub refund_fen: i64,
    pub total_fen: i64,
}

/// Where a refund stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// The money is back.
    Success,
    /// Accepted; the refund callback tells the end.
    Processing,
    /// The provider cannot refund (closed, abnormal): staff must look.
    Failed,
}

/// The headers a callback is signed with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyHeaders {
    /// `Wechatpay-Serial`: which platform key signed.
    pub serial: String,
    /// `Wechatpay-Signature`, base64.
    pub signature: String,
    /// `Wechatpay-Timestamp`, Unix seconds.
    pub timestamp: String,
    /// `Wechatpay-Nonce`.
    pub nonce: String,
}

/// What a verified callback says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A payment's state (`trade_state` `SUCCESS` is the only one that pays).
    Transaction { out_trade_no: String, transaction_id: String, trade_state: String, amount_total: i64, success_time: Option<String> },
    /// A refund's end.
    Refund { out_trade_no: String, out_refund_no: String, refund_status: String, refund_fen: i64 },
}

/// Why a callback was refused. `BadSignature` is answered 401 (WeChat Pay retries), the rest 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the timestamp is more than five minutes off")]
    StaleTimestamp,
    #[error("the resource does not decrypt")]
    BadCiphertext,
    #[error("the callback is not ours: {0}")]
    NotOurs(String),
    #[error("the callback is malformed: {0}")]
    Malformed(String),
}

impl NotifyError {
    /// The metrics label and log word.
    pub fn code(&self) -> &'static str {
        match self {
            NotifyError::BadSignature => "bad_signature",
            NotifyError::StaleTimestamp => "stale_timestamp",
            NotifyError::BadCiphertext => "bad_ciphertext",
            NotifyError::NotOurs(_) => "not_ours",
            NotifyError::Malformed(_) => "malformed",
        }
    }
}

#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// `wechat` or `local`: stored with each payment.
    fn name(&self) -> &'static str;
    /// Prepares a payment; `unavailable` if the provider cannot be reached or refuses.
    async fn prepay(&self, prepay: &Prepay) -> Result<PayParams>;
    /// Asks for a refund (idempotent by `out_refund_no`).
    async fn refund(&self, refund: &Refund) -> Result<RefundStatus>;
    /// Verifies and opens a callback. `now_secs` is the current Unix time.
    fn open_notification(&self, headers: &NotifyHeaders, body: &[u8], now_secs: i64) -> std::result::Result<Notice, NotifyError>;
}
