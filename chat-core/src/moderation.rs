//! Moderation: the banned-word filter every text message passes, users' reports, and what admins
//! do about them (delete a message, ban and unban a user, grant the admin role).
//!
//! A flagged or reported message becomes a `ModerationItem`, stored with its
//! `moderation.created` event in one transaction; the event reaches every admin session on any
//! node through the outbox (see `events`).

use crate::audit::{Actor, AuditAction, AuditEntry, AuditLog, NewAudit};
use crate::error::{CoreError, FieldProblem, Result};
use crate::ids::{ConvId, ModerationId, Seq, UserId};
use crate::model::*;
use crate::ports::{AccessStore, Bus, Event, ItemFilter, ModerationStore, Store};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// Most words the filter takes; more is a configuration error.
pub const MAX_WORDS: usize = 100_000;
/// Longest word, in characters.
pub const MAX_WORD_CHARS: usize = 64;
/// Characters of the message kept in an item's excerpt.
const EXCERPT_CHARS: usize = 200;

/// The banned-word filter: Aho–Corasick over the word list (ASCII case folded), replaceable
/// while it runs (`replace`), so that a list reloaded from its file applies to the next message.
pub struct WordFilter {
    inner: RwLock<Arc<Matcher>>,
}

struct Matcher {
    ac: Option<AhoCorasick>,
    words: Vec<String>,
}

impl WordFilter {
    /// A filter of `words` (see `parse_word_list`).
    pub fn new(words: Vec<String>) -> Result<Self> {
        Ok(Self { inner: RwLock::new(Arc::new(Matcher::build(words)?)) })
    }

    /// Replaces the list; returns how many words the filter has now.
    pub fn replace(&self, words: Vec<String>) -> Result<usize> {
        let m = Matcher::build(words)?;
        let n = m.words.len();
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
        Ok(n)
    }

    pub fn len(&self) -> usize {
        self.current().words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The distinct banned words found in `text`, in the list's spelling.
    pub fn matches(&self, text: &str) -> Vec<String> {
        let m = self.current();
        let Some(ac) = &m.ac else { return Vec::new() };
        let mut found: Vec<usize> = ac.find_overlapping_iter(text).map(|x| x.pattern().as_usize()).collect();
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|i| m.words[i].clone()).collect()
    }

    fn current(&self) -> Arc<Matcher> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Matcher {
    fn build(words: Vec<String>) -> Result<Self> {
        if words.len() > MAX_WORDS {
            return Err(CoreError::invalid(format!("the banned-word list has more than {MAX_WORDS} words")));
        }
        if let Some(w) = words.iter().find(|w| w.is_empty() || w.chars().count() > MAX_WORD_CHARS) {
            return Err(CoreError::invalid(format!("banned word {w:?} must be 1 to {MAX_WORD_CHARS} characters")));
        }
        if words.is_empty() {
            return Ok(Self { ac: None, words });
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| CoreError::invalid(format!("banned-word list: {e}")))?;
        Ok(Self { ac: Some(ac), words })
    }
}

/// Parses a word list file: one word per line, blank lines and lines starting with `#` skipped,
/// surrounding white space trimmed, duplicates dropped.
pub fn parse_word_list(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let w = line.trim();
        if w.is_empty() || w.starts_with('#') || out.iter().any(|x| x == w) {
            continue;
        }
        out.push(w.to_owned());
    }
    out
}

/// A report's reason as the reporter wrote it: 1-200 characters, free of banned words (staff
/// read it). `invalid` naming `reason`.
pub fn report_reason(raw: &str, filter: &WordFilter) -> Result<ReportReason> {
    let reason = ReportReason::parse(raw)?;
    if !filter.matches(reason.as_str()).is_empty() {
        return Err(CoreError::Fields(vec![FieldProblem::new("reason", "contains words that are not allowed (含有不允许的词语)")]));
    }
    Ok(reason)
}

