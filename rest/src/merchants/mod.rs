//! The merchants area over HTTP: applying (`/api/v1/merchants/applications`, `/api/v1/me/merchant`),
//! the review by staff (`/api/v1/admin/merchant-applications...`), merchants' public pages
//! (`/api/v1/merchants...`, no token), suspensions (admins), and the website's leads
//! (`/api/v1/merchant-leads`, no token, limited per address). The rules are in
//! `jiebanke_chat_core::merchants`.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{Acting, AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::merchants::rules::{ApplicationInput, LeadInput};
use jiebanke_chat_core::merchants::*;
use jiebanke_chat_core::UserId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(apply))
        .routes(routes!(mine))
        .routes(routes!(applications))
        .routes(routes!(papers))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(merchants))
        .routes(routes!(merchant))
        .routes(routes!(suspend))
        .routes(routes!(reinstate))
        .routes(routes!(submit_lead))
        .routes(routes!(leads))
        .routes(routes!(handle_lead))
}

/// An application to become a merchant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationBody {
    /// The shop's name, 1-64 characters.
    name: String,
    /// `farm` (动物认领), `florist` (送花) or `travel`.
    category: String,
    /// The unified social credit code (统一社会信用代码): 18 characters with its check character.
    license_no: String,
    /// 1-32 characters.
    contact_name: String,
    /// E.164, e.g. `+8613812345678`.
    contact_phone: String,
}

/// An application as its applicant and staff see it (papers masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub user: String,
    pub name: String,
    pub category: String,
    /// Masked: `9135**********0Y43`.
    pub license_no: String,
    pub contact_name: String,
    /// Masked: `138****5678`.
    pub contact_phone: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

impl From<&ApplicationRecord> for ApplicationView {
    fn from(a: &ApplicationRecord) -> Self {
        ApplicationView {
            id: a.id.to_string(),
            user: a.user.to_string(),
            name: a.name.clone(),
            category: a.category.as_str().to_owned(),
            license_no: a.license_masked.clone(),
            contact_name: a.contact_name.clone(),
            contact_phone: a.phone_masked.clone(),
            status: a.state.as_str().to_owned(),
            reason: match &a.state {
                ApplicationState::Rejected { reason } => Some(reason.clone()),
                _ => None,
            },
            created_at: a.created_at,
            decided_at: a.decided_at,
        }
    }
}

/// A merchant's public page: no contact data.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantView {
    /// The merchant's id, which is its user's id.
    pub id: String,
    pub name: String,
    pub category: String,
    /// Average review stars (1-5, one decimal); `null` before the first review.
    pub rating: Option<f64>,
    pub reviews: i64,
    /// When it became a merchant.
    pub since: i64,
}

impl From<&Merchant> for MerchantView {
    fn from(m: &Merchant) -> Self {
        MerchantView {
            id: m.id.to_string(),
            name: m.name.clone(),
            category: m.category.as_str().to_owned(),
            rating: m.rating(),
            reviews: m.reviews,
            since: m.since,
        }
    }
}

/// A merchant as it and staff see it: the public page plus its status.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantStatusView {
    #[serde(flatten)]
    pub merchant: MerchantView,
    /// `active`, `suspended` (hidden, cannot sell) or `closed` (its account was erased).
    pub status: String,
    pub suspend_reason: Option<String>,
}

impl From<&Merchant> for MerchantStatusView {
    fn from(m: &Merchant) -> Self {
        MerchantStatusView {
            merchant: MerchantView::from(m),
            status: m.status.as_str().to_owned(),
            suspend_reason: match &m.status {
                MerchantStatus::Suspended { reason } => Some(reason.clone()),
                _ => None,
            },
        }
    }
}

/// My application and my merchant.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyMerchantView {
    /// My newest application, if I ever applied.
    pub application: Option<ApplicationView>,
    /// Once approved: my merchant (its id is my user id).
    pub merchant: Option<MerchantStatusView>,
}

