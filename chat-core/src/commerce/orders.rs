//! Orders of the shop: one model for flower orders and animal claims, moved only by the state
//! machine of `state`. `OrderService` holds the use cases (place, pay, the payment's callback,
//! cancel, fulfil, complete, refunds, the expiry of unpaid orders); `ShopOrderStore` is its port.
//!
//! Money and stock are counted once because every change is one conditional write: the store
//! moves an order only from the state the service read (`transition` answers `None` when the
//! order moved meanwhile, and the service reads again), takes stock with a conditional decrement
//! in the order's own transaction, and writes the transition's event in that transaction too.

use super::pay::{Notice, PayParams, PaymentProvider, Prepay, Refund, RefundStatus};
use super::rules::{self, DeliverySlot, OrderInput};
use super::state::{apply, apply_for_claim, refuse_payment, Actor, ClaimLife, OrderAction, OrderEvent, OrderState, Transition};
use crate::error::{CoreError, Result};
use crate::ids::{OrderId, UserId};
use crate::moderation::ModerationService;
use crate::sealing::DataKey;
use crate::BusinessZone;
use async_trait::async_trait;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What an order is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    Flower,
    Claim,
    /// Recorded by hand (the development tool `POST /api/v1/admin/orders`, and issue 4's orders).
    Manual,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Flower => "flower",
            OrderKind::Claim => "claim",
            OrderKind::Manual => "manual",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "flower" => OrderKind::Flower,
            "claim" => OrderKind::Claim,
            "manual" => OrderKind::Manual,
            _ => return None,
        })
    }
}

/// One line of an order: the product as it was when ordered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderLine {
    pub product: i64,
    pub title: String,
    pub price_fen: i64,
    pub quantity: u32,
}

/// The recipient of a delivery, in clear (sealed as one value in the store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recipient {
    pub name: String,
    /// E.164.
    pub phone: String,
    pub address: String,
}

impl Recipient {
    /// `王* 138****5678`: what is shown where the whole recipient is not needed.
    pub fn masked(&self) -> String {
        let first: String = self.name.chars().take(1).collect();
        format!("{first}* {}", crate::phone::mask_phone(&self.phone))
    }
}

/// What the sealed recipient is bound to (with the buyer's id).
pub const RECIPIENT_PURPOSE: &str = "order_recipient";

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopOrder {
    pub id: OrderId,
    pub kind: OrderKind,
    pub merchant: UserId,
    pub buyer: Option<UserId>,
    pub state: OrderState,
    /// A one-line summary (`红玫瑰 ×2 等 3 件`), what lists and alerts show.
    pub item: String,
    pub amount_fen: i64,
    pub lines: Vec<OrderLine>,
    /// The recipient sealed for the buyer (`None` once erased, and for manual orders).
    pub recipient_sealed: Option<String>,
    pub recipient_masked: Option<String>,
    /// The delivery day (days since 1970-01-01, business zone).
    pub deliver_on: Option<i64>,
    pub slot: Option<DeliverySlot>,
    pub note: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Unpaid past this, the expiry job cancels it.
    pub expires_at: Option<i64>,
    pub paid_at: Option<i64>,
    /// The provider that took the money, and its id of the payment.
    pub provider: Option<String>,
    pub transaction_id: Option<String>,
    pub refund_reason: Option<String>,
    /// A payment arrived after the order was cancelled: when (it is refunded).
    pub late_paid_at: Option<i64>,
    /// The claim an order of kind `claim` places or renews.
    pub claim: Option<i64>,
}

impl ShopOrder {
    /// Our id of its payment at the provider (`JBK` and the order id, 6-32 characters as WeChat
    /// Pay wants).
    pub fn out_trade_no(&self) -> String {
        out_trade_no(self.id)
    }
}

pub fn out_trade_no(id: OrderId) -> String {
    format!("JBK{:012}", id.get())
}

/// The order an `out_trade_no` names.
pub fn order_of_trade(out_trade_no: &str) -> Option<OrderId> {
    let digits = out_trade_no.strip_prefix("JBK")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    OrderId::new(digits.parse().ok()?).ok()
}

