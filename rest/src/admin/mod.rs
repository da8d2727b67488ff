//! Staff endpoints (every one answers `forbidden` to a caller without the role it needs).
//! Operators and admins:
//!
//! - `GET /api/v1/admin/moderation?status=&kind=`: the moderation queue, oldest first.
//! - `GET /api/v1/admin/dashboard`: the platform's counts for today.
//! - `POST /api/v1/admin/moderation/{id}/resolve`: dismiss or delete (staff), ban or unban
//!   (admins).
//! - `DELETE /api/v1/admin/conversations/{conv}/messages/{seq}`: a message becomes a tombstone.
//!
//! Admins only:
//!
//! - `PUT|DELETE /api/v1/admin/users/{id}/ban`: ban (sessions closed on every node) or unban.
//! - `PUT /api/v1/admin/users/{id}/role`: sets the staff role (`admin`, `operator`, `none`).
//! - `POST /api/v1/admin/banned-words/reload`: reads the banned-word list again.
//! - `GET /api/v1/admin/audit`: the audit log, newest first.
//! - `POST /api/v1/admin/orders`: a development tool: records a paid order through the same
//!   path as a payment (its `order.paid` event in the outbox, the merchant's live alert).
//! - `POST /api/v1/admin/orders/{id}/refund`: gives an order's money back.
//!
//! Staff: `GET /api/v1/admin/orders?state=&merchant=`: every order.
//!
//! Every change here writes its audit entry in its own transaction.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{Acting, AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::audit::AuditAction;
use jiebanke_chat_core::{AmountFen, ConvId, ItemName, ModerationId, NewOrder, Role, Seq, UserId};
use jiebanke_gateway::frame::{WireModerationItem, WireOrder};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(items))
        .routes(routes!(resolve))
        .routes(routes!(delete_message))
        .routes(routes!(ban, unban))
        .routes(routes!(set_role))
        .routes(routes!(reload_words))
        .routes(routes!(audit))
        .routes(routes!(dashboard))
        .routes(routes!(create_order, orders))
        .routes(routes!(refund_order))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModerationQuery {
    /// `open` (the default), `resolved` or `all`.
    status: Option<String>,
    /// One subject kind: `message`, `post`, `comment`, `user`, `profile`, `product`, `review`,
    /// `appeal`; absent: all.
    kind: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The moderation queue, oldest first (staff): flagged and reported content, reported users,
/// ban appeals.
#[utoipa::path(get, path = "/api/v1/admin/moderation", tag = "admin", params(ModerationQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<WireModerationItem>)))]
async fn items(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<ModerationQuery>, QueryRejection>,
) -> Result<Json<Page<WireModerationItem>>, ApiError> {
    use jiebanke_chat_core::{CoreError, FieldProblem, Subject};
    let Query(q) = q?;
    let mut bad = Vec::new();
    let open = match q.status.as_deref() {
        None | Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some("all") => None,
        Some(_) => {
            bad.push(FieldProblem::new("status", "must be open, resolved or all"));
            None
        }
    };
    if let Some(k) = &q.kind {
        if !Subject::KINDS.contains(&k.as_str()) {
            bad.push(FieldProblem::new("kind", format!("must be one of {}", Subject::KINDS.join(", "))));
        }
    }
    if !bad.is_empty() {
        return Err(CoreError::Fields(bad).into());
    }
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let after = page.after.map(ModerationId::new).transpose()?;
    let filter = jiebanke_chat_core::ports::ItemFilter { open, subject_kind: q.kind };
    let list = state.moderation.items(me, filter, after, page.limit + 1).await?;
    let items = list.iter().map(WireModerationItem::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |m: &WireModerationItem| m.id.parse().unwrap_or(0))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// `dismiss`, `delete` (messages and profiles), `ban` or `unban` (admins only).
    action: String,
}

/// Resolves an open item: `dismiss`; `delete` the content (a message's tombstone, members told
/// with `msg_deleted`; a profile reset); `ban` the author (sessions closed on every node) or
/// `unban` them (an appeal granted) — those two admins only. One transaction with its audit
/// entry; 409 if resolved already.
#[utoipa::path(post, path = "/api/v1/admin/moderation/{id}/resolve", tag = "admin",
    params(("id" = String, Path, description = "moderation item id")), request_body = ResolveBody,
    security(("bearer" = [])), responses((status = 200, body = WireModerationItem)))]
