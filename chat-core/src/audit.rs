//! The audit log: every staff action leaves one entry `{actor, action, target, before, after,
//! ip, at}`, written by the store in the SAME transaction as the change it records (a change
//! that fails leaves no entry; an entry that cannot be written undoes the change). No port
//! changes or deletes an entry, and the schema refuses it too (triggers on both engines).
//!
//! Personal data never enters an entry in the clear: `before` and `after` hold states, roles
//! and masked values only.

use crate::error::{CoreError, Result};
use crate::ids::UserId;
use async_trait::async_trait;

/// What staff did. The wire names are stable (`GET /api/v1/admin/audit?action=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    RoleSet,
    UserBan,
    UserUnban,
    MessageDelete,
    WordsReload,
    ApplicationApprove,
    ApplicationReject,
    /// A staff member opened an application's sealed papers (license number, phone).
    ApplicationReveal,
    MerchantSuspend,
    MerchantReinstate,
    LeadHandle,
    StaffCreate,
    StaffDisable,
    StaffEnable,
    /// A (username, address) pair reached its failed-login limit; the actor is the account.
    StaffLoginLimited,
    ModerationResolve,
    /// An admin gave an order's money back.
    OrderRefund,
}

impl AuditAction {
    pub const ALL: [AuditAction; 17] = [
        AuditAction::RoleSet,
        AuditAction::UserBan,
        AuditAction::UserUnban,
        AuditAction::MessageDelete,
        AuditAction::WordsReload,
        AuditAction::ApplicationApprove,
        AuditAction::ApplicationReject,
        AuditAction::ApplicationReveal,
        AuditAction::MerchantSuspend,
        AuditAction::MerchantReinstate,
        AuditAction::LeadHandle,
        AuditAction::StaffCreate,
        AuditAction::StaffDisable,
        AuditAction::StaffEnable,
        AuditAction::StaffLoginLimited,
        AuditAction::ModerationResolve,
        AuditAction::OrderRefund,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::RoleSet => "role.set",
            AuditAction::UserBan => "user.ban",
            AuditAction::UserUnban => "user.unban",
            AuditAction::MessageDelete => "message.delete",
            AuditAction::WordsReload => "banned_words.reload",
            AuditAction::ApplicationApprove => "merchant_application.approve",
            AuditAction::ApplicationReject => "merchant_application.reject",
            AuditAction::ApplicationReveal => "merchant_application.reveal",
            AuditAction::MerchantSuspend => "merchant.suspend",
            AuditAction::MerchantReinstate => "merchant.reinstate",
            AuditAction::LeadHandle => "merchant_lead.handle",
            AuditAction::StaffCreate => "staff.create",
            AuditAction::StaffDisable => "staff.disable",
            AuditAction::StaffEnable => "staff.enable",
            AuditAction::StaffLoginLimited => "staff.login_limited",
            AuditAction::ModerationResolve => "moderation.resolve",
            AuditAction::OrderRefund => "order.refund",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
            CoreError::Fields(vec![crate::error::FieldProblem::new("action", format!("must be one of {}", names.join(", ")))])
        })
    }
}

/// Who acts, from where: what every staff use case takes so that its entry can be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: UserId,
    /// The client's address as the REST shell saw it.
    pub ip: Option<String>,
}

impl Actor {
    pub fn new(user: UserId, ip: Option<String>) -> Self {
        Actor { user, ip }
    }
}

/// An entry to write. `target` names the subject (`user:12`, `merchant_application:3`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub actor: UserId,
    pub action: AuditAction,
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
}

/// Most characters of an entry's target (the schema checks it too).
pub const MAX_TARGET: usize = 200;

impl NewAudit {
    pub fn new(actor: &Actor, action: AuditAction, target: impl Into<String>) -> Self {
        NewAudit { actor: actor.user, action, target: target.into(), before: None, after: None, ip: actor.ip.clone() }
    }
    pub fn before(mut self, v: serde_json::Value) -> Self {
        self.before = Some(v);
        self
    }
    pub fn after(mut self, v: serde_json::Value) -> Self {
        self.after = Some(v);
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: UserId,
    pub action: String,
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub at: i64,
}

/// Reading the log, and appending the entries of actions that change nothing stored (a
/// banned-word reload, a reveal). The entries of changes are written by the stores of those
/// changes, inside their transactions.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    async fn append_audit(&self, entry: &NewAudit, now: i64) -> Result<()>;
    /// Newest first, with an id below `before`, at most `limit`; filtered by actor and action.
    async fn audit_entries(&self, actor: Option<UserId>, action: Option<AuditAction>, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_and_unknown_ones_name_the_field() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()).unwrap(), a);
        }
        let Err(CoreError::Fields(f)) = AuditAction::parse("user.delete") else { panic!("refused") };
        assert_eq!(f[0].field, "action");
    }
}
