//! Every Redis key and channel of cluster mode, under one prefix. The part in braces is the
//! hash tag: on Redis Cluster each key or channel lives in the slot of its user or node, so the
//! one-key scripts stay valid and per-node and per-user channels spread over the shards.

use jiebanke_chat_core::UserId;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys { prefix: prefix.to_owned() }
    }
    /// Channel: the events for one node's sessions.
    pub fn node_channel(&self, node: &str) -> String {
        format!("{}:node:{{{node}}}", self.prefix)
    }
    /// Channel: presence changes of one user.
    pub fn presence_channel(&self, user: UserId) -> String {
        format!("{}:pres:{{{user}}}", self.prefix)
    }
    /// Channel: what every node needs (conversations whose members changed, moderation items).
    pub fn broadcast_channel(&self) -> String {
        format!("{}:all", self.prefix)
    }
    /// Set: the nodes with a session of the user.
    pub fn on(&self, user: UserId) -> String {
        format!("{}:on:{{{user}}}", self.prefix)
    }
    /// Set: the users with a session on the node.
    pub fn node_users(&self, node: &str) -> String {
        format!("{}:nusers:{{{node}}}", self.prefix)
    }
    /// String: `<instance token> <beat ms>` of the process that last beat for the node id, with
    /// the presence TTL as its expiry.
    pub fn instance(&self, node: &str) -> String {
        format!("{}:inst:{{{node}}}", self.prefix)
    }
    /// Hash: node → its session count at its last heartbeat (the dashboard sums the live ones).
    pub fn node_sessions(&self) -> String {
        format!("{}:nsess", self.prefix)
    }
    /// Sorted set: node → last heartbeat (ms).
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}
