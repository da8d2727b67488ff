//! `POST /api/v1/auth/login`, and QR login for web pages (`/api/v1/auth/qr...`).

use crate::auth::LoginCode;
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::users::{MeBody, PrivacyBody};
use crate::RestState;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use jiebanke_chat_core::{CoreError, FieldProblem};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(logout)).routes(routes!(qr_create)).routes(routes!(qr_poll)).routes(routes!(qr_confirm))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// The mini-program's `wx.login` code, or any code of 1-128 visible characters for `dev`.
    code: String,
    /// `wechat` or `dev`; the server's default provider when absent.
    provider: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    pub token: String,
    pub expires_at: i64,
    pub user: MeBody,
    /// Whether the user accepted the current privacy policy (ask them if not).
    pub privacy: PrivacyBody,
}

/// Exchanges a login code for a token. A known identity logs into its account; a new one makes
/// an account. A banned user gets 403 `banned` with an `appeal_token` (for `POST
/// /api/v1/appeals`, 7 days).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = LoginAnswer)))]
async fn login(
    State(state): State<RestState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: StrictJson<LoginBody>,
) -> Result<Json<LoginAnswer>, ApiError> {
    crate::rate_check(&state.login_limiter, &peer.ip(), "too many logins, retry later")?;
    let StrictJson(body) = body;
    let code = LoginCode::parse(&body.code);
    let provider = match &body.provider {
        None => state.logins.first(),
        Some(name) => state.logins.iter().find(|p| p.name() == name),
    };
    let (code, provider) = match (code, provider) {
        (Ok(code), Some(provider)) => (code, provider),
        (code, provider) => {
            let mut bad: Vec<FieldProblem> = code.err().into_iter().collect();
            if provider.is_none() {
                let enabled: Vec<&str> = state.logins.iter().map(|p| p.name()).collect();
                bad.push(FieldProblem::new("provider", format!("must be an enabled login provider ({})", enabled.join(", "))));
            }
            return Err(CoreError::Fields(bad).into());
        }
    };
    let identity = provider.exchange(&code).await?;
    state.users.check_identity(&identity).await?;
    let user = state.chat.login(&identity).await?;
    let user = match state.moderation.admit(&identity, user.clone()).await {
        Ok(u) => u,
        // Refused, a banned user gets the one thing they may still do: appeal.
        Err(jiebanke_chat_core::CoreError::Banned) => {
            let mut e = ApiError::from(jiebanke_chat_core::CoreError::Banned);
            e.appeal_token = Some(state.jwt.issue_appeal(user.id)?);
            return Err(e);
        }
        Err(e) => return Err(e.into()),
    };
    state.activity.seen(user.id);
    let (token, expires_at) = crate::auth::issue_session(&state.jwt, &state.sessions, user.id).await?;
    let account = state.users.account(user.id).await?;
    let privacy = PrivacyBody::of(&state.users, &account);
    Ok(Json(LoginAnswer { token, expires_at, user: MeBody::from(&account), privacy }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogoutQuery {
    /// `true`: every session of the caller ends, on every device.
    all: Option<bool>,
}

/// Logs out: the session of the token it carries ends (`?all=true`: every session of the
/// caller). From then on its token answers 401 on REST and at the socket's upgrade, and the
/// sockets opened with it are closed at once on every node (close code 4005 `logged_out`).
/// The token's session ended, a second logout with it answers 401.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", params(LogoutQuery),
    security(("bearer" = [])), responses((status = 204, description = "logged out")))]
async fn logout(
    State(state): State<RestState>,
    crate::CurrentSession(claims): crate::CurrentSession,
    q: Result<axum::extract::Query<LogoutQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    let axum::extract::Query(q) = q?;
    state.sessions.logout(&claims, q.all.unwrap_or(false)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A QR login ticket, for the page to show.
#[derive(Serialize, ToSchema)]
pub struct QrTicketBody {
    /// The ticket: poll with it. Whoever holds it may log in once it is confirmed: keep it in
    /// the page only.
    pub ticket: String,
    /// What the QR code encodes (`jiebanke:qr-login:<ticket>`): the mini-program scans it.
    pub qr: String,
    /// The QR code as an SVG image (to put in an `<img src="data:image/svg+xml,...">`).
    pub qr_svg: String,
    pub expires_at: i64,
}

/// Starts a QR login for a web page (no token): a single-use ticket, valid for
/// `JBK_QR_TTL_MS` (default 2 minutes). Limited per address like `/auth/login`.
#[utoipa::path(post, path = "/api/v1/auth/qr", tag = "auth", responses((status = 201, body = QrTicketBody)))]
async fn qr_create(State(state): State<RestState>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Result<(axum::http::StatusCode, Json<QrTicketBody>), ApiError> {
    crate::rate_check(&state.login_limiter, &peer.ip(), "too many logins, retry later")?;
    let t = state.qr.create(jiebanke_chat_core::now_ms()).await?;
    let code = qrcode::QrCode::new(t.qr.as_bytes()).map_err(|e| ApiError::from(jiebanke_chat_core::CoreError::unavailable(format!("qr: {e}"))))?;
    let qr_svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build();
    Ok((axum::http::StatusCode::CREATED, Json(QrTicketBody { ticket: t.ticket, qr: t.qr, qr_svg, expires_at: t.expires_at })))
}

/// Where a QR login stands. Once confirmed, ONE poll gets the token (`logged_in`); after it the
/// ticket says `consumed`.
#[derive(Serialize, ToSchema)]
pub struct QrPollBody {
    /// `pending`, `logged_in`, `consumed` or `expired`.
    pub status: String,
    pub expires_at: Option<i64>,
    /// With `logged_in` only: the login, as `/auth/login` answers it.
    pub login: Option<LoginAnswer>,
}

fn ticket_path(p: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>) -> Result<String, ApiError> {
    let axum::extract::Path(t) = p?;
    Ok(t)
}

/// The page polls its ticket (no token: the ticket is the secret; every second or two).
#[utoipa::path(get, path = "/api/v1/auth/qr/{ticket}", tag = "auth",
    params(("ticket" = String, Path, description = "the ticket")),
    responses((status = 200, body = QrPollBody)))]
async fn qr_poll(
    State(state): State<RestState>,
    p: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<QrPollBody>, ApiError> {
    use jiebanke_chat_core::logins::Poll;
    let ticket = ticket_path(p)?;
    let body = match state.qr.poll(&ticket, jiebanke_chat_core::now_ms()).await? {
        Poll::Pending { expires_at } => QrPollBody { status: "pending".into(), expires_at: Some(expires_at), login: None },
        Poll::Consumed => QrPollBody { status: "consumed".into(), expires_at: None, login: None },
        Poll::Expired => QrPollBody { status: "expired".into(), expires_at: None, login: None },
        Poll::LoggedIn(user) => {
            // Refused if the user was banned or erased since confirming.
            state.moderation.session_allowed(user).await?;
            state.activity.seen(user);
            let (token, expires_at) = crate::auth::issue_session(&state.jwt, &state.sessions, user).await?;
            let account = state.users.account(user).await?;
            let privacy = PrivacyBody::of(&state.users, &account);
            QrPollBody { status: "logged_in".into(), expires_at: None, login: Some(LoginAnswer { token, expires_at, user: MeBody::from(&account), privacy }) }
        }
    };
    Ok(Json(body))
}

/// The mini-program confirms a scanned ticket with its own token: the page logs in as this
/// user. 404 for no such ticket; 409 if it was confirmed already or expired. The ticket may be
/// given as scanned (`jiebanke:qr-login:<ticket>`, percent-encoded) or bare.
#[utoipa::path(post, path = "/api/v1/auth/qr/{ticket}/confirm", tag = "auth",
    params(("ticket" = String, Path, description = "the ticket")),
    security(("bearer" = [])), responses((status = 204, description = "confirmed")))]
async fn qr_confirm(
    State(state): State<RestState>,
    crate::AuthUser(me): crate::AuthUser,
    p: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    let ticket = ticket_path(p)?;
    state.qr.confirm(&ticket, me, jiebanke_chat_core::now_ms()).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
