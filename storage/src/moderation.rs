//! `SqlStore` as `ModerationStore`: moderation items (each with its `moderation.created`
//! event), tombstones, bans and roles.

use crate::store::{corrupt, message_from};
use crate::{SqlStore, StorageError};
use jiebanke_chat_core::audit::NewAudit;
use jiebanke_chat_core::ports::{ItemFilter, ModerationStore};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::*;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// The nickname a profile removed by moderation gets.
pub const RESET_NICKNAME: &str = "旅行者";

const ITEM_COLS: &str = "id, kind, subject_kind, subject_id, author_id, reporter_id, reason, words, excerpt, created_at, status, resolved_action, resolved_by, resolved_at";

fn item_from(row: &AnyRow) -> Result<ModerationItem, StorageError> {
    let words: String = row.try_get("words")?;
    let reporter: Option<i64> = row.try_get("reporter_id")?;
    let subject_kind: String = row.try_get("subject_kind")?;
    let subject_id: String = row.try_get("subject_id")?;
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "open" => ModerationStatus::Open,
        "resolved" => {
            let action: Option<String> = row.try_get("resolved_action")?;
            let by: Option<i64> = row.try_get("resolved_by")?;
            ModerationStatus::Resolved {
                action: ResolveAction::parse(action.as_deref().unwrap_or("")).map_err(|_| corrupt("resolved action"))?,
                by: UserId::new(by.unwrap_or(0)).map_err(|_| corrupt("resolved by"))?,
                at: row.try_get::<Option<i64>, _>("resolved_at")?.unwrap_or(0),
            }
        }
        _ => return Err(corrupt("item status")),
    };
    Ok(ModerationItem {
        id: ModerationId::new(row.try_get("id")?).map_err(|_| corrupt("item id"))?,
        kind: ModerationKind::parse(&row.try_get::<String, _>("kind")?).map_err(|_| corrupt("item kind"))?,
        subject: Subject::parse(&subject_kind, &subject_id).map_err(|_| corrupt("item subject"))?,
        author: UserId::new(row.try_get("author_id")?).map_err(|_| corrupt("author id"))?,
        reporter: reporter.map(UserId::new).transpose().map_err(|_| corrupt("reporter id"))?,
        reason: row.try_get("reason")?,
        words: serde_json::from_str(&words).map_err(|_| corrupt("item words"))?,
        excerpt: row.try_get("excerpt")?,
        created_at: row.try_get("created_at")?,
        status,
    })
}

