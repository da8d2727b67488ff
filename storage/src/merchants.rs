//! `SqlStore` as the merchants area's ports: `MerchantStore` (applications, merchants) and
//! `LeadStore`. Sealed values arrive sealed (`users::pii`); every staff change writes its audit
//! entry, and a review its `merchant.reviewed` event, in the change's transaction.

use crate::store::corrupt;
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::audit::NewAudit;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::merchants::*;
use jiebanke_chat_core::{CoreError, DurableEvent, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

const APP_COLS: &str = "id, user_id, name, category, license_masked, contact_name, phone_masked, status, reason, created_at, decided_at, decided_by";
const MERCHANT_COLS: &str = "id, name, category, status, suspend_reason, rating_sum, reviews, since";
const LEAD_COLS: &str = "id, company, contact_name, phone_masked, category, city, message, created_at, handled_by, handled_note, handled_at";

fn category(row: &AnyRow) -> Result<Category, StorageError> {
    Category::from_str(&row.try_get::<String, _>("category")?).ok_or_else(|| corrupt("category"))
}

fn user_col(row: &AnyRow, col: &str) -> Result<Option<UserId>, StorageError> {
    row.try_get::<Option<i64>, _>(col)?.map(|v| UserId::new(v).map_err(|_| corrupt(col))).transpose()
}

fn app_from(row: &AnyRow) -> Result<ApplicationRecord, StorageError> {
    let status: String = row.try_get("status")?;
    let state = match status.as_str() {
        "pending" => ApplicationState::Pending,
        "approved" => ApplicationState::Approved,
        "rejected" => ApplicationState::Rejected { reason: row.try_get::<Option<String>, _>("reason")?.unwrap_or_default() },
        _ => return Err(corrupt("application status")),
    };
    Ok(ApplicationRecord {
        id: RecordId::new(row.try_get("id")?).map_err(|_| corrupt("application id"))?,
        user: user_col(row, "user_id")?.ok_or_else(|| corrupt("user_id"))?,
        name: row.try_get("name")?,
        category: category(row)?,
        license_masked: row.try_get("license_masked")?,
        contact_name: row.try_get("contact_name")?,
        phone_masked: row.try_get("phone_masked")?,
        state,
        created_at: row.try_get("created_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: user_col(row, "decided_by")?,
    })
}

fn merchant_from(row: &AnyRow) -> Result<Merchant, StorageError> {
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "active" => MerchantStatus::Active,
        "suspended" => MerchantStatus::Suspended { reason: row.try_get::<Option<String>, _>("suspend_reason")?.unwrap_or_default() },
        "closed" => MerchantStatus::Closed,
        _ => return Err(corrupt("merchant status")),
    };
    Ok(Merchant {
        id: user_col(row, "id")?.ok_or_else(|| corrupt("merchant id"))?,
        name: row.try_get("name")?,
        category: category(row)?,
        status,
        rating_sum: row.try_get("rating_sum")?,
        reviews: row.try_get("reviews")?,
        since: row.try_get("since")?,
    })
}

fn lead_from(row: &AnyRow) -> Result<LeadRecord, StorageError> {
    let handled = match (user_col(row, "handled_by")?, row.try_get::<Option<i64>, _>("handled_at")?) {
        (Some(by), Some(at)) => Some(LeadHandled { by, at, note: row.try_get::<Option<String>, _>("handled_note")?.unwrap_or_default() }),
        _ => None,
    };
    Ok(LeadRecord {
        id: RecordId::new(row.try_get("id")?).map_err(|_| corrupt("lead id"))?,
        company: row.try_get("company")?,
        contact_name: row.try_get("contact_name")?,
        phone_masked: row.try_get("phone_masked")?,
        category: category(row)?,
        city: row.try_get("city")?,
        message: row.try_get("message")?,
        created_at: row.try_get("created_at")?,
        handled,
    })
}

impl SqlStore {
    async fn application_in(&self, conn: &mut sqlx::AnyConnection, id: RecordId) -> Result<Option<ApplicationRecord>, StorageError> {
        let sql = format!("SELECT {APP_COLS} FROM merchant_applications WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.get()).fetch_optional(conn).await?;
        row.as_ref().map(app_from).transpose()
    }

    async fn merchant_in(&self, conn: &mut sqlx::AnyConnection, id: UserId) -> Result<Option<Merchant>, StorageError> {
        let sql = format!("SELECT {MERCHANT_COLS} FROM merchants WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.get()).fetch_optional(conn).await?;
        row.as_ref().map(merchant_from).transpose()
    }
}

fn license_taken() -> CoreError {
    CoreError::Conflict("this licence number belongs to another application or merchant (该营业执照已被其他申请或商家使用)".into())
}

#[async_trait]
impl MerchantStore for SqlStore {
    async fn unindexed_licenses(&self, limit: u32) -> Result<Vec<(RecordId, UserId, String)>> {
        let rows = sqlx::query("SELECT id, user_id, license_cipher FROM merchant_applications WHERE license_index IS NULL ORDER BY id LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = RecordId::new(r.try_get("id").map_err(StorageError::from)?).map_err(|_| corrupt("application id"))?;
            let user = user_col(r, "user_id")?.ok_or_else(|| corrupt("user_id"))?;
            out.push((id, user, r.try_get("license_cipher").map_err(StorageError::from)?));
        }
        Ok(out)
    }

    async fn set_license_index(&self, id: RecordId, index: &str) -> Result<()> {
        let run = async {
            sqlx::query("UPDATE merchant_applications SET license_index = ? WHERE id = ?").bind(index.to_owned()).bind(id.get()).execute(&self.pool).await?;
            if index.is_empty() {
                return Ok::<_, StorageError>(());
            }
            // Held if live and free; a duplicate stored before this index existed stays unheld.
            let held = sqlx::query("UPDATE merchant_applications SET live_license = license_index WHERE id = ? AND status IN ('pending', 'approved')")
                .bind(id.get())
                .execute(&self.pool)
                .await;
            match held {
                Ok(_) => Ok(()),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
                Err(e) => Err(e.into()),
            }
        };
        Ok(run.await?)
    }

    async fn create_application(&self, app: &SealedApplication, now: i64) -> Result<ApplicationRecord> {
        let run = async {
            let mut tx = self.begin_write().await?;
            if self.merchant_in(&mut tx, app.user).await?.is_some() {
                tx.rollback().await?;
                return Ok::<_, StorageError>(Err(CoreError::Conflict("you are a merchant already".into())));
            }
            // The licence number's index, held while pending (and approved): a unique index
            // refuses a second open or approved application for one number, even at once.
            let taken = sqlx::query("SELECT id FROM merchant_applications WHERE live_license = ?").bind(app.license_index.clone()).fetch_optional(&mut *tx).await?;
            if taken.is_some() {
                tx.rollback().await?;
                return Ok(Err(license_taken()));
            }
            let res = sqlx::query(
                "INSERT INTO merchant_applications (user_id, open_user, name, category, license_cipher, license_masked, license_index, live_license, \
                 contact_name, phone_cipher, phone_masked, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            )
            .bind(app.user.get())
            .bind(app.user.get())
            .bind(app.name.clone())
            .bind(app.category.as_str())
            .bind(app.license_cipher.clone())
            .bind(app.license_masked.clone())
            .bind(app.license_index.clone())
            .bind(app.license_index.clone())
            .bind(app.contact_name.clone())
            .bind(app.phone_cipher.clone())
            .bind(app.phone_masked.clone())
            .bind(now)
            .execute(&mut *tx)
            .await;
            let res = match res {
                Ok(r) => r,
                // A unique index: on open_user, the user has a pending application (perhaps
                // submitted a moment ago on another node); on live_license, another application
                // took the number meanwhile.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    let held = sqlx::query("SELECT id FROM merchant_applications WHERE live_license = ?").bind(app.license_index.clone()).fetch_optional(&self.pool).await?;
                    return Ok(Err(if held.is_some() { license_taken() } else { CoreError::Conflict("you have an application waiting for review".into()) }));
                }
                Err(e) => return Err(e.into()),
            };
            let id = self.insert_id(&mut tx, res).await?;
            let rec = self.application_in(&mut tx, RecordId::new(id).map_err(|_| corrupt("application id"))?).await?.ok_or_else(|| corrupt("application"))?;
            tx.commit().await?;
            Ok(Ok(rec))
        };
        run.await?
    }

    async fn latest_application(&self, user: UserId) -> Result<Option<ApplicationRecord>> {
        let sql = format!("SELECT {APP_COLS} FROM merchant_applications WHERE user_id = ? ORDER BY id DESC LIMIT 1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        Ok(row.as_ref().map(app_from).transpose()?)
    }

    async fn applications_of(&self, user: UserId) -> Result<Vec<ApplicationRecord>> {
        let sql = format!("SELECT {APP_COLS} FROM merchant_applications WHERE user_id = ? ORDER BY id");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(app_from).collect::<Result<_, _>>()?)
    }

    async fn applications(&self, state: Option<&str>, after: Option<RecordId>, limit: u32) -> Result<Vec<ApplicationRecord>> {
        let filter = if state.is_some() { " AND status = ?" } else { "" };
        let sql = format!("SELECT {APP_COLS} FROM merchant_applications WHERE id > ?{filter} ORDER BY id LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(after.map(RecordId::get).unwrap_or(0));
        if let Some(s) = state {
            q = q.bind(s.to_owned());
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(app_from).collect::<Result<_, _>>()?)
    }

    async fn sealed_papers(&self, id: RecordId) -> Result<Option<(UserId, String, String)>> {
        let row = sqlx::query("SELECT user_id, license_cipher, phone_cipher FROM merchant_applications WHERE id = ?")
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        let Some(row) = row else { return Ok(None) };
        let get = || -> Result<_, StorageError> {
            Ok((user_col(&row, "user_id")?.ok_or_else(|| corrupt("user_id"))?, row.try_get("license_cipher")?, row.try_get("phone_cipher")?))
        };
        Ok(Some(get()?))
    }

    async fn decide(&self, id: RecordId, by: UserId, decision: &ApplicationState, now: i64, audit: &NewAudit) -> Result<Option<ApplicationRecord>> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let reason = match decision {
                ApplicationState::Rejected { reason } => Some(reason.clone()),
                _ => None,
            };
            let done = sqlx::query(
                "UPDATE merchant_applications SET status = ?, reason = ?, decided_at = ?, decided_by = ?, open_user = NULL, \
                 live_license = CASE WHEN ? = 'approved' THEN live_license ELSE NULL END \
                 WHERE id = ? AND status = 'pending'",
            )
            .bind(decision.as_str())
            .bind(reason.clone())
            .bind(now)
            .bind(by.get())
            .bind(decision.as_str())
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
            let Some(rec) = self.application_in(&mut tx, id).await? else {
                tx.rollback().await?;
                return Ok::<_, StorageError>(Ok(None));
            };
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Err(CoreError::Conflict(format!("the application is {} already", rec.state.as_str()))));
            }
            if *decision == ApplicationState::Approved {
                sqlx::query("INSERT INTO merchants (id, name, category, status, since) VALUES (?, ?, ?, 'active', ?)")
                    .bind(rec.user.get())
                    .bind(rec.name.clone())
                    .bind(rec.category.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            let notice = ReviewNotice { application: id, user: rec.user, status: decision.as_str().to_owned(), reason, at: now };
            self.write_event(&mut tx, &DurableEvent::MerchantReviewed(notice), now).await?;
            self.write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(Ok(Some(rec)))
        };
        run.await?
    }

    async fn merchant(&self, id: UserId) -> Result<Option<Merchant>> {
        let mut conn = self.pool.acquire().await.map_err(StorageError::from)?;
        Ok(self.merchant_in(&mut conn, id).await?)
    }

    async fn merchants(&self, category: Option<Category>, after: Option<UserId>, limit: u32) -> Result<Vec<Merchant>> {
        let filter = if category.is_some() { " AND category = ?" } else { "" };
        let sql = format!("SELECT {MERCHANT_COLS} FROM merchants WHERE status = 'active'{filter} AND id > ? ORDER BY id LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(c) = category {
            q = q.bind(c.as_str());
        }
        let rows = q
            .bind(after.map(|a| a.get()).unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(merchant_from).collect::<Result<_, _>>()?)
    }

    async fn set_suspended(&self, id: UserId, reason: Option<&str>, now: i64, audit: &NewAudit) -> Result<Option<Merchant>> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let (to, from) = if reason.is_some() { ("suspended", "active") } else { ("active", "suspended") };
            let done = sqlx::query(AssertSqlSafe(format!("UPDATE merchants SET status = ?, suspend_reason = ? WHERE id = ? AND status = '{from}'")))
                .bind(to)
                .bind(reason.map(str::to_owned))
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
            let Some(m) = self.merchant_in(&mut tx, id).await? else {
                tx.rollback().await?;
                return Ok::<_, StorageError>(Ok(None));
            };
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Err(CoreError::Conflict(format!("the merchant is {}", m.status.as_str()))));
            }
            self.write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(Ok(Some(m)))
        };
        run.await?
    }
}

