//! The Jiebanke domain: users, conversations, per-conversation sequencing, presence and the
//! ports (traits) that storage and buses implement. This crate does no I/O and knows nothing of
//! axum, tungstenite, serde wire formats or sqlx; adapters live in `storage`, `gateway` and `rest`.
//!
//! Layout:
//! - `day`: the calendar day (`Day`, `YYYY-MM-DD`), a kernel value.
//! - `phone`: phone numbers (E.164, masked), and `sealing`: `DataKey`, sealing and blind
//!   indexes of personal data; both kernel values every area uses.
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
//! - `sessions`: login sessions named by their tokens (`jti`), their end (logout, a disabled
//!   staff account) and the `SessionStore` port.
//! - `matching`: companion matching (the rule, the `MatchPool` port and its in-memory pool).
//! - `users`: accounts, privacy settings, blocks, personal data (a folder: model, rules, pii,
//!   port).
//! - `uploads`: photos checked by their bytes, stripped of metadata, behind `BlobStore`.
//! - `text`: the one rule of what characters a user-written text may hold (control, bidi and
//!   tag characters; invisible-only names).
//! - `merchants`: merchant applications' rules (the unified social credit code, the review).
//! - `memory`: an in-memory `Store` for tests and examples.

pub mod audit;
pub mod bus;
pub mod chat;
pub mod commerce;
pub mod commit;
pub mod dashboard;
pub mod day;
pub mod error;
pub mod events;
pub mod ids;
pub mod logins;
pub mod matching;
pub mod memory;
pub mod merchants;
pub mod model;
pub mod moderation;
pub mod phone;
pub mod ports;
pub mod presence;
pub mod sealing;
pub mod sessions;
pub mod staff;
pub mod text;
pub mod uploads;
pub mod users;

pub use error::{CoreError, FieldProblem};
pub use ids::{ClientMsgId, ConvId, EventId, ModerationId, OrderId, Seq, SessionId, UserId};
pub use model::*;

/// The business timezone (`JBK_TIMEZONE`, default Asia/Shanghai): what "today" and "this year"
/// mean for the product. Built at the edge (the root crate reads the zone from the tz database);
/// the domain only asks for the UTC offset in effect at an instant.
#[derive(Clone)]
pub struct BusinessZone {
    name: std::sync::Arc<str>,
    offset_ms: std::sync::Arc<dyn Fn(i64) -> i64 + Send + Sync>,
}

impl std::fmt::Debug for BusinessZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BusinessZone({})", self.name)
    }
}

impl BusinessZone {
    /// `offset_ms(t)`: the zone's UTC offset, in ms, at the instant `t` (ms since the epoch).
    pub fn new(name: &str, offset_ms: impl Fn(i64) -> i64 + Send + Sync + 'static) -> Self {
        BusinessZone { name: name.into(), offset_ms: std::sync::Arc::new(offset_ms) }
    }
    /// Asia/Shanghai (UTC+8 all year: no daylight saving since 1991).
    pub fn shanghai() -> Self {
        Self::new("Asia/Shanghai", |_| 8 * 3_600_000)
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The local calendar day of an instant, as days since 1970-01-01.
    pub fn day(&self, ms: i64) -> i64 {
        (ms + (self.offset_ms)(ms)).div_euclid(86_400_000)
    }
    /// When the local day of `ms` began, in ms since the epoch (with the offset in effect at
    /// `ms`: on a day whose offset changes, off by that change).
    pub fn day_start(&self, ms: i64) -> i64 {
        self.day(ms) * 86_400_000 - (self.offset_ms)(ms)
    }
    /// The local date of an instant, `YYYY-MM-DD`.
    pub fn date(&self, ms: i64) -> String {
        let (y, m, d) = civil(self.day(ms));
        format!("{y:04}-{m:02}-{d:02}")
    }
    /// The local calendar year of an instant.
    pub fn year(&self, ms: i64) -> i64 {
        civil(self.day(ms)).0
    }
}

/// (year, month, day) of a day number (days since 1970-01-01): civil-from-days (Howard
/// Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let d = doy - (153 * mp + 2) / 5 + 1;
        (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
    }
}

#[cfg(test)]
mod zone_tests {
    use super::BusinessZone;

    #[test]
    fn local_days_and_years() {
        let z = BusinessZone::shanghai();
        // 2026-12-31T16:00:00Z is 2027-01-01 00:00 in Shanghai.
        let t = 1_798_732_800_000;
        assert_eq!(z.year(t - 1), 2026);
        assert_eq!((z.date(t - 1).as_str(), z.date(t).as_str()), ("2026-12-31", "2027-01-01"));
        assert_eq!(z.day_start(t + 5_000), t, "the Shanghai day began at 16:00 UTC");
        assert_eq!(z.day_start(t - 1), t - 86_400_000);
        assert_eq!(z.year(t), 2027);
        assert_eq!(BusinessZone::new("UTC", |_| 0).year(t), 2026);
        assert_eq!(z.day(0), 0);
        assert_eq!(BusinessZone::new("UTC-1", |_| -3_600_000).day(0), -1);
    }
}

/// Milliseconds since the Unix epoch, the one clock of the domain.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
