//! `SqlStore` as `StaffStore`: staff accounts beside their user rows (provider `staff`). The
//! password arrives hashed and the TOTP secret sealed; lock counting is done in the database
//! (`failures + 1`) and a code's one use is a conditional UPDATE, so racing logins can neither
//! both pass with one code nor lose a count.

use crate::store::{corrupt, role_from};
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::audit::{Actor, AuditAction, NewAudit};
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::staff::*;
use jiebanke_chat_core::{CoreError, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

const COLS: &str = "s.user_id, s.username, u.role, s.password_hash, s.totp_cipher, s.failures, s.locked_until, s.disabled_at, s.last_step, s.created_at";

fn staff_from(row: &AnyRow) -> Result<StaffRecord, StorageError> {
    Ok(StaffRecord {
        user: UserId::new(row.try_get("user_id")?).map_err(|_| corrupt("staff user"))?,
        username: row.try_get("username")?,
        role: role_from(row)?,
        password_hash: row.try_get("password_hash")?,
        totp_cipher: row.try_get("totp_cipher")?,
        failures: row.try_get::<i64, _>("failures")?.max(0) as u32,
        locked_until: row.try_get("locked_until")?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        last_step: row.try_get::<i64, _>("last_step")?.max(0) as u64,
        created_at: row.try_get("created_at")?,
    })
}

impl SqlStore {
    async fn staff_where(&self, conn: &mut sqlx::AnyConnection, clause: &str, bind: sqlx_bind::Bind) -> Result<Option<StaffRecord>, StorageError> {
        let sql = format!("SELECT {COLS} FROM staff_accounts s JOIN users u ON u.id = s.user_id WHERE {clause}");
        let q = sqlx::query(AssertSqlSafe(sql));
        let q = match bind {
            sqlx_bind::Bind::Id(id) => q.bind(id),
            sqlx_bind::Bind::Text(t) => q.bind(t),
        };
        let row = q.fetch_optional(conn).await?;
        row.as_ref().map(staff_from).transpose()
    }
}

mod sqlx_bind {
    pub enum Bind {
        Id(i64),
        Text(String),
    }
}

#[async_trait]
impl StaffStore for SqlStore {
    async fn create_staff(&self, staff: &NewStaff, by: Option<&Actor>, now: i64) -> Result<UserId> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query("INSERT INTO users (provider, subject, nickname, created_at, role) VALUES (?, ?, ?, ?, ?)")
                .bind(PROVIDER)
                .bind(staff.username.clone())
                .bind(staff.username.clone())
                .bind(now)
                .bind(staff.role.as_str())
                .execute(&mut *tx)
                .await;
            let res = match res {
                Ok(r) => r,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    return Ok(Err(CoreError::Conflict("this username is taken".into())));
                }
                Err(e) => return Err(e.into()),
            };
            let id = self.insert_id(&mut tx, res).await?;
            let user = UserId::new(id).map_err(|_| corrupt("user id"))?;
            sqlx::query("INSERT INTO staff_accounts (user_id, username, password_hash, totp_cipher, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(staff.username.clone())
                .bind(staff.password_hash.clone())
                .bind(staff.totp_cipher.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // Made from the command line, the first admin is recorded as made by itself.
            let actor = by.cloned().unwrap_or_else(|| Actor::new(user, Some("cli".into())));
            let audit = NewAudit::new(&actor, AuditAction::StaffCreate, format!("user:{user}"))
                .after(serde_json::json!({"username": staff.username, "role": staff.role.as_str()}));
            self.write_audit(&mut tx, &audit, now).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(Ok(user))
        };
        run.await?
    }

    async fn staff_by_username(&self, username: &str) -> Result<Option<StaffRecord>> {
        let mut conn = self.pool.acquire().await.map_err(StorageError::from)?;
        Ok(self.staff_where(&mut conn, "s.username = ?", sqlx_bind::Bind::Text(username.to_owned())).await?)
    }

    async fn staff_by_id(&self, user: UserId) -> Result<Option<StaffRecord>> {
        let mut conn = self.pool.acquire().await.map_err(StorageError::from)?;
        Ok(self.staff_where(&mut conn, "s.user_id = ?", sqlx_bind::Bind::Id(user.get())).await?)
    }

    async fn record_failure(&self, user: UserId, now: i64, lock_after: u32, lock_ms: i64) -> Result<()> {
        let run = async {
            let mut tx = self.begin_write().await?;
            // A lock that has run out starts the count again.
            sqlx::query("UPDATE staff_accounts SET failures = 0, locked_until = NULL WHERE user_id = ? AND locked_until IS NOT NULL AND locked_until <= ?")
                .bind(user.get())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // `locked_until` is assigned first: MySQL evaluates SET left to right with the new
            // values, SQLite with the old ones; this order reads the old count on both.
            sqlx::query("UPDATE staff_accounts SET locked_until = CASE WHEN failures + 1 >= ? THEN ? ELSE locked_until END, failures = failures + 1 WHERE user_id = ?")
                .bind(i64::from(lock_after))
                .bind(now + lock_ms)
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StorageError>(())
        };
        Ok(run.await?)
    }

    async fn record_success(&self, user: UserId, step: u64, _now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE staff_accounts SET failures = 0, locked_until = NULL, last_step = ? WHERE user_id = ? AND last_step < ?")
            .bind(step as i64)
            .bind(user.get())
            .bind(step as i64)
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(done.rows_affected() == 1)
    }

    async fn staff_accounts(&self, after: Option<UserId>, limit: u32) -> Result<Vec<StaffRecord>> {
        let sql = format!("SELECT {COLS} FROM staff_accounts s JOIN users u ON u.id = s.user_id WHERE s.user_id > ? ORDER BY s.user_id LIMIT ?");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after.map(|a| a.get()).unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(staff_from).collect::<Result<_, _>>()?)
    }

    async fn set_staff_disabled(&self, user: UserId, disabled: bool, now: i64, audit: &NewAudit) -> Result<Option<StaffRecord>> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let done = if disabled {
                sqlx::query("UPDATE staff_accounts SET disabled_at = ? WHERE user_id = ? AND disabled_at IS NULL").bind(now).bind(user.get()).execute(&mut *tx).await?
            } else {
                sqlx::query("UPDATE staff_accounts SET disabled_at = NULL, failures = 0, locked_until = NULL WHERE user_id = ? AND disabled_at IS NOT NULL")
                    .bind(user.get())
                    .execute(&mut *tx)
                    .await?
            };
            let before = self.staff_where(&mut tx, "s.user_id = ?", sqlx_bind::Bind::Id(user.get())).await?;
            let Some(before) = before else {
                tx.rollback().await?;
                return Ok::<_, StorageError>(Ok(None));
            };
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                let state = if before.disabled { "disabled" } else { "enabled" };
                return Ok(Err(CoreError::Conflict(format!("the staff account is {state} already"))));
            }
            let mut audit = audit.clone();
            if disabled {
                // Disabled, its powers end at once: the role is read on every request.
                sqlx::query("UPDATE users SET role = 'none' WHERE id = ?").bind(user.get()).execute(&mut *tx).await?;
                // ...and so do its sessions (their sockets are closed by the caller's
                // `SessionService::end_all`).
                sqlx::query("UPDATE login_sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL").bind(now).bind(user.get()).execute(&mut *tx).await?;
                audit.before = Some(serde_json::json!({"disabled": false, "role": before.role.as_str()}));
                audit.after = Some(serde_json::json!({"disabled": true, "role": "none"}));
            }
            self.write_audit(&mut tx, &audit, now).await?;
            let after = self.staff_where(&mut tx, "s.user_id = ?", sqlx_bind::Bind::Id(user.get())).await?.ok_or_else(|| corrupt("staff account"))?;
            tx.commit().await?;
            Ok(Ok(Some(after)))
        };
        run.await?
    }
}
