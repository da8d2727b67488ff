//! `MemoryStore`: every store port in memory, for the domain's tests and for examples. It keeps
//! the same promises as the SQL stores (seq without gaps, idempotent cmid, atomic batches) but
//! nothing survives the process.

use crate::error::{CoreError, Result};
use crate::ids::{ClientMsgId, ConvId, Seq, UserId};
use crate::model::*;
use crate::ports::{ConversationStore, MessageStore, UserStore};
use crate::users::{Block, Relation, RelationStore, Settings};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    users: BTreeMap<UserId, User>,
    identities: HashMap<(String, String), UserId>,
    convs: BTreeMap<ConvId, Conversation>,
    direct: HashMap<(UserId, UserId), ConvId>,
    read: HashMap<(ConvId, UserId), Seq>,
    messages: BTreeMap<(ConvId, Seq), Message>,
    by_cmid: HashMap<(UserId, ClientMsgId), (ConvId, Seq)>,
    settings: HashMap<UserId, Settings>,
    blocks: std::collections::BTreeSet<(UserId, UserId)>,
    next_id: i64,
}

/// One mutex over everything: simple, and tests are small. Never held across an await.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// When set, every call fails with `unavailable` (to test outage handling).
    pub fail: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CoreError::unavailable("memory store switched off"));
        }
        Ok(self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl MemoryStore {
    /// Sets a user's privacy settings (the memory store has no `AccountStore`).
    pub fn set_settings(&self, user: UserId, settings: Settings) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).settings.insert(user, settings);
    }
}

#[async_trait]
impl RelationStore for MemoryStore {
    async fn block(&self, me: UserId, other: UserId, _now: i64) -> Result<bool> {
        let mut g = self.lock()?;
        if !g.users.contains_key(&other) {
            return Ok(false);
        }
        g.blocks.insert((me, other));
        Ok(true)
    }
    async fn unblock(&self, me: UserId, other: UserId) -> Result<bool> {
        Ok(self.lock()?.blocks.remove(&(me, other)))
    }
    async fn blocks(&self, me: UserId, after: Option<UserId>, limit: u32) -> Result<Vec<Block>> {
        let g = self.lock()?;
        Ok(g.blocks
            .iter()
            .filter(|(a, b)| *a == me && after.is_none_or(|x| *b > x))
            .take(limit as usize)
            .map(|(_, b)| Block { user: *b, at: 0 })
            .collect())
    }
    async fn relations(&self, actor: UserId, targets: &[UserId]) -> Result<Vec<Relation>> {
        let g = self.lock()?;
        Ok(targets
            .iter()
            .map(|t| Relation {
                target_settings: g.settings.get(t).copied().unwrap_or_default(),
                blocked: g.blocks.contains(&(actor, *t)) || g.blocks.contains(&(*t, actor)),
                contacts: g.convs.values().any(|c| c.members.contains(&actor) && c.members.contains(t)),
            })
            .collect())
    }
    async fn direct_between(&self, a: UserId, b: UserId) -> Result<Option<ConvId>> {
        Ok(self.lock()?.direct.get(&(a.min(b), a.max(b))).copied())
    }
}

