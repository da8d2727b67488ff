//! `SqlStore` as `AuditLog`, and `SqlStore::write_audit`: the one way an entry is written,
//! inside the transaction of the change it records. The table refuses UPDATE and DELETE
//! (triggers in migration 0005), so nothing here or elsewhere can change an entry.

use crate::store::corrupt;
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::audit::{AuditAction, AuditEntry, AuditLog, NewAudit};
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::UserId;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

fn json_col(row: &AnyRow, col: &str) -> Result<Option<serde_json::Value>, StorageError> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|_| corrupt(col))).transpose()
}

fn entry_from(row: &AnyRow) -> Result<AuditEntry, StorageError> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        actor: UserId::new(row.try_get("actor_id")?).map_err(|_| corrupt("audit actor"))?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        before: json_col(row, "before_json")?,
        after: json_col(row, "after_json")?,
        ip: row.try_get("ip")?,
        at: row.try_get("at")?,
    })
}

impl SqlStore {
    /// Writes `entry` inside `tx`: the change and its entry commit together or not at all.
    pub(crate) async fn write_audit(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, entry: &NewAudit, now: i64) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO audit_log (actor_id, action, target, before_json, after_json, ip, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(entry.actor.get())
            .bind(entry.action.as_str())
            .bind(entry.target.clone())
            .bind(entry.before.as_ref().map(|v| v.to_string()))
            .bind(entry.after.as_ref().map(|v| v.to_string()))
            .bind(entry.ip.clone())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn append_audit(&self, entry: &NewAudit, now: i64) -> Result<()> {
        let run = async {
            let mut tx = self.begin_write().await?;
            self.write_audit(&mut tx, entry, now).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(())
        };
        Ok(run.await?)
    }

    async fn audit_entries(&self, actor: Option<UserId>, action: Option<AuditAction>, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from("SELECT id, actor_id, action, target, before_json, after_json, ip, at FROM audit_log WHERE id < ?");
        if actor.is_some() {
            sql.push_str(" AND actor_id = ?");
        }
        if action.is_some() {
            sql.push_str(" AND action = ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(before.unwrap_or(i64::MAX));
        if let Some(a) = actor {
            q = q.bind(a.get());
        }
        if let Some(a) = action {
            q = q.bind(a.as_str());
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(entry_from).collect::<Result<_, _>>()?)
    }
}
