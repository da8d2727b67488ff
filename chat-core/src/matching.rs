//! Companion matching (结伴): a traveller asks for a companion to a destination within a travel
//! window; two requests to the same destination whose windows overlap long enough make a
//! proposal, and the pair gets a direct conversation to plan the trip in.
//!
//! - The rule is pure and lives here: `MatchRequest::overlap_with` says whether two requests are
//!   compatible, `pick` chooses among waiting requests (longest overlap, then the oldest).
//! - Waiting requests are kept by a `MatchPool` (a port): `MemoryMatchPool` on one node, the
//!   cluster's Redis pool across nodes. Both use `pick`, so the rule is the same everywhere.
//! - `MatchService` is what the gateway calls: request, cancel, and the expiry sweep.

use crate::error::{CoreError, Result};
use crate::ids::{ConvId, UserId};
use crate::ports::{Bus, ConversationStore, Event};
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest destination name, in characters.
pub const MAX_DESTINATION_CHARS: usize = 64;
/// Longest travel window, in days.
pub const MAX_WINDOW_DAYS: i32 = 90;
/// How far ahead a trip may start, in days.
pub const MAX_DAYS_AHEAD: i32 = 366;


/// Where a traveller goes: trimmed, case-folded, 1 to 64 characters, no control characters.
/// Two requests match only on the same destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination(String);

impl Destination {
    pub fn parse(s: &str) -> Result<Self> {
        let folded: String = s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let n = folded.chars().count();
        if n == 0 {
            return Err(CoreError::invalid("destination must not be empty"));
        }
        if n > MAX_DESTINATION_CHARS {
            return Err(CoreError::invalid(format!("destination is longer than {MAX_DESTINATION_CHARS} characters")));
        }
        if let Some(p) = crate::text::required_problem(&folded, crate::text::Lines::One) {
            return Err(CoreError::invalid(format!("destination {p}")));
        }
        Ok(Destination(folded))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// A day is a kernel value (`crate::day`), shared with commerce's delivery days.
pub use crate::day::Day;

/// The days a traveller is free to travel, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TravelWindow {
    from: Day,
    to: Day,
}

impl TravelWindow {
    /// A window that starts no later than it ends, spans at most `MAX_WINDOW_DAYS`, has not
    /// ended before `today` (UTC; the day before is accepted too, for clients east of UTC) and
    /// starts within `MAX_DAYS_AHEAD` days.
    pub fn new(from: Day, to: Day, today: Day) -> Result<Self> {
        if from > to {
            return Err(CoreError::invalid("`from` must not be after `to`"));
        }
        if to.days() - from.days() + 1 > MAX_WINDOW_DAYS {
            return Err(CoreError::invalid(format!("a travel window spans at most {MAX_WINDOW_DAYS} days")));
        }
        if to.days() < today.days() - 1 {
            return Err(CoreError::invalid("the travel window is over"));
        }
        if from.days() > today.days() + MAX_DAYS_AHEAD {
            return Err(CoreError::invalid(format!("a trip may start at most {MAX_DAYS_AHEAD} days ahead")));
        }
        Ok(TravelWindow { from, to })
    }
    /// A window read back from a pool or a bus (made by `new` earlier): only its order is
    /// checked, not its dates against today.
    pub fn stored(from: Day, to: Day) -> Result<Self> {
        if from > to {
            return Err(CoreError::invalid("`from` must not be after `to`"));
        }
        Ok(TravelWindow { from, to })
    }
    pub fn from(&self) -> Day {
        self.from
    }
    pub fn to(&self) -> Day {
        self.to
    }
    pub fn days(&self) -> i32 {
        self.to.days() - self.from.days() + 1
    }
    /// The days both windows share, if any.
    pub fn intersect(&self, other: &TravelWindow) -> Option<TravelWindow> {
        let from = self.from.max(other.from);
        let to = self.to.min(other.to);
        (from <= to).then_some(TravelWindow { from, to })
    }
}

/// A traveller looking for a companion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRequest {
    pub user: UserId,
    pub destination: Destination,
    pub window: TravelWindow,
    /// Days the trips must share at least (1 to the window's length).
    pub min_days: u16,
    /// When the request was made and when it stops waiting (Unix ms).
    pub created_at: i64,
    pub expires_at: i64,
}