/// An order about to be placed: the store reads the products, computes the amount and takes the
/// stock in one transaction.
#[derive(Debug, Clone)]
pub struct NewShopOrder {
    pub buyer: UserId,
    /// (product, quantity), one line per product.
    pub items: Vec<(i64, u32)>,
    pub recipient_sealed: String,
    pub recipient_masked: String,
    pub deliver_on: i64,
    pub slot: DeliverySlot,
    pub note: String,
    pub expires_at: i64,
}

/// What a transition writes besides the new state.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// A payment: (provider, transaction id).
    pub payment: Option<(String, String)>,
    pub refund_reason: Option<String>,
    /// A staff action's audit entry, written in the transition's transaction (the store fills
    /// `before` and `after` with the states).
    pub audit: Option<crate::audit::NewAudit>,
}

/// An order's event for the outbox (every transition but the payment, whose `order.paid`
/// carries the alert's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderChange {
    pub order: OrderId,
    pub merchant: UserId,
    pub buyer: Option<UserId>,
    pub event: OrderEvent,
    /// The state after, stored form.
    pub state: String,
    pub amount_fen: i64,
    pub at: i64,
}

/// Which orders a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub buyer: Option<UserId>,
    pub merchant: Option<UserId>,
    /// The wire name of a state (`refunding` matches both of its stored forms).
    pub state: Option<&'static str>,
}

/// What a merchant's dashboard counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantStats {
    /// Orders by stored state.
    pub by_state: Vec<(String, u64)>,
    /// (business day, revenue in fen, orders) of the orders paid since the start, by day; days
    /// without any are absent.
    pub days: Vec<(i64, i64, u64)>,
    pub rating_sum: i64,
    pub reviews: i64,
    pub unacked_alerts: u64,
}

/// The merchant's dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantDashboard {
    /// Every state's wire name with its count (zeros included).
    pub by_state: Vec<(&'static str, u64)>,
    /// The last 30 business days, oldest first: (`YYYY-MM-DD`, revenue in fen, orders paid).
    /// Revenue is what was paid that day and not refunded since.
    pub revenue: Vec<(String, i64, u64)>,
    pub rating: Option<f64>,
    pub reviews: i64,
    pub unacked_alerts: u64,
}

#[async_trait]
pub trait ShopOrderStore: Send + Sync + 'static {
    /// A merchant's counts: orders by state, revenue by business day since `since` (a day is
    /// `(paid_at + offset_ms) / 86400000`; refunded orders and late payments not counted), its
    /// rating and its alerts not acked.
    async fn merchant_stats(&self, merchant: UserId, since: i64, offset_ms: i64) -> Result<MerchantStats>;
    /// Places an order in one transaction: reads each product (visible, of an active merchant,
    /// all of one merchant, else `invalid` naming the line), snapshots its title and price,
    /// computes the amount (`rules::amount`), takes the stock with a conditional decrement
    /// (`out_of_stock` naming the product if any line cannot be served; nothing is taken then),
    /// inserts the order `created` and writes its `order.created` event.
    async fn place_order(&self, order: &NewShopOrder, now: i64) -> Result<ShopOrder>;
    async fn order(&self, id: OrderId) -> Result<Option<ShopOrder>>;
    /// Moves the order from `from` as `tr` says, in one transaction: the state (only if it is
    /// still `from`; `None` otherwise, nothing written), `change`, the stock back if
    /// `tr.restock`, and the transition's event (`order.paid` with the alert's order for a
    /// payment, else an `OrderChange`). A late payment is recorded once (`None` the second time).
    async fn transition(&self, id: OrderId, from: OrderState, tr: &Transition, change: &Change, now: i64) -> Result<Option<ShopOrder>>;
    /// Orders by id descending, before `before`, at most `limit`.
    async fn orders(&self, filter: &OrderFilter, before: Option<i64>, limit: u32) -> Result<Vec<ShopOrder>>;
    /// Orders still `created` whose `expires_at` is before `now`, oldest first.
    async fn expired_orders(&self, now: i64, limit: u32) -> Result<Vec<OrderId>>;
    /// The openid a WeChat user logged in with (the payer of a JSAPI payment).
    async fn wechat_openid(&self, user: UserId) -> Result<Option<String>>;
    /// Takes or renews the lease of job `name` for `holder` until `until` (if it is free,
    /// expired or already `holder`'s): true if `holder` has it now.
    async fn take_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool>;
    /// Where the claim an order of kind `claim` belongs to stands. `transition` checks it again
    /// under the claim's lock: a payment (`order.paid`) or a refused refund moves an order of a
    /// claim only while the claim stands as `apply_for_claim` was told (`None` otherwise); the
    /// claim's cancellation moves its other orders as `when_claim_cancelled` says, its end as
    /// `when_claim_ended` says, in the same transaction.
    async fn claim_life(&self, claim: i64) -> Result<ClaimLife>;
    /// Whether `merchant` is active (approved and not suspended): only its orders are paid.
    async fn merchant_active(&self, merchant: UserId) -> Result<bool>;
}

