//! What the merchants area stores and shows: applications (their papers sealed), merchants
//! (whose id is their user's id), the review's notice to the applicant, and leads from the
//! website.

use super::rules::{ApplicationState, Category};
use crate::error::{CoreError, Result};
use crate::ids::UserId;

/// An id of an application or a lead: a positive integer, a decimal string on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(i64);

impl RecordId {
    pub fn new(raw: i64) -> Result<Self> {
        if raw <= 0 {
            return Err(CoreError::invalid("ids are positive"));
        }
        Ok(RecordId(raw))
    }
    /// From its decimal string; `not_found` for anything else (no such record can exist).
    pub fn parse(s: &str, what: &str) -> Result<Self> {
        s.parse::<i64>().ok().filter(|v| *v > 0).map(RecordId).ok_or_else(|| CoreError::NotFound(what.to_owned()))
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An application as stored: the license number and phone sealed for the applicant (see
/// `users::pii`), with their masked forms beside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedApplication {
    pub user: UserId,
    pub name: String,
    pub category: Category,
    pub license_cipher: String,
    pub license_masked: String,
    /// The licence number's blind index: one open or approved application per number.
    pub license_index: String,
    pub contact_name: String,
    pub phone_cipher: String,
    pub phone_masked: String,
}

/// An application as shown (masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRecord {
    pub id: RecordId,
    pub user: UserId,
    pub name: String,
    pub category: Category,
    pub license_masked: String,
    pub contact_name: String,
    pub phone_masked: String,
    pub state: ApplicationState,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<UserId>,
}

/// An application's papers in the clear, for the staff member reviewing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Papers {
    pub license_no: String,
    pub contact_phone: String,
}

/// Whether a merchant may sell and is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantStatus {
    Active,
    Suspended { reason: String },
    /// The merchant's user erased their account: hidden, never reinstated.
    Closed,
}

impl MerchantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended { .. } => "suspended",
            MerchantStatus::Closed => "closed",
        }
    }
}

/// A merchant. Its id is its user's id (the `merchant` an order alert carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: UserId,
    pub name: String,
    pub category: Category,
    pub status: MerchantStatus,
    /// Sum of review stars and how many reviews (the commerce area adds them).
    pub rating_sum: i64,
    pub reviews: i64,
    pub since: i64,
}

impl Merchant {
    /// Average stars, one decimal; `None` before the first review.
    pub fn rating(&self) -> Option<f64> {
        (self.reviews > 0).then(|| (self.rating_sum as f64 / self.reviews as f64 * 10.0).round() / 10.0)
    }
}

/// What `GET /me/merchant` shows: my latest application and, once approved, my merchant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MyMerchant {
    pub application: Option<ApplicationRecord>,
    pub merchant: Option<Merchant>,
}

/// What the merchants area holds about a user, for their export: every application with its
/// papers opened (`None` once they were cleared), and the merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantExport {
    pub applications: Vec<(ApplicationRecord, Option<Papers>)>,
    pub merchant: Option<Merchant>,
}

/// The applicant's live notice of a review (`merchant_review` on the socket), through the
/// outbox as `merchant.reviewed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewNotice {
    pub application: RecordId,
    pub user: UserId,
    /// `approved` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
    pub at: i64,
}

/// A lead as stored: the phone sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedLead {
    pub company: String,
    pub contact_name: String,
    pub phone_cipher: String,
    pub phone_masked: String,
    pub category: Category,
    pub city: String,
    pub message: String,
}

/// A lead as staff see it (masked phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRecord {
    pub id: RecordId,
    pub company: String,
    pub contact_name: String,
    pub phone_masked: String,
    pub category: Category,
    pub city: String,
    pub message: String,
    pub created_at: i64,
    /// Set once staff followed it up (asked the person to apply from the mini-program).
    pub handled: Option<LeadHandled>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadHandled {
    pub by: UserId,
    pub note: String,
    pub at: i64,
}