impl MatchRequest {
    /// The shared days of two compatible requests: different users, the same destination, and
    /// an overlap at least as long as each of them asks for. `None` otherwise.
    pub fn overlap_with(&self, other: &MatchRequest) -> Option<TravelWindow> {
        if self.user == other.user || self.destination != other.destination {
            return None;
        }
        let shared = self.window.intersect(&other.window)?;
        let need = self.min_days.max(other.min_days) as i32;
        (shared.days() >= need).then_some(shared)
    }
}

/// Of `waiting` (requests to the same destination, oldest first), the one `req` should be
/// matched with: the longest shared window, the oldest among equals. Expired ones never match.
pub fn pick<'a>(req: &MatchRequest, waiting: impl IntoIterator<Item = &'a MatchRequest>, now: i64) -> Option<&'a MatchRequest> {
    let mut best: Option<(&MatchRequest, i32)> = None;
    for w in waiting {
        if w.expires_at <= now {
            continue;
        }
        if let Some(shared) = req.overlap_with(w) {
            let days = shared.days();
            if best.is_none_or(|(_, b)| days > b) {
                best = Some((w, days));
            }
        }
    }
    best.map(|(w, _)| w)
}

/// The id of a proposal: unique across nodes (time, node salt, counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatchId(u64);

impl MatchId {
    /// An id read back from a bus.
    pub fn from_raw(raw: u64) -> Self {
        MatchId(raw)
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Two travellers matched: both get it, with the conversation to talk in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: MatchId,
    /// The request that waited, and the one that found it.
    pub waited: MatchRequest,
    pub found: MatchRequest,
    /// The days the two trips share.
    pub shared: TravelWindow,
    /// The pair's direct conversation.
    pub conv: ConvId,
    pub created_at: i64,
}

impl Proposal {
    /// The other traveller, for `user` (one of the two).
    pub fn peer_of(&self, user: UserId) -> UserId {
        if self.waited.user == user {
            self.found.user
        } else {
            self.waited.user
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    /// No compatible request waits: this one waits until it expires, is matched or replaced.
    Waiting { expires_at: i64 },
    /// Matched at once with a waiting request; both users get the proposal as an event.
    Matched(Arc<Proposal>),
}

/// Limits of the pool. Every bound says what happens past it.
#[derive(Debug, Clone)]
pub struct MatchConfig {
    /// How long a request waits for a companion.
    pub ttl: Duration,
    /// Requests waiting in all; past it a new request is refused `unavailable` (retry later).
    pub max_waiting: usize,
    /// Requests waiting for one destination; past it likewise.
    pub max_per_destination: usize,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig { ttl: Duration::from_secs(600), max_waiting: 100_000, max_per_destination: 5_000 }
    }
}

/// Where waiting requests are kept (port).
///
/// Guarantees: a request is matched at most once; `offer` is atomic (two compatible requests
/// offered at the same time are matched with each other or each with another, never both left
/// waiting); a user has at most one waiting request (a new one replaces the old, to any
/// destination); the rule is `pick`.
#[async_trait]
pub trait MatchPool: Send + Sync + 'static {
    /// Takes out the waiting request `req` is matched with (by `pick`) and returns it, with
    /// `req` not kept; or, if none is compatible, keeps `req` (replacing the user's earlier
    /// request) and returns `None`. A full pool is `Unavailable`. In both cases any earlier
    /// request of the same user is gone.
    async fn offer(&self, req: &MatchRequest, now: i64) -> Result<Option<MatchRequest>>;
    /// Puts back a request `offer` took out for a match that could not be made, as it was and
    /// without matching it (so that it is not taken out again for a match that would fail the
    /// same way). Nothing happens if its user has made a new request meanwhile.
    async fn restore(&self, req: &MatchRequest) -> Result<()>;
    /// Removes the user's waiting request; false if there was none.
    async fn cancel(&self, user: UserId) -> Result<bool>;
    /// Takes out up to `limit` requests that expired at `now`, each handed to one caller only.
    async fn expire(&self, now: i64, limit: usize) -> Result<Vec<MatchRequest>>;
    /// Requests waiting now.
    async fn waiting(&self) -> Result<usize>;
}

/// The in-process pool of the embedded default: the waiting requests per destination, oldest
/// first, behind one short lock (no `.await` inside).
pub struct MemoryMatchPool {
    config: MatchConfig,
    inner: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    by_destination: HashMap<Destination, Vec<MatchRequest>>,
    /// Each waiting user's destination.
    by_user: HashMap<UserId, Destination>,
}

impl Book {
    fn remove_user(&mut self, user: UserId) -> Option<MatchRequest> {
        let dest = self.by_user.remove(&user)?;
        let list = self.by_destination.get_mut(&dest)?;
        let at = list.iter().position(|r| r.user == user)?;
        let req = list.remove(at);
        if list.is_empty() {
            self.by_destination.remove(&dest);
        }
        Some(req)
    }
}

impl MemoryMatchPool {
    pub fn new(config: MatchConfig) -> Self {
        MemoryMatchPool { config, inner: Mutex::new(Book::default()) }
    }
}

#[async_trait]
impl MatchPool for MemoryMatchPool {
    async fn offer(&self, req: &MatchRequest, now: i64) -> Result<Option<MatchRequest>> {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        book.remove_user(req.user);
        let found = book
            .by_destination
            .get(&req.destination)
            .and_then(|list| pick(req, list, now))
            .map(|w| w.user);
        if let Some(peer) = found {
            return Ok(book.remove_user(peer));
        }
        let here = book.by_destination.get(&req.destination).map_or(0, Vec::len);
        if book.by_user.len() >= self.config.max_waiting || here >= self.config.max_per_destination {
            return Err(CoreError::unavailable("too many travellers are waiting for a match; retry later"));
        }
        book.by_user.insert(req.user, req.destination.clone());
        book.by_destination.entry(req.destination.clone()).or_default().push(req.clone());
        Ok(None)
    }

