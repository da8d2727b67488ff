//! Sealing of personal data, a kernel value every area that keeps personal data uses (users'
//! phones, merchants' papers, orders' recipients, staff's TOTP secrets). A value (a phone number,
//! say) is sealed with AES-256-GCM (a fresh random nonce per
//! seal, the user id as associated data, so a sealed value moved to another row does not open)
//! and indexed by HMAC-SHA256 (a blind index: equal numbers give equal indexes, so lookups and
//! uniqueness work without the clear number). Both keys are derived from one 32-byte data key
//! (`JBK_DATA_KEY`), each for its one purpose.

use crate::error::CoreError;
use crate::ids::UserId;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The data key and the two keys derived from it. Never printed (`Debug` shows nothing).
pub struct DataKey {
    seal: Aes256Gcm,
    index: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

fn derive(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(master).expect("any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

impl DataKey {
    pub fn new(master: [u8; 32]) -> Self {
        let seal_key = derive(&master, "jiebanke/pii/seal/v1");
        let seal = Aes256Gcm::new_from_slice(&seal_key).expect("32-byte key");
        DataKey { seal, index: derive(&master, "jiebanke/pii/index/v1") }
    }

    /// The key from its base64 form (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, CoreError> {
        let bytes = B64.decode(text.trim()).map_err(|_| CoreError::invalid("the data key must be base64"))?;
        let master: [u8; 32] = bytes.try_into().map_err(|_| CoreError::invalid("the data key must be 32 bytes"))?;
        Ok(Self::new(master))
    }

    /// A new random key in base64, for a development data dir.
    pub fn generate_base64() -> Result<String, CoreError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        Ok(B64.encode(k))
    }

    fn aad(user: UserId, what: &str) -> String {
        format!("jiebanke/{what}/{user}")
    }

    /// Seals `clear` for `user` (random nonce, then ciphertext and tag), base64.
    pub fn seal(&self, user: UserId, what: &str, clear: &str) -> Result<String, CoreError> {
        self.seal_aad(&Self::aad(user, what), clear)
    }

    fn seal_aad(&self, aad: &str, clear: &str) -> Result<String, CoreError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        let ct = self
            .seal
            .encrypt(&nonce.into(), Payload { msg: clear.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| CoreError::unavailable("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    /// Seals a value that belongs to no user (a website lead's phone): bound to its purpose only.
    pub fn seal_unbound(&self, what: &str, clear: &str) -> Result<String, CoreError> {
        self.seal_aad(&format!("jiebanke/{what}"), clear)
    }

    /// Opens what `seal_unbound` made for the same purpose.
    pub fn open_unbound(&self, what: &str, sealed: &str) -> Result<String, CoreError> {
        self.open_aad(&format!("jiebanke/{what}"), sealed)
    }

    /// Opens what `seal` made for the same user and purpose.
    pub fn open(&self, user: UserId, what: &str, sealed: &str) -> Result<String, CoreError> {
        self.open_aad(&Self::aad(user, what), sealed)
    }

    fn open_aad(&self, aad: &str, sealed: &str) -> Result<String, CoreError> {
        let broken = || CoreError::unavailable("a sealed value does not open with this data key");
        let bytes = B64.decode(sealed).map_err(|_| broken())?;
        if bytes.len() < 12 + 16 {
            return Err(broken());
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| broken())?;
        let clear = self.seal.decrypt(&nonce.into(), Payload { msg: ct, aad: aad.as_bytes() }).map_err(|_| broken())?;
        String::from_utf8(clear).map_err(|_| broken())
    }

    /// The blind index of a value: HMAC-SHA256 under the index key, hex.
    pub fn index(&self, what: &str, clear: &str) -> String {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.index).expect("any key length");
        mac.update(what.as_bytes());
        mac.update(b"\0");
        mac.update(clear.as_bytes());
        let tag = mac.finalize().into_bytes();
        tag.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::new([7u8; 32])
    }

    #[test]
    fn seal_opens_for_the_same_user_only() {
        let k = key();
        let a = UserId::new(1).unwrap();
        let b = UserId::new(2).unwrap();
        let s = k.seal(a, "phone", "+8613812345678").unwrap();
        assert!(!s.contains("13812345678"));
        assert_eq!(k.open(a, "phone", &s).unwrap(), "+8613812345678");
        assert!(k.open(b, "phone", &s).is_err(), "moved to another user's row, it must not open");
        assert!(DataKey::new([8u8; 32]).open(a, "phone", &s).is_err(), "another key must not open it");
        // A fresh nonce each time: the same number never seals the same way twice.
        assert_ne!(s, k.seal(a, "phone", "+8613812345678").unwrap());
    }

    #[test]
    fn index_is_stable_and_keyed() {
        let k = key();
        assert_eq!(k.index("phone", "+8613812345678"), k.index("phone", "+8613812345678"));
        assert_ne!(k.index("phone", "+8613812345678"), k.index("phone", "+8613812345679"));
        assert_ne!(k.index("phone", "+8613812345678"), DataKey::new([8u8; 32]).index("phone", "+8613812345678"));
        assert_eq!(k.index("phone", "x").len(), 64);
    }

    #[test]
    fn keys_from_base64() {
        let text = DataKey::generate_base64().unwrap();
        assert!(DataKey::from_base64(&text).is_ok());
        assert!(DataKey::from_base64("c2hvcnQ=").is_err());
        assert!(DataKey::from_base64("not base64!").is_err());
    }
}
