//! `SqlStore` as `StaffStore`: staff accounts beside their user rows (provider `staff`). The
//! password arrives hashed and the TOTP secret sealed; a code's one use is a conditional UPDATE,
//! so racing logins cannot both pass with one code. Login attempts are counted in
//! `staff_login_failures` (per username and address) and `staff_login_address_failures` by one
//! upsert each, inside one transaction, so racing attempts on any node all count, each seeing
//! its own count. The old per-account columns (`failures`, `locked_until`) are left unread.

use crate::store::{corrupt, role_from};
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::audit::{Actor, AuditAction, NewAudit};
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::staff::login::LoginFailures;
use jiebanke_chat_core::staff::*;
use jiebanke_chat_core::{CoreError, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

const COLS: &str = "s.user_id, s.username, u.role, s.password_hash, s.totp_cipher, s.disabled_at, s.last_step, s.created_at";

fn staff_from(row: &AnyRow) -> Result<StaffRecord, StorageError> {
    Ok(StaffRecord {
        user: UserId::new(row.try_get("user_id")?).map_err(|_| corrupt("staff user"))?,
        username: row.try_get("username")?,
        role: role_from(row)?,
        password_hash: row.try_get("password_hash")?,
        totp_cipher: row.try_get("totp_cipher")?,
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

impl SqlStore {
    /// The counts of windows that started after `ended`.
    async fn login_counts(&self, conn: &mut sqlx::AnyConnection, username: &str, address: &str, ended: i64) -> Result<LoginFailures, StorageError> {
        let pair = sqlx::query("SELECT window_start, failures FROM staff_login_failures WHERE username = ? AND address = ? AND window_start > ?")
            .bind(username.to_owned())
            .bind(address.to_owned())
            .bind(ended)
            .fetch_optional(&mut *conn)
            .await?;
        let by_address = sqlx::query("SELECT window_start, failures FROM staff_login_address_failures WHERE address = ? AND window_start > ?")
            .bind(address.to_owned())
            .bind(ended)
            .fetch_optional(&mut *conn)
            .await?;
        let read = |row: Option<AnyRow>| -> Result<(i64, u32), StorageError> {
            Ok(match row {
                Some(r) => (r.try_get("window_start")?, r.try_get::<i64, _>("failures")?.clamp(0, i64::from(u32::MAX)) as u32),
                None => (0, 0),
            })
        };
        let (pair_since, pair) = read(pair)?;
        let (address_since, address) = read(by_address)?;
        Ok(LoginFailures { pair, pair_since, address, address_since })
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

    async fn record_success(&self, user: UserId, step: u64, _now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE staff_accounts SET last_step = ? WHERE user_id = ? AND last_step < ?")
            .bind(step as i64)
            .bind(user.get())
            .bind(step as i64)
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_login_attempt(&self, username: &str, address: &str, now: i64, window_ms: i64) -> Result<LoginFailures> {
        // Two engines, one meaning: insert the row, or on its key start a new window or add one.
        // In MySQL's SET list later assignments see earlier ones, so `failures` comes first and
        // both read the old `window_start`; SQLite reads old values throughout.
        let on_key = |key: &str| match self.dialect {
            crate::Dialect::Sqlite => format!("ON CONFLICT ({key}) DO UPDATE SET"),
            crate::Dialect::MySql => "ON DUPLICATE KEY UPDATE".to_owned(),
        };
        let bump = "failures = CASE WHEN window_start <= ? THEN 1 ELSE failures + 1 END, window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END";
        let pair_sql = format!("INSERT INTO staff_login_failures (username, address, window_start, failures) VALUES (?, ?, ?, 1) {} {bump}", on_key("username, address"));
        let address_sql = format!("INSERT INTO staff_login_address_failures (address, window_start, failures) VALUES (?, ?, 1) {} {bump}", on_key("address"));
        let ended = now - window_ms;
        let run = || async {
            let mut tx = self.begin_write().await?;
            // Always the pair first, then the address: racing transactions lock in one order.
            sqlx::query(AssertSqlSafe(pair_sql.clone()))
                .bind(username.to_owned())
                .bind(address.to_owned())
                .bind(now)
                .bind(ended)
                .bind(ended)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(AssertSqlSafe(address_sql.clone())).bind(address.to_owned()).bind(now).bind(ended).bind(ended).bind(now).execute(&mut *tx).await?;
            // Our own rows, locked by the upserts: the counts include this attempt exactly once.
            let counts = self.login_counts(&mut tx, username, address, ended).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(counts)
        };
        let mut tries = 0;
        let counts = loop {
            tries += 1;
            match run().await {
                // InnoDB may end one of several racing upserts as a deadlock: it did nothing,
                // so it is run again.
                Err(StorageError::Db(sqlx::Error::Database(e))) if tries < 4 && e.code().as_deref() == Some("40001") => continue,
                other => break other?,
            }
        };
        if counts.pair == 1 {
            // A new window began: a good moment to forget windows that ended (best effort, on
            // its own so that the counting transaction locks only its own rows).
            for table in ["staff_login_failures", "staff_login_address_failures"] {
                let sql = format!("DELETE FROM {table} WHERE window_start <= ?");
                if let Err(e) = sqlx::query(AssertSqlSafe(sql)).bind(ended).execute(&self.pool).await {
                    tracing::warn!(error = %e, table, "clearing ended login-failure windows failed; the next one retries");
                }
            }
        }
        Ok(counts)
    }

    async fn login_succeeded(&self, username: &str, address: &str, now: i64, window_ms: i64) -> Result<()> {
        let run = async {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM staff_login_failures WHERE username = ? AND address = ?")
                .bind(username.to_owned())
                .bind(address.to_owned())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE staff_login_address_failures SET failures = failures - 1 WHERE address = ? AND window_start > ? AND failures > 0")
                .bind(address.to_owned())
                .bind(now - window_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StorageError>(())
        };
        Ok(run.await?)
    }

    async fn login_limited(&self, audit: &NewAudit, now: i64) -> Result<()> {
        let run = async {
            let mut tx = self.begin_write().await?;
            self.write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(())
        };
        Ok(run.await?)
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
