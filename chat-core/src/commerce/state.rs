//! The order state machine, one for flower orders and animal claims:
//!
//! ```text
//! created ──pay──▶ paid ──fulfil──▶ fulfilled ──complete──▶ completed
//!    │               │                  │
//!    │ cancel,       └──request_refund──┴──▶ refunding ──approve──▶ refunded
//!    │ expire                                   │
//!    ▼                                          └──reject──▶ (back where it came from)
//! cancelled ──pay (a payment that arrived late)──▶ cancelled, refunded through the provider
//! ```
//!
//! Every transition says which event it writes (in the same transaction as the change) and
//! whether the stock (or the claim's slot) goes back. Who may ask for each action is checked
//! here too (`Actor`).

use crate::error::{CoreError, Result};

/// Where an order stands. `Refunding` remembers where it came from (a rejected refund goes
/// back there; stock returns on refund only if it was not fulfilled yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    Created,
    Paid,
    Fulfilled,
    Completed,
    Cancelled,
    Refunding { from: RefundFrom },
    Refunded,
}

/// The states a refund may be asked from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundFrom {
    Paid,
    Fulfilled,
}

impl OrderState {
    pub const ALL: [OrderState; 8] = [
        OrderState::Created,
        OrderState::Paid,
        OrderState::Fulfilled,
        OrderState::Completed,
        OrderState::Cancelled,
        OrderState::Refunding { from: RefundFrom::Paid },
        OrderState::Refunding { from: RefundFrom::Fulfilled },
        OrderState::Refunded,
    ];
    /// The wire name (`refunding` whichever state it came from).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Created => "created",
            OrderState::Paid => "paid",
            OrderState::Fulfilled => "fulfilled",
            OrderState::Completed => "completed",
            OrderState::Cancelled => "cancelled",
            OrderState::Refunding { .. } => "refunding",
            OrderState::Refunded => "refunded",
        }
    }
    /// How it is stored: the wire name, and for `refunding` where it came from.
    pub fn stored(self) -> &'static str {
        match self {
            OrderState::Refunding { from: RefundFrom::Paid } => "refunding_paid",
            OrderState::Refunding { from: RefundFrom::Fulfilled } => "refunding_fulfilled",
            s => s.as_str(),
        }
    }
    pub fn from_stored(s: &str) -> Option<Self> {
        OrderState::ALL.into_iter().find(|st| st.stored() == s)
    }
    /// No action but a late payment's refund changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, OrderState::Completed | OrderState::Cancelled | OrderState::Refunded)
    }
}

/// What is asked of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderAction {
    /// The payment provider says it is paid.
    Pay,
    Cancel,
    /// Unpaid past `JBK_ORDER_PAY_TIMEOUT_MS`.
    Expire,
    Fulfil,
    Complete,
    RequestRefund,
    ApproveRefund,
    RejectRefund,
}

impl OrderAction {
    pub const ALL: [OrderAction; 8] = [
        OrderAction::Pay,
        OrderAction::Cancel,
        OrderAction::Expire,
        OrderAction::Fulfil,
        OrderAction::Complete,
        OrderAction::RequestRefund,
        OrderAction::ApproveRefund,
        OrderAction::RejectRefund,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            OrderAction::Pay => "pay",
            OrderAction::Cancel => "cancel",
            OrderAction::Expire => "expire",
            OrderAction::Fulfil => "fulfil",
            OrderAction::Complete => "complete",
            OrderAction::RequestRefund => "request_refund",
            OrderAction::ApproveRefund => "approve_refund",
            OrderAction::RejectRefund => "reject_refund",
        }
    }
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    Buyer,
    /// The merchant whose products the order holds.
    Merchant,
    /// Staff (an admin: refunds are theirs too).
    Admin,
    /// The payment provider's callback, the expiry job.
    System,
}

impl Actor {
    pub const ALL: [Actor; 4] = [Actor::Buyer, Actor::Merchant, Actor::Admin, Actor::System];
}

/// The event a transition writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// Placed (not a transition: the order begins).
    Created,
    Paid,
    Fulfilled,
    Completed,
    Cancelled,
    RefundRequested,
    RefundRejected,
    Refunded,
    /// A payment for an order cancelled meanwhile: refunded through the provider.
    LatePayment,
}

