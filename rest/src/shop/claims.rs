//! Claims of farm animals (动物认领) over HTTP: a user claims an animal (an order of kind
//! `claim`, paid like any order) and renews it; the merchant posts updates that active
//! claimants read here and receive live (`claim_update`). The rules are in
//! `jiebanke_chat_core::commerce::claims`.

use super::orders::{view, OrderView};
use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::commerce::claims::Claim;
use jiebanke_chat_core::commerce::orders::Viewer;
use jiebanke_gateway::frame::WireAnimalUpdate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(claim_animal))
        .routes(routes!(mine))
        .routes(routes!(one))
        .routes(routes!(renew))
        .routes(routes!(updates))
        .routes(routes!(post_update))
}

/// A claim of a farm animal.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    pub id: String,
    pub animal: String,
    pub merchant: String,
    /// `pending` (its first order unpaid; a slot is held), `active`, `ended`, `cancelled`.
    pub state: String,
    pub period_days: u16,
    /// The order that placed it.
    pub order: String,
    pub started_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub created_at: i64,
}

impl From<&Claim> for ClaimView {
    fn from(c: &Claim) -> Self {
        ClaimView {
            id: c.id.to_string(),
            animal: c.animal.to_string(),
            merchant: c.merchant.to_string(),
            state: c.state.as_str().to_owned(),
            period_days: c.period_days,
            order: c.first_order.to_string(),
            started_at: c.started_at,
            ends_at: c.ends_at,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodsBody {
    /// 1-12 periods of the animal's `period_days`.
    periods: i64,
}

/// A claim and the order to pay for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimPlaced {
    pub claim: ClaimView,
    pub order: OrderView,
}

fn id_path(p: Result<Path<String>, PathRejection>, what: &'static str) -> Result<i64, ApiError> {
    let Path(id) = p?;
    id.parse::<i64>().ok().filter(|v| *v > 0 && id.bytes().all(|c| c.is_ascii_digit())).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}")))
}

/// Claims a farm animal for 1-12 periods: holds one of its slots (409 `out_of_stock` when all
/// are held) and places the order to pay (`POST /api/v1/orders/{id}/pay`); paid, the claim is
/// active from then for `periods × period_days`; unpaid in time, the order is cancelled and the
/// slot freed.
#[utoipa::path(post, path = "/api/v1/animals/{id}/claims", tag = "claims", params(("id" = String, Path, description = "animal id")),
    request_body = PeriodsBody, security(("bearer" = [])), responses((status = 201, body = ClaimPlaced)))]
async fn claim_animal(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<PeriodsBody>,
) -> Result<(StatusCode, Json<ClaimPlaced>), ApiError> {
    let animal = id_path(p, "animal")?;
    let StrictJson(b) = body;
    let (claim, order) = state.claims.claim_animal(me, animal, b.periods).await?;
    Ok((StatusCode::CREATED, Json(ClaimPlaced { claim: ClaimView::from(&claim), order: view(&state.orders, Viewer::Buyer(me), &order)? })))
}

/// My claims, newest first.
#[utoipa::path(get, path = "/api/v1/claims", tag = "claims", params(PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<ClaimView>)))]
async fn mine(State(state): State<RestState>, AuthUser(me): AuthUser, q: Result<Query<PageQuery>, QueryRejection>) -> Result<Json<Page<ClaimView>>, ApiError> {
    let Query(q) = q?;
    let p = q.parse()?;
    let list = state.claims.list(me, p.after, p.limit + 1).await?;
    let items = list.iter().map(ClaimView::from).collect();
    Ok(Json(Page::from_probe(items, p.limit, |c: &ClaimView| c.id.parse().unwrap_or(0))))
}

/// One of my claims.
#[utoipa::path(get, path = "/api/v1/claims/{id}", tag = "claims", params(("id" = String, Path, description = "claim id")),
    security(("bearer" = [])), responses((status = 200, body = ClaimView)))]
async fn one(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<ClaimView>, ApiError> {
    Ok(Json(ClaimView::from(&state.claims.mine(me, id_path(p, "claim")?).await?)))
}

/// Renews my active claim for 1-12 more periods: a new order to pay; paid, the claim is
/// extended from its end.
#[utoipa::path(post, path = "/api/v1/claims/{id}/renew", tag = "claims", params(("id" = String, Path, description = "claim id")),
    request_body = PeriodsBody, security(("bearer" = [])), responses((status = 201, body = OrderView)))]
async fn renew(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<PeriodsBody>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let claim = id_path(p, "claim")?;
    let StrictJson(b) = body;
    let order = state.claims.renew(me, claim, b.periods).await?;
    Ok((StatusCode::CREATED, Json(view(&state.orders, Viewer::Buyer(me), &order)?)))
}

/// What the merchant posted about my claim's animal, newest first (an active claim; 409 with
/// its `state` otherwise).
#[utoipa::path(get, path = "/api/v1/claims/{id}/updates", tag = "claims", params(("id" = String, Path, description = "claim id"), PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<WireAnimalUpdate>)))]
async fn updates(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<WireAnimalUpdate>>, ApiError> {
    let claim = id_path(p, "claim")?;
    let Query(q) = q?;
    let page = q.parse()?;
    let list = state.claims.updates(me, claim, page.after, page.limit + 1).await?;
    let items = list.iter().map(WireAnimalUpdate::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |u: &WireAnimalUpdate| u.id.parse().unwrap_or(0))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// 1-1000 characters, screened.
    text: String,
    /// At most 9 `https://` URLs or `/uploads/...` paths.
    #[serde(default)]
    photos: Vec<String>,
}

/// Posts an update about my animal (an active merchant): stored, and pushed to every active
/// claimant's sessions as `claim_update`.
#[utoipa::path(post, path = "/api/v1/merchant/animals/{id}/updates", tag = "claims", params(("id" = String, Path, description = "animal id")),
    request_body = UpdateBody, security(("bearer" = [])), responses((status = 201, body = WireAnimalUpdate)))]
async fn post_update(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<UpdateBody>,
) -> Result<(StatusCode, Json<WireAnimalUpdate>), ApiError> {
    let animal = id_path(p, "animal")?;
    let StrictJson(b) = body;
    let u = state.claims.post_update(me, animal, &b.text, b.photos).await?;
    Ok((StatusCode::CREATED, Json(WireAnimalUpdate::from(&u))))
}
