//! Staff accounts: the console logins of operators and admins. A staff account is a user (login
//! provider `staff`, subject its username) with a password (argon2id, the PHC string stored)
//! and a TOTP secret (RFC 6238, sealed with the data key). A login needs all three: username,
//! password and a current code, and each code logs in once. Failed logins are limited per
//! (username, address) and per address, never per account (`login`: a stranger cannot lock the
//! owner out, nor tell which usernames exist). Admins create staff and disable them
//! (disabling also drops the role, so the account's powers end on its next request); the first
//! admin is made with `jiebanke staff create`.
//!
//! Who acts is audited: `staff.create`, `staff.disable`, `staff.enable`; and a pair's logins
//! limited after failures, `staff.login_limited`.

pub mod login;
pub mod totp;

use crate::audit::{Actor, AuditAction, NewAudit};
use crate::error::{CoreError, FieldProblem, Result};
use crate::ids::UserId;
use crate::model::Role;
use crate::moderation::ModerationService;
use crate::sealing::DataKey;
use async_trait::async_trait;
use login::{hash_password, totp_aad, LoginAttempt, LoginFailures, LoginLimits};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The identity provider of staff accounts.
pub const PROVIDER: &str = "staff";
/// The issuer an authenticator app shows.
pub const ISSUER: &str = "Jiebanke";

/// A username: 3-32 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter.
pub fn username(raw: &str) -> std::result::Result<String, &'static str> {
    let u = raw.trim();
    let ok = (3..=32).contains(&u.len())
        && u.as_bytes()[0].is_ascii_lowercase()
        && u.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok { Ok(u.to_owned()) } else { Err("must be 3-32 of a-z, 0-9, '.', '_', '-', starting with a letter") }
}

/// A password: 12-128 characters, not the username.
pub fn password(raw: &str, username: &str) -> std::result::Result<(), &'static str> {
    let n = raw.chars().count();
    if !(12..=128).contains(&n) {
        return Err("must be 12-128 characters");
    }
    if raw.eq_ignore_ascii_case(username) {
        return Err("must not be the username");
    }
    Ok(())
}

/// A new staff account as the edge received it.
#[derive(Debug, Clone)]
pub struct NewStaffInput {
    pub username: String,
    pub password: String,
    pub role: String,
}

/// A valid new account, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStaff {
    pub username: String,
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The TOTP secret sealed (`DataKey::seal_unbound`, bound to the username).
    pub totp_cipher: String,
}

/// A staff account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRecord {
    pub user: UserId,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub totp_cipher: String,
    pub disabled: bool,
    /// The step of the last code that logged in (a code is used once).
    pub last_step: u64,
    pub created_at: i64,
}

/// What a new account's owner needs once: the TOTP secret, to put in an authenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub user: UserId,
    pub username: String,
    pub role: Role,
    /// base32, as authenticator apps take it.
    pub totp_secret: String,
    pub totp_uri: String,
}

/// Staff accounts. Every change an admin makes writes its audit entry in its transaction.
#[async_trait]
pub trait StaffStore: Send + Sync + 'static {
    /// Makes the user (provider `staff`) and its staff account in ONE transaction, with the
    /// `staff.create` entry (by `by`, or by the new account itself when made from the command
    /// line). `Conflict` if the username is taken.
    async fn create_staff(&self, staff: &NewStaff, by: Option<&Actor>, now: i64) -> Result<UserId>;
    async fn staff_by_username(&self, username: &str) -> Result<Option<StaffRecord>>;
    async fn staff_by_id(&self, user: UserId) -> Result<Option<StaffRecord>>;
    /// A login succeeded with the code of `step`. False (nothing changed) if a code of this
    /// step or a later one logged in already: a code is used once, even by two logins at the
    /// same moment.
    async fn record_success(&self, user: UserId, step: u64, now: i64) -> Result<bool>;
    /// Counts a login attempt as a failure of (`username`, `address`) and of `address`, each in
    /// its window (a window that started `window_ms` or more before `now` starts again at `now`
    /// with 1), and answers both counts with this one included. Atomic: attempts at once, on
    /// any node, all count, and each sees a count of its own. Any username is counted, an
    /// unknown one too.
    async fn count_login_attempt(&self, username: &str, address: &str, now: i64, window_ms: i64) -> Result<LoginFailures>;
    /// The attempt counted for the pair succeeded: the pair's count is cleared, and the
    /// address's (within its window) gives this attempt back.
    async fn login_succeeded(&self, username: &str, address: &str, now: i64, window_ms: i64) -> Result<()>;
    /// Writes the `staff.login_limited` entry of an account's pair reaching its limit.
    async fn login_limited(&self, audit: &NewAudit, now: i64) -> Result<()>;
    /// Staff accounts by user id ascending after `after`, at most `limit`.
    async fn staff_accounts(&self, after: Option<UserId>, limit: u32) -> Result<Vec<StaffRecord>>;
    /// Disables (the role dropped to `none` too) or enables an account, with `audit`. `None`
    /// if there is no such staff account; `Conflict` if it is in that state already.
    async fn set_staff_disabled(&self, user: UserId, disabled: bool, now: i64, audit: &NewAudit) -> Result<Option<StaffRecord>>;
}

