//! `RedisMatchPool`: the waiting companion match requests of every node, in Redis.
//!
//! Layout (every key under the hash tag `{match}`, so that on a Redis Cluster they share one
//! slot and each script stays atomic):
//! - `d:<destination>`: hash, user → request (MessagePack), the requests waiting there;
//! - `v:<destination>`: counter, bumped by every change to that destination;
//! - `u`: hash, user → destination, each waiting user's one request;
//! - `exp`: sorted set, user by expiry (ms).
//!
//! An offer reads a destination's requests and its version, picks with the domain's `pick`
//! (the same rule as the in-memory pool), and then changes the pool in one script that first
//! checks that the version (and the user's earlier request) are still what was read; if not,
//! it reads again. So two compatible offers racing are never both left waiting, and a waiting
//! request is taken by one offer only.

use crate::link::Conn;
use crate::node::RedisCluster;
use crate::wire::WireMatchRequest;
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::matching::{pick, Destination, MatchConfig, MatchPool, MatchRequest};
use jiebanke_chat_core::{CoreError, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Reads and retries one offer may take before it gives up (`unavailable`) under contention.
const MAX_ATTEMPTS: usize = 32;
/// Bound of every pool operation.
const TIMEOUT: Duration = Duration::from_secs(2);

/// KEYS: d, v, u, exp, old_d, old_v. ARGV: version read, the user's destination read ("" if
/// none), the user, then mode-specific arguments. Returns 0 when what was read has changed.
const PRELUDE: &str = r#"
local ver = redis.call('GET', KEYS[2]) or '0'
if ver ~= ARGV[1] then return 0 end
local old = redis.call('HGET', KEYS[3], ARGV[3])
if (old or '') ~= ARGV[2] then return 0 end
if old then
  redis.call('HDEL', KEYS[5], ARGV[3])
  redis.call('INCR', KEYS[6])
  redis.call('HDEL', KEYS[3], ARGV[3])
  redis.call('ZREM', KEYS[4], ARGV[3])
end
"#;

/// ARGV[4]: the waiting user taken. Returns 1, or -2 if they are no longer waiting here.
const TAKE_TAIL: &str = r#"
if redis.call('HDEL', KEYS[1], ARGV[4]) == 0 then return -2 end
redis.call('HDEL', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('INCR', KEYS[2])
return 1
"#;

/// ARGV[4]: the request, ARGV[5]: its destination, ARGV[6]: expiry, ARGV[7]: most waiting in
/// all, ARGV[8]: most waiting here. Returns 1, or -1 when the pool is full.
const PUT_TAIL: &str = r#"
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[7]) or redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[8]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
"#;

/// KEYS: d, v, u, exp. ARGV: the user, the request, its destination, its expiry. Puts a request
/// back unless its user has a newer one. Returns 1 if it was put back.
const RESTORE: &str = r#"
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('INCR', KEYS[2])
return 1
"#;

/// KEYS: d, v, u, exp. ARGV: the user, their destination as read, and the time ("" for a
/// cancel; for an expiry, the request must have expired by then). Returns the request taken
/// out, 0 if what was read has changed, or -1 if it has not expired.
const REMOVE: &str = r#"
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' then
  local at = redis.call('ZSCORE', KEYS[4], ARGV[1])
  if at and tonumber(at) > tonumber(ARGV[3]) then return -1 end
end
local req = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('INCR', KEYS[2])
return req or ''
"#;

pub struct RedisMatchPool {
    cluster: Arc<RedisCluster>,
    prefix: String,
    config: MatchConfig,
    take: redis::Script,
    put: redis::Script,
    remove: redis::Script,
    restore: redis::Script,
}

impl RedisMatchPool {
    pub(crate) fn new(cluster: Arc<RedisCluster>, prefix: &str, config: MatchConfig) -> Self {
        RedisMatchPool {
            cluster,
            prefix: format!("{prefix}:m:{{match}}"),
            config,
            take: redis::Script::new(&format!("{PRELUDE}{TAKE_TAIL}")),
            put: redis::Script::new(&format!("{PRELUDE}{PUT_TAIL}")),
            remove: redis::Script::new(REMOVE),
            restore: redis::Script::new(RESTORE),
        }
    }

    fn dest_key(&self, d: &str) -> String {
        format!("{}:d:{d}", self.prefix)
    }
    fn ver_key(&self, d: &str) -> String {
        format!("{}:v:{d}", self.prefix)
    }
    fn users_key(&self) -> String {
        format!("{}:u", self.prefix)
    }
    fn exp_key(&self) -> String {
        format!("{}:exp", self.prefix)
    }

    async fn conn(&self) -> Result<Conn> {
        self.cluster.command_conn().await.map_err(CoreError::unavailable)
    }

    async fn offer_once(&self, conn: &mut Conn, req: &MatchRequest, now: i64) -> Result<Option<Option<MatchRequest>>> {
        let dest = req.destination.as_str();
        let me = req.user.get();
        // The user's earlier request first: its destination names the keys the script checks.
        let old: Option<String> = redis::cmd("HGET").arg(self.users_key()).arg(me).query_async(conn).await.map_err(CoreError::unavailable)?;
        let mut p = redis::pipe();
        p.cmd("GET").arg(self.ver_key(dest)).cmd("HGETALL").arg(self.dest_key(dest));
        let (ver, waiting): (Option<String>, HashMap<i64, Vec<u8>>) = p.query_async(conn).await.map_err(CoreError::unavailable)?;
        let ver = ver.unwrap_or_else(|| "0".into());
        let mut list: Vec<MatchRequest> = waiting
            .into_values()
            .filter_map(|b| rmp_serde::from_slice::<WireMatchRequest>(&b).ok()?.into_domain().ok())
            .collect();
        // Oldest first, as `pick` expects.
        list.sort_by_key(|r| (r.created_at, r.user));
        let old_dest = old.unwrap_or_default();
        let old_key = if old_dest.is_empty() { dest.to_owned() } else { old_dest.clone() };
        let keys = [self.dest_key(dest), self.ver_key(dest), self.users_key(), self.exp_key(), self.dest_key(&old_key), self.ver_key(&old_key)];
        match pick(req, &list, now) {
            Some(found) => {
                let mut inv = self.take.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(&ver).arg(&old_dest).arg(me).arg(found.user.get());
                let r: i64 = inv.invoke_async(conn).await.map_err(CoreError::unavailable)?;
                Ok((r == 1).then(|| Some(found.clone())))
            }
            None => {
                let bytes = rmp_serde::to_vec_named(&WireMatchRequest::from_domain(req)).map_err(CoreError::unavailable)?;
                let mut inv = self.put.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(&ver)
                    .arg(&old_dest)
                    .arg(me)
                    .arg(bytes)
                    .arg(dest)
                    .arg(req.expires_at)
                    .arg(self.config.max_waiting)
                    .arg(self.config.max_per_destination);
                let r: i64 = inv.invoke_async(conn).await.map_err(CoreError::unavailable)?;
                match r {
                    1 => Ok(Some(None)),
                    -1 => Err(CoreError::unavailable("too many travellers are waiting for a match; retry later")),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Takes the user's request out: `expired_by` set, only if it expired by then.
    async fn remove(&self, conn: &mut Conn, user: UserId, expired_by: Option<i64>) -> Result<Option<MatchRequest>> {
        for _ in 0..MAX_ATTEMPTS {
            let dest: Option<String> = redis::cmd("HGET").arg(self.users_key()).arg(user.get()).query_async(conn).await.map_err(CoreError::unavailable)?;
            let Some(dest) = dest else { return Ok(None) };
            let r: redis::Value = self
                .remove
                .key(self.dest_key(&dest))
                .key(self.ver_key(&dest))
                .key(self.users_key())
                .key(self.exp_key())
                .arg(user.get())
                .arg(&dest)
                .arg(expired_by.map(|t| t.to_string()).unwrap_or_default())
                .invoke_async(conn)
                .await
                .map_err(CoreError::unavailable)?;
            match r {
                redis::Value::Int(0) => continue,
                redis::Value::Int(_) => return Ok(None),
                redis::Value::BulkString(b) => {
                    let req = rmp_serde::from_slice::<WireMatchRequest>(&b).ok().and_then(|w| w.into_domain().ok());
                    // A request that cannot be read back is gone all the same.
                    return Ok(Some(req.unwrap_or_else(|| placeholder(user, &dest))));
                }
                _ => return Ok(None),
            }
        }
        Err(CoreError::unavailable("the match pool is busy; retry"))
    }
}

/// What a request unreadable in Redis (written by a newer node) is known as.
fn placeholder(user: UserId, dest: &str) -> MatchRequest {
    use jiebanke_chat_core::matching::{Day, TravelWindow};
    let today = Day::of_ms(jiebanke_chat_core::now_ms());
    MatchRequest {
        user,
        destination: Destination::parse(dest).unwrap_or_else(|_| Destination::parse("?").expect("valid")),
        window: TravelWindow::stored(today, today).expect("ordered"),
        min_days: 1,
        created_at: 0,
        expires_at: 0,
    }
}

#[async_trait]
impl MatchPool for RedisMatchPool {
    async fn offer(&self, req: &MatchRequest, now: i64) -> Result<Option<MatchRequest>> {
        let work = async {
            let mut conn = self.conn().await?;
            for _ in 0..MAX_ATTEMPTS {
                if let Some(done) = self.offer_once(&mut conn, req, now).await? {
                    return Ok(done);
                }
            }
            Err(CoreError::unavailable("the match pool is busy; retry"))
        };
        tokio::time::timeout(TIMEOUT, work).await.map_err(CoreError::unavailable)?
    }

    async fn restore(&self, req: &MatchRequest) -> Result<()> {
        let dest = req.destination.as_str();
        let bytes = rmp_serde::to_vec_named(&WireMatchRequest::from_domain(req)).map_err(CoreError::unavailable)?;
        let work = async {
            let mut conn = self.conn().await?;
            let _: i64 = self
                .restore
                .key(self.dest_key(dest))
                .key(self.ver_key(dest))
                .key(self.users_key())
                .key(self.exp_key())
                .arg(req.user.get())
                .arg(bytes)
                .arg(dest)
                .arg(req.expires_at)
                .invoke_async(&mut conn)
                .await
                .map_err(CoreError::unavailable)?;
            Ok(())
        };
        tokio::time::timeout(TIMEOUT, work).await.map_err(CoreError::unavailable)?
    }

    async fn cancel(&self, user: UserId) -> Result<bool> {
        let work = async {
            let mut conn = self.conn().await?;
            Ok(self.remove(&mut conn, user, None).await?.is_some())
        };
        tokio::time::timeout(TIMEOUT, work).await.map_err(CoreError::unavailable)?
    }

    async fn expire(&self, now: i64, limit: usize) -> Result<Vec<MatchRequest>> {
        let work = async {
            let mut conn = self.conn().await?;
            let due: Vec<i64> = redis::cmd("ZRANGEBYSCORE")
                .arg(self.exp_key())
                .arg("-inf")
                .arg(now)
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut conn)
                .await
                .map_err(CoreError::unavailable)?;
            let mut out = Vec::with_capacity(due.len());
            for u in due {
                let Ok(user) = UserId::new(u) else { continue };
                if let Some(r) = self.remove(&mut conn, user, Some(now)).await? {
                    out.push(r);
                }
            }
            Ok(out)
        };
        tokio::time::timeout(TIMEOUT * 4, work).await.map_err(CoreError::unavailable)?
    }

    async fn waiting(&self) -> Result<usize> {
        let mut conn = self.conn().await?;
        let n: usize = redis::cmd("HLEN").arg(self.users_key()).query_async(&mut conn).await.map_err(CoreError::unavailable)?;
        Ok(n)
    }
}


// Here, not in node.rs: the node knows nothing of matching (no import circle); matching builds
// on the node's connections.
impl RedisCluster {
    /// Companion matching's pool, in this cluster's Redis.
    pub fn match_pool(self: &Arc<Self>, config: jiebanke_chat_core::matching::MatchConfig) -> RedisMatchPool {
        RedisMatchPool::new(self.clone(), self.prefix(), config)
    }
}
