//! The catalog: merchants' flowers (products). An approved, active merchant lists, changes and
//! hides its products; everyone browses the visible products of active merchants. A hidden
//! product stays stored (orders keep their snapshot of it).

use super::rules::{self, AnimalInput, AnimalSpec, ProductInput, ProductSpec};
use crate::error::{CoreError, Result};
use crate::ids::UserId;
use crate::merchants::MerchantsService;
use crate::moderation::ModerationService;
use async_trait::async_trait;
use std::sync::Arc;

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub merchant: UserId,
    pub spec: ProductSpec,
    pub created_at: i64,
    pub updated_at: i64,
    /// Deleted by its merchant: not listed, not orderable.
    pub hidden: bool,
}

/// A change to a product: only what is sent changes.
#[derive(Debug, Clone, Default)]
pub struct ProductPatchInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub price_fen: Option<i64>,
    pub stock: Option<i64>,
    pub photos: Option<Vec<String>>,
}

/// Which products a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    pub merchant: Option<UserId>,
    /// Text in the title.
    pub q: Option<String>,
}

/// A farm animal to claim (动物认领), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Animal {
    pub id: i64,
    pub merchant: UserId,
    pub spec: AnimalSpec,
    /// Slots no claim holds now.
    pub slots_free: u32,
    pub created_at: i64,
    pub hidden: bool,
}

#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    async fn create_animal(&self, merchant: UserId, spec: &AnimalSpec, now: i64) -> Result<Animal>;
    /// An animal, hidden or not.
    async fn animal(&self, id: i64) -> Result<Option<Animal>>;
    /// Visible animals of active merchants by id ascending after `after`, of one merchant or all.
    async fn animals(&self, merchant: Option<UserId>, after: Option<i64>, limit: u32) -> Result<Vec<Animal>>;
    async fn create_product(&self, merchant: UserId, spec: &ProductSpec, now: i64) -> Result<Product>;
    /// A product, hidden or not.
    async fn product(&self, id: i64) -> Result<Option<Product>>;
    /// Replaces the product's fields if it is `merchant`'s and not hidden; the product after.
    async fn update_product(&self, merchant: UserId, id: i64, spec: &ProductSpec, now: i64) -> Result<Option<Product>>;
    /// Hides the product if it is `merchant`'s; false if there is no such visible product.
    async fn hide_product(&self, merchant: UserId, id: i64, now: i64) -> Result<bool>;
    /// Visible products of active merchants by id ascending after `after`, at most `limit`.
    async fn products(&self, filter: &ProductFilter, after: Option<i64>, limit: u32) -> Result<Vec<Product>>;
    /// A merchant's own products, hidden ones too, by id ascending.
    async fn merchant_products(&self, merchant: UserId, after: Option<i64>, limit: u32) -> Result<Vec<Product>>;
}

pub struct CatalogService {
    store: Arc<dyn CatalogStore>,
    merchants: Arc<MerchantsService>,
    moderation: Arc<ModerationService>,
    /// Photos written must be the merchant's own uploads.
    photos: Option<Arc<dyn crate::uploads::PhotoCheck>>,
}

impl CatalogService {
    pub fn new(store: Arc<dyn CatalogStore>, merchants: Arc<MerchantsService>, moderation: Arc<ModerationService>) -> Self {
        CatalogService { store, merchants, moderation, photos: None }
    }

    /// Photos written are checked to be the writer's uploads.
    pub fn with_photos(mut self, check: Arc<dyn crate::uploads::PhotoCheck>) -> Self {
        self.photos = Some(check);
        self
    }

    async fn require_seller(&self, me: UserId) -> Result<()> {
        if self.merchants.may_sell(me).await? {
            Ok(())
        } else {
            Err(CoreError::Forbidden("only an approved merchant that is not suspended sells".into()))
        }
    }

