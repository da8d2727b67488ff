//! The console login, built so that it cannot be turned against staff:
//! - failures are counted per (username, address) and per address, in the database (so every
//!   node of a cluster sees the same counts), the same way whether the username exists or not;
//! - a pair with `pair_failures` failures in its window answers 429 `rate_limited` to that pair
//!   only: a stranger's failures from one address never lock the owner out from another;
//! - an address with `address_failures` failures in its window, across usernames, answers 429
//!   too, so one address cannot spray many names;
//! - every other refusal (unknown name, wrong password, wrong or used code, disabled account) is
//!   the same 401 after the same work: one argon2 verification, against a dummy hash when the
//!   name is unknown.
//!
//! Each attempt is counted as a failure BEFORE it is checked, in one atomic step that answers
//! the counts with it included, and a success gives its count back. Checking first and counting
//! after would let many attempts sent at once all pass the check; counted first, at most
//! `pair_failures` attempts of a pair are ever verified in a window. The limit is decided from
//! the counts alone, before the username is looked up, so a 429 says nothing about whether the
//! name exists; that answer skips argon2 on purpose (a limited client must not be able to make
//! the server hash).

use super::StaffStore;
use crate::audit::{Actor, AuditAction, NewAudit};
use crate::error::{CoreError, Result};
use crate::ids::UserId;
use crate::sealing::DataKey;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

/// How many failures a window allows, and how long a window lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures of one (username, address) pair; at this count the pair is limited.
    pub pair_failures: u32,
    /// Failures from one address, whatever the usernames.
    pub address_failures: u32,
    /// A window starts at its first failure; counts older than this are forgotten.
    pub window_ms: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits { pair_failures: 5, address_failures: 20, window_ms: 15 * 60 * 1000 }
    }
}

/// The failures counted in the current windows (0, with `since` meaningless, when none).
/// Counts include attempts being checked (see the module's comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    pub pair: u32,
    pub pair_since: i64,
    pub address: u32,
    pub address_since: i64,
}

impl LoginFailures {
    /// For counts that include the attempt at hand: how long until the pair or the address may
    /// try again (the attempt is over a limit); `None` if it may be checked.
    pub fn limited_for(&self, limits: &LoginLimits, now: i64) -> Option<u64> {
        let wait = |since: i64| (since + limits.window_ms - now).max(1) as u64;
        let pair = (self.pair > limits.pair_failures).then(|| wait(self.pair_since));
        let address = (self.address > limits.address_failures).then(|| wait(self.address_since));
        pair.max(address)
    }
}

/// A login as the edge received it.
#[derive(Debug, Clone)]
pub struct LoginAttempt<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub code: &'a str,
    /// The client's address (the REST shell's, after trusted proxies).
    pub address: IpAddr,
}

/// Longest username key counted: valid names are at most 32, so cutting longer (invalid) names
/// here merges only names that can never log in.
const MAX_KEY_CHARS: usize = 64;

/// The username as counted and looked up: trimmed, at most 64 characters.
pub fn username_key(raw: &str) -> String {
    raw.trim().chars().take(MAX_KEY_CHARS).collect()
}

/// The address as counted: IPv4 as is (an IPv4-mapped IPv6 address too), IPv6 by its /64, the
/// block one subscriber usually holds whole (counting single IPv6 addresses would give one
/// client 2^64 fresh counters).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// An argon2id hash (the default parameters) of a random password that was then thrown away:
/// what an unknown username is verified against, so that it costs what a known one does. A
/// constant, so the first unknown name pays no extra hashing either.
pub(super) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$JcJCw4WfgJyhGYQ026IW7Q$k6i4L08rSDOe9vobuJFPLRAt1o/KMiBWLJlubta5Ezw";

pub(super) fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CoreError::unavailable(format!("hashing the password: {e}")))
}

