//! Conversations: create (direct or group), list mine (cursor pages), read one, change group
//! members, and a REST view of history (seq paging, as the socket's `sync`).

use jiebanke_chat_core::{Conversation, ConversationSummary};
use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::chat::NewConversation;
use jiebanke_chat_core::{ConvId, Seq, UserId};
use jiebanke_gateway::frame::WireMessage;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(one))
        .routes(routes!(add_members))
        .routes(routes!(remove_member))
        .routes(routes!(messages))
}

/// An id in a JSON body: a decimal string, or a number up to 2^53 (the socket's rule).
use jiebanke_gateway::frame::WireId as JsonId;

fn user_of(id: &JsonId) -> Result<UserId, ApiError> {
    Ok(id.user()?)
}

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    /// `direct` (exactly one other member) or `group`.
    kind: String,
    /// A group's title, 1-64 characters, screened for banned words (ignored for `direct`).
    title: Option<String>,
    /// User ids (decimal strings).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    members: Vec<JsonId>,
}

/// Opens the direct conversation with one user (the same pair always gets the same one), or
/// creates a group I own. Refused (`forbidden`) where the other's settings or a block say no.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", request_body = CreateBody,
    security(("bearer" = [])), responses((status = 200, body = ConversationBody)))]
async fn create(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<CreateBody>,
) -> Result<Json<ConversationBody>, ApiError> {
    let StrictJson(body) = body;
    let members: Vec<Option<UserId>> = body.members.iter().map(|m| m.user().ok()).collect();
    let new = NewConversation::parse(me, &body.kind, body.title.as_deref(), &members, state.moderation.filter())?;
    let conv = state.chat.create(me, new).await?;
    Ok(Json(ConversationBody::from(&conv)))
}

/// My conversations, newest first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<ConversationItem>)))]
async fn list(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<ConversationItem>>, ApiError> {
    let Query(q) = q?;
    let page = q.parse()?;
    let before = page.after.map(ConvId::new).transpose()?;
    let list = state.chat.conversations(me, before, page.limit + 1).await?;
    let items = list.iter().map(ConversationItem::from).collect();
    Ok(Json(Page::from_probe(items, page.limit, |c| c.id.parse().unwrap_or(0))))
}

fn conv_id(id: &str) -> Result<ConvId, ApiError> {
    ConvId::parse(id).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "conversation not found"))
}

fn conv_path(path: Result<Path<String>, PathRejection>) -> Result<ConvId, ApiError> {
    let Path(id) = path?;
    conv_id(&id)
}

/// One conversation I am a member of.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    security(("bearer" = [])), responses((status = 200, body = ConversationBody)))]
async fn one(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ConversationBody>, ApiError> {
    let conv = state.chat.conversation(me, conv_path(path)?).await?;
    Ok(Json(ConversationBody::from(&conv)))
}

#[derive(Deserialize, ToSchema)]
pub struct MembersBody {
    #[schema(value_type = Vec<String>)]
    members: Vec<JsonId>,
}

/// The owner adds members to a group (each one's `group_add_from` must let the owner in).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/members", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")), request_body = MembersBody,
    security(("bearer" = [])), responses((status = 200, body = ConversationBody)))]
async fn add_members(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<String>, PathRejection>,
    body: StrictJson<MembersBody>,
) -> Result<Json<ConversationBody>, ApiError> {
    let id = conv_path(path)?;
    let StrictJson(body) = body;
    let users = body.members.iter().map(user_of).collect::<Result<Vec<_>, _>>()?;
    let conv = state.chat.add_members(me, id, &users).await?;
    Ok(Json(ConversationBody::from(&conv)))
}

/// The owner removes a member; a member removes themself (leaves).
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/members/{user}", tag = "conversations",
    params(("id" = String, Path, description = "conversation id"), ("user" = String, Path, description = "user id")),
    security(("bearer" = [])), responses((status = 204, description = "removed")))]
async fn remove_member(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((id, user)) = path?;
    let id = conv_id(&id)?;
    let user = UserId::parse(&user)?;
    state.chat.remove_member(me, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages with a seq above this one (default 0: from the start).
    #[serde(default)]
    #[param(minimum = 0)]
    after: u64,
    /// At most this many (1-200, default 50; outside that, 422 naming `limit`).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// A page of history, the same messages the socket's `sync` answers.
#[derive(Serialize, ToSchema)]
pub struct HistoryBody {
    conv: String,
    messages: Vec<WireMessage>,
    /// Whether messages after the last one follow.
    more: bool,
}

/// History by seq (`after`, `more`), as the socket's `sync`.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "conversation id"), HistoryQuery),
    security(("bearer" = [])), responses((status = 200, body = HistoryBody)))]
async fn messages(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryBody>, ApiError> {
    let id = conv_path(path)?;
    let Query(q) = query?;
    let max = i64::from(jiebanke_chat_core::chat::MAX_HISTORY_LIMIT);
    let limit = match q.limit {
        None => 50,
        Some(n) if (1..=max).contains(&n) => n as u32,
        Some(_) => return Err(jiebanke_chat_core::CoreError::Fields(vec![jiebanke_chat_core::FieldProblem::new("limit", format!("must be 1-{max}"))]).into()),
    };
    let (page, more) = state.chat.history(me, id, Seq::parse(q.after)?, limit).await?;
    Ok(Json(HistoryBody { conv: id.to_string(), messages: page.iter().map(WireMessage::from).collect(), more }))
}

/// A conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationBody {
    pub id: String,
    /// `direct` or `group`.
    pub kind: String,
    pub title: Option<String>,
    pub owner: Option<String>,
    pub members: Vec<String>,
    pub last_seq: u64,
    pub created_at: i64,
}

impl From<&Conversation> for ConversationBody {
    fn from(c: &Conversation) -> Self {
        ConversationBody {
            id: c.id.to_string(),
            kind: c.kind.as_str().to_owned(),
            title: c.title.clone(),
            owner: c.owner.map(|o| o.to_string()),
            members: c.members.iter().map(|m| m.to_string()).collect(),
            last_seq: c.last_seq.get(),
            created_at: c.created_at,
        }
    }
}

/// One of my conversations, with how far I have read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationItem {
    pub id: String,
    pub kind: String,
    pub title: Option<String>,
    pub owner: Option<String>,
    pub members: Vec<String>,
    pub last_seq: u64,
    pub read_seq: u64,
    pub created_at: i64,
}

impl From<&ConversationSummary> for ConversationItem {
    fn from(s: &ConversationSummary) -> Self {
        let c = ConversationBody::from(&s.conversation);
        ConversationItem {
            id: c.id,
            kind: c.kind,
            title: c.title,
            owner: c.owner,
            members: c.members,
            last_seq: c.last_seq,
            read_seq: s.read_seq.get(),
            created_at: c.created_at,
        }
    }
}
