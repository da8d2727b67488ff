//! `SqlStore` as `QrTicketStore`: login tickets by their SHA-256 (the ticket itself is never
//! stored). Confirming and consuming are conditional UPDATEs: a ticket is confirmed once and
//! its token handed out once, whichever nodes the page and the phone reach.

use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::logins::{QrTicketStore, StoredTicket};
use jiebanke_chat_core::UserId;
use sqlx::Row;

#[async_trait]
impl QrTicketStore for SqlStore {
    async fn create_ticket(&self, hash: &str, now: i64, expires_at: i64) -> Result<()> {
        let run = async {
            let mut tx = self.begin_write().await?;
            // Expired tickets go as new ones come (bounded by the login rate per address).
            sqlx::query("DELETE FROM qr_tickets WHERE expires_at < ?").bind(now - 60_000).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO qr_tickets (ticket_hash, created_at, expires_at) VALUES (?, ?, ?)")
                .bind(hash.to_owned())
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StorageError>(())
        };
        Ok(run.await?)
    }

    async fn ticket(&self, hash: &str) -> Result<Option<StoredTicket>> {
        let row = sqlx::query("SELECT user_id, expires_at, consumed_at FROM qr_tickets WHERE ticket_hash = ?")
            .bind(hash.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        let Some(row) = row else { return Ok(None) };
        let user: Option<i64> = row.try_get("user_id").map_err(StorageError::from)?;
        Ok(Some(StoredTicket {
            user: user.map(UserId::new).transpose()?,
            expires_at: row.try_get("expires_at").map_err(StorageError::from)?,
            consumed: row.try_get::<Option<i64>, _>("consumed_at").map_err(StorageError::from)?.is_some(),
        }))
    }

    async fn confirm_ticket(&self, hash: &str, user: UserId, now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE qr_tickets SET user_id = ?, confirmed_at = ? WHERE ticket_hash = ? AND user_id IS NULL AND expires_at > ?")
            .bind(user.get())
            .bind(now)
            .bind(hash.to_owned())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(done.rows_affected() == 1)
    }

    async fn consume_ticket(&self, hash: &str, now: i64) -> Result<Option<UserId>> {
        let done = sqlx::query(
            "UPDATE qr_tickets SET consumed_at = ? WHERE ticket_hash = ? AND user_id IS NOT NULL AND consumed_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(hash.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StorageError::from)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        Ok(self.ticket(hash).await?.and_then(|t| t.user))
    }
}
