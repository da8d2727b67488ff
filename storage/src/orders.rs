//! `SqlStore` as `OrderStore` (paid orders, each with its `order.paid` event) and `AlertStore`
//! (merchants' alerts of those events).

use crate::store::corrupt;
use crate::{SqlStore, StorageError};
use jiebanke_chat_core::ports::{AlertStore, OrderStore, SessionCheck};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::*;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

fn order_from(row: &AnyRow) -> Result<Order, StorageError> {
    let buyer: Option<i64> = row.try_get("buyer_id")?;
    Ok(Order {
        id: OrderId::new(row.try_get("order_id")?).map_err(|_| corrupt("order id"))?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("merchant id"))?,
        buyer: buyer.map(UserId::new).transpose().map_err(|_| corrupt("buyer id"))?,
        item: row.try_get("item")?,
        amount_fen: row.try_get("amount_fen")?,
        paid_at: row.try_get::<Option<i64>, _>("paid_at")?.unwrap_or(0),
        details: details_from(row)?,
    })
}

/// What an alert shows of the order beyond its total.
fn details_from(row: &AnyRow) -> Result<OrderDetails, StorageError> {
    let lines: Option<String> = row.try_get("order_lines")?;
    let lines: Vec<jiebanke_chat_core::commerce::orders::OrderLine> = match lines.as_deref() {
        None | Some("") => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|_| corrupt("order lines"))?,
    };
    Ok(OrderDetails {
        lines: lines.into_iter().map(|l| (l.title, l.quantity)).collect(),
        recipient: row.try_get("recipient_masked")?,
        deliver_on: row
            .try_get::<Option<i64>, _>("deliver_on")?
            .map(|d| jiebanke_chat_core::matching::Day::from_days(d as i32).to_string()),
        slot: row.try_get("slot")?,
    })
}

const ALERT_SELECT: &str = "SELECT a.id, a.created_at, a.acked_at, o.id AS order_id, o.merchant_id, o.buyer_id, \
     o.item, o.amount_fen, o.paid_at, o.order_lines, o.recipient_masked, o.deliver_on, o.slot \
     FROM order_alerts a JOIN orders o ON o.id = a.order_id";

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

#[async_trait]
impl OrderStore for SqlStore {
    async fn create_paid_order(&self, order: &NewOrder, now: i64) -> Result<Order> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query(
                "INSERT INTO orders (merchant_id, buyer_id, kind, state, item, amount_fen, order_lines, created_at, updated_at, paid_at) \
                 VALUES (?, ?, 'manual', 'paid', ?, ?, '[]', ?, ?, ?)",
            )
            .bind(order.merchant.get())
            .bind(order.buyer.map(|b| b.get()))
            .bind(order.item.as_str().to_owned())
            .bind(order.amount.get())
            .bind(now)
            .bind(now)
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
                details: OrderDetails::default(),
            };
            self.write_event(&mut tx, &DurableEvent::OrderPaid(paid.clone()), now).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(paid)
        };
        Ok(run.await?)
    }
}

#[async_trait]
impl AlertStore for SqlStore {
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
}
