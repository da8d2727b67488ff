//! `SqlStore` as the chat-core store ports. Every statement here is valid in both dialects
//! unless it goes through `Dialect`.

use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::ports::{ConversationStore, MessageStore, UserStore};
use jiebanke_chat_core::*;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use std::collections::HashMap;

/// Pairs per statement when several direct conversations are made at once.
const DIRECT_CHUNK: usize = 64;

/// Rows per multi-row `INSERT` (keeps statements far below both engines' placeholder limits).
const INSERT_CHUNK: usize = 100;

/// Splits `items` into slices whose lengths are powers of two (at most 128), largest first.
/// The hot path's statements are built per slice length, so there are only eight distinct SQL
/// texts per statement and every one stays in the driver's prepared-statement cache; chunks of
/// arbitrary length would prepare a new statement for almost every batch.
fn pow2_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() >= 128 { 128 } else { 1 << (usize::BITS - 1 - rest.len().leading_zeros()) };
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// A `LIKE ? ESCAPE '!'` pattern for "contains `text`", its wildcards taken as text (`!`
/// escapes the same way on SQLite and MySQL, unlike the backslash).
pub(crate) fn like_contains(text: &str) -> String {
    format!("%{}%", text.replace('!', "!!").replace('%', "!%").replace('_', "!_"))
}

pub(crate) fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

pub(crate) fn role_from(row: &AnyRow) -> Result<Role, StorageError> {
    let r: String = row.try_get("role")?;
    Role::parse(&r).map_err(|_| corrupt("role"))
}

fn user_from(row: &AnyRow) -> Result<User, StorageError> {
    Ok(User {
        id: UserId::new(row.try_get("id")?).map_err(|_| corrupt("user id"))?,
        provider: row.try_get("provider")?,
        nickname: row.try_get("nickname")?,
        created_at: row.try_get("created_at")?,
        last_seen: row.try_get("last_seen")?,
        role: role_from(row)?,
        banned: row.try_get::<Option<i64>, _>("banned_at")?.is_some(),
        erased: row.try_get::<Option<i64>, _>("erased_at")?.is_some(),
    })
}

pub(crate) fn message_from(row: &AnyRow) -> Result<Message, StorageError> {
    let kind: String = row.try_get("kind")?;
    let text: String = row.try_get("text")?;
    let deleted: Option<i64> = row.try_get("deleted_at")?;
    let recalled: Option<i64> = row.try_get("recalled_at")?;
    let body = match kind.as_str() {
        _ if deleted.is_some() => MessageBody::Deleted,
        _ if recalled.is_some() => MessageBody::Recalled,
        "text" => MessageBody::Text(MessageText::parse(&text).map_err(|_| corrupt("message text"))?),
        _ => return Err(corrupt("message kind")),
    };
    Ok(Message {
        conv: ConvId::new(row.try_get("conv_id")?).map_err(|_| corrupt("conv id"))?,
        seq: Seq::new(row.try_get::<i64, _>("seq")? as u64),
        from: UserId::new(row.try_get("sender_id")?).map_err(|_| corrupt("sender id"))?,
        cmid: ClientMsgId::parse(&row.try_get::<String, _>("cmid")?).map_err(|_| corrupt("cmid"))?,
        ts: row.try_get("ts")?,
        body,
    })
}

fn body_text(body: &MessageBody) -> &str {
    body.text().unwrap_or("")
}

pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

impl SqlStore {
    /// The id the transaction's last `INSERT` generated.
    pub(crate) async fn insert_id(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, res: sqlx::any::AnyQueryResult) -> Result<i64, StorageError> {
        Ok(match res.last_insert_id() {
            Some(id) => id,
            None => sqlx::query(self.dialect.last_insert_id()).fetch_one(&mut **tx).await?.try_get::<i64, _>(0)?,
        })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first could not upgrade to a writer if
    /// another connection wrote meanwhile (SQLITE_BUSY_SNAPSHOT, which busy_timeout does not wait
    /// out).
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StorageError> {
        Ok(match self.dialect {
            crate::Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            crate::Dialect::MySql => self.pool.begin().await?,
        })
    }

    async fn conversation_row(&self, id: ConvId) -> Result<Option<Conversation>, StorageError> {
        let row = sqlx::query(
            "SELECT id, kind, title, owner_id, created_at, last_seq FROM conversations WHERE id = ?",
        )
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut conv = conversation_from(&row)?;
        conv.members = self.member_list(id).await?;
        Ok(Some(conv))
    }

    async fn member_list(&self, id: ConvId) -> Result<Vec<UserId>, StorageError> {
        let rows = sqlx::query("SELECT user_id FROM members WHERE conv_id = ? ORDER BY joined_at, user_id")
            .bind(id.get())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| UserId::new(r.try_get("user_id")?).map_err(|_| corrupt("member id")))
            .collect()
    }

