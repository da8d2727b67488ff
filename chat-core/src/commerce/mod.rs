//! The commerce area (issue 14), its first step: the rules, pure. `state` is the one order
//! state machine for flower orders and animal claims (every transition's event, restock and
//! refund; who may ask); `rules` turns products, animals and orders into values, naming every
//! bad field and screening the texts, and computes an order's amount from the products' own
//! prices. `catalog` is the merchants' flowers: `CatalogService` (an active merchant lists,
//! changes, hides; everyone browses) and its port `CatalogStore`. Orders, claims, payments and
//! reviews come next. `claims`: claims of farm animals and their updates. `reviews`: reviews of completed orders. `orders`: the order use cases (`OrderService`) and their port; `pay`:
//! the payment provider port; `outcomes`: payment callbacks' outcomes and their counters.

pub mod catalog;
pub mod claims;
pub mod orders;
pub mod outcomes;
pub mod pay;
pub mod reviews;
pub mod rules;
pub mod state;

pub use state::{apply, apply_for_claim, refuse_payment, when_claim_cancelled, when_claim_ended, ClaimLife, Actor, OrderAction, OrderEvent, OrderState, RefundFrom, Transition};

use crate::ids::UserId;
use crate::error::Result;
use std::sync::Arc;

/// The photo check, if one is wired (the server always wires the uploads area's).
async fn photo_problems(check: &Option<Arc<dyn crate::uploads::PhotoCheck>>, me: UserId, field: &str, values: &[String], indexed: bool) -> Result<Vec<crate::error::FieldProblem>> {
    match check {
        Some(c) if !values.is_empty() => c.problems(me, field, values, indexed).await,
        _ => Ok(Vec::new()),
    }
}
