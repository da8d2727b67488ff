//! The Jiebanke domain: users, conversations, per-conversation sequencing, presence and the
//! ports (traits) that storage and buses implement. This crate does no I/O and knows nothing of
//! axum, tungstenite, serde wire formats or sqlx; adapters live in `storage`, `gateway` and `rest`.
//!
//! Layout:
//! - `ids`: newtypes parsed once at the edge (`UserId`, `ConvId`, `Seq`, `ClientMsgId`, `SessionId`).
//! - `model`: users, conversations, messages and their bodies.
//! - `error`: the crate's one error type, `CoreError`.
//! - `ports`: the traits storage and buses implement, with the guarantees they promise.
//! - `bus`: the in-process `LocalBus`, the embedded default `Bus`.
//! - `commit`: the group-commit sequencer in front of a `MessageStore`.
//! - `presence`: the pure presence registry (sessions per user, last seen).
//! - `chat`: `ChatService`, the use cases the gateway and REST shell call.
//! - `events`: durable events (outbox relay, the handler), merchants' order alerts.
//! - `moderation`: the banned-word filter, reports, admin actions.
//! - `matching`: companion matching (the rule, the `MatchPool` port and its in-memory pool).
//! - `users`: accounts, privacy settings, blocks, personal data (a folder: model, rules, pii,
//!   port).
//! - `uploads`: photos checked by their bytes, stripped of metadata, behind `BlobStore`.
//! - `memory`: an in-memory `Store` for tests and examples.

pub mod bus;
pub mod chat;
pub mod commit;
pub mod error;
pub mod events;
pub mod ids;
pub mod matching;
pub mod memory;
pub mod model;
pub mod moderation;
pub mod ports;
pub mod presence;
pub mod uploads;
pub mod users;

pub use error::{CoreError, FieldProblem};
pub use ids::{ClientMsgId, ConvId, EventId, ModerationId, OrderId, Seq, SessionId, UserId};
pub use model::*;

/// Milliseconds since the Unix epoch, the one clock of the domain.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
