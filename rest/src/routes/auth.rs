//! `POST /api/v1/auth/login`.

use crate::auth::LoginCode;
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::users::{MeBody, PrivacyBody};
use crate::RestState;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(login))
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
/// an account.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = LoginAnswer)))]
async fn login(
    State(state): State<RestState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: StrictJson<LoginBody>,
) -> Result<Json<LoginAnswer>, ApiError> {
    crate::rate_check(&state.login_limiter, &peer.ip(), "too many logins, retry later")?;
    let StrictJson(body) = body;
    let code = LoginCode::parse(&body.code)?;
    let provider = match &body.provider {
        None => state.logins.first(),
        Some(name) => state.logins.iter().find(|p| p.name() == name),
    }
    .ok_or_else(|| ApiError::invalid("login provider not enabled"))?;
    let identity = provider.exchange(&code).await?;
    state.users.check_identity(&identity).await?;
    let user = state.chat.login(&identity).await?;
    let user = state.moderation.admit(&identity, user).await?;
    let (token, expires_at) = state.jwt.issue(user.id)?;
    let account = state.users.account(user.id).await?;
    let privacy = PrivacyBody::of(&state.users, &account);
    Ok(Json(LoginAnswer { token, expires_at, user: MeBody::from(&account), privacy }))
}
