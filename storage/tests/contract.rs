//! The store contract, run against the real engines: SQLite in a temp dir and MariaDB/MySQL in a
//! database of its own (skipped with a loud SKIPPED line when no server answers, unless
//! `JBK_REQUIRE_SERVICES=1`, as in `.ci/run`).

use jiebanke_chat_core::ports::{AccessStore, AlertStore, ConversationStore, MessageStore, ModerationStore, OrderStore, OutboxStore, RelayFn, UserStore};
use jiebanke_chat_core::audit::{Actor, AuditAction, AuditLog, NewAudit};
use jiebanke_chat_core::*;
use jiebanke_storage::testing::TestMySql;
use jiebanke_storage::SqlStore;
use std::sync::Arc;

struct Backend {
    store: SqlStore,
    _mysql: Option<TestMySql>,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sqlite() -> Backend {
    let dir = std::env::temp_dir().join(format!("jbk-store-{:016x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("jbk.db").display());
    Backend { store: SqlStore::connect(&url).await.unwrap(), _mysql: None, _dir: Some(TempDir(dir)) }
}

async fn mysql() -> Option<Backend> {
    let db = TestMySql::create().await?;
    let store = SqlStore::connect(&db.url).await.unwrap();
    Some(Backend { store, _mysql: Some(db), _dir: None })
}

fn rand_u64() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    t ^ (std::process::id() as u64).rotate_left(32)
}

fn id(s: &str) -> Identity {
    Identity { provider: "dev", subject: s.into() }
}

fn new_msg(conv: ConvId, from: UserId, cmid: &str, text: &str) -> NewMessage {
    NewMessage {
        conv,
        from,
        cmid: ClientMsgId::parse(cmid).unwrap(),
        body: MessageBody::Text(MessageText::parse(text).unwrap()),
        members: Arc::from(vec![from]),
    }
}

async fn users_and_direct(s: &SqlStore) {
    let a = s.upsert_user(&id("alice"), "A", 1).await.unwrap();
    let a2 = s.upsert_user(&id("alice"), "ignored", 2).await.unwrap();
    assert_eq!(a.id, a2.id);
    assert_eq!(a2.nickname, "A");
    let b = s.upsert_user(&id("鲍勃"), "B", 1).await.unwrap();
    // Repeated logins of a known identity consume no id: the next new user comes right after.
    for _ in 0..3 {
        s.upsert_user(&id("alice"), "A", 3).await.unwrap();
        s.upsert_user(&id("鲍勃"), "B", 3).await.unwrap();
    }
    let next = s.upsert_user(&id("next-after-repeats"), "N", 4).await.unwrap();
    assert_eq!(next.id.get(), b.id.get() + 1, "a repeated login consumed an id");
    assert_eq!(b.id.get(), a.id.get() + 1);
    assert_eq!(s.existing_users(&[a.id, b.id, UserId::new(9999).unwrap()]).await.unwrap().len(), 2);
    let c1 = s.direct_conversation(a.id, b.id, 5).await.unwrap();
    let c2 = s.direct_conversation(b.id, a.id, 6).await.unwrap();
    assert_eq!(c1.id, c2.id);
    assert_eq!(c1.kind, ConversationKind::Direct);
    assert_eq!(c1.members.len(), 2);
    // Several pairs at once: the same conversations, new ones made, in order.
    let c = s.upsert_user(&id("c"), "C", 1).await.unwrap();
    let d = s.upsert_user(&id("d"), "D", 1).await.unwrap();
    let many = s.direct_conversations(&[(b.id, a.id), (c.id, d.id), (a.id, c.id), (d.id, c.id)], 7).await.unwrap();
    assert_eq!(many.len(), 4);
    assert_eq!(many[0].id, c1.id);
    assert_eq!(many[1].id, many[3].id, "the same pair twice in one batch: one conversation");
    assert_ne!(many[1].id, many[2].id);
    assert_eq!(many[2].members.len(), 2);
    assert_eq!(s.direct_conversation(c.id, a.id, 8).await.unwrap().id, many[2].id);
    assert!(s.direct_conversations(&[], 9).await.unwrap().is_empty());
    s.set_last_seen(a.id, 77).await.unwrap();
    assert_eq!(s.user(a.id).await.unwrap().unwrap().last_seen, Some(77));
}

async fn append_sequences_and_dedups(s: &SqlStore) {
    let a = s.upsert_user(&id("a"), "A", 1).await.unwrap().id;
    let b = s.upsert_user(&id("b"), "B", 1).await.unwrap().id;
    let c = s.direct_conversation(a, b, 1).await.unwrap().id;
    let g = s.create_group(a, &Title::parse("草原").unwrap(), &[b], 1).await.unwrap().id;
    let batch = vec![
        new_msg(c, a, "1", "你好"),
        new_msg(g, a, "2", "group one"),
        new_msg(c, b, "1", "same cmid, other sender"),
        new_msg(c, a, "1", "repeat inside the batch"),
        new_msg(ConvId::new(987654).unwrap(), a, "3", "nowhere"),
    ];
    let out = s.append(&batch, 100).await.unwrap();
    let seqs: Vec<String> = out
        .iter()
        .map(|r| match r {
            Ok(Appended::New(m)) => format!("new {}", m.seq),
            Ok(Appended::Duplicate(m)) => format!("dup {}", m.seq),
            Err(e) => e.code().to_string(),
        })
        .collect();
    assert_eq!(seqs, vec!["new 1", "new 1", "new 2", "dup 1", "not_found"]);
    // A resend in a later batch is the original.
    let again = s.append(&[new_msg(c, a, "1", "resend"), new_msg(c, a, "4", "next")], 200).await.unwrap();
    match &again[0] {
        Ok(Appended::Duplicate(m)) => {
            assert_eq!(m.seq, Seq::new(1));
            assert_eq!(m.ts, 100);
            assert_eq!(m.body, MessageBody::Text(MessageText::parse("你好").unwrap()));
        }
        other => panic!("expected duplicate, got {other:?}"),
    }
    assert!(matches!(&again[1], Ok(Appended::New(m)) if m.seq == Seq::new(3)));
    let h = s.history(c, Seq::ZERO, 10).await.unwrap();
    assert_eq!(h.iter().map(|m| m.seq.get()).collect::<Vec<_>>(), vec![1, 2, 3]);
    let h = s.history(c, Seq::new(1), 1).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].seq, Seq::new(2));
    // Read position: forward only, capped at last_seq.
    assert_eq!(s.mark_read(c, b, Seq::new(2)).await.unwrap(), Seq::new(2));
    assert_eq!(s.mark_read(c, b, Seq::new(1)).await.unwrap(), Seq::new(2));
    assert_eq!(s.mark_read(c, b, Seq::new(50)).await.unwrap(), Seq::new(3));
    let mine = s.conversations_of(b, None, 100).await.unwrap();
    assert_eq!(mine.len(), 2);
    let direct = mine.iter().find(|x| x.conversation.id == c).unwrap();
    assert_eq!(direct.conversation.last_seq, Seq::new(3));
    assert_eq!(direct.read_seq, Seq::new(3));
}

async fn big_batches_have_dense_seqs(s: &SqlStore) {
    let a = s.upsert_user(&id("x"), "X", 1).await.unwrap().id;
    let b = s.upsert_user(&id("y"), "Y", 1).await.unwrap().id;
    let c = s.direct_conversation(a, b, 1).await.unwrap().id;
    for round in 0..3 {
        let batch: Vec<NewMessage> = (0..250).map(|i| new_msg(c, a, &format!("r{round}-{i}"), "x")).collect();
        let out = s.append(&batch, 1).await.unwrap();
        assert!(out.iter().all(|r| matches!(r, Ok(Appended::New(_)))));
    }
    let mut after = Seq::ZERO;
    let mut n = 0;
    loop {
        let page = s.history(c, after, 200).await.unwrap();
        if page.is_empty() {
            break;
        }
        for m in &page {
            n += 1;
            assert_eq!(m.seq.get(), n, "no gap, no reuse");
        }
        after = page.last().unwrap().seq;
    }
    assert_eq!(n, 750);
}