    async fn restore(&self, req: &MatchRequest) -> Result<()> {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if book.by_user.contains_key(&req.user) {
            return Ok(());
        }
        book.by_user.insert(req.user, req.destination.clone());
        let list = book.by_destination.entry(req.destination.clone()).or_default();
        // Back in its place by age, so that it keeps its turn.
        let at = list.partition_point(|r| (r.created_at, r.user) <= (req.created_at, req.user));
        list.insert(at, req.clone());
        Ok(())
    }

    async fn cancel(&self, user: UserId) -> Result<bool> {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(book.remove_user(user).is_some())
    }

    async fn expire(&self, now: i64, limit: usize) -> Result<Vec<MatchRequest>> {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<UserId> = book
            .by_destination
            .values()
            .flatten()
            .filter(|r| r.expires_at <= now)
            .map(|r| r.user)
            .take(limit)
            .collect();
        Ok(gone.into_iter().filter_map(|u| book.remove_user(u)).collect())
    }

    async fn waiting(&self) -> Result<usize> {
        Ok(self.inner.lock().unwrap_or_else(|p| p.into_inner()).by_user.len())
    }
}

/// Most expired requests one sweep takes out.
pub const EXPIRE_BATCH: usize = 1024;
/// Pairs waiting for their conversation; when full, matches wait for room (backpressure).
pub const CONVERSATION_QUEUE: usize = 1024;
/// Most pairs whose conversations are made in one transaction.
pub const CONVERSATION_BATCH: usize = 128;

/// A matched pair waiting for its direct conversation.
struct ConvRequest {
    pair: (UserId, UserId),
    now: i64,
    reply: tokio::sync::oneshot::Sender<Result<ConvId>>,
}

/// The use cases of matching.
pub struct MatchService {
    pool: Arc<dyn MatchPool>,
    /// To the conversation writer: matched pairs whose conversations are made together, one
    /// transaction of three statements per batch (one fsync on SQLite instead of one per pair),
    /// at most `CONVERSATION_WRITERS` batches at a time. Bounded by `CONVERSATION_QUEUE`; the
    /// writer ends when the service is dropped.
    conversations: tokio::sync::mpsc::Sender<ConvRequest>,
    bus: Arc<dyn Bus>,
    config: MatchConfig,
    /// Node salt and counter of proposal ids.
    salt: u64,
    next: AtomicU64,
}

#[async_trait]
impl crate::users::MatchWithdrawal for MatchService {
    async fn withdraw(&self, user: UserId) -> Result<()> {
        self.cancel(user).await.map(|_| ())
    }
}

/// Batches of conversations being made at once (on MySQL they commit in parallel; on SQLite
/// they queue for the one writer, while the next batch forms).
const CONVERSATION_WRITERS: usize = 4;

/// Makes the conversations of the pairs queued at once in one `direct_conversations` call, up to
/// `CONVERSATION_WRITERS` calls at a time.
async fn conversation_writer(mut rx: tokio::sync::mpsc::Receiver<ConvRequest>, store: Arc<dyn ConversationStore>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONVERSATION_WRITERS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut batch: Vec<ConvRequest> = Vec::with_capacity(CONVERSATION_BATCH);
        if rx.recv_many(&mut batch, CONVERSATION_BATCH).await == 0 {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            let pairs: Vec<(UserId, UserId)> = batch.iter().map(|r| r.pair).collect();
            let now = batch.iter().map(|r| r.now).max().unwrap_or_default();
            match store.direct_conversations(&pairs, now).await {
                Ok(convs) => {
                    for (r, c) in batch.into_iter().zip(convs) {
                        let _ = r.reply.send(Ok(c.id));
                    }
                }
                Err(e) => {
                    for r in batch {
                        let _ = r.reply.send(Err(e.clone()));
                    }
                }
            }
            drop(slot);
        });
    }
}