/// Whether `password` matches the PHC string `phc`; `None` when `phc` is not one (argon2 did
/// not run, which the login counts as a mismatch that cost nothing).
pub(super) fn password_matches(password: &str, phc: &str) -> Option<bool> {
    use argon2::password_hash::PasswordVerifier;
    let h = argon2::password_hash::phc::PasswordHash::new(phc).ok()?;
    Some(argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

pub(super) fn totp_aad(username: &str) -> String {
    format!("staff_totp/{username}")
}

fn refused() -> CoreError {
    CoreError::Unauthorized("invalid username, password or code".into())
}

/// The login itself (see the module's comment). `verifications` counts the argon2
/// verifications that ran, so a test can prove that every refusal paid for one.
pub(super) async fn login(store: &dyn StaffStore, key: &DataKey, limits: &LoginLimits, verifications: &AtomicU64, attempt: &LoginAttempt<'_>, now: i64) -> Result<UserId> {
    let name = username_key(attempt.username);
    let address = address_key(attempt.address);
    let counted = store.count_login_attempt(&name, &address, now, limits.window_ms).await?;
    if let Some(retry_after_ms) = counted.limited_for(limits, now) {
        return Err(CoreError::RateLimited { retry_after_ms });
    }
    let record = store.staff_by_username(&name).await?;
    // One verification on every path: against the account's hash, or the dummy.
    let hash = record.as_ref().map_or_else(|| DUMMY_HASH.to_owned(), |r| r.password_hash.clone());
    let password = attempt.password.to_owned();
    let verified = tokio::task::spawn_blocking(move || password_matches(&password, &hash))
        .await
        .map_err(|e| CoreError::unavailable(format!("verifying: {e}")))?;
    if verified.is_some() {
        verifications.fetch_add(1, Ordering::Relaxed);
    }
    let password_ok = verified == Some(true);
    if let Some(r) = record.as_ref().filter(|r| password_ok && !r.disabled) {
        let secret = key.open_unbound(&totp_aad(&r.username), &r.totp_cipher)?;
        let step = super::totp::decode_base32(&secret).and_then(|s| super::totp::verify(&s, attempt.code.trim(), now));
        // `record_success` is false for a code used already (a replay, or a second login with
        // the same code): refused like any other failure.
        if let Some(step) = step {
            if store.record_success(r.user, step, now).await? {
                store.login_succeeded(&name, &address, now, limits.window_ms).await?;
                return Ok(r.user);
            }
        }
    }
    // The failure is counted already. The one that brings an existing account's pair to its
    // limit is audited; the actor is that account (the client has none).
    if counted.pair == limits.pair_failures {
        if let Some(r) = &record {
            let entry = NewAudit::new(&Actor::new(r.user, Some(attempt.address.to_string())), AuditAction::StaffLoginLimited, format!("user:{}", r.user))
                .after(serde_json::json!({"username": name, "address": address, "failures": limits.pair_failures}));
            store.login_limited(&entry, now).await?;
        }
    }
    if counted.pair == limits.pair_failures || counted.address == limits.address_failures {
        tracing::warn!(username = %name, address = %address, pair = counted.pair, by_address = counted.address, "staff logins limited");
    }
    Err(refused())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;
    use crate::model::Role;
    use crate::staff::{NewStaff, StaffRecord};
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(password_matches("correct horse battery", &h), Some(true));
        assert_eq!(password_matches("correct horse batterz", &h), Some(false));
        assert_eq!(password_matches("x", "not a phc string"), None);
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "the dummy costs what a real hash does");
        assert!(argon2::password_hash::phc::PasswordHash::new(DUMMY_HASH).is_ok(), "the dummy is a real hash");
        assert_eq!(password_matches("anything", DUMMY_HASH), Some(false));
    }

    #[test]
    fn keys_of_usernames_and_addresses() {
        assert_eq!(username_key("  anna "), "anna");
        assert_eq!(username_key(&"x".repeat(500)).len(), 64);
        assert_eq!(address_key("203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(address_key("::ffff:203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2::9".parse().unwrap()), address_key("2001:db8:1:2:ffff::1".parse().unwrap()));
    }

    #[test]
    fn limited_for_names_the_longer_wait() {
        let l = LoginLimits::default();
        // The fifth attempt is still checked; the sixth is not.
        let f = LoginFailures { pair: 5, pair_since: 0, address: 20, address_since: 0 };
        assert_eq!(f.limited_for(&l, 10), None);
        let f = LoginFailures { pair: 6, pair_since: 100, address: 3, address_since: 0 };
        assert_eq!(f.limited_for(&l, 1000), Some((100 + l.window_ms - 1000) as u64));
        let f = LoginFailures { pair: 6, pair_since: 100, address: 21, address_since: 500 };
        assert_eq!(f.limited_for(&l, 1000), Some((500 + l.window_ms - 1000) as u64));
    }

    /// Staff accounts and failure counts in memory, counted as the port promises.
    #[derive(Default)]
    struct Fake {
        accounts: Mutex<Vec<StaffRecord>>,
        pairs: Mutex<HashMap<(String, String), (i64, u32)>>,
        addresses: Mutex<HashMap<String, (i64, u32)>>,
        audits: Mutex<Vec<NewAudit>>,
    }

    fn bump(slot: &mut (i64, u32), now: i64, window_ms: i64) {
        if slot.0 <= now - window_ms {
            *slot = (now, 1);
        } else {
            slot.1 += 1;
        }
    }

    impl Fake {
        fn counts(&self, username: &str, address: &str, now: i64, window_ms: i64) -> LoginFailures {
            let live = |s: Option<(i64, u32)>| s.filter(|s| s.0 > now - window_ms).unwrap_or_default();
            let p = live(self.pairs.lock().unwrap().get(&(username.to_owned(), address.to_owned())).copied());
            let a = live(self.addresses.lock().unwrap().get(address).copied());
            LoginFailures { pair: p.1, pair_since: p.0, address: a.1, address_since: a.0 }
        }
    }

    #[async_trait]
    impl StaffStore for Fake {
        async fn create_staff(&self, _: &NewStaff, _: Option<&Actor>, _: i64) -> Result<UserId> {
            unreachable!("not used by logins")
        }
        async fn staff_by_username(&self, username: &str) -> Result<Option<StaffRecord>> {
            Ok(self.accounts.lock().unwrap().iter().find(|r| r.username == username).cloned())
        }
        async fn staff_by_id(&self, user: UserId) -> Result<Option<StaffRecord>> {
            Ok(self.accounts.lock().unwrap().iter().find(|r| r.user == user).cloned())
        }
        async fn record_success(&self, user: UserId, step: u64, _: i64) -> Result<bool> {
            let mut all = self.accounts.lock().unwrap();
            let r = all.iter_mut().find(|r| r.user == user).unwrap();
            let fresh = r.last_step < step;
            if fresh {
                r.last_step = step;
            }
            Ok(fresh)
        }
        async fn count_login_attempt(&self, username: &str, address: &str, now: i64, window_ms: i64) -> Result<LoginFailures> {
            bump(self.pairs.lock().unwrap().entry((username.to_owned(), address.to_owned())).or_insert((i64::MIN / 2, 0)), now, window_ms);
            bump(self.addresses.lock().unwrap().entry(address.to_owned()).or_insert((i64::MIN / 2, 0)), now, window_ms);
            Ok(self.counts(username, address, now, window_ms))
        }
        async fn login_succeeded(&self, username: &str, address: &str, now: i64, window_ms: i64) -> Result<()> {
            self.pairs.lock().unwrap().remove(&(username.to_owned(), address.to_owned()));
            if let Some(a) = self.addresses.lock().unwrap().get_mut(address).filter(|a| a.0 > now - window_ms) {
                a.1 = a.1.saturating_sub(1);
            }
            Ok(())
        }
        async fn login_limited(&self, audit: &NewAudit, _: i64) -> Result<()> {
            self.audits.lock().unwrap().push(audit.clone());
            Ok(())
        }
        async fn staff_accounts(&self, _: Option<UserId>, _: u32) -> Result<Vec<StaffRecord>> {
            unreachable!("not used by logins")
        }
        async fn set_staff_disabled(&self, _: UserId, _: bool, _: i64, _: &NewAudit) -> Result<Option<StaffRecord>> {
            unreachable!("not used by logins")
        }
    }

    const PASSWORD: &str = "correct horse battery staple";
    const SECRET: [u8; 20] = *b"12345678901234567890";

    /// A store with `anna` (and `ben`, disabled), and the key that opens their secrets.
    fn setup() -> (Fake, DataKey) {
        let key = DataKey::new([3u8; 32]);
        let hash = hash_password(PASSWORD).unwrap();
        let fake = Fake::default();
        for (id, name, disabled) in [(1, "anna", false), (2, "ben", true)] {
            fake.accounts.lock().unwrap().push(StaffRecord {
                user: UserId::new(id).unwrap(),
                username: name.into(),
                role: Role::Operator,
                password_hash: hash.clone(),
                totp_cipher: key.seal_unbound(&totp_aad(name), &crate::staff::totp::base32(&SECRET)).unwrap(),
                disabled,
                last_step: 0,
                created_at: 0,
            });
        }
        (fake, key)
    }

    fn code(now: i64) -> String {
        format!("{:06}", crate::staff::totp::hotp(&SECRET, crate::staff::totp::step_at(now), 6))
    }

    fn attempt<'a>(username: &'a str, password: &'a str, code: &'a str, address: &str) -> LoginAttempt<'a> {
        LoginAttempt { username, password, code, address: address.parse().unwrap() }
    }

    #[tokio::test]
    async fn every_refusal_verifies_a_password_once_an_unknown_name_too() {
        let (store, key) = setup();
        let limits = LoginLimits::default();
        let n = AtomicU64::new(0);
        let now = 1_800_000_000_000;
        let c = code(now);
        let cases = [
            attempt("nobody", PASSWORD, &c, "192.0.2.1"),
            attempt("x".repeat(100).leak(), PASSWORD, &c, "192.0.2.1"),
            attempt("anna", "wrong password!!", &c, "192.0.2.1"),
            attempt("anna", PASSWORD, "000000", "192.0.2.1"),
            attempt("ben", PASSWORD, &c, "192.0.2.1"),
        ];
        for (i, a) in cases.iter().enumerate() {
            let e = login(&store, &key, &limits, &n, a, now).await.unwrap_err();
            assert_eq!(e, refused(), "{}", a.username);
            assert_eq!(n.load(Ordering::Relaxed), i as u64 + 1, "{} verified a password", a.username);
        }
        // Every name, unknown ones too, was counted the same way.
        assert_eq!(store.counts("nobody", "192.0.2.1", now, limits.window_ms).pair, 1);
        assert_eq!(store.counts("anna", "192.0.2.1", now, limits.window_ms).pair, 2);
        assert_eq!(store.counts("anna", "192.0.2.1", now, limits.window_ms).address, 5);
        // The right answer logs in, and resets its pair; the address keeps its failures only.
        assert_eq!(login(&store, &key, &limits, &n, &attempt("anna", PASSWORD, &c, "192.0.2.1"), now).await, Ok(UserId::new(1).unwrap()));
        assert_eq!(n.load(Ordering::Relaxed), 6);
        let after = store.counts("anna", "192.0.2.1", now, limits.window_ms);
        assert_eq!((after.pair, after.address), (0, 5));
        // The same code again: used once, refused (and counted) after a verification too.
        assert_eq!(login(&store, &key, &limits, &n, &attempt("anna", PASSWORD, &c, "192.0.2.1"), now).await, Err(refused()));
        assert_eq!((n.load(Ordering::Relaxed), store.counts("anna", "192.0.2.1", now, limits.window_ms).pair), (7, 1));
    }

    #[tokio::test]
    async fn a_pair_is_limited_the_owner_elsewhere_is_not() {
        let (store, key) = setup();
        let limits = LoginLimits::default();
        let n = AtomicU64::new(0);
        let now = 1_800_000_000_000;
        for name in ["anna", "nobody"] {
            for _ in 0..5 {
                assert_eq!(login(&store, &key, &limits, &n, &attempt(name, "wrong password!!", "000000", "198.51.100.7"), now).await, Err(refused()));
            }
            // The sixth: limited, for the rest of the window, the same for an unknown name.
            let e = login(&store, &key, &limits, &n, &attempt(name, PASSWORD, &code(now), "198.51.100.7"), now + 1000).await.unwrap_err();
            assert_eq!(e, CoreError::RateLimited { retry_after_ms: (limits.window_ms - 1000) as u64 }, "{name}");
        }
        assert_eq!(n.load(Ordering::Relaxed), 10, "a limited answer verifies nothing");
        // The lockout of the existing account is audited once, naming the name and address.
        let audits = store.audits.lock().unwrap().clone();
        assert_eq!(audits.len(), 1);
        assert_eq!((audits[0].action, audits[0].target.as_str(), audits[0].ip.as_deref()), (AuditAction::StaffLoginLimited, "user:1", Some("198.51.100.7")));
        assert_eq!(audits[0].after, Some(serde_json::json!({"username": "anna", "address": "198.51.100.7", "failures": 5})));
        // The owner, from her own address, logs in.
        assert_eq!(login(&store, &key, &limits, &n, &attempt("anna", PASSWORD, &code(now), "203.0.113.5"), now + 2000).await, Ok(UserId::new(1).unwrap()));
        // The window runs out: the stranger's pair may try again.
        let later = now + limits.window_ms + 1;
        assert_eq!(login(&store, &key, &limits, &n, &attempt("anna", "wrong password!!", "000000", "198.51.100.7"), later).await, Err(refused()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn attempts_sent_at_once_cannot_pass_the_limit() {
        let (store, key) = setup();
        let (store, key, n) = (std::sync::Arc::new(store), std::sync::Arc::new(key), std::sync::Arc::new(AtomicU64::new(0)));
        let now = 1_800_000_000_000;
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let (store, key, n) = (store.clone(), key.clone(), n.clone());
                tokio::spawn(async move {
                    let wrong = attempt("anna", "wrong password!!", "000000", "198.51.100.7");
                    login(store.as_ref(), &key, &LoginLimits::default(), &n, &wrong, now).await
                })
            })
            .collect();
        let mut limited = 0;
        for t in tasks {
            match t.await.unwrap() {
                Err(CoreError::RateLimited { .. }) => limited += 1,
                other => assert_eq!(other, Err(refused())),
            }
        }
        assert_eq!((limited, n.load(Ordering::Relaxed)), (7, 5), "only five attempts were verified");
    }

    #[tokio::test]
    async fn an_address_spraying_names_is_limited() {
        let (store, key) = setup();
        let limits = LoginLimits::default();
        let n = AtomicU64::new(0);
        let now = 1_800_000_000_000;
        for i in 0..20 {
            let name = format!("guess{i}");
            assert_eq!(login(&store, &key, &limits, &n, &attempt(&name, PASSWORD, "000000", "2001:db8::1"), now).await, Err(refused()));
        }
        // Another address of the same /64, another name: limited.
        let e = login(&store, &key, &limits, &n, &attempt("anna", PASSWORD, &code(now), "2001:db8::2"), now).await.unwrap_err();
        assert!(matches!(e, CoreError::RateLimited { .. }), "{e:?}");
        assert_eq!(login(&store, &key, &limits, &n, &attempt("anna", PASSWORD, &code(now), "2001:db8:0:1::2"), now).await, Ok(UserId::new(1).unwrap()));
    }
}