/// Who looks at an order, as the service sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Buyer(UserId),
    Merchant(UserId),
    /// Staff: an admin (refunds) or an operator (reading).
    Staff { user: UserId, admin: bool },
}

pub use super::outcomes::{PaymentOutcome, PaymentStats};

/// Configuration of the order use cases.
#[derive(Debug, Clone, Copy)]
pub struct OrderConfig {
    /// An unpaid order is cancelled after this (`JBK_ORDER_PAY_TIMEOUT_MS`).
    pub pay_timeout_ms: i64,
}

impl Default for OrderConfig {
    fn default() -> Self {
        OrderConfig { pay_timeout_ms: 15 * 60 * 1000 }
    }
}

pub struct OrderService {
    store: Arc<dyn ShopOrderStore>,
    moderation: Arc<ModerationService>,
    key: Arc<DataKey>,
    zone: BusinessZone,
    provider: Arc<dyn PaymentProvider>,
    config: OrderConfig,
    pub stats: PaymentStats,
}

/// How often a transition is tried again when the order moved between the read and the write.
const RETRIES: usize = 4;

fn conflict(state: OrderState, e: CoreError) -> CoreError {
    match e {
        CoreError::Conflict(message) => CoreError::StateConflict { state: state.as_str(), message },
        other => other,
    }
}

impl OrderService {
    pub fn new(
        store: Arc<dyn ShopOrderStore>,
        moderation: Arc<ModerationService>,
        key: Arc<DataKey>,
        zone: BusinessZone,
        provider: Arc<dyn PaymentProvider>,
        config: OrderConfig,
    ) -> Self {
        OrderService { store, moderation, key, zone, provider, config, stats: PaymentStats::default() }
    }

