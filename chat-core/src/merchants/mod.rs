//! The merchants area: a user applies with their business papers, staff review, and an
//! approved applicant becomes a merchant whose merchant id is their user id (the `merchant`
//! of an order alert). Admins suspend and reinstate merchants. Visitors of the website leave
//! leads that staff follow up.
//!
//! - `rules`: inputs into values (credit code check character, every bad field named, texts
//!   screened) and the review state machine. `model`: the values. `port`: `MerchantStore`,
//!   `LeadStore`.
//! - Who may do what: any logged-in user applies; staff (operators and admins) list and decide
//!   applications, open their papers and handle leads; admins suspend and reinstate.
//! - Personal data: the license number and the phone numbers are sealed with the data key
//!   (`users::pii`) and shown masked; a staff member who opens them leaves an audit entry.

pub mod model;
pub mod port;
pub mod rules;

pub use model::*;
pub use port::{LeadStore, MerchantStore};
pub use rules::{ApplicationState, Category, CreditCode};

use crate::audit::{Actor, AuditAction, AuditLog, NewAudit};
use crate::error::{CoreError, Result};
use crate::ids::UserId;
use crate::moderation::ModerationService;
use crate::sealing::DataKey;
use std::sync::Arc;
use tokio::sync::Notify;

/// Most items a list answers at once.
pub const MAX_PAGE: u32 = 100;

/// What the licence number's blind index is keyed for.
const LICENSE_INDEX: &str = "license";

/// A license number masked: its first 4 and last 4 characters kept.
pub fn mask_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

pub struct MerchantsService {
    store: Arc<dyn MerchantStore>,
    leads: Arc<dyn LeadStore>,
    audit: Arc<dyn AuditLog>,
    moderation: Arc<ModerationService>,
    key: Arc<DataKey>,
    /// The outbox relay's: fires when a review wrote its event.
    wake: Arc<Notify>,
}

impl MerchantsService {
    pub fn new(
        store: Arc<dyn MerchantStore>,
        leads: Arc<dyn LeadStore>,
        audit: Arc<dyn AuditLog>,
        moderation: Arc<ModerationService>,
        key: Arc<DataKey>,
        wake: Arc<Notify>,
    ) -> Self {
        MerchantsService { store, leads, audit, moderation, key, wake }
    }

    /// A user applies to become a merchant.
    pub async fn apply(&self, me: UserId, input: rules::ApplicationInput) -> Result<ApplicationRecord> {
        let app = rules::application(input, Some(self.moderation.filter()))?;
        let sealed = SealedApplication {
            user: me,
            name: app.name,
            category: app.category,
            license_cipher: self.key.seal(me, "license", app.license_no.as_str())?,
            license_masked: mask_code(app.license_no.as_str()),
            license_index: self.key.index(LICENSE_INDEX, app.license_no.as_str()),
            contact_name: app.contact_name,
            phone_cipher: self.key.seal(me, "contact_phone", &app.contact_phone)?,
            phone_masked: crate::phone::mask_phone(&app.contact_phone),
        };
        self.store.create_application(&sealed, crate::now_ms()).await
    }

    /// Fills the licence index of the applications stored before it existed (at start-up, a
    /// batch at a time): their number opened, indexed, and held for the application if it is
    /// pending or approved and no other holds it (a duplicate stored before stays, unheld).
    /// Answers how many were filled.
    pub async fn fill_license_indexes(&self) -> Result<usize> {
        let mut filled = 0;
        loop {
            let batch = self.store.unindexed_licenses(200).await?;
            if batch.is_empty() {
                return Ok(filled);
            }
            for (id, user, cipher) in batch {
                let index = if cipher.is_empty() { String::new() } else { self.key.index(LICENSE_INDEX, &self.key.open(user, "license", &cipher)?) };
                self.store.set_license_index(id, &index).await?;
                filled += 1;
            }
        }
    }

    /// My latest application and my merchant, if any.
    pub async fn mine(&self, me: UserId) -> Result<MyMerchant> {
        Ok(MyMerchant { application: self.store.latest_application(me).await?, merchant: self.store.merchant(me).await? })
    }

