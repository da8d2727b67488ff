//! `ShopOrderStore`'s contract on the real engines (SQLite in a temp dir, MariaDB/MySQL in a
//! database of its own; skipped with a SKIPPED line when no server answers, unless
//! `JBK_REQUIRE_SERVICES=1`): placing takes stock exactly once under a race, transitions move an
//! order only from the state read (racing ones: one wins), restock and events go with them, a
//! late payment is recorded once, and the expiry lease has one holder at a time.

use jiebanke_chat_core::audit::{Actor, AuditAction, NewAudit};
use jiebanke_chat_core::commerce::catalog::CatalogStore;
use jiebanke_chat_core::commerce::orders::*;
use jiebanke_chat_core::commerce::rules::{DeliverySlot, ProductSpec};
use jiebanke_chat_core::commerce::{apply, Actor as Who, OrderAction, OrderState};
use jiebanke_chat_core::merchants::*;
use jiebanke_chat_core::ports::{OutboxStore, RelayFn, UserStore};
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
    let dir = std::env::temp_dir().join(format!("jbk-shop-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("jbk.db").display());
    Backend { store: SqlStore::connect(&url).await.unwrap(), _mysql: None, _dir: Some(TempDir(dir)) }
}

async fn mysql() -> Option<Backend> {
    let db = TestMySql::create().await?;
    let store = SqlStore::connect(&db.url).await.unwrap();
    Some(Backend { store, _mysql: Some(db), _dir: None })
}

fn ident(s: &str) -> Identity {
    Identity { provider: "dev", subject: s.into() }
}

/// An approved merchant with one product of `stock`.
async fn shop(s: &SqlStore, code: &str, stock: u32) -> (UserId, i64) {
    let staff = Actor::new(s.upsert_user(&ident(&format!("{code}-staff")), "S", 1).await.unwrap().id, None);
    let u = s.upsert_user(&ident(code), code, 1).await.unwrap().id;
    let app = SealedApplication { user: u, name: code.into(), category: Category::Florist, license_cipher: "c".into(), license_masked: "m".into(), license_index: format!("idx-{u}"), contact_name: "n".into(), phone_cipher: "c".into(), phone_masked: "m".into() };
    let a = s.create_application(&app, 2).await.unwrap();
    s.decide(a.id, staff.user, &ApplicationState::Approved, 3, &NewAudit::new(&staff, AuditAction::ApplicationApprove, "t")).await.unwrap();
    let p = s.create_product(u, &ProductSpec { title: "红玫瑰".into(), description: String::new(), price_fen: 990, stock, photos: vec![] }, 4).await.unwrap();
    (u, p.id)
}

fn new_order(buyer: UserId, items: Vec<(i64, u32)>) -> NewShopOrder {
    NewShopOrder {
        buyer,
        items,
        recipient_sealed: "sealed".into(),
        recipient_masked: "王* 138****5678".into(),
        deliver_on: 20_000,
        slot: DeliverySlot::Evening,
        note: "门口".into(),
        expires_at: 1_000,
    }
}

async fn stock(s: &SqlStore, product: i64) -> u32 {
    s.product(product).await.unwrap().unwrap().spec.stock
}

/// Drains the outbox and answers the topics of the events, in order.
async fn topics(s: &SqlStore) -> Vec<String> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let relay: Arc<RelayFn> = Arc::new(move |evs: Vec<OutboxEvent>| {
        let sink = sink.clone();
        Box::pin(async move {
            sink.lock().unwrap().extend(evs.iter().map(|e| e.event.topic().to_owned()));
            Ok(evs.iter().map(|e| (e.id, None)).collect())
        })
    });
    while s.relay_outbox(64, relay.as_ref()).await.unwrap() > 0 {}
    let out = seen.lock().unwrap().clone();
    out
}

async fn step(s: &SqlStore, id: OrderId, action: OrderAction, who: Who, change: Change, now: i64) -> Option<ShopOrder> {
    let o = s.order(id).await.unwrap().unwrap();
    let tr = apply(o.state, action, who).unwrap();
    s.transition(id, o.state, &tr, &change, now).await.unwrap()
}

