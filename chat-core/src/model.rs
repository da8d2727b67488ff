//! Users, conversations and messages as the domain sees them.

use crate::error::{CoreError, FieldProblem};
use crate::ids::{ClientMsgId, ConvId, EventId, ModerationId, OrderId, Seq, UserId};
use std::sync::Arc;

/// A person known to Jiebanke, identified by a login provider's subject (WeChat openid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub provider: String,
    pub nickname: String,
    pub created_at: i64,
    pub last_seen: Option<i64>,
    /// The user's staff role: operators work the review and moderation queues, admins also ban,
    /// set roles and manage staff accounts.
    pub role: Role,
    /// Banned users cannot log in or open a session until an admin unbans them.
    pub banned: bool,
    /// The user erased their account: no token of theirs is accepted again.
    pub erased: bool,
}

/// A staff role. `None` is every traveller and merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum Role {
    #[default]
    None,
    /// Reviews merchants and leads, works the moderation queue, searches users.
    Operator,
    /// All an operator does, plus bans, roles and staff accounts.
    Admin,
}

impl Role {
    pub const ALL: [&'static str; 3] = ["none", "operator", "admin"];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Ok(match s {
            "none" => Role::None,
            "operator" => Role::Operator,
            "admin" => Role::Admin,
            _ => return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("role", "must be one of none, operator, admin")])),
        })
    }
    /// Operators and admins.
    pub fn is_staff(self) -> bool {
        self != Role::None
    }
}

/// Who a login provider says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `wechat` or `dev`.
    pub provider: &'static str,
    /// Stable subject within the provider (WeChat openid, or the dev code itself).
    pub subject: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationKind {
    /// Exactly two members; the same pair always gets the same conversation.
    Direct,
    /// An owner and any number of members; the owner adds and removes members.
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "direct" => Ok(Self::Direct),
            "group" => Ok(Self::Group),
            _ => Err(CoreError::Fields(vec![FieldProblem::new("kind", "must be direct or group")])),
        }
    }
}

/// A group title: 1 to 64 characters after trimming, no control characters. (Screening it for
/// banned words is `chat::NewConversation`'s, which has the filter.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

/// `s` trimmed, if it has 1 to `max` characters; else `invalid` saying so of `what`.
fn trimmed(s: &str, max: usize, what: &str) -> Result<String, CoreError> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > max {
        return Err(CoreError::invalid(format!("{what} must be 1 to {max} characters")));
    }
    Ok(t.to_owned())
}

impl Title {
    /// `invalid` naming the field `title`.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let t = s.trim();
        let n = t.chars().count();
        let problem = if n == 0 || n > 64 {
            "must be 1-64 characters"
        } else if let Some(p) = crate::text::required_problem(t, crate::text::Lines::One) {
            p
        } else {
            return Ok(Self(t.to_owned()));
        };
        Err(CoreError::Fields(vec![FieldProblem::new("title", problem)]))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConvId,
    pub kind: ConversationKind,
    pub title: Option<String>,
    pub owner: Option<UserId>,
    pub created_at: i64,
    pub last_seq: Seq,
    pub members: Vec<UserId>,
}

/// One line of "my conversations".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub read_seq: Seq,
}

/// The text of a text message: 1 to 4,000 characters, not only white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 4000;
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        if !crate::text::is_visible(s) {
            return Err(CoreError::invalid("text must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(CoreError::invalid("text must be at most 4000 characters"));
        }
        if let Some(p) = crate::text::problem(s, crate::text::Lines::Many) {
            return Err(CoreError::invalid(format!("text {p}")));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a message carries. Only text today; new kinds are added here first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    Text(MessageText),
    /// The tombstone of a message an admin deleted: its seq stays, its content is gone.
    Deleted,
    /// The tombstone of a message its sender recalled (within `chat::RECALL_WINDOW_MS`).
    Recalled,
}

impl MessageBody {
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::Text(_) => "text",
            MessageBody::Deleted => "deleted",
            MessageBody::Recalled => "recalled",
        }
    }
    /// The text, if the body has one.
    pub fn text(&self) -> Option<&str> {
        match self {
            MessageBody::Text(t) => Some(t.as_str()),
            MessageBody::Deleted | MessageBody::Recalled => None,
        }
    }
}

/// A stored message. `seq` is its place in `conv`, `ts` the server time of its commit (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub conv: ConvId,
    pub seq: Seq,
    pub from: UserId,
    pub cmid: ClientMsgId,
    pub ts: i64,
    pub body: MessageBody,
}

/// A message on its way to storage, before it has a seq.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conv: ConvId,
    pub from: UserId,
    pub cmid: ClientMsgId,
    pub body: MessageBody,
    /// Members at the time of the send, who receive it once it is committed.
    pub members: Arc<[UserId]>,
}

/// What storage says about one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Newly stored with this seq: deliver it.
    New(Message),
    /// The same (sender, cmid) was stored before: the original, not to be delivered again.
    Duplicate(Message),
}

