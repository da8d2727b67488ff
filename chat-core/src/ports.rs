//! The ports: traits that adapters outside the domain implement. Each states what it promises.
//!
//! `storage` implements the stores on SQLite and MySQL; `memory` implements them for tests;
//! `bus::LocalBus` implements `Bus` in-process; `rest` implements `TokenVerifier` with JWTs.

use crate::error::Result;
use crate::ids::{ConvId, EventId, ModerationId, Seq, SessionId, UserId};
use crate::model::*;
use crate::audit::NewAudit;
use async_trait::async_trait;
use std::sync::Arc;

/// Users and their identities.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Returns the user with this identity, creating it on first login. Same identity, same user.
    async fn upsert_user(&self, identity: &Identity, nickname: &str, now: i64) -> Result<User>;
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    /// Of `ids`, those that exist.
    async fn existing_users(&self, ids: &[UserId]) -> Result<Vec<UserId>>;
    async fn set_last_seen(&self, id: UserId, ts: i64) -> Result<()>;
}

/// Conversations and membership.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// The direct conversation of the pair, created if it does not exist. Idempotent and safe
    /// under concurrent calls: the same pair always gets the same conversation.
    async fn direct_conversation(&self, a: UserId, b: UserId, now: i64) -> Result<Conversation>;
    /// The direct conversations of several pairs, each as `direct_conversation` returns it, in
    /// order, made in as few transactions as the engine allows (SQL stores: one). The default
    /// calls `direct_conversation` for each pair.
    async fn direct_conversations(&self, pairs: &[(UserId, UserId)], now: i64) -> Result<Vec<Conversation>> {
        let mut out = Vec::with_capacity(pairs.len());
        for (a, b) in pairs {
            out.push(self.direct_conversation(*a, *b, now).await?);
        }
        Ok(out)
    }
    async fn create_group(
        &self,
        owner: UserId,
        title: &Title,
        members: &[UserId],
        now: i64,
    ) -> Result<Conversation>;
    /// The conversation with its members, or `None`.
    async fn conversation(&self, id: ConvId) -> Result<Option<Conversation>>;
    async fn members(&self, id: ConvId) -> Result<Vec<UserId>>;
    /// Adds members (existing members are left as they are).
    async fn add_members(&self, id: ConvId, users: &[UserId], now: i64) -> Result<()>;
    /// Removes a member; false if they were not one.
    async fn remove_member(&self, id: ConvId, user: UserId) -> Result<bool>;
    /// The caller's conversations, newest (highest id) first, with their read position: those
    /// with an id below `before` (all when `None`), at most `limit`. Keyset paging: a
    /// conversation made meanwhile is never repeated nor makes another skipped.
    async fn conversations_of(&self, user: UserId, before: Option<ConvId>, limit: u32) -> Result<Vec<ConversationSummary>>;
    /// Moves the member's read position forward to `seq` (never back, never past the last
    /// message) and returns where it is now.
    async fn mark_read(&self, id: ConvId, user: UserId, seq: Seq) -> Result<Seq>;
}

/// The durable message log.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores a batch in ONE transaction, assigning each new message the next seq of its
    /// conversation in batch order (no gap, no reuse). A message whose (sender, cmid) is stored
    /// already comes back as `Appended::Duplicate` with the original and is not stored again.
    /// The outer `Err` means the transaction failed and nothing of the batch is stored; an inner
    /// `Err` rejects that one message only. When this returns `Ok`, the batch is durable.
    async fn append(&self, batch: &[NewMessage], now: i64) -> Result<Vec<Result<Appended>>>;
    /// Messages of `conv` with seq > `after`, in seq order, at most `limit`.
    async fn history(&self, conv: ConvId, after: Seq, limit: u32) -> Result<Vec<Message>>;
    /// The sender recalls a message sent at or after `sent_after` (ms): its content is gone,
    /// its seq stays as a `Recalled` tombstone. Atomic: the checks and the change are one
    /// statement, so a recall racing the window's end or another recall is decided once.
    async fn recall(&self, conv: ConvId, seq: Seq, sender: UserId, sent_after: i64, now: i64) -> Result<Recall>;
}

/// What `MessageStore::recall` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recall {
    /// Recalled now.
    Done,
    /// Recalled before (a repeated recall changes nothing).
    Already,
    NoSuchMessage,
    /// Someone else sent it.
    NotSender,
    /// Sent before `sent_after`, or deleted by an admin.
    TooLate,
}

/// Orders. Every change writes its durable event in its own transaction (the outbox).
#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    /// Records a paid order and its `order.paid` event in ONE transaction.
    async fn create_paid_order(&self, order: &NewOrder, now: i64) -> Result<Order>;
}

