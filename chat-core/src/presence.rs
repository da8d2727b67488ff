//! The presence registry: which users have at least one session on this node, and when each
//! was last seen. Pure bookkeeping; the caller publishes the changes it returns.

use crate::ids::UserId;
use std::collections::HashMap;
use std::sync::Mutex;

/// What subscribers are told about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceState {
    pub online: bool,
    /// When the user's last session closed (ms), `None` while online or if never seen.
    pub last_seen: Option<i64>,
}

#[derive(Default)]
pub struct PresenceRegistry {
    /// Sessions per online user. A short critical section, never held across an await.
    /// Bounded by the number of users with open sessions.
    online: Mutex<HashMap<UserId, u32>>,
}

impl PresenceRegistry {
    /// Counts a new session; returns the new state if the user just came online.
    pub fn session_opened(&self, user: UserId) -> Option<PresenceState> {
        let mut map = self.online.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(user).or_insert(0);
        *n += 1;
        (*n == 1).then_some(PresenceState { online: true, last_seen: None })
    }

    /// Counts a closed session; returns the new state if it was the user's last one.
    pub fn session_closed(&self, user: UserId, now: i64) -> Option<PresenceState> {
        let mut map = self.online.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.get_mut(&user)?;
        *n -= 1;
        if *n == 0 {
            map.remove(&user);
            Some(PresenceState { online: false, last_seen: Some(now) })
        } else {
            None
        }
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.online.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&user)
    }

    pub fn online_users(&self) -> usize {
        self.online.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_while_any_session_is() {
        let r = PresenceRegistry::default();
        let u = UserId::new(7).unwrap();
        assert_eq!(r.session_opened(u), Some(PresenceState { online: true, last_seen: None }));
        assert_eq!(r.session_opened(u), None, "second session changes nothing");
        assert_eq!(r.session_closed(u, 100), None, "one session left");
        assert!(r.is_online(u));
        assert_eq!(r.session_closed(u, 200), Some(PresenceState { online: false, last_seen: Some(200) }));
        assert!(!r.is_online(u));
        assert_eq!(r.session_closed(u, 300), None, "unknown user: no change");
    }
}
