//! `SqlStore` as `ReviewStore`: one review per completed order (a unique index), the
//! merchant's rating sum and count in the same transaction, one reply.

use crate::store::corrupt;
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::commerce::reviews::*;
use jiebanke_chat_core::commerce::OrderState;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::{CoreError, OrderId, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

const COLS: &str = "id, order_id, merchant_id, author_id, rating, text, photos, created_at, reply, replied_at, hidden_at";

fn review_from(row: &AnyRow) -> Result<Review, StorageError> {
    let photos: String = row.try_get("photos")?;
    Ok(Review {
        id: row.try_get("id")?,
        order: OrderId::new(row.try_get("order_id")?).map_err(|_| corrupt("review order"))?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("review merchant"))?,
        author: UserId::new(row.try_get("author_id")?).map_err(|_| corrupt("review author"))?,
        rating: row.try_get::<i64, _>("rating")?.clamp(1, 5) as u8,
        text: row.try_get("text")?,
        photos: serde_json::from_str(&photos).map_err(|_| corrupt("review photos"))?,
        created_at: row.try_get("created_at")?,
        reply: row.try_get("reply")?,
        replied_at: row.try_get("replied_at")?,
        hidden: row.try_get::<Option<i64>, _>("hidden_at")?.is_some(),
    })
}

impl SqlStore {
    async fn add_review_tx(&self, r: &NewReview, now: i64) -> Result<Result<Review, CoreError>, StorageError> {
        let mut tx = self.begin_write().await?;
        let order = sqlx::query("SELECT buyer_id, merchant_id, state FROM orders WHERE id = ?").bind(r.order.get()).fetch_optional(&mut *tx).await?;
        let Some(order) = order.filter(|o| o.try_get::<Option<i64>, _>("buyer_id").ok().flatten() == Some(r.author.get())) else {
            tx.rollback().await?;
            return Ok(Err(CoreError::NotFound("order".into())));
        };
        let state = OrderState::from_stored(&order.try_get::<String, _>("state")?).ok_or_else(|| corrupt("order state"))?;
        if state != OrderState::Completed {
            tx.rollback().await?;
            return Ok(Err(CoreError::StateConflict { state: state.as_str(), message: "only a completed order is reviewed".into() }));
        }
        let merchant: i64 = order.try_get("merchant_id")?;
        let sql = format!(
            "{} INTO reviews (order_id, merchant_id, author_id, rating, text, photos, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            self.dialect.insert_ignore()
        );
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(r.order.get())
            .bind(merchant)
            .bind(r.author.get())
            .bind(i64::from(r.rating))
            .bind(r.text.clone())
            .bind(serde_json::to_string(&r.photos).map_err(|_| corrupt("review photos"))?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Err(CoreError::Conflict("this order is reviewed already".into())));
        }
        let id = self.insert_id(&mut tx, res).await?;
        sqlx::query("UPDATE merchants SET rating_sum = rating_sum + ?, reviews = reviews + 1 WHERE id = ?")
            .bind(i64::from(r.rating))
            .bind(merchant)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM reviews WHERE id = ?"))).bind(id).fetch_one(&mut *tx).await?;
        let review = review_from(&row)?;
        tx.commit().await?;
        Ok(Ok(review))
    }

    async fn reply_tx(&self, merchant: UserId, review: i64, reply: &str, now: i64) -> Result<Result<Option<Review>, CoreError>, StorageError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM reviews WHERE id = ?"))).bind(review).fetch_optional(&mut *tx).await?;
        let Some(current) = row.as_ref().map(review_from).transpose()?.filter(|r| r.merchant == merchant) else {
            tx.rollback().await?;
            return Ok(Ok(None));
        };
        let done = sqlx::query("UPDATE reviews SET reply = ?, replied_at = ? WHERE id = ? AND reply IS NULL")
            .bind(reply.to_owned())
            .bind(now)
            .bind(review)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Err(CoreError::Conflict("this review has its reply already".into())));
        }
        tx.commit().await?;
        Ok(Ok(Some(Review { reply: Some(reply.to_owned()), replied_at: Some(now), ..current })))
    }
}

#[async_trait]
impl ReviewStore for SqlStore {
    async fn add_review(&self, review: &NewReview, now: i64) -> Result<Review> {
        self.add_review_tx(review, now).await?
    }

    async fn reply_review(&self, merchant: UserId, review: i64, reply: &str, now: i64) -> Result<Option<Review>> {
        self.reply_tx(merchant, review, reply, now).await?
    }

    async fn review(&self, id: i64) -> Result<Option<Review>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM reviews WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.as_ref().map(review_from).transpose()?)
    }

    async fn merchant_reviews(&self, merchant: UserId, before: Option<i64>, limit: u32) -> Result<Vec<Review>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLS} FROM reviews WHERE merchant_id = ? AND hidden_at IS NULL AND id < ? ORDER BY id DESC LIMIT ?"
        )))
        .bind(merchant.get())
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StorageError::from)?;
        Ok(rows.iter().map(review_from).collect::<Result<_, _>>()?)
    }

    async fn reviews_by(&self, author: UserId) -> Result<Vec<Review>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM reviews WHERE author_id = ? ORDER BY id DESC")))
            .bind(author.get())
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(review_from).collect::<Result<_, _>>()?)
    }
}
