//! The REST endpoints, one module per domain.
pub mod admin;
pub mod alerts;
pub mod auth;
pub mod conversations;
pub mod health;

use jiebanke_chat_core::{Conversation, User};
use serde_json::{json, Value};

/// The JSON form of a user. Ids are decimal strings (safe for JavaScript).
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id.to_string(),
        "nickname": u.nickname,
        "provider": u.provider,
        "created_at": u.created_at,
        "last_seen": u.last_seen,
        "admin": u.admin,
    })
}

pub fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id.to_string(),
        "kind": c.kind.as_str(),
        "title": c.title,
        "owner": c.owner.map(|o| o.to_string()),
        "members": c.members.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "last_seq": c.last_seq.get(),
        "created_at": c.created_at,
    })
}