async fn groups_change_members(s: &SqlStore) {
    let o = s.upsert_user(&id("o"), "O", 1).await.unwrap().id;
    let m = s.upsert_user(&id("m"), "M", 1).await.unwrap().id;
    let g = s.create_group(o, &Title::parse("t").unwrap(), &[], 1).await.unwrap();
    assert_eq!(g.owner, Some(o));
    assert_eq!(g.members, vec![o]);
    s.add_members(g.id, &[m, m], 2).await.unwrap();
    assert_eq!(s.members(g.id).await.unwrap().len(), 2);
    assert!(s.remove_member(g.id, m).await.unwrap());
    assert!(!s.remove_member(g.id, m).await.unwrap());
    assert!(s.conversation(ConvId::new(5555).unwrap()).await.unwrap().is_none());
}

async fn orders_alerts_and_the_outbox(s: &SqlStore) {
    let shop = s.upsert_user(&id("shop"), "S", 1).await.unwrap().id;
    let other = s.upsert_user(&id("other"), "O", 1).await.unwrap().id;
    let new = |item: &str| NewOrder { merchant: shop, buyer: Some(other), item: ItemName::parse(item).unwrap(), amount: AmountFen::new(100).unwrap() };
    let o1 = s.create_paid_order(&new("一束花"), 10).await.unwrap();
    let o2 = s.create_paid_order(&new("两束花"), 11).await.unwrap();
    assert_eq!(s.outbox_counts().await.unwrap().pending, 2);

    // The relay gets the events in order, with their orders; what it reports relayed is gone.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let relay: Arc<RelayFn> = Arc::new(move |evs: Vec<OutboxEvent>| {
        seen2.lock().unwrap().extend(evs.clone());
        Box::pin(async move { Ok(evs.iter().map(|e| (e.id, None)).collect()) })
    });
    assert_eq!(s.relay_outbox(128, relay.as_ref()).await.unwrap(), 2);
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), vec![DurableEvent::OrderPaid(o1.clone()), DurableEvent::OrderPaid(o2.clone())]);
    assert_eq!(s.outbox_counts().await.unwrap().pending, 0);
    assert_eq!(s.relay_outbox(128, relay.as_ref()).await.unwrap(), 0);

    // A failing relay leaves the events where they were.
    let o3 = s.create_paid_order(&new("三束花"), 12).await.unwrap();
    let failing: Arc<RelayFn> = Arc::new(|_| Box::pin(async { Err(CoreError::unavailable("broker down")) }));
    assert!(s.relay_outbox(128, failing.as_ref()).await.is_err());
    assert_eq!(s.outbox_counts().await.unwrap().pending, 1);
    // A dead verdict takes it out of the queue, counted apart.
    let dead: Arc<RelayFn> = Arc::new(|evs: Vec<OutboxEvent>| Box::pin(async move { Ok(evs.iter().map(|e| (e.id, Some("bad".to_owned()))).collect()) }));
    assert_eq!(s.relay_outbox(128, dead.as_ref()).await.unwrap(), 1);
    assert_eq!(s.outbox_counts().await.unwrap(), jiebanke_chat_core::ports::OutboxCounts { pending: 0, dead: 1 });

    // Alerts: idempotent per event, pending oldest first, acked only by their merchant.
    let (e1, e2) = (events[0].id, events[1].id);
    let a2 = s.record_alert(e2, &o2, 20).await.unwrap();
    let a1 = s.record_alert(e1, &o1, 21).await.unwrap();
    let again = s.record_alert(e1, &o1, 99).await.unwrap();
    assert_eq!(again, a1, "the same event, the same alert");
    assert_eq!(a1.order, o1);
    let pending = s.pending_alerts(shop, None, 10).await.unwrap();
    assert_eq!(pending.iter().map(|a| a.id).collect::<Vec<_>>(), vec![e1, e2]);
    use jiebanke_chat_core::ports::SessionCheck;
    assert_eq!(s.session_check(shop).await.unwrap(), SessionCheck { banned: false, erased: false, pending_alerts: 2 });
    assert_eq!(s.session_check(other).await.unwrap(), SessionCheck { banned: false, erased: false, pending_alerts: 0 });
    assert!(s.session_check(UserId::new(999_999).unwrap()).await.unwrap().banned, "an unknown user may not open a session");
    assert!(s.pending_alerts(other, None, 10).await.unwrap().is_empty());
    assert!(!s.ack_alert(other, e1, 30).await.unwrap());
    assert!(s.ack_alert(shop, e1, 30).await.unwrap());
    assert!(s.ack_alert(shop, e1, 31).await.unwrap(), "acking twice is fine");
    assert_eq!(s.pending_alerts(shop, None, 10).await.unwrap(), vec![a2]);
    assert!(s.record_alert(e1, &o1, 40).await.unwrap().acked);
    let _ = o3;
}

async fn moderation_bans_roles_and_tombstones(s: &SqlStore) {
    let a = s.upsert_user(&id("ma"), "A", 1).await.unwrap();
    assert!(a.role == Role::None && !a.banned);
    let c = s.create_group(a.id, &Title::parse("t").unwrap(), &[], 1).await.unwrap().id;
    s.append(&[new_msg(c, a.id, "k1", "坏话")], 2).await.unwrap();
    let item = s
        .create_moderation_item(
            &NewModerationItem { kind: ModerationKind::Flagged, subject: Subject::Message { conv: c, seq: Seq::new(1) }, author: a.id, reporter: None, reason: "r".into(), words: vec!["坏".into()], excerpt: "坏话".into() },
            3,
        )
        .await
        .unwrap();
    assert_eq!(s.moderation_items(&Default::default(), None, 10).await.unwrap(), vec![item.clone()]);
    assert!(s.moderation_items(&Default::default(), Some(item.id), 10).await.unwrap().is_empty());
    assert_eq!(s.outbox_counts().await.unwrap().pending, 1, "the item's event is in the outbox");

    let staff = Actor::new(a.id, Some("192.0.2.1".into()));
    let audit = |action, target: &str| NewAudit::new(&staff, action, target);
    assert!(s.delete_message(c, Seq::new(1), 4, &audit(AuditAction::MessageDelete, "message:1")).await.unwrap());
    assert!(s.delete_message(c, Seq::new(1), 5, &audit(AuditAction::MessageDelete, "message:2")).await.unwrap(), "deleting twice is fine");
    assert!(!s.delete_message(c, Seq::new(2), 5, &audit(AuditAction::MessageDelete, "message:none")).await.unwrap());
    assert_eq!(s.history(c, Seq::ZERO, 10).await.unwrap()[0].body, MessageBody::Deleted);
    assert_eq!(s.message(c, Seq::new(1)).await.unwrap().unwrap().body, MessageBody::Deleted);
    // A resend of the deleted message's cmid finds the tombstone, not a new message.
    let again = s.append(&[new_msg(c, a.id, "k1", "坏话")], 6).await.unwrap();
    assert!(matches!(&again[0], Ok(Appended::Duplicate(m)) if m.body == MessageBody::Deleted));

    assert!(s.set_banned(a.id, true, 7, &audit(AuditAction::UserBan, "user:a")).await.unwrap());
    assert!(s.user(a.id).await.unwrap().unwrap().banned);
    assert!(s.session_check(a.id).await.unwrap().banned);
    assert!(s.set_banned(a.id, false, 8, &audit(AuditAction::UserUnban, "user:a")).await.unwrap());
    assert!(!s.user(a.id).await.unwrap().unwrap().banned);
    assert_eq!(s.set_role(a.id, Role::Operator, 9, &audit(AuditAction::RoleSet, "user:a")).await.unwrap(), Some(Role::None));
    assert_eq!(s.upsert_user(&id("ma"), "A", 9).await.unwrap().role, Role::Operator);
    assert_eq!(s.set_role(a.id, Role::Admin, 10, &audit(AuditAction::RoleSet, "user:a")).await.unwrap(), Some(Role::Operator));
    assert_eq!(s.set_role(UserId::new(999_999).unwrap(), Role::Admin, 10, &audit(AuditAction::RoleSet, "user:none")).await.unwrap(), None);
    assert!(!s.set_banned(UserId::new(999_999).unwrap(), true, 1, &audit(AuditAction::UserBan, "user:none")).await.unwrap());
    s.grant_configured_admin(a.id).await.unwrap();

    // One entry per change that happened, none for those that found nothing; newest first.
    let log = s.audit_entries(None, None, None, 100).await.unwrap();
    let got: Vec<(&str, &str)> = log.iter().map(|e| (e.action.as_str(), e.target.as_str())).collect();
    assert_eq!(got, vec![
        ("role.set", "user:a"), ("role.set", "user:a"), ("user.unban", "user:a"), ("user.ban", "user:a"),
        ("message.delete", "message:2"), ("message.delete", "message:1"),
    ]);
    assert_eq!(log[0].before, Some(serde_json::json!({"role": "operator"})), "the store fills the role before");
    assert_eq!((log[0].actor, log[0].ip.as_deref(), log[0].at), (a.id, Some("192.0.2.1"), 10));
    assert_eq!(s.audit_entries(None, Some(AuditAction::UserBan), None, 10).await.unwrap().len(), 1);
    assert_eq!(s.audit_entries(Some(UserId::new(999_999).unwrap()), None, None, 10).await.unwrap().len(), 0);
    let page = s.audit_entries(None, None, None, 2).await.unwrap();
    let rest = s.audit_entries(None, None, Some(page[1].id), 100).await.unwrap();
    assert_eq!(page.len() + rest.len(), log.len(), "paging newest first neither repeats nor skips");
}