    /// Everything of mine this area holds, the papers opened (my export).
    pub async fn export(&self, me: UserId) -> Result<MerchantExport> {
        let mut applications = Vec::new();
        for app in self.store.applications_of(me).await? {
            let papers = match self.store.sealed_papers(app.id).await? {
                Some((_, license, phone)) if !license.is_empty() => {
                    Some(Papers { license_no: self.key.open(me, "license", &license)?, contact_phone: self.key.open(me, "contact_phone", &phone)? })
                }
                _ => None,
            };
            applications.push((app, papers));
        }
        Ok(MerchantExport { applications, merchant: self.store.merchant(me).await? })
    }

    /// Applications for review (staff).
    pub async fn applications(&self, me: UserId, state: Option<&str>, after: Option<RecordId>, limit: u32) -> Result<Vec<ApplicationRecord>> {
        self.moderation.require_staff(me).await?;
        if let Some(s) = state {
            if !ApplicationState::ALL.contains(&s) {
                return Err(CoreError::Fields(vec![crate::error::FieldProblem::new("status", "must be one of pending, approved, rejected")]));
            }
        }
        self.store.applications(state, after, limit.clamp(1, MAX_PAGE + 1)).await
    }

    /// An application's papers in the clear (staff), leaving an audit entry.
    pub async fn reveal(&self, actor: &Actor, id: RecordId) -> Result<Papers> {
        self.moderation.require_staff(actor.user).await?;
        let (user, license, phone) = self.store.sealed_papers(id).await?.ok_or_else(|| CoreError::NotFound("application".into()))?;
        if license.is_empty() {
            return Err(CoreError::NotFound("application papers (the applicant erased their account)".into()));
        }
        let papers = Papers { license_no: self.key.open(user, "license", &license)?, contact_phone: self.key.open(user, "contact_phone", &phone)? };
        self.audit.append_audit(&NewAudit::new(actor, AuditAction::ApplicationReveal, format!("merchant_application:{id}")), crate::now_ms()).await?;
        Ok(papers)
    }

    /// Approves (the applicant becomes a merchant) or rejects with a reason (staff).
    pub async fn decide(&self, actor: &Actor, id: RecordId, approve: bool, reason: Option<&str>) -> Result<ApplicationRecord> {
        self.moderation.require_staff(actor.user).await?;
        // The rules of the decision (a rejection has its reason); the store checks that the
        // application is still pending in its transaction.
        let decision = ApplicationState::Pending.decide(approve, reason)?;
        let action = if approve { AuditAction::ApplicationApprove } else { AuditAction::ApplicationReject };
        let mut after = serde_json::json!({"status": decision.as_str()});
        if let ApplicationState::Rejected { reason } = &decision {
            after["reason"] = serde_json::Value::String(reason.clone());
        }
        let audit = NewAudit::new(actor, action, format!("merchant_application:{id}")).before(serde_json::json!({"status": "pending"})).after(after);
        let rec = self.store.decide(id, actor.user, &decision, crate::now_ms(), &audit).await?.ok_or_else(|| CoreError::NotFound("application".into()))?;
        self.wake.notify_one();
        Ok(rec)
    }

    /// Active merchants, for everyone.
    pub async fn merchants(&self, category: Option<&str>, after: Option<UserId>, limit: u32) -> Result<Vec<Merchant>> {
        let category = match category {
            Some(c) => Some(Category::from_str(c).ok_or_else(|| {
                CoreError::Fields(vec![crate::error::FieldProblem::new("category", "must be one of farm, florist, travel")])
            })?),
            None => None,
        };
        self.store.merchants(category, after, limit.clamp(1, MAX_PAGE + 1)).await
    }

    /// A merchant's public page: `not_found` unless active.
    pub async fn merchant(&self, id: UserId) -> Result<Merchant> {
        match self.store.merchant(id).await? {
            Some(m) if m.status == MerchantStatus::Active => Ok(m),
            _ => Err(CoreError::NotFound("merchant".into())),
        }
    }

