//! Admin endpoints (every one answers `forbidden` to a non-admin):
//!
//! - `GET /api/v1/admin/moderation`: the moderation feed's items, oldest first (cursor pages).
//! - `DELETE /api/v1/admin/conversations/{conv}/messages/{seq}`: a message becomes a tombstone.
//! - `PUT|DELETE /api/v1/admin/users/{id}/ban`: ban (sessions closed on every node) or unban.
//! - `PUT|DELETE /api/v1/admin/users/{id}/admin`: grant or revoke the admin role.
//! - `POST /api/v1/admin/banned-words/reload`: reads the banned-word list again.
//! - `POST /api/v1/admin/orders`: records a paid order (through the outbox, like the payments
//!   will), so that a merchant's alert can be produced before payments exist.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::{AmountFen, ConvId, ItemName, ModerationId, NewOrder, Seq, UserId};
use jiebanke_gateway::frame::{WireModerationItem, WireOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(items))
        .routes(routes!(delete_message))
        .routes(routes!(ban, unban))
        .routes(routes!(grant, revoke))
        .routes(routes!(reload_words))
        .routes(routes!(create_order))
}

/// The moderation feed: flagged and reported messages, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/moderation", tag = "admin", params(PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<WireModerationItem>)))]
async fn items(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<WireModerationItem>>, ApiError> {
    let Query(q) = q?;
    let page = q.parse()?;
    let after = page.after.map(ModerationId::new).transpose()?;
    let list = state.moderation.items(me, after, page.limit + 1).await?;
    let items = list.iter().map(WireModerationItem::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |m: &WireModerationItem| m.id.parse().unwrap_or(0))))
}

/// A message becomes a tombstone (`body.kind` `deleted`); members get `msg_deleted`.
#[utoipa::path(delete, path = "/api/v1/admin/conversations/{conv}/messages/{seq}", tag = "admin",
    params(("conv" = String, Path, description = "conversation id"), ("seq" = u64, Path, description = "message seq")),
    security(("bearer" = [])), responses((status = 204, description = "deleted")))]
async fn delete_message(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((conv, seq)) = path?;
    let conv = ConvId::parse(&conv)?;
    let seq = Seq::parse(seq)?;
    state.moderation.delete_message(me, conv, seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn user_path(p: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(id) = p?;
    Ok(UserId::parse(&id)?)
}

/// Bans a user: every session closed on every node (close 4003), no login until unbanned.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/ban", tag = "admin",
    params(("id" = String, Path, description = "user id")),
    security(("bearer" = [])), responses((status = 204, description = "banned")))]
async fn ban(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.ban(me, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a ban.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/ban", tag = "admin",
    params(("id" = String, Path, description = "user id")),
    security(("bearer" = [])), responses((status = 204, description = "unbanned")))]
async fn unban(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.unban(me, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Grants the admin role.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/admin", tag = "admin",
    params(("id" = String, Path, description = "user id")),
    security(("bearer" = [])), responses((status = 204, description = "granted")))]
async fn grant(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.set_admin(me, user_path(p)?, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the admin role.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/admin", tag = "admin",
    params(("id" = String, Path, description = "user id")),
    security(("bearer" = [])), responses((status = 204, description = "revoked")))]
async fn revoke(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.set_admin(me, user_path(p)?, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct WordsBody {
    /// How many words the list has now.
    words: usize,
}

/// Reads the banned-word list from its file again.
#[utoipa::path(post, path = "/api/v1/admin/banned-words/reload", tag = "admin",
    security(("bearer" = [])), responses((status = 200, body = WordsBody)))]
async fn reload_words(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<WordsBody>, ApiError> {
    state.moderation.require_admin(me).await?;
    let n = (state.reload_words)().map_err(ApiError::invalid)?;
    Ok(Json(WordsBody { words: n }))
}

#[derive(Deserialize, ToSchema)]
pub struct OrderBody {
    merchant: String,
    buyer: Option<String>,
    /// 1-200 characters.
    item: String,
    /// Integer fen, above 0.
    amount_fen: i64,
}

/// Records a paid order and its `order.paid` event (what payments will do), for tests and
/// demos: the merchant gets a live `order_alert`.
#[utoipa::path(post, path = "/api/v1/admin/orders", tag = "admin", request_body = OrderBody,
    security(("bearer" = [])), responses((status = 201, body = WireOrder)))]
async fn create_order(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<OrderBody>,
) -> Result<(StatusCode, Json<WireOrder>), ApiError> {
    state.moderation.require_admin(me).await?;
    let StrictJson(b) = body;
    let order = NewOrder {
        merchant: UserId::parse(&b.merchant)?,
        buyer: b.buyer.as_deref().map(UserId::parse).transpose()?,
        item: ItemName::parse(&b.item)?,
        amount: AmountFen::new(b.amount_fen)?,
    };
    let o = state.alerts.order_paid(order).await?;
    Ok((StatusCode::CREATED, Json(WireOrder::from(&o))))
}
