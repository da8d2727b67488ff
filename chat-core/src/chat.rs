//! `ChatService`: the use cases of chat, called by the gateway (WebSocket) and the REST shell.
//! It enforces the rules (membership, ownership, limits) and leaves I/O to the ports.

use crate::commit::Committer;
use crate::error::{CoreError, FieldProblem, Result};
use crate::ids::{ClientMsgId, ConvId, Seq, SessionId, UserId};
use crate::model::*;
use crate::moderation::WordFilter;
use crate::ports::{Bus, Event, PresenceDirectory, Store};
use crate::presence::{PresenceRegistry, PresenceState};
use crate::users::Relation;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most members a group may have, unless configured otherwise (`ChatService::with_max_group`).
pub const MAX_GROUP_MEMBERS: usize = 500;
/// How long after sending a sender may recall a message (ms).
pub const RECALL_WINDOW_MS: i64 = 2 * 60 * 1000;
/// Most messages one history page returns.
pub const MAX_HISTORY_LIMIT: u32 = 200;
/// Most conversations whose member lists are cached; past it the cache starts over.
const MEMBER_CACHE_CAP: usize = 100_000;

/// A conversation to create, as a client asks for it, checked: every bad field named at once
/// (`kind`, `title`, `members`), a group's title screened with the banned-word filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewConversation {
    /// The direct conversation with this other user.
    Direct(UserId),
    /// A group `me` will own; `members` are the others.
    Group { title: Title, members: Vec<UserId> },
}

impl NewConversation {
    /// `members` as the edge read them, `None` where an entry is no user id (named
    /// `members[i]`). A direct conversation takes no title (one given is ignored).
    pub fn parse(me: UserId, kind: &str, title: Option<&str>, members: &[Option<UserId>], filter: &WordFilter) -> Result<Self> {
        let mut bad = Vec::new();
        let kind = ConversationKind::parse(kind).map_err(|e| bad.extend(named(e, "kind"))).ok();
        let title = match (kind, title) {
            (Some(ConversationKind::Direct), _) | (None, None) => None,
            (Some(ConversationKind::Group), None) => {
                bad.push(FieldProblem::new("title", "a group needs a title of 1-64 characters"));
                None
            }
            (_, Some(t)) => match Title::parse(t) {
                Ok(t) if !filter.matches(t.as_str()).is_empty() => {
                    bad.push(FieldProblem::new("title", "contains words that are not allowed (含有不允许的词语)"));
                    None
                }
                Ok(t) => Some(t),
                Err(e) => {
                    bad.extend(named(e, "title"));
                    None
                }
            },
        };
        for (i, m) in members.iter().enumerate() {
            if m.is_none() {
                bad.push(FieldProblem::new(format!("members[{i}]"), "must be a user id"));
            }
        }
        let ids: Vec<UserId> = members.iter().flatten().copied().collect();
        if kind == Some(ConversationKind::Direct) && ids.len() == members.len() {
            match ids.as_slice() {
                [other] if *other == me => bad.push(FieldProblem::new("members", "must name another user than yourself")),
                [_] => {}
                _ => bad.push(FieldProblem::new("members", "a direct conversation has exactly one other member")),
            }
        }
        match (kind, title) {
            _ if !bad.is_empty() => Err(CoreError::Fields(bad)),
            (Some(ConversationKind::Group), Some(title)) => Ok(NewConversation::Group { title, members: ids }),
            _ => Ok(NewConversation::Direct(ids[0])),
        }
    }
}

/// The problems of `e`, a parse error of `field`.
fn named(e: CoreError, field: &str) -> Vec<FieldProblem> {
    match e {
        CoreError::Fields(f) => f,
        other => vec![FieldProblem::new(field, other.to_string())],
    }
}

