//! The shop over HTTP, so far its catalog: a merchant's products (`/api/v1/merchant/products`)
//! and animals to claim (`/api/v1/merchant/animals`), for an approved merchant that is not
//! suspended, and their public pages (`/api/v1/products`, `/api/v1/animals`, no token). The rules are in `jiebanke_chat_core::commerce`.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::commerce::catalog::{Animal, Product, ProductFilter, ProductPatchInput};
use jiebanke_chat_core::commerce::rules::{AnimalInput, ProductInput};
use jiebanke_chat_core::UserId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod claims;
pub mod orders;
pub mod reviews;

/// My orders (recipients in clear) and claims, newest first, for my export.
pub(crate) async fn export(state: &RestState, me: UserId) -> Result<(Vec<orders::OrderView>, Vec<claims::ClaimView>), ApiError> {
    use jiebanke_chat_core::commerce::orders::{OrderFilter, Viewer};
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = state.orders.list(&OrderFilter { buyer: Some(me), ..OrderFilter::default() }, before, 100).await?;
        for o in &page {
            out.push(orders::view(&state.orders, Viewer::Buyer(me), o)?);
        }
        match page.last() {
            Some(o) if page.len() == 100 => before = Some(o.id.get()),
            _ => break,
        }
    }
    let mut mine = Vec::new();
    let mut before = None;
    loop {
        let page = state.claims.list(me, before, 100).await?;
        mine.extend(page.iter().map(claims::ClaimView::from));
        match page.last() {
            Some(c) if page.len() == 100 => before = Some(c.id),
            _ => break,
        }
    }
    Ok((out, mine))
}

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .merge(orders::router())
        .merge(claims::router())
        .merge(reviews::router())
        .routes(routes!(create, mine))
        .routes(routes!(update, hide))
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(create_animal))
        .routes(routes!(animals))
        .routes(routes!(animal))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    /// `flower` (the only kind sold as a product; farm animals have their own routes).
    kind: String,
    /// 1-60 characters.
    title: String,
    /// At most 2000 characters.
    #[serde(default)]
    description: String,
    /// Integer fen, 1-100000000.
    price_fen: i64,
    /// 0-1000000.
    stock: i64,
    /// At most 9 `https://` URLs or uploads' `/uploads/...` paths.
    #[serde(default)]
    photos: Vec<String>,
}

/// A product (its merchant sees `hidden` ones in its own list).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: String,
    pub merchant: String,
    pub kind: String,
    pub title: String,
    pub description: String,
    pub price_fen: i64,
    pub stock: u32,
    pub photos: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub hidden: bool,
}

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        ProductView {
            id: p.id.to_string(),
            merchant: p.merchant.to_string(),
            kind: "flower".into(),
            title: p.spec.title.clone(),
            description: p.spec.description.clone(),
            price_fen: p.spec.price_fen,
            stock: p.spec.stock,
            photos: p.spec.photos.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            hidden: p.hidden,
        }
    }
}

/// Lists a flower (an approved merchant that is not suspended; 403 otherwise). Every bad field
/// named; title and description screened.
#[utoipa::path(post, path = "/api/v1/merchant/products", tag = "shop", request_body = ProductBody,
    security(("bearer" = [])), responses((status = 201, body = ProductView)))]
async fn create(State(state): State<RestState>, AuthUser(me): AuthUser, body: StrictJson<ProductBody>) -> Result<(StatusCode, Json<ProductView>), ApiError> {
    let StrictJson(b) = body;
    if b.kind != "flower" {
        return Err(jiebanke_chat_core::CoreError::Fields(vec![jiebanke_chat_core::FieldProblem::new("kind", "must be flower")]).into());
    }
    let input = ProductInput { title: b.title, description: b.description, price_fen: b.price_fen, stock: b.stock, photos: b.photos };
    let p = state.catalog.create(me, input).await?;
    Ok((StatusCode::CREATED, Json(ProductView::from(&p))))
}

/// My products, hidden ones too (merchants).
#[utoipa::path(get, path = "/api/v1/merchant/products", tag = "shop", params(PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<ProductView>)))]
async fn mine(State(state): State<RestState>, AuthUser(me): AuthUser, q: Result<Query<PageQuery>, QueryRejection>) -> Result<Json<Page<ProductView>>, ApiError> {
    let Query(q) = q?;
    let page = q.parse()?;
    let list = state.catalog.mine(me, page.after, page.limit + 1).await?;
    let items = list.iter().map(ProductView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |p: &ProductView| p.id.parse().unwrap_or(0))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchBody {
    title: Option<String>,
    description: Option<String>,
    price_fen: Option<i64>,
    stock: Option<i64>,
    photos: Option<Vec<String>>,
}

fn product_path(p: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(id) = p?;
    id.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such product"))
}

/// Changes my product: only the fields sent. Orders already made keep their snapshot.
#[utoipa::path(patch, path = "/api/v1/merchant/products/{id}", tag = "shop", request_body = ProductPatchBody,
    params(("id" = String, Path, description = "product id")),
    security(("bearer" = [])), responses((status = 200, body = ProductView)))]
async fn update(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ProductPatchBody>,
) -> Result<Json<ProductView>, ApiError> {
    let id = product_path(p)?;
    let StrictJson(b) = body;
    let patch = ProductPatchInput { title: b.title, description: b.description, price_fen: b.price_fen, stock: b.stock, photos: b.photos };
    Ok(Json(ProductView::from(&state.catalog.update(me, id, patch).await?)))
}

