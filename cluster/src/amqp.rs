//! `AmqpLink`: durable events through RabbitMQ (lapin).
//!
//! - The relay side (`relay_fn`) publishes outbox events to the `{prefix}.events` topic exchange
//!   (persistent, mandatory, the event id as message id) and reports them relayed only after the
//!   broker confirmed every one (publisher confirms); the outbox marks them sent after that.
//! - The consumer side takes events from `{prefix}.events.handlers` (competing consumers: one
//!   node handles each event), runs the domain's idempotent `EventHandler`, and acks only after
//!   it returned. An event that cannot be handled (undecodable, or a permanent error) is nacked
//!   without requeue and lands in `{prefix}.events.dead` through the dead-letter exchange. While
//!   the handler's dependencies are unavailable it retries in place; an event unacked when the
//!   connection drops is redelivered by the broker.
//! - The program declares its exchanges and queues itself, all durable.
//! - The connection is re-established with backoff; while it is down the relay fails, so the
//!   events stay in the outbox (`healthy()` says false and `/readyz` reports it).

use jiebanke_chat_core::events::EventHandler;
use jiebanke_chat_core::ports::RelayFn;
use jiebanke_chat_core::{CoreError, EventId, OutboxEvent};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bound of a connection attempt and of waiting for a batch's confirms.
const AMQP_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries the broker may have outstanding to this node's consumer.
const PREFETCH: u16 = 64;

#[derive(Debug, Clone)]
pub struct AmqpConfig {
    pub url: String,
    /// Prefix of the exchange and queue names.
    pub prefix: String,
}

impl AmqpConfig {
    pub fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn dead_exchange(&self) -> String {
        format!("{}.events.dlx", self.prefix)
    }
    pub fn queue(&self) -> String {
        format!("{}.events.handlers", self.prefix)
    }
    pub fn dead_queue(&self) -> String {
        format!("{}.events.dead", self.prefix)
    }
}

#[derive(Default)]
pub struct AmqpStats {
    pub published: Counter,
    pub consumed: Counter,
    pub dead_lettered: Counter,
    pub reconnects: Counter,
    /// 1 while connected.
    pub up: Gauge,
}

impl AmqpStats {
    pub fn register(&self, reg: &mut prometheus_client::registry::Registry) {
        reg.register("amqp_published", "Outbox events published to RabbitMQ and confirmed", self.published.clone());
        reg.register("amqp_consumed", "Events handled and acked", self.consumed.clone());
        reg.register("amqp_dead_lettered", "Events nacked to the dead-letter queue", self.dead_lettered.clone());
        reg.register("amqp_reconnects", "RabbitMQ connection losses", self.reconnects.clone());
        reg.register("amqp_up", "1 while the RabbitMQ connection is up", self.up.clone());
    }
}

pub struct AmqpLink {
    cfg: AmqpConfig,
    /// The publishing channel (confirm mode) of the current connection.
    publish: Mutex<Option<Channel>>,
    up: AtomicBool,
    pub stats: AmqpStats,
    stop: CancellationToken,
}

impl AmqpLink {
    pub fn new(cfg: AmqpConfig) -> Arc<Self> {
        Arc::new(AmqpLink { cfg, publish: Mutex::new(None), up: AtomicBool::new(false), stats: AmqpStats::default(), stop: CancellationToken::new() })
    }