async fn orders_take_and_return_stock(s: &SqlStore) {
    let (merchant, product) = shop(s, "o-shop", 5).await;
    let buyer = s.upsert_user(&ident("o-buyer"), "B", 1).await.unwrap().id;
    let placed = s.place_order(&new_order(buyer, vec![(product, 2)]), 10).await.unwrap();
    assert_eq!((placed.state, placed.amount_fen, placed.merchant, placed.kind), (OrderState::Created, 1980, merchant, OrderKind::Flower));
    assert_eq!(placed.lines, vec![OrderLine { product, title: "红玫瑰".into(), price_fen: 990, quantity: 2 }]);
    assert_eq!((placed.item.as_str(), placed.deliver_on, placed.slot, placed.expires_at), ("红玫瑰 ×2", Some(20_000), Some(DeliverySlot::Evening), Some(1_000)));
    assert_eq!(stock(s, product).await, 3);
    assert_eq!(s.order(placed.id).await.unwrap(), Some(placed.clone()));

    // Too many: nothing is taken.
    let e = s.place_order(&new_order(buyer, vec![(product, 4)]), 11).await.unwrap_err();
    assert_eq!(e.code(), "out_of_stock", "{e:?}");
    assert_eq!(stock(s, product).await, 3);
    // Unknown or hidden products, and products of two merchants, are named.
    let e = s.place_order(&new_order(buyer, vec![(product, 1), (999_999, 1)]), 11).await.unwrap_err();
    assert!(matches!(&e, CoreError::Fields(f) if f[0].field == "items[1].product"), "{e:?}");
    let (_, other) = shop(s, "o-shop2", 5).await;
    let e = s.place_order(&new_order(buyer, vec![(product, 1), (other, 1)]), 11).await.unwrap_err();
    assert!(matches!(&e, CoreError::Fields(f) if f[0].field == "items[1].product"), "{e:?}");
    assert_eq!((stock(s, product).await, stock(s, other).await), (3, 5), "a refused order takes nothing");

    // Cancelled: the stock goes back, once.
    let cancelled = step(s, placed.id, OrderAction::Cancel, Who::Buyer, Change::default(), 12).await.unwrap();
    assert_eq!(cancelled.state, OrderState::Cancelled);
    assert_eq!(stock(s, product).await, 5);
    let tr = apply(OrderState::Created, OrderAction::Cancel, Who::Buyer).unwrap();
    assert!(s.transition(placed.id, OrderState::Created, &tr, &Change::default(), 13).await.unwrap().is_none(), "moved only from the state read");
    assert_eq!(stock(s, product).await, 5);

    // A late payment is recorded once; the state stays cancelled.
    let pay = || Change { payment: Some(("local".into(), "T1".into())), ..Change::default() };
    let late = step(s, placed.id, OrderAction::Pay, Who::System, pay(), 14).await.unwrap();
    assert_eq!((late.state, late.late_paid_at, late.transaction_id.as_deref()), (OrderState::Cancelled, Some(14), Some("T1")));
    assert!(step(s, placed.id, OrderAction::Pay, Who::System, pay(), 15).await.is_none(), "a late payment once");

    // Paid, fulfilled, refund asked and rejected, completed.
    let o = s.place_order(&new_order(buyer, vec![(product, 1)]), 20).await.unwrap();
    let paid = step(s, o.id, OrderAction::Pay, Who::System, Change { payment: Some(("local".into(), "T2".into())), ..Change::default() }, 21).await.unwrap();
    assert_eq!((paid.state, paid.paid_at, paid.provider.as_deref()), (OrderState::Paid, Some(21), Some("local")));
    step(s, o.id, OrderAction::Fulfil, Who::Merchant, Change::default(), 22).await.unwrap();
    let asked = step(s, o.id, OrderAction::RequestRefund, Who::Buyer, Change { refund_reason: Some("花谢了".into()), ..Change::default() }, 23).await.unwrap();
    assert_eq!((asked.state.as_str(), asked.refund_reason.as_deref()), ("refunding", Some("花谢了")));
    assert_eq!(step(s, o.id, OrderAction::RejectRefund, Who::Merchant, Change::default(), 24).await.unwrap().state, OrderState::Fulfilled);
    assert_eq!(step(s, o.id, OrderAction::Complete, Who::Buyer, Change::default(), 25).await.unwrap().state, OrderState::Completed);
    assert_eq!(stock(s, product).await, 4, "delivered goods stay sold");

    // Refunded before delivery: the stock comes back; an admin's refund is audited with it.
    let o = s.place_order(&new_order(buyer, vec![(product, 2)]), 30).await.unwrap();
    step(s, o.id, OrderAction::Pay, Who::System, Change { payment: Some(("local".into(), "T3".into())), ..Change::default() }, 31).await.unwrap();
    step(s, o.id, OrderAction::RequestRefund, Who::Buyer, Change { refund_reason: Some("不要了".into()), ..Change::default() }, 32).await.unwrap();
    assert_eq!(stock(s, product).await, 2);
    let admin = Actor::new(buyer, Some("127.0.0.1".into()));
    let audit = NewAudit { actor: admin.user, action: AuditAction::OrderRefund, target: format!("order:{}", o.id), before: None, after: None, ip: admin.ip.clone() };
    let refunded = step(s, o.id, OrderAction::ApproveRefund, Who::Admin, Change { audit: Some(audit), ..Change::default() }, 33).await.unwrap();
    assert_eq!(refunded.state, OrderState::Refunded);
    assert_eq!(stock(s, product).await, 4);
    let entries = jiebanke_chat_core::audit::AuditLog::audit_entries(s, None, Some(AuditAction::OrderRefund), None, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].before, Some(serde_json::json!({"state": "refunding"})));

    // Every step wrote its event, in order.
    assert_eq!(
        topics(s).await,
        [
            "merchant.reviewed", "order.created", "merchant.reviewed", "order.cancelled", "order.late_payment", "order.created", "order.paid",
            "order.fulfilled", "order.refund_requested", "order.refund_rejected", "order.completed", "order.created", "order.paid",
            "order.refund_requested", "order.refunded",
        ]
    );

    // Lists: newest first, by buyer, merchant and state (refunding matches both forms).
    let list = |f: OrderFilter| async move { s.orders(&f, None, 10).await.unwrap().iter().map(|o| o.id).collect::<Vec<_>>() };
    let mine = list(OrderFilter { buyer: Some(buyer), ..OrderFilter::default() }).await;
    assert_eq!(mine.len(), 3);
    assert!(mine.windows(2).all(|w| w[0] > w[1]));
    assert_eq!(list(OrderFilter { merchant: Some(merchant), state: Some("refunded"), ..OrderFilter::default() }).await, vec![o.id]);
    assert_eq!(s.orders(&OrderFilter::default(), Some(mine[0].get()), 10).await.unwrap().len(), 2, "keyset: before a cursor");
}