/// The audit entry is written in the change's transaction: a change that fails leaves no entry,
/// an entry that cannot be written undoes its change; and nothing changes or deletes an entry.
async fn audit_entries_share_their_change_transaction(s: &SqlStore) {
    use jiebanke_chat_core::merchants::*;
    let staff_user = s.upsert_user(&id("au-staff"), "S", 1).await.unwrap();
    let victim = s.upsert_user(&id("au-victim"), "V", 1).await.unwrap();
    let staff = Actor::new(staff_user.id, None);
    let count = || async { s.audit_entries(None, None, None, 500).await.unwrap().len() };
    let n0 = count().await;

    // The entry cannot be written (its target is over the schema's 200 characters): the ban
    // does not happen either.
    let too_long = NewAudit::new(&staff, AuditAction::UserBan, "x".repeat(201));
    assert!(s.set_banned(victim.id, true, 2, &too_long).await.is_err());
    assert!(!s.user(victim.id).await.unwrap().unwrap().banned, "the ban was rolled back with its entry");
    assert!(s.set_role(victim.id, Role::Admin, 2, &too_long).await.is_err());
    assert_eq!(s.user(victim.id).await.unwrap().unwrap().role, Role::None);
    assert_eq!(count().await, n0);

    // A decision that cannot happen (decided already) leaves no entry and no second event.
    let app = s
        .create_application(
            &SealedApplication {
                user: victim.id,
                name: "花坊".into(),
                category: Category::Florist,
                license_cipher: "c".into(),
                license_masked: "m".into(),
                license_index: format!("idx-{}", victim.id),
                contact_name: "王".into(),
                phone_cipher: "c".into(),
                phone_masked: "m".into(),
            },
            3,
        )
        .await
        .unwrap();
    let ok = NewAudit::new(&staff, AuditAction::ApplicationApprove, format!("merchant_application:{}", app.id));
    assert!(s.decide(app.id, staff.user, &ApplicationState::Approved, 4, &too_long).await.is_err());
    assert_eq!(s.latest_application(victim.id).await.unwrap().unwrap().state, ApplicationState::Pending, "rolled back with its entry");
    assert!(s.merchant(victim.id).await.unwrap().is_none());
    let events = s.outbox_counts().await.unwrap().pending;
    s.decide(app.id, staff.user, &ApplicationState::Approved, 4, &ok).await.unwrap().unwrap();
    assert_eq!(s.outbox_counts().await.unwrap().pending, events + 1, "merchant.reviewed written with the decision");
    assert_eq!(count().await, n0 + 1);
    let again = s.decide(app.id, staff.user, &ApplicationState::Rejected { reason: "r".into() }, 5, &ok).await;
    assert!(matches!(again, Err(CoreError::Conflict(_))), "{again:?}");
    assert_eq!(count().await, n0 + 1, "a refused change leaves no entry");
    assert_eq!(s.outbox_counts().await.unwrap().pending, events + 1);

    // Nothing changes or deletes an entry, not even SQL.
    for sql in ["UPDATE audit_log SET target = 'forged'", "DELETE FROM audit_log"] {
        let r = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(s.pool()).await;
        assert!(r.is_err(), "{sql} must be refused");
    }
    assert_eq!(count().await, n0 + 1);
}

/// Applications: one open per user (racing submissions too), the review decided once, merchants
/// listed while active, suspensions; leads handled once.
async fn merchants_applications_and_leads(s: &SqlStore) {
    use jiebanke_chat_core::merchants::*;
    let staff = Actor::new(s.upsert_user(&id("mer-staff"), "S", 1).await.unwrap().id, None);
    let audit = |a| NewAudit::new(&staff, a, "t");
    let app = |user: UserId, name: &str, category: Category| SealedApplication {
        user,
        name: name.into(),
        category,
        license_cipher: "lc".into(),
        license_masked: "9135**********0Y43".into(),
        license_index: format!("idx-{user}"),
        contact_name: "王".into(),
        phone_cipher: "pc".into(),
        phone_masked: "138****5678".into(),
    };
    let u1 = s.upsert_user(&id("mer-1"), "M1", 1).await.unwrap().id;
    let u2 = s.upsert_user(&id("mer-2"), "M2", 1).await.unwrap().id;
    // Ten submissions at once from one user: exactly one is stored.
    let first = app(u1, "一号花坊", Category::Florist);
    let tries = futures_util::future::join_all((0..10).map(|_| s.create_application(&first, 2))).await;
    assert_eq!(tries.iter().filter(|r| r.is_ok()).count(), 1, "{tries:?}");
    assert!(tries.iter().all(|r| r.is_ok() || matches!(r, Err(CoreError::Conflict(_)))), "{tries:?}");
    let a1 = s.latest_application(u1).await.unwrap().unwrap();
    assert_eq!((a1.state.clone(), a1.license_masked.as_str()), (ApplicationState::Pending, "9135**********0Y43"));
    assert_eq!(s.sealed_papers(a1.id).await.unwrap(), Some((u1, "lc".into(), "pc".into())));
    let a2 = s.create_application(&app(u2, "二号农场", Category::Farm), 3).await.unwrap();
    assert_eq!(s.applications(Some("pending"), None, 10).await.unwrap().len(), 2);
    assert_eq!(s.applications(Some("pending"), Some(a1.id), 10).await.unwrap(), vec![a2.clone()]);

    let rejected = ApplicationState::Rejected { reason: "执照模糊".into() };
    let r = s.decide(a2.id, staff.user, &rejected, 4, &audit(AuditAction::ApplicationReject)).await.unwrap().unwrap();
    assert_eq!((r.state, r.decided_at, r.decided_by), (rejected.clone(), Some(4), Some(staff.user)));
    // Rejected: the user may apply again.
    let a2b = s.create_application(&app(u2, "二号农场", Category::Farm), 5).await.unwrap();
    let ok = s.decide(a1.id, staff.user, &ApplicationState::Approved, 6, &audit(AuditAction::ApplicationApprove)).await.unwrap().unwrap();
    assert_eq!(ok.state, ApplicationState::Approved);
    assert!(matches!(s.create_application(&app(u1, "again", Category::Florist), 7).await, Err(CoreError::Conflict(_))), "a merchant already");
    s.decide(a2b.id, staff.user, &ApplicationState::Approved, 8, &audit(AuditAction::ApplicationApprove)).await.unwrap().unwrap();
    assert!(s.decide(RecordId::new(999_999).unwrap(), staff.user, &ApplicationState::Approved, 8, &audit(AuditAction::ApplicationApprove)).await.unwrap().is_none());

    let m1 = s.merchant(u1).await.unwrap().unwrap();
    assert_eq!((m1.name.as_str(), m1.category, m1.status.clone(), m1.since, m1.reviews), ("一号花坊", Category::Florist, MerchantStatus::Active, 6, 0));
    let all: Vec<UserId> = s.merchants(None, None, 10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(all, vec![u1, u2]);
    assert_eq!(s.merchants(Some(Category::Farm), None, 10).await.unwrap().len(), 1);
    assert_eq!(s.merchants(None, Some(u1), 10).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), vec![u2]);

    let sus = s.set_suspended(u1, Some("投诉"), 9, &audit(AuditAction::MerchantSuspend)).await.unwrap().unwrap();
    assert_eq!(sus.status, MerchantStatus::Suspended { reason: "投诉".into() });
    assert!(matches!(s.set_suspended(u1, Some("again"), 9, &audit(AuditAction::MerchantSuspend)).await, Err(CoreError::Conflict(_))));
    assert_eq!(s.merchants(None, None, 10).await.unwrap().len(), 1, "a suspended merchant is not listed");
    assert_eq!(s.set_suspended(u1, None, 10, &audit(AuditAction::MerchantReinstate)).await.unwrap().unwrap().status, MerchantStatus::Active);
    assert!(matches!(s.set_suspended(u1, None, 10, &audit(AuditAction::MerchantReinstate)).await, Err(CoreError::Conflict(_))));
    assert!(s.set_suspended(UserId::new(999_999).unwrap(), None, 10, &audit(AuditAction::MerchantReinstate)).await.unwrap().is_none());

    let lead = SealedLead {
        company: "大理花坊".into(),
        contact_name: "王".into(),
        phone_cipher: "pc".into(),
        phone_masked: "138****5678".into(),
        category: Category::Florist,
        city: "大理".into(),
        message: "".into(),
    };
    let l1 = s.create_lead(&lead, 11).await.unwrap();
    let l2 = s.create_lead(&lead, 12).await.unwrap();
    assert_eq!(s.leads(true, None, 10).await.unwrap(), vec![l1.clone(), l2.clone()]);
    let h = s.handle_lead(l1.id, staff.user, "已联系", 13, &audit(AuditAction::LeadHandle)).await.unwrap().unwrap();
    assert_eq!(h.handled, Some(LeadHandled { by: staff.user, note: "已联系".into(), at: 13 }));
    assert!(matches!(s.handle_lead(l1.id, staff.user, "x", 14, &audit(AuditAction::LeadHandle)).await, Err(CoreError::Conflict(_))));
    assert_eq!(s.leads(true, None, 10).await.unwrap(), vec![l2]);
    assert_eq!(s.leads(false, None, 10).await.unwrap().len(), 2);
    assert!(s.handle_lead(RecordId::new(999_999).unwrap(), staff.user, "x", 14, &audit(AuditAction::LeadHandle)).await.unwrap().is_none());
}

