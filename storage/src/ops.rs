//! `SqlStore` as the `OpsStore` port: orders and their alerts, moderation items, bans and
//! roles, and the transactional outbox (each event row written in the transaction of its
//! change, payload in JSON).

use crate::store::{corrupt, message_from, placeholders};
use crate::{Dialect, SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::ports::{OpsStore, OutboxCounts, RelayFn, SessionCheck, Verdicts};
use jiebanke_chat_core::*;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

const STATE_PENDING: i64 = 0;
const STATE_SENT: i64 = 1;
const STATE_DEAD: i64 = 2;

/// The outbox payload of an event (JSON, ids as numbers).
pub fn encode_event(ev: &DurableEvent) -> String {
    match ev {
        DurableEvent::OrderPaid(o) => json!({
            "order": o.id.get(), "merchant": o.merchant.get(), "buyer": o.buyer.map(|b| b.get()),
            "item": o.item, "amount_fen": o.amount_fen, "paid_at": o.paid_at,
        }),
        DurableEvent::ModerationCreated(m) => json!({
            "item": m.id.get(), "kind": m.kind.as_str(), "conv": m.conv.get(), "seq": m.seq.get(),
            "author": m.author.get(), "reporter": m.reporter.map(|r| r.get()), "reason": m.reason,
            "words": m.words, "excerpt": m.excerpt, "created_at": m.created_at,
        }),
    }
    .to_string()
}

/// Parses an outbox row's topic and payload back into the event.
pub fn decode_event(topic: &str, payload: &str) -> Result<DurableEvent, String> {
    let v: Value = serde_json::from_str(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let int = |k: &str| v.get(k).and_then(Value::as_i64).ok_or_else(|| format!("`{k}` missing or not an integer"));
    let opt = |k: &str| v.get(k).and_then(Value::as_i64);
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("`{k}` missing"));
    let user = |raw: i64| UserId::new(raw).map_err(|e| e.to_string());
    match topic {
        "order.paid" => Ok(DurableEvent::OrderPaid(Order {
            id: OrderId::new(int("order")?).map_err(|e| e.to_string())?,
            merchant: user(int("merchant")?)?,
            buyer: opt("buyer").map(user).transpose()?,
            item: text("item")?,
            amount_fen: int("amount_fen")?,
            paid_at: int("paid_at")?,
        })),
        "moderation.created" => Ok(DurableEvent::ModerationCreated(ModerationItem {
            id: ModerationId::new(int("item")?).map_err(|e| e.to_string())?,
            kind: ModerationKind::parse(&text("kind")?).map_err(|e| e.to_string())?,
            conv: ConvId::new(int("conv")?).map_err(|e| e.to_string())?,
            seq: Seq::new(int("seq")? as u64),
            author: user(int("author")?)?,
            reporter: opt("reporter").map(user).transpose()?,
            reason: text("reason")?,
            words: v
                .get("words")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            excerpt: text("excerpt")?,
            created_at: int("created_at")?,
        })),
        other => Err(format!("unknown topic {other}")),
    }
}

fn order_from(row: &AnyRow) -> Result<Order, StorageError> {
    let buyer: Option<i64> = row.try_get("buyer_id")?;
    Ok(Order {
        id: OrderId::new(row.try_get("order_id")?).map_err(|_| corrupt("order id"))?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("merchant id"))?,
        buyer: buyer.map(UserId::new).transpose().map_err(|_| corrupt("buyer id"))?,
        item: row.try_get("item")?,
        amount_fen: row.try_get("amount_fen")?,
        paid_at: row.try_get("paid_at")?,
    })
}

const ALERT_SELECT: &str = "SELECT a.id, a.created_at, a.acked_at, o.id AS order_id, o.merchant_id, o.buyer_id, \
     o.item, o.amount_fen, o.paid_at FROM order_alerts a JOIN orders o ON o.id = a.order_id";