impl Appended {
    pub fn message(&self) -> &Message {
        match self {
            Appended::New(m) | Appended::Duplicate(m) => m,
        }
    }
}

/// What was bought, as the merchant's alert shows it: 1 to 128 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemName(String);

impl ItemName {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        trimmed(s, 128, "item").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An amount of money in fen (1/100 yuan): 1 fen to 2^31 - 1 fen (WeChat Pay's `amount.total`
/// is an int32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountFen(i64);

impl AmountFen {
    pub const MAX: i64 = i32::MAX as i64;
    pub fn new(v: i64) -> Result<Self, CoreError> {
        if !(1..=Self::MAX).contains(&v) {
            return Err(CoreError::invalid("amount_fen must be between 1 and 2147483647"));
        }
        Ok(Self(v))
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A paid order of a merchant's goods (flowers, an animal to claim...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub merchant: UserId,
    pub buyer: Option<UserId>,
    pub item: String,
    pub amount_fen: i64,
    pub paid_at: i64,
    /// What the merchant needs to prepare it (empty for orders recorded by hand).
    pub details: OrderDetails,
}

/// What a merchant's alert shows of an order beyond its total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderDetails {
    /// (title, quantity) of each line.
    pub lines: Vec<(String, u32)>,
    /// The recipient, masked (`王* 138****5678`).
    pub recipient: Option<String>,
    /// The delivery day, `YYYY-MM-DD` in the business zone.
    pub deliver_on: Option<String>,
    /// `morning`, `afternoon` or `evening`.
    pub slot: Option<String>,
}

/// An order about to be recorded as paid.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub merchant: UserId,
    pub buyer: Option<UserId>,
    pub item: ItemName,
    pub amount: AmountFen,
}

/// A merchant's alert for one paid order. Its id is the id of the `order.paid` event that made
/// it, so handling the event again finds the same alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAlert {
    pub id: EventId,
    pub merchant: UserId,
    pub order: Order,
    pub created_at: i64,
    pub acked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationKind {
    /// The banned-word filter matched the text.
    Flagged,
    /// A user reported it.
    Report,
    /// A banned user appeals their ban.
    Appeal,
}

impl ModerationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationKind::Flagged => "flagged",
            ModerationKind::Report => "report",
            ModerationKind::Appeal => "appeal",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "flagged" => Ok(Self::Flagged),
            "report" => Ok(Self::Report),
            "appeal" => Ok(Self::Appeal),
            _ => Err(CoreError::invalid("moderation kind must be flagged, report or appeal")),
        }
    }
}

/// A report's reason: 1 to 200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportReason(String);

impl ReportReason {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let r = trimmed(s, 200, "reason").map_err(|_| CoreError::Fields(vec![FieldProblem::new("reason", "must be 1-200 characters")]))?;
        match crate::text::required_problem(&r, crate::text::Lines::Many) {
            Some(p) => Err(CoreError::Fields(vec![FieldProblem::new("reason", p)])),
            None => Ok(Self(r)),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a moderation item is about. Every area's content is one kind: messages now; users,
/// profiles and appeals; posts, comments, products and reviews as their areas come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Message { conv: ConvId, seq: Seq },
    /// A user (a report of the person).
    User(UserId),
    /// A user's profile (nickname, bio, avatar).
    Profile(UserId),
    /// The ban of this user, appealed.
    Appeal(UserId),
    Post(i64),
    Comment(i64),
    Product(i64),
    Review(i64),
}

impl Subject {
    pub const KINDS: [&'static str; 8] = ["message", "post", "comment", "user", "profile", "product", "review", "appeal"];
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Message { .. } => "message",
            Subject::User(_) => "user",
            Subject::Profile(_) => "profile",
            Subject::Appeal(_) => "appeal",
            Subject::Post(_) => "post",
            Subject::Comment(_) => "comment",
            Subject::Product(_) => "product",
            Subject::Review(_) => "review",
        }
    }
    /// The subject's id as the wire shows it: `<conv>:<seq>` for a message, else the id.
    pub fn id(&self) -> String {
        match self {
            Subject::Message { conv, seq } => format!("{conv}:{}", seq.get()),
            Subject::User(u) | Subject::Profile(u) | Subject::Appeal(u) => u.to_string(),
            Subject::Post(i) | Subject::Comment(i) | Subject::Product(i) | Subject::Review(i) => i.to_string(),
        }
    }
    /// Back from `kind()` and `id()`.
    pub fn parse(kind: &str, id: &str) -> Result<Self, CoreError> {
        let bad = || CoreError::invalid(format!("bad moderation subject {kind}:{id}"));
        let user = || id.parse::<i64>().ok().and_then(|v| UserId::new(v).ok()).ok_or_else(bad);
        let num = || id.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(bad);
        Ok(match kind {
            "message" => {
                let (c, s) = id.split_once(':').ok_or_else(bad)?;
                let conv = c.parse::<i64>().ok().and_then(|v| ConvId::new(v).ok()).ok_or_else(bad)?;
                let seq = s.parse::<u64>().map_err(|_| bad())?;
                Subject::Message { conv, seq: Seq::new(seq) }
            }
            "user" => Subject::User(user()?),
            "profile" => Subject::Profile(user()?),
            "appeal" => Subject::Appeal(user()?),
            "post" => Subject::Post(num()?),
            "comment" => Subject::Comment(num()?),
            "product" => Subject::Product(num()?),
            "review" => Subject::Review(num()?),
            _ => return Err(bad()),
        })
    }
}