async fn accounts_profile_settings_phone_consent(s: &SqlStore) {
    use jiebanke_chat_core::users::*;
    let a = s.upsert_user(&id("acc-a"), "A", 1).await.unwrap().id;
    let b = s.upsert_user(&id("acc-b"), "B", 1).await.unwrap().id;
    let p = s.profile(a).await.unwrap().unwrap();
    assert_eq!((p.nickname.as_str(), p.gender, p.tags.len(), p.erased), ("A", Gender::Unspecified, 0, false));
    let patch = ProfilePatch {
        nickname: Some("小明".into()),
        avatar_url: Some(Some("/uploads/a.jpg".into())),
        gender: Some(Gender::Female),
        birth_year: Some(Some(1990)),
        bio: Some("第一行\n第二行".into()),
        tags: Some(vec!["徒步".into(), "摄影".into()]),
    };
    let p = s.update_profile(a, &patch).await.unwrap().unwrap();
    assert_eq!(s.profile(a).await.unwrap().unwrap(), p, "what was written reads back");
    assert_eq!((p.tags.clone(), p.birth_year, p.bio.as_str()), (vec!["徒步".to_owned(), "摄影".to_owned()], Some(1990), "第一行\n第二行"));
    let p = s.update_profile(a, &ProfilePatch { avatar_url: Some(None), tags: Some(vec![]), ..Default::default() }).await.unwrap().unwrap();
    assert_eq!((p.avatar_url, p.tags.len(), p.nickname.as_str()), (None, 0, "小明"), "only what the patch names changes");
    assert!(s.update_profile(UserId::new(999_999).unwrap(), &ProfilePatch::default()).await.unwrap().is_none());

    assert_eq!(s.settings(a).await.unwrap(), Settings::default());
    let st = s.update_settings(a, &SettingsPatch { presence_to: Some(Audience::Nobody), matchable: Some(false), ..Default::default() }).await.unwrap();
    assert_eq!((st.presence_to, st.matchable, st.dm_from), (Audience::Nobody, false, Audience::Everyone));
    assert_eq!(s.settings(a).await.unwrap(), st);

    let sealed = SealedPhone { cipher: "c1".into(), index: "i1".into(), masked: "138****5678".into() };
    s.set_phone(a, &sealed).await.unwrap();
    s.set_phone(a, &sealed).await.unwrap();
    assert!(matches!(s.set_phone(b, &sealed).await, Err(CoreError::Conflict(_))), "the index is unique");
    assert_eq!(s.sealed_phone(a).await.unwrap().as_deref(), Some("c1"));
    assert_eq!(s.sealed_phone(b).await.unwrap(), None);
    s.set_consent(a, &Consent { version: "v1".into(), at: 5 }).await.unwrap();
    let acc = s.account(a).await.unwrap().unwrap();
    assert_eq!((acc.phone_masked.as_deref(), acc.consent), (Some("138****5678"), Some(Consent { version: "v1".into(), at: 5 })));
}

