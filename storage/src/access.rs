//! `SqlStore` as `AccessStore`: bans and staff roles, each change with its audit entry in its
//! transaction.

use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::audit::NewAudit;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::ports::AccessStore;
use jiebanke_chat_core::{Role, UserId};

#[async_trait]
impl AccessStore for SqlStore {
    async fn set_banned(&self, user: UserId, banned: bool, now: i64, audit: &NewAudit) -> Result<bool> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let q = if banned {
                sqlx::query("UPDATE users SET banned_at = COALESCE(banned_at, ?) WHERE id = ?").bind(now)
            } else {
                sqlx::query("UPDATE users SET banned_at = NULL WHERE id = ?")
            };
            q.bind(user.get()).execute(&mut *tx).await?;
            if sqlx::query("SELECT id FROM users WHERE id = ?").bind(user.get()).fetch_optional(&mut *tx).await?.is_none() {
                tx.rollback().await?;
                return Ok::<_, StorageError>(false);
            }
            self.write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(true)
        };
        Ok(run.await?)
    }

    async fn set_role(&self, user: UserId, role: Role, now: i64, audit: &NewAudit) -> Result<Option<Role>> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let Some(row) = sqlx::query("SELECT role FROM users WHERE id = ?").bind(user.get()).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok::<_, StorageError>(None);
            };
            let before = crate::store::role_from(&row)?;
            sqlx::query("UPDATE users SET role = ? WHERE id = ?").bind(role.as_str()).bind(user.get()).execute(&mut *tx).await?;
            let mut audit = audit.clone();
            audit.before = Some(serde_json::json!({"role": before.as_str()}));
            self.write_audit(&mut tx, &audit, now).await?;
            tx.commit().await?;
            Ok(Some(before))
        };
        Ok(run.await?)
    }

    async fn grant_configured_admin(&self, user: UserId) -> Result<()> {
        sqlx::query("UPDATE users SET role = 'admin' WHERE id = ?").bind(user.get()).execute(&self.pool).await.map_err(StorageError::from)?;
        Ok(())
    }
}
