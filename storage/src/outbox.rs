//! The transactional outbox: every durable event is a row written in the transaction of the
//! change it announces (`SqlStore::write_event`, the one way events are written), relayed by
//! `OutboxStore::relay_outbox`; and the payload codec (JSON, ids as numbers).

use crate::store::{corrupt, placeholders};
use crate::{Dialect, SqlStore, StorageError};
use jiebanke_chat_core::ports::{OutboxCounts, OutboxStore, RelayFn, Verdicts};
use serde_json::{json, Value};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::*;
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
            "lines": o.details.lines, "recipient": o.details.recipient,
            "deliver_on": o.details.deliver_on, "slot": o.details.slot,
        }),
        DurableEvent::AnimalUpdated(n) => json!({
            "update": n.update.id, "animal": n.update.animal, "merchant": n.update.merchant.get(),
            "text": n.update.text, "photos": n.update.photos, "created_at": n.update.created_at,
            "claims": n.claims.iter().map(|(u, c)| json!([u.get(), c])).collect::<Vec<_>>(),
        }),
        DurableEvent::OrderChanged(c) => json!({
            "order": c.order.get(), "merchant": c.merchant.get(), "buyer": c.buyer.map(|b| b.get()),
            "state": c.state, "amount_fen": c.amount_fen, "at": c.at,
        }),
        DurableEvent::ModerationCreated(m) => json!({
            "item": m.id.get(), "kind": m.kind.as_str(), "subject_kind": m.subject.kind(), "subject_id": m.subject.id(),
            "author": m.author.get(), "reporter": m.reporter.map(|r| r.get()), "reason": m.reason,
            "words": m.words, "excerpt": m.excerpt, "created_at": m.created_at,
        }),
        DurableEvent::MerchantReviewed(n) => json!({
            "application": n.application.get(), "user": n.user.get(), "status": n.status,
            "reason": n.reason, "at": n.at,
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
            // Payloads written before orders had details have none of these.
            details: OrderDetails {
                lines: v.get("lines").map(|l| serde_json::from_value(l.clone())).transpose().map_err(|e| format!("`lines`: {e}"))?.unwrap_or_default(),
                recipient: v.get("recipient").and_then(Value::as_str).map(str::to_owned),
                deliver_on: v.get("deliver_on").and_then(Value::as_str).map(str::to_owned),
                slot: v.get("slot").and_then(Value::as_str).map(str::to_owned),
            },
        })),
        "moderation.created" => Ok(DurableEvent::ModerationCreated(ModerationItem {
            id: ModerationId::new(int("item")?).map_err(|e| e.to_string())?,
            kind: ModerationKind::parse(&text("kind")?).map_err(|e| e.to_string())?,
            // Payloads written before subjects existed name a message by `conv` and `seq`.
            subject: match (v.get("subject_kind").and_then(Value::as_str), v.get("subject_id").and_then(Value::as_str)) {
                (Some(k), Some(id)) => Subject::parse(k, id).map_err(|e| e.to_string())?,
                _ => Subject::Message { conv: ConvId::new(int("conv")?).map_err(|e| e.to_string())?, seq: Seq::new(int("seq")? as u64) },
            },
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
            // A `moderation.created` event is of a new item.
            status: ModerationStatus::Open,
        })),
        "merchant.reviewed" => Ok(DurableEvent::MerchantReviewed(jiebanke_chat_core::merchants::ReviewNotice {
            application: jiebanke_chat_core::merchants::RecordId::new(int("application")?).map_err(|e| e.to_string())?,
            user: user(int("user")?)?,
            status: text("status")?,
            reason: v.get("reason").and_then(Value::as_str).map(str::to_owned),
            at: int("at")?,
        })),
        "animal.updated" => {
            let claims = v
                .get("claims")
                .and_then(Value::as_array)
                .ok_or("`claims` missing")?
                .iter()
                .map(|pair| {
                    let u = pair.get(0).and_then(Value::as_i64).ok_or("a claim's user is missing")?;
                    let c = pair.get(1).and_then(Value::as_i64).ok_or("a claim's id is missing")?;
                    Ok::<_, String>((user(u)?, c))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(DurableEvent::AnimalUpdated(jiebanke_chat_core::commerce::claims::UpdateNotice {
                update: jiebanke_chat_core::commerce::claims::AnimalUpdate {
                    id: int("update")?,
                    animal: int("animal")?,
                    merchant: user(int("merchant")?)?,
                    text: text("text")?,
                    photos: v.get("photos").map(|p| serde_json::from_value(p.clone())).transpose().map_err(|e| format!("`photos`: {e}"))?.unwrap_or_default(),
                    created_at: int("created_at")?,
                },
                claims,
            }))
        }
        other => match jiebanke_chat_core::commerce::OrderEvent::from_topic(other) {
            Some(event) => Ok(DurableEvent::OrderChanged(jiebanke_chat_core::commerce::orders::OrderChange {
                order: OrderId::new(int("order")?).map_err(|e| e.to_string())?,
                merchant: user(int("merchant")?)?,
                buyer: opt("buyer").map(user).transpose()?,
                event,
                state: text("state")?,
                amount_fen: int("amount_fen")?,
                at: int("at")?,
            })),
            None => Err(format!("unknown topic {other}")),
        },
    }
}

