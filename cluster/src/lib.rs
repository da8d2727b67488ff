//! Cluster mode's adapters for the domain's ports, on real engines:
//!
//! - `node::RedisCluster`: the `Bus` and the `PresenceDirectory` on Redis pub/sub and sets.
//! - `matching::RedisMatchPool`: companion matching's waiting requests, shared by every node.
//! - `amqp::AmqpLink`: durable events (the outbox relay and its consumers) on RabbitMQ.
//! - `order::Sequencer`: per user and conversation, messages in seq order, once.
//! - `wire`: what crosses nodes, in MessagePack.
//! - `keys`: the Redis keys and channels.
//! - `link`: one Redis or a Redis Cluster (sharded pub/sub) behind one connection type.

pub mod amqp;
pub mod keys;
pub mod link;
pub mod matching;
pub mod node;
pub mod order;
pub mod wire;

pub use amqp::{AmqpConfig, AmqpLink};
pub use matching::RedisMatchPool;
pub use node::{ClusterConfig, RedisCluster, RedisClusterHandle};

pub(crate) fn now_ms() -> i64 {
    jiebanke_chat_core::now_ms()
}