/// What staff did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveAction {
    /// Nothing to do.
    Dismiss,
    /// The content goes (a message becomes a tombstone, a profile is reset).
    Delete,
    /// The author is banned (admins).
    Ban,
    /// The author is unbanned: an appeal granted (admins).
    Unban,
}

impl ResolveAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveAction::Dismiss => "dismiss",
            ResolveAction::Delete => "delete",
            ResolveAction::Ban => "ban",
            ResolveAction::Unban => "unban",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Ok(match s {
            "dismiss" => Self::Dismiss,
            "delete" => Self::Delete,
            "ban" => Self::Ban,
            "unban" => Self::Unban,
            _ => return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("action", "must be one of dismiss, delete, ban, unban")])),
        })
    }
}

/// Where an item stands in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationStatus {
    Open,
    Resolved { action: ResolveAction, by: UserId, at: i64 },
}

/// Something for staff to look at: flagged or reported content, a reported user, an appeal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModerationItem {
    pub id: ModerationId,
    pub kind: ModerationKind,
    pub subject: Subject,
    /// Whose content it is (the message's sender, the reported user, the appellant).
    pub author: UserId,
    /// Who reported it (reports only).
    pub reporter: Option<UserId>,
    pub reason: String,
    /// The banned words that matched (flagged only).
    pub words: Vec<String>,
    /// The start of the text concerned, as it was when the item was made.
    pub excerpt: String,
    pub created_at: i64,
    pub status: ModerationStatus,
}

/// A moderation item about to be stored.
#[derive(Debug, Clone)]
pub struct NewModerationItem {
    pub kind: ModerationKind,
    pub subject: Subject,
    pub author: UserId,
    pub reporter: Option<UserId>,
    pub reason: String,
    pub words: Vec<String>,
    pub excerpt: String,
}

/// A durable event: written to the outbox in the same transaction as the change it tells of,
/// carried to its handlers at least once (through RabbitMQ in cluster mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurableEvent {
    /// `order.paid`: the merchant gets an alert.
    OrderPaid(Order),
    /// `moderation.created`: every staff session sees the item.
    ModerationCreated(ModerationItem),
    /// `merchant.reviewed`: the applicant's sessions are told (`merchant_review`).
    MerchantReviewed(crate::merchants::ReviewNotice),
    /// `order.created`, `order.cancelled`, `order.fulfilled`, ...: every other transition of an
    /// order; `order.refunded` and `order.late_payment` give the money back through the
    /// provider.
    OrderChanged(crate::commerce::orders::OrderChange),
    /// `animal.updated`: a merchant posted about an animal; every active claimant is told.
    AnimalUpdated(crate::commerce::claims::UpdateNotice),
}

impl DurableEvent {
    /// The topic (routing key) of the event.
    pub fn topic(&self) -> &'static str {
        match self {
            DurableEvent::OrderPaid(_) => "order.paid",
            DurableEvent::ModerationCreated(_) => "moderation.created",
            DurableEvent::MerchantReviewed(_) => "merchant.reviewed",
            DurableEvent::OrderChanged(c) => c.event.topic(),
            DurableEvent::AnimalUpdated(_) => "animal.updated",
        }
    }
}

/// A durable event with its outbox id (the idempotency key of its handlers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: EventId,
    pub event: DurableEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(MessageText::parse("你好").is_ok());
        assert!(MessageText::parse("   ").is_err());
        assert!(MessageText::parse(&"字".repeat(4000)).is_ok());
        assert!(MessageText::parse(&"字".repeat(4001)).is_err());
    }

    #[test]
    fn title_rules() {
        assert_eq!(Title::parse("  云南行 ").unwrap().as_str(), "云南行");
        assert!(Title::parse("").is_err());
        assert!(Title::parse(&"a".repeat(65)).is_err());
        let Err(CoreError::Fields(f)) = Title::parse("云南\u{7}行") else { panic!("a control character") };
        assert_eq!(f, vec![FieldProblem::new("title", "must not contain control characters")]);
    }

    #[test]
    fn kind_parse() {
        assert_eq!(ConversationKind::parse("direct").unwrap(), ConversationKind::Direct);
        assert_eq!(ConversationKind::parse("channel"), Err(CoreError::Fields(vec![FieldProblem::new("kind", "must be direct or group")])));
    }
}