/// A report of a user as the edge received it: its reason (`report_reason`) and what it is
/// about, `user` (the default: the person's behaviour) or `profile` (true). Every bad field
/// named at once.
pub fn user_report(reason: &str, about: Option<&str>, filter: &WordFilter) -> Result<(ReportReason, bool)> {
    let mut bad = Vec::new();
    let reason = match report_reason(reason, filter) {
        Ok(r) => Some(r),
        Err(CoreError::Fields(f)) => {
            bad.extend(f);
            None
        }
        Err(e) => return Err(e),
    };
    let about_profile = match about {
        None | Some("user") => false,
        Some("profile") => true,
        Some(_) => {
            bad.push(FieldProblem::new("about", "must be user or profile"));
            false
        }
    };
    match reason {
        Some(r) if bad.is_empty() => Ok((r, about_profile)),
        _ => Err(CoreError::Fields(bad)),
    }
}

/// The moderation use cases.
pub struct ModerationService {
    store: Arc<dyn Store>,
    ops: Arc<dyn ModerationStore>,
    /// Bans and roles.
    access: Arc<dyn AccessStore>,
    bus: Arc<dyn Bus>,
    filter: Arc<WordFilter>,
    wake: Arc<Notify>,
    /// Identities (provider, subject) made admins at login, from configuration.
    configured_admins: Vec<(String, String)>,
    audit: Arc<dyn AuditLog>,
}

impl ModerationService {
    pub fn new(
        store: Arc<dyn Store>,
        ops: Arc<dyn ModerationStore>,
        access: Arc<dyn AccessStore>,
        bus: Arc<dyn Bus>,
        filter: Arc<WordFilter>,
        wake: Arc<Notify>,
        configured_admins: Vec<(String, String)>,
        audit: Arc<dyn AuditLog>,
    ) -> Self {
        Self { store, ops, access, bus, filter, wake, configured_admins, audit }
    }

    pub fn filter(&self) -> &WordFilter {
        &self.filter
    }

    /// After a login: refuses a banned user, and makes a configured admin one.
    pub async fn admit(&self, identity: &Identity, mut user: User) -> Result<User> {
        if user.banned {
            return Err(CoreError::Banned);
        }
        let configured = self.configured_admins.iter().any(|(p, s)| p == identity.provider && *s == identity.subject);
        if configured && user.role != Role::Admin {
            self.access.grant_configured_admin(user.id).await?;
            user.role = Role::Admin;
        }
        Ok(user)
    }

    /// A session may open: the user exists and is not banned. Returns the user.
    pub async fn session_allowed(&self, user: UserId) -> Result<User> {
        let u = self.store.user(user).await?.ok_or_else(|| CoreError::Unauthorized("unknown user".into()))?;
        if u.erased {
            return Err(CoreError::Unauthorized("this account was erased".into()));
        }
        if u.banned {
            return Err(CoreError::Banned);
        }
        Ok(u)
    }

    /// Runs a newly stored message through the filter; a match becomes a moderation item.
    pub async fn screen(&self, message: &Message) -> Result<Option<ModerationItem>> {
        let Some(text) = message.body.text() else { return Ok(None) };
        let words = self.filter.matches(text);
        if words.is_empty() {
            return Ok(None);
        }
        let item = NewModerationItem {
            kind: ModerationKind::Flagged,
            subject: Subject::Message { conv: message.conv, seq: message.seq },
            author: message.from,
            reporter: None,
            reason: "banned words".into(),
            words,
            excerpt: excerpt(text),
        };
        self.create(item).await.map(Some)
    }

    /// A member reports a message of their conversation.
    pub async fn report(&self, me: UserId, conv: ConvId, seq: Seq, reason: ReportReason) -> Result<ModerationItem> {
        let members = self.store.members(conv).await?;
        if members.is_empty() {
            return Err(CoreError::NotFound("conversation".into()));
        }
        if !members.contains(&me) {
            return Err(CoreError::Forbidden("not a member of this conversation".into()));
        }
        let message = self.ops.message(conv, seq).await?.ok_or_else(|| CoreError::NotFound("message".into()))?;
        let item = NewModerationItem {
            kind: ModerationKind::Report,
            subject: Subject::Message { conv, seq },
            author: message.from,
            reporter: Some(me),
            reason: reason.as_str().to_owned(),
            words: Vec::new(),
            excerpt: message.body.text().map(excerpt).unwrap_or_default(),
        };
        self.create(item).await
    }