impl OrderEvent {
    /// The outbox topic.
    pub fn topic(self) -> &'static str {
        match self {
            OrderEvent::Created => "order.created",
            OrderEvent::Paid => "order.paid",
            OrderEvent::Fulfilled => "order.fulfilled",
            OrderEvent::Completed => "order.completed",
            OrderEvent::Cancelled => "order.cancelled",
            OrderEvent::RefundRequested => "order.refund_requested",
            OrderEvent::RefundRejected => "order.refund_rejected",
            OrderEvent::Refunded => "order.refunded",
            OrderEvent::LatePayment => "order.late_payment",
        }
    }
    pub const ALL: [OrderEvent; 9] = [
        OrderEvent::Created,
        OrderEvent::Paid,
        OrderEvent::Fulfilled,
        OrderEvent::Completed,
        OrderEvent::Cancelled,
        OrderEvent::RefundRequested,
        OrderEvent::RefundRejected,
        OrderEvent::Refunded,
        OrderEvent::LatePayment,
    ];
    pub fn from_topic(topic: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.topic() == topic)
    }
}

/// What an allowed action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: OrderState,
    pub event: OrderEvent,
    /// The stock (or the claim's slot) the order took goes back.
    pub restock: bool,
    /// Money goes back to the buyer through the provider.
    pub refund_money: bool,
}

fn t(to: OrderState, event: OrderEvent, restock: bool, refund_money: bool) -> Transition {
    Transition { to, event, restock, refund_money }
}

/// Who may ask for `action`.
pub fn may(actor: Actor, action: OrderAction) -> bool {
    use OrderAction::*;
    match action {
        Pay | Expire => actor == Actor::System,
        Cancel | Complete | RequestRefund => actor == Actor::Buyer,
        Fulfil => actor == Actor::Merchant,
        ApproveRefund | RejectRefund => matches!(actor, Actor::Merchant | Actor::Admin),
    }
}

/// The transition `action` makes from `state`, asked by `actor`. `Forbidden` if the actor may
/// not ask for it; `Conflict` naming the current state if the state does not allow it.
pub fn apply(state: OrderState, action: OrderAction, actor: Actor) -> Result<Transition> {
    use OrderAction::*;
    use OrderState::*;
    if !may(actor, action) {
        return Err(CoreError::Forbidden(format!("{} may not be asked by this caller", action.as_str())));
    }
    Ok(match (state, action) {
        (Created, Pay) => t(Paid, OrderEvent::Paid, false, false),
        (Created, Cancel) | (Created, Expire) => t(Cancelled, OrderEvent::Cancelled, true, false),
        (Cancelled, Pay) => t(Cancelled, OrderEvent::LatePayment, false, true),
        (Paid, Fulfil) => t(Fulfilled, OrderEvent::Fulfilled, false, false),
        (Fulfilled, Complete) => t(Completed, OrderEvent::Completed, false, false),
        (Paid, RequestRefund) => t(Refunding { from: RefundFrom::Paid }, OrderEvent::RefundRequested, false, false),
        (Fulfilled, RequestRefund) => t(Refunding { from: RefundFrom::Fulfilled }, OrderEvent::RefundRequested, false, false),
        (Refunding { from }, ApproveRefund) => t(Refunded, OrderEvent::Refunded, from == RefundFrom::Paid, true),
        (Refunding { from: RefundFrom::Paid }, RejectRefund) => t(Paid, OrderEvent::RefundRejected, false, false),
        (Refunding { from: RefundFrom::Fulfilled }, RejectRefund) => t(Fulfilled, OrderEvent::RefundRejected, false, false),
        (s, a) => return Err(CoreError::Conflict(format!("an order that is {} cannot {}", s.as_str(), a.as_str()))),
    })
}

/// Where the claim an order places or renews stands, as the claim rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimLife {
    /// Pending (its first order unpaid) or active: its orders move as any order does.
    Live,
    /// Its time is over: a payment that arrives now buys nothing.
    Ended,
    /// Its first order was cancelled or refunded: none of its money is kept.
    Cancelled,
}

/// The transition `action` makes on an order of a claim whose claim stands as `claim` says:
/// `apply`, except that a payment for a claim that is no longer live is a late payment (the
/// order is cancelled and the money goes back), and a refund of an order of a cancelled claim
/// cannot be rejected (409).
pub fn apply_for_claim(state: OrderState, action: OrderAction, actor: Actor, claim: ClaimLife) -> Result<Transition> {
    let tr = apply(state, action, actor)?;
    match (claim, tr.event) {
        (ClaimLife::Live, _) => Ok(tr),
        (_, OrderEvent::Paid) => Ok(t(OrderState::Cancelled, OrderEvent::LatePayment, false, true)),
        (ClaimLife::Cancelled, OrderEvent::RefundRejected) => {
            Err(CoreError::Conflict(format!("an order that is {} cannot be refused a refund once its claim is cancelled", state.as_str())))
        }
        _ => Ok(tr),
    }
}

/// A payment an order can no longer take (its merchant was suspended before it was paid): an
/// order waiting for payment is cancelled, its stock back, and the money goes back as a late
/// payment's. Any other transition is left as it is.
pub fn refuse_payment(tr: Transition) -> Transition {
    if tr.event == OrderEvent::Paid {
        t(OrderState::Cancelled, OrderEvent::LatePayment, true, true)
    } else {
        tr
    }
}