    async fn append_tx(&self, batch: &[NewMessage], now: i64) -> Result<Vec<Result<Appended>>, StorageError> {
        let mut out: Vec<Option<Result<Appended>>> = vec![None; batch.len()];
        let mut tx = self.begin_write().await?;

        // 1. Resends: (sender, cmid) already stored, or repeated inside this batch.
        let mut stored: HashMap<(i64, String), Message> = HashMap::new();
        for chunk in pow2_chunks(batch) {
            let cond = vec!["(sender_id = ? AND cmid = ?)"; chunk.len()].join(" OR ");
            let sql = format!("SELECT conv_id, seq, sender_id, cmid, ts, kind, text, deleted_at, recalled_at FROM messages WHERE {cond}");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for m in chunk {
                q = q.bind(m.from.get()).bind(m.cmid.as_str().to_owned());
            }
            for row in q.fetch_all(&mut *tx).await? {
                let m = message_from(&row)?;
                stored.insert((m.from.get(), m.cmid.as_str().to_owned()), m);
            }
        }
        let mut fresh: Vec<usize> = Vec::new();
        let mut first_in_batch: HashMap<(i64, &str), usize> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, m) in batch.iter().enumerate() {
            let key = (m.from.get(), m.cmid.as_str().to_owned());
            if let Some(orig) = stored.get(&key) {
                out[i] = Some(Ok(Appended::Duplicate(orig.clone())));
            } else if let Some(&j) = first_in_batch.get(&(m.from.get(), m.cmid.as_str())) {
                repeats.push((i, j));
            } else {
                first_in_batch.insert((m.from.get(), m.cmid.as_str()), i);
                fresh.push(i);
            }
        }

        // 2. Seqs: reserve a contiguous range per conversation, for all conversations of the
        //    batch in one UPDATE per chunk, and read the new last_seq back. The UPDATE takes the
        //    row locks (MySQL) or the write lock (SQLite), so concurrent writers on other nodes
        //    never share a seq.
        let mut order: Vec<ConvId> = Vec::new();
        let mut members: HashMap<ConvId, Vec<usize>> = HashMap::new();
        for &i in &fresh {
            members
                .entry(batch[i].conv)
                .or_insert_with(|| {
                    order.push(batch[i].conv);
                    Vec::new()
                })
                .push(i);
        }
        let mut lasts: HashMap<i64, i64> = HashMap::with_capacity(order.len());
        for chunk in pow2_chunks(&order) {
            let sql = format!(
                "UPDATE conversations SET last_seq = last_seq + CASE id {} END WHERE id IN ({})",
                vec!["WHEN ? THEN ?"; chunk.len()].join(" "),
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                q = q.bind(c.get()).bind(members[c].len() as i64);
            }
            for c in chunk {
                q = q.bind(c.get());
            }
            q.execute(&mut *tx).await?;
            let sql = format!("SELECT id, last_seq FROM conversations WHERE id IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                q = q.bind(c.get());
            }
            for row in q.fetch_all(&mut *tx).await? {
                lasts.insert(row.try_get("id")?, row.try_get("last_seq")?);
            }
        }
        let mut rows: Vec<Message> = Vec::with_capacity(fresh.len());
        for conv in &order {
            let idxs = &members[conv];
            let Some(&last) = lasts.get(&conv.get()) else {
                for &i in idxs {
                    out[i] = Some(Err(CoreError::NotFound("conversation".into())));
                }
                continue;
            };
            let first = last - idxs.len() as i64 + 1;
            for (k, &i) in idxs.iter().enumerate() {
                let m = &batch[i];
                let msg = Message {
                    conv: m.conv,
                    seq: Seq::new((first + k as i64) as u64),
                    from: m.from,
                    cmid: m.cmid.clone(),
                    ts: now,
                    body: m.body.clone(),
                };
                out[i] = Some(Ok(Appended::New(msg.clone())));
                rows.push(msg);
            }
        }

