//! The users area: accounts (profile, privacy settings, phone, consent, export) and relations
//! between users (blocks, contacts). The privacy rules that other areas apply (who may open a
//! direct conversation with whom, add whom to a group, see whose presence) are `Relation`'s;
//! `ChatService` applies them to chat.
//!
//! - `model`: the values. `rules`: inputs into values, naming every bad field. `pii`: sealing
//!   and blind indexes of personal data. `port`: `AccountStore`, `RelationStore`.

pub mod model;
pub mod pii;
pub mod port;
pub mod rules;

pub use model::*;
pub use pii::DataKey;
pub use port::{AccountStore, MatchWithdrawal, RelationStore};

use crate::chat::ChatService;
use crate::error::{CoreError, Result};
use crate::ids::UserId;
use crate::moderation::ModerationService;
use std::sync::Arc;

/// Most messages an export reads per store call.
const EXPORT_PAGE: u32 = 1000;

pub struct UsersService {
    accounts: Arc<dyn AccountStore>,
    relations: Arc<dyn RelationStore>,
    chat: Arc<ChatService>,
    moderation: Arc<ModerationService>,
    key: Arc<DataKey>,
    privacy_version: String,
    zone: crate::BusinessZone,
    /// Told when a user turns matching off; `None` where no matching runs (tools, tests).
    matching: Option<Arc<dyn MatchWithdrawal>>,
    /// An avatar written must be the user's own upload.
    photos: Option<Arc<dyn crate::uploads::PhotoCheck>>,
}

