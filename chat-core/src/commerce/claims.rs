//! Claims of farm animals (动物认领). Claiming an animal places an order of kind `claim` (paid
//! like any order, through `OrderService::pay`) and holds one of the animal's slots until that
//! order is cancelled or refunded, or the claim ends. Paid, the claim is active from `paid_at`
//! for `periods × period_days`; a renewal is a new order for the same claim that extends it
//! when paid. The merchant posts updates about the animal that every active claimant reads, and
//! receives live (`claim_update`).
//!
//! What the order's transitions do to its claim (the store does it in the transition's
//! transaction): paid, the claim becomes active or is extended; the first order cancelled or
//! refunded, the claim is cancelled and its slot freed; a renewal refunded, the claim is
//! shortened by what it bought.

use super::orders::{OrderConfig, ShopOrder};
use super::rules;
use crate::error::{CoreError, Result};
use crate::ids::UserId;
use crate::merchants::MerchantsService;
use crate::moderation::ModerationService;
use async_trait::async_trait;
use std::sync::Arc;

/// A day, in milliseconds (claims last whole periods of days).
pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// Its first order is not paid yet: the slot is held.
    Pending,
    Active,
    /// Its time is over; the slot is free again.
    Ended,
    /// Its first order was cancelled or refunded; the slot is free again.
    Cancelled,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Pending => "pending",
            ClaimState::Active => "active",
            ClaimState::Ended => "ended",
            ClaimState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ClaimState::Pending,
            "active" => ClaimState::Active,
            "ended" => ClaimState::Ended,
            "cancelled" => ClaimState::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: i64,
    pub animal: i64,
    pub merchant: UserId,
    pub claimant: UserId,
    pub state: ClaimState,
    /// The animal's period when claimed.
    pub period_days: u16,
    /// The order that placed it.
    pub first_order: i64,
    pub started_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub created_at: i64,
}

/// What a merchant posts about an animal for its claimants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnimalUpdate {
    pub id: i64,
    pub animal: i64,
    pub merchant: UserId,
    pub text: String,
    pub photos: Vec<String>,
    pub created_at: i64,
}

/// An update and the active claims it reaches (claimant, claim), as the `animal.updated`
/// event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateNotice {
    pub update: AnimalUpdate,
    pub claims: Vec<(UserId, i64)>,
}

#[async_trait]
pub trait ClaimStore: Send + Sync + 'static {
    /// In one transaction: the animal (visible, of an active merchant; `not_found` otherwise),
    /// one of its slots taken by a conditional decrement (`out_of_stock` if none is free), the
    /// claim `pending`, its first order `created` (kind `claim`, one line: the animal × periods,
    /// the amount from the animal's price) and the order's `order.created` event.
    async fn place_claim(&self, claimant: UserId, animal: i64, periods: u8, now: i64, expires_at: i64) -> Result<(Claim, ShopOrder)>;
    /// A renewal order for `claim` (the claimant's, `active`; 409 with its state otherwise).
    async fn renew_claim(&self, claimant: UserId, claim: i64, periods: u8, now: i64, expires_at: i64) -> Result<ShopOrder>;
    async fn claim(&self, id: i64) -> Result<Option<Claim>>;
    /// A claimant's claims by id descending, before `before`.
    async fn claims(&self, claimant: UserId, before: Option<i64>, limit: u32) -> Result<Vec<Claim>>;
    /// Stores an update of `animal` (if it is `merchant`'s) and its `animal.updated` event
    /// naming the claims active now, in one transaction; `None` if it is not theirs.
    async fn post_update(&self, merchant: UserId, animal: i64, text: &str, photos: &[String], now: i64) -> Result<Option<AnimalUpdate>>;
    /// An animal's updates by id descending, before `before`.
    async fn updates(&self, animal: i64, before: Option<i64>, limit: u32) -> Result<Vec<AnimalUpdate>>;
    /// Ends the active claims whose time is over (their slots freed), at most `limit`; answers
    /// how many.
    async fn end_claims(&self, now: i64, limit: u32) -> Result<usize>;
}

