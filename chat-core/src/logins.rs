//! QR login: a web page (a merchant's or traveller's console) logs in as the user whose phone
//! confirms. The page asks for a ticket (`create`), shows it as a QR code, and polls
//! (`poll`); the mini-program scans it and confirms with its own session (`confirm`); the next
//! poll hands the page the user (the REST shell issues the token) exactly once. Tickets are
//! unguessable (256 random bits), stored only as their SHA-256, short-lived (`ttl`) and
//! single-use; in cluster mode they are in the shared database, so the page and the phone may
//! reach different nodes.

use crate::error::{CoreError, Result};
use crate::ids::UserId;
use async_trait::async_trait;
use base64::Engine;
use sha2::Digest;
use std::sync::Arc;
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What the QR code holds: this prefix, then the ticket.
pub const QR_PREFIX: &str = "jiebanke:qr-login:";

/// Where a ticket stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketState {
    /// Waiting for a phone to confirm.
    Pending,
    /// Confirmed by this user; the page's next poll gets the token.
    Confirmed(UserId),
    /// The token was handed out already (a ticket logs in once).
    Consumed,
    Expired,
}

/// A ticket as stored (by its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTicket {
    pub user: Option<UserId>,
    pub expires_at: i64,
    pub consumed: bool,
}

#[async_trait]
pub trait QrTicketStore: Send + Sync + 'static {
    /// Stores a new ticket's hash (and deletes tickets that expired before `now`).
    async fn create_ticket(&self, hash: &str, now: i64, expires_at: i64) -> Result<()>;
    async fn ticket(&self, hash: &str) -> Result<Option<StoredTicket>>;
    /// Sets the confirming user if the ticket is pending and not expired; false otherwise.
    async fn confirm_ticket(&self, hash: &str, user: UserId, now: i64) -> Result<bool>;
    /// Marks a confirmed, unexpired ticket consumed and answers its user; `None` if it is not
    /// confirmed, consumed already or expired. Two polls at once: one gets the user.
    async fn consume_ticket(&self, hash: &str, now: i64) -> Result<Option<UserId>>;
}

/// A new ticket, for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub ticket: String,
    /// What the QR code encodes.
    pub qr: String,
    pub expires_at: i64,
}

/// What a poll finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Pending { expires_at: i64 },
    /// The user to log in: hand out a token now (this answer comes once).
    LoggedIn(UserId),
    Consumed,
    Expired,
}

pub struct QrLoginService {
    store: Arc<dyn QrTicketStore>,
    ttl: Duration,
}

fn hash(ticket: &str) -> String {
    let d = sha2::Sha256::digest(ticket.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A ticket is 43 characters of base64url (32 bytes); anything else names no ticket.
fn well_formed(ticket: &str) -> bool {
    ticket.len() == 43 && ticket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl QrLoginService {
    pub fn new(store: Arc<dyn QrTicketStore>, ttl: Duration) -> Self {
        QrLoginService { store, ttl }
    }

    pub async fn create(&self, now: i64) -> Result<NewTicket> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        let ticket = B64.encode(raw);
        let expires_at = now + self.ttl.as_millis() as i64;
        self.store.create_ticket(&hash(&ticket), now, expires_at).await?;
        Ok(NewTicket { qr: format!("{QR_PREFIX}{ticket}"), ticket, expires_at })
    }

    /// The phone confirms with the user's own session. `not_found` for no such ticket;
    /// `conflict` if it was confirmed already or has expired.
    pub async fn confirm(&self, ticket: &str, user: UserId, now: i64) -> Result<()> {
        let ticket = ticket.strip_prefix(QR_PREFIX).unwrap_or(ticket);
        if !well_formed(ticket) {
            return Err(CoreError::NotFound("login ticket".into()));
        }
        let h = hash(ticket);
        if self.store.confirm_ticket(&h, user, now).await? {
            return Ok(());
        }
        match self.store.ticket(&h).await? {
            None => Err(CoreError::NotFound("login ticket".into())),
            Some(t) if t.expires_at <= now => Err(CoreError::Conflict("the login ticket expired".into())),
            Some(_) => Err(CoreError::Conflict("the login ticket was used already".into())),
        }
    }

    /// The page polls. `not_found` for no such ticket.
    pub async fn poll(&self, ticket: &str, now: i64) -> Result<Poll> {
        if !well_formed(ticket) {
            return Err(CoreError::NotFound("login ticket".into()));
        }
        let h = hash(ticket);
        if let Some(user) = self.store.consume_ticket(&h, now).await? {
            return Ok(Poll::LoggedIn(user));
        }
        Ok(match self.store.ticket(&h).await? {
            None => return Err(CoreError::NotFound("login ticket".into())),
            Some(t) if t.consumed => Poll::Consumed,
            Some(t) if t.expires_at <= now => Poll::Expired,
            Some(t) => Poll::Pending { expires_at: t.expires_at },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_recognised_by_their_shape() {
        assert!(well_formed(&B64.encode([7u8; 32])));
        for bad in ["", "short", &"a".repeat(44), &format!("{}!", "a".repeat(42))] {
            assert!(!well_formed(bad), "{bad}");
        }
        assert_eq!(hash("x").len(), 64);
        assert_ne!(hash("x"), hash("y"));
    }
}