/// Merchants' order alerts.
#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// The alert of `event` for `order.merchant`, created if it does not exist (a second call
    /// with the same event returns the first alert, acked or not).
    async fn record_alert(&self, event: EventId, order: &Order, now: i64) -> Result<OrderAlert>;
    /// The merchant's alerts not acked yet, oldest first, with an id above `after`, at most
    /// `limit`.
    async fn pending_alerts(&self, merchant: UserId, after: Option<EventId>, limit: u32) -> Result<Vec<OrderAlert>>;
    /// In one read, for a session that just opened: whether the user is banned, and how many
    /// alerts wait for them (so that the alerts are read only when there are some).
    async fn session_check(&self, user: UserId) -> Result<SessionCheck>;
    /// Marks the merchant's alert acked; false if the merchant has no such alert.
    async fn ack_alert(&self, merchant: UserId, alert: EventId, now: i64) -> Result<bool>;
}

/// Moderation: items (each with its `moderation.created` event), their resolution, tombstones.
#[async_trait]
pub trait ModerationStore: Send + Sync + 'static {
    /// One message, tombstone or not.
    async fn message(&self, conv: ConvId, seq: Seq) -> Result<Option<Message>>;
    /// Stores a moderation item and its `moderation.created` event in ONE transaction. A
    /// report (`ModerationKind::Report` with a reporter) of a subject the same reporter has an
    /// open report of is not stored again: the open one is answered, unchanged, with no event
    /// (so even two racing reports make one item).
    async fn create_moderation_item(&self, item: &NewModerationItem, now: i64) -> Result<ModerationItem>;
    /// Items matching `filter` with an id above `after`, oldest first, at most `limit`.
    async fn moderation_items(&self, filter: &ItemFilter, after: Option<ModerationId>, limit: u32) -> Result<Vec<ModerationItem>>;
    async fn moderation_item(&self, id: ModerationId) -> Result<Option<ModerationItem>>;
    /// The reports `user` made and the appeals they wrote, oldest first (for their export).
    async fn filed_by(&self, user: UserId) -> Result<Vec<ModerationItem>>;
    /// The open item about `subject`, if there is one.
    async fn open_item_about(&self, subject: &Subject) -> Result<Option<ModerationId>>;
    /// Resolves an open item in ONE transaction: its status, the action's effect (`delete`: a
    /// message's tombstone or a profile reset; `ban`/`unban`: the author's ban) and `audit`.
    /// `None` if there is no such item; `Conflict` (nothing written) if it is resolved already.
    async fn resolve_item(&self, id: ModerationId, action: ResolveAction, by: UserId, now: i64, audit: &NewAudit) -> Result<Option<ModerationItem>>;
    /// Replaces the message's content with a tombstone and writes `audit` in the same
    /// transaction; false (and no entry) if there is no such message.
    async fn delete_message(&self, conv: ConvId, seq: Seq, now: i64, audit: &NewAudit) -> Result<bool>;
}

/// Access: who may use the product (bans) and who is staff (roles). Each change writes its audit
/// entry in its own transaction.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Bans or unbans and writes `audit` in the same transaction; false (and no entry) if the
    /// user does not exist.
    async fn set_banned(&self, user: UserId, banned: bool, now: i64, audit: &NewAudit) -> Result<bool>;
    /// Sets the staff role and writes `audit` in the same transaction; `None` (and no entry)
    /// if the user does not exist, else the role before.
    async fn set_role(&self, user: UserId, role: Role, now: i64, audit: &NewAudit) -> Result<Option<Role>>;
    /// Grants the admin role of `JBK_ADMINS` at login (development; no audit entry: nobody acted).
    async fn grant_configured_admin(&self, user: UserId) -> Result<()>;
}

/// Which moderation items a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFilter {
    /// `Some(true)` open only, `Some(false)` resolved only, `None` both.
    pub open: Option<bool>,
    /// One subject kind (`Subject::kind`), or all.
    pub subject_kind: Option<String>,
}

/// The transactional outbox: the durable events the other stores wrote, relayed.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Hands the oldest events not yet relayed (at most `limit`) to `relay` and records what it
    /// says of each: `Ok(None)` relayed, `Ok(Some(why))` dead (never retried, kept for an
    /// operator). If `relay` fails, nothing is recorded and the events come again next time.
    /// Concurrent callers (nodes) never get the same event at the same time. Returns how many
    /// events were handed over.
    async fn relay_outbox(&self, limit: u32, relay: &RelayFn) -> Result<usize>;
    /// Events not relayed yet, and dead ones.
    async fn outbox_counts(&self) -> Result<OutboxCounts>;
}

/// What `OutboxStore::relay_outbox` calls with a batch of events.
pub type RelayFn = dyn Fn(Vec<OutboxEvent>) -> BoxFuture<'static, Result<Verdicts>> + Send + Sync;

/// What a relay says of each event it was handed: `None` relayed, `Some(why)` dead.
pub type Verdicts = Vec<(EventId, Option<String>)>;

/// A boxed future, as the ports return them.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCheck {
    pub banned: bool,
    /// The account was erased (its sessions must end; its tokens are refused).
    pub erased: bool,
    pub pending_alerts: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub dead: u64,
}

