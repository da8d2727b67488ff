//! `RedisMatchPool` against the machine's Redis, under a key prefix of the test's own: the
//! `MatchPool` contract with two pools (two nodes) offering at once.

use jiebanke_chat_core::matching::{Day, Destination, MatchConfig, MatchPool, MatchRequest, TravelWindow};
use jiebanke_chat_core::memory::MemoryStore;
use jiebanke_chat_core::UserId;
use jiebanke_cluster::{ClusterConfig, RedisCluster, RedisMatchPool};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const URL: &str = "redis://127.0.0.1:6379";

/// `None` (skipped) without a Redis, unless `JBK_REQUIRE_SERVICES=1`.
fn redis_here() -> Option<redis::Connection> {
    let c = redis::Client::open(URL).and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)));
    match c {
        Ok(c) => Some(c),
        Err(e) if std::env::var("JBK_REQUIRE_SERVICES").as_deref() == Ok("1") => panic!("Redis at {URL} is required: {e}"),
        Err(e) => {
            jiebanke_storage::testing::skipped(&format!("Redis test, no server at {URL}: {e}"));
            None
        }
    }
}

struct Prefix(String, redis::Connection);
impl Drop for Prefix {
    fn drop(&mut self) {
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}:*", self.0)).query(&mut self.1).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut self.1);
        }
    }
}

fn pool(prefix: &str, node: &str, config: MatchConfig) -> RedisMatchPool {
    let mut cfg = ClusterConfig::new(URL, node);
    cfg.prefix = prefix.to_owned();
    RedisCluster::new(cfg, Arc::new(MemoryStore::default())).unwrap().match_pool(config)
}

fn req(user: i64, dest: &str, from: i32, days: i32, expires_at: i64) -> MatchRequest {
    let today = Day::of_ms(jiebanke_chat_core::now_ms()).days();
    MatchRequest {
        user: UserId::new(user).unwrap(),
        destination: Destination::parse(dest).unwrap(),
        window: TravelWindow::new(Day::from_days(today + from), Day::from_days(today + from + days - 1), Day::from_days(today)).unwrap(),
        min_days: 1,
        created_at: user,
        expires_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_offering_at_once_match_each_request_once() {
    let Some(conn) = redis_here() else { return };
    let prefix = Prefix(format!("jbk_mp_{:08x}", rand::random::<u32>()), conn);
    let a = Arc::new(pool(&prefix.0, "n1", MatchConfig::default()));
    let b = Arc::new(pool(&prefix.0, "n2", MatchConfig::default()));
    // 4 destinations, every request compatible with every other of its destination.
    let n = 200i64;
    let tasks: Vec<_> = (1..=n)
        .map(|u| {
            let p = if u % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let r = req(u, &format!("城市{}", u % 4), 10 + (u % 3) as i32, 5, i64::MAX);
                (u, p.offer(&r, 0).await.unwrap().map(|w| w.user.get()))
            })
        })
        .collect();
    let mut in_pair = HashSet::new();
    let mut pairs = 0;
    for t in tasks {
        let (u, taken) = t.await.unwrap();
        if let Some(w) = taken {
            assert_eq!(w % 4, u % 4, "same destination");
            assert!(in_pair.insert(u), "{u} matched twice");
            assert!(in_pair.insert(w), "{w} taken twice");
            pairs += 1;
        }
    }
    // Each destination has 50 requests: all matched, none left waiting.
    assert_eq!(pairs, n / 2);
    assert_eq!(a.waiting().await.unwrap(), 0);
    assert_eq!(b.waiting().await.unwrap(), 0);
}

#[tokio::test]
async fn replace_cancel_expire_and_bounds() {
    let Some(conn) = redis_here() else { return };
    let prefix = Prefix(format!("jbk_mp_{:08x}", rand::random::<u32>()), conn);
    let a = pool(&prefix.0, "n1", MatchConfig { max_waiting: 3, max_per_destination: 2, ..MatchConfig::default() });
    let b = pool(&prefix.0, "n2", MatchConfig { max_waiting: 3, max_per_destination: 2, ..MatchConfig::default() });
    let far = i64::MAX;
    // A new request replaces the old one, to another destination, from another node.
    assert!(a.offer(&req(1, "大理", 10, 3, far), 0).await.unwrap().is_none());
    assert!(b.offer(&req(1, "丽江", 10, 3, far), 0).await.unwrap().is_none());
    assert_eq!(a.waiting().await.unwrap(), 1);
    assert!(a.offer(&req(2, "大理", 10, 3, far), 0).await.unwrap().is_none(), "1 no longer waits for 大理");
    assert_eq!(b.offer(&req(3, "丽江", 11, 3, far), 0).await.unwrap().unwrap().user.get(), 1);
    // Bounds: 大理 holds 2 (2 and 4, on disjoint days), a third that matches none is refused.
    assert!(a.offer(&req(4, "大理", 20, 3, far), 0).await.unwrap().is_none());
    assert_eq!(a.offer(&req(5, "大理", 30, 3, far), 0).await.unwrap_err().code(), "unavailable");
    assert!(a.offer(&req(6, "香格里拉", 30, 3, far), 0).await.unwrap().is_none());
    assert_eq!(a.offer(&req(7, "拉萨", 30, 3, far), 0).await.unwrap_err().code(), "unavailable", "3 waiting in all");
    // Cancel from the other node.
    assert!(b.cancel(UserId::new(6).unwrap()).await.unwrap());
    assert!(!b.cancel(UserId::new(6).unwrap()).await.unwrap());
    // Expiry: two nodes sweeping at once hand each expired request to one of them.
    assert!(a.cancel(UserId::new(2).unwrap()).await.unwrap());
    assert!(a.cancel(UserId::new(4).unwrap()).await.unwrap());
    for u in 10..13 {
        assert!(a.offer(&req(u, &format!("d{u}"), 10, 3, 1_000), 0).await.unwrap().is_none());
    }
    assert!(a.expire(999, 100).await.unwrap().is_empty());
    let (x, y) = tokio::join!(a.expire(1_000, 100), b.expire(1_000, 100));
    let mut got: Vec<i64> = x.unwrap().into_iter().chain(y.unwrap()).map(|r| r.user.get()).collect();
    got.sort();
    assert_eq!(got, vec![10, 11, 12]);
    assert_eq!(a.waiting().await.unwrap(), 0);
    // Restore puts a taken request back without matching it, unless its user asked again.
    assert!(a.offer(&req(30, "丽江", 10, 3, far), 0).await.unwrap().is_none());
    assert_eq!(b.offer(&req(31, "丽江", 10, 3, far), 0).await.unwrap().unwrap().user.get(), 30);
    assert!(a.offer(&req(32, "丽江", 10, 3, far), 0).await.unwrap().is_none());
    b.restore(&req(30, "丽江", 10, 3, far)).await.unwrap();
    assert_eq!(a.waiting().await.unwrap(), 2, "30 and 32 wait, compatible or not");
    a.restore(&req(32, "大理", 10, 3, far)).await.unwrap();
    assert!(a.cancel(UserId::new(30).unwrap()).await.unwrap());
    assert_eq!(b.offer(&req(33, "丽江", 10, 3, far), 0).await.unwrap().unwrap().user.get(), 32, "32's newer request stayed");
    // An expired request is never matched, even before the sweep.
    assert!(a.offer(&req(20, "大理", 10, 3, 5), 0).await.unwrap().is_none());
    assert!(b.offer(&req(21, "大理", 10, 3, far), 10).await.unwrap().is_none(), "20 expired at 5");
}
