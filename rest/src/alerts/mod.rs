//! A merchant's order alerts over REST: the same alerts the gateway pushes live
//! (`GET /api/v1/alerts` lists those not acked, oldest first; `POST /api/v1/alerts/{id}/ack`).

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use jiebanke_chat_core::{EventId, OrderAlert};
use jiebanke_gateway::frame::WireOrder;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(pending)).routes(routes!(ack))
}

/// An order alert: the `order_alert` frame's content (the order is the frame's own type).
#[derive(Serialize, ToSchema)]
pub struct AlertBody {
    pub alert: String,
    pub created_at: i64,
    pub acked: bool,
    pub order: WireOrder,
}

impl From<&OrderAlert> for AlertBody {
    fn from(a: &OrderAlert) -> Self {
        AlertBody { alert: a.id.to_string(), created_at: a.created_at, acked: a.acked, order: WireOrder::from(&a.order) }
    }
}

/// My alerts not acked yet, oldest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<AlertBody>)))]
async fn pending(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<AlertBody>>, ApiError> {
    let Query(q) = q?;
    let page = q.parse()?;
    let after = page.after.map(EventId::new).transpose()?;
    let list = state.alerts.pending(me, after, page.limit + 1).await?;
    let items = list.iter().map(AlertBody::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |a: &AlertBody| a.alert.parse().unwrap_or(0))))
}

#[derive(Serialize, ToSchema)]
pub struct AckBody {
    pub alert: String,
    pub acked: bool,
}

/// Acks one of my alerts: it is not delivered again.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = String, Path, description = "alert id")),
    security(("bearer" = [])), responses((status = 200, body = AckBody)))]
async fn ack(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<AckBody>, ApiError> {
    let Path(id) = id?;
    let alert = EventId::parse(&id)?;
    state.alerts.ack(me, alert).await?;
    Ok(Json(AckBody { alert: alert.to_string(), acked: true }))
}