async fn resolve(
    State(state): State<RestState>,
    Acting(actor): Acting,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ResolveBody>,
) -> Result<Json<WireModerationItem>, ApiError> {
    let Path(id) = p?;
    let id = id
        .parse::<i64>()
        .ok()
        .and_then(|v| ModerationId::new(v).ok())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such moderation item"))?;
    let StrictJson(b) = body;
    let action = jiebanke_chat_core::ResolveAction::parse(&b.action)?;
    let item = state.moderation.resolve(&actor, id, action).await?;
    Ok(Json(WireModerationItem::from(&item)))
}

/// A message becomes a tombstone (`body.kind` `deleted`); members get `msg_deleted`.
#[utoipa::path(delete, path = "/api/v1/admin/conversations/{conv}/messages/{seq}", tag = "admin",
    params(("conv" = String, Path, description = "conversation id"), ("seq" = u64, Path, description = "message seq")),
    security(("bearer" = [])), responses((status = 204, description = "deleted")))]
async fn delete_message(
    State(state): State<RestState>,
    Acting(actor): Acting,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((conv, seq)) = path?;
    let conv = ConvId::parse(&conv)?;
    let seq = Seq::parse(seq)?;
    state.moderation.delete_message(&actor, conv, seq).await?;
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
async fn ban(State(state): State<RestState>, Acting(actor): Acting, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.ban(&actor, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a ban.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/ban", tag = "admin",
    params(("id" = String, Path, description = "user id")),
    security(("bearer" = [])), responses((status = 204, description = "unbanned")))]
async fn unban(State(state): State<RestState>, Acting(actor): Acting, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.moderation.unban(&actor, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `admin`, `operator` or `none`.
    role: String,
}

/// A role change: the role before and after.
#[derive(Serialize, ToSchema)]
pub struct RoleChange {
    pub user: String,
    pub before: String,
    pub role: String,
}

/// Sets a user's staff role (admins). An admin cannot lower their own role (422). Replaces the
/// grant and revoke pair of earlier versions.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/role", tag = "admin",
    params(("id" = String, Path, description = "user id")), request_body = RoleBody,
    security(("bearer" = [])), responses((status = 200, body = RoleChange)))]
async fn set_role(
    State(state): State<RestState>,
    Acting(actor): Acting,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<RoleBody>,
) -> Result<Json<RoleChange>, ApiError> {
    let user = user_path(p)?;
    let StrictJson(b) = body;
    let role = Role::parse(&b.role)?;
    let before = state.moderation.set_role(&actor, user, role).await?;
    Ok(Json(RoleChange { user: user.to_string(), before: before.as_str().to_owned(), role: role.as_str().to_owned() }))
}

#[derive(Serialize, ToSchema)]
pub struct WordsBody {
    /// How many words the list has now.
    words: usize,
}

/// Reads the banned-word list from its file again.
#[utoipa::path(post, path = "/api/v1/admin/banned-words/reload", tag = "admin",
    security(("bearer" = [])), responses((status = 200, body = WordsBody)))]
async fn reload_words(State(state): State<RestState>, Acting(actor): Acting) -> Result<Json<WordsBody>, ApiError> {
    state.moderation.require_admin(actor.user).await?;
    let n = (state.reload_words)().map_err(ApiError::invalid)?;
    state.moderation.words_reloaded(&actor, n).await?;
    Ok(Json(WordsBody { words: n }))
}

/// One entry of the audit log. Personal data in it is masked.
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    /// The staff member's user id (for `staff.login_limited`, the account whose logins were
    /// limited).
    pub actor: String,
    /// `role.set`, `user.ban`, `user.unban`, `message.delete`, `banned_words.reload`,
    /// `merchant_application.approve|reject|reveal`, `merchant.suspend|reinstate`,
    /// `merchant_lead.handle`, `staff.create|disable|enable|login_limited`, ...
    pub action: String,
    /// What was acted on: `user:12`, `merchant_application:3`, `message:5:9`, ...
    pub target: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub at: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this staff member's actions (a user id).
    actor: Option<String>,
    /// Only this action.
    action: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The audit log, newest first (admins). Entries are never changed or deleted.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<AuditView>)))]
