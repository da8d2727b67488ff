//! `SqlStore` as `DashboardStore`: the dashboard's counts (each an indexed COUNT) and the
//! business day of a user's last activity.

use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::dashboard::{DashboardCounts, DashboardStore};
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::UserId;
use sqlx::Row;

impl SqlStore {
    async fn count(&self, sql: &'static str, binds: &[i64]) -> Result<u64, StorageError> {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        let row = q.fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)?.max(0) as u64)
    }
}

#[async_trait]
impl DashboardStore for SqlStore {
    async fn dashboard_counts(&self, day_start: i64, day: i64) -> Result<DashboardCounts> {
        let run = async {
            Ok::<_, StorageError>(DashboardCounts {
                users: self.count("SELECT COUNT(*) FROM users WHERE erased_at IS NULL AND provider <> 'staff'", &[]).await?,
                new_users_today: self.count("SELECT COUNT(*) FROM users WHERE created_at >= ? AND erased_at IS NULL AND provider <> 'staff'", &[day_start]).await?,
                daily_active_users: self.count("SELECT COUNT(*) FROM users WHERE active_day = ? AND provider <> 'staff'", &[day]).await?,
                messages_today: self.count("SELECT COUNT(*) FROM messages WHERE ts >= ?", &[day_start]).await?,
                merchants: self.count("SELECT COUNT(*) FROM merchants WHERE status = 'active'", &[]).await?,
                pending_applications: self.count("SELECT COUNT(*) FROM merchant_applications WHERE status = 'pending'", &[]).await?,
                open_leads: self.count("SELECT COUNT(*) FROM merchant_leads WHERE handled_at IS NULL", &[]).await?,
                open_moderation: self.count("SELECT COUNT(*) FROM moderation_items WHERE status = 'open'", &[]).await?,
                orders_today: self.count("SELECT COUNT(*) FROM orders WHERE created_at >= ? AND kind <> 'manual'", &[day_start]).await?,
                gmv_today_fen: self
                    .count(
                        match self.dialect {
                            crate::Dialect::Sqlite => "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS INTEGER) FROM orders WHERE paid_at >= ? AND late_paid_at IS NULL",
                            crate::Dialect::MySql => "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS SIGNED) FROM orders WHERE paid_at >= ? AND late_paid_at IS NULL",
                        },
                        &[day_start],
                    )
                    .await?,
            })
        };
        Ok(run.await?)
    }

    async fn mark_active(&self, user: UserId, day: i64) -> Result<()> {
        sqlx::query("UPDATE users SET active_day = ? WHERE id = ? AND (active_day IS NULL OR active_day < ?)")
            .bind(day)
            .bind(user.get())
            .bind(day)
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(())
    }
}
