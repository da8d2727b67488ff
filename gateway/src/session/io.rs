//! A session's socket and what is on its way into it: the read side polled only when it may
//! have data (`ReadWake`), and the write side fed from the session's shared queue in batches
//! of `WRITE_COALESCE` frames, flushed once per batch.

use crate::frame::{Codec, Outbound};
use crate::hub::{CloseReason, SessionShared};
use crate::Gateway;
use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures_util::task::AtomicWaker;
use futures_util::{Sink, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Most frames handed to the socket between two flushes.
pub(super) const WRITE_COALESCE: usize = 64;
/// A batch buffer that grew past this many slots is given back once it is empty.
const OUT_KEEP: usize = 16;

/// The socket and what is on its way into it.
pub(super) struct Io {
    pub(super) socket: WebSocket,
    /// Frames taken from the shared queue, not yet handed to the socket.
    pub(super) out: VecDeque<Arc<Outbound>>,
    /// Frames were handed to the socket since its last flush.
    pub(super) dirty: bool,
    /// A heartbeat ping is to be sent.
    pub(super) ping_due: bool,
    /// Whether the socket's read side may have something (see `ReadWake`), and the waker the
    /// read side is polled with.
    pub(super) read: Arc<ReadWake>,
    pub(super) read_waker: Waker,
}

/// Wakes the session task for the socket's read side and remembers that it did, so that the
/// task polls the read side only when it may have data, not each time it is woken to write (a
/// read attempt costs a pass through the WebSocket codec, which zeroes its read buffer first).
pub(super) struct ReadWake {
    pub(super) due: AtomicBool,
    pub(super) task: AtomicWaker,
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.due.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Io {
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<WsMessage, axum::Error>>> {
        if !self.read.due.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        self.read.task.register(cx.waker());
        let mut rcx = Context::from_waker(&self.read_waker);
        match self.socket.poll_next_unpin(&mut rcx) {
            Poll::Ready(m) => {
                // There may be more frames buffered already: look again next time.
                self.read.due.store(true, Ordering::Release);
                Poll::Ready(m)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Io {
    /// Hands queued frames (and a due ping) to the socket while it takes them, then flushes.
    /// `Ready` when the socket failed; `Pending` otherwise, with the task woken by the next push
    /// (through `poll_signal`) or by the socket becoming writable.
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        shared: &SessionShared,
        codec: Codec,
        gw: &Gateway,
    ) -> Poll<CloseReason> {
        let mut fed = 0;
        loop {
            if self.out.is_empty() {
                // The waker is registered by `poll_signal`, before this: a push after it wakes us.
                shared.take_queued(&mut self.out);
            }
            if (self.out.is_empty() && !self.ping_due) || fed >= WRITE_COALESCE {
                break;
            }
            match Pin::new(&mut self.socket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(CloseReason::ClientClosed),
                Poll::Pending => break,
            }
            let msg = if self.ping_due {
                self.ping_due = false;
                WsMessage::Ping(Default::default())
            } else {
                let Some(f) = self.out.pop_front() else { break };
                gw.metrics.frame_out(f.frame.type_name());
                f.message(codec)
            };
            if Pin::new(&mut self.socket).start_send(msg).is_err() {
                return Poll::Ready(CloseReason::ClientClosed);
            }
            self.dirty = true;
            fed += 1;
        }
        if self.out.is_empty() && self.out.capacity() > OUT_KEEP {
            self.out = VecDeque::new();
        }
        if self.dirty {
            match Pin::new(&mut self.socket).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.dirty = false,
                Poll::Ready(Err(_)) => return Poll::Ready(CloseReason::ClientClosed),
                Poll::Pending => {}
            }
        }
        if fed >= WRITE_COALESCE && !self.out.is_empty() {
            // More to write: come back after the other sources had their turn.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
