//! One WebSocket session, in one task: it reads and decodes frames and starts their requests,
//! collects the requests' replies, and writes what the hub queued for it, coalescing every frame
//! queued meanwhile into one flush.
//!
//! Requests run concurrently (at most `max_inflight` per session; past that the session stops
//! reading, which pushes back on the client through TCP). Replies are queued in completion
//! order. A write the socket cannot take yet does not stop reading; a client that does not read
//! fills the session's bounded queue and is closed as a slow consumer.
//!
//! One task, one shared allocation (`SessionShared`) and a small read waker (`ReadWake`) per
//! session, with no channel: an idle session holds its socket, this task's state and the shared
//! queue's header, and nothing that grows until it is used.

use crate::frame::{self, ClientFrame, Codec, Outbound, ReqId, ServerFrame};
use crate::hub::{clock_ms, CloseReason, SessionShared, Signal};
use crate::Gateway;
use io::{Io, ReadWake};

mod io;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use jiebanke_chat_core::matching::{Day, Destination, MatchOutcome};
use jiebanke_chat_core::sessions::TokenClaims;
use jiebanke_chat_core::{Appended, ClientMsgId, CoreError, Seq, SessionId, UserId};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use futures_util::task::AtomicWaker;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

type Replies = BoxFuture<'static, Reply>;

/// What a request's future hands back to its session.
enum Reply {
    /// Frames to queue.
    Frames(Vec<ServerFrame>),
    /// A `presence_subscribe` whose visibility was checked: the session watches the visible
    /// users (on its own task, where its watch list lives), then reads their state.
    Watch { id: Option<ReqId>, users: Vec<UserId>, visible: Vec<bool> },
}