impl MatchService {
    /// Spawns the conversation writer: call from within a tokio runtime.
    pub fn new(pool: Arc<dyn MatchPool>, conversations: Arc<dyn ConversationStore>, bus: Arc<dyn Bus>, config: MatchConfig) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let salt = (nanos ^ (std::process::id() as u64).rotate_left(32)) & 0xfff;
        let (tx, rx) = tokio::sync::mpsc::channel(CONVERSATION_QUEUE);
        tokio::spawn(conversation_writer(rx, conversations));
        MatchService { pool, conversations: tx, bus, config, salt, next: AtomicU64::new(0) }
    }

    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// Builds a request of `user` from parsed parts, checking the window against today.
    pub fn build_request(&self, user: UserId, destination: Destination, from: Day, to: Day, min_days: Option<u16>, now: i64) -> Result<MatchRequest> {
        let window = TravelWindow::new(from, to, Day::of_ms(now))?;
        let min_days = min_days.unwrap_or(1);
        if min_days == 0 || min_days as i32 > window.days() {
            return Err(CoreError::invalid("`min_days` must be between 1 and the window's length"));
        }
        // A request never waits past its window's last day.
        let expires_at = (now + self.config.ttl.as_millis() as i64).min(window.to().end_ms()).max(now + 1);
        Ok(MatchRequest { user, destination, window, min_days, created_at: now, expires_at })
    }

    /// Offers the request. Matched: the pair's direct conversation exists and both users'
    /// sessions get `Event::MatchProposal`. If the conversation cannot be made, the waiting
    /// request is restored to the pool as it was, the new one is not kept, and the caller gets
    /// `Unavailable` (retry).
    pub async fn request(&self, req: MatchRequest) -> Result<MatchOutcome> {
        let now = req.created_at;
        let Some(waited) = self.pool.offer(&req, now).await? else {
            return Ok(MatchOutcome::Waiting { expires_at: req.expires_at });
        };
        let conv = match self.conversation(waited.user, req.user, now).await {
            Ok(c) => c,
            Err(e) => {
                if let Err(e2) = self.pool.restore(&waited).await {
                    tracing::warn!(error = %e2, user = %waited.user, "a matched request could not be put back; it is lost");
                }
                return Err(CoreError::unavailable(e));
            }
        };
        let shared = req.overlap_with(&waited).unwrap_or(req.window);
        let proposal = Arc::new(Proposal { id: self.next_id(now), waited, found: req, shared, conv, created_at: crate::now_ms() });
        self.bus.publish(Event::MatchProposal { proposal: proposal.clone() });
        Ok(MatchOutcome::Matched(proposal))
    }

    /// The pair's direct conversation, through the conversation writer.
    async fn conversation(&self, a: UserId, b: UserId, now: i64) -> Result<ConvId> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.conversations
            .send(ConvRequest { pair: (a, b), now, reply })
            .await
            .map_err(|_| CoreError::unavailable("the conversation writer has stopped"))?;
        answer.await.map_err(|_| CoreError::unavailable("the conversation writer has stopped"))?
    }

    /// Withdraws the user's waiting request; false if none was waiting.
    pub async fn cancel(&self, user: UserId) -> Result<bool> {
        self.pool.cancel(user).await
    }

    /// Takes out expired requests and tells their users (`Event::MatchExpired`). Returns how
    /// many expired.
    pub async fn sweep(&self, now: i64) -> Result<usize> {
        let gone = self.pool.expire(now, EXPIRE_BATCH).await?;
        let n = gone.len();
        for req in gone {
            self.bus.publish(Event::MatchExpired { request: Arc::new(req) });
        }
        Ok(n)
    }

    pub async fn waiting(&self) -> Result<usize> {
        self.pool.waiting().await
    }

    fn next_id(&self, now: i64) -> MatchId {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & 0xfff;
        MatchId(((now as u64) << 24) | (self.salt << 12) | n)
    }
}