/// Twenty buyers race for a stock of five: exactly five orders are placed, the stock ends at
/// zero and never below.
async fn racing_orders_never_oversell(s: &SqlStore) {
    let (_, product) = shop(s, "r-shop", 5).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let buyer = s.upsert_user(&ident(&format!("r-b{i}")), "B", 1).await.unwrap().id;
            s.place_order(&new_order(buyer, vec![(product, 1)]), 10 + i).await
        }));
    }
    let (mut placed, mut out) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => placed += 1,
            Err(e) if e.code() == "out_of_stock" => out += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((placed, out), (5, 15));
    assert_eq!(stock(s, product).await, 0);
}

/// Racing transitions of one order: one wins; racing payments and a cancel: the order is paid
/// or cancelled, and the stock comes back only if it was cancelled.
async fn racing_transitions_one_wins(s: &SqlStore) {
    let (_, product) = shop(s, "t-shop", 100).await;
    let buyer = s.upsert_user(&ident("t-buyer"), "B", 1).await.unwrap().id;
    for round in 0..10 {
        let o = s.place_order(&new_order(buyer, vec![(product, 1)]), round).await.unwrap();
        let pay = apply(OrderState::Created, OrderAction::Pay, Who::System).unwrap();
        let cancel = apply(OrderState::Created, OrderAction::Cancel, Who::Buyer).unwrap();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let s = s.clone();
            let tr = if i % 2 == 0 { pay } else { cancel };
            let change = Change { payment: (i % 2 == 0).then(|| ("local".into(), format!("T{i}"))), ..Change::default() };
            tasks.push(tokio::spawn(async move { s.transition(o.id, OrderState::Created, &tr, &change, 100).await.unwrap() }));
        }
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap().is_some());
        }
        assert_eq!(won, 1, "one transition from created");
    }
    let cancelled = s.orders(&OrderFilter { state: Some("cancelled"), ..OrderFilter::default() }, None, 100).await.unwrap().len() as u32;
    assert_eq!(stock(s, product).await, 90 + cancelled, "stock back exactly for the cancelled ones");
}

