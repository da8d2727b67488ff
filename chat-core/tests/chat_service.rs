//! The chat use cases over the in-memory store and the local bus.

use jiebanke_chat_core::bus::LocalBus;
use jiebanke_chat_core::chat::ChatService;
use jiebanke_chat_core::commit::{CommitConfig, Committer};
use jiebanke_chat_core::memory::MemoryStore;
use jiebanke_chat_core::ports::{Event, EventSink};
use jiebanke_chat_core::*;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);
impl EventSink for Recorder {
    fn deliver(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

struct World {
    chat: Arc<ChatService>,
    store: Arc<MemoryStore>,
    events: Arc<Recorder>,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::default());
    let bus = Arc::new(LocalBus::new());
    let events = Arc::new(Recorder::default());
    bus.attach(events.clone());
    let (committer, _) = Committer::spawn(store.clone(), bus.clone(), CommitConfig { max_batch: 16, queue: 64 });
    World { chat: Arc::new(ChatService::new(store.clone(), committer, bus)), store, events }
}

async fn user(chat: &ChatService, code: &str) -> UserId {
    chat.login(&Identity { provider: "dev", subject: code.into() }).await.unwrap().id
}

/// Settings that let anyone add the user to a group and see their presence.
fn open_settings() -> users::Settings {
    users::Settings { group_add_from: users::Audience::Everyone, presence_to: users::Audience::Everyone, ..Default::default() }
}

#[tokio::test]
async fn privacy_settings_and_blocks_are_enforced() {
    use jiebanke_chat_core::users::{Audience, RelationStore, Settings};
    let w = world();
    let a = user(&w.chat, "pa").await;
    let b = user(&w.chat, "pb").await;
    let c = user(&w.chat, "pc").await;
    // Defaults: anyone may DM, only contacts may add to groups or see presence.
    let t = Title::parse("g").unwrap();
    assert!(matches!(w.chat.create_group(a, &t, &[b]).await, Err(CoreError::Forbidden(_))));
    assert_eq!(w.chat.presence_visible(a, &[a, b]).await.unwrap(), vec![true, false]);
    let dm = w.chat.open_direct(a, b).await.unwrap().id;
    // Now contacts: groups and presence open up.
    assert_eq!(w.chat.presence_visible(a, &[b]).await.unwrap(), vec![true]);
    let g = w.chat.create_group(a, &t, &[b]).await.unwrap().id;
    // dm_from nobody: no new direct conversation, but the existing one stays.
    w.store.set_settings(c, Settings { dm_from: Audience::Nobody, ..Default::default() });
    assert!(matches!(w.chat.open_direct(a, c).await, Err(CoreError::Forbidden(_))));
    assert_eq!(w.chat.open_direct(b, a).await.unwrap().id, dm);
    // A block closes the direct conversation both ways, and groups and presence.
    w.chat.send(b, None, dm, cmid("before"), text("hi")).await.unwrap();
    assert!(w.store.block(b, a, 1).await.unwrap());
    w.chat.relation_changed(b, a).await;
    assert!(matches!(w.chat.send(a, None, dm, cmid("x1"), text("hi")).await, Err(CoreError::Forbidden(_))));
    assert!(matches!(w.chat.send(b, None, dm, cmid("x2"), text("hi")).await, Err(CoreError::Forbidden(_))));
    assert!(matches!(w.chat.typing(a, dm).await, Err(CoreError::Forbidden(_))));
    assert!(matches!(w.chat.open_direct(a, b).await, Err(CoreError::Forbidden(_))));
    assert_eq!(w.chat.presence_visible(a, &[b]).await.unwrap(), vec![false]);
    let g2 = w.chat.create_group(a, &t, &[]).await.unwrap().id;
    assert!(matches!(w.chat.add_members(a, g2, &[b]).await, Err(CoreError::Forbidden(_))));
    // A group both are in still works (a block is about the pair, not their groups).
    w.chat.send(a, None, g, cmid("in-group"), text("hi")).await.unwrap();
    // Lifted: the direct conversation opens again.
    assert!(w.store.unblock(b, a).await.unwrap());
    w.chat.relation_changed(b, a).await;
    w.chat.send(a, None, dm, cmid("after"), text("hi")).await.unwrap();
}

fn text(s: &str) -> MessageBody {
    MessageBody::Text(MessageText::parse(s).unwrap())
}

fn cmid(s: &str) -> ClientMsgId {
    ClientMsgId::parse(s).unwrap()
}

#[tokio::test]
async fn same_code_same_user_and_same_pair_same_direct() {
    let w = world();
    let a = user(&w.chat, "alice").await;
    assert_eq!(a, user(&w.chat, "alice").await);
    let b = user(&w.chat, "bob").await;
    let c1 = w.chat.open_direct(a, b).await.unwrap();
    let c2 = w.chat.open_direct(b, a).await.unwrap();
    assert_eq!(c1.id, c2.id);
    assert!(w.chat.open_direct(a, a).await.is_err());
    assert!(matches!(w.chat.open_direct(a, UserId::new(999).unwrap()).await, Err(CoreError::NotFound(_))));
}

#[tokio::test]
async fn seq_is_dense_and_resend_is_idempotent() {
    let w = world();
    let a = user(&w.chat, "a").await;
    let b = user(&w.chat, "b").await;
    let conv = w.chat.open_direct(a, b).await.unwrap().id;
    // Many concurrent sends: seqs 1..=50 exactly once each.
    let mut tasks = vec![];
    for i in 0..50 {
        let chat = w.chat.clone();
        tasks.push(tokio::spawn(async move {
            chat.send(a, None, conv, cmid(&format!("m{i}")), text("hi")).await.unwrap().message().seq.get()
        }));
    }
    let mut seqs = vec![];
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    // Resend of m7: same seq, marked duplicate, not delivered again.
    let delivered_before = w.events.0.lock().unwrap().len();
    let again = w.chat.send(a, None, conv, cmid("m7"), text("hi")).await.unwrap();
    assert!(matches!(again, Appended::Duplicate(_)));
    assert_eq!(w.events.0.lock().unwrap().len(), delivered_before);
    // Published in seq order.
    let order: Vec<u64> = w.events.0.lock().unwrap().iter().filter_map(|e| match e {
        Event::Message { message, .. } => Some(message.seq.get()),
        _ => None,
    }).collect();
    assert_eq!(order, (1..=50).collect::<Vec<_>>());
    let (page, more) = w.chat.history(b, conv, Seq::new(45), 10).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq.get()).collect::<Vec<_>>(), vec![46, 47, 48, 49, 50]);
    assert!(!more);
    let (page, more) = w.chat.history(b, conv, Seq::ZERO, 10).await.unwrap();
    assert_eq!(page.len(), 10);
    assert!(more);
}

