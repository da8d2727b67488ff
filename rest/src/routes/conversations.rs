//! Conversations: create (direct or group), list mine, read one, change group members, and a
//! REST view of history.

use super::conversation_json;
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jiebanke_chat_core::{ConvId, ConversationKind, MessageBody, Seq, Title, UserId};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<RestState> {
    Router::new()
        .route("/api/v1/conversations", post(create).get(list))
        .route("/api/v1/conversations/{id}", get(one))
        .route("/api/v1/conversations/{id}/members", post(add_members))
        .route("/api/v1/conversations/{id}/members/{user}", delete(remove_member))
        .route("/api/v1/conversations/{id}/messages", get(messages))
}

/// An id in a JSON body: a decimal string, or a number up to 2^53 (the socket's rule).
use jiebanke_gateway::frame::WireId as JsonId;

fn user_of(id: &JsonId) -> Result<UserId, ApiError> {
    Ok(id.user()?)
}

#[derive(Deserialize)]
struct CreateBody {
    kind: String,
    title: Option<String>,
    #[serde(default)]
    members: Vec<JsonId>,
}

async fn create(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let StrictJson(body) = body;
    let members = body.members.iter().map(user_of).collect::<Result<Vec<_>, _>>()?;
    let conv = match ConversationKind::parse(&body.kind)? {
        ConversationKind::Direct => {
            let [other] = members.as_slice() else {
                return Err(ApiError::invalid("a direct conversation has exactly one other member"));
            };
            state.chat.open_direct(me, *other).await?
        }
        ConversationKind::Group => {
            let title = Title::parse(body.title.as_deref().unwrap_or(""))?;
            state.chat.create_group(me, &title, &members).await?
        }
    };
    Ok((StatusCode::OK, Json(conversation_json(&conv))))
}

async fn list(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<Value>, ApiError> {
    let list = state.chat.conversations(me).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|s| {
            let mut v = conversation_json(&s.conversation);
            v["read_seq"] = s.read_seq.get().into();
            v
        })
        .collect();
    Ok(Json(json!({ "conversations": items })))
}

fn conv_id(path: Result<Path<String>, PathRejection>) -> Result<ConvId, ApiError> {
    let Path(id) = path?;
    ConvId::parse(&id).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "conversation not found"))
}

async fn one(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let conv = state.chat.conversation(me, conv_id(path)?).await?;
    Ok(Json(conversation_json(&conv)))
}

#[derive(Deserialize)]
struct MembersBody {
    members: Vec<JsonId>,
}

async fn add_members(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<String>, PathRejection>,
    body: StrictJson<MembersBody>,
) -> Result<Json<Value>, ApiError> {
    let id = conv_id(path)?;
    let StrictJson(body) = body;
    let users = body.members.iter().map(user_of).collect::<Result<Vec<_>, _>>()?;
    let conv = state.chat.add_members(me, id, &users).await?;
    Ok(Json(conversation_json(&conv)))
}

async fn remove_member(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((id, user)) = path?;
    let id = ConvId::parse(&id).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "conversation not found"))?;
    let user = UserId::parse(&user)?;
    state.chat.remove_member(me, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(default)]
    after: u64,
    limit: Option<u32>,
}

async fn messages(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = conv_id(path)?;
    let Query(q) = query?;
    let (page, more) = state.chat.history(me, id, Seq::parse(q.after)?, q.limit.unwrap_or(50)).await?;
    let messages: Vec<Value> = page
        .iter()
        .map(|m| {
            let body = match &m.body {
                MessageBody::Text(t) => json!({ "kind": "text", "text": t.as_str() }),
                MessageBody::Deleted => json!({ "kind": "deleted" }),
            };
            json!({
                "conv": m.conv.to_string(), "seq": m.seq.get(), "from": m.from.to_string(),
                "cmid": m.cmid.as_str(), "ts": m.ts, "body": body,
            })
        })
        .collect();
    Ok(Json(json!({ "conv": id.to_string(), "messages": messages, "more": more })))
}