/// All the stores chat needs from one backend.
pub trait Store: UserStore + ConversationStore + MessageStore + crate::users::RelationStore {}
impl<T: UserStore + ConversationStore + MessageStore + crate::users::RelationStore> Store for T {}

/// Something that happened and that sessions may need to see. Every event names its audience.
#[derive(Debug, Clone)]
pub enum Event {
    /// A newly committed message. `origin` is the sending session, which gets an ack instead.
    Message {
        members: Arc<[UserId]>,
        origin: Option<SessionId>,
        message: Arc<Message>,
    },
    Read {
        members: Arc<[UserId]>,
        conv: ConvId,
        user: UserId,
        seq: Seq,
    },
    /// Never stored; sent to the other members only.
    Typing {
        members: Arc<[UserId]>,
        conv: ConvId,
        user: UserId,
    },
    Presence {
        user: UserId,
        online: bool,
        last_seen: Option<i64>,
    },
    /// The members of `conv` changed: every node drops what it cached of them. No session sees it.
    MembersChanged { conv: ConvId },
    /// Events may have been missed (the cluster bus was cut and is back): every session of this
    /// node is told to `sync`. Only a bus publishes it, to its own node.
    Resync,
    /// An order alert for every session of the merchant.
    OrderAlert { alert: Arc<OrderAlert> },
    /// An application was reviewed: every session of the applicant is told.
    MerchantReviewed { notice: Arc<crate::merchants::ReviewNotice> },
    /// A merchant posted about an animal: every session of each active claimant is told.
    ClaimUpdate { notice: Arc<crate::commerce::claims::UpdateNotice> },
    /// A moderation item for every staff session, on every node.
    Moderation { item: Arc<ModerationItem> },
    /// An admin deleted a message, or (`recalled`) its sender recalled it: the members replace
    /// it with a tombstone.
    MessageDeleted { members: Arc<[UserId]>, conv: ConvId, seq: Seq, recalled: bool },
    /// `user`'s presence is now hidden from `watcher` (a block between them): `watcher`'s
    /// sessions stop watching `user` and are told `user` is offline, with no last_seen.
    PresenceHidden { watcher: UserId, user: UserId },
    /// The user erased their account: every session of theirs, on every node, is closed (with
    /// a close code of its own, not the ban's).
    Erased { user: UserId },
    /// The user was banned: every session of theirs, on every node, is closed.
    Banned { user: UserId },
    /// A login session of the user ended (`session`), or all of them (`None`): the sockets
    /// opened with it, on every node, are closed (4005 `logged_out`).
    LoggedOut { user: UserId, session: Option<crate::ids::SessionKey> },
    /// Two travellers were matched: every session of both gets the proposal.
    MatchProposal { proposal: Arc<crate::matching::Proposal> },
    /// A request waited its time out unmatched: every session of its user is told.
    MatchExpired { request: Arc<crate::matching::MatchRequest> },
}

/// Receives the events a `Bus` carries. Must not block: it runs on the publisher's task.
pub trait EventSink: Send + Sync + 'static {
    fn deliver(&self, event: &Event);
}

/// Carries events to every node's sessions.
///
/// Guarantees: events published by one publisher reach each sink in publish order; the messages
/// of one conversation reach each user in seq order, once; delivery is at most once (a lost
/// event is recovered by the client's `sync`, never by the bus, and a bus that knows it may
/// have lost some says so with `Event::Resync`).
pub trait Bus: Send + Sync + 'static {
    /// Never blocks: an event that cannot be queued is dropped (and counted by the adapter).
    fn publish(&self, event: Event);
    /// A session of this node watches `user`'s presence. The watch counts at once (each `watch`
    /// is undone by one `unwatch`, whether or not its future ran); once the returned future is
    /// ready, `Event::Presence` of that user published on any node reaches this node. The
    /// in-process bus needs neither.
    fn watch(&self, _user: UserId) -> Ready {
        Box::pin(async { Ok(()) })
    }
    fn unwatch(&self, _user: UserId) {}
}

/// Resolves once a bus registration has taken effect.
pub type Ready = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'static>>;

/// Where the users with sessions are, across nodes: the global presence of cluster mode, and
/// the routing table a cluster bus uses to reach them. The embedded default has none (this
/// node is the whole world).
#[async_trait]
pub trait PresenceDirectory: Send + Sync + 'static {
    /// `user` has a first session on this node. From the return on, events for the user reach
    /// this node. True if the user just came online globally.
    async fn node_online(&self, user: UserId) -> Result<bool>;
    /// `user`'s last session on this node closed. True if the user is now offline globally.
    async fn node_offline(&self, user: UserId) -> Result<bool>;
    /// Whether the user has a session on any node.
    async fn online(&self, user: UserId) -> Result<bool>;
}

/// Turns a bearer token into the user it was issued to and the session it names (whether the
/// session is still live is `sessions::SessionService::check`'s question).
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify(&self, token: &str) -> Result<crate::ids::TokenClaims>;
}