async fn relations_blocks_and_contacts(s: &SqlStore) {
    use jiebanke_chat_core::users::*;
    let a = s.upsert_user(&id("rel-a"), "A", 1).await.unwrap().id;
    let b = s.upsert_user(&id("rel-b"), "B", 1).await.unwrap().id;
    let c = s.upsert_user(&id("rel-c"), "C", 1).await.unwrap().id;
    let r = s.relations(a, &[b, c]).await.unwrap();
    assert!(r.iter().all(|r| !r.blocked && !r.contacts && r.target_settings == Settings::default()));
    assert_eq!(s.direct_between(a, b).await.unwrap(), None);
    let d = s.direct_conversation(a, b, 1).await.unwrap().id;
    assert_eq!(s.direct_between(b, a).await.unwrap(), Some(d));
    let r = s.relations(a, &[b, c]).await.unwrap();
    assert_eq!((r[0].contacts, r[1].contacts), (true, false));
    assert!(s.block(b, a, 2).await.unwrap());
    assert!(s.block(b, a, 3).await.unwrap(), "blocking again changes nothing");
    assert!(!s.block(b, UserId::new(999_999).unwrap(), 3).await.unwrap());
    assert!(s.relations(a, &[b]).await.unwrap()[0].blocked, "a block counts either way");
    assert!(s.relations(b, &[a]).await.unwrap()[0].blocked);
    s.block(b, c, 4).await.unwrap();
    let page = s.blocks(b, None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    let rest = s.blocks(b, Some(page[0].user), 10).await.unwrap();
    assert_eq!(page.iter().chain(&rest).map(|x| x.user).collect::<Vec<_>>(), vec![a.min(c), a.max(c)]);
    assert!(s.unblock(b, a).await.unwrap());
    assert!(!s.unblock(b, a).await.unwrap());
    assert!(!s.relations(a, &[b]).await.unwrap()[0].blocked);
}

async fn recall_is_decided_once(s: &SqlStore) {
    use jiebanke_chat_core::ports::Recall;
    let a = s.upsert_user(&id("rc-a"), "A", 1).await.unwrap().id;
    let b = s.upsert_user(&id("rc-b"), "B", 1).await.unwrap().id;
    let d = s.direct_conversation(a, b, 1).await.unwrap().id;
    s.append(&[new_msg(d, a, "rc-1", "oops"), new_msg(d, a, "rc-2", "old")], 1_000).await.unwrap();
    let (one, two) = (Seq::new(1), Seq::new(2));
    assert_eq!(s.recall(d, one, b, 0, 2_000).await.unwrap(), Recall::NotSender);
    assert_eq!(s.recall(d, Seq::new(9), a, 0, 2_000).await.unwrap(), Recall::NoSuchMessage);
    assert_eq!(s.recall(d, two, a, 1_001, 2_000).await.unwrap(), Recall::TooLate, "sent before the window");
    assert_eq!(s.recall(d, one, a, 500, 2_000).await.unwrap(), Recall::Done);
    assert_eq!(s.recall(d, one, a, 500, 2_001).await.unwrap(), Recall::Already);
    let h = s.history(d, Seq::ZERO, 10).await.unwrap();
    assert_eq!((h[0].body.clone(), h[1].body.kind()), (MessageBody::Recalled, "text"), "the tombstone keeps its seq");
}

async fn erase_unlinks_and_keeps_a_ban(s: &SqlStore) {
    use jiebanke_chat_core::users::*;
    let e = s.upsert_user(&id("er-e"), "E", 1).await.unwrap().id;
    let f = s.upsert_user(&id("er-f"), "F", 1).await.unwrap().id;
    let d = s.direct_conversation(e, f, 1).await.unwrap().id;
    s.append(&[new_msg(d, e, "er-1", "mine"), new_msg(d, f, "er-2", "theirs")], 5).await.unwrap();
    s.set_phone(e, &SealedPhone { cipher: "c".into(), index: "er-idx".into(), masked: "m".into() }).await.unwrap();
    s.block(e, f, 2).await.unwrap();
    s.block(f, e, 2).await.unwrap();
    let flagged = NewModerationItem {
        kind: ModerationKind::Report,
        subject: Subject::Message { conv: d, seq: Seq::new(1) },
        author: e,
        reporter: Some(f),
        reason: "r".into(),
        words: vec![],
        excerpt: "mine".into(),
    };
    s.create_moderation_item(&flagged, 3).await.unwrap();
    {
        use jiebanke_chat_core::merchants::*;
        let sealed = SealedApplication {
            user: e,
            name: "E的花坊".into(),
            category: Category::Florist,
            license_cipher: "lc".into(),
            license_masked: "lm".into(),
            license_index: format!("idx-{e}"),
            contact_name: "王".into(),
            phone_cipher: "pc".into(),
            phone_masked: "pm".into(),
        };
        s.create_application(&sealed, 4).await.unwrap();
    }
    assert_eq!(s.identity(e).await.unwrap(), Some(("dev".to_owned(), "er-e".to_owned())));
    assert!(!s.identity_banned("idx-of-e").await.unwrap());
    assert!(s.erase(e, Some("idx-of-e"), 9).await.unwrap());
    assert!(!s.erase(e, None, 10).await.unwrap(), "once");
    let p = s.profile(e).await.unwrap().unwrap();
    assert_eq!((p.nickname.as_str(), p.erased), (ERASED_NICKNAME, true));
    assert_eq!(s.sealed_phone(e).await.unwrap(), None);
    assert!(s.user(e).await.unwrap().unwrap().erased);
    assert_eq!(s.existing_users(&[e, f]).await.unwrap(), vec![f], "an erased user cannot be added anywhere");
    assert!(s.blocks(f, None, 10).await.unwrap().is_empty(), "blocks either way are gone");
    let h = s.history(d, Seq::ZERO, 10).await.unwrap();
    assert_eq!((h[0].body.clone(), h[1].body.kind()), (MessageBody::Deleted, "text"), "only the erased user's messages");
    let items = s.moderation_items(&Default::default(), None, 100).await.unwrap();
    let item = items.iter().find(|i| i.author == e).expect("the item stays, for the record");
    assert_eq!(item.excerpt, "", "its excerpt of the erased user's text is gone");
    assert_eq!(s.identity(e).await.unwrap(), None);
    {
        use jiebanke_chat_core::merchants::*;
        let app = s.latest_application(e).await.unwrap().unwrap();
        assert_eq!(app.state, ApplicationState::Rejected { reason: "account erased".into() }, "a pending application is withdrawn");
        assert_eq!((app.contact_name.as_str(), app.license_masked.as_str(), app.phone_masked.as_str()), ("", "", ""));
        assert_eq!(s.sealed_papers(app.id).await.unwrap(), Some((e, String::new(), String::new())), "its sealed papers are gone");
    }
    assert!(s.identity_banned("idx-of-e").await.unwrap());
    // The same identity logs in as a new account; the phone's index is free again.
    let again = s.upsert_user(&id("er-e"), "E2", 11).await.unwrap();
    assert_ne!(again.id, e);
    s.set_phone(again.id, &SealedPhone { cipher: "c".into(), index: "er-idx".into(), masked: "m".into() }).await.unwrap();
}

/// Staff accounts: made with their user and entry, a code used once (racing logins with one
/// code: one wins), disabled with the role dropped.
async fn staff_accounts_use_codes_once(s: &SqlStore) {
    use jiebanke_chat_core::staff::*;
    let new = |name: &str, role| NewStaff { username: name.into(), role, password_hash: "$argon2id$x".into(), totp_cipher: "tc".into() };
    let root = s.create_staff(&new("root", Role::Admin), None, 1).await.unwrap();
    assert!(matches!(s.create_staff(&new("root", Role::Operator), None, 1).await, Err(CoreError::Conflict(_))));
    let by = Actor::new(root, Some("192.0.2.9".into()));
    let anna = s.create_staff(&new("anna", Role::Operator), Some(&by), 2).await.unwrap();
    let u = s.user(anna).await.unwrap().unwrap();
    assert_eq!((u.provider.as_str(), u.nickname.as_str(), u.role), ("staff", "anna", Role::Operator));
    let rec = s.staff_by_username("anna").await.unwrap().unwrap();
    assert_eq!((rec.user, rec.role, rec.disabled, rec.last_step), (anna, Role::Operator, false, 0));
    assert_eq!(s.staff_by_id(anna).await.unwrap(), Some(rec));
    assert!(s.staff_by_username("nobody").await.unwrap().is_none());
    let made = s.audit_entries(None, Some(AuditAction::StaffCreate), None, 10).await.unwrap();
    assert_eq!(made.iter().map(|e| (e.actor, e.ip.as_deref())).collect::<Vec<_>>(), vec![(root, Some("192.0.2.9")), (root, Some("cli"))]);

    // A code's step is used once; racing logins with one code: exactly one succeeds.
    let wins = futures_util::future::join_all((0..8).map(|_| s.record_success(anna, 50, 1400))).await;
    assert_eq!(wins.iter().filter(|w| *w.as_ref().unwrap()).count(), 1, "{wins:?}");
    assert!(!s.record_success(anna, 49, 1401).await.unwrap(), "an older step neither");
    assert!(s.record_success(anna, 51, 1402).await.unwrap());
    assert_eq!(s.staff_by_id(anna).await.unwrap().unwrap().last_step, 51);

    let audit = NewAudit::new(&by, AuditAction::StaffDisable, format!("user:{anna}"));
    let d = s.set_staff_disabled(anna, true, 1500, &audit).await.unwrap().unwrap();
    assert_eq!((d.disabled, d.role), (true, Role::None), "disabled, the role is gone too");
    assert!(matches!(s.set_staff_disabled(anna, true, 1500, &audit).await, Err(CoreError::Conflict(_))));
    let e = s.set_staff_disabled(anna, false, 1501, &NewAudit::new(&by, AuditAction::StaffEnable, "x")).await.unwrap().unwrap();
    assert_eq!((e.disabled, e.role), (false, Role::None), "enabled again, the role is set on its own");
    assert!(s.set_staff_disabled(UserId::new(999_999).unwrap(), true, 1, &audit).await.unwrap().is_none());
    let last = &s.audit_entries(None, Some(AuditAction::StaffDisable), None, 1).await.unwrap()[0];
    assert_eq!(last.before, Some(serde_json::json!({"disabled": false, "role": "operator"})));
    assert_eq!(s.staff_accounts(None, 10).await.unwrap().iter().map(|r| r.user).collect::<Vec<_>>(), vec![root, anna]);
    assert_eq!(s.staff_accounts(Some(root), 10).await.unwrap().len(), 1);
}

/// Staff login attempts: counted per (username, address) and per address, any username (an
/// unknown one too); racing attempts all count, each seeing a count of its own; a success
/// clears its pair and gives back its address count; windows run out; the limit's audit entry.
async fn staff_login_attempts_count_per_pair_and_address(s: &SqlStore) {
    use jiebanke_chat_core::staff::login::LoginFailures;
    use jiebanke_chat_core::staff::*;
    let w = 1000;
    let anna = s.create_staff(&NewStaff { username: "anna".into(), role: Role::Operator, password_hash: "$argon2id$x".into(), totp_cipher: "tc".into() }, None, 1).await.unwrap();

    // Five attempts of one pair at once: all counted, each sees a different count.
    let counts = futures_util::future::join_all((0..5).map(|_| s.count_login_attempt("anna", "192.0.2.1", 100, w))).await;
    let mut seen: Vec<(u32, u32)> = counts.into_iter().map(|c| c.unwrap()).map(|c| (c.pair, c.address)).collect();
    seen.sort();
    assert_eq!(seen, vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)], "racing attempts each counted once");
    let c = s.count_login_attempt("anna", "192.0.2.1", 150, w).await.unwrap();
    assert_eq!(c, LoginFailures { pair: 6, pair_since: 100, address: 6, address_since: 100 });

    // Another address has counts of its own.
    assert_eq!(s.count_login_attempt("anna", "203.0.113.5", 200, w).await.unwrap(), LoginFailures { pair: 1, pair_since: 200, address: 1, address_since: 200 });
    // Unknown usernames from the first address: pairs of their own, the address's count grows,
    // racing too.
    let racing = futures_util::future::join_all(["u1", "u2", "u3", "nobody"].map(|u| s.count_login_attempt(u, "192.0.2.1", 300, w))).await;
    let mut by_address: Vec<u32> = racing.iter().map(|r| r.as_ref().unwrap().address).collect();
    by_address.sort();
    assert_eq!(by_address, vec![7, 8, 9, 10]);
    assert!(racing.iter().all(|r| r.as_ref().unwrap().pair == 1));

    // A success clears its pair and gives its attempt back to the address.
    s.login_succeeded("anna", "192.0.2.1", 300, w).await.unwrap();
    let c = s.count_login_attempt("anna", "192.0.2.1", 310, w).await.unwrap();
    assert_eq!((c.pair, c.pair_since, c.address), (1, 310, 10));

    // Windows run out: the next attempt starts new ones, and forgets the ended ones.
    let c = s.count_login_attempt("nobody", "192.0.2.1", 1300, w).await.unwrap();
    assert_eq!(c, LoginFailures { pair: 1, pair_since: 1300, address: 1, address_since: 1300 });
    let left: Vec<(String, String)> = sqlx::query_as("SELECT username, address FROM staff_login_failures ORDER BY username, address").fetch_all(s.pool()).await.unwrap();
    assert_eq!(left, vec![("anna".to_owned(), "192.0.2.1".to_owned()), ("nobody".to_owned(), "192.0.2.1".to_owned())]);
    // A success after its address window ended takes nothing below zero.
    s.login_succeeded("nobody", "192.0.2.1", 5000, w).await.unwrap();
    assert_eq!(s.count_login_attempt("x", "192.0.2.1", 1400, w).await.unwrap().address, 2);

    // The limit's audit entry.
    let audit = NewAudit::new(&Actor::new(anna, Some("192.0.2.1".into())), AuditAction::StaffLoginLimited, format!("user:{anna}"))
        .after(serde_json::json!({"username": "anna", "address": "192.0.2.1", "failures": 5}));
    s.login_limited(&audit, 400).await.unwrap();
    let limited = s.audit_entries(None, Some(AuditAction::StaffLoginLimited), None, 10).await.unwrap();
    assert_eq!((limited.len(), limited[0].actor, limited[0].ip.as_deref(), limited[0].at), (1, anna, Some("192.0.2.1"), 400));
    assert_eq!(limited[0].after, audit.after);
}

