//! The ports of the merchants area: applications and merchants (`MerchantStore`), and the
//! website's leads (`LeadStore`). Each staff change writes its audit entry in its transaction.

use super::model::*;
use super::rules::{ApplicationState, Category};
use crate::audit::NewAudit;
use crate::error::Result;
use crate::ids::UserId;
use async_trait::async_trait;

#[async_trait]
pub trait MerchantStore: Send + Sync + 'static {
    /// Stores a pending application. `Conflict` if the user has one pending (one open
    /// application per user, kept by a unique index so that two at once cannot both win) or is
    /// a merchant already, or if its licence number (`license_index`) is held by another
    /// pending or approved application (a unique index too).
    async fn create_application(&self, app: &SealedApplication, now: i64) -> Result<ApplicationRecord>;
    /// The user's newest application.
    async fn latest_application(&self, user: UserId) -> Result<Option<ApplicationRecord>>;
    /// Every application of the user, oldest first (for their export).
    async fn applications_of(&self, user: UserId) -> Result<Vec<ApplicationRecord>>;
    /// Applications by id ascending after `after`, in one state or all, at most `limit`.
    async fn applications(&self, state: Option<&str>, after: Option<RecordId>, limit: u32) -> Result<Vec<ApplicationRecord>>;
    /// The sealed papers (license cipher, phone cipher) and their owner, for a reveal.
    async fn sealed_papers(&self, id: RecordId) -> Result<Option<(UserId, String, String)>>;
    /// Decides a pending application in ONE transaction: its new state, on approval the
    /// merchant (id = the applicant's user id), the `merchant.reviewed` event, and `audit`.
    /// `None` if there is no such application; `Conflict` (nothing written) if it is not
    /// pending any more (two reviewers at once: one wins).
    async fn decide(&self, id: RecordId, by: UserId, decision: &ApplicationState, now: i64, audit: &NewAudit) -> Result<Option<ApplicationRecord>>;
    /// Applications whose licence index was never filled (stored before it existed), at most
    /// `limit`: (id, applicant, licence cipher; empty once erased).
    async fn unindexed_licenses(&self, limit: u32) -> Result<Vec<(RecordId, UserId, String)>>;
    /// Sets an application's licence index (empty: none, its papers were erased) and, if it is
    /// pending or approved and no other application holds the number, holds it.
    async fn set_license_index(&self, id: RecordId, index: &str) -> Result<()>;
    /// A merchant in any status.
    async fn merchant(&self, id: UserId) -> Result<Option<Merchant>>;
    /// Active merchants by id ascending after `after`, of one category or all, at most `limit`.
    async fn merchants(&self, category: Option<Category>, after: Option<UserId>, limit: u32) -> Result<Vec<Merchant>>;
    /// Suspends (`Some(reason)`) or reinstates (`None`) with `audit`, in one transaction.
    /// `None` if there is no such merchant; `Conflict` if it is in that status already, or
    /// closed.
    async fn set_suspended(&self, id: UserId, reason: Option<&str>, now: i64, audit: &NewAudit) -> Result<Option<Merchant>>;
}

#[async_trait]
pub trait LeadStore: Send + Sync + 'static {
    async fn create_lead(&self, lead: &SealedLead, now: i64) -> Result<LeadRecord>;
    /// Leads by id ascending after `after`, open ones only or all, at most `limit`.
    async fn leads(&self, open_only: bool, after: Option<RecordId>, limit: u32) -> Result<Vec<LeadRecord>>;
    /// Marks a lead handled with `audit`, in one transaction. `None` if there is no such lead;
    /// `Conflict` if it was handled already.
    async fn handle_lead(&self, id: RecordId, by: UserId, note: &str, now: i64, audit: &NewAudit) -> Result<Option<LeadRecord>>;
}
