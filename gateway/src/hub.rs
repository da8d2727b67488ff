//! The hub: which sessions are open on this node, for which user, and who watches whose
//! presence. It is the bus's `EventSink`: it turns domain events into frames and queues them on
//! the sessions that should see them. It never blocks and never awaits.

use crate::frame::{Outbound, ServerFrame, WireAnimalUpdate, WireMessage, WireModerationItem};
use crate::metrics::Metrics;
use dashmap::DashMap;
use jiebanke_chat_core::ports::{Event, EventSink};
use jiebanke_chat_core::sessions::SessionKey;
use jiebanke_chat_core::{SessionId, UserId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use std::task::{Context, Poll, Waker};

/// Why the server closes a session; each has a WebSocket close code and a reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The outbound queue filled up: the client does not read fast enough.
    SlowConsumer,
    /// Nothing was received for too long.
    HeartbeatTimeout,
    /// Too many undecodable or invalid frames in a row.
    TooManyBadFrames,
    /// A frame above the hard size cap (the transport could not even read it).
    TooLarge,
    /// The server is draining (SIGTERM); reconnect, to another node if there is one.
    Shutdown,
    /// The client closed, or the connection broke: nothing more can be sent.
    ClientClosed,
    /// An admin banned the user.
    Banned,
    /// The user erased their account.
    Erased,
    /// The login session the socket was opened with ended (a logout, a disabled staff
    /// account).
    LoggedOut,
    /// The client broke RFC 6455 framing (reserved bits, unknown opcode, unmasked or
    /// fragmented control frame, a continuation without a start, ...).
    ProtocolError,
    /// A text frame or a close reason that is not UTF-8.
    InvalidUtf8,
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            CloseReason::SlowConsumer => 4008,
            CloseReason::HeartbeatTimeout => 4002,
            CloseReason::TooManyBadFrames => 1008,
            CloseReason::TooLarge => 1009,
            CloseReason::Shutdown => 1012,
            CloseReason::ClientClosed => 1000,
            CloseReason::Banned => 4003,
            CloseReason::Erased => 4004,
            CloseReason::LoggedOut => 4005,
            CloseReason::ProtocolError => 1002,
            CloseReason::InvalidUtf8 => 1007,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::TooManyBadFrames => "too_many_bad_frames",
            CloseReason::TooLarge => "too_large",
            CloseReason::Shutdown => "server_restart",
            CloseReason::ClientClosed => "client_closed",
            CloseReason::Banned => "banned",
            CloseReason::Erased => "account_erased",
            CloseReason::LoggedOut => "logged_out",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::InvalidUtf8 => "invalid_utf8",
        }
    }
    /// Whether queued frames are still written before closing (a drain), or dropped.
    pub fn drains(self) -> bool {
        matches!(self, CloseReason::Shutdown | CloseReason::TooManyBadFrames)
    }
}

/// What the hub and the session's task share about one session: its outbound queue and why it
/// ended. The queue is bounded (`GatewayConfig::outbound_queue`): a push to a full queue closes
/// the session as a slow consumer and drops the frame; nobody ever waits on it.
pub struct SessionShared {
    pub id: SessionId,
    pub user: UserId,
    /// The login session its token named: `Event::LoggedOut` for it closes this socket.
    pub login: Option<SessionKey>,
    bound: usize,
    state: Mutex<Outbox>,
    /// When the client was last heard from and last pinged (`clock_ms`): the hub's ticker
    /// reads them to wake only the sessions with a heartbeat duty.
    last_rx: AtomicU64,
    last_ping: AtomicU64,
}

/// Milliseconds on a monotonic clock, for the heartbeat bookkeeping.
pub fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

struct Outbox {
    /// Frames queued and not yet taken by the session task (at most `bound`). Empty and
    /// unallocated while the session idles.
    queue: VecDeque<Arc<Outbound>>,
    /// The session task, when it waits for frames or for the close.
    waker: Option<Waker>,
    reason: Option<CloseReason>,
    /// The session task wrote its last frame: nothing more is accepted.
    finished: bool,
    /// The hub's heartbeat tick came and the session task has not seen it yet.
    tick: bool,
}

