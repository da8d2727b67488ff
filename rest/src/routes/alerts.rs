//! A merchant's order alerts over REST: the same alerts the gateway pushes live
//! (`GET /api/v1/alerts` lists those not acked, oldest first; `POST /api/v1/alerts/{id}/ack`).

use crate::error::ApiError;
use crate::{AuthUser, RestState};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiebanke_chat_core::{EventId, OrderAlert};
use serde_json::{json, Value};

pub fn router() -> Router<RestState> {
    Router::new()
        .route("/api/v1/alerts", get(pending))
        .route("/api/v1/alerts/{id}/ack", post(ack))
}

pub fn alert_json(a: &OrderAlert) -> Value {
    let o = &a.order;
    json!({
        "alert": a.id.to_string(),
        "created_at": a.created_at,
        "acked": a.acked,
        "order": {
            "id": o.id.to_string(),
            "merchant": o.merchant.to_string(),
            "buyer": o.buyer.map(|b| b.to_string()),
            "item": o.item,
            "amount_fen": o.amount_fen,
            "paid_at": o.paid_at,
        },
    })
}

async fn pending(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<Value>, ApiError> {
    let list = state.alerts.pending(me, 500).await?;
    Ok(Json(json!({ "alerts": list.iter().map(alert_json).collect::<Vec<_>>() })))
}

async fn ack(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let alert = EventId::parse(&id)?;
    state.alerts.ack(me, alert).await?;
    Ok(Json(json!({ "alert": alert.to_string(), "acked": true })))
}