/// Deletes my product: it is hidden (not listed, not orderable); orders keep their snapshot.
#[utoipa::path(delete, path = "/api/v1/merchant/products/{id}", tag = "shop",
    params(("id" = String, Path, description = "product id")),
    security(("bearer" = [])), responses((status = 204, description = "hidden")))]
async fn hide(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.catalog.hide(me, product_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductsQuery {
    /// One merchant's products (its id).
    merchant: Option<String>,
    /// Text in the title, 1-64 characters.
    q: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The visible products of active merchants (no token needed), by id.
#[utoipa::path(get, path = "/api/v1/products", tag = "shop", params(ProductsQuery),
    responses((status = 200, body = Page<ProductView>)))]
async fn list(State(state): State<RestState>, q: Result<Query<ProductsQuery>, QueryRejection>) -> Result<Json<Page<ProductView>>, ApiError> {
    let Query(q) = q?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let merchant = match q.merchant.as_deref() {
        Some(m) => Some(UserId::parse(m).map_err(|_| jiebanke_chat_core::CoreError::Fields(vec![jiebanke_chat_core::FieldProblem::new("merchant", "must be a merchant id")]))?),
        None => None,
    };
    let list = state.catalog.products(ProductFilter { merchant, q: q.q }, page.after, page.limit + 1).await?;
    let items = list.iter().map(ProductView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |p: &ProductView| p.id.parse().unwrap_or(0))))
}

/// A product's page with its `stock` (no token needed); 404 if hidden or its merchant is
/// suspended.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "shop",
    params(("id" = String, Path, description = "product id")),
    responses((status = 200, body = ProductView)))]
async fn one(State(state): State<RestState>, p: Result<Path<String>, PathRejection>) -> Result<Json<ProductView>, ApiError> {
    Ok(Json(ProductView::from(&state.catalog.product(product_path(p)?).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnimalBody {
    /// 1-32 characters (羊, 鸡, ...).
    species: String,
    /// 1-32 characters.
    name: String,
    /// At most 9 `https://` URLs or `/uploads/...` paths.
    #[serde(default)]
    photos: Vec<String>,
    /// At most 2000 characters.
    #[serde(default)]
    story: String,
    /// Per period, integer fen.
    price_fen: i64,
    /// 7-365.
    period_days: i64,
    /// How many may claim it at once, 1-10000.
    slots: i64,
}

/// A farm animal to claim (动物认领).
#[derive(Debug, Serialize, ToSchema)]
pub struct AnimalView {
    pub id: String,
    pub merchant: String,
    pub species: String,
    pub name: String,
    pub photos: Vec<String>,
    pub story: String,
    pub price_fen: i64,
    pub period_days: u16,
    pub slots: u32,
    /// Slots no claim holds now: 0 means none can be claimed until one ends.
    pub slots_free: u32,
    pub created_at: i64,
}

impl From<&Animal> for AnimalView {
    fn from(a: &Animal) -> Self {
        AnimalView {
            id: a.id.to_string(),
            merchant: a.merchant.to_string(),
            species: a.spec.species.clone(),
            name: a.spec.name.clone(),
            photos: a.spec.photos.clone(),
            story: a.spec.story.clone(),
            price_fen: a.spec.price_fen,
            period_days: a.spec.period_days,
            slots: a.spec.slots,
            slots_free: a.slots_free,
            created_at: a.created_at,
        }
    }
}

/// Lists a farm animal to claim (an approved merchant that is not suspended). Every bad field
/// named; texts screened.
#[utoipa::path(post, path = "/api/v1/merchant/animals", tag = "shop", request_body = AnimalBody,
    security(("bearer" = [])), responses((status = 201, body = AnimalView)))]
async fn create_animal(State(state): State<RestState>, AuthUser(me): AuthUser, body: StrictJson<AnimalBody>) -> Result<(StatusCode, Json<AnimalView>), ApiError> {
    let StrictJson(b) = body;
    let input = AnimalInput { species: b.species, name: b.name, photos: b.photos, story: b.story, price_fen: b.price_fen, period_days: b.period_days, slots: b.slots };
    let a = state.catalog.create_animal(me, input).await?;
    Ok((StatusCode::CREATED, Json(AnimalView::from(&a))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnimalsQuery {
    /// One merchant's animals (its id).
    merchant: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Animals of active merchants (no token needed), by id.
#[utoipa::path(get, path = "/api/v1/animals", tag = "shop", params(AnimalsQuery),
    responses((status = 200, body = Page<AnimalView>)))]
async fn animals(State(state): State<RestState>, q: Result<Query<AnimalsQuery>, QueryRejection>) -> Result<Json<Page<AnimalView>>, ApiError> {
    let Query(q) = q?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let merchant = match q.merchant.as_deref() {
        Some(m) => Some(UserId::parse(m).map_err(|_| jiebanke_chat_core::CoreError::Fields(vec![jiebanke_chat_core::FieldProblem::new("merchant", "must be a merchant id")]))?),
        None => None,
    };
    let list = state.catalog.animals(merchant, page.after, page.limit + 1).await?;
    let items = list.iter().map(AnimalView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |a: &AnimalView| a.id.parse().unwrap_or(0))))
}

/// An animal's page (no token needed); 404 if its merchant is suspended.
#[utoipa::path(get, path = "/api/v1/animals/{id}", tag = "shop",
    params(("id" = String, Path, description = "animal id")),
    responses((status = 200, body = AnimalView)))]
async fn animal(State(state): State<RestState>, p: Result<Path<String>, PathRejection>) -> Result<Json<AnimalView>, ApiError> {
    let Path(id) = p?;
    let id = id.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such animal"))?;
    Ok(Json(AnimalView::from(&state.catalog.animal(id).await?)))
}