/// QR login tickets: confirmed once and consumed once, even racing; nothing after expiry.
async fn qr_tickets_confirm_and_consume_once(s: &SqlStore) {
    use jiebanke_chat_core::logins::QrTicketStore;
    let a = s.upsert_user(&id("qr-a"), "A", 1).await.unwrap().id;
    let b = s.upsert_user(&id("qr-b"), "B", 1).await.unwrap().id;
    s.create_ticket("h1", 10, 1000).await.unwrap();
    assert_eq!(s.consume_ticket("h1", 20).await.unwrap(), None, "not confirmed yet");
    let (ca, cb) = tokio::join!(s.confirm_ticket("h1", a, 30), s.confirm_ticket("h1", b, 30));
    assert!(ca.unwrap() ^ cb.unwrap(), "exactly one confirmation wins");
    let who = s.ticket("h1").await.unwrap().unwrap().user.unwrap();
    let tries = futures_util::future::join_all((0..6).map(|_| s.consume_ticket("h1", 40))).await;
    let got: Vec<UserId> = tries.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![who], "the token is handed out once");
    assert!(s.ticket("h1").await.unwrap().unwrap().consumed);
    s.create_ticket("h2", 50, 100).await.unwrap();
    assert!(!s.confirm_ticket("h2", a, 100).await.unwrap(), "expired at its time");
    assert!(s.ticket("nope").await.unwrap().is_none());
    // Creating tickets clears those long expired.
    s.create_ticket("h3", 200_000, 300_000).await.unwrap();
    assert!(s.ticket("h2").await.unwrap().is_none());
}

