//! `SqlStore` as `SessionStore`: login sessions by their key, ended by a conditional UPDATE.

use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::sessions::{SessionKey, SessionStore};
use jiebanke_chat_core::UserId;

#[async_trait]
impl SessionStore for SqlStore {
    async fn open_session(&self, user: UserId, session: &SessionKey, now: i64, expires_at: i64) -> Result<()> {
        let run = async {
            let mut tx = self.begin_write().await?;
            // A user's expired sessions go as new ones come (bounded by the login rate).
            sqlx::query("DELETE FROM login_sessions WHERE user_id = ? AND expires_at < ?").bind(user.get()).bind(now).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO login_sessions (session_key, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
                .bind(session.as_str().to_owned())
                .bind(user.get())
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StorageError>(())
        };
        Ok(run.await?)
    }

    async fn session_live(&self, user: UserId, session: &SessionKey, now: i64) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS live FROM login_sessions WHERE session_key = ? AND user_id = ? AND ended_at IS NULL AND expires_at > ?")
            .bind(session.as_str().to_owned())
            .bind(user.get())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.is_some())
    }

    async fn end_session(&self, user: UserId, session: &SessionKey, now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE login_sessions SET ended_at = ? WHERE session_key = ? AND user_id = ? AND ended_at IS NULL")
            .bind(now)
            .bind(session.as_str().to_owned())
            .bind(user.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(done.rows_affected() == 1)
    }

    async fn end_sessions(&self, user: UserId, now: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE login_sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL")
            .bind(now)
            .bind(user.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(done.rows_affected())
    }
}
