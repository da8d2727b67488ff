//! Staff accounts over HTTP: the console login (`POST /api/v1/auth/staff/login`: username,
//! password, TOTP code) and their management by admins (`/api/v1/admin/staff...`). The rules
//! are in `jiebanke_chat_core::staff`.
//!
//! A console keeps the token it gets in memory and sends it as `Authorization: Bearer` (the
//! same tokens as the mini-program's); no cookie is set, so there is nothing for a cross-site
//! request to ride on (no CSRF), and a reload logs in again.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::auth::routes::LoginAnswer;
use crate::users::{MeBody, PrivacyBody};
use crate::{Acting, AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::staff::login::LoginAttempt;
use jiebanke_chat_core::staff::{Enrolment, NewStaffInput, StaffRecord};
use jiebanke_chat_core::UserId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(staff_login))
        .routes(routes!(create, list))
        .routes(routes!(disable))
        .routes(routes!(enable))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffLoginBody {
    username: String,
    password: String,
    /// The 6-digit code of the authenticator app (TOTP, 30-second steps).
    totp: String,
}

/// A console login: username, password and a current TOTP code (each code logs in once). Any
/// mismatch, an unknown username too, is the same 401. Five failures of one username from one
/// address in 15 minutes, or twenty from one address whatever the usernames, answer 429
/// `rate_limited` (`retry_after_ms`, `Retry-After`) to that pair or address only: the owner
/// logging in from elsewhere is not held. Also limited per address like `/auth/login`.
#[utoipa::path(post, path = "/api/v1/auth/staff/login", tag = "auth", request_body = StaffLoginBody,
    responses((status = 200, body = LoginAnswer)))]
async fn staff_login(
    State(state): State<RestState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: StrictJson<StaffLoginBody>,
) -> Result<Json<LoginAnswer>, ApiError> {
    crate::rate_check(&state.login_limiter, &peer.ip(), "too many logins, retry later")?;
    let StrictJson(b) = body;
    // `peer` is the client's address: the listener has replaced the proxy's with the forwarded
    // one where the proxy is trusted.
    let attempt = LoginAttempt { username: &b.username, password: &b.password, code: &b.totp, address: peer.ip() };
    let user = state.staff.login(&attempt, jiebanke_chat_core::now_ms()).await?;
    // A banned staff user is refused like any other.
    state.moderation.session_allowed(user).await?;
    state.activity.seen(user);
    let (token, expires_at) = crate::auth::issue_session(&state.jwt, &state.sessions, user).await?;
    let account = state.users.account(user).await?;
    let privacy = PrivacyBody::of(&state.users, &account);
    Ok(Json(LoginAnswer { token, expires_at, user: MeBody::from(&account), privacy }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaffBody {
    /// 3-32 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter.
    username: String,
    /// 12-128 characters.
    password: String,
    /// `admin` or `operator`.
    role: String,
}

/// A new staff account, with its TOTP secret: shown this once, for the authenticator app.
#[derive(Serialize, ToSchema)]
pub struct EnrolmentView {
    pub id: String,
    pub username: String,
    pub role: String,
    /// base32.
    pub totp_secret: String,
    /// `otpauth://totp/...`, to show as a QR code.
    pub totp_uri: String,
}

impl From<Enrolment> for EnrolmentView {
    fn from(e: Enrolment) -> Self {
        EnrolmentView { id: e.user.to_string(), username: e.username, role: e.role.as_str().to_owned(), totp_secret: e.totp_secret, totp_uri: e.totp_uri }
    }
}

/// Makes a staff account (admins). 409 if the username is taken.
#[utoipa::path(post, path = "/api/v1/admin/staff", tag = "admin", request_body = NewStaffBody,
    security(("bearer" = [])), responses((status = 201, body = EnrolmentView)))]
async fn create(State(state): State<RestState>, Acting(actor): Acting, body: StrictJson<NewStaffBody>) -> Result<(StatusCode, Json<EnrolmentView>), ApiError> {
    let StrictJson(b) = body;
    let e = state.staff.create(Some(&actor), NewStaffInput { username: b.username, password: b.password, role: b.role }).await?;
    Ok((StatusCode::CREATED, Json(EnrolmentView::from(e))))
}

/// A staff account as admins see it (no secrets).
#[derive(Serialize, ToSchema)]
pub struct StaffView {
    pub id: String,
    pub username: String,
    /// `admin`, `operator`, or `none` (disabled, or re-roled).
    pub role: String,
    pub disabled: bool,
    pub created_at: i64,
}

impl From<&StaffRecord> for StaffView {
    fn from(r: &StaffRecord) -> Self {
        StaffView {
            id: r.user.to_string(),
            username: r.username.clone(),
            role: r.role.as_str().to_owned(),
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }
}

/// The staff accounts (admins).
#[utoipa::path(get, path = "/api/v1/admin/staff", tag = "admin", params(PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<StaffView>)))]
async fn list(State(state): State<RestState>, AuthUser(me): AuthUser, q: Result<Query<PageQuery>, QueryRejection>) -> Result<Json<Page<StaffView>>, ApiError> {
    let Query(q) = q?;
    let page = q.parse()?;
    let after = page.after.map(UserId::new).transpose()?;
    let list = state.staff.list(me, after, page.limit + 1).await?;
    let items = list.iter().map(StaffView::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |s: &StaffView| s.id.parse().unwrap_or(0))))
}

fn staff_path(p: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(id) = p?;
    UserId::parse(&id).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such staff account"))
}

/// Disables a staff account (admins): its logins are refused and its role drops to `none` at
/// once. 409 if disabled already; 422 for your own.
#[utoipa::path(post, path = "/api/v1/admin/staff/{id}/disable", tag = "admin",
    params(("id" = String, Path, description = "the staff account's user id")),
    security(("bearer" = [])), responses((status = 200, body = StaffView)))]
async fn disable(State(state): State<RestState>, Acting(actor): Acting, p: Result<Path<String>, PathRejection>) -> Result<Json<StaffView>, ApiError> {
    let user = staff_path(p)?;
    let view = StaffView::from(&state.staff.set_disabled(&actor, user, true).await?);
    // The store ended the account's sessions with the change; this closes their sockets on
    // every node (4005 `logged_out`).
    state.sessions.end_all(user).await?;
    Ok(Json(view))
}

/// Enables a disabled staff account again (admins); its role is then set with
/// `PUT /api/v1/admin/users/{id}/role`. 409 if it is not disabled.
#[utoipa::path(post, path = "/api/v1/admin/staff/{id}/enable", tag = "admin",
    params(("id" = String, Path, description = "the staff account's user id")),
    security(("bearer" = [])), responses((status = 200, body = StaffView)))]
async fn enable(State(state): State<RestState>, Acting(actor): Acting, p: Result<Path<String>, PathRejection>) -> Result<Json<StaffView>, ApiError> {
    Ok(Json(StaffView::from(&state.staff.set_disabled(&actor, staff_path(p)?, false).await?)))
}