pub struct ChatService {
    store: Arc<dyn Store>,
    committer: Committer,
    bus: Arc<dyn Bus>,
    /// Members per conversation, so that a send needs no query. Filled on first use, dropped on
    /// every membership change; cleared whole past `MEMBER_CACHE_CAP` entries.
    members: DashMap<ConvId, CachedMembers>,
    /// Bumped on every membership change, so that a member list read from storage before a
    /// change is not put in the cache after it.
    members_gen: AtomicU64,
    presence: PresenceRegistry,
    /// Global presence and routing in cluster mode; `None` on the embedded default.
    directory: Option<Arc<dyn PresenceDirectory>>,
    /// Serialises one user's session opens and closes on this node, so that the directory sees
    /// this node's transitions in the order they happened. Striped: a fixed number of locks.
    user_locks: Box<[tokio::sync::Mutex<()>]>,
    max_group: usize,
}

const USER_LOCK_STRIPES: usize = 256;

/// A conversation's members as cached, and whether it is a direct conversation one side of
/// which blocked the other (no sends, no typing).
#[derive(Clone)]
struct CachedMembers {
    list: Arc<[UserId]>,
    blocked: bool,
}

impl ChatService {
    /// `committer` must write to the same `store`.
    pub fn new(store: Arc<dyn Store>, committer: Committer, bus: Arc<dyn Bus>) -> Self {
        Self { store, committer, bus, members: DashMap::new(), members_gen: AtomicU64::new(0), presence: PresenceRegistry::default(), directory: None, user_locks: (0..USER_LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(), max_group: MAX_GROUP_MEMBERS }
    }

    /// Cluster mode: presence is global and this node registers its users in `directory`.
    pub fn with_directory(mut self, directory: Arc<dyn PresenceDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Sets the most members a group may have (at least 2).
    pub fn with_max_group(mut self, max: usize) -> Self {
        self.max_group = max.max(2);
        self
    }

    pub async fn login(&self, identity: &Identity) -> Result<User> {
        let nickname = default_nickname(identity);
        self.store.upsert_user(identity, &nickname, crate::now_ms()).await
    }

    pub async fn user(&self, id: UserId) -> Result<User> {
        self.store.user(id).await?.ok_or_else(|| CoreError::NotFound("user".into()))
    }

    /// Opens the direct conversation or creates the group that `new` asks for.
    pub async fn create(&self, me: UserId, new: NewConversation) -> Result<Conversation> {
        match new {
            NewConversation::Direct(other) => self.open_direct(me, other).await,
            NewConversation::Group { title, members } => self.create_group(me, &title, &members).await,
        }
    }

    pub async fn open_direct(&self, me: UserId, other: UserId) -> Result<Conversation> {
        if me == other {
            return Err(CoreError::Fields(vec![FieldProblem::new("members", "must name another user than yourself")]));
        }
        self.require_users(&[other]).await?;
        let rel = self.relation(me, other).await?;
        let exists = self.store.direct_between(me, other).await?.is_some();
        // `dm_from` decides who may start a direct conversation; one that exists stays open
        // unless a block closes it.
        if rel.blocked || (!exists && !rel.may_dm()) {
            return Err(CoreError::Forbidden("this user does not take direct messages from you".into()));
        }
        self.store.direct_conversation(me, other, crate::now_ms()).await
    }

    async fn relation(&self, me: UserId, other: UserId) -> Result<Relation> {
        let mut r = self.store.relations(me, &[other]).await?;
        r.pop().ok_or_else(|| CoreError::unavailable("relation not answered"))
    }

    /// Refuses adding any of `users` whom `me` may not add to a group (`group_add_from`, blocks).
    async fn check_group_adds(&self, me: UserId, users: &[UserId]) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        let rels = self.store.relations(me, users).await?;
        if let Some((u, _)) = users.iter().zip(&rels).find(|(_, r)| !r.may_add_to_group()) {
            return Err(CoreError::Forbidden(format!("user {u} does not allow you to add them to groups")));
        }
        Ok(())
    }

    /// For each of `users`: whether `me` may see their presence (`presence_to`, blocks). A user
    /// always sees their own.
    pub async fn presence_visible(&self, me: UserId, users: &[UserId]) -> Result<Vec<bool>> {
        let others: Vec<UserId> = users.iter().copied().filter(|u| *u != me).collect();
        let rels = self.store.relations(me, &others).await?;
        let mut rels = rels.into_iter();
        Ok(users
            .iter()
            .map(|u| if *u == me { true } else { rels.next().is_some_and(|r| r.may_see_presence()) })
            .collect())
    }

    /// Whatever the change, a live watch across it stops: if the two may see each other again,
    /// the client's next `presence_subscribe` (after every reconnect) finds it out.
    fn relation_changed_presence(&self, a: UserId, b: UserId) {
        self.bus.publish(Event::PresenceHidden { watcher: a, user: b });
        self.bus.publish(Event::PresenceHidden { watcher: b, user: a });
    }

    /// An account was erased: its sessions end on every node, and the member caches of its
    /// conversations are read again.
    pub async fn account_erased(&self, user: UserId) {
        self.bus.publish(Event::Erased { user });
        let mut before = None;
        loop {
            match self.store.conversations_of(user, before, 500).await {
                Ok(page) => {
                    for s in &page {
                        self.forget_members(s.conversation.id);
                    }
                    if page.len() < 500 {
                        break;
                    }
                    before = page.last().map(|s| s.conversation.id);
                }
                Err(e) => {
                    tracing::warn!(error = %e, %user, "member caches of an erased account not dropped");
                    break;
                }
            }
        }
    }

    /// Whether the user's settings let companion matching propose them.
    pub async fn matchable(&self, me: UserId) -> Result<bool> {
        Ok(self.relation(me, me).await?.target_settings.matchable)
    }

    /// A block between `a` and `b` was made or lifted: their direct conversation (if any) is
    /// read again by every node.
    pub async fn relation_changed(&self, a: UserId, b: UserId) {
        self.relation_changed_presence(a, b);
        match self.store.direct_between(a, b).await {
            Ok(Some(conv)) => self.forget_members(conv),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "direct conversation of a changed relation not found"),
        }
    }