        // 3. The rows themselves.
        for chunk in pow2_chunks(&rows) {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!("INSERT INTO messages (conv_id, seq, sender_id, cmid, ts, kind, text) VALUES {values}");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for m in chunk {
                q = q
                    .bind(m.conv.get())
                    .bind(m.seq.get() as i64)
                    .bind(m.from.get())
                    .bind(m.cmid.as_str().to_owned())
                    .bind(m.ts)
                    .bind(m.body.kind())
                    .bind(body_text(&m.body).to_owned());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;

        for (i, j) in repeats {
            out[i] = match &out[j] {
                Some(Ok(a)) => Some(Ok(Appended::Duplicate(a.message().clone()))),
                Some(Err(e)) => Some(Err(e.clone())),
                None => None,
            };
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(CoreError::unavailable("message not processed"))))
            .collect())
    }
}

fn conversation_from(row: &AnyRow) -> Result<Conversation, StorageError> {
    let kind: String = row.try_get("kind")?;
    let owner: Option<i64> = row.try_get("owner_id")?;
    Ok(Conversation {
        id: ConvId::new(row.try_get("id")?).map_err(|_| corrupt("conv id"))?,
        kind: ConversationKind::parse(&kind).map_err(|_| corrupt("conv kind"))?,
        title: row.try_get("title")?,
        owner: owner.and_then(|o| UserId::new(o).ok()),
        created_at: row.try_get("created_at")?,
        last_seq: Seq::new(row.try_get::<i64, _>("last_seq")? as u64),
        members: Vec::new(),
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn upsert_user(&self, identity: &Identity, nickname: &str, now: i64) -> Result<User> {
        // A known identity is read, not inserted: `INSERT IGNORE` of an existing row would still
        // consume an auto-increment id (InnoDB, and SQLite's AUTOINCREMENT), so every repeated
        // login would leave a gap. Only two first logins of one identity at once still race
        // (the loser's insert is ignored, and may consume an id).
        let select = "SELECT id, provider, nickname, created_at, last_seen, role, banned_at, erased_at FROM users WHERE provider = ? AND subject = ?";
        let known = sqlx::query(select)
            .bind(identity.provider)
            .bind(identity.subject.clone())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        if let Some(row) = known {
            return Ok(user_from(&row)?);
        }
        let sql = format!(
            "{} INTO users (provider, subject, nickname, created_at) VALUES (?, ?, ?, ?)",
            self.dialect.insert_ignore()
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(identity.provider)
            .bind(identity.subject.clone())
            .bind(nickname.to_owned())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        let row = sqlx::query(select)
        .bind(identity.provider)
        .bind(identity.subject.clone())
        .fetch_one(&self.pool)
        .await
        .map_err(StorageError::from)?;
        Ok(user_from(&row)?)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, provider, nickname, created_at, last_seen, role, banned_at, erased_at FROM users WHERE id = ?")
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.as_ref().map(user_from).transpose()?)
    }

    async fn existing_users(&self, ids: &[UserId]) -> Result<Vec<UserId>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(INSERT_CHUNK) {
            let sql = format!("SELECT id FROM users WHERE id IN ({}) AND erased_at IS NULL", placeholders(chunk.len()));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.get());
            }
            for row in q.fetch_all(&self.pool).await.map_err(StorageError::from)? {
                let id: i64 = row.try_get("id").map_err(StorageError::from)?;
                found.push(UserId::new(id)?);
            }
        }
        Ok(found)
    }

    async fn set_last_seen(&self, id: UserId, ts: i64) -> Result<()> {
        sqlx::query("UPDATE users SET last_seen = ? WHERE id = ?")
            .bind(ts)
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(())
    }
}

#[async_trait]
impl ConversationStore for SqlStore {
    async fn direct_conversation(&self, a: UserId, b: UserId, now: i64) -> Result<Conversation> {
        self.direct_conversations(&[(a, b)], now)
            .await?
            .pop()
            .ok_or_else(|| CoreError::unavailable("conversation vanished"))
    }