pub struct ClaimService {
    store: Arc<dyn ClaimStore>,
    merchants: Arc<MerchantsService>,
    moderation: Arc<ModerationService>,
    config: OrderConfig,
    /// An update's photos must be the merchant's uploads.
    photos: Option<Arc<dyn crate::uploads::PhotoCheck>>,
}

impl ClaimService {
    pub fn new(store: Arc<dyn ClaimStore>, merchants: Arc<MerchantsService>, moderation: Arc<ModerationService>, config: OrderConfig) -> Self {
        ClaimService { store, merchants, moderation, config, photos: None }
    }

    /// Photos written are checked to be the writer's uploads.
    pub fn with_photos(mut self, check: Arc<dyn crate::uploads::PhotoCheck>) -> Self {
        self.photos = Some(check);
        self
    }

    /// Claims `animal` for `periods` (1-12): the claim and its first order, to pay.
    pub async fn claim_animal(&self, me: UserId, animal: i64, periods: i64) -> Result<(Claim, ShopOrder)> {
        let periods = rules::claim_periods(periods)?;
        let now = crate::now_ms();
        self.store.place_claim(me, animal, periods, now, now + self.config.pay_timeout_ms).await
    }

    /// Renews my active claim for `periods` more: a new order, to pay.
    pub async fn renew(&self, me: UserId, claim: i64, periods: i64) -> Result<ShopOrder> {
        let periods = rules::claim_periods(periods)?;
        self.mine(me, claim).await?;
        let now = crate::now_ms();
        self.store.renew_claim(me, claim, periods, now, now + self.config.pay_timeout_ms).await
    }

    /// One of my claims (`not_found` for another's).
    pub async fn mine(&self, me: UserId, id: i64) -> Result<Claim> {
        match self.store.claim(id).await? {
            Some(c) if c.claimant == me => Ok(c),
            _ => Err(CoreError::NotFound("claim".into())),
        }
    }

    pub async fn list(&self, me: UserId, before: Option<i64>, limit: u32) -> Result<Vec<Claim>> {
        self.store.claims(me, before, limit.clamp(1, 101)).await
    }

    /// The updates of my claim's animal, while the claim is active.
    pub async fn updates(&self, me: UserId, claim: i64, before: Option<i64>, limit: u32) -> Result<Vec<AnimalUpdate>> {
        let c = self.mine(me, claim).await?;
        if c.state != ClaimState::Active {
            return Err(CoreError::StateConflict { state: c.state.as_str(), message: "updates are for active claims".into() });
        }
        self.store.updates(c.animal, before, limit.clamp(1, 101)).await
    }

    /// A merchant posts an update about its animal (text 1-1000 characters, screened; at most 9
    /// photos): stored, and pushed to every active claimant.
    pub async fn post_update(&self, me: UserId, animal: i64, text: &str, photos: Vec<String>) -> Result<AnimalUpdate> {
        if !self.merchants.may_sell(me).await? {
            return Err(CoreError::Forbidden("only an approved merchant that is not suspended posts updates".into()));
        }
        let owned = crate::commerce::photo_problems(&self.photos, me, "photos", &photos, true).await?;
        let (text, photos) = crate::uploads::with_photo_problems(update_fields(text, photos, &self.moderation), owned)?;
        self.store.post_update(me, animal, &text, &photos, crate::now_ms()).await?.ok_or_else(|| CoreError::NotFound("animal".into()))
    }

    /// Ends the claims whose time is over, up to `limit` (the expiry job).
    pub async fn end_due(&self, limit: u32) -> Result<usize> {
        self.store.end_claims(crate::now_ms(), limit).await
    }
}

fn update_fields(text: &str, photos: Vec<String>, moderation: &ModerationService) -> Result<(String, Vec<String>)> {
    let mut bad = Vec::new();
    let text = rules::text("text", text, 1, 1000, Some(moderation.filter()), &mut bad);
    let photos = rules::photos("photos", &photos, &mut bad);
    if bad.is_empty() { Ok((text, photos)) } else { Err(CoreError::Fields(bad)) }
}

/// How long `periods` of `period_days` last.
pub fn claim_span_ms(periods: u32, period_days: u16) -> i64 {
    i64::from(periods) * i64::from(period_days) * DAY_MS
}