/// The session's task. Not an `async fn`: its arguments would be kept twice in the future, once
/// as arguments and once as the locals they are moved into, and every byte of this future is
/// held by every idle session.
pub(crate) fn run(
    gw: Arc<Gateway>,
    socket: WebSocket,
    claims: TokenClaims,
    admin: bool,
    codec: Codec,
    id: SessionId,
) -> impl Future<Output = ()> + Send + 'static {
    let read = Arc::new(ReadWake { due: AtomicBool::new(true), task: AtomicWaker::new() });
    let mut io = Io {
        socket,
        out: VecDeque::new(),
        dirty: false,
        ping_due: false,
        read_waker: Waker::from(read.clone()),
        read,
    };
    async move {
        // Borrowed, not cloned, for the same reason.
        let cfg = &gw.config;
        let user = claims.user;
        let shared = Arc::new(SessionShared::new(id.clone(), user, cfg.outbound_queue.max(1)).with_login(claims.session.clone()));

        gw.metrics.connections.inc();
        gw.metrics.connections_total.inc();
        // In cluster mode this registers the user with the directory first, so that everything
        // committed after the client's first sync reaches it live.
        gw.chat.session_opened(user).await;
        // hello is queued before the session is registered, so it is always the first frame.
        gw.hub.push(
            &shared,
            Arc::new(Outbound::new(ServerFrame::Hello {
                user: user.to_string(),
                session: id.to_string(),
                heartbeat_ms: cfg.heartbeat.as_millis() as u64,
                max_frame_bytes: cfg.max_frame_bytes,
                protocol: codec.protocol().to_owned(),
            })),
        );
        gw.hub.register(shared.clone());
        // A drain that began before this registration did not see this session.
        if gw.shutdown.is_cancelled() {
            shared.close(CloseReason::Shutdown);
        }
        if admin {
            gw.hub.register_admin(shared.clone());
        }
        // A logout that committed after the upgrade's check and whose close went out before
        // this session was registered is caught here.
        if let Err(CoreError::Unauthorized(_)) = gw.logins.check(&claims).await {
            shared.close(CloseReason::LoggedOut);
        }
        gw.metrics.online_users.set(gw.chat.online_users() as i64);
        tracing::debug!(session = %id, %user, ?codec, "session open");
        // A ban that committed after the upgrade's check and whose close went out before this
        // session was registered is caught here. Then the order alerts not acked yet, oldest first
        // (an alert committed meanwhile may also come live: the alert id tells them apart).
        match gw.alerts.on_session_open(user).await {
            Ok(list) => {
                for a in &list {
                    gw.hub.push(
                        &shared,
                        Arc::new(Outbound::new(ServerFrame::order_alert(a))),
                    );
                }
            }
            Err(CoreError::Banned) => shared.close(CloseReason::Banned),
            Err(CoreError::Unauthorized(_)) => shared.close(CloseReason::Erased),
            Err(e) => {
                tracing::warn!(error = %e, %user, "pending order alerts not read; they come on the next connect")
            }
        }

        let quota = Quota::per_second(cfg.msg_rate).allow_burst(cfg.msg_burst);
        let mut session = Session {
            gw: gw.clone(),
            shared: shared.clone(),
            codec,
            limiter: RateLimiter::direct(quota),
            watched: Vec::new(),
            bad_in_row: 0,
            inflight: None,
        };
        let end = session.run_loop(&mut io).await;

        // Answer what was accepted before closing: a send read before the drain gets its ack.
        if end.drains() {
            let drain = async {
                while let Some(replies) = session.next_replies().await {
                    session.take_reply(replies);
                }
            };
            let _ = tokio::time::timeout(cfg.drain_timeout, drain).await;
        }
        shared.close(end);
        gw.hub.unregister(&shared, &session.watched);
        for u in &session.watched {
            gw.chat.unwatch(*u);
        }
        drop(session);
        // A traveller who is gone stops waiting for a companion.
        if gw.chat.session_closed(user).await {
            if let Err(e) = gw.matching.cancel(user).await {
                tracing::warn!(error = %e, %user, "match request of an offline user not withdrawn; it expires");
            }
        }
        gw.metrics.connections.dec();
        gw.metrics.online_users.set(gw.chat.online_users() as i64);
        if end != CloseReason::ClientClosed {
            gw.metrics.close(end.label());
        }

        let finish = async {
            if end.drains() {
                // Whatever was queued before the close (the last acks) goes out first.
                shared.take_queued(&mut io.out);
                while let Some(f) = io.out.pop_front() {
                    gw.metrics.frame_out(f.frame.type_name());
                    if io.socket.feed(f.message(codec)).await.is_err() {
                        return;
                    }
                }
            }
            if end != CloseReason::ClientClosed {
                let text = match end {
                    CloseReason::Shutdown => format!(
                        "{}; reconnect_after_ms={}",
                        end.label(),
                        cfg.reconnect_hint_ms()
                    ),
                    other => other.label().to_owned(),
                };
                let _ = io
                    .socket
                    .send(WsMessage::Close(Some(CloseFrame {
                        code: end.code(),
                        reason: text.into(),
                    })))
                    .await;
            }
            let _ = io.socket.flush().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), finish).await;
        shared.finish();
        // The closing handshake: after our close frame, keep reading (and dropping) until the
        // client's close arrives. Closing the socket with unread input would make the kernel send a
        // reset, which can destroy the close frame before the client reads it.
        if end != CloseReason::ClientClosed {
            let linger = async {
                // After a protocol error the codec may refuse what follows too: keep reading
                // (a bounded number of refusals) until the client's close or its end of stream.
                let mut refusals = 0;
                loop {
                    match io.socket.next().await {
                        Some(Ok(WsMessage::Close(_))) | None => break,
                        Some(Ok(_)) => {}
                        Some(Err(_)) => {
                            refusals += 1;
                            if refusals >= 16 {
                                break;
                            }
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), linger).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), io.socket.close()).await;
        tracing::debug!(session = %id, %user, reason = end.label(), "session closed");
    }
}

/// What woke the session.
enum Step {
    Incoming(Option<Result<WsMessage, axum::Error>>),
    Replies(Reply),
    Tick,
    End(CloseReason),
}

struct Session {
    gw: Arc<Gateway>,
    shared: Arc<SessionShared>,
    codec: Codec,
    /// Frames per second this connection may send (`GatewayConfig::msg_rate`, `msg_burst`).
    limiter: DefaultDirectRateLimiter,
    /// Users whose presence this session watches (at most `max_presence_watch`).
    watched: Vec<UserId>,
    bad_in_row: u32,
    /// Requests being processed; at most `max_inflight`. Allocated while there are some.
    inflight: Option<FuturesUnordered<Replies>>,
}