#[async_trait]
impl LeadStore for SqlStore {
    async fn create_lead(&self, lead: &SealedLead, now: i64) -> Result<LeadRecord> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query(
                "INSERT INTO merchant_leads (company, contact_name, phone_cipher, phone_masked, category, city, message, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(lead.company.clone())
            .bind(lead.contact_name.clone())
            .bind(lead.phone_cipher.clone())
            .bind(lead.phone_masked.clone())
            .bind(lead.category.as_str())
            .bind(lead.city.clone())
            .bind(lead.message.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = self.insert_id(&mut tx, res).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(LeadRecord {
                id: RecordId::new(id).map_err(|_| corrupt("lead id"))?,
                company: lead.company.clone(),
                contact_name: lead.contact_name.clone(),
                phone_masked: lead.phone_masked.clone(),
                category: lead.category,
                city: lead.city.clone(),
                message: lead.message.clone(),
                created_at: now,
                handled: None,
            })
        };
        Ok(run.await?)
    }

    async fn leads(&self, open_only: bool, after: Option<RecordId>, limit: u32) -> Result<Vec<LeadRecord>> {
        let filter = if open_only { " AND handled_at IS NULL" } else { "" };
        let sql = format!("SELECT {LEAD_COLS} FROM merchant_leads WHERE id > ?{filter} ORDER BY id LIMIT ?");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after.map(RecordId::get).unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(lead_from).collect::<Result<_, _>>()?)
    }

    async fn handle_lead(&self, id: RecordId, by: UserId, note: &str, now: i64, audit: &NewAudit) -> Result<Option<LeadRecord>> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query("UPDATE merchant_leads SET handled_by = ?, handled_note = ?, handled_at = ? WHERE id = ? AND handled_at IS NULL")
                .bind(by.get())
                .bind(note.to_owned())
                .bind(now)
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
            let sql = format!("SELECT {LEAD_COLS} FROM merchant_leads WHERE id = ?");
            let Some(row) = sqlx::query(AssertSqlSafe(sql)).bind(id.get()).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok::<_, StorageError>(Ok(None));
            };
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Err(CoreError::Conflict("the lead was handled already".into())));
            }
            let lead = lead_from(&row)?;
            self.write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(Ok(Some(lead)))
        };
        run.await?
    }
}
