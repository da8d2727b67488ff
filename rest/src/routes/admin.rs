//! Admin endpoints (every one answers `forbidden` to a non-admin):
//!
//! - `GET /api/v1/admin/moderation?after=&limit=`: the moderation feed's items, oldest first.
//! - `DELETE /api/v1/admin/conversations/{conv}/messages/{seq}`: a message becomes a tombstone.
//! - `PUT|DELETE /api/v1/admin/users/{id}/ban`: ban (sessions closed on every node) or unban.
//! - `PUT|DELETE /api/v1/admin/users/{id}/admin`: grant or revoke the admin role.
//! - `POST /api/v1/admin/banned-words/reload`: reads the banned-word list again.
//! - `POST /api/v1/admin/orders`: records a paid order (through the outbox, like the payments
//!   will), so that a merchant's alert can be produced before payments exist.

use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use jiebanke_chat_core::{AmountFen, ConvId, ItemName, ModerationId, NewOrder, Seq, UserId};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<RestState> {
    Router::new()
        .route("/api/v1/admin/moderation", get(items))
        .route("/api/v1/admin/conversations/{conv}/messages/{seq}", delete(delete_message))
        .route("/api/v1/admin/users/{id}/ban", put(ban).delete(unban))
        .route("/api/v1/admin/users/{id}/admin", put(grant).delete(revoke))
        .route("/api/v1/admin/banned-words/reload", post(reload_words))
        .route("/api/v1/admin/orders", post(create_order))
}

#[derive(Deserialize)]
struct ItemsQuery {
    after: Option<String>,
    limit: Option<u32>,
}

async fn items(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<ItemsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let after = q.after.as_deref().map(ModerationId::parse).transpose()?;
    let list = state.moderation.items(me, after, q.limit.unwrap_or(100)).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|m| {
            json!({
                "id": m.id.to_string(), "kind": m.kind.as_str(), "conv": m.conv.to_string(), "seq": m.seq.get(),
                "author": m.author.to_string(), "reporter": m.reporter.map(|r| r.to_string()),
                "reason": m.reason, "words": m.words, "excerpt": m.excerpt, "created_at": m.created_at,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn delete_message(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((conv, seq)) = path?;
    let conv = ConvId::parse(&conv)?;
    state.moderation.delete_message(me, conv, Seq::new(seq)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn user_path(p: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(id) = p?;
    Ok(UserId::parse(&id)?)
}

async fn ban(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.ban(me, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unban(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.unban(me, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn grant(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.set_admin(me, user_path(p)?, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.set_admin(me, user_path(p)?, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reload_words(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<Value>, ApiError> {
    state.moderation.require_admin(me).await?;
    let n = (state.reload_words)().map_err(ApiError::invalid)?;
    Ok(Json(json!({ "words": n })))
}

#[derive(Deserialize)]
struct OrderBody {
    merchant: String,
    buyer: Option<String>,
    item: String,
    amount_fen: i64,
}

async fn create_order(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<OrderBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.moderation.require_admin(me).await?;
    let StrictJson(b) = body;
    let order = NewOrder {
        merchant: UserId::parse(&b.merchant)?,
        buyer: b.buyer.as_deref().map(UserId::parse).transpose()?,
        item: ItemName::parse(&b.item)?,
        amount: AmountFen::new(b.amount_fen)?,
    };
    let o = state.alerts.order_paid(order).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": o.id.to_string(), "merchant": o.merchant.to_string(), "buyer": o.buyer.map(|b| b.to_string()),
            "item": o.item, "amount_fen": o.amount_fen, "paid_at": o.paid_at,
        })),
    ))
}