/// Sweeps expired requests every `every` until `stop` resolves.
pub async fn run_expiry(service: Arc<MatchService>, every: Duration, stop: impl std::future::Future<Output = ()>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                loop {
                    match service.sweep(crate::now_ms()).await {
                        Ok(n) if n == EXPIRE_BATCH => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "match expiry sweep failed");
                            break;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn req(user: i64, dest: &str, from: &str, to: &str, min: u16, created: i64) -> MatchRequest {
        MatchRequest {
            user: UserId::new(user).unwrap(),
            destination: Destination::parse(dest).unwrap(),
            window: TravelWindow::new(day(from), day(to), day("2026-11-26")).unwrap(),
            min_days: min,
            created_at: created,
            expires_at: created + 1_000,
        }
    }

    #[test]
    fn days_parse_and_print() {
        for s in ["2000-01-01", "2024-02-29", "2026-11-26", "2199-12-31"] {
            assert_eq!(day(s).to_string(), s);
        }
        assert_eq!(day("2000-01-01").days(), 10_957);
        assert_eq!(Day::from_days(1).to_string(), "1970-01-02");
        assert_eq!(Day::of_ms(0), Day::from_days(0));
        assert_eq!(Day::of_ms(-1), Day::from_days(-1));
        assert_eq!(Day::of_ms(day("2026-11-26").end_ms() - 1), day("2026-11-26"));
        for bad in ["2026-02-29", "2026-13-01", "2026-1-01", "26-11-26", "2026/11/26", "abcd-ef-gh", "1999-12-31", "", "2026-11-2６"] {
            assert_eq!(Day::parse(bad).unwrap_err().code(), "invalid", "{bad}");
        }
    }

    #[test]
    fn windows_and_destinations_are_checked() {
        let today = day("2026-11-26");
        assert!(TravelWindow::new(day("2026-12-05"), day("2026-12-01"), today).is_err());
        assert!(TravelWindow::new(day("2026-12-01"), day("2027-03-01"), today).is_err());
        assert!(TravelWindow::new(day("2026-11-01"), day("2026-11-24"), today).is_err());
        assert!(TravelWindow::new(day("2026-11-01"), day("2026-11-25"), today).is_ok());
        assert!(TravelWindow::new(day("2028-01-01"), day("2028-01-02"), today).is_err());
        assert_eq!(Destination::parse("  Da   Li ").unwrap().as_str(), "da li");
        assert_eq!(Destination::parse("大理").unwrap().as_str(), "大理");
        assert!(Destination::parse("   ").is_err());
        assert!(Destination::parse(&"x".repeat(65)).is_err());
        assert!(Destination::parse("a\u{7}b").is_err());
    }

    #[test]
    fn compatible_means_same_destination_and_enough_shared_days() {
        let a = req(1, "大理", "2026-12-01", "2026-12-05", 1, 0);
        assert_eq!(a.overlap_with(&req(2, "大理", "2026-12-05", "2026-12-09", 1, 0)).unwrap().days(), 1);
        assert!(a.overlap_with(&req(2, "大理", "2026-12-06", "2026-12-09", 1, 0)).is_none());
        assert!(a.overlap_with(&req(2, "丽江", "2026-12-01", "2026-12-05", 1, 0)).is_none());
        assert!(a.overlap_with(&req(1, "大理", "2026-12-01", "2026-12-05", 1, 0)).is_none(), "not with oneself");
        // Each side's minimum counts.
        assert!(a.overlap_with(&req(2, "大理", "2026-12-04", "2026-12-09", 3, 0)).is_none());
        assert!(req(1, "大理", "2026-12-01", "2026-12-05", 3, 0).overlap_with(&req(2, "大理", "2026-12-04", "2026-12-09", 1, 0)).is_none());
        assert_eq!(a.overlap_with(&req(2, "大理", "2026-12-03", "2026-12-09", 3, 0)).unwrap().as_strings(), ("2026-12-03".into(), "2026-12-05".into()));
    }

    impl TravelWindow {
        fn as_strings(self) -> (String, String) {
            (self.from.to_string(), self.to.to_string())
        }
    }

    #[test]
    fn pick_prefers_the_longest_overlap_then_the_oldest_and_skips_expired() {
        let me = req(9, "大理", "2026-12-01", "2026-12-10", 1, 100);
        let mut w = [
            req(1, "大理", "2026-12-09", "2026-12-20", 1, 1),
            req(2, "大理", "2026-12-01", "2026-12-04", 1, 2),
            req(3, "大理", "2026-12-03", "2026-12-06", 1, 3),
            req(4, "大理", "2026-12-01", "2026-12-10", 1, 4),
        ];
        assert_eq!(pick(&me, &w, 0).unwrap().user.get(), 4);
        assert_eq!(pick(&me, &w[..3], 0).unwrap().user.get(), 2, "equal overlaps: the oldest");
        w[3].expires_at = 500;
        assert_eq!(pick(&me, &w, 500).unwrap().user.get(), 2, "expired: never picked");
        assert!(pick(&me, &w, 2_000).is_none());
    }

    #[tokio::test]
    async fn the_memory_pool_matches_once_replaces_and_expires() {
        let pool = MemoryMatchPool::new(MatchConfig::default());
        assert_eq!(pool.offer(&req(1, "大理", "2026-12-01", "2026-12-05", 1, 0), 0).await.unwrap(), None);
        // A new request of the same user replaces the old one, to any destination.
        assert_eq!(pool.offer(&req(1, "丽江", "2026-12-01", "2026-12-05", 1, 0), 0).await.unwrap(), None);
        assert_eq!(pool.waiting().await.unwrap(), 1);
        assert_eq!(pool.offer(&req(2, "大理", "2026-12-01", "2026-12-05", 1, 0), 0).await.unwrap(), None);
        let got = pool.offer(&req(3, "丽江", "2026-12-02", "2026-12-03", 1, 0), 0).await.unwrap().unwrap();
        assert_eq!(got.user.get(), 1);
        assert_eq!(pool.waiting().await.unwrap(), 1, "user 1 taken out, user 3 not kept");
        assert!(pool.offer(&req(4, "丽江", "2026-12-02", "2026-12-03", 1, 0), 0).await.unwrap().is_none(), "user 1 is matched once only");
        assert!(pool.cancel(UserId::new(4).unwrap()).await.unwrap());
        assert!(!pool.cancel(UserId::new(4).unwrap()).await.unwrap());
        // User 2 expires at 1,000.
        assert!(pool.expire(999, 10).await.unwrap().is_empty());
        let gone = pool.expire(1_000, 10).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.user.get()).collect::<Vec<_>>(), vec![2]);
        assert_eq!(pool.waiting().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn restore_puts_a_request_back_in_its_turn_without_matching_it() {
        let pool = MemoryMatchPool::new(MatchConfig::default());
        let (a, b, c) = (req(1, "大理", "2026-12-01", "2026-12-05", 1, 1), req(2, "大理", "2026-12-01", "2026-12-05", 1, 2), req(3, "大理", "2026-12-01", "2026-12-05", 1, 3));
        pool.offer(&a, 0).await.unwrap();
        assert_eq!(pool.offer(&b, 0).await.unwrap().unwrap().user.get(), 1);
        // The match failed: a goes back, even though c (compatible) came meanwhile.
        pool.offer(&c, 0).await.unwrap();
        pool.restore(&a).await.unwrap();
        assert_eq!(pool.waiting().await.unwrap(), 2);
        // a is older than c: the next traveller gets a.
        assert_eq!(pool.offer(&req(4, "大理", "2026-12-01", "2026-12-05", 1, 4), 0).await.unwrap().unwrap().user.get(), 1);
        // A user with a newer request is not restored over it.
        pool.offer(&req(5, "丽江", "2026-12-01", "2026-12-05", 1, 5), 0).await.unwrap();
        pool.restore(&req(5, "大理", "2026-12-01", "2026-12-05", 1, 0)).await.unwrap();
        let gone = pool.expire(i64::MAX, 10).await.unwrap();
        let mut users: Vec<(i64, String)> = gone.iter().map(|r| (r.user.get(), r.destination.to_string())).collect();
        users.sort();
        assert_eq!(users, vec![(3, "大理".into()), (5, "丽江".into())]);
    }

    #[tokio::test]
    async fn the_memory_pool_states_its_bounds() {
        let pool = MemoryMatchPool::new(MatchConfig { max_waiting: 3, max_per_destination: 2, ..MatchConfig::default() });
        pool.offer(&req(1, "a", "2026-12-01", "2026-12-01", 1, 0), 0).await.unwrap();
        pool.offer(&req(2, "a", "2026-12-03", "2026-12-03", 1, 0), 0).await.unwrap();
        let e = pool.offer(&req(3, "a", "2026-12-05", "2026-12-05", 1, 0), 0).await.unwrap_err();
        assert_eq!(e.code(), "unavailable");
        // A compatible request is still matched when the destination is full.
        assert_eq!(pool.offer(&req(3, "a", "2026-12-01", "2026-12-01", 1, 0), 0).await.unwrap().unwrap().user.get(), 1);
        pool.offer(&req(4, "b", "2026-12-05", "2026-12-05", 1, 0), 0).await.unwrap();
        pool.offer(&req(5, "c", "2026-12-05", "2026-12-05", 1, 0), 0).await.unwrap();
        assert_eq!(pool.offer(&req(6, "d", "2026-12-05", "2026-12-05", 1, 0), 0).await.unwrap_err().code(), "unavailable");
    }

    struct Recorder(Mutex<Vec<Event>>);
    impl crate::ports::Bus for Recorder {
        fn publish(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    async fn user(store: &crate::memory::MemoryStore, code: &str) -> UserId {
        use crate::ports::UserStore;
        let id = crate::model::Identity { provider: "dev", subject: code.into() };
        store.upsert_user(&id, code, 0).await.unwrap().id
    }

    #[tokio::test]
    async fn the_service_matches_into_a_direct_conversation_and_tells_both() {
        let store = Arc::new(crate::memory::MemoryStore::default());
        let bus = Arc::new(Recorder(Mutex::new(vec![])));
        let svc = MatchService::new(Arc::new(MemoryMatchPool::new(MatchConfig::default())), store.clone(), bus.clone(), MatchConfig::default());
        let (a, b) = (user(&store, "a").await, user(&store, "b").await);
        let now = 1_795_000_000_000; // 2026-11-18
        let mk = |u, from, to| svc.build_request(u, Destination::parse("大理").unwrap(), day(from), day(to), None, now).unwrap();
        let first = mk(a, "2026-12-01", "2026-12-05");
        assert_eq!(first.expires_at, now + 600_000);
        assert_eq!(svc.request(first).await.unwrap(), MatchOutcome::Waiting { expires_at: now + 600_000 });
        let MatchOutcome::Matched(p) = svc.request(mk(b, "2026-12-04", "2026-12-09")).await.unwrap() else { panic!("matched") };
        assert_eq!((p.waited.user, p.found.user, p.peer_of(a), p.peer_of(b)), (a, b, b, a));
        assert_eq!((p.shared.from().to_string(), p.shared.to().to_string()), ("2026-12-04".into(), "2026-12-05".into()));
        let conv = store.direct_conversation(a, b, now).await.unwrap();
        assert_eq!(p.conv, conv.id, "the pair's one direct conversation");
        let events = bus.0.lock().unwrap();
        assert!(matches!(&events[..], [Event::MatchProposal { proposal }] if proposal.id == p.id));
        // A window ending today waits until the day is over, not the whole ttl.
        let evening = Day::of_ms(now).end_ms() - 60_000;
        let late = svc.build_request(a, Destination::parse("x").unwrap(), Day::of_ms(now), Day::of_ms(now), None, evening).unwrap();
        assert_eq!(late.expires_at, Day::of_ms(now).end_ms());
        assert!(svc.build_request(a, Destination::parse("x").unwrap(), day("2026-12-01"), day("2026-12-02"), Some(3), now).is_err());
        assert!(svc.build_request(a, Destination::parse("x").unwrap(), day("2026-12-01"), day("2026-12-02"), Some(0), now).is_err());
    }

    #[tokio::test]
    async fn a_failed_conversation_puts_the_waiting_request_back() {
        let store = Arc::new(crate::memory::MemoryStore::default());
        let bus = Arc::new(Recorder(Mutex::new(vec![])));
        let pool = Arc::new(MemoryMatchPool::new(MatchConfig::default()));
        let svc = MatchService::new(pool.clone(), store.clone(), bus.clone(), MatchConfig::default());
        let (a, b) = (user(&store, "a").await, user(&store, "b").await);
        let now = 1_795_000_000_000;
        let mk = |u| svc.build_request(u, Destination::parse("大理").unwrap(), day("2026-12-01"), day("2026-12-05"), None, now).unwrap();
        svc.request(mk(a)).await.unwrap();
        store.fail.store(true, Ordering::SeqCst);
        assert_eq!(svc.request(mk(b)).await.unwrap_err().code(), "unavailable");
        assert_eq!(pool.waiting().await.unwrap(), 1, "a waits again, b was not kept");
        store.fail.store(false, Ordering::SeqCst);
        assert!(matches!(svc.request(mk(b)).await.unwrap(), MatchOutcome::Matched(_)));
        // Expiry tells the user.
        svc.request(mk(a)).await.unwrap();
        assert_eq!(svc.sweep(now + 600_000).await.unwrap(), 1);
        assert!(matches!(bus.0.lock().unwrap().last(), Some(Event::MatchExpired { request }) if request.user == a));
        // Ids differ.
        let ids: std::collections::HashSet<_> = (0..4096).map(|_| svc.next_id(now)).collect();
        assert_eq!(ids.len(), 4096);
    }
}