    /// A user reports another user (their behaviour, their profile).
    pub async fn report_user(&self, me: UserId, user: UserId, reason: ReportReason, profile_text: String, about_profile: bool) -> Result<ModerationItem> {
        if me == user {
            return Err(CoreError::invalid("you cannot report yourself"));
        }
        let item = NewModerationItem {
            kind: ModerationKind::Report,
            subject: if about_profile { Subject::Profile(user) } else { Subject::User(user) },
            author: user,
            reporter: Some(me),
            reason: reason.as_str().to_owned(),
            words: Vec::new(),
            excerpt: excerpt(&profile_text),
        };
        self.create(item).await
    }

    /// A user reports a product or a review (`subject`), written by `author`, with `excerpt`
    /// (its text) for staff. Not one's own; the reason screened.
    pub async fn report_content(&self, me: UserId, subject: Subject, author: UserId, reason: &str, excerpt_text: &str) -> Result<ModerationItem> {
        let reason = report_reason(reason, &self.filter)?;
        if me == author {
            return Err(CoreError::invalid("you cannot report your own"));
        }
        let item = NewModerationItem {
            kind: ModerationKind::Report,
            subject,
            author,
            reporter: Some(me),
            reason: reason.as_str().to_owned(),
            words: Vec::new(),
            excerpt: excerpt(excerpt_text),
        };
        self.create(item).await
    }