async fn expiry_and_leases(s: &SqlStore) {
    let (_, product) = shop(s, "e-shop", 10).await;
    let buyer = s.upsert_user(&ident("e-buyer"), "B", 1).await.unwrap().id;
    let old = s.place_order(&NewShopOrder { expires_at: 50, ..new_order(buyer, vec![(product, 1)]) }, 1).await.unwrap();
    let fresh = s.place_order(&NewShopOrder { expires_at: 500, ..new_order(buyer, vec![(product, 1)]) }, 1).await.unwrap();
    assert_eq!(s.expired_orders(100, 10).await.unwrap(), vec![old.id]);
    assert_eq!(s.expired_orders(1000, 10).await.unwrap(), vec![old.id, fresh.id]);
    step(s, old.id, OrderAction::Pay, Who::System, Change { payment: Some(("local".into(), "P".into())), ..Change::default() }, 60).await.unwrap();
    assert_eq!(s.expired_orders(1000, 10).await.unwrap(), vec![fresh.id], "a paid order does not expire");

    assert!(s.take_lease("job", "n1", 100, 200).await.unwrap());
    assert!(!s.take_lease("job", "n2", 150, 250).await.unwrap(), "held");
    assert!(s.take_lease("job", "n1", 160, 260).await.unwrap(), "renewed by its holder");
    assert!(s.take_lease("job", "n2", 261, 361).await.unwrap(), "taken over once expired");
    assert!(!s.take_lease("job", "n1", 262, 362).await.unwrap());
    assert_eq!(s.wechat_openid(buyer).await.unwrap(), None, "a dev login has no openid");
    let w = s.upsert_user(&Identity { provider: "wechat", subject: "oOpenId1".into() }, "W", 1).await.unwrap().id;
    assert_eq!(s.wechat_openid(w).await.unwrap().as_deref(), Some("oOpenId1"));
}