    pub async fn create_group(&self, me: UserId, title: &Title, members: &[UserId]) -> Result<Conversation> {
        let mut all: Vec<UserId> = members.iter().copied().filter(|u| *u != me).collect();
        all.sort();
        all.dedup();
        if all.len() + 1 > self.max_group {
            return Err(CoreError::Fields(vec![FieldProblem::new("members", format!("a group has at most {} members", self.max_group))]));
        }
        self.require_users(&all).await?;
        self.check_group_adds(me, &all).await?;
        self.store.create_group(me, title, &all, crate::now_ms()).await
    }

    /// The conversation if `me` is a member: `not_found` if it does not exist, `forbidden` if I
    /// am not in it (the same answers as sending to it).
    pub async fn conversation(&self, me: UserId, id: ConvId) -> Result<Conversation> {
        match self.store.conversation(id).await? {
            Some(c) if c.members.contains(&me) => Ok(c),
            Some(_) => Err(CoreError::Forbidden("not a member of this conversation".into())),
            None => Err(CoreError::NotFound("conversation".into())),
        }
    }

    pub async fn add_members(&self, me: UserId, id: ConvId, users: &[UserId]) -> Result<Conversation> {
        let conv = self.owned_group(me, id).await?;
        let mut new: Vec<UserId> = users.iter().copied().filter(|u| !conv.members.contains(u)).collect();
        new.sort();
        new.dedup();
        if conv.members.len() + new.len() > self.max_group {
            return Err(CoreError::Fields(vec![FieldProblem::new("members", format!("a group has at most {} members", self.max_group))]));
        }
        self.require_users(&new).await?;
        self.check_group_adds(me, &new).await?;
        self.store.add_members(id, &new, crate::now_ms()).await?;
        self.forget_members(id);
        self.conversation(me, id).await
    }