/// Applies to become a merchant. One open application per user (409 `conflict` while one is
/// pending, or when I am a merchant already); every bad field named (422), the credit code by
/// its check character; the license number and phone are stored encrypted.
#[utoipa::path(post, path = "/api/v1/merchants/applications", tag = "merchants", request_body = ApplicationBody,
    security(("bearer" = [])), responses((status = 201, body = ApplicationView)))]
async fn apply(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<ApplicationBody>,
) -> Result<(StatusCode, Json<ApplicationView>), ApiError> {
    let StrictJson(b) = body;
    let input = ApplicationInput { name: b.name, category: b.category, license_no: b.license_no, contact_name: b.contact_name, contact_phone: b.contact_phone };
    let rec = state.merchants.apply(me, input).await?;
    Ok((StatusCode::CREATED, Json(ApplicationView::from(&rec))))
}

/// My newest application (its state and reason) and, once approved, my merchant.
#[utoipa::path(get, path = "/api/v1/me/merchant", tag = "merchants", security(("bearer" = [])),
    responses((status = 200, body = MyMerchantView)))]
async fn mine(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<MyMerchantView>, ApiError> {
    let m = state.merchants.mine(me).await?;
    Ok(Json(MyMerchantView { application: m.application.as_ref().map(ApplicationView::from), merchant: m.merchant.as_ref().map(MerchantStatusView::from) }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationsQuery {
    /// `pending`, `approved` or `rejected`; absent: all.
    status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Applications for review, oldest first (staff).
#[utoipa::path(get, path = "/api/v1/admin/merchant-applications", tag = "admin", params(ApplicationsQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<ApplicationView>)))]
async fn applications(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<ApplicationsQuery>, QueryRejection>,
) -> Result<Json<Page<ApplicationView>>, ApiError> {
    let Query(q) = q?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let after = page.after.map(RecordId::new).transpose()?;
    let list = state.merchants.applications(me, q.status.as_deref(), after, page.limit + 1).await?;
    let items = list.iter().map(ApplicationView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |a: &ApplicationView| a.id.parse().unwrap_or(0))))
}

/// An application's papers in the clear.
#[derive(Debug, Serialize, ToSchema)]
pub struct PapersView {
    pub license_no: String,
    pub contact_phone: String,
}

fn record(p: Result<Path<String>, PathRejection>, what: &str) -> Result<RecordId, ApiError> {
    let Path(id) = p?;
    Ok(RecordId::parse(&id, what)?)
}

/// Opens an application's license number and phone for the review (staff). Each opening is
/// in the audit log (`merchant_application.reveal`).
#[utoipa::path(get, path = "/api/v1/admin/merchant-applications/{id}/papers", tag = "admin",
    params(("id" = String, Path, description = "application id")),
    security(("bearer" = [])), responses((status = 200, body = PapersView)))]
async fn papers(State(state): State<RestState>, Acting(actor): Acting, p: Result<Path<String>, PathRejection>) -> Result<Json<PapersView>, ApiError> {
    let p = state.merchants.reveal(&actor, record(p, "application")?).await?;
    Ok(Json(PapersView { license_no: p.license_no, contact_phone: p.contact_phone }))
}

/// Approves an application (staff): the applicant becomes a merchant whose id is their user id,
/// and is told at once on the socket (`merchant_review`). 409 if it was decided already.
#[utoipa::path(post, path = "/api/v1/admin/merchant-applications/{id}/approve", tag = "admin",
    params(("id" = String, Path, description = "application id")),
    security(("bearer" = [])), responses((status = 200, body = ApplicationView)))]