/// Claims hold a slot from placing to cancellation or their end; paid they are active for their
/// periods, a renewal extends them from their end and its refund takes that back; the end
/// frees the slot once.
async fn claims_hold_and_free_slots(s: &SqlStore) {
    use jiebanke_chat_core::commerce::claims::{ClaimState, ClaimStore, DAY_MS};
    use jiebanke_chat_core::commerce::rules::AnimalSpec;
    let (merchant, _) = shop(s, "c-farm", 1).await;
    let a = s.create_animal(merchant, &AnimalSpec { species: "羊".into(), name: "咩咩".into(), photos: vec![], story: String::new(), price_fen: 100, period_days: 10, slots: 1 }, 5).await.unwrap();
    let (u1, u2) = (s.upsert_user(&ident("c-u1"), "U", 1).await.unwrap().id, s.upsert_user(&ident("c-u2"), "U", 1).await.unwrap().id);
    let free = |s: &SqlStore| {
        let s = s.clone();
        async move { s.animal(a.id).await.unwrap().unwrap().slots_free }
    };
    let (c1, o1) = s.place_claim(u1, a.id, 2, 10, 1_000).await.unwrap();
    assert_eq!((c1.state, o1.amount_fen, o1.claim, o1.kind), (ClaimState::Pending, 200, Some(c1.id), OrderKind::Claim));
    assert_eq!(free(s).await, 0);
    assert_eq!(s.place_claim(u2, a.id, 1, 11, 1_000).await.unwrap_err().code(), "out_of_stock");
    assert_eq!(s.renew_claim(u1, c1.id, 1, 12, 1_000).await.unwrap_err().code(), "conflict", "a pending claim is not renewed");
    step(s, o1.id, OrderAction::Cancel, Who::Buyer, Change::default(), 13).await.unwrap();
    assert_eq!((s.claim(c1.id).await.unwrap().unwrap().state, free(s).await), (ClaimState::Cancelled, 1));

    let (c2, o2) = s.place_claim(u2, a.id, 1, 20, 1_000).await.unwrap();
    step(s, o2.id, OrderAction::Pay, Who::System, Change { payment: Some(("local".into(), "C2".into())), ..Change::default() }, 100).await.unwrap();
    let active = s.claim(c2.id).await.unwrap().unwrap();
    assert_eq!((active.state, active.started_at, active.ends_at), (ClaimState::Active, Some(100), Some(100 + 10 * DAY_MS)));
    let r = s.renew_claim(u2, c2.id, 2, 200, 1_000).await.unwrap();
    assert_eq!(s.renew_claim(u1, c2.id, 1, 200, 1_000).await.unwrap_err().code(), "not_found", "another's claim");
    step(s, r.id, OrderAction::Pay, Who::System, Change { payment: Some(("local".into(), "R".into())), ..Change::default() }, 300).await.unwrap();
    assert_eq!(s.claim(c2.id).await.unwrap().unwrap().ends_at, Some(100 + 30 * DAY_MS), "extended from its end");
    step(s, r.id, OrderAction::RequestRefund, Who::Buyer, Change { refund_reason: Some("r".into()), ..Change::default() }, 301).await.unwrap();
    step(s, r.id, OrderAction::ApproveRefund, Who::Merchant, Change::default(), 302).await.unwrap();
    let c = s.claim(c2.id).await.unwrap().unwrap();
    assert_eq!((c.state, c.ends_at, free(s).await), (ClaimState::Active, Some(100 + 10 * DAY_MS), 0), "a renewal's refund takes its time back, not the slot");
    assert_eq!(s.end_claims(100 + 10 * DAY_MS - 1, 10).await.unwrap(), 0, "not over yet");
    assert_eq!(s.end_claims(100 + 10 * DAY_MS + 1, 10).await.unwrap(), 1);
    assert_eq!(s.end_claims(100 + 10 * DAY_MS + 2, 10).await.unwrap(), 0, "ended once");
    assert_eq!((s.claim(c2.id).await.unwrap().unwrap().state, free(s).await), (ClaimState::Ended, 1));
    // Updates reach the active claims only; another merchant's animal takes none.
    let (c3, o3) = s.place_claim(u1, a.id, 1, 400, 1_000).await.unwrap();
    step(s, o3.id, OrderAction::Pay, Who::System, Change { payment: Some(("local".into(), "C3".into())), ..Change::default() }, 401).await.unwrap();
    assert!(s.post_update(u1, a.id, "x", &[], 402).await.unwrap().is_none());
    let u = s.post_update(merchant, a.id, "剪毛了", &["/uploads/a.jpg".into()], 403).await.unwrap().unwrap();
    assert_eq!(s.updates(a.id, None, 10).await.unwrap(), vec![u.clone()]);
    let notice = topics_with_payloads(s).await.into_iter().find_map(|e| match e {
        DurableEvent::AnimalUpdated(n) => Some(n),
        _ => None,
    });
    assert_eq!(notice.map(|n| n.claims), Some(vec![(u1, c3.id)]));
}

