//! Reviews of completed orders: the buyer rates (1-5) and writes once per order, the merchant
//! replies once; everyone reads a merchant's reviews, and the merchant's average rating and
//! count change in the review's own transaction. Texts pass the banned-word screen; a review
//! can be reported (a moderation item) and hidden by staff.

use super::rules;
use crate::error::{CoreError, FieldProblem, Result};
use crate::ids::{OrderId, UserId};
use crate::moderation::ModerationService;
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: i64,
    pub order: OrderId,
    pub merchant: UserId,
    pub author: UserId,
    pub rating: u8,
    pub text: String,
    pub photos: Vec<String>,
    pub created_at: i64,
    pub reply: Option<String>,
    pub replied_at: Option<i64>,
    /// Hidden by staff (a report upheld): not listed.
    pub hidden: bool,
}

/// A review about to be written (checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub order: OrderId,
    pub author: UserId,
    pub rating: u8,
    pub text: String,
    pub photos: Vec<String>,
}

#[async_trait]
pub trait ReviewStore: Send + Sync + 'static {
    /// In one transaction: the order must be the author's (`not_found` otherwise) and
    /// `completed` (409 with its state otherwise); the review is inserted once per order (409
    /// the second time, by a unique index) and the merchant's rating sum and count grow.
    async fn add_review(&self, review: &NewReview, now: i64) -> Result<Review>;
    /// The merchant's one reply: `None` if the review is not theirs; 409 if replied already.
    async fn reply_review(&self, merchant: UserId, review: i64, reply: &str, now: i64) -> Result<Option<Review>>;
    async fn review(&self, id: i64) -> Result<Option<Review>>;
    /// A merchant's visible reviews by id descending, before `before`.
    async fn merchant_reviews(&self, merchant: UserId, before: Option<i64>, limit: u32) -> Result<Vec<Review>>;
    /// An author's reviews (for their export), newest first.
    async fn reviews_by(&self, author: UserId) -> Result<Vec<Review>>;
}

pub struct ReviewService {
    store: Arc<dyn ReviewStore>,
    moderation: Arc<ModerationService>,
    /// A review's photos must be its author's uploads.
    photos: Option<Arc<dyn crate::uploads::PhotoCheck>>,
}

impl ReviewService {
    pub fn new(store: Arc<dyn ReviewStore>, moderation: Arc<ModerationService>) -> Self {
        ReviewService { store, moderation, photos: None }
    }

    /// Photos written are checked to be the writer's uploads.
    pub fn with_photos(mut self, check: Arc<dyn crate::uploads::PhotoCheck>) -> Self {
        self.photos = Some(check);
        self
    }

    /// Reviews my completed order: rating 1-5, text up to 500 characters (screened), at most 9
    /// photos. Once per order.
    pub async fn add(&self, me: UserId, order: OrderId, rating: i64, text: &str, photos: Vec<String>) -> Result<Review> {
        let mut bad = Vec::new();
        if !(1..=5).contains(&rating) {
            bad.push(FieldProblem::new("rating", "must be 1-5"));
        }
        let text = rules::text("text", text, 0, 500, Some(self.moderation.filter()), &mut bad);
        let owned = crate::commerce::photo_problems(&self.photos, me, "photos", &photos, true).await?;
        let photos = rules::photos("photos", &photos, &mut bad);
        for p in owned {
            if !bad.iter().any(|b| b.field == p.field) {
                bad.push(p);
            }
        }
        if !bad.is_empty() {
            return Err(CoreError::Fields(bad));
        }
        let review = NewReview { order, author: me, rating: rating as u8, text, photos };
        self.store.add_review(&review, crate::now_ms()).await
    }

    /// The merchant's one reply to a review of its order (1-500 characters, screened).
    pub async fn reply(&self, me: UserId, review: i64, text: &str) -> Result<Review> {
        let mut bad = Vec::new();
        let text = rules::text("text", text, 1, 500, Some(self.moderation.filter()), &mut bad);
        if !bad.is_empty() {
            return Err(CoreError::Fields(bad));
        }
        self.store.reply_review(me, review, &text, crate::now_ms()).await?.ok_or_else(|| CoreError::NotFound("review".into()))
    }

    pub async fn of_merchant(&self, merchant: UserId, before: Option<i64>, limit: u32) -> Result<Vec<Review>> {
        self.store.merchant_reviews(merchant, before, limit.clamp(1, 101)).await
    }

    /// A visible review (`not_found` if hidden or missing).
    pub async fn visible(&self, id: i64) -> Result<Review> {
        match self.store.review(id).await? {
            Some(r) if !r.hidden => Ok(r),
            _ => Err(CoreError::NotFound("review".into())),
        }
    }

    pub async fn by(&self, author: UserId) -> Result<Vec<Review>> {
        self.store.reviews_by(author).await
    }
}
