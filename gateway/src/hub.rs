//! The hub: which sessions are open on this node, for which user, and who watches whose
//! presence. It is the bus's `EventSink`: it turns domain events into frames and queues them on
//! the sessions that should see them. It never blocks and never awaits.

use crate::frame::{Outbound, ServerFrame, WireMessage, WireModerationItem};
use crate::metrics::Metrics;
use dashmap::DashMap;
use jiebanke_chat_core::ports::{Event, EventSink};
use jiebanke_chat_core::{SessionId, UserId};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
        }
    }
    /// Whether queued frames are still written before closing (a drain), or dropped.
    pub fn drains(self) -> bool {
        matches!(self, CloseReason::Shutdown | CloseReason::TooManyBadFrames)
    }
}

/// What the hub and the session's own tasks share about one session.
pub struct SessionShared {
    pub id: SessionId,
    pub user: UserId,
    /// Frames for the writer task. Bounded (`GatewayConfig::outbound_queue`): when full, the
    /// session is closed as a slow consumer and the frame dropped; nobody else waits.
    pub tx: mpsc::Sender<Arc<Outbound>>,
    /// Fired once to end the session; `reason` says why.
    pub closed: CancellationToken,
    reason: OnceLock<CloseReason>,
}

impl SessionShared {
    pub fn new(id: SessionId, user: UserId, tx: mpsc::Sender<Arc<Outbound>>) -> Self {
        SessionShared { id, user, tx, closed: CancellationToken::new(), reason: OnceLock::new() }
    }
    /// Ends the session for `reason`; the first reason given wins.
    pub fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.closed.cancel();
    }
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.reason.get().copied()
    }
}

pub struct Hub {
    /// Open sessions per user. Bounded by the number of sessions (each entry is removed when
    /// its session ends); the shard locks are held only to clone the list.
    sessions: DashMap<UserId, Vec<Arc<SessionShared>>>,
    /// Sessions that asked for a user's presence, by watched user. Each session may watch at
    /// most `GatewayConfig::max_presence_watch` users; entries go when the session ends.
    watchers: DashMap<UserId, Vec<Arc<SessionShared>>>,
    /// Sessions of admins (their user had the role when the session opened): they get the
    /// moderation feed. Entries go when the session ends.
    admins: DashMap<SessionId, Arc<SessionShared>>,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Hub { sessions: DashMap::new(), watchers: DashMap::new(), admins: DashMap::new(), metrics }
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
        match s.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !s.closed.is_cancelled() {
                    s.close(CloseReason::SlowConsumer);
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn to_user(&self, user: UserId, frame: &Arc<Outbound>, except: Option<&SessionId>) {
        let list = match self.sessions.get(&user) {
            Some(l) => l.clone(),
            None => return,
        };
        for s in list.iter().filter(|s| Some(&s.id) != except) {
            self.push(s, frame.clone());
        }
    }

    /// Every open session, for shutdown.
    pub fn all_sessions(&self) -> Vec<Arc<SessionShared>> {
        self.sessions.iter().flat_map(|e| e.value().clone()).collect()
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
            Event::Message { members, origin, message } => {
                let frame = Arc::new(Outbound::new(ServerFrame::Msg(WireMessage::from(message.as_ref()))));
                for m in members.iter() {
                    self.to_user(*m, &frame, origin.as_ref());
                }
            }
            Event::Read { members, conv, user, seq } => {
                let frame = Arc::new(Outbound::new(ServerFrame::Read {
                    conv: conv.to_string(),
                    user: user.to_string(),
                    seq: seq.get(),
                }));
                for m in members.iter() {
                    self.to_user(*m, &frame, None);
                }
            }
            Event::Typing { members, conv, user } => {
                let frame = Arc::new(Outbound::new(ServerFrame::Typing { conv: conv.to_string(), user: user.to_string() }));
                for m in members.iter().filter(|m| *m != user) {
                    self.to_user(*m, &frame, None);
                }
            }
            Event::Presence { user, online, last_seen } => {
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
                let frame = Arc::new(Outbound::new(ServerFrame::Moderation { item: WireModerationItem::from(item.as_ref()) }));
                let admins: Vec<Arc<SessionShared>> = self.admins.iter().map(|e| e.value().clone()).collect();
                for s in admins {
                    self.push(&s, frame.clone());
                }
            }
            Event::MessageDeleted { members, conv, seq } => {
                let frame = Arc::new(Outbound::new(ServerFrame::MsgDeleted { conv: conv.to_string(), seq: seq.get() }));
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
        }
    }
}