fn alert_from(row: &AnyRow) -> Result<OrderAlert, StorageError> {
    let order = order_from(row)?;
    let acked: Option<i64> = row.try_get("acked_at")?;
    Ok(OrderAlert {
        id: EventId::new(row.try_get("id")?).map_err(|_| corrupt("alert id"))?,
        merchant: order.merchant,
        order,
        created_at: row.try_get("created_at")?,
        acked: acked.is_some(),
    })
}

fn item_from(row: &AnyRow) -> Result<ModerationItem, StorageError> {
    let words: String = row.try_get("words")?;
    let reporter: Option<i64> = row.try_get("reporter_id")?;
    Ok(ModerationItem {
        id: ModerationId::new(row.try_get("id")?).map_err(|_| corrupt("item id"))?,
        kind: ModerationKind::parse(&row.try_get::<String, _>("kind")?).map_err(|_| corrupt("item kind"))?,
        conv: ConvId::new(row.try_get("conv_id")?).map_err(|_| corrupt("conv id"))?,
        seq: Seq::new(row.try_get::<i64, _>("seq")? as u64),
        author: UserId::new(row.try_get("author_id")?).map_err(|_| corrupt("author id"))?,
        reporter: reporter.map(UserId::new).transpose().map_err(|_| corrupt("reporter id"))?,
        reason: row.try_get("reason")?,
        words: serde_json::from_str(&words).map_err(|_| corrupt("item words"))?,
        excerpt: row.try_get("excerpt")?,
        created_at: row.try_get("created_at")?,
    })
}

impl SqlStore {
    /// The id the transaction's last `INSERT` generated.
    pub(crate) async fn insert_id(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, res: sqlx::any::AnyQueryResult) -> Result<i64, StorageError> {
        Ok(match res.last_insert_id() {
            Some(id) => id,
            None => sqlx::query(self.dialect.last_insert_id()).fetch_one(&mut **tx).await?.try_get::<i64, _>(0)?,
        })
    }