    /// The owner removes anyone but themself; any member may remove themself (leave).
    pub async fn remove_member(&self, me: UserId, id: ConvId, user: UserId) -> Result<()> {
        let conv = self.conversation(me, id).await?;
        if conv.kind != ConversationKind::Group {
            return Err(CoreError::invalid("members of a direct conversation cannot change"));
        }
        let is_owner = conv.owner == Some(me);
        if user != me && !is_owner {
            return Err(CoreError::Forbidden("only the owner removes other members".into()));
        }
        if user == me && is_owner {
            return Err(CoreError::invalid("the owner cannot leave the group"));
        }
        let removed = self.store.remove_member(id, user).await?;
        self.forget_members(id);
        if !removed {
            return Err(CoreError::NotFound("member".into()));
        }
        Ok(())
    }

    /// My conversations, newest first, those with an id below `before`, at most `limit`.
    pub async fn conversations(&self, me: UserId, before: Option<ConvId>, limit: u32) -> Result<Vec<ConversationSummary>> {
        self.store.conversations_of(me, before, limit).await
    }

    /// Stores a message and returns it with its seq once it is durable. A resend with the same
    /// cmid returns the original and delivers nothing again.
    pub async fn send(
        &self,
        me: UserId,
        origin: Option<SessionId>,
        conv: ConvId,
        cmid: ClientMsgId,
        body: MessageBody,
    ) -> Result<Appended> {
        let members = self.members_to_write(me, conv).await?;
        let appended = self
            .committer
            .append(NewMessage { conv, from: me, cmid, body, members }, origin)
            .await?;
        if appended.message().conv != conv {
            return Err(CoreError::Conflict("cmid already used in another conversation".into()));
        }
        Ok(appended)
    }

    /// The sender recalls a message within `RECALL_WINDOW_MS` of sending it: history shows a
    /// `Recalled` tombstone and the members are told. `forbidden` for someone else's message
    /// (or a conversation I am not in), `conflict` past the window or for a deleted message,
    /// `not_found` for no such message; a repeated recall succeeds and tells nobody again.
    pub async fn recall(&self, me: UserId, conv: ConvId, seq: Seq) -> Result<()> {
        let members = self.members_of(me, conv).await?;
        let now = crate::now_ms();
        match self.store.recall(conv, seq, me, now - RECALL_WINDOW_MS, now).await? {
            crate::ports::Recall::Done => {
                self.bus.publish(Event::MessageDeleted { members, conv, seq, recalled: true });
                Ok(())
            }
            crate::ports::Recall::Already => Ok(()),
            crate::ports::Recall::NoSuchMessage => Err(CoreError::NotFound("message".into())),
            crate::ports::Recall::NotSender => Err(CoreError::Forbidden("only its sender recalls a message".into())),
            crate::ports::Recall::TooLate => {
                Err(CoreError::Conflict("a message can be recalled only within 2 minutes of sending (超过2分钟无法撤回)".into()))
            }
        }
    }

    /// Messages after `after`, and whether more follow.
    pub async fn history(&self, me: UserId, conv: ConvId, after: Seq, limit: u32) -> Result<(Vec<Message>, bool)> {
        self.members_of(me, conv).await?;
        let limit = limit.clamp(1, MAX_HISTORY_LIMIT);
        let mut page = self.store.history(conv, after, limit + 1).await?;
        let more = page.len() > limit as usize;
        page.truncate(limit as usize);
        Ok((page, more))
    }

    /// Moves my read position and tells the members.
    pub async fn read(&self, me: UserId, conv: ConvId, seq: Seq) -> Result<Seq> {
        let members = self.members_of(me, conv).await?;
        let now = self.store.mark_read(conv, me, seq).await?;
        self.bus.publish(Event::Read { members, conv, user: me, seq: now });
        Ok(now)
    }

    pub async fn typing(&self, me: UserId, conv: ConvId) -> Result<()> {
        let members = self.members_to_write(me, conv).await?;
        self.bus.publish(Event::Typing { members, conv, user: me });
        Ok(())
    }