    /// Whether `id` is a merchant that may sell now (active). For the commerce area.
    pub async fn may_sell(&self, id: UserId) -> Result<bool> {
        Ok(self.store.merchant(id).await?.is_some_and(|m| m.status == MerchantStatus::Active))
    }

    /// Whether `id` is a merchant at all (active or suspended: a suspended merchant still serves
    /// and refunds the orders it took; a closed one is not).
    pub async fn is_merchant(&self, id: UserId) -> Result<bool> {
        Ok(self.store.merchant(id).await?.is_some_and(|m| m.status != MerchantStatus::Closed))
    }

    /// Suspends a merchant (admins): hidden from lists, cannot sell.
    pub async fn suspend(&self, actor: &Actor, id: UserId, reason: &str) -> Result<Merchant> {
        self.moderation.require_admin(actor.user).await?;
        let reason = rules::reason("reason", reason)?;
        let audit = NewAudit::new(actor, AuditAction::MerchantSuspend, format!("merchant:{id}"))
            .before(serde_json::json!({"status": "active"}))
            .after(serde_json::json!({"status": "suspended", "reason": reason}));
        self.store.set_suspended(id, Some(&reason), crate::now_ms(), &audit).await?.ok_or_else(|| CoreError::NotFound("merchant".into()))
    }

    /// Lifts a suspension (admins).
    pub async fn reinstate(&self, actor: &Actor, id: UserId) -> Result<Merchant> {
        self.moderation.require_admin(actor.user).await?;
        let audit = NewAudit::new(actor, AuditAction::MerchantReinstate, format!("merchant:{id}"))
            .before(serde_json::json!({"status": "suspended"}))
            .after(serde_json::json!({"status": "active"}));
        self.store.set_suspended(id, None, crate::now_ms(), &audit).await?.ok_or_else(|| CoreError::NotFound("merchant".into()))
    }

    /// A website visitor leaves a lead (no account; the edge limits how often per address).
    pub async fn submit_lead(&self, input: rules::LeadInput) -> Result<LeadRecord> {
        let lead = rules::lead(input, Some(self.moderation.filter()))?;
        let sealed = SealedLead {
            phone_cipher: self.key.seal_unbound("lead_phone", &lead.phone)?,
            phone_masked: crate::phone::mask_phone(&lead.phone),
            company: lead.company,
            contact_name: lead.contact_name,
            category: lead.category,
            city: lead.city,
            message: lead.message,
        };
        self.leads.create_lead(&sealed, crate::now_ms()).await
    }

    /// Leads for staff, open ones first by default.
    pub async fn leads(&self, me: UserId, open_only: bool, after: Option<RecordId>, limit: u32) -> Result<Vec<LeadRecord>> {
        self.moderation.require_staff(me).await?;
        self.leads.leads(open_only, after, limit.clamp(1, MAX_PAGE + 1)).await
    }

    /// Marks a lead followed up (staff), with a note of what was done.
    pub async fn handle_lead(&self, actor: &Actor, id: RecordId, note: &str) -> Result<LeadRecord> {
        self.moderation.require_staff(actor.user).await?;
        let note = rules::reason("note", note)?;
        let audit = NewAudit::new(actor, AuditAction::LeadHandle, format!("merchant_lead:{id}"))
            .before(serde_json::json!({"status": "open"}))
            .after(serde_json::json!({"status": "handled"}));
        self.leads.handle_lead(id, actor.user, &note, crate::now_ms(), &audit).await?.ok_or_else(|| CoreError::NotFound("lead".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_numbers_are_masked() {
        assert_eq!(mask_code("91350100M000100Y43"), "9135**********0Y43");
        assert_eq!(mask_code("1234"), "****");
    }

    #[test]
    fn a_rating_is_an_average_to_one_decimal() {
        let m = Merchant { id: UserId::new(1).unwrap(), name: "x".into(), category: Category::Farm, status: MerchantStatus::Active, rating_sum: 14, reviews: 3, since: 0 };
        assert_eq!(m.rating(), Some(4.7));
        assert_eq!(Merchant { reviews: 0, rating_sum: 0, ..m }.rating(), None);
    }
}
