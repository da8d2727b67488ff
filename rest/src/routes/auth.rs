//! `POST /api/v1/auth/login` and `GET /api/v1/me`.

use super::user_json;
use crate::auth::LoginCode;
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;

pub fn router() -> Router<RestState> {
    Router::new().route("/api/v1/auth/login", post(login)).route("/api/v1/me", get(me))
}

#[derive(Deserialize)]
struct LoginBody {
    code: String,
    /// `wechat` or `dev`; the server's default provider when absent.
    provider: Option<String>,
}

async fn login(
    State(state): State<RestState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: StrictJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    crate::rate_check(&state.login_limiter, &peer.ip(), "too many logins, retry later")?;
    let StrictJson(body) = body;
    let code = LoginCode::parse(&body.code)?;
    let provider = match &body.provider {
        None => state.logins.first(),
        Some(name) => state.logins.iter().find(|p| p.name() == name),
    }
    .ok_or_else(|| ApiError::invalid("login provider not enabled"))?;
    let identity = provider.exchange(&code).await?;
    let user = state.chat.login(&identity).await?;
    let user = state.moderation.admit(&identity, user).await?;
    let (token, expires_at) = state.jwt.issue(user.id)?;
    Ok(Json(json!({ "token": token, "expires_at": expires_at, "user": user_json(&user) })))
}

async fn me(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<Value>, ApiError> {
    let user = state.chat.user(me).await?;
    Ok(Json(user_json(&user)))
}