impl Session {
    fn inflight_len(&self) -> usize {
        self.inflight.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn start<F: std::future::Future<Output = Vec<ServerFrame>> + Send + 'static>(&mut self, request: F) {
        self.start_reply(Box::pin(async move { Reply::Frames(request.await) }))
    }

    fn start_reply(&mut self, request: Replies) {
        self.inflight
            .get_or_insert_with(FuturesUnordered::new)
            .push(request);
    }

    fn poll_replies(&mut self, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        let Some(set) = self.inflight.as_mut() else {
            return Poll::Ready(None);
        };
        match set.poll_next_unpin(cx) {
            Poll::Ready(Some(r)) => {
                if set.is_empty() {
                    self.inflight = None;
                }
                Poll::Ready(Some(r))
            }
            Poll::Ready(None) => {
                self.inflight = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    async fn next_replies(&mut self) -> Option<Reply> {
        poll_fn(|cx| self.poll_replies(cx)).await
    }

    async fn run_loop(&mut self, io: &mut Io) -> CloseReason {
        let gw = self.gw.clone();
        let cfg = &gw.config;
        // Ticks come from the hub's ticker when this session has a heartbeat duty.
        let ping_after = cfg.ping_after();
        loop {
            let step = poll_fn(|cx| {
                match self.shared.poll_signal(cx) {
                    Poll::Ready(Signal::Closed(reason)) => return Poll::Ready(Step::End(reason)),
                    Poll::Ready(Signal::Tick) => return Poll::Ready(Step::Tick),
                    Poll::Pending => {}
                }
                if let Poll::Ready(reason) = io.poll_write(cx, &self.shared, self.codec, &gw) {
                    return Poll::Ready(Step::End(reason));
                }
                if let Poll::Ready(Some(r)) = self.poll_replies(cx) {
                    return Poll::Ready(Step::Replies(r));
                }
                if self.inflight_len() < cfg.max_inflight {
                    if let Poll::Ready(m) = io.poll_read(cx) {
                        return Poll::Ready(Step::Incoming(m));
                    }
                }
                Poll::Pending
            })
            .await;
            match step {
                Step::End(reason) => return reason,
                Step::Replies(r) => self.take_reply(r),
                Step::Tick => {
                    // While the session's requests fill `max_inflight` we are not reading, and
                    // the silence is ours, not the client's.
                    let now = clock_ms();
                    if self.inflight_len() < cfg.max_inflight
                        && self.shared.silent_ms(now) > cfg.heartbeat_timeout.as_millis() as u64
                    {
                        return CloseReason::HeartbeatTimeout;
                    }
                    if self.shared.take_ping(now, ping_after) {
                        io.ping_due = true;
                    }
                }
                Step::Incoming(msg) => {
                    let msg = match msg {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => return read_error_reason(e),
                        None => return CloseReason::ClientClosed,
                    };
                    self.shared.heard(clock_ms());
                    match msg {
                        WsMessage::Text(t) => self.on_data(t.as_bytes()),
                        WsMessage::Binary(b) => self.on_data(&b),
                        // The codec queued the pong; make sure a flush follows.
                        WsMessage::Ping(_) => io.dirty = true,
                        WsMessage::Pong(_) => {}
                        WsMessage::Close(_) => return CloseReason::ClientClosed,
                    }
                    if self.bad_in_row >= cfg.max_bad_frames {
                        return CloseReason::TooManyBadFrames;
                    }
                }
            }
        }
    }

    fn queue(&self, frame: ServerFrame) {
        if let ServerFrame::Error { code, .. } = &frame {
            self.gw.metrics.error(code);
        }
        self.gw
            .hub
            .push(&self.shared, Arc::new(Outbound::new(frame)));
    }

    fn take_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Frames(frames) => self.queue_all(frames),
            Reply::Watch { id, users, visible } => self.watch_visible(id, users, visible),
        }
    }

    /// The second half of `presence_subscribe`: users hidden from me (their `presence_to`, a
    /// block) are reported offline with no last_seen and not watched (if they were, no longer);
    /// the others are watched first, then their state is read, so that a change in between is
    /// seen, never missed.
    fn watch_visible(&mut self, id: Option<ReqId>, users: Vec<UserId>, visible: Vec<bool>) {
        let chat = self.gw.chat.clone();
        let mut shown = Vec::with_capacity(users.len());
        let mut hidden = Vec::new();
        for (u, v) in users.into_iter().zip(visible) {
            if v {
                shown.push(u);
                continue;
            }
            if self.watched.contains(&u) {
                self.gw.hub.unwatch(u, &self.shared);
                self.watched.retain(|w| *w != u);
                chat.unwatch(u);
            }
            hidden.push(ServerFrame::Presence { user: u.to_string(), online: false, last_seen: None });
        }
        let new: Vec<UserId> = shown.iter().copied().filter(|u| !self.watched.contains(u)).collect();
        let max = self.gw.config.max_presence_watch;
        if self.watched.len() + new.len() > max {
            self.queue(ServerFrame::error(id, "invalid", format!("a session watches at most {max} users")));
            return;
        }
        // Every shown user is watched at the hub (idempotent), not only the new ones: a block
        // may have dropped a watch this session still lists.
        for u in &shown {
            self.gw.hub.watch(*u, self.shared.clone());
        }
        self.watched.extend(new.iter().copied());
        // Counted now (undone by unwatch at close, whether or not the future runs).
        let ready: Vec<_> = new.iter().map(|u| chat.watch(*u)).collect();
        self.start(async move {
            for r in ready {
                if let Err(e) = r.await {
                    tracing::warn!(error = %e, "presence watch not registered with the bus");
                }
            }
            let mut out = hidden;
            for u in shown {
                match chat.presence(u).await {
                    Ok(mut p) => {
                        // The snapshot is queued after any change published while it was read;
                        // if one happened, the newer state is what we send.
                        if chat.is_online(u) != p.online {
                            p = chat.presence(u).await.unwrap_or(p);
                        }
                        out.push(ServerFrame::Presence { user: u.to_string(), online: p.online, last_seen: p.last_seen })
                    }
                    Err(e) => out.push(error_frame(id.clone(), &e)),
                }
            }
            out
        });
    }

    fn queue_all(&self, frames: Vec<ServerFrame>) {
        for f in frames {
            self.queue(f);
        }
    }

    fn bad(&mut self, id: Option<ReqId>, code: &str, message: impl Into<String>) {
        self.bad_in_row += 1;
        self.queue(ServerFrame::error(id, code, message));
    }

    fn on_data(&mut self, data: &[u8]) {
        if data.len() > self.gw.config.max_frame_bytes {
            self.gw.metrics.frame_in("too_large");
            let max = self.gw.config.max_frame_bytes;
            return self.bad(
                None,
                "too_large",
                format!("frame of {} bytes is over the {max} byte limit", data.len()),
            );
        }
        let frame = match frame::decode(self.codec, data) {
            Ok(f) => f,
            Err(e) => {
                self.gw.metrics.frame_in("bad");
                return self.bad(e.id, e.code, e.message);
            }
        };
        self.gw.metrics.frame_in(frame.type_name());
        if !matches!(frame, ClientFrame::Ping { .. }) {
            if let Err(not_until) = self.limiter.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let retry_after_ms = wait.as_millis().max(1) as u64;
                self.queue(ServerFrame::Error {
                    id: frame.id(),
                    code: "rate_limited".into(),
                    message: "too many frames; slow down".into(),
                    retry_after_ms: Some(retry_after_ms),
                });
                return;
            }
        }
        match self.handle(frame) {
            Ok(()) => self.bad_in_row = 0,
            Err((id, e)) => self.bad(id, e.code(), e.to_string()),
        }
    }