#[tokio::test]
async fn non_members_are_forbidden_and_unknown_is_not_found() {
    let w = world();
    let a = user(&w.chat, "a").await;
    let b = user(&w.chat, "b").await;
    let c = user(&w.chat, "c").await;
    let conv = w.chat.open_direct(a, b).await.unwrap().id;
    assert!(matches!(w.chat.send(c, None, conv, cmid("x"), text("hi")).await, Err(CoreError::Forbidden(_))));
    assert!(matches!(w.chat.history(c, conv, Seq::ZERO, 10).await, Err(CoreError::Forbidden(_))));
    let nowhere = ConvId::new(424242).unwrap();
    assert!(matches!(w.chat.send(a, None, nowhere, cmid("x"), text("hi")).await, Err(CoreError::NotFound(_))));
}

#[tokio::test]
async fn group_owner_manages_members() {
    let w = world();
    let owner = user(&w.chat, "o").await;
    let m1 = user(&w.chat, "m1").await;
    let m2 = user(&w.chat, "m2").await;
    for m in [m1, m2] {
        w.store.set_settings(m, open_settings());
    }
    let g = w.chat.create_group(owner, &Title::parse("大理").unwrap(), &[m1]).await.unwrap();
    assert_eq!(g.members.len(), 2);
    assert!(matches!(w.chat.add_members(m1, g.id, &[m2]).await, Err(CoreError::Forbidden(_))));
    let g2 = w.chat.add_members(owner, g.id, &[m2]).await.unwrap();
    assert_eq!(g2.members.len(), 3);
    // m2 can now send (the member cache was refreshed).
    w.chat.send(m2, None, g.id, cmid("hello"), text("hi")).await.unwrap();
    assert!(matches!(w.chat.remove_member(m1, g.id, m2).await, Err(CoreError::Forbidden(_))));
    w.chat.remove_member(owner, g.id, m2).await.unwrap();
    assert!(matches!(w.chat.send(m2, None, g.id, cmid("again"), text("hi")).await, Err(CoreError::Forbidden(_))));
    w.chat.remove_member(m1, g.id, m1).await.unwrap(); // leave
    assert!(w.chat.remove_member(owner, g.id, owner).await.is_err());
}

#[tokio::test]
async fn read_moves_forward_only_and_is_capped() {
    let w = world();
    let a = user(&w.chat, "a").await;
    let b = user(&w.chat, "b").await;
    let conv = w.chat.open_direct(a, b).await.unwrap().id;
    for i in 0..3 {
        w.chat.send(a, None, conv, cmid(&format!("r{i}")), text("x")).await.unwrap();
    }
    assert_eq!(w.chat.read(b, conv, Seq::new(2)).await.unwrap(), Seq::new(2));
    assert_eq!(w.chat.read(b, conv, Seq::new(1)).await.unwrap(), Seq::new(2));
    assert_eq!(w.chat.read(b, conv, Seq::new(99)).await.unwrap(), Seq::new(3));
}

#[tokio::test]
async fn storage_outage_is_unavailable_never_an_ack() {
    let w = world();
    let a = user(&w.chat, "a").await;
    let b = user(&w.chat, "b").await;
    let conv = w.chat.open_direct(a, b).await.unwrap().id;
    w.chat.send(a, None, conv, cmid("warm"), text("x")).await.unwrap();
    w.store.fail.store(true, Ordering::SeqCst);
    assert!(matches!(w.chat.send(a, None, conv, cmid("lost?"), text("x")).await, Err(CoreError::Unavailable(_))));
    w.store.fail.store(false, Ordering::SeqCst);
    let m = w.chat.send(a, None, conv, cmid("lost?"), text("x")).await.unwrap();
    assert_eq!(m.message().seq, Seq::new(2), "the failed send took no seq");
}

#[tokio::test]
async fn presence_follows_sessions() {
    let w = world();
    let a = user(&w.chat, "a").await;
    w.chat.session_opened(a).await;
    w.chat.session_opened(a).await;
    assert!(w.chat.presence(a).await.unwrap().online);
    w.chat.session_closed(a).await;
    assert!(w.chat.presence(a).await.unwrap().online);
    w.chat.session_closed(a).await;
    let p = w.chat.presence(a).await.unwrap();
    assert!(!p.online);
    assert!(p.last_seen.is_some());
    let changes = w.events.0.lock().unwrap().iter().filter(|e| matches!(e, Event::Presence { .. })).count();
    assert_eq!(changes, 2, "one online, one offline");
}
