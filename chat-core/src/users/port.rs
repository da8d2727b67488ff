//! The ports of the users area, one concern each: an account's own data (`AccountStore`) and
//! how two users stand to each other (`RelationStore`).

use super::model::*;
use crate::error::Result;
use crate::ids::{ConvId, Seq, UserId};
use crate::model::{Conversation, Message};
use async_trait::async_trait;

/// What companion matching is told by the users area: `user` turned matching off
/// (`matchable=false`), so their waiting request, if any, is withdrawn and they are not matched
/// afterwards. Implemented by `matching::MatchService` and handed to `UsersService` at wiring
/// time: matching reads users' settings, so users does not name matching.
#[async_trait]
pub trait MatchWithdrawal: Send + Sync + 'static {
    /// Idempotent: nothing happens if no request of `user` waits.
    async fn withdraw(&self, user: UserId) -> Result<()>;
}

/// An account's own data: profile, settings, phone, consent; read whole for an export.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// My account (profile, masked phone, consent), or `None` if there is no such user.
    async fn account(&self, user: UserId) -> Result<Option<Account>>;
    /// Accounts matching a staff search, by id ascending after `after`, at most `limit`.
    async fn search_accounts(&self, query: &AccountQuery, after: Option<UserId>, limit: u32) -> Result<Vec<Account>>;
    /// The public profile, or `None`.
    async fn profile(&self, user: UserId) -> Result<Option<Profile>>;
    /// Applies a valid patch; the profile after it, or `None` if there is no such user.
    async fn update_profile(&self, user: UserId, patch: &ProfilePatch) -> Result<Option<Profile>>;
    /// The settings (the defaults for a user who never changed them).
    async fn settings(&self, user: UserId) -> Result<Settings>;
    /// Applies a patch and returns the settings after it.
    async fn update_settings(&self, user: UserId, patch: &SettingsPatch) -> Result<Settings>;
    /// Stores the sealed phone. `Conflict` if another user has the same number (same index).
    async fn set_phone(&self, user: UserId, phone: &SealedPhone) -> Result<()>;
    /// The sealed phone (`SealedPhone::cipher`), if any.
    async fn sealed_phone(&self, user: UserId) -> Result<Option<String>>;
    async fn set_consent(&self, user: UserId, consent: &Consent) -> Result<()>;
    /// The messages `user` sent, in (conversation, seq) order after `after`, at most `limit`.
    async fn sent_messages(&self, user: UserId, after: Option<(ConvId, Seq)>, limit: u32) -> Result<Vec<Message>>;
    /// Every conversation the user is in (for an export), oldest first.
    async fn all_conversations(&self, user: UserId) -> Result<Vec<Conversation>>;
    /// The login identity (provider, subject) of an account not erased.
    async fn identity(&self, user: UserId) -> Result<Option<(String, String)>>;
    /// Erases the account in ONE transaction: the profile anonymized (`ERASED_NICKNAME`;
    /// avatar, bio, tags, phone, consent, settings gone), blocks either way deleted, the
    /// messages the user sent made tombstones (and their moderation excerpts emptied), the
    /// login identity unlinked (its next login makes a new account), `erased_at` set. With
    /// `banned_identity`, that keyed hash is kept so the identity stays banned. False if there
    /// is no such account (or it was erased already).
    async fn erase(&self, user: UserId, banned_identity: Option<&str>, now: i64) -> Result<bool>;
    /// Whether the keyed hash of an identity is of one banned before its account was erased.
    async fn identity_banned(&self, identity_index: &str) -> Result<bool>;
}

/// How two users stand to each other: blocks, shared conversations, the privacy settings that
/// decide what one may do to the other.
#[async_trait]
pub trait RelationStore: Send + Sync + 'static {
    /// `me` blocks `other` (again: no change). False if `other` does not exist.
    async fn block(&self, me: UserId, other: UserId, now: i64) -> Result<bool>;
    /// False if `me` had not blocked `other`.
    async fn unblock(&self, me: UserId, other: UserId) -> Result<bool>;
    /// Whom `me` blocked, by user id ascending after `after`, at most `limit`.
    async fn blocks(&self, me: UserId, after: Option<UserId>, limit: u32) -> Result<Vec<Block>>;
    /// For each target in order: its settings, whether either of `actor` and it blocked the
    /// other, whether they share a conversation. A target that does not exist gets the defaults.
    async fn relations(&self, actor: UserId, targets: &[UserId]) -> Result<Vec<Relation>>;
    /// The direct conversation of the pair, if it exists (never creates one).
    async fn direct_between(&self, a: UserId, b: UserId) -> Result<Option<ConvId>>;
}