/// The moderation queue as a workflow: items of any subject, filtered by status and kind; each
/// resolution's effect, status and audit entry in one transaction; resolved once.
async fn moderation_items_are_resolved_once_with_their_effect(s: &SqlStore) {
    use jiebanke_chat_core::ports::ItemFilter;
    let staff = Actor::new(s.upsert_user(&id("wf-staff"), "S", 1).await.unwrap().id, None);
    let a = s.upsert_user(&id("wf-a"), "A", 1).await.unwrap().id;
    let b = s.upsert_user(&id("wf-b"), "B", 1).await.unwrap().id;
    let c = s.create_group(a, &Title::parse("t").unwrap(), &[], 1).await.unwrap().id;
    s.append(&[new_msg(c, a, "wf-1", "坏话")], 2).await.unwrap();
    let item = |kind, subject, author| NewModerationItem { kind, subject, author, reporter: Some(b), reason: "r".into(), words: vec![], excerpt: "e".into() };
    let m = s.create_moderation_item(&item(ModerationKind::Report, Subject::Message { conv: c, seq: Seq::new(1) }, a), 3).await.unwrap();
    let u = s.create_moderation_item(&item(ModerationKind::Report, Subject::User(a), a), 4).await.unwrap();
    let p = s.create_moderation_item(&item(ModerationKind::Report, Subject::Profile(a), a), 5).await.unwrap();
    let ap = s.create_moderation_item(&item(ModerationKind::Appeal, Subject::Appeal(b), b), 6).await.unwrap();
    assert_eq!(s.moderation_item(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.open_item_about(&Subject::Appeal(b)).await.unwrap(), Some(ap.id));
    assert_eq!(s.open_item_about(&Subject::Appeal(a)).await.unwrap(), None);
    let by_kind = s.moderation_items(&ItemFilter { open: Some(true), subject_kind: Some("user".into()) }, None, 10).await.unwrap();
    assert_eq!(by_kind, vec![u.clone()]);
    let audit = |target: &str| NewAudit::new(&staff, AuditAction::ModerationResolve, target);

    // Delete: the message is a tombstone, in the resolution's transaction.
    let r = s.resolve_item(m.id, ResolveAction::Delete, staff.user, 10, &audit("moderation_item:m")).await.unwrap().unwrap();
    assert_eq!(r.status, ModerationStatus::Resolved { action: ResolveAction::Delete, by: staff.user, at: 10 });
    assert_eq!(s.message(c, Seq::new(1)).await.unwrap().unwrap().body, MessageBody::Deleted);
    assert!(matches!(s.resolve_item(m.id, ResolveAction::Dismiss, staff.user, 11, &audit("x")).await, Err(CoreError::Conflict(_))), "resolved once");
    // Delete a profile: reset.
    s.resolve_item(p.id, ResolveAction::Delete, staff.user, 12, &audit("moderation_item:p")).await.unwrap().unwrap();
    assert_eq!(s.user(a).await.unwrap().unwrap().nickname, "旅行者");
    // Ban: an entry that cannot be written undoes the ban and the resolution.
    let too_long = NewAudit::new(&staff, AuditAction::ModerationResolve, "x".repeat(201));
    assert!(s.resolve_item(u.id, ResolveAction::Ban, staff.user, 13, &too_long).await.is_err());
    assert!(!s.user(a).await.unwrap().unwrap().banned);
    assert_eq!(s.moderation_item(u.id).await.unwrap().unwrap().status, ModerationStatus::Open);
    s.resolve_item(u.id, ResolveAction::Ban, staff.user, 14, &audit("moderation_item:u")).await.unwrap().unwrap();
    assert!(s.user(a).await.unwrap().unwrap().banned);
    // Unban (an appeal granted) lifts the appellant's ban.
    s.set_banned(b, true, 15, &NewAudit::new(&staff, AuditAction::UserBan, "user:b")).await.unwrap();
    s.resolve_item(ap.id, ResolveAction::Unban, staff.user, 16, &audit("moderation_item:ap")).await.unwrap().unwrap();
    assert!(!s.user(b).await.unwrap().unwrap().banned);
    assert_eq!(s.open_item_about(&Subject::Appeal(b)).await.unwrap(), None);
    assert!(s.resolve_item(ModerationId::new(999_999).unwrap(), ResolveAction::Dismiss, staff.user, 17, &audit("x")).await.unwrap().is_none());

    assert!(s.moderation_items(&ItemFilter { open: Some(true), subject_kind: None }, None, 10).await.unwrap().is_empty());
    assert_eq!(s.moderation_items(&ItemFilter { open: Some(false), subject_kind: None }, None, 10).await.unwrap().len(), 4);
    let entries = s.audit_entries(None, Some(AuditAction::ModerationResolve), None, 10).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(), vec!["moderation_item:ap", "moderation_item:u", "moderation_item:p", "moderation_item:m"]);
    // The same reporter reporting the same subject again gets the open item, not a new one;
    // two at once make one too.
    let again = s.create_moderation_item(&item(ModerationKind::Report, Subject::Profile(a), a), 20).await.unwrap();
    assert_ne!(again.id, p.id, "resolved, the subject may be reported again");
    assert_eq!(s.create_moderation_item(&item(ModerationKind::Report, Subject::Profile(a), a), 21).await.unwrap(), again);
    let twice = item(ModerationKind::Report, Subject::User(b), b);
    let (x, y) = tokio::join!(s.create_moderation_item(&twice, 8), s.create_moderation_item(&twice, 8));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.id, y.id, "racing reports make one item");
    let c2 = s.upsert_user(&id("wf-c"), "C", 1).await.unwrap().id;
    let other = NewModerationItem { reporter: Some(c2), ..item(ModerationKind::Report, Subject::Profile(a), a) };
    assert_ne!(s.create_moderation_item(&other, 22).await.unwrap().id, again.id, "another reporter's report is its own");
}

/// One licence number, one pending or approved application: a second (even at once) is a
/// conflict; a rejected one frees the number; rows from before the index are filled in, a
/// duplicate among them kept but not holding the number.
async fn one_license_one_live_application(s: &SqlStore) {
    use jiebanke_chat_core::merchants::*;
    let staff = Actor::new(s.upsert_user(&id("lic-staff"), "S", 1).await.unwrap().id, None);
    let audit = |a| NewAudit::new(&staff, a, "t");
    let app = |user: UserId, index: &str| SealedApplication {
        user,
        name: "花坊".into(),
        category: Category::Florist,
        license_cipher: format!("cipher-{index}"),
        license_masked: "m".into(),
        license_index: index.into(),
        contact_name: "王".into(),
        phone_cipher: "pc".into(),
        phone_masked: "pm".into(),
    };
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(s.upsert_user(&id(&format!("lic-{i}")), "U", 1).await.unwrap().id);
    }
    let a = s.create_application(&app(users[0], "L1"), 1).await.unwrap();
    let Err(CoreError::Conflict(why)) = s.create_application(&app(users[1], "L1"), 2).await else { panic!("a second application for one licence") };
    assert!(why.contains("licence"), "{why}");
    s.decide(a.id, staff.user, &ApplicationState::Rejected { reason: "r".into() }, 3, &audit(AuditAction::ApplicationReject)).await.unwrap().unwrap();
    let b = s.create_application(&app(users[1], "L1"), 4).await.expect("rejected, the number is free");
    s.decide(b.id, staff.user, &ApplicationState::Approved, 5, &audit(AuditAction::ApplicationApprove)).await.unwrap().unwrap();
    assert!(matches!(s.create_application(&app(users[2], "L1"), 6).await, Err(CoreError::Conflict(_))), "an approved merchant holds its number");
    let apps: Vec<SealedApplication> = users[3..6].iter().map(|u| app(*u, "L2")).collect();
    let racing = futures_util::future::join_all(apps.iter().map(|a| s.create_application(a, 7))).await;
    assert_eq!(racing.iter().filter(|r| r.is_ok()).count(), 1, "{racing:?}");

    // Rows from before the index: two pending applications of one number, unindexed.
    let old1 = s.create_application(&app(users[6], "L3"), 8).await.unwrap();
    let old2 = s.create_application(&app(users[7], "L4"), 9).await.unwrap();
    sqlx::query("UPDATE merchant_applications SET license_index = NULL, live_license = NULL, license_cipher = 'cipher-L3' WHERE id IN (?, ?)")
        .bind(old1.id.get())
        .bind(old2.id.get())
        .execute(s.pool())
        .await
        .unwrap();
    let mut missing = s.unindexed_licenses(10).await.unwrap();
    missing.sort_by_key(|(id, _, _)| id.get());
    assert_eq!(missing.iter().map(|(id, _, c)| (id.get(), c.as_str())).collect::<Vec<_>>(), vec![(old1.id.get(), "cipher-L3"), (old2.id.get(), "cipher-L3")]);
    for (id, _, cipher) in &missing {
        s.set_license_index(*id, cipher.strip_prefix("cipher-").unwrap()).await.unwrap();
    }
    assert!(s.unindexed_licenses(10).await.unwrap().is_empty());
    let live: Vec<Option<String>> = sqlx::query_scalar("SELECT live_license FROM merchant_applications WHERE id IN (?, ?) ORDER BY id")
        .bind(old1.id.get())
        .bind(old2.id.get())
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert_eq!(live, vec![Some("L3".to_owned()), None], "the first holds the number; the duplicate stays, unheld");
    assert!(matches!(s.create_application(&app(users[2], "L3"), 10).await, Err(CoreError::Conflict(_))), "a filled number is held");
}

