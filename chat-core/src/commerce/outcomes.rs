//! What became of payment callbacks, counted for `/metrics` (`jbk_payment_callbacks_total`):
//! the outcomes `OrderService::payment_notice` answers and the counters behind them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The outcome of a payment callback, each counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid,
    /// Already paid by this payment: nothing changed.
    Duplicate,
    /// Paid after the order was cancelled: the money goes back.
    LatePayment,
    /// A transaction state other than `SUCCESS`: nothing to do.
    NotPaid,
    /// A refund's end, counted (`refund_confirmed`, or `refund_failure` for staff).
    RefundNotice,
}

/// Counts of payment callbacks by outcome, for `/metrics`.
#[derive(Debug, Default)]
pub struct PaymentStats {
    pub paid: AtomicU64,
    pub duplicate: AtomicU64,
    pub late: AtomicU64,
    pub not_paid: AtomicU64,
    pub refused_unknown_order: AtomicU64,
    pub refused_amount: AtomicU64,
    pub refunds: AtomicU64,
    pub refund_failures: AtomicU64,
    /// Refund callbacks that said SUCCESS.
    pub refunds_confirmed: AtomicU64,
    /// Refund callbacks for a refund never asked (refused).
    pub refused_refund: AtomicU64,
    /// Callbacks refused before reaching an order, by why (`NotifyError::code`).
    pub bad_signature: AtomicU64,
    pub stale_timestamp: AtomicU64,
    pub bad_ciphertext: AtomicU64,
    pub not_ours: AtomicU64,
    pub malformed: AtomicU64,
}

impl PaymentStats {
    pub fn count_refusal(&self, e: &super::pay::NotifyError) {
        use super::pay::NotifyError::*;
        let c = match e {
            BadSignature => &self.bad_signature,
            StaleTimestamp => &self.stale_timestamp,
            BadCiphertext => &self.bad_ciphertext,
            NotOurs(_) => &self.not_ours,
            Malformed(_) => &self.malformed,
        };
        c.fetch_add(1, Relaxed);
    }
    /// Every count by its outcome label, for `/metrics`.
    pub fn outcomes(&self) -> [(&'static str, u64); 15] {
        [
            ("paid", self.paid.load(Relaxed)),
            ("duplicate", self.duplicate.load(Relaxed)),
            ("late_payment", self.late.load(Relaxed)),
            ("not_paid", self.not_paid.load(Relaxed)),
            ("unknown_order", self.refused_unknown_order.load(Relaxed)),
            ("wrong_amount", self.refused_amount.load(Relaxed)),
            ("bad_signature", self.bad_signature.load(Relaxed)),
            ("stale_timestamp", self.stale_timestamp.load(Relaxed)),
            ("bad_ciphertext", self.bad_ciphertext.load(Relaxed)),
            ("not_ours", self.not_ours.load(Relaxed)),
            ("malformed", self.malformed.load(Relaxed)),
            ("refund", self.refunds.load(Relaxed)),
            ("refund_failure", self.refund_failures.load(Relaxed)),
            ("refund_confirmed", self.refunds_confirmed.load(Relaxed)),
            ("refund_not_asked", self.refused_refund.load(Relaxed)),
        ]
    }
}

