//! Login sessions. Every bearer token names the session it opened (its `jti`); a session is
//! recorded when its token is issued and ends when its user logs out (that session, or all of
//! theirs), when a staff account is disabled, or when its token expires. REST checks the session
//! on every authenticated request and the gateway at the upgrade; an ended session's live
//! sockets are closed on every node by `Event::LoggedOut`.

use crate::error::{CoreError, Result};
use crate::ids::UserId;
// The session's id and what a token says are kernel values (`ids`): the bus event and the
// token port name them without depending on this area.
pub use crate::ids::{SessionKey, TokenClaims};
use crate::ports::{Bus, Event};
use async_trait::async_trait;
use std::sync::Arc;

/// Where sessions are recorded. Shared by every node (the database), so a session ended on one
/// node is ended on all at once.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Records `session` of `user`, live until `expires_at` (ms). Also forgets the user's
    /// sessions that expired before `now`.
    async fn open_session(&self, user: UserId, session: &SessionKey, now: i64, expires_at: i64) -> Result<()>;
    /// Whether `session` is `user`'s, recorded, not ended and not expired at `now`.
    async fn session_live(&self, user: UserId, session: &SessionKey, now: i64) -> Result<bool>;
    /// Ends `session` of `user`: true if it was live.
    async fn end_session(&self, user: UserId, session: &SessionKey, now: i64) -> Result<bool>;
    /// Ends every live session of `user`; answers how many.
    async fn end_sessions(&self, user: UserId, now: i64) -> Result<u64>;
}

pub struct SessionService {
    store: Arc<dyn SessionStore>,
    bus: Arc<dyn Bus>,
}

impl SessionService {
    pub fn new(store: Arc<dyn SessionStore>, bus: Arc<dyn Bus>) -> Self {
        SessionService { store, bus }
    }

    /// Records a session just issued.
    pub async fn open(&self, user: UserId, session: &SessionKey, expires_at: i64) -> Result<()> {
        self.store.open_session(user, session, crate::now_ms(), expires_at).await
    }

    /// `unauthorized` unless the token's session is live.
    pub async fn check(&self, claims: &TokenClaims) -> Result<()> {
        if self.store.session_live(claims.user, &claims.session, crate::now_ms()).await? {
            Ok(())
        } else {
            Err(CoreError::Unauthorized("this session has ended; log in again".into()))
        }
    }

    /// Logs out: ends the caller's session (or, `all`, every session of the caller) and closes
    /// its sockets on every node (close code 4005 `logged_out`). Answers how many sessions
    /// ended (0 when it had ended already: logging out twice is harmless).
    pub async fn logout(&self, claims: &TokenClaims, all: bool) -> Result<u64> {
        let now = crate::now_ms();
        if all {
            self.end_all(claims.user).await
        } else {
            let ended = self.store.end_session(claims.user, &claims.session, now).await?;
            self.bus.publish(Event::LoggedOut { user: claims.user, session: Some(claims.session.clone()) });
            Ok(u64::from(ended))
        }
    }

    /// Ends every session of `user` (a disabled staff account, `logout?all=true`) and closes
    /// their sockets on every node.
    pub async fn end_all(&self, user: UserId) -> Result<u64> {
        let n = self.store.end_sessions(user, crate::now_ms()).await?;
        self.bus.publish(Event::LoggedOut { user, session: None });
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_128_random_bits_in_hex() {
        let (a, b) = (SessionKey::random().unwrap(), SessionKey::random().unwrap());
        assert_ne!(a, b);
        assert_eq!(SessionKey::parse(a.as_str()).unwrap(), a);
        for bad in ["", "abc", &"A".repeat(32), &"g".repeat(32), &"a".repeat(33)] {
            assert!(SessionKey::parse(bad).is_err(), "{bad}");
        }
    }
}