    async fn insert_outbox(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, ev: &DurableEvent, now: i64) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO outbox (topic, payload, created_at, state) VALUES (?, ?, ?, 0)")
            .bind(ev.topic())
            .bind(encode_event(ev))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Records the relay's verdicts: relayed rows leave the queue, dead ones too (with why).
async fn record_verdicts(conn: &mut sqlx::AnyConnection, verdicts: &Verdicts, now: i64) -> Result<(), StorageError> {
    let sent: Vec<i64> = verdicts.iter().filter(|(_, e)| e.is_none()).map(|(id, _)| id.get()).collect();
    for chunk in sent.chunks(100) {
        let sql = format!("UPDATE outbox SET state = {STATE_SENT}, done_at = ? WHERE id IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    for (id, why) in verdicts {
        if let Some(why) = why {
            let why: String = why.chars().take(900).collect();
            sqlx::query(AssertSqlSafe(format!("UPDATE outbox SET state = {STATE_DEAD}, done_at = ?, error = ? WHERE id = ?")))
                .bind(now)
                .bind(why)
                .bind(id.get())
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Rows of the outbox as events; undecodable rows are returned apart, to be dead-lettered.
fn outbox_rows(rows: &[AnyRow]) -> Result<(Vec<OutboxEvent>, Verdicts), StorageError> {
    let mut events = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for row in rows {
        let id = EventId::new(row.try_get("id")?).map_err(|_| corrupt("event id"))?;
        let topic: String = row.try_get("topic")?;
        let payload: String = row.try_get("payload")?;
        match decode_event(&topic, &payload) {
            Ok(event) => events.push(OutboxEvent { id, event }),
            Err(why) => bad.push((id, Some(why))),
        }
    }
    Ok((events, bad))
}

#[async_trait]
impl OpsStore for SqlStore {
    async fn create_paid_order(&self, order: &NewOrder, now: i64) -> Result<Order> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query("INSERT INTO orders (merchant_id, buyer_id, item, amount_fen, paid_at) VALUES (?, ?, ?, ?, ?)")
                .bind(order.merchant.get())
                .bind(order.buyer.map(|b| b.get()))
                .bind(order.item.as_str().to_owned())
                .bind(order.amount.get())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let id = self.insert_id(&mut tx, res).await?;
            let paid = Order {
                id: OrderId::new(id).map_err(|_| corrupt("order id"))?,
                merchant: order.merchant,
                buyer: order.buyer,
                item: order.item.as_str().to_owned(),
                amount_fen: order.amount.get(),
                paid_at: now,
            };
            self.insert_outbox(&mut tx, &DurableEvent::OrderPaid(paid.clone()), now).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(paid)
        };
        Ok(run.await?)
    }

    async fn record_alert(&self, event: EventId, order: &Order, now: i64) -> Result<OrderAlert> {
        let run = async {
            let sql = format!(
                "{} INTO order_alerts (id, merchant_id, order_id, created_at) VALUES (?, ?, ?, ?)",
                self.dialect.insert_ignore()
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(event.get())
                .bind(order.merchant.get())
                .bind(order.id.get())
                .bind(now)
                .execute(&self.pool)
                .await?;
            let row = sqlx::query(AssertSqlSafe(format!("{ALERT_SELECT} WHERE a.id = ?")))
                .bind(event.get())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| corrupt("alert without its order"))?;
            alert_from(&row)
        };
        Ok(run.await?)
    }

    async fn pending_alerts(&self, merchant: UserId, after: Option<EventId>, limit: u32) -> Result<Vec<OrderAlert>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{ALERT_SELECT} WHERE a.merchant_id = ? AND a.acked_at IS NULL AND a.id > ? ORDER BY a.id LIMIT ?"
        )))
        .bind(merchant.get())
        .bind(after.map(|a| a.get()).unwrap_or(0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StorageError::from)?;
        Ok(rows.iter().map(alert_from).collect::<Result<Vec<_>, _>>()?)
    }

