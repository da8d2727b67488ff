//! `SqlStore` as the users area's ports: `AccountStore` (profile, settings, sealed phone,
//! consent, what an export reads) and `RelationStore` (blocks, contacts, the settings the
//! privacy rules read). The clear phone number never reaches this file: it stores what
//! `users::pii` sealed.

use crate::store::{corrupt, message_from, placeholders};
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::users::*;
use jiebanke_chat_core::*;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use std::collections::{HashMap, HashSet};

const PROFILE_COLS: &str = "id, nickname, avatar_url, gender, birth_year, bio, tags, created_at, erased_at";
const SETTINGS_COLS: &str = "dm_from, group_add_from, presence_to, matchable";
/// Rows per `IN (...)` list.
const IN_CHUNK: usize = 100;

fn profile_from(row: &AnyRow) -> Result<Profile, StorageError> {
    let gender: String = row.try_get("gender")?;
    let tags: Option<String> = row.try_get("tags")?;
    let birth: Option<i64> = row.try_get("birth_year")?;
    Ok(Profile {
        id: UserId::new(row.try_get("id")?).map_err(|_| corrupt("user id"))?,
        nickname: row.try_get("nickname")?,
        avatar_url: row.try_get("avatar_url")?,
        gender: Gender::from_str(&gender).ok_or_else(|| corrupt("gender"))?,
        birth_year: birth.map(|y| y as u16),
        bio: row.try_get::<Option<String>, _>("bio")?.unwrap_or_default(),
        tags: tags.filter(|t| !t.is_empty()).map(|t| t.split('\n').map(str::to_owned).collect()).unwrap_or_default(),
        created_at: row.try_get("created_at")?,
        erased: row.try_get::<Option<i64>, _>("erased_at")?.is_some(),
    })
}

const ACCOUNT_COLS: &str = "id, nickname, avatar_url, gender, birth_year, bio, tags, created_at, erased_at, provider, role, last_seen, phone_masked, consent_version, consent_at, banned_at";

fn account_from(row: &AnyRow) -> Result<Account, StorageError> {
    let version: Option<String> = row.try_get("consent_version")?;
    let at: Option<i64> = row.try_get("consent_at")?;
    Ok(Account {
        profile: profile_from(row)?,
        provider: row.try_get("provider")?,
        role: crate::store::role_from(row)?,
        last_seen: row.try_get("last_seen")?,
        phone_masked: row.try_get("phone_masked")?,
        consent: version.zip(at).map(|(version, at)| Consent { version, at }),
        banned: row.try_get::<Option<i64>, _>("banned_at")?.is_some(),
    })
}

fn audience(row: &AnyRow, col: &str) -> Result<Audience, StorageError> {
    let v: String = row.try_get(col)?;
    Audience::from_str(&v).ok_or_else(|| corrupt(col))
}

fn settings_from(row: &AnyRow) -> Result<Settings, StorageError> {
    Ok(Settings {
        dm_from: audience(row, "dm_from")?,
        group_add_from: audience(row, "group_add_from")?,
        presence_to: audience(row, "presence_to")?,
        matchable: row.try_get::<i64, _>("matchable")? != 0,
    })
}