    /// A session of `user` opened on this node. Returns once events for the user reach this
    /// node (in cluster mode: once the directory has it; if the directory is unreachable the
    /// session is served locally and the bus tells it to resync when it is back).
    pub async fn session_opened(&self, user: UserId) {
        let Some(dir) = &self.directory else {
            if let Some(state) = self.presence.session_opened(user) {
                self.publish_presence(user, state);
            }
            return;
        };
        let _turn = self.user_lock(user).lock().await;
        if self.presence.session_opened(user).is_some() {
            match dir.node_online(user).await {
                Ok(true) => self.publish_presence(user, PresenceState { online: true, last_seen: None }),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, %user, "presence directory unreachable at session open"),
            }
        }
    }

    /// A session of `user` closed. True if the user is now offline (everywhere, in cluster mode).
    pub async fn session_closed(&self, user: UserId) -> bool {
        let now = crate::now_ms();
        let Some(dir) = &self.directory else {
            if let Some(state) = self.presence.session_closed(user, now) {
                self.store_last_seen(user, now).await;
                self.publish_presence(user, state);
                return true;
            }
            return false;
        };
        let _turn = self.user_lock(user).lock().await;
        if self.presence.session_closed(user, now).is_some() {
            match dir.node_offline(user).await {
                Ok(true) => {
                    self.store_last_seen(user, now).await;
                    self.publish_presence(user, PresenceState { online: false, last_seen: Some(now) });
                    return true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, %user, "presence directory unreachable at session close"),
            }
        }
        false
    }

    async fn store_last_seen(&self, user: UserId, now: i64) {
        if let Err(e) = self.store.set_last_seen(user, now).await {
            tracing::warn!(error = %e, %user, "last_seen not stored");
        }
    }

    fn user_lock(&self, user: UserId) -> &tokio::sync::Mutex<()> {
        &self.user_locks[(user.get() as u64 as usize) % self.user_locks.len()]
    }

    /// A session of this node watches `user`'s presence (see `Bus::watch`).
    pub fn watch(&self, user: UserId) -> crate::ports::Ready {
        self.bus.watch(user)
    }

    pub fn unwatch(&self, user: UserId) {
        self.bus.unwatch(user)
    }

    /// The user's presence: online if they have a session here or (cluster mode) on any node.
    pub async fn presence(&self, user: UserId) -> Result<PresenceState> {
        let mut online = self.presence.is_online(user);
        if !online {
            if let Some(dir) = &self.directory {
                online = dir.online(user).await.unwrap_or(false);
            }
        }
        if online {
            return Ok(PresenceState { online: true, last_seen: None });
        }
        let last_seen = self.store.user(user).await?.and_then(|u| u.last_seen);
        Ok(PresenceState { online: false, last_seen })
    }

    /// Another node changed the members of `conv`: drop what this node cached of them.
    pub fn members_changed_elsewhere(&self, conv: ConvId) {
        self.members_gen.fetch_add(1, Ordering::SeqCst);
        self.members.remove(&conv);
    }

    /// Whether the user has a session on this node now.
    pub fn is_online(&self, user: UserId) -> bool {
        self.presence.is_online(user)
    }

    pub fn online_users(&self) -> usize {
        self.presence.online_users()
    }

    fn publish_presence(&self, user: UserId, state: PresenceState) {
        self.bus.publish(Event::Presence { user, online: state.online, last_seen: state.last_seen });
    }

    /// The member list of `conv` if `me` is in it: `not_found` for a conversation that does not
    /// exist, `forbidden` for one I am not a member of.
    async fn members_of(&self, me: UserId, conv: ConvId) -> Result<Arc<[UserId]>> {
        Ok(self.cached_members(me, conv).await?.list)
    }

    /// As `members_of`, for sending and typing: `forbidden` in a direct conversation one side
    /// of which blocked the other.
    async fn members_to_write(&self, me: UserId, conv: ConvId) -> Result<Arc<[UserId]>> {
        let m = self.cached_members(me, conv).await?;
        if m.blocked {
            return Err(CoreError::Forbidden("you cannot send to this user".into()));
        }
        Ok(m.list)
    }

    async fn cached_members(&self, me: UserId, conv: ConvId) -> Result<CachedMembers> {
        let members = match self.members.get(&conv) {
            Some(m) => m.clone(),
            None => {
                let gen = self.members_gen.load(Ordering::SeqCst);
                let list = self.store.members(conv).await?;
                if list.is_empty() {
                    return Err(CoreError::NotFound("conversation".into()));
                }
                // A two-member conversation may be the pair's direct one: then a block closes it.
                let blocked = if let [a, b] = list[..] {
                    self.store.direct_between(a, b).await? == Some(conv) && self.relation(a, b).await?.blocked
                } else {
                    false
                };
                let entry = CachedMembers { list: list.into(), blocked };
                if self.members.len() >= MEMBER_CACHE_CAP {
                    self.members.clear();
                }
                // Cache only if no membership changed while we read; otherwise use it this once.
                if self.members_gen.load(Ordering::SeqCst) == gen {
                    self.members.insert(conv, entry.clone());
                }
                entry
            }
        };
        if members.list.contains(&me) {
            Ok(members)
        } else {
            Err(CoreError::Forbidden("not a member of this conversation".into()))
        }
    }

    fn forget_members(&self, id: ConvId) {
        self.members_changed_elsewhere(id);
        self.bus.publish(Event::MembersChanged { conv: id });
    }

    async fn owned_group(&self, me: UserId, id: ConvId) -> Result<Conversation> {
        let conv = self.conversation(me, id).await?;
        if conv.kind != ConversationKind::Group {
            return Err(CoreError::invalid("members of a direct conversation cannot change"));
        }
        if conv.owner != Some(me) {
            return Err(CoreError::Forbidden("only the owner changes members".into()));
        }
        Ok(conv)
    }

    async fn require_users(&self, ids: &[UserId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let found = self.store.existing_users(ids).await?;
        match ids.iter().find(|u| !found.contains(u)) {
            Some(missing) => Err(CoreError::NotFound(format!("user {missing}"))),
            None => Ok(()),
        }
    }
}