impl Inner {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
    fn new_conv(&mut self, kind: ConversationKind, title: Option<String>, owner: Option<UserId>, members: Vec<UserId>, now: i64) -> Conversation {
        let id = ConvId::new(self.next()).expect("positive");
        let c = Conversation { id, kind, title, owner, created_at: now, last_seq: Seq::ZERO, members };
        self.convs.insert(id, c.clone());
        c
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn upsert_user(&self, identity: &Identity, nickname: &str, now: i64) -> Result<User> {
        let mut g = self.lock()?;
        let key = (identity.provider.to_owned(), identity.subject.clone());
        if let Some(id) = g.identities.get(&key) {
            return Ok(g.users[id].clone());
        }
        let id = UserId::new(g.next()).expect("positive");
        let u = User { id, provider: identity.provider.into(), nickname: nickname.into(), created_at: now, last_seen: None, role: Role::None, banned: false, erased: false };
        g.identities.insert(key, id);
        g.users.insert(id, u.clone());
        Ok(u)
    }
    async fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.lock()?.users.get(&id).cloned())
    }
    async fn existing_users(&self, ids: &[UserId]) -> Result<Vec<UserId>> {
        let g = self.lock()?;
        Ok(ids.iter().copied().filter(|u| g.users.contains_key(u)).collect())
    }
    async fn set_last_seen(&self, id: UserId, ts: i64) -> Result<()> {
        if let Some(u) = self.lock()?.users.get_mut(&id) {
            u.last_seen = Some(ts);
        }
        Ok(())
    }
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn direct_conversation(&self, a: UserId, b: UserId, now: i64) -> Result<Conversation> {
        let mut g = self.lock()?;
        let key = (a.min(b), a.max(b));
        if let Some(id) = g.direct.get(&key) {
            return Ok(g.convs[id].clone());
        }
        let c = g.new_conv(ConversationKind::Direct, None, None, vec![key.0, key.1], now);
        g.direct.insert(key, c.id);
        Ok(c)
    }
    async fn create_group(&self, owner: UserId, title: &Title, members: &[UserId], now: i64) -> Result<Conversation> {
        let mut g = self.lock()?;
        let mut all = vec![owner];
        all.extend(members.iter().copied().filter(|m| *m != owner));
        Ok(g.new_conv(ConversationKind::Group, Some(title.as_str().into()), Some(owner), all, now))
    }
    async fn conversation(&self, id: ConvId) -> Result<Option<Conversation>> {
        Ok(self.lock()?.convs.get(&id).cloned())
    }
    async fn members(&self, id: ConvId) -> Result<Vec<UserId>> {
        Ok(self.lock()?.convs.get(&id).map(|c| c.members.clone()).unwrap_or_default())
    }
    async fn add_members(&self, id: ConvId, users: &[UserId], _now: i64) -> Result<()> {
        let mut g = self.lock()?;
        let c = g.convs.get_mut(&id).ok_or_else(|| CoreError::NotFound("conversation".into()))?;
        for u in users {
            if !c.members.contains(u) {
                c.members.push(*u);
            }
        }
        Ok(())
    }
    async fn remove_member(&self, id: ConvId, user: UserId) -> Result<bool> {
        let mut g = self.lock()?;
        let Some(c) = g.convs.get_mut(&id) else { return Ok(false) };
        let before = c.members.len();
        c.members.retain(|m| *m != user);
        Ok(c.members.len() < before)
    }
    async fn conversations_of(&self, user: UserId, before: Option<ConvId>, limit: u32) -> Result<Vec<ConversationSummary>> {
        let g = self.lock()?;
        Ok(g.convs
            .values()
            .rev()
            .filter(|c| c.members.contains(&user) && before.is_none_or(|b| c.id < b))
            .take(limit as usize)
            .map(|c| ConversationSummary {
                conversation: c.clone(),
                read_seq: g.read.get(&(c.id, user)).copied().unwrap_or_default(),
            })
            .collect())
    }
    async fn mark_read(&self, id: ConvId, user: UserId, seq: Seq) -> Result<Seq> {
        let mut g = self.lock()?;
        let last = g.convs.get(&id).map(|c| c.last_seq).unwrap_or_default();
        let entry = g.read.entry((id, user)).or_default();
        *entry = (*entry).max(seq.min(last));
        Ok(*entry)
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn recall(&self, conv: ConvId, seq: Seq, sender: UserId, sent_after: i64, _now: i64) -> Result<crate::ports::Recall> {
        use crate::ports::Recall;
        let mut g = self.lock()?;
        let Some(m) = g.messages.get_mut(&(conv, seq)) else { return Ok(Recall::NoSuchMessage) };
        Ok(match (&m.body, m.from == sender) {
            (_, false) => Recall::NotSender,
            (MessageBody::Recalled, true) => Recall::Already,
            (MessageBody::Deleted, true) => Recall::TooLate,
            (MessageBody::Text(_), true) if m.ts < sent_after => Recall::TooLate,
            (MessageBody::Text(_), true) => {
                m.body = MessageBody::Recalled;
                Recall::Done
            }
        })
    }

    async fn append(&self, batch: &[NewMessage], now: i64) -> Result<Vec<Result<Appended>>> {
        let mut g = self.lock()?;
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            let key = (m.from, m.cmid.clone());
            if let Some(at) = g.by_cmid.get(&key) {
                out.push(Ok(Appended::Duplicate(g.messages[at].clone())));
                continue;
            }
            let Some(conv) = g.convs.get_mut(&m.conv) else {
                out.push(Err(CoreError::NotFound("conversation".into())));
                continue;
            };
            conv.last_seq = conv.last_seq.next();
            let seq = conv.last_seq;
            let msg = Message { conv: m.conv, seq, from: m.from, cmid: m.cmid.clone(), ts: now, body: m.body.clone() };
            g.by_cmid.insert(key, (m.conv, seq));
            g.messages.insert((m.conv, seq), msg.clone());
            out.push(Ok(Appended::New(msg)));
        }
        Ok(out)
    }
    async fn history(&self, conv: ConvId, after: Seq, limit: u32) -> Result<Vec<Message>> {
        let g = self.lock()?;
        Ok(g.messages
            .range((conv, after.next())..=(conv, Seq::new(u64::MAX)))
            .take(limit as usize)
            .map(|(_, m)| m.clone())
            .collect())
    }
}