    pub fn healthy(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Connects (again and again) and consumes with `handler` until `stop`. Returns once the
    /// first connection is up, or after `AMQP_TIMEOUT` degraded.
    pub async fn start(self: &Arc<Self>, handler: Arc<EventHandler>) {
        let (up_tx, up_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(self.clone().run(handler, up_tx));
        let _ = tokio::time::timeout(AMQP_TIMEOUT, up_rx).await;
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    async fn run(self: Arc<Self>, handler: Arc<EventHandler>, up: tokio::sync::oneshot::Sender<()>) {
        let mut up = Some(up);
        let mut backoff = Duration::from_millis(100);
        loop {
            let r = tokio::select! {
                r = self.connection(&handler, &mut up) => r,
                _ = self.stop.cancelled() => return,
            };
            *self.publish.lock().unwrap_or_else(|e| e.into_inner()) = None;
            if self.up.swap(false, Ordering::Relaxed) {
                backoff = Duration::from_millis(100);
            }
            self.stats.up.set(0);
            self.stats.reconnects.inc();
            if let Err(e) = r {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "rabbitmq connection lost; outbox events wait");
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// One connection's life: declare, consume, serve until it breaks.
    async fn connection(&self, handler: &Arc<EventHandler>, up: &mut Option<tokio::sync::oneshot::Sender<()>>) -> anyhow::Result<()> {
        let conn = tokio::time::timeout(AMQP_TIMEOUT, Connection::connect(&self.cfg.url, ConnectionProperties::default())).await??;
        let setup = conn.create_channel().await?;
        self.declare(&setup).await?;
        let publish = conn.create_channel().await?;
        publish.confirm_select(ConfirmSelectOptions::default()).await?;
        let consume = conn.create_channel().await?;
        consume.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let mut consumer = consume
            .basic_consume(self.cfg.queue().as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        *self.publish.lock().unwrap_or_else(|e| e.into_inner()) = Some(publish);
        self.up.store(true, Ordering::Relaxed);
        self.stats.up.set(1);
        tracing::info!("rabbitmq connected; consuming durable events");
        if let Some(up) = up.take() {
            let _ = up.send(());
        }
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery?;
            let id = delivery.properties.message_id().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
            let topic = delivery.routing_key.as_str().to_owned();
            let decoded = std::str::from_utf8(&delivery.data)
                .map_err(|e| e.to_string())
                .and_then(|payload| {
                    let id = EventId::parse(&id).map_err(|e| e.to_string())?;
                    let event = jiebanke_storage::decode_event(&topic, payload)?;
                    Ok(OutboxEvent { id, event })
                });
            let event = match decoded {
                Ok(ev) => ev,
                Err(why) => {
                    tracing::warn!(%why, %topic, "undecodable event dead-lettered");
                    delivery.nack(BasicNackOptions { requeue: false, multiple: false }).await?;
                    self.stats.dead_lettered.inc();
                    continue;
                }
            };
            let mut wait = Duration::from_millis(100);
            loop {
                match handler.handle(&event).await {
                    Ok(()) => {
                        delivery.ack(BasicAckOptions::default()).await?;
                        self.stats.consumed.inc();
                        break;
                    }
                    // Retried in place: the delivery stays unacked, so if this node dies the
                    // broker gives it to another.
                    Err(CoreError::Unavailable(e)) => {
                        tracing::warn!(error = %e, event = %event.id, "event handler unavailable; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(jiebanke_chat_core::events::RELAY_RETRY_MAX);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, event = %event.id, "event cannot be handled; dead-lettered");
                        delivery.nack(BasicNackOptions { requeue: false, multiple: false }).await?;
                        self.stats.dead_lettered.inc();
                        break;
                    }
                }
            }
        }
        anyhow::bail!("consumer stream ended")
    }

    async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        ch.exchange_declare(self.cfg.exchange().as_str().into(), ExchangeKind::Topic, durable, FieldTable::default()).await?;
        ch.exchange_declare(self.cfg.dead_exchange().as_str().into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
        let q = QueueDeclareOptions { durable: true, ..Default::default() };
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(self.cfg.dead_exchange().as_str().into()));
        ch.queue_declare(self.cfg.queue().as_str().into(), q, args).await?;
        ch.queue_declare(self.cfg.dead_queue().as_str().into(), q, FieldTable::default()).await?;
        ch.queue_bind(self.cfg.queue().as_str().into(), self.cfg.exchange().as_str().into(), "#".into(), QueueBindOptions::default(), FieldTable::default())
            .await?;
        ch.queue_bind(self.cfg.dead_queue().as_str().into(), self.cfg.dead_exchange().as_str().into(), "".into(), QueueBindOptions::default(), FieldTable::default())
            .await?;
        Ok(())
    }

    /// The outbox relay through RabbitMQ: a batch is relayed once every event of it is confirmed.
    pub fn relay_fn(self: &Arc<Self>) -> Arc<RelayFn> {
        let this = self.clone();
        Arc::new(move |events: Vec<OutboxEvent>| {
            let this = this.clone();
            Box::pin(async move {
                let channel = this
                    .publish
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .ok_or_else(|| CoreError::unavailable("rabbitmq is down"))?;
                let fail = |e: &dyn std::fmt::Display| CoreError::unavailable(format!("rabbitmq: {e}"));
                let publish_all = async {
                    let mut confirms = Vec::with_capacity(events.len());
                    for ev in &events {
                        let props = BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into())
                            .with_message_id(ev.id.to_string().as_str().into());
                        let payload = jiebanke_storage::encode_event(&ev.event);
                        let c = channel
                            .basic_publish(
                                this.cfg.exchange().as_str().into(),
                                ev.event.topic().into(),
                                BasicPublishOptions { mandatory: true, ..Default::default() },
                                payload.as_bytes(),
                                props,
                            )
                            .await
                            .map_err(|e| fail(&e))?;
                        confirms.push(c);
                    }
                    for c in confirms {
                        let confirmation = c.await.map_err(|e| fail(&e))?;
                        let routed = confirmation.is_ack() && confirmation.take_message().is_none();
                        if !routed {
                            return Err(CoreError::unavailable("rabbitmq did not take an event (nack or unroutable)"));
                        }
                    }
                    Ok(())
                };
                tokio::time::timeout(AMQP_TIMEOUT, publish_all).await.map_err(|_| CoreError::unavailable("rabbitmq confirms timed out"))??;
                this.stats.published.inc_by(events.len() as u64);
                Ok(events.iter().map(|e| (e.id, None)).collect())
            })
        })
    }
}