fn default_nickname(identity: &Identity) -> String {
    let tail: String = identity.subject.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("旅行者{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: i64) -> UserId {
        UserId::new(n).unwrap()
    }

    fn named(r: Result<NewConversation>) -> Vec<String> {
        match r {
            Err(CoreError::Fields(f)) => f.into_iter().map(|p| p.field).collect(),
            other => panic!("not a list of fields: {other:?}"),
        }
    }

    #[test]
    fn a_new_conversation_names_every_bad_field_and_screens_the_title() {
        let f = WordFilter::new(vec!["赌博".into()]).unwrap();
        let me = u(1);
        assert_eq!(NewConversation::parse(me, "direct", None, &[Some(u(2))], &f), Ok(NewConversation::Direct(u(2))));
        assert_eq!(
            NewConversation::parse(me, "group", Some(" 大理 "), &[Some(u(2)), Some(u(3))], &f),
            Ok(NewConversation::Group { title: Title::parse("大理").unwrap(), members: vec![u(2), u(3)] })
        );
        assert_eq!(named(NewConversation::parse(me, "group", Some("一起赌博"), &[], &f)), vec!["title"]);
        assert_eq!(named(NewConversation::parse(me, "group", None, &[], &f)), vec!["title"]);
        assert_eq!(named(NewConversation::parse(me, "group", Some(&"长".repeat(65)), &[], &f)), vec!["title"]);
        assert_eq!(named(NewConversation::parse(me, "channel", Some("赌博"), &[None, Some(u(2))], &f)), vec!["kind", "title", "members[0]"]);
        assert_eq!(named(NewConversation::parse(me, "direct", None, &[], &f)), vec!["members"]);
        assert_eq!(named(NewConversation::parse(me, "direct", None, &[Some(u(2)), Some(u(3))], &f)), vec!["members"]);
        assert_eq!(named(NewConversation::parse(me, "direct", None, &[Some(me)], &f)), vec!["members"]);
        assert_eq!(named(NewConversation::parse(me, "direct", None, &[None], &f)), vec!["members[0]"]);
    }
}
