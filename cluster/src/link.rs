//! The Redis a node talks to: one standalone server (a `ConnectionManager` for commands and a
//! pub/sub connection with SUBSCRIBE/PUBLISH), or a Redis Cluster (one RESP3
//! `ClusterConnection` for commands and sharded pub/sub, SSUBSCRIBE/SPUBLISH, whose messages
//! come as pushes). `Conn` is either as one `ConnectionLike`, so commands and scripts are
//! written once.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Runs independent commands in as few round trips as the topology allows: one pipeline on
    /// a single Redis; all at once on a Redis Cluster, where a pipeline must stay in one slot
    /// (the connection multiplexes them per shard).
    pub async fn batch<T: FromRedisValue>(&self, cmds: Vec<Cmd>) -> RedisResult<Vec<T>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Conn::Single(c) => {
                let mut p = redis::pipe();
                for cmd in cmds {
                    p.add_command(cmd);
                }
                p.query_async(&mut c.clone()).await
            }
            Conn::Cluster(c) => {
                futures_util::future::try_join_all(cmds.into_iter().map(|cmd| {
                    let mut c = c.clone();
                    async move { cmd.query_async::<T>(&mut c).await }
                }))
                .await
            }
        }
    }

    /// `PUBLISH`, or `SPUBLISH` (sharded: the channel's shard only) on a Redis Cluster.
    pub fn publish_cmd(&self, channel: String, payload: Vec<u8>) -> Cmd {
        let name = match self {
            Conn::Single(_) => "PUBLISH",
            Conn::Cluster(_) => "SPUBLISH",
        };
        let mut c = redis::cmd(name);
        c.arg(channel).arg(payload);
        c
    }
}