/// What the session task is told by `SessionShared::poll_signal`.
pub enum Signal {
    Closed(CloseReason),
    /// Time to check the client's heartbeat and send a ping (`Hub::tick_all`).
    Tick,
}

impl SessionShared {
    pub fn new(id: SessionId, user: UserId, bound: usize) -> Self {
        SessionShared {
            id,
            user,
            login: None,
            bound: bound.max(1),
            state: Mutex::new(Outbox {
                queue: VecDeque::new(),
                waker: None,
                reason: None,
                finished: false,
                tick: false,
            }),
            last_rx: AtomicU64::new(clock_ms()),
            last_ping: AtomicU64::new(clock_ms()),
        }
    }

    /// The login session the socket was opened with.
    pub fn with_login(mut self, login: SessionKey) -> Self {
        self.login = Some(login);
        self
    }

    /// A frame came from the client.
    pub fn heard(&self, now_ms: u64) {
        self.last_rx.store(now_ms, Ordering::Relaxed);
    }

    /// Milliseconds since the client was last heard from.
    pub fn silent_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_rx.load(Ordering::Relaxed))
    }

    /// Whether a ping is due (none for `ping_after`); if so, it counts as sent now.
    pub fn take_ping(&self, now_ms: u64, ping_after: Duration) -> bool {
        let due = now_ms.saturating_sub(self.last_ping.load(Ordering::Relaxed)) >= ping_after.as_millis() as u64;
        if due {
            self.last_ping.store(now_ms, Ordering::Relaxed);
        }
        due
    }

    fn heartbeat_duty(&self, now_ms: u64, ping_after: Duration, timeout: Duration) -> bool {
        now_ms.saturating_sub(self.last_ping.load(Ordering::Relaxed)) >= ping_after.as_millis() as u64
            || self.silent_ms(now_ms) > timeout.as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outbox> {
        // Nothing panics while holding it; a poisoned lock still holds a consistent queue.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame. False if the frame was dropped: the queue was full (the session is then
    /// closed as a slow consumer), or the session is closed and will not write it.
    pub fn push(&self, frame: Arc<Outbound>) -> bool {
        let (queued, waker) = {
            let mut st = self.lock();
            if st.finished || st.reason.is_some_and(|r| !r.drains()) {
                return false;
            }
            if st.queue.len() >= self.bound {
                if st.reason.is_none() {
                    st.reason = Some(CloseReason::SlowConsumer);
                }
                (false, st.waker.take())
            } else {
                st.queue.push_back(frame);
                (true, st.waker.take())
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        queued
    }

    /// Ends the session for `reason`; the first reason given wins.
    pub fn close(&self, reason: CloseReason) {
        let waker = {
            let mut st = self.lock();
            if st.reason.is_none() {
                st.reason = Some(reason);
            }
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.lock().reason
    }

    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// For the session task: `Ready` once the session is closed or a tick came; otherwise
    /// registers the task's waker for the next push, tick or close, and is `Pending`.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        let mut st = self.lock();
        if let Some(r) = st.reason {
            return Poll::Ready(Signal::Closed(r));
        }
        if st.tick {
            st.tick = false;
            return Poll::Ready(Signal::Tick);
        }
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Wakes the session task for its heartbeat check.
    pub fn tick(&self) {
        let waker = {
            let mut st = self.lock();
            st.tick = true;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Moves every queued frame into `out`, without waiting.
    pub fn take_queued(&self, out: &mut VecDeque<Arc<Outbound>>) {
        let mut st = self.lock();
        if out.is_empty() {
            std::mem::swap(&mut st.queue, out);
        } else {
            out.append(&mut st.queue);
        }
    }

    /// The session task is done writing: later pushes are dropped.
    pub fn finish(&self) {
        let mut st = self.lock();
        st.finished = true;
        st.queue = VecDeque::new();
        st.waker = None;
    }
}

/// The hub's maps are looked up once per member per delivery; their keys are ids the server
/// assigned, so a fast seeded hash (foldhash, hashbrown's own) is enough, instead of SipHash.
type Hasher = foldhash::fast::RandomState;

pub struct Hub {
    /// Open sessions per user. Bounded by the number of sessions (each entry is removed when
    /// its session ends); the shard locks are held only to clone the list.
    sessions: DashMap<UserId, Vec<Arc<SessionShared>>, Hasher>,
    /// Sessions that asked for a user's presence, by watched user. Each session may watch at
    /// most `GatewayConfig::max_presence_watch` users; entries go when the session ends.
    watchers: DashMap<UserId, Vec<Arc<SessionShared>>, Hasher>,
    /// Sessions of admins (their user had the role when the session opened): they get the
    /// moderation feed. Entries go when the session ends.
    admins: DashMap<SessionId, Arc<SessionShared>, Hasher>,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Hub {
            sessions: DashMap::with_hasher(Hasher::default()),
            watchers: DashMap::with_hasher(Hasher::default()),
            admins: DashMap::with_hasher(Hasher::default()),
            metrics,
        }
    }

    pub fn register(&self, s: Arc<SessionShared>) {
        self.sessions.entry(s.user).or_default().push(s);
    }

    /// The session gets the moderation feed.
    pub fn register_admin(&self, s: Arc<SessionShared>) {
        self.admins.insert(s.id.clone(), s);
    }

    pub fn unregister(&self, s: &SessionShared, watched: &[UserId]) {
        self.admins.remove(&s.id);
        self.sessions.remove_if_mut(&s.user, |_, list| {
            list.retain(|x| x.id != s.id);
            list.is_empty()
        });
        for u in watched {
            self.unwatch(*u, s);
        }
    }

    pub fn watch(&self, user: UserId, s: Arc<SessionShared>) {
        let mut list = self.watchers.entry(user).or_default();
        if !list.iter().any(|x| x.id == s.id) {
            list.push(s);
        }
    }

    pub fn unwatch(&self, user: UserId, s: &SessionShared) {
        self.watchers.remove_if_mut(&user, |_, list| {
            list.retain(|x| x.id != s.id);
            list.is_empty()
        });
    }

    /// Queues a frame for one session; closes it as a slow consumer if its queue is full.
    pub fn push(&self, s: &SessionShared, frame: Arc<Outbound>) -> bool {
        s.push(frame)
    }

    fn to_user(&self, user: UserId, frame: &Arc<Outbound>, except: Option<&SessionId>) {
        // Pushing under the shard's read lock is fine: a push only takes the session's own lock
        // and schedules its task, never the hub's.
        if let Some(list) = self.sessions.get(&user) {
            for s in list.iter().filter(|s| Some(&s.id) != except) {
                s.push(frame.clone());
            }
        }
    }

    /// Wakes the sessions that have a heartbeat duty (a ping due after `ping_after`, or a client
    /// silent past `timeout`): one timer for the node instead of one per session, and an idle
    /// session is woken once per heartbeat, not at every tick.
    pub fn tick_all(&self, ping_after: Duration, timeout: Duration) {
        let now = clock_ms();
        for e in self.sessions.iter() {
            for s in e.value() {
                if s.heartbeat_duty(now, ping_after, timeout) {
                    s.tick();
                }
            }
        }
    }

    /// Closes every session for `reason`.
    pub fn close_all(&self, reason: CloseReason) {
        for s in self.all_sessions() {
            s.close(reason);
        }
    }

    /// Every open session.
    pub fn all_sessions(&self) -> Vec<Arc<SessionShared>> {
        self.sessions
            .iter()
            .flat_map(|e| e.value().clone())
            .collect()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.iter().map(|e| e.value().len()).sum()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl EventSink for Hub {
    fn deliver(&self, event: &Event) {
        match event {
            Event::Message {
                members,
                origin,
                message,
            } => {
                let frame = Arc::new(Outbound::new(ServerFrame::Msg(WireMessage::from(
                    message.as_ref(),
                ))));
                for m in members.iter() {
                    self.to_user(*m, &frame, origin.as_ref());
                }
            }
            Event::Read {
                members,
                conv,
                user,
                seq,
            } => {
                let frame = Arc::new(Outbound::new(ServerFrame::Read {
                    conv: conv.to_string(),
                    user: user.to_string(),
                    seq: seq.get(),
                }));
                for m in members.iter() {
                    self.to_user(*m, &frame, None);
                }
            }
            Event::Typing {
                members,
                conv,
                user,
            } => {
                let frame = Arc::new(Outbound::new(ServerFrame::Typing {
                    conv: conv.to_string(),
                    user: user.to_string(),
                }));
                for m in members.iter().filter(|m| *m != user) {
                    self.to_user(*m, &frame, None);
                }
            }
            Event::Presence {
                user,
                online,
                last_seen,
            } => {
                let list = match self.watchers.get(user) {
                    Some(l) => l.clone(),
                    None => return,
                };
                let frame = Arc::new(Outbound::new(ServerFrame::Presence {
                    user: user.to_string(),
                    online: *online,
                    last_seen: *last_seen,
                }));
                for s in list.iter() {
                    self.push(s, frame.clone());
                }
            }
            Event::Resync => {
                let frame = Arc::new(Outbound::new(ServerFrame::Resync));
                for s in self.all_sessions() {
                    self.push(&s, frame.clone());
                }
            }
            Event::MembersChanged { .. } => {}
            Event::OrderAlert { alert } => {
                let frame = Arc::new(Outbound::new(ServerFrame::order_alert(alert)));
                self.to_user(alert.merchant, &frame, None);
            }
            Event::Moderation { item } => {
                let frame = Arc::new(Outbound::new(ServerFrame::Moderation {
                    item: WireModerationItem::from(item.as_ref()),
                }));
                let admins: Vec<Arc<SessionShared>> =
                    self.admins.iter().map(|e| e.value().clone()).collect();
                for s in admins {
                    self.push(&s, frame.clone());
                }
            }
            Event::MessageDeleted { members, conv, seq, recalled } => {
                let frame = Arc::new(Outbound::new(if *recalled {
                    ServerFrame::MsgRecalled { id: None, conv: conv.to_string(), seq: seq.get() }
                } else {
                    ServerFrame::MsgDeleted { conv: conv.to_string(), seq: seq.get() }
                }));
                for m in members.iter() {
                    self.to_user(*m, &frame, None);
                }
            }
            Event::Banned { user } => {
                if let Some(list) = self.sessions.get(user).map(|l| l.clone()) {
                    for s in list {
                        s.close(CloseReason::Banned);
                    }
                }
            }
            Event::PresenceHidden { watcher, user } => {
                let mut dropped = Vec::new();
                self.watchers.remove_if_mut(user, |_, list| {
                    list.retain(|s| {
                        let keep = s.user != *watcher;
                        if !keep {
                            dropped.push(s.clone());
                        }
                        keep
                    });
                    list.is_empty()
                });
                if !dropped.is_empty() {
                    let frame = Arc::new(Outbound::new(ServerFrame::Presence { user: user.to_string(), online: false, last_seen: None }));
                    for s in dropped {
                        s.push(frame.clone());
                    }
                }
            }
            Event::LoggedOut { user, session } => {
                if let Some(list) = self.sessions.get(user).map(|l| l.clone()) {
                    for s in list.iter().filter(|s| session.is_none() || s.login == *session) {
                        s.close(CloseReason::LoggedOut);
                    }
                }
            }
            Event::Erased { user } => {
                if let Some(list) = self.sessions.get(user).map(|l| l.clone()) {
                    for s in list {
                        s.close(CloseReason::Erased);
                    }
                }
            }
            Event::MatchProposal { proposal } => {
                for user in [proposal.waited.user, proposal.found.user] {
                    let frame = Arc::new(Outbound::new(ServerFrame::match_proposal(proposal, user)));
                    self.to_user(user, &frame, None);
                }
            }
            Event::MerchantReviewed { notice } => {
                let frame = Arc::new(Outbound::new(ServerFrame::MerchantReview {
                    application: notice.application.to_string(),
                    status: notice.status.clone(),
                    reason: notice.reason.clone(),
                    at: notice.at,
                }));
                self.to_user(notice.user, &frame, None);
            }
            Event::ClaimUpdate { notice } => {
                let update = WireAnimalUpdate::from(&notice.update);
                for (user, claim) in &notice.claims {
                    let frame = Arc::new(Outbound::new(ServerFrame::ClaimUpdate { claim: claim.to_string(), update: update.clone() }));
                    self.to_user(*user, &frame, None);
                }
            }
            Event::MatchExpired { request } => {
                let frame = Arc::new(Outbound::new(ServerFrame::MatchExpired {
                    destination: request.destination.to_string(),
                    from: request.window.from().to_string(),
                    to: request.window.to().to_string(),
                }));
                self.to_user(request.user, &frame, None);
            }
        }
    }
}

/// This node's hub as the dashboard's count of open sessions (the embedded default: one node).
pub struct LocalSessions(pub Arc<Hub>);

#[async_trait::async_trait]
impl jiebanke_chat_core::dashboard::OnlineSessions for LocalSessions {
    async fn online_sessions(&self) -> jiebanke_chat_core::error::Result<u64> {
        Ok(self.0.session_count() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticker_wakes_a_session_only_for_a_heartbeat_duty() {
        let s = SessionShared::new(SessionId::new(String::from("s1")), UserId::new(1).unwrap(), 8);
        let t0 = clock_ms();
        let (ping_after, timeout) = (Duration::from_secs(25), Duration::from_secs(75));
        assert!(!s.heartbeat_duty(t0 + 1_000, ping_after, timeout), "just pinged and heard");
        assert!(s.heartbeat_duty(t0 + 25_000, ping_after, timeout), "a ping is due");
        assert!(s.take_ping(t0 + 25_000, ping_after));
        assert!(!s.take_ping(t0 + 26_000, ping_after), "one ping per heartbeat");
        s.heard(t0 + 30_000);
        assert!(!s.heartbeat_duty(t0 + 31_000, ping_after, timeout));
        assert_eq!(s.silent_ms(t0 + 31_000), 1_000);
        // Silent past the timeout: woken to close, whatever the ping.
        s.take_ping(t0 + 105_000, ping_after);
        assert!(s.heartbeat_duty(t0 + 105_001, ping_after, timeout));
    }

    #[test]
    fn a_full_queue_closes_the_session_as_a_slow_consumer() {
        let s = SessionShared::new(SessionId::new(String::from("s1")), UserId::new(1).unwrap(), 2);
        let f = Arc::new(Outbound::new(crate::frame::ServerFrame::Resync));
        assert!(s.push(f.clone()) && s.push(f.clone()));
        assert!(!s.push(f.clone()));
        assert_eq!(s.close_reason(), Some(CloseReason::SlowConsumer));
        // Once closed for a reason that drops frames, nothing more is queued.
        assert!(!s.push(f.clone()));
        let mut out = VecDeque::new();
        s.take_queued(&mut out);
        assert_eq!(out.len(), 2);
        // A draining close keeps accepting the last replies until the task finishes.
        let d = SessionShared::new(SessionId::new(String::from("s2")), UserId::new(1).unwrap(), 4);
        d.close(CloseReason::Shutdown);
        assert!(d.push(f.clone()));
        d.finish();
        assert!(!d.push(f));
    }
}
