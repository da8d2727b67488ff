//! Staff accounts: the console logins of operators and admins. A staff account is a user (login
//! provider `staff`, subject its username) with a password (argon2id, the PHC string stored)
//! and a TOTP secret (RFC 6238, sealed with the data key). A login needs all three: username,
//! password and a current code, and each code logs in once. Repeated failures lock the account
//! for a while (`LOCK_AFTER` failures, `LOCK_MS`). Admins create staff and disable them
//! (disabling also drops the role, so the account's powers end on its next request); the first
//! admin is made with `jiebanke staff create`.
//!
//! Who acts is audited: `staff.create`, `staff.disable`, `staff.enable`.

pub mod totp;

use crate::audit::{Actor, AuditAction, NewAudit};
use crate::error::{CoreError, FieldProblem, Result};
use crate::ids::UserId;
use crate::model::Role;
use crate::moderation::ModerationService;
use crate::users::DataKey;
use async_trait::async_trait;
use std::sync::Arc;

/// Failed logins in a row that lock an account.
pub const LOCK_AFTER: u32 = 5;
/// How long a locked account stays locked.
pub const LOCK_MS: i64 = 15 * 60 * 1000;
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
    pub failures: u32,
    pub locked_until: Option<i64>,
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
    /// Counts a failed login; at `lock_after` failures in a row the account is locked until
    /// `now + lock_ms`. Atomic (two failures at once both count).
    async fn record_failure(&self, user: UserId, now: i64, lock_after: u32, lock_ms: i64) -> Result<()>;
    /// A login succeeded with the code of `step`: failures reset. False (nothing changed) if a
    /// code of this step or a later one logged in already: a code is used once, even by two
    /// logins at the same moment.
    async fn record_success(&self, user: UserId, step: u64, now: i64) -> Result<bool>;
    /// Staff accounts by user id ascending after `after`, at most `limit`.
    async fn staff_accounts(&self, after: Option<UserId>, limit: u32) -> Result<Vec<StaffRecord>>;
    /// Disables (the role dropped to `none` too) or enables an account, with `audit`. `None`
    /// if there is no such staff account; `Conflict` if it is in that state already.
    async fn set_staff_disabled(&self, user: UserId, disabled: bool, now: i64, audit: &NewAudit) -> Result<Option<StaffRecord>>;
}

fn fields(list: Vec<FieldProblem>) -> Result<()> {
    if list.is_empty() { Ok(()) } else { Err(CoreError::Fields(list)) }
}

/// A hash (of a random password, made once) verified for unknown usernames, so that they take
/// as long as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 16];
        let _ = getrandom::fill(&mut pw);
        hash_password(&totp::base32(&pw)).unwrap_or_default()
    })
}

pub struct StaffService {
    store: Arc<dyn StaffStore>,
    moderation: Arc<ModerationService>,
    key: Arc<DataKey>,
}

fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CoreError::unavailable(format!("hashing the password: {e}")))
}

fn password_matches(password: &str, phc: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    match argon2::password_hash::phc::PasswordHash::new(phc) {
        Ok(h) => argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

impl StaffService {
    pub fn new(store: Arc<dyn StaffStore>, moderation: Arc<ModerationService>, key: Arc<DataKey>) -> Self {
        StaffService { store, moderation, key }
    }

    fn totp_aad(username: &str) -> String {
        format!("staff_totp/{username}")
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
        let totp_cipher = self.key.seal_unbound(&Self::totp_aad(&name), &totp::base32(&secret))?;
        let staff = NewStaff { username: name.clone(), role, password_hash, totp_cipher };
        let user = self.store.create_staff(&staff, by, crate::now_ms()).await?;
        Ok(Enrolment { user, username: name.clone(), role, totp_secret: totp::base32(&secret), totp_uri: totp::otpauth_uri(ISSUER, &name, &secret) })
    }

    /// A console login: the user id once username, password and a current, unused code match.
    /// Any mismatch answers the same `unauthorized` (nothing tells which part was wrong, or
    /// whether the username exists), and counts towards the lock; a locked account answers
    /// `Locked` with how long it stays locked.
    pub async fn login(&self, username: &str, password: &str, code: &str, now: i64) -> Result<UserId> {
        let refused = || CoreError::Unauthorized("invalid username, password or code".into());
        let record = match self.store.staff_by_username(username.trim()).await? {
            Some(r) => r,
            None => {
                let p = password.to_owned();
                let _ = tokio::task::spawn_blocking(move || password_matches(&p, dummy_hash())).await;
                return Err(refused());
            }
        };
        if let Some(until) = record.locked_until.filter(|u| *u > now) {
            return Err(CoreError::Locked { retry_after_ms: (until - now) as u64 });
        }
        let (p, hash) = (password.to_owned(), record.password_hash.clone());
        let password_ok = tokio::task::spawn_blocking(move || password_matches(&p, &hash))
            .await
            .map_err(|e| CoreError::unavailable(format!("verifying: {e}")))?;
        let secret = self.key.open_unbound(&Self::totp_aad(&record.username), &record.totp_cipher)?;
        let step = totp::decode_base32(&secret).and_then(|s| totp::verify(&s, code.trim(), now));
        match step {
            Some(step) if password_ok && !record.disabled => {
                if !self.store.record_success(record.user, step, now).await? {
                    // A code used already (a replay, or a second login with the same code).
                    self.store.record_failure(record.user, now, LOCK_AFTER, LOCK_MS).await?;
                    return Err(refused());
                }
                Ok(record.user)
            }
            _ => {
                self.store.record_failure(record.user, now, LOCK_AFTER, LOCK_MS).await?;
                Err(refused())
            }
        }
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

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(password_matches("correct horse battery", &h));
        assert!(!password_matches("correct horse batterz", &h));
        assert!(!password_matches("x", "not a phc string"));
        assert!(argon2::password_hash::phc::PasswordHash::new(dummy_hash()).is_ok(), "the dummy is a real hash (it costs what a real one does)");
        assert!(!password_matches("anything", dummy_hash()));
    }
}