    async fn direct_conversations(&self, pairs: &[(UserId, UserId)], now: i64) -> Result<Vec<Conversation>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let keyed: Vec<(UserId, UserId, String)> = pairs
            .iter()
            .map(|(a, b)| {
                let (lo, hi) = ((*a).min(*b), (*a).max(*b));
                (lo, hi, format!("{lo}:{hi}"))
            })
            .collect();
        let run = async {
            let mut tx = self.begin_write().await?;
            let mut ids: HashMap<String, i64> = HashMap::with_capacity(keyed.len());
            // Three statements per chunk of pairs, whatever its size.
            for chunk in keyed.chunks(DIRECT_CHUNK) {
                let sql = format!(
                    "{} INTO conversations (kind, direct_key, last_seq, created_at) VALUES {}",
                    self.dialect.insert_ignore(),
                    vec!["('direct', ?, 0, ?)"; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for (_, _, key) in chunk {
                    q = q.bind(key.clone()).bind(now);
                }
                q.execute(&mut *tx).await?;
                let sql = format!(
                    "SELECT id, direct_key FROM conversations WHERE direct_key IN ({})",
                    vec!["?"; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for (_, _, key) in chunk {
                    q = q.bind(key.clone());
                }
                for row in q.fetch_all(&mut *tx).await? {
                    ids.insert(row.try_get("direct_key")?, row.try_get("id")?);
                }
                let sql = format!(
                    "{} INTO members (conv_id, user_id, read_seq, joined_at) VALUES {}",
                    self.dialect.insert_ignore(),
                    vec!["(?, ?, 0, ?), (?, ?, 0, ?)"; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for (lo, hi, key) in chunk {
                    let id = *ids.get(key).ok_or_else(|| StorageError::Corrupt(format!("direct conversation {key} not found after its insert")))?;
                    q = q.bind(id).bind(lo.get()).bind(now).bind(id).bind(hi.get()).bind(now);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StorageError>(ids)
        };
        let ids = run.await?;
        let mut out = Vec::with_capacity(keyed.len());
        for (_, _, key) in &keyed {
            let id = ConvId::new(ids.get(key).copied().unwrap_or_default())?;
            out.push(self.conversation_row(id).await?.ok_or_else(|| CoreError::unavailable("conversation vanished"))?);
        }
        Ok(out)
    }

    async fn create_group(&self, owner: UserId, title: &Title, members: &[UserId], now: i64) -> Result<Conversation> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query(
                "INSERT INTO conversations (kind, title, owner_id, last_seq, created_at) VALUES ('group', ?, ?, 0, ?)",
            )
            .bind(title.as_str().to_owned())
            .bind(owner.get())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = self.insert_id(&mut tx, res).await?;
            let mut all = vec![owner];
            all.extend(members.iter().copied().filter(|m| *m != owner));
            for chunk in all.chunks(INSERT_CHUNK) {
                let values = vec!["(?, ?, 0, ?)"; chunk.len()].join(", ");
                let sql = format!("INSERT INTO members (conv_id, user_id, read_seq, joined_at) VALUES {values}");
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for u in chunk {
                    q = q.bind(id).bind(u.get()).bind(now);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StorageError>(id)
        };
        let id = ConvId::new(run.await?)?;
        self.conversation_row(id).await?.ok_or_else(|| CoreError::unavailable("conversation vanished"))
    }

    async fn conversation(&self, id: ConvId) -> Result<Option<Conversation>> {
        Ok(self.conversation_row(id).await?)
    }

    async fn members(&self, id: ConvId) -> Result<Vec<UserId>> {
        Ok(self.member_list(id).await?)
    }

    async fn add_members(&self, id: ConvId, users: &[UserId], now: i64) -> Result<()> {
        for chunk in users.chunks(INSERT_CHUNK) {
            let values = vec!["(?, ?, 0, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "{} INTO members (conv_id, user_id, read_seq, joined_at) VALUES {values}",
                self.dialect.insert_ignore()
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for u in chunk {
                q = q.bind(id.get()).bind(u.get()).bind(now);
            }
            q.execute(&self.pool).await.map_err(StorageError::from)?;
        }
        Ok(())
    }

    async fn remove_member(&self, id: ConvId, user: UserId) -> Result<bool> {
        let res = sqlx::query("DELETE FROM members WHERE conv_id = ? AND user_id = ?")
            .bind(id.get())
            .bind(user.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(res.rows_affected() > 0)
    }

    async fn conversations_of(&self, user: UserId, before: Option<ConvId>, limit: u32) -> Result<Vec<ConversationSummary>> {
        let rows = sqlx::query(
            "SELECT c.id, c.kind, c.title, c.owner_id, c.created_at, c.last_seq, m.read_seq \
             FROM members m JOIN conversations c ON c.id = m.conv_id \
             WHERE m.user_id = ? AND m.conv_id < ? ORDER BY m.conv_id DESC LIMIT ?",
        )
        .bind(user.get())
        .bind(before.map(|c| c.get()).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StorageError::from)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let conversation = conversation_from(row)?;
            let read: i64 = row.try_get("read_seq").map_err(StorageError::from)?;
            out.push(ConversationSummary { conversation, read_seq: Seq::new(read as u64) });
        }
        if !out.is_empty() {
            let ids: Vec<i64> = out.iter().map(|s| s.conversation.id.get()).collect();
            let mut by_conv: HashMap<i64, Vec<UserId>> = HashMap::new();
            for chunk in ids.chunks(INSERT_CHUNK) {
                let sql = format!(
                    "SELECT conv_id, user_id FROM members WHERE conv_id IN ({}) ORDER BY joined_at, user_id",
                    placeholders(chunk.len())
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(*id);
                }
                for row in q.fetch_all(&self.pool).await.map_err(StorageError::from)? {
                    let c: i64 = row.try_get("conv_id").map_err(StorageError::from)?;
                    let u: i64 = row.try_get("user_id").map_err(StorageError::from)?;
                    by_conv.entry(c).or_default().push(UserId::new(u)?);
                }
            }
            for s in &mut out {
                s.conversation.members = by_conv.remove(&s.conversation.id.get()).unwrap_or_default();
            }
        }
        Ok(out)
    }

    async fn mark_read(&self, id: ConvId, user: UserId, seq: Seq) -> Result<Seq> {
        let run = async {
            let last: i64 = sqlx::query("SELECT last_seq FROM conversations WHERE id = ?")
                .bind(id.get())
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("last_seq"))
                .transpose()?
                .unwrap_or(0);
            // Saturating: a seq past i64 (refused at the edge anyway) caps at the last seq too.
            let target = i64::try_from(seq.get()).unwrap_or(i64::MAX).min(last);
            sqlx::query(
                "UPDATE members SET read_seq = CASE WHEN ? > read_seq THEN ? ELSE read_seq END \
                 WHERE conv_id = ? AND user_id = ?",
            )
            .bind(target)
            .bind(target)
            .bind(id.get())
            .bind(user.get())
            .execute(&self.pool)
            .await?;
            let now: Option<i64> = sqlx::query("SELECT read_seq FROM members WHERE conv_id = ? AND user_id = ?")
                .bind(id.get())
                .bind(user.get())
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("read_seq"))
                .transpose()?;
            Ok::<_, StorageError>(now)
        };
        match run.await? {
            Some(v) => Ok(Seq::new(v as u64)),
            None => Err(CoreError::NotFound("member".into())),
        }
    }
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn append(&self, batch: &[NewMessage], now: i64) -> Result<Vec<Result<Appended>>> {
        Ok(self.append_tx(batch, now).await?)
    }

    async fn history(&self, conv: ConvId, after: Seq, limit: u32) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT conv_id, seq, sender_id, cmid, ts, kind, text, deleted_at, recalled_at FROM messages \
             WHERE conv_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(conv.get())
        // Saturating: nothing comes after a seq past i64 (refused at the edge anyway).
        .bind(i64::try_from(after.get()).unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StorageError::from)?;
        Ok(rows.iter().map(message_from).collect::<Result<Vec<_>, _>>()?)
    }

    async fn recall(&self, conv: ConvId, seq: Seq, sender: UserId, sent_after: i64, now: i64) -> Result<jiebanke_chat_core::ports::Recall> {
        use jiebanke_chat_core::ports::Recall;
        let seq = i64::try_from(seq.get()).unwrap_or(i64::MAX);
        // One statement decides: a recall racing the window's end or another recall is done once.
        let done = sqlx::query(
            "UPDATE messages SET recalled_at = ?, text = '' \
             WHERE conv_id = ? AND seq = ? AND sender_id = ? AND ts >= ? AND deleted_at IS NULL AND recalled_at IS NULL",
        )
        .bind(now)
        .bind(conv.get())
        .bind(seq)
        .bind(sender.get())
        .bind(sent_after)
        .execute(&self.pool)
        .await
        .map_err(StorageError::from)?;
        if done.rows_affected() == 1 {
            return Ok(Recall::Done);
        }
        let row = sqlx::query("SELECT sender_id, recalled_at FROM messages WHERE conv_id = ? AND seq = ?")
            .bind(conv.get())
            .bind(seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        let Some(row) = row else { return Ok(Recall::NoSuchMessage) };
        let from: i64 = row.try_get("sender_id").map_err(StorageError::from)?;
        let recalled: Option<i64> = row.try_get("recalled_at").map_err(StorageError::from)?;
        Ok(if from != sender.get() {
            Recall::NotSender
        } else if recalled.is_some() {
            Recall::Already
        } else {
            // Past the window, or deleted by an admin.
            Recall::TooLate
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pow2_chunks_cover_everything_in_power_of_two_slices() {
        for n in 0..600usize {
            let v: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = super::pow2_chunks(&v).collect();
            assert!(chunks.iter().all(|c| c.len().is_power_of_two() && c.len() <= 128));
            let flat: Vec<usize> = chunks.concat();
            assert_eq!(flat, v);
        }
    }
}
