//! Users, conversations and messages as the domain sees them.

use crate::error::CoreError;
use crate::ids::{ClientMsgId, ConvId, Seq, UserId};
use std::sync::Arc;

/// A person known to Jiebanke, identified by a login provider's subject (WeChat openid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub provider: String,
    pub nickname: String,
    pub created_at: i64,
    pub last_seen: Option<i64>,
}

/// Who a login provider says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `wechat` or `dev`.
    pub provider: &'static str,
    /// Stable subject within the provider (WeChat openid, or the dev code itself).
    pub subject: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationKind {
    /// Exactly two members; the same pair always gets the same conversation.
    Direct,
    /// An owner and any number of members; the owner adds and removes members.
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "direct" => Ok(Self::Direct),
            "group" => Ok(Self::Group),
            _ => Err(CoreError::invalid("kind must be direct or group")),
        }
    }
}

/// A group title: 1 to 64 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let t = s.trim();
        let n = t.chars().count();
        if n == 0 || n > 64 {
            return Err(CoreError::invalid("title must be 1 to 64 characters"));
        }
        Ok(Self(t.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConvId,
    pub kind: ConversationKind,
    pub title: Option<String>,
    pub owner: Option<UserId>,
    pub created_at: i64,
    pub last_seq: Seq,
    pub members: Vec<UserId>,
}

/// One line of "my conversations".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub read_seq: Seq,
}

/// The text of a text message: 1 to 4,000 characters, not only white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 4000;
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        if s.trim().is_empty() {
            return Err(CoreError::invalid("text must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(CoreError::invalid("text must be at most 4000 characters"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a message carries. Only text today; new kinds are added here first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    Text(MessageText),
}

impl MessageBody {
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::Text(_) => "text",
        }
    }
}

/// A stored message. `seq` is its place in `conv`, `ts` the server time of its commit (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub conv: ConvId,
    pub seq: Seq,
    pub from: UserId,
    pub cmid: ClientMsgId,
    pub ts: i64,
    pub body: MessageBody,
}

/// A message on its way to storage, before it has a seq.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conv: ConvId,
    pub from: UserId,
    pub cmid: ClientMsgId,
    pub body: MessageBody,
    /// Members at the time of the send, who receive it once it is committed.
    pub members: Arc<[UserId]>,
}

/// What storage says about one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Newly stored with this seq: deliver it.
    New(Message),
    /// The same (sender, cmid) was stored before: the original, not to be delivered again.
    Duplicate(Message),
}

impl Appended {
    pub fn message(&self) -> &Message {
        match self {
            Appended::New(m) | Appended::Duplicate(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(MessageText::parse("你好").is_ok());
        assert!(MessageText::parse("   ").is_err());
        assert!(MessageText::parse(&"字".repeat(4000)).is_ok());
        assert!(MessageText::parse(&"字".repeat(4001)).is_err());
    }

    #[test]
    fn title_rules() {
        assert_eq!(Title::parse("  云南行 ").unwrap().as_str(), "云南行");
        assert!(Title::parse("").is_err());
        assert!(Title::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn kind_parse() {
        assert_eq!(ConversationKind::parse("direct").unwrap(), ConversationKind::Direct);
        assert!(ConversationKind::parse("channel").is_err());
    }
}
