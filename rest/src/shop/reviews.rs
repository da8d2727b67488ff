//! Reviews over HTTP: the buyer reviews a completed order once, the merchant replies once,
//! everyone reads a merchant's reviews. The rules are in `jiebanke_chat_core::commerce::reviews`.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::commerce::reviews::Review;
use jiebanke_chat_core::{OrderId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(review_order))
        .routes(routes!(reply))
        .routes(routes!(of_merchant))
        .routes(routes!(report_review))
        .routes(routes!(report_product))
}

/// A review of a completed order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub id: String,
    pub order: String,
    pub merchant: String,
    pub author: String,
    /// 1-5.
    pub rating: u8,
    pub text: String,
    pub photos: Vec<String>,
    pub created_at: i64,
    /// The merchant's one reply.
    pub reply: Option<String>,
    pub replied_at: Option<i64>,
}

impl From<&Review> for ReviewView {
    fn from(r: &Review) -> Self {
        ReviewView {
            id: r.id.to_string(),
            order: r.order.to_string(),
            merchant: r.merchant.to_string(),
            author: r.author.to_string(),
            rating: r.rating,
            text: r.text.clone(),
            photos: r.photos.clone(),
            created_at: r.created_at,
            reply: r.reply.clone(),
            replied_at: r.replied_at,
        }
    }
}

fn id_path(p: Result<Path<String>, PathRejection>, what: &'static str) -> Result<i64, ApiError> {
    let Path(id) = p?;
    id.parse::<i64>().ok().filter(|v| *v > 0 && id.bytes().all(|c| c.is_ascii_digit())).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// 1-5 stars.
    rating: i64,
    /// At most 500 characters, screened.
    #[serde(default)]
    text: String,
    /// At most 9 `https://` URLs or `/uploads/...` paths.
    #[serde(default)]
    photos: Vec<String>,
}

/// Reviews my completed order, once (409 before it is completed, with its `state`, and the
/// second time). The merchant's rating and review count change with it.
#[utoipa::path(post, path = "/api/v1/orders/{id}/review", tag = "reviews", params(("id" = String, Path, description = "order id")),
    request_body = ReviewBody, security(("bearer" = [])), responses((status = 201, body = ReviewView)))]
async fn review_order(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ReviewBody>,
) -> Result<(StatusCode, Json<ReviewView>), ApiError> {
    let order = OrderId::new(id_path(p, "order")?).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such order"))?;
    let StrictJson(b) = body;
    let r = state.reviews.add(me, order, b.rating, &b.text, b.photos).await?;
    Ok((StatusCode::CREATED, Json(ReviewView::from(&r))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    /// 1-500 characters, screened.
    text: String,
}

/// The merchant's one reply to a review of its order (409 the second time).
#[utoipa::path(post, path = "/api/v1/merchant/reviews/{id}/reply", tag = "reviews", params(("id" = String, Path, description = "review id")),
    request_body = ReplyBody, security(("bearer" = [])), responses((status = 200, body = ReviewView)))]
async fn reply(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ReplyBody>,
) -> Result<Json<ReviewView>, ApiError> {
    let id = id_path(p, "review")?;
    let StrictJson(b) = body;
    Ok(Json(ReviewView::from(&state.reviews.reply(me, id, &b.text).await?)))
}

/// A merchant's reviews, newest first (no token needed; hidden ones left out).
#[utoipa::path(get, path = "/api/v1/merchants/{id}/reviews", tag = "reviews", params(("id" = String, Path, description = "merchant id"), PageQuery),
    responses((status = 200, body = Page<ReviewView>)))]
async fn of_merchant(State(state): State<RestState>, p: Result<Path<String>, PathRejection>, q: Result<Query<PageQuery>, QueryRejection>) -> Result<Json<Page<ReviewView>>, ApiError> {
    let merchant = UserId::new(id_path(p, "merchant")?).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such merchant"))?;
    let Query(q) = q?;
    let page = q.parse()?;
    let list = state.reviews.of_merchant(merchant, page.after, page.limit + 1).await?;
    let items = list.iter().map(ReviewView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |r: &ReviewView| r.id.parse().unwrap_or(0))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentReportBody {
    /// 1-200 characters, screened.
    reason: String,
}

/// Reports a review (not one's own): a moderation item for staff, who may hide it (it then
/// leaves its merchant's rating).
#[utoipa::path(post, path = "/api/v1/reviews/{id}/report", tag = "reviews", params(("id" = String, Path, description = "review id")),
    request_body = ContentReportBody, security(("bearer" = [])), responses((status = 201, body = crate::api::QueuedBody)))]
async fn report_review(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ContentReportBody>,
) -> Result<(StatusCode, Json<crate::api::QueuedBody>), ApiError> {
    let id = id_path(p, "review")?;
    let StrictJson(b) = body;
    let r = state.reviews.visible(id).await?;
    let item = state.moderation.report_content(me, jiebanke_chat_core::Subject::Review(id), r.author, &b.reason, &r.text).await?;
    Ok((StatusCode::CREATED, Json(crate::api::QueuedBody { item: item.id.to_string() })))
}

/// Reports a product (not one's own): a moderation item for staff, who may hide it.
#[utoipa::path(post, path = "/api/v1/products/{id}/report", tag = "shop", params(("id" = String, Path, description = "product id")),
    request_body = ContentReportBody, security(("bearer" = [])), responses((status = 201, body = crate::api::QueuedBody)))]
async fn report_product(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ContentReportBody>,
) -> Result<(StatusCode, Json<crate::api::QueuedBody>), ApiError> {
    let id = id_path(p, "product")?;
    let StrictJson(b) = body;
    let product = state.catalog.product(id).await?;
    let text = format!("{} {}", product.spec.title, product.spec.description);
    let item = state.moderation.report_content(me, jiebanke_chat_core::Subject::Product(id), product.merchant, &b.reason, text.trim()).await?;
    Ok((StatusCode::CREATED, Json(crate::api::QueuedBody { item: item.id.to_string() })))
}