fn direct_key(a: UserId, b: UserId) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn account(&self, user: UserId) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM users WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        Ok(row.as_ref().map(account_from).transpose()?)
    }

    async fn search_accounts(&self, query: &AccountQuery, after: Option<UserId>, limit: u32) -> Result<Vec<Account>> {
        let (clause, a, b): (&str, String, Option<i64>) = match query {
            AccountQuery::PhoneIndex(index) => ("phone_index = ?", index.clone(), None),
            AccountQuery::Nickname(text) => ("nickname LIKE ? ESCAPE '!'", crate::store::like_contains(text), None),
            AccountQuery::IdOrNickname(id, text) => ("(nickname LIKE ? ESCAPE '!' OR id = ?)", crate::store::like_contains(text), Some(id.get())),
        };
        let sql = format!("SELECT {ACCOUNT_COLS} FROM users WHERE {clause} AND id > ? ORDER BY id LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(a);
        if let Some(b) = b {
            q = q.bind(b);
        }
        let rows = q
            .bind(after.map(|u| u.get()).unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(account_from).collect::<Result<_, _>>()?)
    }

    async fn profile(&self, user: UserId) -> Result<Option<Profile>> {
        let sql = format!("SELECT {PROFILE_COLS} FROM users WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        Ok(row.as_ref().map(profile_from).transpose()?)
    }

    async fn update_profile(&self, user: UserId, patch: &ProfilePatch) -> Result<Option<Profile>> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let sql = format!("SELECT {PROFILE_COLS} FROM users WHERE id = ?");
            let Some(row) = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok::<_, StorageError>(None);
            };
            let mut p = profile_from(&row)?;
            patch.apply(&mut p);
            sqlx::query("UPDATE users SET nickname = ?, avatar_url = ?, gender = ?, birth_year = ?, bio = ?, tags = ? WHERE id = ?")
                .bind(p.nickname.clone())
                .bind(p.avatar_url.clone())
                .bind(p.gender.as_str())
                .bind(p.birth_year.map(i64::from))
                .bind(p.bio.clone())
                .bind(p.tags.join("\n"))
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(p))
        };
        Ok(run.await?)
    }

    async fn settings(&self, user: UserId) -> Result<Settings> {
        let sql = format!("SELECT {SETTINGS_COLS} FROM users WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        Ok(row.as_ref().map(settings_from).transpose()?.unwrap_or_default())
    }

    async fn update_settings(&self, user: UserId, patch: &SettingsPatch) -> Result<Settings> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let sql = format!("SELECT {SETTINGS_COLS} FROM users WHERE id = ?");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(user.get()).fetch_optional(&mut *tx).await?;
            let mut s = row.as_ref().map(settings_from).transpose()?.unwrap_or_default();
            patch.apply(&mut s);
            sqlx::query("UPDATE users SET dm_from = ?, group_add_from = ?, presence_to = ?, matchable = ? WHERE id = ?")
                .bind(s.dm_from.as_str())
                .bind(s.group_add_from.as_str())
                .bind(s.presence_to.as_str())
                .bind(i64::from(s.matchable))
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StorageError>(s)
        };
        Ok(run.await?)
    }

    async fn set_phone(&self, user: UserId, phone: &SealedPhone) -> Result<()> {
        let taken = sqlx::query("SELECT id FROM users WHERE phone_index = ? AND id <> ?")
            .bind(phone.index.clone())
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        if taken.is_some() {
            return Err(CoreError::Conflict("this phone number belongs to another account".into()));
        }
        let done = sqlx::query("UPDATE users SET phone_cipher = ?, phone_index = ?, phone_masked = ? WHERE id = ?")
            .bind(phone.cipher.clone())
            .bind(phone.index.clone())
            .bind(phone.masked.clone())
            .bind(user.get())
            .execute(&self.pool)
            .await;
        match done {
            Ok(_) => Ok(()),
            // Two accounts raced for the same number: the unique index kept one.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CoreError::Conflict("this phone number belongs to another account".into()))
            }
            Err(e) => Err(StorageError::from(e).into()),
        }
    }

    async fn sealed_phone(&self, user: UserId) -> Result<Option<String>> {
        let row = sqlx::query("SELECT phone_cipher FROM users WHERE id = ?").bind(user.get()).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        Ok(match row {
            Some(r) => r.try_get("phone_cipher").map_err(StorageError::from)?,
            None => None,
        })
    }

    async fn set_consent(&self, user: UserId, consent: &Consent) -> Result<()> {
        sqlx::query("UPDATE users SET consent_version = ?, consent_at = ? WHERE id = ?")
            .bind(consent.version.clone())
            .bind(consent.at)
            .bind(user.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(())
    }

    async fn sent_messages(&self, user: UserId, after: Option<(ConvId, Seq)>, limit: u32) -> Result<Vec<Message>> {
        let (c, s) = after.map(|(c, s)| (c.get(), s.get() as i64)).unwrap_or((0, 0));
        let rows = sqlx::query(
            "SELECT conv_id, seq, sender_id, cmid, ts, kind, text, deleted_at, recalled_at FROM messages \
             WHERE sender_id = ? AND (conv_id > ? OR (conv_id = ? AND seq > ?)) ORDER BY conv_id, seq LIMIT ?",
        )
        .bind(user.get())
        .bind(c)
        .bind(c)
        .bind(s)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StorageError::from)?;
        Ok(rows.iter().map(message_from).collect::<Result<_, _>>()?)
    }

    async fn all_conversations(&self, user: UserId) -> Result<Vec<Conversation>> {
        use jiebanke_chat_core::ports::ConversationStore;
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let page = self.conversations_of(user, before, 500).await?;
            before = page.last().map(|s| s.conversation.id);
            let done = page.len() < 500;
            out.extend(page.into_iter().map(|s| s.conversation));
            if done {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    async fn identity(&self, user: UserId) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT provider, subject FROM users WHERE id = ? AND erased_at IS NULL")
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(match row {
            Some(r) => Some((r.try_get("provider").map_err(StorageError::from)?, r.try_get("subject").map_err(StorageError::from)?)),
            None => None,
        })
    }

    async fn erase(&self, user: UserId, banned_identity: Option<&str>, now: i64) -> Result<bool> {
        let run = async {
            let mut tx = self.begin_write().await?;
            // The subject is replaced by one no login can produce (it has a space: dev codes and
            // WeChat openids are visible ASCII only), unique per id.
            let done = sqlx::query(
                "UPDATE users SET nickname = ?, subject = ?, avatar_url = NULL, gender = 'unspecified', birth_year = NULL, \
                 bio = '', tags = '', dm_from = 'everyone', group_add_from = 'contacts', presence_to = 'contacts', \
                 matchable = 1, phone_cipher = NULL, phone_index = NULL, phone_masked = NULL, consent_version = NULL, \
                 consent_at = NULL, last_seen = NULL, role = 'none', erased_at = ? WHERE id = ? AND erased_at IS NULL",
            )
            .bind(ERASED_NICKNAME)
            .bind(format!("erased {user}"))
            .bind(now)
            .bind(user.get())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok::<_, StorageError>(false);
            }
            sqlx::query("DELETE FROM blocks WHERE user_id = ? OR blocked_id = ?").bind(user.get()).bind(user.get()).execute(&mut *tx).await?;
            sqlx::query("UPDATE messages SET deleted_at = ?, text = '' WHERE sender_id = ? AND deleted_at IS NULL")
                .bind(now)
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE moderation_items SET excerpt = '' WHERE author_id = ?").bind(user.get()).execute(&mut *tx).await?;
            // Merchant papers: the sealed and masked values and the contact's name go; a pending
            // application is withdrawn (rejected with why); a merchant is closed for good.
            sqlx::query(
                "UPDATE merchant_applications SET license_cipher = '', license_masked = '', phone_cipher = '', phone_masked = '', \
                 contact_name = '', open_user = NULL, license_index = '', live_license = NULL, \
                 reason = CASE WHEN status = 'pending' THEN 'account erased' ELSE reason END, \
                 decided_at = CASE WHEN status = 'pending' THEN ? ELSE decided_at END, \
                 status = CASE WHEN status = 'pending' THEN 'rejected' ELSE status END WHERE user_id = ?",
            )
            .bind(now)
            .bind(user.get())
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE merchants SET status = 'closed' WHERE id = ?").bind(user.get()).execute(&mut *tx).await?;
            // Orders stay (the merchant's accounts need them); the recipient I named and my note
            // go.
            sqlx::query("UPDATE orders SET recipient_sealed = NULL, recipient_masked = NULL, note = '' WHERE buyer_id = ?")
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
            // A staff account's credentials go with it (its username is free again).
            sqlx::query("DELETE FROM staff_accounts WHERE user_id = ?").bind(user.get()).execute(&mut *tx).await?;
            if let Some(index) = banned_identity {
                let sql = format!("{} INTO banned_identities (identity_index, created_at) VALUES (?, ?)", self.dialect.insert_ignore());
                sqlx::query(AssertSqlSafe(sql)).bind(index.to_owned()).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        };
        let erased = run.await?;
        if erased && self.dialect == crate::Dialect::Sqlite {
            // The old pages are in the WAL until a checkpoint copies the zeroed ones over them;
            // do it now (best effort: a busy checkpoint leaves it to the next one).
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await {
                tracing::warn!(error = %e, "checkpoint after an erase failed; the next one completes it");
            }
        }
        Ok(erased)
    }

    async fn identity_banned(&self, identity_index: &str) -> Result<bool> {
        let row = sqlx::query("SELECT created_at FROM banned_identities WHERE identity_index = ?")
            .bind(identity_index.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl RelationStore for SqlStore {
    async fn block(&self, me: UserId, other: UserId, now: i64) -> Result<bool> {
        let exists = sqlx::query("SELECT id FROM users WHERE id = ?").bind(other.get()).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        if exists.is_none() {
            return Ok(false);
        }
        let sql = format!("{} INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)", self.dialect.insert_ignore());
        sqlx::query(AssertSqlSafe(sql))
            .bind(me.get())
            .bind(other.get())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(true)
    }

    async fn unblock(&self, me: UserId, other: UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?")
            .bind(me.get())
            .bind(other.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(done.rows_affected() > 0)
    }

    async fn blocks(&self, me: UserId, after: Option<UserId>, limit: u32) -> Result<Vec<Block>> {
        let rows = sqlx::query("SELECT blocked_id, created_at FROM blocks WHERE user_id = ? AND blocked_id > ? ORDER BY blocked_id LIMIT ?")
            .bind(me.get())
            .bind(after.map(|u| u.get()).unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(Block {
                user: UserId::new(r.try_get("blocked_id").map_err(StorageError::from)?).map_err(|_| corrupt("blocked id"))?,
                at: r.try_get("created_at").map_err(StorageError::from)?,
            });
        }
        Ok(out)
    }

    async fn relations(&self, actor: UserId, targets: &[UserId]) -> Result<Vec<Relation>> {
        let mut settings: HashMap<i64, Settings> = HashMap::new();
        let mut blocked: HashSet<i64> = HashSet::new();
        let mut contacts: HashSet<i64> = HashSet::new();
        let run = async {
            for chunk in targets.chunks(IN_CHUNK) {
                let ph = placeholders(chunk.len());
                let sql = format!("SELECT id, {SETTINGS_COLS} FROM users WHERE id IN ({ph})");
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for t in chunk {
                    q = q.bind(t.get());
                }
                for row in q.fetch_all(&self.pool).await? {
                    settings.insert(row.try_get("id")?, settings_from(&row)?);
                }
                let sql = format!(
                    "SELECT blocked_id AS other FROM blocks WHERE user_id = ? AND blocked_id IN ({ph}) \
                     UNION SELECT user_id AS other FROM blocks WHERE blocked_id = ? AND user_id IN ({ph})"
                );
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(actor.get());
                for t in chunk {
                    q = q.bind(t.get());
                }
                q = q.bind(actor.get());
                for t in chunk {
                    q = q.bind(t.get());
                }
                for row in q.fetch_all(&self.pool).await? {
                    blocked.insert(row.try_get("other")?);
                }
                let sql = format!(
                    "SELECT DISTINCT b.user_id AS other FROM members a JOIN members b ON b.conv_id = a.conv_id \
                     WHERE a.user_id = ? AND b.user_id IN ({ph})"
                );
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(actor.get());
                for t in chunk {
                    q = q.bind(t.get());
                }
                for row in q.fetch_all(&self.pool).await? {
                    contacts.insert(row.try_get("other")?);
                }
            }
            Ok::<_, StorageError>(())
        };
        run.await?;
        Ok(targets
            .iter()
            .map(|t| Relation {
                target_settings: settings.get(&t.get()).copied().unwrap_or_default(),
                blocked: blocked.contains(&t.get()),
                contacts: contacts.contains(&t.get()),
            })
            .collect())
    }

    async fn direct_between(&self, a: UserId, b: UserId) -> Result<Option<ConvId>> {
        let row = sqlx::query("SELECT id FROM conversations WHERE direct_key = ?")
            .bind(direct_key(a, b))
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(match row {
            Some(r) => Some(ConvId::new(r.try_get("id").map_err(StorageError::from)?)?),
            None => None,
        })
    }
}
