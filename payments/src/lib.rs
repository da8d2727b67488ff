//! Payment providers (issue 14): the adapters of chat-core's `PaymentProvider` port. Both
//! speak WeChat Pay APIv3, so that development exercises the path production takes: the local
//! provider signs and encrypts its callbacks exactly as WeChat Pay does, and both providers
//! open callbacks with the one `NotificationOpener` (signature, five-minute window, AEAD,
//! our merchant and app ids). What reaches the domain is authentic; the domain checks the
//! order, its amount and its state.
//!
//! Layout:
//! - `wechat`: APIv3 cryptography, tested against WeChat Pay's SDK vectors: request and
//!   `paySign` signatures, platform keys (public keys or certificates), resource AEAD.
//! - `notify`: opening a callback, shared by both providers; `ApiV3Key`.
//! - `wechat_pay`: `WechatPay`, the client of the JSAPI prepay and refund APIs (answers
//!   verified like callbacks), and `WechatPayConfig`, read from the operator's key files.
//! - `local`: `LocalProvider`, the embedded default's, with its keys in the data dir.
//! - `format`: WeChat Pay's times and nonces.
//! - `error`: `SetupError`, what can go wrong loading keys or starting the client.

mod error;
mod format;
pub mod local;
mod notify;
pub mod wechat;
pub mod wechat_pay;

pub use error::SetupError;
pub use notify::ApiV3Key;