    /// A banned user appeals their ban (with the one-purpose token of their refused login).
    /// One open appeal at a time; the text passes the banned-word screen.
    pub async fn appeal(&self, user: UserId, text: &str) -> Result<ModerationItem> {
        let text = text.trim();
        let n = text.chars().count();
        if n == 0 || n > 1000 {
            return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("text", "must be 1-1000 characters")]));
        }
        if let Some(p) = crate::text::required_problem(text, crate::text::Lines::Many) {
            return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("text", p)]));
        }
        if !self.filter.matches(text).is_empty() {
            return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("text", "contains words that are not allowed")]));
        }
        let u = self.store.user(user).await?.ok_or_else(|| CoreError::NotFound("user".into()))?;
        if !u.banned || u.erased {
            return Err(CoreError::Conflict("this account is not banned".into()));
        }
        if self.ops.open_item_about(&Subject::Appeal(user)).await?.is_some() {
            return Err(CoreError::Conflict("an appeal of yours is waiting for review".into()));
        }
        let item = NewModerationItem {
            kind: ModerationKind::Appeal,
            subject: Subject::Appeal(user),
            author: user,
            reporter: None,
            reason: "ban appeal".into(),
            words: Vec::new(),
            excerpt: excerpt(text),
        };
        self.create(item).await
    }

    /// Resolves an open item (staff; `ban` and `unban` admins only): `dismiss` does nothing
    /// else; `delete` removes the content (a message becomes a tombstone, a profile is reset, a
    /// product or a review is hidden);
    /// `ban` bans the author; `unban` lifts the author's ban (an appeal granted). The status,
    /// the effect and the audit entry are one transaction. `conflict` if resolved already.
    pub async fn resolve(&self, actor: &Actor, id: ModerationId, action: ResolveAction) -> Result<ModerationItem> {
        match action {
            ResolveAction::Ban | ResolveAction::Unban => self.require_admin(actor.user).await?,
            ResolveAction::Dismiss | ResolveAction::Delete => self.require_staff(actor.user).await?,
        };
        let item = self.ops.moderation_item(id).await?.ok_or_else(|| CoreError::NotFound("moderation item".into()))?;
        if action == ResolveAction::Delete && !matches!(item.subject, Subject::Message { .. } | Subject::Profile(_) | Subject::Product(_) | Subject::Review(_)) {
            return Err(CoreError::Fields(vec![crate::error::FieldProblem::new(
                "action",
                format!("a {} has no content to delete: dismiss, ban or unban", item.subject.kind()),
            )]));
        }
        if action == ResolveAction::Ban && item.author == actor.user {
            return Err(CoreError::invalid("an admin cannot ban themself"));
        }
        let audit = NewAudit::new(actor, AuditAction::ModerationResolve, format!("moderation_item:{id}"))
            .before(serde_json::json!({"status": "open"}))
            .after(serde_json::json!({"status": "resolved", "action": action.as_str(), "subject": format!("{}:{}", item.subject.kind(), item.subject.id())}));
        let resolved = self.ops.resolve_item(id, action, actor.user, crate::now_ms(), &audit).await?.ok_or_else(|| CoreError::NotFound("moderation item".into()))?;
        match (action, resolved.subject) {
            (ResolveAction::Ban, _) => self.bus.publish(Event::Banned { user: resolved.author }),
            (ResolveAction::Delete, Subject::Message { conv, seq }) => {
                let members: Arc<[UserId]> = self.store.members(conv).await?.into();
                self.bus.publish(Event::MessageDeleted { members, conv, seq, recalled: false });
            }
            _ => {}
        }
        Ok(resolved)
    }

    async fn create(&self, item: NewModerationItem) -> Result<ModerationItem> {
        let item = self.ops.create_moderation_item(&item, crate::now_ms()).await?;
        self.wake.notify_one();
        Ok(item)
    }

    /// `forbidden` unless `me` is an admin.
    /// The caller, if an admin (not banned); `forbidden` otherwise.
    pub async fn require_admin(&self, me: UserId) -> Result<User> {
        match self.store.user(me).await? {
            Some(u) if u.role == Role::Admin && !u.banned && !u.erased => Ok(u),
            _ => Err(CoreError::Forbidden("admins only".into())),
        }
    }

    /// The caller, if staff (an operator or an admin, not banned); `forbidden` otherwise.
    pub async fn require_staff(&self, me: UserId) -> Result<User> {
        match self.store.user(me).await? {
            Some(u) if u.role.is_staff() && !u.banned && !u.erased => Ok(u),
            _ => Err(CoreError::Forbidden("staff only".into())),
        }
    }

    /// The reports I made and the appeals I wrote, oldest first (my export).
    pub async fn filed_by(&self, me: UserId) -> Result<Vec<ModerationItem>> {
        self.ops.filed_by(me).await
    }

    /// The queue (staff), oldest first: open or resolved items, of one subject kind or all.
    pub async fn items(&self, me: UserId, filter: ItemFilter, after: Option<ModerationId>, limit: u32) -> Result<Vec<ModerationItem>> {
        self.require_staff(me).await?;
        self.ops.moderation_items(&filter, after, limit.clamp(1, 500)).await
    }

    pub async fn delete_message(&self, actor: &Actor, conv: ConvId, seq: Seq) -> Result<()> {
        self.require_staff(actor.user).await?;
        let audit = NewAudit::new(actor, AuditAction::MessageDelete, format!("message:{conv}:{seq}"));
        if !self.ops.delete_message(conv, seq, crate::now_ms(), &audit).await? {
            return Err(CoreError::NotFound("message".into()));
        }
        let members: Arc<[UserId]> = self.store.members(conv).await?.into();
        self.bus.publish(Event::MessageDeleted { members, conv, seq, recalled: false });
        Ok(())
    }

    pub async fn ban(&self, actor: &Actor, user: UserId) -> Result<()> {
        self.require_admin(actor.user).await?;
        if user == actor.user {
            return Err(CoreError::invalid("an admin cannot ban themself"));
        }
        let before = self.store.user(user).await?.ok_or_else(|| CoreError::NotFound("user".into()))?;
        let audit = NewAudit::new(actor, AuditAction::UserBan, format!("user:{user}"))
            .before(serde_json::json!({"banned": before.banned}))
            .after(serde_json::json!({"banned": true}));
        if !self.access.set_banned(user, true, crate::now_ms(), &audit).await? {
            return Err(CoreError::NotFound("user".into()));
        }
        self.bus.publish(Event::Banned { user });
        Ok(())
    }

    pub async fn unban(&self, actor: &Actor, user: UserId) -> Result<()> {
        self.require_admin(actor.user).await?;
        let before = self.store.user(user).await?.ok_or_else(|| CoreError::NotFound("user".into()))?;
        let audit = NewAudit::new(actor, AuditAction::UserUnban, format!("user:{user}"))
            .before(serde_json::json!({"banned": before.banned}))
            .after(serde_json::json!({"banned": false}));
        if !self.access.set_banned(user, false, crate::now_ms(), &audit).await? {
            return Err(CoreError::NotFound("user".into()));
        }
        Ok(())
    }

    /// Sets a user's staff role (admins only). An admin cannot lower their own role (the last
    /// admin would lock everyone out). A role lowered takes effect on the next request; the
    /// user's open sockets keep the moderation feed until they reconnect.
    pub async fn set_role(&self, actor: &Actor, user: UserId, role: Role) -> Result<Role> {
        self.require_admin(actor.user).await?;
        if user == actor.user && role != Role::Admin {
            return Err(CoreError::invalid("an admin cannot lower their own role"));
        }
        let audit = NewAudit::new(actor, AuditAction::RoleSet, format!("user:{user}")).after(serde_json::json!({"role": role.as_str()}));
        // The store fills `before` from the row it changes, in its transaction.
        match self.access.set_role(user, role, crate::now_ms(), &audit).await? {
            Some(before) => Ok(before),
            None => Err(CoreError::NotFound("user".into())),
        }
    }

    /// Records a banned-word reload (the list is a file: nothing stored changes).
    pub async fn words_reloaded(&self, actor: &Actor, words: usize) -> Result<()> {
        let audit = NewAudit::new(actor, AuditAction::WordsReload, "banned_words").after(serde_json::json!({"words": words}));
        self.audit.append_audit(&audit, crate::now_ms()).await
    }

    /// The audit log (admins only), newest first.
    pub async fn audit_entries(&self, me: UserId, actor: Option<UserId>, action: Option<AuditAction>, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        self.require_admin(me).await?;
        self.audit.audit_entries(actor, action, before, limit.clamp(1, 500)).await
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_finds_words_case_folded_and_reloads() {
        let f = WordFilter::new(parse_word_list("# comment\n赌博\n\n  Spam \nspam\n")).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.matches("快来赌博, SPAM here"), vec!["赌博".to_owned(), "Spam".to_owned(), "spam".to_owned()]);
        assert!(f.matches("一起去看日出").is_empty());
        assert_eq!(f.replace(vec!["日出".into()]).unwrap(), 1);
        assert_eq!(f.matches("一起去看日出"), vec!["日出".to_owned()]);
        assert!(f.matches("赌博").is_empty());
        assert_eq!(f.replace(Vec::new()).unwrap(), 0);
        assert!(f.matches("日出").is_empty());
    }

    #[test]
    fn bad_word_lists_are_refused() {
        assert!(WordFilter::new(vec!["x".repeat(65)]).is_err());
        let f = WordFilter::new(vec!["ok".into()]).unwrap();
        assert!(f.replace(vec![String::new()]).is_err());
        assert_eq!(f.matches("ok"), vec!["ok".to_owned()], "a refused list leaves the old one");
    }

    fn named(r: Result<impl std::fmt::Debug>) -> Vec<String> {
        match r {
            Err(CoreError::Fields(f)) => f.into_iter().map(|p| p.field).collect(),
            other => panic!("not a list of fields: {other:?}"),
        }
    }

    #[test]
    fn report_reasons_are_screened_and_every_bad_field_named() {
        let f = WordFilter::new(vec!["赌博".into()]).unwrap();
        assert_eq!(report_reason(" 骚扰 ", &f).unwrap().as_str(), "骚扰");
        assert_eq!(named(report_reason("他在群里拉人赌博", &f)), vec!["reason"]);
        assert_eq!(named(report_reason("", &f)), vec!["reason"]);
        assert_eq!(user_report("骚扰", Some("profile"), &f).unwrap().1, true);
        assert_eq!(user_report("骚扰", None, &f).unwrap().1, false);
        assert_eq!(named(user_report("赌博", Some("other"), &f)), vec!["reason", "about"]);
        assert_eq!(named(user_report(&"x".repeat(201), Some("user"), &f)), vec!["reason"]);
    }
}