fn fields(list: Vec<FieldProblem>) -> Result<()> {
    if list.is_empty() { Ok(()) } else { Err(CoreError::Fields(list)) }
}

pub struct StaffService {
    store: Arc<dyn StaffStore>,
    moderation: Arc<ModerationService>,
    key: Arc<DataKey>,
    limits: LoginLimits,
    /// argon2 verifications made by logins (see `login::login`).
    verifications: AtomicU64,
}

impl StaffService {
    pub fn new(store: Arc<dyn StaffStore>, moderation: Arc<ModerationService>, key: Arc<DataKey>) -> Self {
        StaffService { store, moderation, key, limits: LoginLimits::default(), verifications: AtomicU64::new(0) }
    }

    /// Makes a staff account: by an admin (`by`), or from the command line (`None`). Answers
    /// the enrolment (the TOTP secret, shown once).
    pub async fn create(&self, by: Option<&Actor>, input: NewStaffInput) -> Result<Enrolment> {
        if let Some(a) = by {
            self.moderation.require_admin(a.user).await?;
        }
        let mut bad = Vec::new();
        let name = username(&input.username).map_err(|p| bad.push(FieldProblem::new("username", p))).ok();
        if let Err(p) = password(&input.password, name.as_deref().unwrap_or("")) {
            bad.push(FieldProblem::new("password", p));
        }
        let role = match input.role.as_str() {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            _ => {
                bad.push(FieldProblem::new("role", "must be admin or operator"));
                None
            }
        };
        fields(bad)?;
        let (Some(name), Some(role)) = (name, role) else { unreachable!("checked above") };
        let mut secret = [0u8; totp::SECRET_BYTES];
        getrandom::fill(&mut secret).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        let password = input.password.clone();
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| CoreError::unavailable(format!("hashing: {e}")))??;
        let totp_cipher = self.key.seal_unbound(&totp_aad(&name), &totp::base32(&secret))?;
        let staff = NewStaff { username: name.clone(), role, password_hash, totp_cipher };
        let user = self.store.create_staff(&staff, by, crate::now_ms()).await?;
        Ok(Enrolment { user, username: name.clone(), role, totp_secret: totp::base32(&secret), totp_uri: totp::otpauth_uri(ISSUER, &name, &secret) })
    }

    /// How many argon2 verifications logins have run: every refusal but a limited one costs
    /// exactly one, whether the username exists or not.
    pub fn password_verifications(&self) -> u64 {
        self.verifications.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A console login: the user id once username, password and a current, unused code match.
    /// Any mismatch answers the same `Unauthorized` (nothing tells which part was wrong, or
    /// whether the username exists); too many failures of the (username, address) pair, or of
    /// the address, answer `RateLimited` (see `login`).
    pub async fn login(&self, attempt: &LoginAttempt<'_>, now: i64) -> Result<UserId> {
        login::login(self.store.as_ref(), &self.key, &self.limits, &self.verifications, attempt, now).await
    }

    pub async fn list(&self, me: UserId, after: Option<UserId>, limit: u32) -> Result<Vec<StaffRecord>> {
        self.moderation.require_admin(me).await?;
        self.store.staff_accounts(after, limit.clamp(1, 101)).await
    }

    /// Disables a staff account (admins): no more logins, and its role drops to `none`.
    pub async fn set_disabled(&self, actor: &Actor, user: UserId, disabled: bool) -> Result<StaffRecord> {
        self.moderation.require_admin(actor.user).await?;
        if disabled && user == actor.user {
            return Err(CoreError::invalid("an admin cannot disable their own account"));
        }
        let action = if disabled { AuditAction::StaffDisable } else { AuditAction::StaffEnable };
        let audit = NewAudit::new(actor, action, format!("user:{user}"))
            .before(serde_json::json!({"disabled": !disabled}))
            .after(serde_json::json!({"disabled": disabled}));
        self.store.set_staff_disabled(user, disabled, crate::now_ms(), &audit).await?.ok_or_else(|| CoreError::NotFound("staff account".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_passwords() {
        assert_eq!(username(" root "), Ok("root".into()));
        for bad in ["ab", "Root", "1root", "ro ot", "根用户", &"a".repeat(33)] {
            assert!(username(bad).is_err(), "{bad}");
        }
        assert!(password("correct horse battery", "root").is_ok());
        assert!(password("short", "root").is_err());
        assert!(password("operator-anna", "operator-anna").is_err());
    }
}