    pub fn provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.provider
    }
    pub fn zone(&self) -> &BusinessZone {
        &self.zone
    }

    /// Places a flower order for `buyer`: validated (every bad field named, texts screened),
    /// the recipient sealed, then the store takes the stock and records it `created`.
    pub async fn place(&self, buyer: UserId, input: OrderInput) -> Result<ShopOrder> {
        let now = crate::now_ms();
        let spec = rules::order(input, self.zone.day(now), Some(self.moderation.filter()))?;
        let recipient = Recipient { name: spec.recipient_name, phone: spec.recipient_phone, address: spec.address };
        let clear = serde_json::to_string(&recipient).map_err(|e| CoreError::unavailable(format!("recipient: {e}")))?;
        let new = NewShopOrder {
            buyer,
            items: spec.items,
            recipient_sealed: self.key.seal(buyer, RECIPIENT_PURPOSE, &clear)?,
            recipient_masked: recipient.masked(),
            deliver_on: spec.deliver_on,
            slot: spec.slot,
            note: spec.note,
            expires_at: now + self.config.pay_timeout_ms,
        };
        self.store.place_order(&new, now).await
    }

    /// The recipient in clear (the buyer's own orders; the merchant's while it must deliver).
    pub fn recipient(&self, order: &ShopOrder) -> Result<Option<Recipient>> {
        let (Some(buyer), Some(sealed)) = (order.buyer, order.recipient_sealed.as_deref()) else { return Ok(None) };
        let clear = self.key.open(buyer, RECIPIENT_PURPOSE, sealed)?;
        serde_json::from_str(&clear).map(Some).map_err(|_| CoreError::unavailable("a sealed recipient does not parse"))
    }

    /// Whether `viewer` sees the recipient in clear: the buyer always, the merchant while the
    /// order waits to be fulfilled (it must reach the recipient), nobody else.
    pub fn sees_recipient(viewer: Viewer, order: &ShopOrder) -> bool {
        match viewer {
            Viewer::Buyer(_) => true,
            Viewer::Merchant(_) => order.state == OrderState::Paid,
            Viewer::Staff { .. } => false,
        }
    }

    /// One order, if `viewer` may see it (a buyer their own, a merchant its own, staff all);
    /// `not_found` otherwise.
    pub async fn get(&self, viewer: Viewer, id: OrderId) -> Result<ShopOrder> {
        let order = self.store.order(id).await?.ok_or_else(|| CoreError::NotFound("order".into()))?;
        let visible = match viewer {
            Viewer::Buyer(me) => order.buyer == Some(me),
            Viewer::Merchant(me) => order.merchant == me,
            Viewer::Staff { .. } => true,
        };
        if visible { Ok(order) } else { Err(CoreError::NotFound("order".into())) }
    }

    pub async fn list(&self, filter: &OrderFilter, before: Option<i64>, limit: u32) -> Result<Vec<ShopOrder>> {
        self.store.orders(filter, before, limit.clamp(1, 101)).await
    }

    /// Asks `action` of order `id` as `viewer`: reads it, checks who asks (`not_found` if the
    /// order is not theirs to see), applies the state machine (409 with the current state if it
    /// does not allow it) and writes the transition from the state read; if the order moved
    /// meanwhile, tries again from the new state.
    async fn act(&self, viewer: Viewer, id: OrderId, action: OrderAction, change: Change) -> Result<ShopOrder> {
        for _ in 0..RETRIES {
            let order = self.get(viewer, id).await?;
            let actor = match viewer {
                Viewer::Buyer(_) => Actor::Buyer,
                Viewer::Merchant(_) => Actor::Merchant,
                Viewer::Staff { admin: true, .. } => Actor::Admin,
                Viewer::Staff { admin: false, .. } => return Err(CoreError::Forbidden("only an admin acts on orders".into())),
            };
            let tr = self.transition_of(&order, action, actor).await?.map_err(|e| conflict(order.state, e))?;
            if let Some(done) = self.store.transition(id, order.state, &tr, &change, crate::now_ms()).await? {
                return Ok(done);
            }
        }
        Err(CoreError::unavailable("the order kept changing; retry"))
    }

    /// The transition `action` makes on `order`: the state machine's, and for an order of a
    /// claim, as its claim stands (`apply_for_claim`). The outer error is the store's.
    async fn transition_of(&self, order: &ShopOrder, action: OrderAction, actor: Actor) -> Result<Result<Transition>> {
        Ok(match order.claim {
            Some(claim) => apply_for_claim(order.state, action, actor, self.store.claim_life(claim).await?),
            None => apply(order.state, action, actor),
        })
    }

    pub async fn cancel(&self, buyer: UserId, id: OrderId) -> Result<ShopOrder> {
        self.act(Viewer::Buyer(buyer), id, OrderAction::Cancel, Change::default()).await
    }
    pub async fn complete(&self, buyer: UserId, id: OrderId) -> Result<ShopOrder> {
        self.act(Viewer::Buyer(buyer), id, OrderAction::Complete, Change::default()).await
    }
    pub async fn fulfil(&self, merchant: UserId, id: OrderId) -> Result<ShopOrder> {
        self.act(Viewer::Merchant(merchant), id, OrderAction::Fulfil, Change::default()).await
    }
    /// The buyer asks for the whole order's money back, with a reason (1-200 characters,
    /// screened).
    pub async fn request_refund(&self, buyer: UserId, id: OrderId, reason: &str) -> Result<ShopOrder> {
        let reason = refund_reason(reason, &self.moderation)?;
        self.act(Viewer::Buyer(buyer), id, OrderAction::RequestRefund, Change { refund_reason: Some(reason), ..Change::default() }).await
    }
    /// The merchant (or an admin) decides a refund; approved, the money goes back through the
    /// provider (the `order.refunded` event's handler, `refund_money`).
    pub async fn decide_refund(&self, viewer: Viewer, id: OrderId, approve: bool) -> Result<ShopOrder> {
        let action = if approve { OrderAction::ApproveRefund } else { OrderAction::RejectRefund };
        self.act(viewer, id, action, Change::default()).await
    }

    /// An admin gives the money of an order whose refund was asked back (audited).
    pub async fn admin_refund(&self, actor: &crate::audit::Actor, id: OrderId) -> Result<ShopOrder> {
        self.moderation.require_admin(actor.user).await?;
        let audit = crate::audit::NewAudit {
            actor: actor.user,
            action: crate::audit::AuditAction::OrderRefund,
            target: format!("order:{id}"),
            before: None,
            after: None,
            ip: actor.ip.clone(),
        };
        self.act(Viewer::Staff { user: actor.user, admin: true }, id, OrderAction::ApproveRefund, Change { audit: Some(audit), ..Change::default() }).await
    }

    /// Staff read every order; `forbidden` for anyone else.
    pub async fn staff_viewer(&self, me: UserId) -> Result<Viewer> {
        let user = self.moderation.require_staff(me).await?;
        Ok(Viewer::Staff { user: me, admin: user.role == crate::Role::Admin })
    }

    /// What the buyer's client needs to pay order `id` (theirs, `created`, not expired).
    pub async fn pay(&self, buyer: UserId, id: OrderId) -> Result<PayParams> {
        let order = self.get(Viewer::Buyer(buyer), id).await?;
        if order.state != OrderState::Created {
            return Err(CoreError::StateConflict { state: order.state.as_str(), message: "only an order waiting for payment is paid".into() });
        }
        let now = crate::now_ms();
        let expires_at = order.expires_at.unwrap_or(now);
        if expires_at <= now {
            return Err(CoreError::StateConflict { state: order.state.as_str(), message: "the time to pay this order is over".into() });
        }
        if !self.store.merchant_active(order.merchant).await? {
            return Err(CoreError::StateConflict { state: order.state.as_str(), message: "this merchant is suspended: the order cannot be paid (商家已暂停营业)".into() });
        }
        if let Some(claim) = order.claim {
            if self.store.claim_life(claim).await? != ClaimLife::Live {
                return Err(CoreError::StateConflict { state: order.state.as_str(), message: "this claim is over or cancelled: its renewal cannot be paid".into() });
            }
        }
        let payer_openid = self.store.wechat_openid(buyer).await?;
        let mut description: String = format!("结伴客 {}", order.item);
        while description.len() > 127 {
            description.pop();
        }
        let prepay = Prepay { out_trade_no: order.out_trade_no(), description, amount_fen: order.amount_fen, payer_openid, expires_at };
        self.provider.prepay(&prepay).await
    }

    /// A verified payment callback's transaction: pays the order it names once. Refused (and
    /// nothing changes) for an unknown order or a wrong amount. A payment for an order
    /// cancelled meanwhile is recorded once and refunded (`order.late_payment`).
    pub async fn payment_notice(&self, notice: &Notice) -> Result<PaymentOutcome> {
        let (out_trade_no, transaction_id, trade_state, amount_total) = match notice {
            Notice::Transaction { out_trade_no, transaction_id, trade_state, amount_total, .. } => (out_trade_no, transaction_id, trade_state, amount_total),
            Notice::Refund { out_trade_no, out_refund_no, refund_status, refund_fen } => {
                // The refund was asked when the order became `refunded` (or a late payment was
                // recorded), under our refund id for it and for its whole amount; this says how
                // it ended. A refund we never asked for is refused (nothing is counted as
                // confirmed). Anything but SUCCESS needs staff.
                let order = match order_of_trade(out_trade_no) {
                    Some(id) => self.store.order(id).await?,
                    None => None,
                };
                let asked = order.is_some_and(|o| {
                    let refunded = o.state == OrderState::Refunded || (o.state == OrderState::Cancelled && o.late_paid_at.is_some());
                    refunded && *out_refund_no == refund_no(&o) && *refund_fen == o.amount_fen
                });
                if !asked {
                    self.stats.refused_refund.fetch_add(1, Relaxed);
                    tracing::warn!(%out_trade_no, %out_refund_no, "a refund callback for a refund never asked: refused");
                    return Err(CoreError::invalid("no such refund was asked"));
                }
                if refund_status == "SUCCESS" {
                    self.stats.refunds_confirmed.fetch_add(1, Relaxed);
                } else {
                    self.stats.refund_failures.fetch_add(1, Relaxed);
                    tracing::error!(%out_trade_no, %out_refund_no, %refund_status, refund_fen, "a refund did not succeed at the provider: staff must look");
                }
                return Ok(PaymentOutcome::RefundNotice);
            }
        };
        let unknown = || CoreError::NotFound(format!("no order {out_trade_no}"));
        let Some(id) = order_of_trade(out_trade_no) else {
            self.stats.refused_unknown_order.fetch_add(1, Relaxed);
            return Err(unknown());
        };
        for _ in 0..RETRIES {
            let Some(order) = self.store.order(id).await? else {
                self.stats.refused_unknown_order.fetch_add(1, Relaxed);
                return Err(unknown());
            };
            if *amount_total != order.amount_fen {
                self.stats.refused_amount.fetch_add(1, Relaxed);
                return Err(CoreError::invalid(format!("the amount paid ({amount_total} fen) is not the order's ({} fen)", order.amount_fen)));
            }
            if trade_state != "SUCCESS" {
                self.stats.not_paid.fetch_add(1, Relaxed);
                return Ok(PaymentOutcome::NotPaid);
            }
            let already = order.transaction_id.as_deref() == Some(transaction_id.as_str());
            if already || (order.state == OrderState::Cancelled && order.late_paid_at.is_some()) || (order.state != OrderState::Created && order.state != OrderState::Cancelled) {
                // Paid before (by this payment, or the order went on): the callback came again.
                self.stats.duplicate.fetch_add(1, Relaxed);
                return Ok(PaymentOutcome::Duplicate);
            }
            let mut tr = self.transition_of(&order, OrderAction::Pay, Actor::System).await??;
            if tr.event == OrderEvent::Paid && !self.store.merchant_active(order.merchant).await? {
                // Suspended before this payment: the order is not paid; the money goes back.
                tr = refuse_payment(tr);
            }
            let change = Change { payment: Some((self.provider.name().to_owned(), transaction_id.clone())), ..Change::default() };
            if self.store.transition(id, order.state, &tr, &change, crate::now_ms()).await?.is_some() {
                return Ok(if tr.event == OrderEvent::LatePayment {
                    self.stats.late.fetch_add(1, Relaxed);
                    PaymentOutcome::LatePayment
                } else {
                    self.stats.paid.fetch_add(1, Relaxed);
                    PaymentOutcome::Paid
                });
            }
        }
        Err(CoreError::unavailable("the order kept changing; retry"))
    }

    /// Gives the money of a refunded order (or of a late payment) back through the provider:
    /// idempotent by the refund's id, so a redelivered event refunds once. `unavailable` (try
    /// again later) while the provider cannot be reached.
    pub async fn refund_money(&self, change: &OrderChange) -> Result<()> {
        let Some(order) = self.store.order(change.order).await? else {
            return Err(CoreError::NotFound(format!("order {}", change.order)));
        };
        let reason = match change.event {
            OrderEvent::LatePayment => "订单已取消，退回付款 (order was cancelled)".to_owned(),
            _ => order.refund_reason.clone().unwrap_or_else(|| "退款 (refund)".into()),
        };
        let refund = Refund {
            out_trade_no: order.out_trade_no(),
            out_refund_no: refund_no(&order),
            reason,
            refund_fen: order.amount_fen,
            total_fen: order.amount_fen,
        };
        match self.provider.refund(&refund).await {
            Ok(RefundStatus::Success | RefundStatus::Processing) => {
                self.stats.refunds.fetch_add(1, Relaxed);
                Ok(())
            }
            Ok(RefundStatus::Failed) => {
                self.stats.refund_failures.fetch_add(1, Relaxed);
                tracing::error!(order = %order.id, "the provider cannot refund this order: staff must look");
                Ok(())
            }
            Err(e) => {
                self.stats.refund_failures.fetch_add(1, Relaxed);
                Err(CoreError::unavailable(format!("refund of order {}: {e}", order.id)))
            }
        }
    }

    /// Cancels the orders unpaid past their time, up to `limit`; each is cancelled once however
    /// many nodes run this (the store moves only a `created` order). Answers how many.
    pub async fn expire_due(&self, limit: u32) -> Result<usize> {
        let now = crate::now_ms();
        let mut n = 0;
        for id in self.store.expired_orders(now, limit).await? {
            let Some(order) = self.store.order(id).await? else { continue };
            let Ok(tr) = apply(order.state, OrderAction::Expire, Actor::System) else { continue };
            if self.store.transition(id, order.state, &tr, &Change::default(), now).await?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The merchant's dashboard: orders by state, revenue of the last 30 business days, rating,
    /// alerts not acked.
    pub async fn merchant_dashboard(&self, me: UserId) -> Result<MerchantDashboard> {
        const DAYS: i64 = 30;
        let now = crate::now_ms();
        let today = self.zone.day(now);
        let offset = today * 86_400_000 - self.zone.day_start(now);
        let since = self.zone.day_start(now) - (DAYS - 1) * 86_400_000;
        let stats = self.store.merchant_stats(me, since, offset).await?;
        let mut by_state: Vec<(&'static str, u64)> = Vec::new();
        for s in OrderState::ALL {
            let n = stats.by_state.iter().filter(|(k, _)| k == s.stored()).map(|(_, n)| *n).sum::<u64>();
            match by_state.iter_mut().find(|(k, _)| *k == s.as_str()) {
                Some((_, total)) => *total += n,
                None => by_state.push((s.as_str(), n)),
            }
        }
        let revenue = (today - DAYS + 1..=today)
            .map(|d| {
                let (fen, n) = stats.days.iter().find(|(day, _, _)| *day == d).map(|(_, f, n)| (*f, *n)).unwrap_or((0, 0));
                (crate::day::Day::from_days(d as i32).to_string(), fen, n)
            })
            .collect();
        let rating = (stats.reviews > 0).then(|| (stats.rating_sum as f64 / stats.reviews as f64 * 10.0).round() / 10.0);
        Ok(MerchantDashboard { by_state, revenue, rating, reviews: stats.reviews, unacked_alerts: stats.unacked_alerts })
    }

    /// Takes (or keeps) the lease of the expiry job for `holder`, `ttl_ms` long.
    pub async fn lease(&self, holder: &str, ttl_ms: i64) -> Result<bool> {
        let now = crate::now_ms();
        self.store.take_lease("order_expiry", holder, now, now + ttl_ms).await
    }
}

fn refund_reason(raw: &str, moderation: &ModerationService) -> Result<String> {
    let mut bad = Vec::new();
    let reason = rules::text("reason", raw, 1, 200, Some(moderation.filter()), &mut bad);
    if bad.is_empty() { Ok(reason) } else { Err(CoreError::Fields(bad)) }
}

/// Our id of the refund of `order` (one refund per order: its whole amount).
pub fn refund_no(order: &ShopOrder) -> String {
    format!("{}R", order.out_trade_no())
}

/// The summary of an order's lines: the first title, its quantity, and how many items in all.
pub fn summary(lines: &[OrderLine]) -> String {
    let total: u32 = lines.iter().map(|l| l.quantity).sum();
    match lines.first() {
        None => String::new(),
        Some(l) if lines.len() == 1 => format!("{} ×{}", l.title, l.quantity),
        Some(l) => format!("{} ×{} 等 {total} 件", l.title, l.quantity),
    }
}

/// Runs the expiry of unpaid orders (and the end of claims whose time is over) until the task
/// is aborted: every `every`, the node that holds the job's lease (one node at a time in a
/// cluster; the lease lasts three rounds, so a dead holder is replaced) does what is due.
pub async fn run_expiry(orders: Arc<OrderService>, claims: Arc<super::claims::ClaimService>, holder: String, every: std::time::Duration) {
    let ttl = (every.as_millis() as i64 * 3).max(1000);
    loop {
        tokio::time::sleep(every).await;
        match orders.lease(&holder, ttl).await {
            Ok(true) => loop {
                match claims.end_due(200).await {
                    Ok(n) if n > 0 => tracing::info!(ended = n, "claims ended"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "ending claims failed; tried again next round"),
                }
                match orders.expire_due(200).await {
                    Ok(n) if n >= 200 => continue,
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(cancelled = n, "unpaid orders cancelled");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "order expiry failed; tried again next round");
                        break;
                    }
                }
            },
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "order expiry lease not taken"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_numbers_round_trip() {
        let id = OrderId::new(42).unwrap();
        assert_eq!(out_trade_no(id), "JBK000000000042");
        assert_eq!(order_of_trade("JBK000000000042"), Some(id));
        for bad in ["", "JBK", "JBK-1", "XYZ000000000042", "JBK00000000004a", "JBK0"] {
            assert_eq!(order_of_trade(bad), None, "{bad}");
        }
    }

    #[test]
    fn recipients_are_masked() {
        let r = Recipient { name: "王小花".into(), phone: "+8613812345678".into(), address: "大理".into() };
        assert_eq!(r.masked(), "王* 138****5678");
    }

    #[test]
    fn summaries() {
        let l = |t: &str, q| OrderLine { product: 1, title: t.into(), price_fen: 1, quantity: q };
        assert_eq!(summary(&[l("红玫瑰", 2)]), "红玫瑰 ×2");
        assert_eq!(summary(&[l("红玫瑰", 2), l("百合", 1)]), "红玫瑰 ×2 等 3 件");
    }

    #[test]
    fn who_sees_the_recipient() {
        let buyer = UserId::new(1).unwrap();
        let shop = UserId::new(2).unwrap();
        let mut o = ShopOrder {
            id: OrderId::new(1).unwrap(),
            kind: OrderKind::Flower,
            merchant: shop,
            buyer: Some(buyer),
            state: OrderState::Created,
            item: String::new(),
            amount_fen: 1,
            lines: vec![],
            recipient_sealed: None,
            recipient_masked: None,
            deliver_on: None,
            slot: None,
            note: String::new(),
            created_at: 0,
            updated_at: 0,
            expires_at: None,
            paid_at: None,
            provider: None,
            transaction_id: None,
            refund_reason: None,
            late_paid_at: None,
            claim: None,
        };
        let seen = |o: &ShopOrder| OrderService::sees_recipient(Viewer::Merchant(shop), o);
        assert!(!seen(&o), "masked before payment");
        o.state = OrderState::Paid;
        assert!(seen(&o), "whole while it must be delivered");
        o.state = OrderState::Completed;
        assert!(!seen(&o), "masked after");
        assert!(OrderService::sees_recipient(Viewer::Buyer(buyer), &o));
        assert!(!OrderService::sees_recipient(Viewer::Staff { user: buyer, admin: true }, &o));
    }
}
