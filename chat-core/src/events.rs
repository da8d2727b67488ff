//! Durable events: merchants' order alerts and the moderation feed's items travel from the
//! outbox (written in the transaction of their change) to their handler at least once.
//!
//! - `EventHandler::handle` is what every consumer runs: idempotent, so that a redelivered event
//!   changes nothing twice (an alert's id is its event's id).
//! - `run_relay` drains the outbox through a `RelayFn`: on the embedded default that calls the
//!   handler in-process (`local_relay`); in cluster mode the RabbitMQ adapter publishes with
//!   publisher confirms and a consumer calls the handler.
//! - `AlertService`: the use cases of order alerts.

use crate::error::{CoreError, Result};
use crate::ids::{EventId, UserId};
use crate::model::*;
use crate::ports::{AlertStore, Bus, Event, OrderStore, OutboxStore, RelayFn, UserStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Most events one relay pass hands over.
pub const RELAY_BATCH: u32 = 128;
/// The longest pause of the relay after a failed pass: an event not recorded as relayed is handed
/// over again at most this long after the failure (and at most the poll interval after a pass
/// that did not record it).
pub const RELAY_RETRY_MAX: Duration = Duration::from_secs(2);
/// Most pending alerts sent to a merchant's new session (the rest come with the next connect
/// once these are acked, or through REST).
pub const MAX_PENDING_ON_CONNECT: u32 = 500;

/// What every consumer of durable events runs.
pub struct EventHandler {
    store: Arc<dyn AlertStore>,
    bus: Arc<dyn Bus>,
    /// Gives refunded orders' money back (`order.refunded`, `order.late_payment`); without it
    /// (tests of other areas) those events are only acknowledged.
    orders: Option<Arc<crate::commerce::orders::OrderService>>,
}

impl EventHandler {
    pub fn new(store: Arc<dyn AlertStore>, bus: Arc<dyn Bus>) -> Self {
        Self { store, bus, orders: None }
    }
    /// The handler that also refunds through `orders`' payment provider.
    pub fn with_orders(mut self, orders: Arc<crate::commerce::orders::OrderService>) -> Self {
        self.orders = Some(orders);
        self
    }

    /// Handles one event. `Err(Unavailable)` means try again later; any other error means the
    /// event can never be handled (it goes to the dead letters).
    pub async fn handle(&self, ev: &OutboxEvent) -> Result<()> {
        match &ev.event {
            DurableEvent::OrderPaid(order) => {
                let alert = self.store.record_alert(ev.id, order, crate::now_ms()).await?;
                // A redelivered event whose alert was acked meanwhile is not shown again.
                if !alert.acked {
                    self.bus.publish(Event::OrderAlert { alert: Arc::new(alert) });
                }
            }
            DurableEvent::ModerationCreated(item) => {
                self.bus.publish(Event::Moderation { item: Arc::new(item.clone()) });
            }
            // Told to the applicant's open sessions (at most once: `GET /me/merchant` has it).
            DurableEvent::MerchantReviewed(notice) => {
                self.bus.publish(Event::MerchantReviewed { notice: Arc::new(notice.clone()) });
            }
            // Told to the claimants' open sessions (they read the rest with `GET …/updates`).
            DurableEvent::AnimalUpdated(notice) => {
                self.bus.publish(Event::ClaimUpdate { notice: Arc::new(notice.clone()) });
            }
            // The money goes back once: the provider refunds once per refund id, however often
            // the event is delivered; until it answers, the event is retried (`unavailable`).
            DurableEvent::OrderChanged(change) => {
                use crate::commerce::OrderEvent::{LatePayment, Refunded};
                if let (Refunded | LatePayment, Some(orders)) = (change.event, &self.orders) {
                    orders.refund_money(change).await?;
                }
            }
        }
        Ok(())
    }
}

/// The in-process relay of the embedded default (and of a cluster without RabbitMQ): hands each
/// event straight to the handler.
pub fn local_relay(handler: Arc<EventHandler>) -> Arc<RelayFn> {
    Arc::new(move |events: Vec<OutboxEvent>| {
        let handler = handler.clone();
        Box::pin(async move {
            let mut out = Vec::with_capacity(events.len());
            for ev in events {
                match handler.handle(&ev).await {
                    Ok(()) => out.push((ev.id, None)),
                    // Nothing is recorded for the batch: the handled ones come again, harmlessly.
                    Err(e @ CoreError::Unavailable(_)) => return Err(e),
                    Err(e) => {
                        tracing::warn!(event = %ev.id, error = %e, "event cannot be handled; dead-lettered");
                        out.push((ev.id, Some(e.to_string())));
                    }
                }
            }
            Ok(out)
        })
    })
}

/// Counts of the relay loop, for metrics.
#[derive(Default)]
pub struct RelayStats {
    pub relayed: std::sync::atomic::AtomicU64,
    pub dead: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
}

/// Drains the outbox through `relay` until the task is aborted: at once when `wake` fires (an
/// event was written here), at least every `poll` (events written on other nodes), and with a
/// growing pause after a failure (broker or database down: the outbox keeps the events).
pub async fn run_relay(store: Arc<dyn OutboxStore>, relay: Arc<RelayFn>, wake: Arc<Notify>, poll: Duration, stats: Arc<RelayStats>) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut backoff = Duration::from_millis(100);
    loop {
        match store.relay_outbox(RELAY_BATCH, relay.as_ref()).await {
            Ok(n) => {
                backoff = Duration::from_millis(100);
                stats.relayed.fetch_add(n as u64, Relaxed);
                if n as u32 >= RELAY_BATCH {
                    continue;
                }
                let _ = tokio::time::timeout(poll, wake.notified()).await;
            }
            Err(e) => {
                if stats.failures.fetch_add(1, Relaxed).is_multiple_of(50) {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox not relayed; events stay in the outbox");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RELAY_RETRY_MAX);
            }
        }
    }
}

/// Merchants' order alerts.
pub struct AlertService {
    orders: Arc<dyn OrderStore>,
    store: Arc<dyn AlertStore>,
    users: Arc<dyn UserStore>,
    wake: Arc<Notify>,
}

impl AlertService {
    /// `wake` is the relay's: it fires when an event was written.
    pub fn new(orders: Arc<dyn OrderStore>, store: Arc<dyn AlertStore>, users: Arc<dyn UserStore>, wake: Arc<Notify>) -> Self {
        Self { orders, store, users, wake }
    }

    /// Records a paid order; its alert reaches the merchant through the outbox.
    pub async fn order_paid(&self, order: NewOrder) -> Result<Order> {
        let mut need = vec![order.merchant];
        need.extend(order.buyer);
        let found = self.users.existing_users(&need).await?;
        if let Some(missing) = need.iter().find(|u| !found.contains(u)) {
            return Err(CoreError::NotFound(format!("user {missing}")));
        }
        let order = self.orders.create_paid_order(&order, crate::now_ms()).await?;
        self.wake.notify_one();
        Ok(order)
    }

    /// The merchant's alerts not acked yet, oldest first.
    pub async fn pending(&self, merchant: UserId, after: Option<EventId>, limit: u32) -> Result<Vec<OrderAlert>> {
        self.store.pending_alerts(merchant, after, limit.clamp(1, MAX_PENDING_ON_CONNECT)).await
    }

    /// What a session that just opened needs: `Err(Banned)` if the user was banned meanwhile
    /// (a ban racing the upgrade), else the alerts waiting for them, oldest first. One read
    /// when there are none.
    pub async fn on_session_open(&self, user: UserId) -> Result<Vec<OrderAlert>> {
        let check = self.store.session_check(user).await?;
        if check.erased {
            return Err(CoreError::Unauthorized("this account was erased".into()));
        }
        if check.banned {
            return Err(CoreError::Banned);
        }
        if check.pending_alerts == 0 {
            return Ok(Vec::new());
        }
        self.pending(user, None, MAX_PENDING_ON_CONNECT).await
    }

    /// The merchant acks an alert: it is not delivered again.
    pub async fn ack(&self, merchant: UserId, alert: EventId) -> Result<()> {
        if self.store.ack_alert(merchant, alert, crate::now_ms()).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound("alert".into()))
        }
    }
}