impl SqlStore {
    async fn item_in(&self, conn: &mut sqlx::AnyConnection, id: ModerationId) -> Result<Option<ModerationItem>, StorageError> {
        let sql = format!("SELECT {ITEM_COLS} FROM moderation_items WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.get()).fetch_optional(conn).await?;
        row.as_ref().map(item_from).transpose()
    }
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

    async fn filed_by(&self, user: UserId) -> Result<Vec<ModerationItem>> {
        // No index serves `reporter_id`: exports are rare, and the table is the staff's queue.
        let sql = format!("SELECT {ITEM_COLS} FROM moderation_items WHERE reporter_id = ? OR (kind = 'appeal' AND author_id = ?) ORDER BY id");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).bind(user.get()).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(item_from).collect::<Result<_, _>>()?)
    }

    async fn create_moderation_item(&self, item: &NewModerationItem, now: i64) -> Result<ModerationItem> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let words = serde_json::to_string(&item.words).unwrap_or_else(|_| "[]".into());
            let (conv, seq) = match item.subject {
                Subject::Message { conv, seq } => (conv.get(), seq.get() as i64),
                _ => (0, 0),
            };
            // A report is one per (subject, reporter) while open: the unique key makes a second
            // one (even one racing the first) find the first.
            let open_key = match (item.kind, item.reporter) {
                (ModerationKind::Report, Some(r)) => Some(format!("{}:{}:{}", item.subject.kind(), item.subject.id(), r.get())),
                _ => None,
            };
            let sql = format!(
                "{} INTO moderation_items (kind, conv_id, seq, subject_kind, subject_id, author_id, reporter_id, reason, words, excerpt, created_at, open_report_key) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.dialect.insert_ignore()
            );
            let res = sqlx::query(AssertSqlSafe(sql))
            .bind(item.kind.as_str())
            .bind(conv)
            .bind(seq)
            .bind(item.subject.kind())
            .bind(item.subject.id())
            .bind(item.author.get())
            .bind(item.reporter.map(|r| r.get()))
            .bind(item.reason.clone())
            .bind(words)
            .bind(item.excerpt.clone())
            .bind(now)
            .bind(open_key.clone())
            .execute(&mut *tx)
            .await?;
            if res.rows_affected() == 0 {
                // The reporter's report of this subject is open already: that one, unchanged.
                let sql = format!("SELECT {ITEM_COLS} FROM moderation_items WHERE open_report_key = ?");
                let row = sqlx::query(AssertSqlSafe(sql)).bind(open_key).fetch_one(&mut *tx).await?;
                let existing = item_from(&row)?;
                tx.rollback().await?;
                return Ok(existing);
            }
            let id = self.insert_id(&mut tx, res).await?;
            let stored = ModerationItem {
                id: ModerationId::new(id).map_err(|_| corrupt("item id"))?,
                kind: item.kind,
                subject: item.subject,
                author: item.author,
                reporter: item.reporter,
                reason: item.reason.clone(),
                words: item.words.clone(),
                excerpt: item.excerpt.clone(),
                created_at: now,
                status: ModerationStatus::Open,
            };
            self.write_event(&mut tx, &DurableEvent::ModerationCreated(stored.clone()), now).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(stored)
        };
        Ok(run.await?)
    }

    async fn moderation_items(&self, filter: &ItemFilter, after: Option<ModerationId>, limit: u32) -> Result<Vec<ModerationItem>> {
        let mut sql = format!("SELECT {ITEM_COLS} FROM moderation_items WHERE id > ?");
        match filter.open {
            Some(true) => sql.push_str(" AND status = 'open'"),
            Some(false) => sql.push_str(" AND status = 'resolved'"),
            None => {}
        }
        if filter.subject_kind.is_some() {
            sql.push_str(" AND subject_kind = ?");
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(after.map(|a| a.get()).unwrap_or(0));
        if let Some(k) = &filter.subject_kind {
            q = q.bind(k.clone());
        }
        let rows = q.bind(limit as i64).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(item_from).collect::<Result<Vec<_>, _>>()?)
    }

    async fn moderation_item(&self, id: ModerationId) -> Result<Option<ModerationItem>> {
        let mut conn = self.pool.acquire().await.map_err(StorageError::from)?;
        Ok(self.item_in(&mut conn, id).await?)
    }

    async fn open_item_about(&self, subject: &Subject) -> Result<Option<ModerationId>> {
        let row = sqlx::query("SELECT id FROM moderation_items WHERE subject_kind = ? AND subject_id = ? AND status = 'open' ORDER BY id LIMIT 1")
            .bind(subject.kind())
            .bind(subject.id())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(match row {
            Some(r) => Some(ModerationId::new(r.try_get("id").map_err(StorageError::from)?)?),
            None => None,
        })
    }

    async fn resolve_item(&self, id: ModerationId, action: ResolveAction, by: UserId, now: i64, audit: &NewAudit) -> Result<Option<ModerationItem>> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query("UPDATE moderation_items SET status = 'resolved', resolved_action = ?, resolved_by = ?, resolved_at = ?, open_report_key = NULL WHERE id = ? AND status = 'open'")
                .bind(action.as_str())
                .bind(by.get())
                .bind(now)
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
            let Some(item) = self.item_in(&mut tx, id).await? else {
                tx.rollback().await?;
                return Ok::<_, StorageError>(Ok(None));
            };
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Err(CoreError::Conflict("the item was resolved already".into())));
            }
            match (action, item.subject) {
                (ResolveAction::Delete, Subject::Message { conv, seq }) => {
                    sqlx::query("UPDATE messages SET deleted_at = ?, text = '' WHERE conv_id = ? AND seq = ? AND deleted_at IS NULL")
                        .bind(now)
                        .bind(conv.get())
                        .bind(seq.get() as i64)
                        .execute(&mut *tx)
                        .await?;
                }
                (ResolveAction::Delete, Subject::Profile(user)) => {
                    sqlx::query("UPDATE users SET nickname = ?, avatar_url = NULL, bio = '', tags = '' WHERE id = ? AND erased_at IS NULL")
                        .bind(RESET_NICKNAME)
                        .bind(user.get())
                        .execute(&mut *tx)
                        .await?;
                }
                // A reported product is hidden (orders keep their snapshot of it).
                (ResolveAction::Delete, Subject::Product(id)) => {
                    sqlx::query("UPDATE products SET hidden_at = COALESCE(hidden_at, ?) WHERE id = ?").bind(now).bind(id).execute(&mut *tx).await?;
                }
                // A reported review is hidden and no longer counts in its merchant's rating.
                (ResolveAction::Delete, Subject::Review(id)) => {
                    let hidden = sqlx::query("UPDATE reviews SET hidden_at = ? WHERE id = ? AND hidden_at IS NULL").bind(now).bind(id).execute(&mut *tx).await?;
                    if hidden.rows_affected() == 1 {
                        sqlx::query(
                            "UPDATE merchants SET rating_sum = rating_sum - (SELECT rating FROM reviews WHERE id = ?), reviews = reviews - 1 \
                             WHERE id = (SELECT merchant_id FROM reviews WHERE id = ?)",
                        )
                        .bind(id)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                (ResolveAction::Ban, _) => {
                    sqlx::query("UPDATE users SET banned_at = COALESCE(banned_at, ?) WHERE id = ?").bind(now).bind(item.author.get()).execute(&mut *tx).await?;
                }
                (ResolveAction::Unban, _) => {
                    sqlx::query("UPDATE users SET banned_at = NULL WHERE id = ?").bind(item.author.get()).execute(&mut *tx).await?;
                }
                _ => {}
            }
            self.write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(Ok(Some(item)))
        };
        run.await?
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

}
