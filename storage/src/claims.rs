//! `SqlStore` as `ClaimStore`: claims of farm animals, the slots they hold (a conditional
//! decrement of `animals.slots_free`, given back once), their orders, and the merchants'
//! updates with their `animal.updated` event.

use crate::shop_orders::{shop_order_from, COLS as ORDER_COLS};
use crate::store::corrupt;
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::commerce::claims::*;
use jiebanke_chat_core::commerce::orders::{OrderChange, OrderLine, ShopOrder};
use jiebanke_chat_core::commerce::{when_claim_ended, OrderEvent};
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::{CoreError, DurableEvent, OrderId, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

const COLS: &str = "id, animal_id, merchant_id, claimant_id, state, period_days, first_order_id, started_at, ends_at, created_at";

fn claim_from(row: &AnyRow) -> Result<Claim, StorageError> {
    Ok(Claim {
        id: row.try_get("id")?,
        animal: row.try_get("animal_id")?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("claim merchant"))?,
        claimant: UserId::new(row.try_get("claimant_id")?).map_err(|_| corrupt("claimant"))?,
        state: ClaimState::parse(&row.try_get::<String, _>("state")?).ok_or_else(|| corrupt("claim state"))?,
        period_days: row.try_get::<i64, _>("period_days")?.clamp(0, i64::from(u16::MAX)) as u16,
        first_order: row.try_get("first_order_id")?,
        started_at: row.try_get("started_at")?,
        ends_at: row.try_get("ends_at")?,
        created_at: row.try_get("created_at")?,
    })
}