    pub async fn create(&self, me: UserId, input: ProductInput) -> Result<Product> {
        self.require_seller(me).await?;
        let photos = crate::commerce::photo_problems(&self.photos, me, "photos", &input.photos, true).await?;
        let spec = crate::uploads::with_photo_problems(rules::product(input, Some(self.moderation.filter())), photos)?;
        self.store.create_product(me, &spec, crate::now_ms()).await
    }

    /// Changes my product: the fields sent, the whole validated again.
    pub async fn update(&self, me: UserId, id: i64, patch: ProductPatchInput) -> Result<Product> {
        self.require_seller(me).await?;
        let current = match self.store.product(id).await? {
            Some(p) if p.merchant == me && !p.hidden => p,
            _ => return Err(CoreError::NotFound("product".into())),
        };
        let c = current.spec;
        // Photos sent are checked; photos kept as they were are not written anew.
        let photos = crate::commerce::photo_problems(&self.photos, me, "photos", patch.photos.as_deref().unwrap_or_default(), true).await?;
        let input = ProductInput {
            title: patch.title.unwrap_or(c.title),
            description: patch.description.unwrap_or(c.description),
            price_fen: patch.price_fen.unwrap_or(c.price_fen),
            stock: patch.stock.unwrap_or(i64::from(c.stock)),
            photos: patch.photos.unwrap_or(c.photos),
        };
        let spec = crate::uploads::with_photo_problems(rules::product(input, Some(self.moderation.filter())), photos)?;
        self.store.update_product(me, id, &spec, crate::now_ms()).await?.ok_or_else(|| CoreError::NotFound("product".into()))
    }

    /// Hides my product (orders keep their snapshot).
    pub async fn hide(&self, me: UserId, id: i64) -> Result<()> {
        self.require_seller(me).await?;
        if !self.store.hide_product(me, id, crate::now_ms()).await? {
            return Err(CoreError::NotFound("product".into()));
        }
        Ok(())
    }

    /// A product's public page: `not_found` if hidden or its merchant may not sell.
    pub async fn product(&self, id: i64) -> Result<Product> {
        match self.store.product(id).await? {
            Some(p) if !p.hidden && self.merchants.may_sell(p.merchant).await? => Ok(p),
            _ => Err(CoreError::NotFound("product".into())),
        }
    }

    pub async fn products(&self, filter: ProductFilter, after: Option<i64>, limit: u32) -> Result<Vec<Product>> {
        if let Some(q) = &filter.q {
            if q.trim().is_empty() || q.chars().count() > 64 {
                return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("q", "must be 1-64 characters")]));
            }
        }
        self.store.products(&filter, after, limit.clamp(1, 101)).await
    }

    /// Lists an animal to claim (an active merchant).
    pub async fn create_animal(&self, me: UserId, input: AnimalInput) -> Result<Animal> {
        self.require_seller(me).await?;
        let photos = crate::commerce::photo_problems(&self.photos, me, "photos", &input.photos, true).await?;
        let spec = crate::uploads::with_photo_problems(rules::animal(input, Some(self.moderation.filter())), photos)?;
        self.store.create_animal(me, &spec, crate::now_ms()).await
    }

    /// An animal's public page: `not_found` if hidden or its merchant may not sell.
    pub async fn animal(&self, id: i64) -> Result<Animal> {
        match self.store.animal(id).await? {
            Some(a) if !a.hidden && self.merchants.may_sell(a.merchant).await? => Ok(a),
            _ => Err(CoreError::NotFound("animal".into())),
        }
    }

    pub async fn animals(&self, merchant: Option<UserId>, after: Option<i64>, limit: u32) -> Result<Vec<Animal>> {
        self.store.animals(merchant, after, limit.clamp(1, 101)).await
    }

    pub async fn mine(&self, me: UserId, after: Option<i64>, limit: u32) -> Result<Vec<Product>> {
        self.require_seller(me).await?;
        self.store.merchant_products(me, after, limit.clamp(1, 101)).await
    }
}