    async fn session_check(&self, user: UserId) -> Result<SessionCheck> {
        let row = sqlx::query(
            "SELECT u.banned_at, u.erased_at, (SELECT COUNT(*) FROM order_alerts a WHERE a.merchant_id = u.id AND a.acked_at IS NULL) AS pending \
             FROM users u WHERE u.id = ?",
        )
        .bind(user.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(StorageError::from)?;
        let Some(row) = row else { return Ok(SessionCheck { banned: true, erased: false, pending_alerts: 0 }) };
        let banned: Option<i64> = row.try_get("banned_at").map_err(StorageError::from)?;
        let erased: Option<i64> = row.try_get("erased_at").map_err(StorageError::from)?;
        let pending: i64 = row.try_get("pending").map_err(StorageError::from)?;
        Ok(SessionCheck { banned: banned.is_some(), erased: erased.is_some(), pending_alerts: pending.max(0) as u64 })
    }

    async fn ack_alert(&self, merchant: UserId, alert: EventId, now: i64) -> Result<bool> {
        let run = async {
            sqlx::query("UPDATE order_alerts SET acked_at = ? WHERE id = ? AND merchant_id = ? AND acked_at IS NULL")
                .bind(now)
                .bind(alert.get())
                .bind(merchant.get())
                .execute(&self.pool)
                .await?;
            // Acking twice is fine: what matters is that the alert is the merchant's.
            let row = sqlx::query("SELECT id FROM order_alerts WHERE id = ? AND merchant_id = ?")
                .bind(alert.get())
                .bind(merchant.get())
                .fetch_optional(&self.pool)
                .await?;
            Ok::<_, StorageError>(row.is_some())
        };
        Ok(run.await?)
    }

    async fn message(&self, conv: ConvId, seq: Seq) -> Result<Option<Message>> {
        let row = sqlx::query(
            "SELECT conv_id, seq, sender_id, cmid, ts, kind, text, deleted_at, recalled_at FROM messages WHERE conv_id = ? AND seq = ?",
        )
        .bind(conv.get())
        .bind(seq.get() as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(StorageError::from)?;
        Ok(row.as_ref().map(message_from).transpose()?)
    }

    async fn create_moderation_item(&self, item: &NewModerationItem, now: i64) -> Result<ModerationItem> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let words = serde_json::to_string(&item.words).unwrap_or_else(|_| "[]".into());
            let res = sqlx::query(
                "INSERT INTO moderation_items (kind, conv_id, seq, author_id, reporter_id, reason, words, excerpt, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(item.kind.as_str())
            .bind(item.conv.get())
            .bind(item.seq.get() as i64)
            .bind(item.author.get())
            .bind(item.reporter.map(|r| r.get()))
            .bind(item.reason.clone())
            .bind(words)
            .bind(item.excerpt.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = self.insert_id(&mut tx, res).await?;
            let stored = ModerationItem {
                id: ModerationId::new(id).map_err(|_| corrupt("item id"))?,
                kind: item.kind,
                conv: item.conv,
                seq: item.seq,
                author: item.author,
                reporter: item.reporter,
                reason: item.reason.clone(),
                words: item.words.clone(),
                excerpt: item.excerpt.clone(),
                created_at: now,
            };
            self.insert_outbox(&mut tx, &DurableEvent::ModerationCreated(stored.clone()), now).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(stored)
        };
        Ok(run.await?)
    }

    async fn moderation_items(&self, after: Option<ModerationId>, limit: u32) -> Result<Vec<ModerationItem>> {
        let rows = sqlx::query(
            "SELECT id, kind, conv_id, seq, author_id, reporter_id, reason, words, excerpt, created_at \
             FROM moderation_items WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after.map(|a| a.get()).unwrap_or(0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StorageError::from)?;
        Ok(rows.iter().map(item_from).collect::<Result<Vec<_>, _>>()?)
    }

    async fn delete_message(&self, conv: ConvId, seq: Seq, now: i64) -> Result<bool> {
        let run = async {
            sqlx::query("UPDATE messages SET deleted_at = ?, text = '' WHERE conv_id = ? AND seq = ? AND deleted_at IS NULL")
                .bind(now)
                .bind(conv.get())
                .bind(seq.get() as i64)
                .execute(&self.pool)
                .await?;
            let row = sqlx::query("SELECT seq FROM messages WHERE conv_id = ? AND seq = ?")
                .bind(conv.get())
                .bind(seq.get() as i64)
                .fetch_optional(&self.pool)
                .await?;
            Ok::<_, StorageError>(row.is_some())
        };
        Ok(run.await?)
    }

    async fn set_banned(&self, user: UserId, banned: bool, now: i64) -> Result<bool> {
        let q = if banned {
            sqlx::query("UPDATE users SET banned_at = COALESCE(banned_at, ?) WHERE id = ?").bind(now)
        } else {
            sqlx::query("UPDATE users SET banned_at = NULL WHERE id = ?")
        };
        q.bind(user.get()).execute(&self.pool).await.map_err(StorageError::from)?;
        Ok(self.exists(user).await?)
    }

    async fn set_admin(&self, user: UserId, admin: bool) -> Result<bool> {
        sqlx::query("UPDATE users SET is_admin = ? WHERE id = ?")
            .bind(i64::from(admin))
            .bind(user.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(self.exists(user).await?)
    }

    async fn relay_outbox(&self, limit: u32, relay: &RelayFn) -> Result<usize> {
        let select = "SELECT id, topic, payload FROM outbox WHERE state = 0 ORDER BY id LIMIT ?";
        let now = jiebanke_chat_core::now_ms();
        let run = async {
            match self.dialect {
                // One process owns a SQLite file, and the in-process handler writes while the
                // batch is out: no transaction is held across `relay`.
                Dialect::Sqlite => {
                    let rows = sqlx::query(select).bind(limit as i64).fetch_all(&self.pool).await?;
                    let (events, mut outcome) = outbox_rows(&rows)?;
                    let n = rows.len();
                    if !events.is_empty() {
                        match relay(events).await {
                            Ok(o) => outcome.extend(o),
                            Err(e) => return Ok(Err(e)),
                        }
                    }
                    let mut conn = self.pool.acquire().await?;
                    record_verdicts(&mut conn, &outcome, now).await?;
                    Ok(Ok(n))
                }
                // Nodes relay side by side: each locks the rows it hands over and skips the
                // rows another node holds, until its verdicts are committed.
                Dialect::MySql => {
                    // READ COMMITTED: the batch's rows are locked, but no gap after them, so
                    // orders committing meanwhile never wait for the broker's confirms.
                    let mut conn = self.pool.acquire().await?;
                    sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *conn).await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let rows = sqlx::query(AssertSqlSafe(format!("{select} FOR UPDATE SKIP LOCKED")))
                        .bind(limit as i64)
                        .fetch_all(&mut *tx)
                        .await?;
                    let (events, mut outcome) = outbox_rows(&rows)?;
                    let n = rows.len();
                    if !events.is_empty() {
                        match relay(events).await {
                            Ok(o) => outcome.extend(o),
                            Err(e) => {
                                // Roll back now: a dropped transaction is only rolled back when
                                // its connection is next used, and until then its rows stay
                                // locked, so the next relay (here or on another node) would
                                // skip them.
                                tx.rollback().await?;
                                return Ok(Err(e));
                            }
                        }
                    }
                    record_verdicts(&mut tx, &outcome, now).await?;
                    tx.commit().await?;
                    Ok(Ok(n))
                }
            }
        };
        let r: Result<Result<usize>, StorageError> = run.await;
        r?
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT state, COUNT(*) AS n FROM outbox WHERE state IN ({STATE_PENDING}, {STATE_DEAD}) GROUP BY state"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(StorageError::from)?;
        let mut c = OutboxCounts::default();
        for row in rows {
            let state: i64 = row.try_get("state").map_err(StorageError::from)?;
            let n: i64 = row.try_get("n").map_err(StorageError::from)?;
            match state {
                STATE_PENDING => c.pending = n as u64,
                STATE_DEAD => c.dead = n as u64,
                _ => {}
            }
        }
        Ok(c)
    }
}

impl SqlStore {
    async fn exists(&self, user: UserId) -> Result<bool, StorageError> {
        Ok(sqlx::query("SELECT id FROM users WHERE id = ?").bind(user.get()).fetch_optional(&self.pool).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_payload() {
        let order = DurableEvent::OrderPaid(Order {
            id: OrderId::new(7).unwrap(),
            merchant: UserId::new(3).unwrap(),
            buyer: None,
            item: "玫瑰 x 9".into(),
            amount_fen: 9900,
            paid_at: 17,
        });
        assert_eq!(decode_event(order.topic(), &encode_event(&order)).unwrap(), order);
        let item = DurableEvent::ModerationCreated(ModerationItem {
            id: ModerationId::new(1).unwrap(),
            kind: ModerationKind::Flagged,
            conv: ConvId::new(2).unwrap(),
            seq: Seq::new(5),
            author: UserId::new(4).unwrap(),
            reporter: Some(UserId::new(6).unwrap()),
            reason: "r".into(),
            words: vec!["赌博".into()],
            excerpt: "e".into(),
            created_at: 9,
        });
        assert_eq!(decode_event(item.topic(), &encode_event(&item)).unwrap(), item);
        assert!(decode_event("order.paid", "{}").is_err());
        assert!(decode_event("nope", "{}").is_err());
        assert!(decode_event("order.paid", "not json").is_err());
    }
}