async fn audit(State(state): State<RestState>, AuthUser(me): AuthUser, q: Result<Query<AuditQuery>, QueryRejection>) -> Result<Json<Page<AuditView>>, ApiError> {
    let Query(q) = q?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let actor = match q.actor.as_deref() {
        Some(a) => Some(UserId::parse(a).map_err(|_| {
            jiebanke_chat_core::CoreError::Fields(vec![jiebanke_chat_core::FieldProblem::new("actor", "must be a user id")])
        })?),
        None => None,
    };
    let action = q.action.as_deref().map(AuditAction::parse).transpose()?;
    let list = state.moderation.audit_entries(me, actor, action, page.after, page.limit + 1).await?;
    let items = list
        .into_iter()
        .map(|e| AuditView {
            id: e.id.to_string(),
            actor: e.actor.to_string(),
            action: e.action,
            target: e.target,
            before: e.before,
            after: e.after,
            ip: e.ip,
            at: e.at,
        })
        .collect();
    Ok(Json(Page::from_probe(items, page.limit, |a: &AuditView| a.id.parse().unwrap_or(0))))
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

/// Every order, newest first (staff: operators and admins), by state and merchant.
#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "admin", params(crate::shop::orders::AdminOrdersQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<crate::shop::orders::OrderView>)))]
async fn orders(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<crate::shop::orders::AdminOrdersQuery>, QueryRejection>,
) -> Result<Json<Page<crate::shop::orders::OrderView>>, ApiError> {
    let Query(q) = q?;
    Ok(Json(crate::shop::orders::admin_list(&state, me, q).await?))
}

/// Gives an order's money back (admins; the order's refund must have been asked): through the
/// payment provider, the stock back if it was not delivered. Audited.
#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refund", tag = "admin", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = crate::shop::orders::OrderView)))]
async fn refund_order(
    State(state): State<RestState>,
    acting: Acting,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<crate::shop::orders::OrderView>, ApiError> {
    Ok(Json(crate::shop::orders::admin_refund(&state, acting, p).await?))
}

/// The staff dashboard.
#[derive(Serialize, ToSchema)]
pub struct DashboardBody {
    /// Today in the business zone (`JBK_TIMEZONE`), `YYYY-MM-DD`.
    pub day: String,
    /// Accounts not erased (staff accounts not counted).
    pub users: u64,
    pub new_users_today: u64,
    /// Accounts that logged in or opened a session today.
    pub daily_active_users: u64,
    /// Sessions open now, on every node.
    pub online_sessions: u64,
    pub messages_today: u64,
    /// Active merchants.
    pub merchants: u64,
    pub pending_applications: u64,
    pub open_leads: u64,
    pub open_moderation: u64,
    /// Orders placed today (flowers and claims).
    pub orders_today: u64,
    /// Amounts of the orders paid today, fen.
    pub gmv_today_fen: u64,
}

/// The platform at a glance (staff).
#[utoipa::path(get, path = "/api/v1/admin/dashboard", tag = "admin",
    security(("bearer" = [])), responses((status = 200, body = DashboardBody)))]
async fn dashboard(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<DashboardBody>, ApiError> {
    let d = state.dashboard.dashboard(me).await?;
    let c = d.counts;
    Ok(Json(DashboardBody {
        day: d.day,
        users: c.users,
        new_users_today: c.new_users_today,
        daily_active_users: c.daily_active_users,
        online_sessions: d.online_sessions,
        messages_today: c.messages_today,
        merchants: c.merchants,
        pending_applications: c.pending_applications,
        open_leads: c.open_leads,
        open_moderation: c.open_moderation,
        orders_today: c.orders_today,
        gmv_today_fen: c.gmv_today_fen,
    }))
}