/// A claim takes its renewals along: its end cancels the unpaid one (paid later, it is a late
/// payment); its cancellation refunds the paid ones and cancels the unpaid ones, each with its
/// event, once; a payment computed while the claim stood is refused once the claim is gone.
async fn claims_take_their_renewals_along(s: &SqlStore) {
    use jiebanke_chat_core::commerce::claims::{ClaimState, ClaimStore, DAY_MS};
    use jiebanke_chat_core::commerce::rules::AnimalSpec;
    use jiebanke_chat_core::commerce::{apply_for_claim, ClaimLife, OrderEvent};
    let (merchant, _) = shop(s, "r-farm", 1).await;
    let a = s.create_animal(merchant, &AnimalSpec { species: "羊".into(), name: "咩咩".into(), photos: vec![], story: String::new(), price_fen: 100, period_days: 10, slots: 2 }, 5).await.unwrap();
    let u = s.upsert_user(&ident("r-u"), "U", 1).await.unwrap().id;
    let paid = |t: &str| Change { payment: Some(("local".into(), t.into())), ..Change::default() };

    // Ended: its unpaid renewal is cancelled; a payment for it then is late.
    let (c1, o1) = s.place_claim(u, a.id, 1, 10, 1_000).await.unwrap();
    step(s, o1.id, OrderAction::Pay, Who::System, paid("E1"), 100).await.unwrap();
    let r = s.renew_claim(u, c1.id, 1, 200, 1_000).await.unwrap();
    topics(s).await;
    assert_eq!(s.end_claims(100 + 10 * DAY_MS + 1, 10).await.unwrap(), 1);
    assert_eq!(s.claim(c1.id).await.unwrap().unwrap().state, ClaimState::Ended);
    assert_eq!(s.order(r.id).await.unwrap().unwrap().state, OrderState::Cancelled);
    assert_eq!(s.claim_life(c1.id).await.unwrap(), ClaimLife::Ended);
    let late = apply_for_claim(OrderState::Cancelled, OrderAction::Pay, Who::System, ClaimLife::Ended).unwrap();
    let o = s.transition(r.id, OrderState::Cancelled, &late, &paid("E2"), 100 + 10 * DAY_MS + 2).await.unwrap().unwrap();
    assert!(o.late_paid_at.is_some());
    assert_eq!(topics(s).await, vec!["order.cancelled", "order.late_payment"]);

    // Cancelled: every renewal follows, once.
    let (c2, o2) = s.place_claim(u, a.id, 1, 20, 1_000).await.unwrap();
    step(s, o2.id, OrderAction::Pay, Who::System, paid("C1"), 100).await.unwrap();
    let (r1, r2, r3) = (s.renew_claim(u, c2.id, 1, 200, 1_000).await.unwrap(), s.renew_claim(u, c2.id, 1, 201, 1_000).await.unwrap(), s.renew_claim(u, c2.id, 1, 202, 1_000).await.unwrap());
    step(s, r1.id, OrderAction::Pay, Who::System, paid("C2"), 300).await.unwrap();
    step(s, r2.id, OrderAction::Pay, Who::System, paid("C3"), 301).await.unwrap();
    step(s, r2.id, OrderAction::RequestRefund, Who::Buyer, Change { refund_reason: Some("r".into()), ..Change::default() }, 302).await.unwrap();
    // A payment of r3 chosen while the claim stood...
    let stale = apply_for_claim(OrderState::Created, OrderAction::Pay, Who::System, s.claim_life(c2.id).await.unwrap()).unwrap();
    assert_eq!(stale.event, OrderEvent::Paid);
    topics(s).await;
    step(s, o2.id, OrderAction::RequestRefund, Who::Buyer, Change { refund_reason: Some("r".into()), ..Change::default() }, 400).await.unwrap();
    step(s, o2.id, OrderAction::ApproveRefund, Who::Merchant, Change::default(), 401).await.unwrap();
    assert_eq!(s.claim(c2.id).await.unwrap().unwrap().state, ClaimState::Cancelled);
    let states: Vec<OrderState> = futures_states(s, &[r1.id, r2.id, r3.id]).await;
    assert_eq!(states, vec![OrderState::Refunded, OrderState::Refunded, OrderState::Cancelled]);
    let mut t = topics(s).await;
    t.sort();
    assert_eq!(t, vec!["order.cancelled", "order.refund_requested", "order.refunded", "order.refunded", "order.refunded"], "the first order and two renewals refunded, one cancelled");
    // ...is refused now (its order moved; and the claim is gone), and nothing is written.
    assert!(s.transition(r3.id, OrderState::Created, &stale, &paid("C4"), 500).await.unwrap().is_none());
    assert_eq!(s.animal(a.id).await.unwrap().unwrap().slots_free, 2, "both slots free once");
    assert!(topics(s).await.is_empty());
}

async fn futures_states(s: &SqlStore, ids: &[OrderId]) -> Vec<OrderState> {
    let mut out = Vec::new();
    for id in ids {
        out.push(s.order(*id).await.unwrap().unwrap().state);
    }
    out
}

async fn topics_with_payloads(s: &SqlStore) -> Vec<DurableEvent> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let relay: Arc<RelayFn> = Arc::new(move |evs: Vec<OutboxEvent>| {
        let sink = sink.clone();
        Box::pin(async move {
            sink.lock().unwrap().extend(evs.iter().map(|e| e.event.clone()));
            Ok(evs.iter().map(|e| (e.id, None)).collect())
        })
    });
    while s.relay_outbox(64, relay.as_ref()).await.unwrap() > 0 {}
    let out = seen.lock().unwrap().clone();
    out
}

macro_rules! both {
    ($($name:ident),*) => {
        mod on_sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { let b = super::sqlite().await; super::$name(&b.store).await; } )*
        }
        mod on_mysql {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { if let Some(b) = super::mysql().await { super::$name(&b.store).await; } } )*
        }
    };
}

both!(orders_take_and_return_stock, racing_orders_never_oversell, racing_transitions_one_wins, expiry_and_leases, claims_hold_and_free_slots, claims_take_their_renewals_along);