impl SqlStore {
    /// Writes `ev` into the outbox inside `tx`, the transaction of the change it announces: the
    /// change and its event commit together or not at all. Every port that makes a durable
    /// event goes through here.
    pub(crate) async fn write_event(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, ev: &DurableEvent, now: i64) -> Result<(), StorageError> {
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
impl OutboxStore for SqlStore {
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
            details: OrderDetails::default(),
        });
        assert_eq!(decode_event(order.topic(), &encode_event(&order)).unwrap(), order);
        // A payload from before orders had details still decodes, without them.
        let old = r#"{"order":7,"merchant":3,"buyer":null,"item":"玫瑰 x 9","amount_fen":9900,"paid_at":17}"#;
        assert_eq!(decode_event("order.paid", old).unwrap(), order);
        let detailed = DurableEvent::OrderPaid(Order {
            details: OrderDetails {
                lines: vec![("红玫瑰".into(), 2), ("百合".into(), 1)],
                recipient: Some("王* 138****5678".into()),
                deliver_on: Some("2026-12-05".into()),
                slot: Some("morning".into()),
            },
            ..match &order {
                DurableEvent::OrderPaid(o) => o.clone(),
                _ => unreachable!(),
            }
        });
        assert_eq!(decode_event(detailed.topic(), &encode_event(&detailed)).unwrap(), detailed);
        let updated = DurableEvent::AnimalUpdated(jiebanke_chat_core::commerce::claims::UpdateNotice {
            update: jiebanke_chat_core::commerce::claims::AnimalUpdate {
                id: 3,
                animal: 4,
                merchant: UserId::new(5).unwrap(),
                text: "咩咩今天剪毛了".into(),
                photos: vec!["/uploads/a.jpg".into()],
                created_at: 19,
            },
            claims: vec![(UserId::new(6).unwrap(), 7), (UserId::new(8).unwrap(), 9)],
        });
        assert_eq!(decode_event(updated.topic(), &encode_event(&updated)).unwrap(), updated);
        for event in jiebanke_chat_core::commerce::OrderEvent::ALL {
            let changed = DurableEvent::OrderChanged(jiebanke_chat_core::commerce::orders::OrderChange {
                order: OrderId::new(7).unwrap(),
                merchant: UserId::new(3).unwrap(),
                buyer: Some(UserId::new(4).unwrap()),
                event,
                state: "cancelled".into(),
                amount_fen: 9900,
                at: 18,
            });
            assert_eq!(changed.topic(), event.topic());
            if event != jiebanke_chat_core::commerce::OrderEvent::Paid {
                assert_eq!(decode_event(changed.topic(), &encode_event(&changed)).unwrap(), changed);
            }
        }
        let message_item = ModerationItem {
            id: ModerationId::new(1).unwrap(),
            kind: ModerationKind::Flagged,
            subject: Subject::Message { conv: ConvId::new(2).unwrap(), seq: Seq::new(5) },
            author: UserId::new(4).unwrap(),
            reporter: Some(UserId::new(6).unwrap()),
            reason: "r".into(),
            words: vec!["赌博".into()],
            excerpt: "e".into(),
            created_at: 9,
            status: ModerationStatus::Open,
        };
        for subject in [message_item.subject, Subject::User(UserId::new(4).unwrap()), Subject::Appeal(UserId::new(4).unwrap()), Subject::Product(12)] {
            let item = DurableEvent::ModerationCreated(ModerationItem { subject, ..message_item.clone() });
            assert_eq!(decode_event(item.topic(), &encode_event(&item)).unwrap(), item);
        }
        // A payload from before subjects existed still decodes, as a message item.
        let old = r#"{"item":1,"kind":"flagged","conv":2,"seq":5,"author":4,"reporter":6,"reason":"r","words":["赌博"],"excerpt":"e","created_at":9}"#;
        assert_eq!(decode_event("moderation.created", old).unwrap(), DurableEvent::ModerationCreated(message_item));
        for reason in [None, Some("执照模糊".to_owned())] {
            let reviewed = DurableEvent::MerchantReviewed(jiebanke_chat_core::merchants::ReviewNotice {
                application: jiebanke_chat_core::merchants::RecordId::new(3).unwrap(),
                user: UserId::new(8).unwrap(),
                status: if reason.is_some() { "rejected" } else { "approved" }.into(),
                reason,
                at: 11,
            });
            assert_eq!(decode_event(reviewed.topic(), &encode_event(&reviewed)).unwrap(), reviewed);
        }
        assert!(decode_event("order.paid", "{}").is_err());
        assert!(decode_event("nope", "{}").is_err());
        assert!(decode_event("order.paid", "not json").is_err());
    }
}