impl UsersService {
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        relations: Arc<dyn RelationStore>,
        chat: Arc<ChatService>,
        moderation: Arc<ModerationService>,
        key: Arc<DataKey>,
        privacy_version: String,
        zone: crate::BusinessZone,
    ) -> Self {
        UsersService { accounts, relations, chat, moderation, key, privacy_version, zone, matching: None, photos: None }
    }

    /// Avatars written are checked to be the writer's uploads.
    pub fn with_photos(mut self, check: Arc<dyn crate::uploads::PhotoCheck>) -> Self {
        self.photos = Some(check);
        self
    }

    /// Companion matching, to withdraw the waiting request of a user who turns matching off.
    pub fn with_matching(mut self, matching: Arc<dyn MatchWithdrawal>) -> Self {
        self.matching = Some(matching);
        self
    }

    /// The privacy policy version users are asked to accept (`JBK_PRIVACY_VERSION`).
    pub fn privacy_version(&self) -> &str {
        &self.privacy_version
    }

    pub async fn account(&self, me: UserId) -> Result<Account> {
        self.accounts.account(me).await?.ok_or_else(|| CoreError::NotFound("user".into()))
    }

    /// Users for staff: `q` is a phone number (`+86…`, found through its blind index), a user
    /// id (that user, or nicknames with those digits) or text in nicknames.
    pub async fn search(&self, me: UserId, q: &str, after: Option<UserId>, limit: u32) -> Result<Vec<Account>> {
        self.moderation.require_staff(me).await?;
        let q = q.trim();
        let n = q.chars().count();
        if n == 0 || n > 64 {
            return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("q", "must be 1-64 characters")]));
        }
        let query = if q.starts_with('+') {
            let e164 = rules::phone(q).map_err(|_| CoreError::Fields(vec![crate::error::FieldProblem::new("q", "a phone number must be in E.164 form, e.g. +8613812345678")]))?;
            AccountQuery::PhoneIndex(self.key.index("phone", &e164))
        } else if let Some(id) = q.parse::<i64>().ok().and_then(|v| UserId::new(v).ok()) {
            AccountQuery::IdOrNickname(id, q.to_owned())
        } else {
            AccountQuery::Nickname(q.to_owned())
        };
        self.accounts.search_accounts(&query, after, limit.clamp(1, 101)).await
    }

    /// Someone's public profile. An erased account shows only its id and placeholder name.
    pub async fn profile(&self, id: UserId) -> Result<Profile> {
        self.accounts.profile(id).await?.ok_or_else(|| CoreError::NotFound("user".into()))
    }

    pub async fn update_profile(&self, me: UserId, input: rules::ProfileInput) -> Result<Profile> {
        let avatar: Vec<String> = input.avatar_url.clone().flatten().into_iter().collect();
        let owned = match &self.photos {
            Some(c) if !avatar.is_empty() => c.problems(me, "avatar_url", &avatar, false).await?,
            _ => Vec::new(),
        };
        let patch = crate::uploads::with_photo_problems(rules::profile_patch(input, self.moderation.filter(), self.zone.year(crate::now_ms())), owned)?;
        self.accounts.update_profile(me, &patch).await?.ok_or_else(|| CoreError::NotFound("user".into()))
    }

    pub async fn settings(&self, me: UserId) -> Result<Settings> {
        self.accounts.settings(me).await
    }

    /// Applies a settings change. Matching turned off withdraws my waiting match request (a
    /// failure to withdraw is `Unavailable`: the change is stored, and repeating it is safe).
    pub async fn update_settings(&self, me: UserId, input: rules::SettingsInput) -> Result<Settings> {
        let patch = rules::settings_patch(input)?;
        let settings = self.accounts.update_settings(me, &patch).await?;
        if !settings.matchable {
            if let Some(m) = &self.matching {
                m.withdraw(me).await?;
            }
        }
        Ok(settings)
    }

    /// Stores my phone number sealed; answers its masked form.
    pub async fn set_phone(&self, me: UserId, raw: &str) -> Result<String> {
        let e164 = rules::phone(raw)?;
        let sealed = pii::seal_phone(&self.key, me, &e164)?;
        self.accounts.set_phone(me, &sealed).await?;
        Ok(sealed.masked)
    }

    pub async fn consent(&self, me: UserId, version: &str) -> Result<Consent> {
        rules::consent_version(version, &self.privacy_version)?;
        let c = Consent { version: version.to_owned(), at: crate::now_ms() };
        self.accounts.set_consent(me, &c).await?;
        Ok(c)
    }

    /// Whether the user accepted the current policy version.
    pub fn consented(&self, account: &Account) -> bool {
        account.consent.as_ref().is_some_and(|c| c.version == self.privacy_version)
    }

    pub async fn block(&self, me: UserId, other: UserId) -> Result<()> {
        if me == other {
            return Err(CoreError::invalid("you cannot block yourself"));
        }
        if !self.relations.block(me, other, crate::now_ms()).await? {
            return Err(CoreError::NotFound("user".into()));
        }
        self.chat.relation_changed(me, other).await;
        Ok(())
    }

    pub async fn unblock(&self, me: UserId, other: UserId) -> Result<()> {
        if !self.relations.unblock(me, other).await? {
            return Err(CoreError::NotFound("block".into()));
        }
        self.chat.relation_changed(me, other).await;
        Ok(())
    }

    pub async fn blocks(&self, me: UserId, after: Option<UserId>, limit: u32) -> Result<Vec<Block>> {
        self.relations.blocks(me, after, limit).await
    }

    /// The keyed hash of a login identity (what a ban survives an erase by).
    fn identity_index(&self, provider: &str, subject: &str) -> String {
        self.key.index("identity", &format!("{provider}:{subject}"))
    }

    /// Before a login: `Banned` for an identity whose banned account was erased.
    pub async fn check_identity(&self, identity: &crate::model::Identity) -> Result<()> {
        if self.accounts.identity_banned(&self.identity_index(identity.provider, &identity.subject)).await? {
            return Err(CoreError::Banned);
        }
        Ok(())
    }

    /// Erases my account (PIPL's right to deletion): my uploads (`UploadService::erase_owner`),
    /// then the account (`AccountStore::erase`). Every session of mine on every node ends at
    /// once (close 4004), and no token issued before is accepted.
    pub async fn erase(&self, me: UserId, uploads: &crate::uploads::UploadService) -> Result<()> {
        let (provider, subject) = self.accounts.identity(me).await?.ok_or_else(|| CoreError::NotFound("user".into()))?;
        let banned = self.chat.user(me).await?.banned;
        let index = banned.then(|| self.identity_index(&provider, &subject));
        // The photos first: should that fail, the account is untouched and its owner may ask
        // again (once the account is erased, their token no longer can).
        uploads.erase_owner(me).await?;
        if !self.accounts.erase(me, index.as_deref(), crate::now_ms()).await? {
            return Err(CoreError::NotFound("user".into()));
        }
        self.chat.account_erased(me).await;
        Ok(())
    }

    /// Everything stored about me, the phone number opened.
    pub async fn export(&self, me: UserId) -> Result<Export> {
        let account = self.account(me).await?;
        let settings = self.accounts.settings(me).await?;
        let phone = match self.accounts.sealed_phone(me).await? {
            Some(s) => Some(self.key.open(me, "phone", &s)?),
            None => None,
        };
        let mut blocks = Vec::new();
        let mut after = None;
        loop {
            let page = self.relations.blocks(me, after, EXPORT_PAGE).await?;
            after = page.last().map(|b| b.user);
            let done = page.len() < EXPORT_PAGE as usize;
            blocks.extend(page);
            if done {
                break;
            }
        }
        let conversations = self.accounts.all_conversations(me).await?;
        let mut messages = Vec::new();
        let mut after = None;
        loop {
            let page = self.accounts.sent_messages(me, after, EXPORT_PAGE).await?;
            after = page.last().map(|m| (m.conv, m.seq));
            let done = page.len() < EXPORT_PAGE as usize;
            messages.extend(page);
            if done {
                break;
            }
        }
        Ok(Export { account, settings, phone, blocks, conversations, messages })
    }
}

