//! Identifier newtypes. Each is parsed once where it enters (wire, database) and trusted after.
//!
//! Identifiers are 63-bit integers in storage but travel as decimal strings in JSON, so that a
//! JavaScript client never sees an integer above 2^53.

use crate::error::CoreError;
use std::fmt;

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a value read from storage (always positive there).
            pub fn new(raw: i64) -> Result<Self, CoreError> {
                if raw > 0 {
                    Ok(Self(raw))
                } else {
                    Err(CoreError::invalid(concat!($what, " must be a positive integer")))
                }
            }
            /// Parses the decimal form a client sends: ASCII digits only (no sign, white space
            /// or other characters), no leading zero, at most 19 digits, positive.
            pub fn parse(s: &str) -> Result<Self, CoreError> {
                if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CoreError::invalid(concat!($what, " must be a decimal id")));
                }
                if s.len() > 1 && s.starts_with('0') {
                    return Err(CoreError::invalid(concat!($what, " must be a decimal id without leading zeros")));
                }
                s.parse::<i64>()
                    .map_err(|_| CoreError::invalid(concat!($what, " out of range")))
                    .and_then(Self::new)
            }
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

int_id!(
    /// A user of the mini-program (traveller, merchant or admin).
    UserId, "user id"
);
int_id!(
    /// A direct or group conversation.
    ConvId, "conversation id"
);
int_id!(
    /// A durable event of the outbox; an order alert has the id of the event that made it.
    EventId, "event id"
);
int_id!(
    /// An order paid to a merchant.
    OrderId, "order id"
);
int_id!(
    /// An item of the moderation feed (a flagged message or a user's report).
    ModerationId, "moderation item id"
);

/// A message's position in its conversation: starts at 1, grows by exactly 1, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Seq(u64);

impl Seq {
    pub const ZERO: Seq = Seq(0);
    /// Seqs are 63-bit in storage: the largest there can be.
    pub const MAX: u64 = i64::MAX as u64;
    /// A seq (or `after`) as a client sends it: at most `MAX`.
    pub fn parse(v: u64) -> Result<Seq, CoreError> {
        if v > Self::MAX {
            return Err(CoreError::invalid("a seq must be below 2^63"));
        }
        Ok(Seq(v))
    }
    pub fn new(v: u64) -> Self {
        Seq(v)
    }
    pub fn get(self) -> u64 {
        self.0
    }
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id a client gives a message so that a resend is recognised (idempotency key).
/// 1 to 64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub const MAX_LEN: usize = 64;
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(CoreError::invalid("cmid must be 1 to 64 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CoreError::invalid("cmid must be visible ASCII"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One WebSocket session of a user (a user may have several: phone and tablet).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session's id as its token carries it: 32 lowercase hex digits (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(std::sync::Arc<str>);

impl SessionKey {
    /// A fresh random key.
    pub fn random() -> Result<Self, CoreError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        Ok(SessionKey(format!("{:032x}", u128::from_be_bytes(raw)).into()))
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(SessionKey(s.into()))
        } else {
            Err(CoreError::Unauthorized("the token names no session".into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a verified token says: whose it is and which session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub user: UserId,
    pub session: SessionKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_parses_decimal_only() {
        assert_eq!(UserId::parse("42").unwrap().get(), 42);
        assert!(UserId::parse("0").is_err());
        assert!(UserId::parse("-1").is_err());
        assert!(UserId::parse("1e3").is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("99999999999999999999").is_err());
        for bad in [" 1", "1 ", "\u{3000} 1\t", "+1", "01", "00", "1_0", "１"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(UserId::parse("9223372036854775807").unwrap().get(), i64::MAX);
        assert!(UserId::parse("9223372036854775808").is_err());
    }

    #[test]
    fn cmid_rules() {
        assert!(ClientMsgId::parse("abc-123").is_ok());
        assert!(ClientMsgId::parse("").is_err());
        assert!(ClientMsgId::parse(&"x".repeat(65)).is_err());
        assert!(ClientMsgId::parse("has space").is_err());
        assert!(ClientMsgId::parse("中文").is_err());
    }

    #[test]
    fn seqs_from_clients_stay_below_2_pow_63() {
        assert_eq!(Seq::parse(0).unwrap(), Seq::ZERO);
        assert_eq!(Seq::parse(i64::MAX as u64).unwrap().get(), i64::MAX as u64);
        assert!(Seq::parse(1 << 63).is_err());
        assert!(Seq::parse(u64::MAX).is_err());
    }

    #[test]
    fn seq_next() {
        assert_eq!(Seq::ZERO.next(), Seq::new(1));
    }
}
