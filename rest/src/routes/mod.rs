//! The REST endpoints of the existing areas, one module each; `crate::users` is the first area
//! laid out as a folder. Every handler carries its `#[utoipa::path]`, so `/openapi.json` is
//! made from the same types the handlers answer.
pub mod admin;
pub mod alerts;
pub mod auth;
pub mod conversations;
pub mod health;

use jiebanke_chat_core::{Conversation, ConversationSummary};
use serde::Serialize;
use utoipa::ToSchema;

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
