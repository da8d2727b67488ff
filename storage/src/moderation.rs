//! `SqlStore` as `ModerationStore`: moderation items (each with its `moderation.created`
//! event), tombstones, bans and roles.

use crate::store::{corrupt, message_from};
use crate::{SqlStore, StorageError};
use jiebanke_chat_core::audit::NewAudit;
use jiebanke_chat_core::ports::ModerationStore;
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::*;
use sqlx::any::AnyRow;
use sqlx::Row;

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

#[async_trait]
impl ModerationStore for SqlStore {
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
            self.write_event(&mut tx, &DurableEvent::ModerationCreated(stored.clone()), now).await?;
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

    async fn delete_message(&self, conv: ConvId, seq: Seq, now: i64, audit: &NewAudit) -> Result<bool> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let row = sqlx::query("SELECT seq FROM messages WHERE conv_id = ? AND seq = ?")
                .bind(conv.get())
                .bind(seq.get() as i64)
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_none() {
                tx.rollback().await?;
                return Ok::<_, StorageError>(false);
            }
            sqlx::query("UPDATE messages SET deleted_at = ?, text = '' WHERE conv_id = ? AND seq = ? AND deleted_at IS NULL")
                .bind(now)
                .bind(conv.get())
                .bind(seq.get() as i64)
                .execute(&mut *tx)
                .await?;
            self.write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(true)
        };
        Ok(run.await?)
    }

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
