//! Group commit: the one writer in front of a `MessageStore`.
//!
//! Sends from every session queue here; the writer takes whatever has queued (up to
//! `max_batch`) and stores it in one transaction, then answers each sender and publishes the new
//! messages on the bus in seq order. Throughput comes from batching under load, never from
//! answering before the write: an `Appended` is only returned after `MessageStore::append`
//! returned `Ok`, i.e. after the commit.

use crate::error::{CoreError, Result};
use crate::model::{Appended, NewMessage};
use crate::ports::{Bus, Event, MessageStore};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Waits between attempts at a batch that failed; after the last, the senders get `unavailable`.
const RETRIES: [std::time::Duration; 2] =
    [std::time::Duration::from_millis(20), std::time::Duration::from_millis(100)];

struct Pending {
    message: NewMessage,
    origin: Option<crate::ids::SessionId>,
    reply: oneshot::Sender<Result<Appended>>,
}

#[derive(Debug, Clone, Copy)]
pub struct CommitConfig {
    /// Most messages in one transaction.
    pub max_batch: usize,
    /// Bound of the queue in front of the writer; senders wait when it is full.
    pub queue: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self { max_batch: 4096, queue: 16384 }
    }
}

/// Handle to the writer task. Cloning shares the one writer.
#[derive(Clone)]
pub struct Committer {
    /// Bounded by `CommitConfig::queue`; a full queue makes `append` wait (backpressure on the
    /// sending connection), never drops. Closed when every handle is dropped, which ends the
    /// writer after it has stored what was queued.
    tx: mpsc::Sender<Pending>,
}

impl Committer {
    /// Starts the writer. It runs until every `Committer` handle is dropped, then finishes the
    /// queued batches and returns.
    pub fn spawn(
        store: Arc<dyn MessageStore>,
        bus: Arc<dyn Bus>,
        config: CommitConfig,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let handle = tokio::spawn(run(store, bus, rx, config.max_batch.max(1)));
        (Committer { tx }, handle)
    }

    /// Stores the message and returns its seq once it is durable.
    pub async fn append(
        &self,
        message: NewMessage,
        origin: Option<crate::ids::SessionId>,
    ) -> Result<Appended> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { message, origin, reply })
            .await
            .map_err(|_| CoreError::unavailable("message writer stopped"))?;
        rx.await
            .map_err(|_| CoreError::unavailable("message writer stopped"))?
    }
}

async fn run(
    store: Arc<dyn MessageStore>,
    bus: Arc<dyn Bus>,
    mut rx: mpsc::Receiver<Pending>,
    max_batch: usize,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let messages: Vec<NewMessage> = batch.iter().map(|p| p.message.clone()).collect();
        // A failed transaction stored nothing, so trying it again is safe; transient failures
        // (lock timeouts, deadlocks, a dropped connection) often pass on the next attempt.
        let mut attempt = 0;
        let first_try_ms = crate::now_ms();
        let outcome = loop {
            match store.append(&messages, crate::now_ms()).await {
                Err(CoreError::Unavailable(_)) if attempt < RETRIES.len() => {
                    tokio::time::sleep(RETRIES[attempt]).await;
                    attempt += 1;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(mut results) => {
                if attempt > 0 {
                    // A failed attempt may in fact have committed (the error came after the
                    // commit reached the database). Its messages then come back as duplicates
                    // stamped after this batch began: they were never answered nor delivered,
                    // so they are new to everyone.
                    for r in results.iter_mut() {
                        if let Ok(Appended::Duplicate(m)) = r {
                            if m.ts >= first_try_ms {
                                *r = Ok(Appended::New(m.clone()));
                            }
                        }
                    }
                }
                for (pending, result) in batch.drain(..).zip(results) {
                    if let Ok(Appended::New(m)) = &result {
                        bus.publish(Event::Message {
                            members: pending.message.members.clone(),
                            origin: pending.origin.clone(),
                            message: Arc::new(m.clone()),
                        });
                    }
                    let _ = pending.reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, n = batch.len(), "message batch not stored");
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(CoreError::unavailable("storage unavailable")));
                }
            }
        }
    }
}