/// The catalog: products of active merchants listed, by merchant and title (wildcards as text),
/// changed and hidden by their merchant only; the schema refuses negative stock.
async fn catalog_lists_active_merchants_products(s: &SqlStore) {
    use jiebanke_chat_core::commerce::catalog::{CatalogStore, ProductFilter};
    use jiebanke_chat_core::commerce::rules::ProductSpec;
    use jiebanke_chat_core::merchants::*;
    let staff = Actor::new(s.upsert_user(&id("cat-staff"), "S", 1).await.unwrap().id, None);
    let mut merchants = Vec::new();
    for code in ["cat-a", "cat-b"] {
        let u = s.upsert_user(&id(code), code, 1).await.unwrap().id;
        let app = SealedApplication { user: u, name: code.into(), category: Category::Florist, license_cipher: "c".into(), license_masked: "m".into(), license_index: format!("idx-{u}"), contact_name: "n".into(), phone_cipher: "c".into(), phone_masked: "m".into() };
        let a = s.create_application(&app, 2).await.unwrap();
        s.decide(a.id, staff.user, &ApplicationState::Approved, 3, &NewAudit::new(&staff, AuditAction::ApplicationApprove, "t")).await.unwrap();
        merchants.push(u);
    }
    let (a, b) = (merchants[0], merchants[1]);
    let spec = |title: &str, stock| ProductSpec { title: title.into(), description: "d".into(), price_fen: 100, stock, photos: vec!["/uploads/x.jpg".into()] };
    let p1 = s.create_product(a, &spec("玫瑰 100%", 5), 10).await.unwrap();
    let p2 = s.create_product(b, &spec("百合", 1), 11).await.unwrap();
    assert_eq!(s.product(p1.id).await.unwrap(), Some(p1.clone()));
    let all = |f: ProductFilter| async move { s.products(&f, None, 10).await.unwrap().iter().map(|p| p.id).collect::<Vec<_>>() };
    assert_eq!(all(ProductFilter::default()).await, vec![p1.id, p2.id]);
    assert_eq!(all(ProductFilter { merchant: Some(b), q: None }).await, vec![p2.id]);
    assert_eq!(all(ProductFilter { merchant: None, q: Some("100%".into()) }).await, vec![p1.id]);
    assert_eq!(all(ProductFilter { merchant: None, q: Some("_".into()) }).await, Vec::<i64>::new(), "a wildcard is text");
    assert_eq!(s.products(&ProductFilter::default(), Some(p1.id), 10).await.unwrap().len(), 1);

    assert!(s.update_product(b, p1.id, &spec("偷改", 0), 12).await.unwrap().is_none(), "another merchant's product");
    let up = s.update_product(a, p1.id, &spec("玫瑰", 9), 12).await.unwrap().unwrap();
    assert_eq!((up.spec.stock, up.updated_at), (9, 12));
    s.set_suspended(b, Some("r"), 13, &NewAudit::new(&staff, AuditAction::MerchantSuspend, "t")).await.unwrap();
    assert_eq!(all(ProductFilter::default()).await, vec![p1.id], "a suspended merchant's products are not listed");
    assert!(s.hide_product(a, p1.id, 14).await.unwrap());
    assert!(!s.hide_product(a, p1.id, 15).await.unwrap());
    assert!(s.product(p1.id).await.unwrap().unwrap().hidden);
    assert!(all(ProductFilter::default()).await.is_empty());
    assert_eq!(s.merchant_products(a, None, 10).await.unwrap().len(), 1, "its merchant still sees it");
    let r = sqlx::query("UPDATE products SET stock = -1 WHERE id = ?").bind(p2.id).execute(s.pool()).await;
    assert!(r.is_err(), "stock never goes below zero");

    use jiebanke_chat_core::commerce::rules::AnimalSpec;
    let sheep = AnimalSpec { species: "羊".into(), name: "咩咩".into(), photos: vec![], story: "s".into(), price_fen: 9900, period_days: 30, slots: 3 };
    let an = s.create_animal(a, &sheep, 20).await.unwrap();
    s.create_animal(b, &sheep, 21).await.unwrap();
    assert_eq!(s.animal(an.id).await.unwrap(), Some(an.clone()));
    assert_eq!(s.animals(None, None, 10).await.unwrap(), vec![an.clone()], "the suspended merchant's animal is not listed");
    assert_eq!(s.animals(Some(a), Some(an.id), 10).await.unwrap(), vec![]);
}

macro_rules! both {
    ($($name:ident),*) => {
        mod on_sqlite {
            $( #[tokio::test] async fn $name() { let b = super::sqlite().await; super::$name(&b.store).await; } )*
        }
        mod on_mysql {
            $( #[tokio::test] async fn $name() { if let Some(b) = super::mysql().await { super::$name(&b.store).await; } } )*
        }
    };
}

both!(
    users_and_direct,
    append_sequences_and_dedups,
    big_batches_have_dense_seqs,
    groups_change_members,
    orders_alerts_and_the_outbox,
    moderation_bans_roles_and_tombstones,
    accounts_profile_settings_phone_consent,
    relations_blocks_and_contacts,
    recall_is_decided_once,
    erase_unlinks_and_keeps_a_ban,
    audit_entries_share_their_change_transaction,
    merchants_applications_and_leads,
    staff_accounts_use_codes_once,
    staff_login_attempts_count_per_pair_and_address,
    qr_tickets_confirm_and_consume_once,
    moderation_items_are_resolved_once_with_their_effect,
    one_license_one_live_application,
    catalog_lists_active_merchants_products
);

/// Nodes relay side by side: two relays running at once never hand over the same event.
#[tokio::test]
async fn concurrent_relays_never_share_an_event_on_mysql() {
    let Some(b) = mysql().await else { return };
    let s = b.store.clone();
    let shop = s.upsert_user(&id("cshop"), "S", 1).await.unwrap().id;
    for i in 0..300 {
        s.create_paid_order(&NewOrder { merchant: shop, buyer: None, item: ItemName::parse(&format!("i{i}")).unwrap(), amount: AmountFen::new(1).unwrap() }, i).await.unwrap();
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::<EventId>::new()));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let s = s.clone();
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let relay: Arc<RelayFn> = Arc::new(move |evs: Vec<OutboxEvent>| {
                let seen = seen.clone();
                Box::pin(async move {
                    // Hold the batch a little, as a broker round trip would.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    seen.lock().unwrap().extend(evs.iter().map(|e| e.id));
                    Ok(evs.iter().map(|e| (e.id, None)).collect())
                })
            });
            while s.relay_outbox(16, relay.as_ref()).await.unwrap() > 0 {}
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut ids = seen.lock().unwrap().clone();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((n, ids.len()), (300, 300), "every event once");
    assert_eq!(s.outbox_counts().await.unwrap().pending, 0);
}

#[tokio::test]
async fn sqlite_survives_reopen() {
    let b = sqlite().await;
    let dir = b._dir.as_ref().unwrap().0.clone();
    let a = b.store.upsert_user(&id("p"), "P", 1).await.unwrap().id;
    let c = b.store.create_group(a, &Title::parse("t").unwrap(), &[], 1).await.unwrap().id;
    b.store.append(&[new_msg(c, a, "k", "kept")], 1).await.unwrap();
    b.store.close().await;
    let again = SqlStore::connect(&format!("sqlite:{}", dir.join("jbk.db").display())).await.unwrap();
    assert_eq!(again.history(c, Seq::ZERO, 10).await.unwrap().len(), 1);
}

/// While a relay holds its batch (waiting for the broker), new orders still commit: the relay
/// locks its rows, not the gap where new events go. The relay here waits for an order committed
/// during it; if the insert waited for the relay, the insert would fail with a lock timeout.
#[tokio::test]
async fn orders_commit_while_a_relay_holds_its_batch_on_mysql() {
    let Some(b) = mysql().await else { return };
    let s = b.store.clone();
    let shop = s.upsert_user(&id("gshop"), "S", 1).await.unwrap().id;
    let new = move |i: i64| NewOrder { merchant: shop, buyer: None, item: ItemName::parse(&format!("g{i}")).unwrap(), amount: AmountFen::new(1).unwrap() };
    s.create_paid_order(&new(0), 1).await.unwrap();
    let s2 = s.clone();
    let relay: Arc<RelayFn> = Arc::new(move |evs: Vec<OutboxEvent>| {
        let s2 = s2.clone();
        Box::pin(async move {
            let committed = s2.create_paid_order(&new(1), 2).await;
            assert!(committed.is_ok(), "an order could not commit while the relay held its batch: {committed:?}");
            Ok(evs.iter().map(|e| (e.id, None)).collect())
        })
    });
    assert_eq!(s.relay_outbox(128, relay.as_ref()).await.unwrap(), 1);
    assert_eq!(s.outbox_counts().await.unwrap().pending, 1, "the order made during the relay waits for the next pass");
}
