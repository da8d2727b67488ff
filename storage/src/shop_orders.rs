//! `SqlStore` as `ShopOrderStore`: orders placed, moved by the state machine and listed; the
//! stock they take and give back; the lease of the expiry job. Each change is one transaction
//! with its outbox event, and moves an order only from the state its caller read.

use crate::store::corrupt;
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::commerce::orders::*;
use jiebanke_chat_core::commerce::rules::{self, DeliverySlot};
use jiebanke_chat_core::commerce::{when_claim_cancelled, ClaimLife, OrderEvent, OrderState, Transition};
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::matching::Day;
use jiebanke_chat_core::{CoreError, DurableEvent, FieldProblem, Order, OrderDetails, OrderId, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

pub(crate) const COLS: &str = "id, merchant_id, buyer_id, kind, state, item, amount_fen, order_lines, recipient_sealed, recipient_masked, \
     deliver_on, slot, note, created_at, updated_at, expires_at, paid_at, provider, transaction_id, refund_reason, late_paid_at, claim_id";

pub(crate) fn shop_order_from(row: &AnyRow) -> Result<ShopOrder, StorageError> {
    let lines: Option<String> = row.try_get("order_lines")?;
    let lines: Vec<OrderLine> = match lines.as_deref() {
        None | Some("") => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|_| corrupt("order lines"))?,
    };
    let buyer: Option<i64> = row.try_get("buyer_id")?;
    let slot: Option<String> = row.try_get("slot")?;
    Ok(ShopOrder {
        id: OrderId::new(row.try_get("id")?).map_err(|_| corrupt("order id"))?,
        kind: OrderKind::parse(&row.try_get::<String, _>("kind")?).ok_or_else(|| corrupt("order kind"))?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("order merchant"))?,
        buyer: buyer.map(UserId::new).transpose().map_err(|_| corrupt("order buyer"))?,
        state: OrderState::from_stored(&row.try_get::<String, _>("state")?).ok_or_else(|| corrupt("order state"))?,
        item: row.try_get("item")?,
        amount_fen: row.try_get("amount_fen")?,
        lines,
        recipient_sealed: row.try_get("recipient_sealed")?,
        recipient_masked: row.try_get("recipient_masked")?,
        deliver_on: row.try_get("deliver_on")?,
        slot: slot.as_deref().map(|s| DeliverySlot::parse(s).ok_or_else(|| corrupt("order slot"))).transpose()?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        expires_at: row.try_get("expires_at")?,
        paid_at: row.try_get("paid_at")?,
        provider: row.try_get("provider")?,
        transaction_id: row.try_get("transaction_id")?,
        refund_reason: row.try_get("refund_reason")?,
        late_paid_at: row.try_get("late_paid_at")?,
        claim: row.try_get("claim_id")?,
    })
}

/// The order as its merchant's alert shows it.
pub(crate) fn alert_order(o: &ShopOrder) -> Order {
    Order {
        id: o.id,
        merchant: o.merchant,
        buyer: o.buyer,
        item: o.item.clone(),
        amount_fen: o.amount_fen,
        paid_at: o.paid_at.unwrap_or(o.updated_at),
        details: OrderDetails {
            lines: o.lines.iter().map(|l| (l.title.clone(), l.quantity)).collect(),
            recipient: o.recipient_masked.clone(),
            deliver_on: o.deliver_on.map(|d| Day::from_days(d as i32).to_string()),
            slot: o.slot.map(|s| s.as_str().to_owned()),
        },
    }
}