async fn approve(State(state): State<RestState>, Acting(actor): Acting, p: Result<Path<String>, PathRejection>) -> Result<Json<ApplicationView>, ApiError> {
    let rec = state.merchants.decide(&actor, record(p, "application")?, true, None).await?;
    Ok(Json(ApplicationView::from(&rec)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// 1-500 characters, shown to the applicant or merchant.
    reason: String,
}

/// Rejects an application with its reason (staff); the applicant is told on the socket and may
/// apply again.
#[utoipa::path(post, path = "/api/v1/admin/merchant-applications/{id}/reject", tag = "admin",
    params(("id" = String, Path, description = "application id")), request_body = ReasonBody,
    security(("bearer" = [])), responses((status = 200, body = ApplicationView)))]
async fn reject(
    State(state): State<RestState>,
    Acting(actor): Acting,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ReasonBody>,
) -> Result<Json<ApplicationView>, ApiError> {
    let id = record(p, "application")?;
    let StrictJson(b) = body;
    let rec = state.merchants.decide(&actor, id, false, Some(&b.reason)).await?;
    Ok(Json(ApplicationView::from(&rec)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MerchantsQuery {
    /// `farm`, `florist` or `travel`; absent: all.
    category: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Active merchants (no token needed). Suspended ones are not listed.
#[utoipa::path(get, path = "/api/v1/merchants", tag = "merchants", params(MerchantsQuery),
    responses((status = 200, body = Page<MerchantView>)))]
async fn merchants(State(state): State<RestState>, q: Result<Query<MerchantsQuery>, QueryRejection>) -> Result<Json<Page<MerchantView>>, ApiError> {
    let Query(q) = q?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let after = page.after.map(UserId::new).transpose()?;
    let list = state.merchants.merchants(q.category.as_deref(), after, page.limit + 1).await?;
    let items = list.iter().map(MerchantView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |m: &MerchantView| m.id.parse().unwrap_or(0))))
}

fn merchant_path(p: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(id) = p?;
    UserId::parse(&id).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such merchant"))
}

/// A merchant's public page (no token needed); 404 unless active.
#[utoipa::path(get, path = "/api/v1/merchants/{id}", tag = "merchants",
    params(("id" = String, Path, description = "merchant id (its user's id)")),
    responses((status = 200, body = MerchantView)))]
async fn merchant(State(state): State<RestState>, p: Result<Path<String>, PathRejection>) -> Result<Json<MerchantView>, ApiError> {
    Ok(Json(MerchantView::from(&state.merchants.merchant(merchant_path(p)?).await?)))
}

/// Suspends a merchant (admins): hidden from lists and pages, cannot sell. 409 if suspended
/// already.
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/suspend", tag = "admin",
    params(("id" = String, Path, description = "merchant id")), request_body = ReasonBody,
    security(("bearer" = [])), responses((status = 200, body = MerchantStatusView)))]
async fn suspend(
    State(state): State<RestState>,
    Acting(actor): Acting,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ReasonBody>,
) -> Result<Json<MerchantStatusView>, ApiError> {
    let id = merchant_path(p)?;
    let StrictJson(b) = body;
    Ok(Json(MerchantStatusView::from(&state.merchants.suspend(&actor, id, &b.reason).await?)))
}

/// Lifts a suspension (admins). 409 if the merchant is not suspended.
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/reinstate", tag = "admin",
    params(("id" = String, Path, description = "merchant id")),
    security(("bearer" = [])), responses((status = 200, body = MerchantStatusView)))]
async fn reinstate(State(state): State<RestState>, Acting(actor): Acting, p: Result<Path<String>, PathRejection>) -> Result<Json<MerchantStatusView>, ApiError> {
    Ok(Json(MerchantStatusView::from(&state.merchants.reinstate(&actor, merchant_path(p)?).await?)))
}

/// A visitor of the website asks to sell on Jiebanke.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadBody {
    /// 1-64 characters.
    company: String,
    /// 1-32 characters.
    contact_name: String,
    /// E.164, e.g. `+8613812345678`.
    phone: String,
    /// `farm`, `florist` or `travel`.
    category: String,
    /// 1-32 characters.
    city: String,
    /// At most 500 characters.
    #[serde(default)]
    message: String,
}