    /// Checks a decoded frame and starts its work. Errors found before any work are returned.
    fn handle(&mut self, frame: ClientFrame) -> Result<(), (Option<ReqId>, CoreError)> {
        let id = frame.id();
        let me = self.shared.user;
        let chat = self.gw.chat.clone();
        let fail = |e: CoreError| (id.clone(), e);
        match frame {
            ClientFrame::Ping { .. } => self.queue(ServerFrame::Pong { id }),
            ClientFrame::Send {
                conv, cmid, body, ..
            } => {
                let conv = conv.conv().map_err(fail)?;
                let cmid = ClientMsgId::parse(&cmid).map_err(fail)?;
                let body = body.into_domain().map_err(fail)?;
                let origin = Some(self.shared.id.clone());
                let gw = self.gw.clone();
                self.start(async move {
                    let started = Instant::now();
                    let result = chat.send(me, origin, conv, cmid.clone(), body).await;
                    if let Ok(Appended::New(m)) = &result {
                        // The filter runs before the ack; a flagged message stays delivered and
                        // becomes a moderation item.
                        if let Err(e) = gw.moderation.screen(m).await {
                            tracing::warn!(error = %e, conv = %m.conv, seq = %m.seq, "message not screened");
                        }
                    }
                    gw.metrics.ack_latency.observe(started.elapsed().as_secs_f64());
                    vec![match result {
                        Ok(appended) => {
                            let m = appended.message();
                            ServerFrame::Ack {
                                id,
                                conv: m.conv.to_string(),
                                cmid: m.cmid.as_str().to_owned(),
                                seq: m.seq.get(),
                                ts: m.ts,
                                duplicate: matches!(appended, Appended::Duplicate(_)),
                            }
                        }
                        Err(e) => error_frame(id, &e),
                    }]
                });
            }
            ClientFrame::Sync {
                conv, after, limit, ..
            } => {
                let conv = conv.conv().map_err(fail)?;
                let after = Seq::parse(after).map_err(fail)?;
                let limit = limit.unwrap_or(50);
                self.start(async move {
                    vec![match chat.history(me, conv, after, limit).await {
                        Ok((messages, more)) => ServerFrame::History {
                            id,
                            conv: conv.to_string(),
                            messages: messages.iter().map(Into::into).collect(),
                            more,
                        },
                        Err(e) => error_frame(id, &e),
                    }]
                });
            }
            ClientFrame::Read { conv, seq, .. } => {
                let conv = conv.conv().map_err(fail)?;
                let seq = Seq::parse(seq).map_err(fail)?;
                self.start(async move {
                    match chat.read(me, conv, seq).await {
                        Ok(_) => vec![],
                        Err(e) => vec![error_frame(id, &e)],
                    }
                });
            }
            ClientFrame::Typing { conv, .. } => {
                let conv = conv.conv().map_err(fail)?;
                self.start(async move {
                    match chat.typing(me, conv).await {
                        Ok(()) => vec![],
                        Err(e) => vec![error_frame(id, &e)],
                    }
                });
            }
            ClientFrame::PresenceSubscribe { users, .. } => {
                let mut users = users
                    .iter()
                    .map(|u| u.user())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(fail)?;
                let max = self.gw.config.max_presence_watch;
                users.sort();
                users.dedup();
                let new = users.iter().filter(|u| !self.watched.contains(u)).count();
                if self.watched.len() + new > max {
                    return Err(fail(CoreError::invalid(format!(
                        "a session watches at most {max} users"
                    ))));
                }
                // First who of them may be seen by me, then (on this task) the watch.
                self.start_reply(Box::pin(async move {
                    match chat.presence_visible(me, &users).await {
                        Ok(visible) => Reply::Watch { id, users, visible },
                        Err(e) => Reply::Frames(vec![error_frame(id, &e)]),
                    }
                }));
            }
            ClientFrame::AlertAck { alert, .. } => {
                let alert = alert.event().map_err(fail)?;
                let alerts = self.gw.alerts.clone();
                self.start(async move {
                    vec![match alerts.ack(me, alert).await {
                        Ok(()) => ServerFrame::AlertAcked {
                            id,
                            alert: alert.to_string(),
                        },
                        Err(e) => error_frame(id, &e),
                    }]
                });
            }
            ClientFrame::Report {
                conv, seq, reason, ..
            } => {
                let conv = conv.conv().map_err(fail)?;
                let seq = Seq::parse(seq).map_err(fail)?;
                let reason = jiebanke_chat_core::moderation::report_reason(&reason, self.gw.moderation.filter()).map_err(fail)?;
                let moderation = self.gw.moderation.clone();
                self.start(async move {
                    vec![
                        match moderation.report(me, conv, seq, reason).await {
                            Ok(item) => ServerFrame::Reported {
                                id,
                                item: item.id.to_string(),
                            },
                            Err(e) => error_frame(id, &e),
                        },
                    ]
                });
            }
            ClientFrame::MatchRequest {
                destination, from, to, min_days, ..
            } => {
                let destination = Destination::parse(&destination).map_err(fail)?;
                let (from, to) = (Day::parse(&from).map_err(fail)?, Day::parse(&to).map_err(fail)?);
                let matching = self.gw.matching.clone();
                let req = matching
                    .build_request(me, destination, from, to, min_days, jiebanke_chat_core::now_ms())
                    .map_err(fail)?;
                let gw = self.gw.clone();
                self.start(async move {
                    gw.metrics.match_requests.inc();
                    let off = || CoreError::Forbidden("matching is off in your settings (设置中已关闭结伴匹配)".into());
                    match chat.matchable(me).await {
                        Ok(true) => {}
                        Ok(false) => return vec![error_frame(id, &off())],
                        Err(e) => return vec![error_frame(id, &e)],
                    }
                    let outcome = matching.request(req).await;
                    // Matching turned off while this request was being offered: the settings
                    // change withdrew what waited before it; this one goes too.
                    if matches!(outcome, Ok(MatchOutcome::Waiting { .. })) && matches!(chat.matchable(me).await, Ok(false)) {
                        return match matching.cancel(me).await {
                            Ok(_) => vec![error_frame(id, &off())],
                            Err(e) => vec![error_frame(id, &e)],
                        };
                    }
                    vec![match outcome {
                        Ok(MatchOutcome::Waiting { expires_at }) => ServerFrame::MatchRequested {
                            id,
                            matched: false,
                            match_id: None,
                            expires_at: Some(expires_at),
                        },
                        Ok(MatchOutcome::Matched(p)) => {
                            gw.metrics.match_proposals.inc();
                            ServerFrame::MatchRequested { id, matched: true, match_id: Some(p.id.to_string()), expires_at: None }
                        }
                        Err(e) => error_frame(id, &e),
                    }]
                });
            }
            ClientFrame::Recall { conv, seq, .. } => {
                let conv = conv.conv().map_err(fail)?;
                let seq = Seq::parse(seq).map_err(fail)?;
                self.start(async move {
                    vec![match chat.recall(me, conv, seq).await {
                        Ok(()) => ServerFrame::MsgRecalled { id, conv: conv.to_string(), seq: seq.get() },
                        Err(e) => error_frame(id, &e),
                    }]
                });
            }
            ClientFrame::MatchCancel { .. } => {
                let matching = self.gw.matching.clone();
                self.start(async move {
                    vec![match matching.cancel(me).await {
                        Ok(cancelled) => ServerFrame::MatchCancelled { id, cancelled },
                        Err(e) => error_frame(id, &e),
                    }]
                });
            }
            ClientFrame::PresenceUnsubscribe { users, .. } => {
                let users = users
                    .iter()
                    .map(|u| u.user())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(fail)?;
                for u in users {
                    if self.watched.contains(&u) {
                        self.gw.hub.unwatch(u, &self.shared);
                        self.watched.retain(|w| *w != u);
                        self.gw.chat.unwatch(u);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why a read from the socket failed, as a close reason (RFC 6455 §7.4.1): a message over the
/// hard cap is 1009, invalid UTF-8 in a text frame or close reason 1007, any other framing
/// violation 1002. A broken connection has nobody left to tell.
fn read_error_reason(e: axum::Error) -> CloseReason {
    match e.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => CloseReason::TooLarge,
        Some(tungstenite::Error::Utf8(_)) => CloseReason::InvalidUtf8,
        Some(tungstenite::Error::Protocol(p)) => match p {
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
            | tungstenite::error::ProtocolError::SendAfterClosing
            | tungstenite::error::ProtocolError::ReceivedAfterClosing => CloseReason::ClientClosed,
            _ => CloseReason::ProtocolError,
        },
        _ => CloseReason::ClientClosed,
    }
}

fn error_frame(id: Option<ReqId>, e: &CoreError) -> ServerFrame {
    let message = match e {
        CoreError::Unavailable(_) => "temporarily unavailable; retry with the same cmid".to_owned(),
        other => other.to_string(),
    };
    ServerFrame::error(id, e.code(), message)
}