fn update_from(row: &AnyRow) -> Result<AnimalUpdate, StorageError> {
    let photos: String = row.try_get("photos")?;
    Ok(AnimalUpdate {
        id: row.try_get("id")?,
        animal: row.try_get("animal_id")?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("update merchant"))?,
        text: row.try_get("text")?,
        photos: serde_json::from_str(&photos).map_err(|_| corrupt("update photos"))?,
        created_at: row.try_get("created_at")?,
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl SqlStore {
    /// Inserts a claim's order (`created`) and its `order.created` event.
    async fn claim_order(&self, tx: &mut Tx, claim: &Claim, line: OrderLine, now: i64, expires_at: i64) -> Result<Result<ShopOrder, CoreError>, StorageError> {
        let amount = match jiebanke_chat_core::commerce::rules::amount(&[(line.price_fen, line.quantity)]) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        let item = format!("{} ×{} 期", line.title, line.quantity);
        let res = sqlx::query(
            "INSERT INTO orders (merchant_id, buyer_id, kind, state, item, amount_fen, order_lines, note, created_at, updated_at, expires_at, claim_id) \
             VALUES (?, ?, 'claim', 'created', ?, ?, ?, '', ?, ?, ?, ?)",
        )
        .bind(claim.merchant.get())
        .bind(claim.claimant.get())
        .bind(item)
        .bind(amount)
        .bind(serde_json::to_string(&[line]).map_err(|_| corrupt("order lines"))?)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .bind(claim.id)
        .execute(&mut **tx)
        .await?;
        let id = OrderId::new(self.insert_id(tx, res).await?).map_err(|_| corrupt("order id"))?;
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {ORDER_COLS} FROM orders WHERE id = ?"))).bind(id.get()).fetch_one(&mut **tx).await?;
        let order = shop_order_from(&row)?;
        let event = DurableEvent::OrderChanged(OrderChange {
            order: order.id,
            merchant: order.merchant,
            buyer: order.buyer,
            event: OrderEvent::Created,
            state: order.state.stored().to_owned(),
            amount_fen: order.amount_fen,
            at: now,
        });
        self.write_event(tx, &event, now).await?;
        Ok(Ok(order))
    }

    async fn place_claim_tx(&self, claimant: UserId, animal: i64, periods: u8, now: i64, expires_at: i64) -> Result<Result<(Claim, ShopOrder), CoreError>, StorageError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT a.merchant_id, a.name, a.price_fen, a.period_days, a.hidden_at, m.status FROM animals a \
             LEFT JOIN merchants m ON m.id = a.merchant_id WHERE a.id = ?",
        )
        .bind(animal)
        .fetch_optional(&mut *tx)
        .await?;
        let on_sale = match &row {
            Some(r) => r.try_get::<Option<i64>, _>("hidden_at")?.is_none() && r.try_get::<Option<String>, _>("status")?.as_deref() == Some("active"),
            None => false,
        };
        let Some(row) = row.filter(|_| on_sale) else {
            tx.rollback().await?;
            return Ok(Err(CoreError::NotFound("animal".into())));
        };
        let taken = sqlx::query("UPDATE animals SET slots_free = slots_free - 1 WHERE id = ? AND slots_free > 0").bind(animal).execute(&mut *tx).await?;
        if taken.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Err(CoreError::OutOfStock("every slot of this animal is claimed".into())));
        }
        let merchant = UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("animal merchant"))?;
        let period_days = row.try_get::<i64, _>("period_days")?.clamp(0, i64::from(u16::MAX)) as u16;
        let res = sqlx::query(
            "INSERT INTO claims (animal_id, merchant_id, claimant_id, state, period_days, created_at) VALUES (?, ?, ?, 'pending', ?, ?)",
        )
        .bind(animal)
        .bind(merchant.get())
        .bind(claimant.get())
        .bind(i64::from(period_days))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = self.insert_id(&mut tx, res).await?;
        let mut claim = Claim { id, animal, merchant, claimant, state: ClaimState::Pending, period_days, first_order: 0, started_at: None, ends_at: None, created_at: now };
        let name: String = row.try_get("name")?;
        let line = OrderLine { product: animal, title: format!("认领 {name}"), price_fen: row.try_get("price_fen")?, quantity: u32::from(periods) };
        let order = match self.claim_order(&mut tx, &claim, line, now, expires_at).await? {
            Ok(o) => o,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(e));
            }
        };
        sqlx::query("UPDATE claims SET first_order_id = ? WHERE id = ?").bind(order.id.get()).bind(id).execute(&mut *tx).await?;
        claim.first_order = order.id.get();
        tx.commit().await?;
        Ok(Ok((claim, order)))
    }

    async fn renew_tx(&self, claimant: UserId, claim: i64, periods: u8, now: i64, expires_at: i64) -> Result<Result<ShopOrder, CoreError>, StorageError> {
        let mut tx = self.begin_write().await?;
        // Locked: a renewal and the claim's cancellation or end do not interleave.
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM claims WHERE id = ?{}", self.dialect.for_update()))).bind(claim).fetch_optional(&mut *tx).await?;
        let c = match row.as_ref().map(claim_from).transpose()? {
            Some(c) if c.claimant == claimant => c,
            _ => {
                tx.rollback().await?;
                return Ok(Err(CoreError::NotFound("claim".into())));
            }
        };
        if c.state != ClaimState::Active {
            tx.rollback().await?;
            return Ok(Err(CoreError::StateConflict { state: c.state.as_str(), message: "only an active claim is renewed".into() }));
        }
        let animal = sqlx::query("SELECT name, price_fen FROM animals WHERE id = ?").bind(c.animal).fetch_one(&mut *tx).await?;
        let name: String = animal.try_get("name")?;
        let line = OrderLine { product: c.animal, title: format!("续认 {name}"), price_fen: animal.try_get("price_fen")?, quantity: u32::from(periods) };
        let order = match self.claim_order(&mut tx, &c, line, now, expires_at).await? {
            Ok(o) => o,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(e));
            }
        };
        tx.commit().await?;
        Ok(Ok(order))
    }

    async fn post_tx(&self, merchant: UserId, animal: i64, text: &str, photos: &[String], now: i64) -> Result<Option<AnimalUpdate>, StorageError> {
        let mut tx = self.begin_write().await?;
        let owned = sqlx::query("SELECT id FROM animals WHERE id = ? AND merchant_id = ? AND hidden_at IS NULL")
            .bind(animal)
            .bind(merchant.get())
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        let res = sqlx::query("INSERT INTO animal_updates (animal_id, merchant_id, text, photos, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(animal)
            .bind(merchant.get())
            .bind(text.to_owned())
            .bind(serde_json::to_string(photos).map_err(|_| corrupt("update photos"))?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id = self.insert_id(&mut tx, res).await?;
        let update = AnimalUpdate { id, animal, merchant, text: text.to_owned(), photos: photos.to_vec(), created_at: now };
        let rows = sqlx::query("SELECT claimant_id, id FROM claims WHERE animal_id = ? AND state = 'active' ORDER BY id")
            .bind(animal)
            .fetch_all(&mut *tx)
            .await?;
        let mut claims = Vec::with_capacity(rows.len());
        for r in &rows {
            claims.push((UserId::new(r.try_get("claimant_id")?).map_err(|_| corrupt("claimant"))?, r.try_get::<i64, _>("id")?));
        }
        self.write_event(&mut tx, &DurableEvent::AnimalUpdated(UpdateNotice { update: update.clone(), claims }), now).await?;
        tx.commit().await?;
        Ok(Some(update))
    }

    async fn end_tx(&self, now: i64, limit: u32) -> Result<usize, StorageError> {
        let rows = sqlx::query("SELECT id, animal_id FROM claims WHERE state = 'active' AND ends_at < ? ORDER BY ends_at, id LIMIT ?")
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut ended = 0;
        for r in &rows {
            let (id, animal): (i64, i64) = (r.try_get("id")?, r.try_get("animal_id")?);
            let mut tx = self.begin_write().await?;
            // Only if it is still over: a renewal paid meanwhile extended it.
            let done = sqlx::query("UPDATE claims SET state = 'ended' WHERE id = ? AND state = 'active' AND ends_at < ?").bind(id).bind(now).execute(&mut *tx).await?;
            if done.rows_affected() == 1 {
                sqlx::query("UPDATE animals SET slots_free = slots_free + 1 WHERE id = ?").bind(animal).execute(&mut *tx).await?;
                // An unpaid renewal can extend nothing now: cancelled (paid later, it is a late
                // payment and goes back).
                let first: i64 = sqlx::query("SELECT first_order_id FROM claims WHERE id = ?").bind(id).fetch_one(&mut *tx).await?.try_get("first_order_id")?;
                let first = OrderId::new(first).map_err(|_| corrupt("claim's first order"))?;
                self.claim_orders_follow(&mut tx, id, first, when_claim_ended, now).await?;
                ended += 1;
            }
            tx.commit().await?;
        }
        Ok(ended)
    }
}

#[async_trait]
impl ClaimStore for SqlStore {
    async fn place_claim(&self, claimant: UserId, animal: i64, periods: u8, now: i64, expires_at: i64) -> Result<(Claim, ShopOrder)> {
        self.place_claim_tx(claimant, animal, periods, now, expires_at).await?
    }

    async fn renew_claim(&self, claimant: UserId, claim: i64, periods: u8, now: i64, expires_at: i64) -> Result<ShopOrder> {
        self.renew_tx(claimant, claim, periods, now, expires_at).await?
    }

    async fn claim(&self, id: i64) -> Result<Option<Claim>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM claims WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.as_ref().map(claim_from).transpose()?)
    }

    async fn claims(&self, claimant: UserId, before: Option<i64>, limit: u32) -> Result<Vec<Claim>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM claims WHERE claimant_id = ? AND id < ? ORDER BY id DESC LIMIT ?")))
            .bind(claimant.get())
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(claim_from).collect::<Result<_, _>>()?)
    }

    async fn post_update(&self, merchant: UserId, animal: i64, text: &str, photos: &[String], now: i64) -> Result<Option<AnimalUpdate>> {
        Ok(self.post_tx(merchant, animal, text, photos, now).await?)
    }

    async fn updates(&self, animal: i64, before: Option<i64>, limit: u32) -> Result<Vec<AnimalUpdate>> {
        let rows = sqlx::query("SELECT id, animal_id, merchant_id, text, photos, created_at FROM animal_updates WHERE animal_id = ? AND id < ? ORDER BY id DESC LIMIT ?")
            .bind(animal)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(update_from).collect::<Result<_, _>>()?)
    }

    async fn end_claims(&self, now: i64, limit: u32) -> Result<usize> {
        Ok(self.end_tx(now, limit).await?)
    }
}