/// What the visitor is told.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadReceipt {
    pub id: String,
    /// `received`: staff will get in touch and ask you to apply from the mini-program.
    pub status: String,
}

/// Leaves a lead from the website: no token; limited per address (`JBK_LEADS_PER_HOUR`, 429
/// `rate_limited` over it); texts screened (422 naming the field); the phone stored encrypted.
#[utoipa::path(post, path = "/api/v1/merchant-leads", tag = "merchants", request_body = LeadBody,
    responses((status = 201, body = LeadReceipt)))]
async fn submit_lead(
    State(state): State<RestState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: StrictJson<LeadBody>,
) -> Result<(StatusCode, Json<LeadReceipt>), ApiError> {
    crate::rate_check(&state.lead_limiter, &peer.ip(), "too many requests from this address, retry later")?;
    let StrictJson(b) = body;
    let input = LeadInput { company: b.company, contact_name: b.contact_name, phone: b.phone, category: b.category, city: b.city, message: b.message };
    let lead = state.merchants.submit_lead(input).await?;
    Ok((StatusCode::CREATED, Json(LeadReceipt { id: lead.id.to_string(), status: "received".into() })))
}

/// A lead as staff see it (phone masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadView {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    /// Masked.
    pub phone: String,
    pub category: String,
    pub city: String,
    pub message: String,
    pub created_at: i64,
    /// `open` or `handled`.
    pub status: String,
    pub handled_by: Option<String>,
    pub handled_note: Option<String>,
    pub handled_at: Option<i64>,
}

impl From<&LeadRecord> for LeadView {
    fn from(l: &LeadRecord) -> Self {
        LeadView {
            id: l.id.to_string(),
            company: l.company.clone(),
            contact_name: l.contact_name.clone(),
            phone: l.phone_masked.clone(),
            category: l.category.as_str().to_owned(),
            city: l.city.clone(),
            message: l.message.clone(),
            created_at: l.created_at,
            status: if l.handled.is_some() { "handled" } else { "open" }.to_owned(),
            handled_by: l.handled.as_ref().map(|h| h.by.to_string()),
            handled_note: l.handled.as_ref().map(|h| h.note.clone()),
            handled_at: l.handled.as_ref().map(|h| h.at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadsQuery {
    /// `open` (the default) or `all`.
    status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The website's leads, oldest first (staff).
#[utoipa::path(get, path = "/api/v1/admin/merchant-leads", tag = "admin", params(LeadsQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<LeadView>)))]
async fn leads(State(state): State<RestState>, AuthUser(me): AuthUser, q: Result<Query<LeadsQuery>, QueryRejection>) -> Result<Json<Page<LeadView>>, ApiError> {
    let Query(q) = q?;
    let open_only = match q.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => return Err(jiebanke_chat_core::CoreError::Fields(vec![jiebanke_chat_core::FieldProblem::new("status", "must be open or all")]).into()),
    };
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let after = page.after.map(RecordId::new).transpose()?;
    let list = state.merchants.leads(me, open_only, after, page.limit + 1).await?;
    let items = list.iter().map(LeadView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |l: &LeadView| l.id.parse().unwrap_or(0))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// What was done, 1-500 characters (e.g. "called; asked to apply in the mini-program").
    note: String,
}

/// Marks a lead followed up (staff). 409 if it was handled already.
#[utoipa::path(post, path = "/api/v1/admin/merchant-leads/{id}/handle", tag = "admin",
    params(("id" = String, Path, description = "lead id")), request_body = NoteBody,
    security(("bearer" = [])), responses((status = 200, body = LeadView)))]
async fn handle_lead(
    State(state): State<RestState>,
    Acting(actor): Acting,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<NoteBody>,
) -> Result<Json<LeadView>, ApiError> {
    let id = record(p, "lead")?;
    let StrictJson(b) = body;
    Ok(Json(LeadView::from(&state.merchants.handle_lead(&actor, id, &b.note).await?)))
}