/// What a claim's cancellation does to one of its other orders (renewals): unpaid, it is
/// cancelled; paid (whatever happened since, a refund asked or the order completed), the money
/// goes back; cancelled or refunded already, nothing. The claim's slot is the first order's,
/// so nothing is restocked here.
pub fn when_claim_cancelled(state: OrderState) -> Option<Transition> {
    use OrderState::*;
    match state {
        Created => Some(t(Cancelled, OrderEvent::Cancelled, false, false)),
        Paid | Fulfilled | Completed | Refunding { .. } => Some(t(Refunded, OrderEvent::Refunded, false, true)),
        Cancelled | Refunded => None,
    }
}

/// What a claim's natural end does to its other orders: an unpaid renewal is cancelled (paying
/// it could no longer extend anything); paid ones were spent on the time that just ended.
pub fn when_claim_ended(state: OrderState) -> Option<Transition> {
    (state == OrderState::Created).then(|| t(OrderState::Cancelled, OrderEvent::Cancelled, false, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderAction::*;
    use OrderState::*;

    const RP: OrderState = Refunding { from: RefundFrom::Paid };
    const RF: OrderState = Refunding { from: RefundFrom::Fulfilled };

    /// Every state × action, as the table the issue describes: `Some((to, event, restock,
    /// refund))` or `None` for 409.
    #[test]
    fn every_state_and_action() {
        type Row = (OrderState, OrderAction, Option<(OrderState, OrderEvent, bool, bool)>);
        let allowed: Vec<Row> = vec![
            (Created, Pay, Some((Paid, OrderEvent::Paid, false, false))),
            (Created, Cancel, Some((Cancelled, OrderEvent::Cancelled, true, false))),
            (Created, Expire, Some((Cancelled, OrderEvent::Cancelled, true, false))),
            (Cancelled, Pay, Some((Cancelled, OrderEvent::LatePayment, false, true))),
            (Paid, Fulfil, Some((Fulfilled, OrderEvent::Fulfilled, false, false))),
            (Fulfilled, Complete, Some((Completed, OrderEvent::Completed, false, false))),
            (Paid, RequestRefund, Some((RP, OrderEvent::RefundRequested, false, false))),
            (Fulfilled, RequestRefund, Some((RF, OrderEvent::RefundRequested, false, false))),
            (RP, ApproveRefund, Some((Refunded, OrderEvent::Refunded, true, true))),
            (RF, ApproveRefund, Some((Refunded, OrderEvent::Refunded, false, true))),
            (RP, RejectRefund, Some((Paid, OrderEvent::RefundRejected, false, false))),
            (RF, RejectRefund, Some((Fulfilled, OrderEvent::RefundRejected, false, false))),
        ];
        let mut checked = 0;
        for state in OrderState::ALL {
            for action in OrderAction::ALL {
                let want = allowed.iter().find(|(s, a, _)| *s == state && *a == action).and_then(|r| r.2);
                let actor = Actor::ALL.into_iter().find(|a| may(*a, action)).unwrap();
                let got = apply(state, action, actor);
                match want {
                    Some((to, event, restock, refund_money)) => {
                        assert_eq!(got.unwrap(), Transition { to, event, restock, refund_money }, "{state:?} {action:?}")
                    }
                    None => {
                        let Err(CoreError::Conflict(m)) = got else { panic!("{state:?} {action:?}: {got:?}") };
                        assert!(m.contains(state.as_str()), "the 409 names the current state: {m}");
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 64);
    }

    #[test]
    fn only_the_right_caller_asks() {
        for action in OrderAction::ALL {
            for actor in Actor::ALL {
                if !may(actor, action) {
                    assert!(matches!(apply(Created, action, actor), Err(CoreError::Forbidden(_))), "{actor:?} {action:?}");
                }
            }
        }
        assert!(may(Actor::Admin, ApproveRefund) && may(Actor::Merchant, RejectRefund) && !may(Actor::Buyer, ApproveRefund));
        assert!(!may(Actor::Buyer, Pay), "a buyer cannot declare their order paid");
    }

    #[test]
    fn a_refused_payment_gives_stock_and_money_back() {
        let paid = apply(Created, Pay, Actor::System).unwrap();
        assert_eq!(refuse_payment(paid), Transition { to: Cancelled, event: OrderEvent::LatePayment, restock: true, refund_money: true });
        let late = apply(Cancelled, Pay, Actor::System).unwrap();
        assert_eq!(refuse_payment(late), late, "a late payment stays one (its stock went back at the cancel)");
    }

    #[test]
    fn stored_names_round_trip() {
        for s in OrderState::ALL {
            assert_eq!(OrderState::from_stored(s.stored()), Some(s));
        }
        assert_eq!(OrderState::from_stored("lost"), None);
    }

    /// A small deterministic generator, so the property test needs no crate and always runs
    /// the same cases (10,000 random walks of up to 12 actions).
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Whatever happens to an order: the stock it took goes back at most once, and only when
    /// it was not delivered; money goes back only if it was paid, at most once; a final state
    /// stays final; every allowed step writes exactly one event.
    #[test]
    fn random_walks_keep_stock_and_money_straight() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..10_000 {
            let (mut state, mut restocked, mut paid, mut refunded, mut fulfilled) = (Created, 0, 0, 0, false);
            for _ in 0..12 {
                let action = OrderAction::ALL[(rng.next() % 8) as usize];
                let actor = Actor::ALL[(rng.next() % 4) as usize];
                let before = state;
                match apply(state, action, actor) {
                    Ok(tr) => {
                        assert!(may(actor, action));
                        if before.is_final() {
                            assert_eq!((before, tr.to, tr.event), (Cancelled, Cancelled, OrderEvent::LatePayment), "a final state stays final");
                        }
                        if action == Pay {
                            paid += 1;
                        }
                        if tr.to == Fulfilled {
                            fulfilled = true;
                        }
                        if tr.restock {
                            restocked += 1;
                            assert!(!fulfilled || before == Created, "delivered goods are not restocked");
                        }
                        if tr.refund_money {
                            refunded += 1;
                        }
                        state = tr.to;
                    }
                    Err(CoreError::Conflict(_)) | Err(CoreError::Forbidden(_)) => assert_eq!(state, before),
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert!(restocked <= 1, "stock back twice");
            assert!(refunded <= paid, "more refunds than payments");
            assert!(state != Refunded || refunded == 1);
        }
    }

    /// Walks of one order of a claim (a renewal) while its claim may be cancelled or end at any
    /// step: the store applies `when_claim_cancelled` or `when_claim_ended` to the order at that
    /// moment, and `apply_for_claim` to every action after. Once the claim is cancelled no
    /// money stays (every payment, before or after, goes back); once it is over or cancelled,
    /// a payment is a late payment; a refund of a cancelled claim's order is never refused;
    /// money never goes back more often than it came.
    #[test]
    fn claim_walks_keep_no_money_for_a_cancelled_claim() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let (mut cancelled_walks, mut ended_walks) = (0, 0);
        for _ in 0..10_000 {
            let (mut state, mut claim, mut paid, mut refunded) = (Created, ClaimLife::Live, 0u32, 0u32);
            for _ in 0..14 {
                let roll = rng.next() % 12;
                if claim == ClaimLife::Live && roll == 0 {
                    claim = ClaimLife::Cancelled;
                    if let Some(tr) = when_claim_cancelled(state) {
                        assert!(!tr.restock, "a renewal holds no slot");
                        refunded += u32::from(tr.refund_money);
                        state = tr.to;
                    }
                    continue;
                }
                if claim == ClaimLife::Live && roll == 1 {
                    claim = ClaimLife::Ended;
                    if let Some(tr) = when_claim_ended(state) {
                        assert!(!tr.refund_money);
                        state = tr.to;
                    }
                    continue;
                }
                let action = OrderAction::ALL[(rng.next() % 8) as usize];
                let actor = Actor::ALL[(rng.next() % 4) as usize];
                let before = state;
                match apply_for_claim(state, action, actor, claim) {
                    Ok(tr) => {
                        if action == Pay {
                            paid += 1;
                            if claim != ClaimLife::Live {
                                assert_eq!((tr.to, tr.event, tr.refund_money), (Cancelled, OrderEvent::LatePayment, true), "paid for a claim that is gone");
                            }
                        }
                        if action == RejectRefund {
                            assert_ne!(claim, ClaimLife::Cancelled, "a cancelled claim's refund refused");
                        }
                        refunded += u32::from(tr.refund_money);
                        state = tr.to;
                    }
                    Err(CoreError::Conflict(_)) | Err(CoreError::Forbidden(_)) => assert_eq!(state, before),
                    Err(e) => panic!("{e:?}"),
                }
                assert!(refunded <= paid, "more refunds than payments");
            }
            match claim {
                ClaimLife::Cancelled => {
                    cancelled_walks += 1;
                    assert_eq!(refunded, paid, "a cancelled claim keeps money ({state:?})");
                    assert!(matches!(state, Cancelled | Refunded), "{state:?}");
                }
                ClaimLife::Ended => ended_walks += 1,
                ClaimLife::Live => {}
            }
        }
        assert!(cancelled_walks > 1000 && ended_walks > 1000, "the walks reach both ends ({cancelled_walks}, {ended_walks})");
    }

}