fn change_event(o: &ShopOrder, event: OrderEvent, now: i64) -> DurableEvent {
    DurableEvent::OrderChanged(OrderChange {
        order: o.id,
        merchant: o.merchant,
        buyer: o.buyer,
        event,
        state: o.state.stored().to_owned(),
        amount_fen: o.amount_fen,
        at: now,
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl SqlStore {
    async fn order_in(&self, tx: &mut Tx, id: OrderId) -> Result<Option<ShopOrder>, StorageError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM orders WHERE id = ?"))).bind(id.get()).fetch_optional(&mut **tx).await?;
        row.as_ref().map(shop_order_from).transpose()
    }

    /// The lines of `order` as priced now, checked to be on sale by one merchant; `Err` with
    /// what to answer if not.
    async fn price_lines(&self, tx: &mut Tx, items: &[(i64, u32)]) -> Result<Result<(UserId, Vec<OrderLine>), CoreError>, StorageError> {
        let mut merchant: Option<i64> = None;
        let mut lines = Vec::with_capacity(items.len());
        let mut bad = Vec::new();
        for (i, (product, quantity)) in items.iter().enumerate() {
            let row = sqlx::query(
                "SELECT p.merchant_id, p.title, p.price_fen, p.hidden_at, m.status FROM products p \
                 LEFT JOIN merchants m ON m.id = p.merchant_id WHERE p.id = ?",
            )
            .bind(*product)
            .fetch_optional(&mut **tx)
            .await?;
            let on_sale = row.as_ref().map(|r| {
                Ok::<_, StorageError>((
                    r.try_get::<Option<i64>, _>("hidden_at")?.is_none() && r.try_get::<Option<String>, _>("status")?.as_deref() == Some("active"),
                    r.try_get::<i64, _>("merchant_id")?,
                ))
            });
            match (row, on_sale.transpose()?) {
                (Some(r), Some((true, m))) => {
                    if merchant.is_some_and(|first| first != m) {
                        bad.push(FieldProblem::new(format!("items[{i}].product"), "all products of an order must be of one merchant"));
                    }
                    merchant.get_or_insert(m);
                    lines.push(OrderLine { product: *product, title: r.try_get("title")?, price_fen: r.try_get("price_fen")?, quantity: *quantity });
                }
                _ => bad.push(FieldProblem::new(format!("items[{i}].product"), "no such product on sale")),
            }
        }
        if !bad.is_empty() {
            return Ok(Err(CoreError::Fields(bad)));
        }
        let Some(merchant) = merchant else { return Ok(Err(CoreError::invalid("an order holds at least one product"))) };
        let merchant = UserId::new(merchant).map_err(|_| corrupt("product merchant"))?;
        Ok(Ok((merchant, lines)))
    }

    async fn place(&self, order: &NewShopOrder, now: i64) -> Result<Result<ShopOrder, CoreError>, StorageError> {
        let mut tx = self.begin_write().await?;
        let (merchant, lines) = match self.price_lines(&mut tx, &order.items).await? {
            Ok(v) => v,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(e));
            }
        };
        let priced: Vec<(i64, u32)> = lines.iter().map(|l| (l.price_fen, l.quantity)).collect();
        let amount = match rules::amount(&priced) {
            Ok(a) => a,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(e));
            }
        };
        // Stock is taken in product order, so that two orders of the same products never wait
        // on each other's row locks in opposite orders (MySQL would end one as a deadlock).
        let mut by_product: Vec<&OrderLine> = lines.iter().collect();
        by_product.sort_by_key(|l| l.product);
        for line in by_product {
            let taken = sqlx::query("UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?")
                .bind(i64::from(line.quantity))
                .bind(line.product)
                .bind(i64::from(line.quantity))
                .execute(&mut *tx)
                .await?;
            if taken.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Err(CoreError::OutOfStock(format!("not enough of product {} ({}) is left", line.product, line.title))));
            }
        }
        let item = summary(&lines);
        let lines_json = serde_json::to_string(&lines).map_err(|_| corrupt("order lines"))?;
        let res = sqlx::query(
            "INSERT INTO orders (merchant_id, buyer_id, kind, state, item, amount_fen, order_lines, recipient_sealed, recipient_masked, \
             deliver_on, slot, note, created_at, updated_at, expires_at) VALUES (?, ?, 'flower', 'created', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(merchant.get())
        .bind(order.buyer.get())
        .bind(item)
        .bind(amount)
        .bind(lines_json)
        .bind(order.recipient_sealed.clone())
        .bind(order.recipient_masked.clone())
        .bind(order.deliver_on)
        .bind(order.slot.as_str())
        .bind(order.note.clone())
        .bind(now)
        .bind(now)
        .bind(order.expires_at)
        .execute(&mut *tx)
        .await?;
        let id = OrderId::new(self.insert_id(&mut tx, res).await?).map_err(|_| corrupt("order id"))?;
        let placed = self.order_in(&mut tx, id).await?.ok_or_else(|| corrupt("order just placed"))?;
        self.write_event(&mut tx, &change_event(&placed, OrderEvent::Created, now), now).await?;
        tx.commit().await?;
        Ok(Ok(placed))
    }

    async fn move_order(&self, id: OrderId, from: OrderState, tr: &Transition, change: &Change, now: i64) -> Result<Option<ShopOrder>, StorageError> {
        let mut tx = self.begin_write().await?;
        // An order of a claim moves under its claim's lock, taken first (every path that moves
        // a claim or its orders takes the claim first: no deadlock), and only if the claim
        // still stands as the caller assumed when it chose `tr`.
        let claim: Option<i64> = sqlx::query("SELECT claim_id FROM orders WHERE id = ?").bind(id.get()).fetch_optional(&mut *tx).await?.map(|r| r.try_get("claim_id")).transpose()?.flatten();
        if let Some(claim) = claim {
            let life = self.claim_life_in(&mut tx, claim).await?;
            let stale = match tr.event {
                OrderEvent::Paid => life != ClaimLife::Live,
                OrderEvent::RefundRejected => life == ClaimLife::Cancelled,
                _ => false,
            };
            if stale {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let paying = tr.event == OrderEvent::Paid;
        let late = tr.event == OrderEvent::LatePayment;
        let (provider, transaction) = change.payment.clone().unzip();
        let sql = format!(
            "UPDATE orders SET state = ?, updated_at = ?, \
             paid_at = CASE WHEN ? = 1 THEN ? ELSE paid_at END, \
             late_paid_at = CASE WHEN ? = 1 THEN ? ELSE late_paid_at END, \
             provider = COALESCE(?, provider), transaction_id = COALESCE(?, transaction_id), \
             refund_reason = COALESCE(?, refund_reason) \
             WHERE id = ? AND state = ?{}",
            if late { " AND late_paid_at IS NULL" } else { "" }
        );
        let moved = sqlx::query(AssertSqlSafe(sql))
            .bind(tr.to.stored())
            .bind(now)
            .bind(i64::from(paying))
            .bind(now)
            .bind(i64::from(late))
            .bind(now)
            .bind(provider)
            .bind(transaction)
            .bind(change.refund_reason.clone())
            .bind(id.get())
            .bind(from.stored())
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let order = self.order_in(&mut tx, id).await?.ok_or_else(|| corrupt("order just moved"))?;
        if order.kind == OrderKind::Claim {
            self.claim_follows(&mut tx, &order, tr, now).await?;
        } else if tr.restock {
            for line in &order.lines {
                sqlx::query("UPDATE products SET stock = stock + ? WHERE id = ?")
                    .bind(i64::from(line.quantity))
                    .bind(line.product)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if let Some(entry) = &change.audit {
            let mut entry = entry.clone();
            entry.before = Some(serde_json::json!({ "state": from.as_str() }));
            entry.after = Some(serde_json::json!({ "state": tr.to.as_str() }));
            self.write_audit(&mut tx, &entry, now).await?;
        }
        let event = if paying { DurableEvent::OrderPaid(alert_order(&order)) } else { change_event(&order, tr.event, now) };
        self.write_event(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(Some(order))
    }
}

impl SqlStore {
    /// What a claim order's transition does to its claim, in the transition's transaction:
    /// paid, the claim is active (or extended) by the periods it bought; its first order
    /// cancelled or refunded, the claim is cancelled and its slot freed; a renewal refunded,
    /// the claim is shortened by what it bought.
    async fn claim_follows(&self, tx: &mut Tx, order: &ShopOrder, tr: &Transition, now: i64) -> Result<(), StorageError> {
        use jiebanke_chat_core::commerce::claims::claim_span_ms;
        let Some(claim) = order.claim else { return Ok(()) };
        let row = sqlx::query("SELECT animal_id, state, period_days, first_order_id, ends_at FROM claims WHERE id = ?").bind(claim).fetch_optional(&mut **tx).await?;
        let Some(row) = row else { return Err(corrupt("a claim order without its claim")) };
        let periods: u32 = order.lines.first().map(|l| l.quantity).unwrap_or(0);
        let span = claim_span_ms(periods, row.try_get::<i64, _>("period_days")?.clamp(0, i64::from(u16::MAX)) as u16);
        let state: String = row.try_get("state")?;
        let first = row.try_get::<i64, _>("first_order_id")? == order.id.get();
        let animal: i64 = row.try_get("animal_id")?;
        if tr.event == OrderEvent::Paid {
            // From now for a new claim (or one whose time ran out), from its end for a renewal.
            let ends_at: Option<i64> = row.try_get("ends_at")?;
            let from = ends_at.filter(|e| *e > now && state == "active").unwrap_or(now);
            sqlx::query("UPDATE claims SET state = 'active', started_at = COALESCE(started_at, ?), ends_at = ? WHERE id = ? AND state IN ('pending', 'active')")
                .bind(now)
                .bind(from + span)
                .bind(claim)
                .execute(&mut **tx)
                .await?;
        } else if (tr.restock || tr.event == OrderEvent::Refunded) && first && (state == "pending" || state == "active") {
            sqlx::query("UPDATE claims SET state = 'cancelled', ends_at = ? WHERE id = ?").bind(now).bind(claim).execute(&mut **tx).await?;
            sqlx::query("UPDATE animals SET slots_free = slots_free + 1 WHERE id = ?").bind(animal).execute(&mut **tx).await?;
            // None of a cancelled claim's money is kept: its unpaid renewals are cancelled, its
            // paid ones refunded (their `order.refunded` events ask the provider, once each).
            self.claim_orders_follow(tx, claim, order.id, when_claim_cancelled, now).await?;
        } else if tr.event == OrderEvent::Refunded && !first && state == "active" {
            sqlx::query("UPDATE claims SET ends_at = ends_at - ? WHERE id = ?").bind(span).bind(claim).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

fn life_of(state: &str) -> Result<ClaimLife, StorageError> {
    Ok(match state {
        "pending" | "active" => ClaimLife::Live,
        "ended" => ClaimLife::Ended,
        "cancelled" => ClaimLife::Cancelled,
        _ => return Err(corrupt("claim state")),
    })
}

impl SqlStore {
    /// Where claim `claim` stands, its row locked until the transaction ends.
    pub(crate) async fn claim_life_in(&self, tx: &mut Tx, claim: i64) -> Result<ClaimLife, StorageError> {
        let sql = format!("SELECT state FROM claims WHERE id = ?{}", self.dialect.for_update());
        let row = sqlx::query(AssertSqlSafe(sql)).bind(claim).fetch_optional(&mut **tx).await?;
        life_of(&row.ok_or_else(|| corrupt("a claim order without its claim"))?.try_get::<String, _>("state")?)
    }

    /// Moves every order of `claim` but `except` as `rule` says (the claim was cancelled or
    /// ended, in this transaction, under its lock), each with its event.
    pub(crate) async fn claim_orders_follow(
        &self,
        tx: &mut Tx,
        claim: i64,
        except: OrderId,
        rule: fn(OrderState) -> Option<Transition>,
        now: i64,
    ) -> Result<(), StorageError> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM orders WHERE claim_id = ? AND id <> ? ORDER BY id")))
            .bind(claim)
            .bind(except.get())
            .fetch_all(&mut **tx)
            .await?;
        for row in &rows {
            let other = shop_order_from(row)?;
            let Some(tr) = rule(other.state) else { continue };
            let reason = tr.refund_money.then_some("认领已取消，退回续认款 (the claim was cancelled)");
            let moved = sqlx::query("UPDATE orders SET state = ?, updated_at = ?, refund_reason = COALESCE(?, refund_reason) WHERE id = ? AND state = ?")
                .bind(tr.to.stored())
                .bind(now)
                .bind(reason)
                .bind(other.id.get())
                .bind(other.state.stored())
                .execute(&mut **tx)
                .await?;
            if moved.rows_affected() == 1 {
                let after = ShopOrder { state: tr.to, ..other };
                self.write_event(tx, &change_event(&after, tr.event, now), now).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ShopOrderStore for SqlStore {
    async fn merchant_active(&self, merchant: UserId) -> Result<bool> {
        let row = sqlx::query("SELECT status FROM merchants WHERE id = ?").bind(merchant.get()).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        let status: Option<String> = row.map(|r| r.try_get("status")).transpose().map_err(StorageError::from)?;
        Ok(status.as_deref() == Some("active"))
    }

    async fn claim_life(&self, claim: i64) -> Result<ClaimLife> {
        let row = sqlx::query("SELECT state FROM claims WHERE id = ?").bind(claim).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        let state: String = row.ok_or_else(|| corrupt("a claim order without its claim"))?.try_get("state").map_err(StorageError::from)?;
        Ok(life_of(&state)?)
    }

    async fn place_order(&self, order: &NewShopOrder, now: i64) -> Result<ShopOrder> {
        self.place(order, now).await?
    }

    async fn order(&self, id: OrderId) -> Result<Option<ShopOrder>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM orders WHERE id = ?")))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.as_ref().map(shop_order_from).transpose()?)
    }

    async fn transition(&self, id: OrderId, from: OrderState, tr: &Transition, change: &Change, now: i64) -> Result<Option<ShopOrder>> {
        Ok(self.move_order(id, from, tr, change, now).await?)
    }

    async fn orders(&self, filter: &OrderFilter, before: Option<i64>, limit: u32) -> Result<Vec<ShopOrder>> {
        let mut sql = format!("SELECT {COLS} FROM orders WHERE id < ?");
        if filter.buyer.is_some() {
            sql.push_str(" AND buyer_id = ?");
        }
        if filter.merchant.is_some() {
            sql.push_str(" AND merchant_id = ?");
        }
        let states: Vec<&'static str> = match filter.state {
            Some(want) => OrderState::ALL.into_iter().filter(|s| s.as_str() == want).map(OrderState::stored).collect(),
            None => Vec::new(),
        };
        if filter.state.is_some() {
            sql.push_str(&format!(" AND state IN ({})", crate::store::placeholders(states.len().max(1))));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(before.unwrap_or(i64::MAX));
        if let Some(b) = filter.buyer {
            q = q.bind(b.get());
        }
        if let Some(m) = filter.merchant {
            q = q.bind(m.get());
        }
        if filter.state.is_some() {
            if states.is_empty() {
                q = q.bind("none");
            }
            for s in states {
                q = q.bind(s);
            }
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(shop_order_from).collect::<Result<_, _>>()?)
    }

    async fn merchant_stats(&self, merchant: UserId, since: i64, offset_ms: i64) -> Result<MerchantStats> {
        let run = async {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM orders WHERE merchant_id = ? GROUP BY state").bind(merchant.get()).fetch_all(&self.pool).await?;
            let mut by_state = Vec::new();
            for r in &rows {
                by_state.push((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?.max(0) as u64));
            }
            let day = match self.dialect {
                crate::Dialect::Sqlite => "(paid_at + ?) / 86400000",
                crate::Dialect::MySql => "(paid_at + ?) DIV 86400000",
            };
            let cast = match self.dialect {
                crate::Dialect::Sqlite => "INTEGER",
                crate::Dialect::MySql => "SIGNED",
            };
            let sql = format!(
                "SELECT CAST({day} AS {cast}) AS day, CAST(SUM(amount_fen) AS {cast}) AS fen, COUNT(*) AS n FROM orders \
                 WHERE merchant_id = ? AND paid_at >= ? AND state NOT IN ('refunded', 'cancelled') GROUP BY CAST({day} AS {cast})"
            );
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(offset_ms).bind(merchant.get()).bind(since).bind(offset_ms).fetch_all(&self.pool).await?;
            let mut days = Vec::new();
            for r in &rows {
                days.push((r.try_get::<i64, _>("day")?, r.try_get::<i64, _>("fen")?, r.try_get::<i64, _>("n")?.max(0) as u64));
            }
            let m = sqlx::query("SELECT rating_sum, reviews FROM merchants WHERE id = ?").bind(merchant.get()).fetch_optional(&self.pool).await?;
            let (rating_sum, reviews) = match m {
                Some(r) => (r.try_get::<i64, _>("rating_sum")?, r.try_get::<i64, _>("reviews")?),
                None => (0, 0),
            };
            let a = sqlx::query("SELECT COUNT(*) AS n FROM order_alerts WHERE merchant_id = ? AND acked_at IS NULL").bind(merchant.get()).fetch_one(&self.pool).await?;
            let unacked_alerts = a.try_get::<i64, _>("n")?.max(0) as u64;
            Ok::<_, StorageError>(MerchantStats { by_state, days, rating_sum, reviews, unacked_alerts })
        };
        Ok(run.await?)
    }

    async fn expired_orders(&self, now: i64, limit: u32) -> Result<Vec<OrderId>> {
        let rows = sqlx::query("SELECT id FROM orders WHERE state = 'created' AND expires_at < ? ORDER BY expires_at, id LIMIT ?")
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        let ids = rows.iter().map(|r| r.try_get::<i64, _>("id").map_err(StorageError::from).and_then(|v| OrderId::new(v).map_err(|_| corrupt("order id"))));
        Ok(ids.collect::<Result<_, _>>()?)
    }

    async fn wechat_openid(&self, user: UserId) -> Result<Option<String>> {
        let row = sqlx::query("SELECT subject FROM users WHERE id = ? AND provider = 'wechat' AND erased_at IS NULL")
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.map(|r| r.try_get::<String, _>("subject")).transpose().map_err(StorageError::from)?)
    }

    async fn take_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        let run = async {
            sqlx::query("UPDATE job_leases SET holder = ?, until_ms = ? WHERE name = ? AND (until_ms < ? OR holder = ?)")
                .bind(holder.to_owned())
                .bind(until)
                .bind(name.to_owned())
                .bind(now)
                .bind(holder.to_owned())
                .execute(&self.pool)
                .await?;
            let sql = format!("{} INTO job_leases (name, holder, until_ms) VALUES (?, ?, ?)", self.dialect.insert_ignore());
            sqlx::query(AssertSqlSafe(sql)).bind(name.to_owned()).bind(holder.to_owned()).bind(until).execute(&self.pool).await?;
            let row = sqlx::query("SELECT holder FROM job_leases WHERE name = ?").bind(name.to_owned()).fetch_one(&self.pool).await?;
            Ok::<_, StorageError>(row.try_get::<String, _>("holder")? == holder)
        };
        Ok(run.await?)
    }
}
