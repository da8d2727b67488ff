//! WeChat Pay APIv3's cryptography, as WeChat Pay specifies it:
//!
//! - a request to WeChat Pay is signed `SHA256withRSA` (RSA PKCS#1 v1.5 over SHA-256, the
//!   merchant's 2048-bit key) over `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`, and sent as
//!   `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"`;
//! - the mini-program's `wx.requestPayment` gets `paySign` over `APPID\nTIMESTAMP\nNONCE\nPACKAGE\n`;
//! - a callback (and every answer) is verified with the platform public key that
//!   `Wechatpay-Serial` names (a platform certificate's serial, or `PUB_KEY_ID_…` in the
//!   public-key mode) over `TIMESTAMP\nNONCE\nBODY\n`, refusing a timestamp more than 5 minutes
//!   off;
//! - the callback's `resource` is `AEAD_AES_256_GCM` under the APIv3 key with its `nonce` and
//!   `associated_data`.
//!
//! RSA is aws-lc-rs's (constant-time; the `rsa` crate has an open timing advisory,
//! RUSTSEC-2023-0071, and anyone can make the server sign by asking to pay).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use std::collections::HashMap;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How far a callback's timestamp may be from now.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a callback (or an answer of WeChat Pay) is refused. `code()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    #[error("the key is not a PEM or DER RSA key of 2048 bits or more")]
    BadKey,
    #[error("no platform key has the serial {0}")]
    UnknownSerial(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the timestamp is more than 5 minutes off")]
    StaleTimestamp,
    #[error("the resource does not decrypt")]
    BadCiphertext,
    #[error("signing failed")]
    SigningFailed,
}

impl WechatError {
    pub fn code(&self) -> &'static str {
        match self {
            WechatError::BadKey => "bad_key",
            WechatError::UnknownSerial(_) => "unknown_serial",
            WechatError::BadSignature => "bad_signature",
            WechatError::StaleTimestamp => "stale_timestamp",
            WechatError::BadCiphertext => "bad_ciphertext",
            WechatError::SigningFailed => "signing_failed",
        }
    }
}

/// The DER inside a PEM block (any label), or the input itself if it is not PEM.
pub fn pem_to_der(text: &[u8]) -> Result<Vec<u8>, WechatError> {
    let Ok(s) = std::str::from_utf8(text) else { return Ok(text.to_vec()) };
    if !s.contains("-----BEGIN ") {
        return Ok(text.to_vec());
    }
    let body: String = s.lines().map(str::trim).filter(|l| !l.starts_with("-----") && !l.is_empty()).collect();
    B64.decode(body).map_err(|_| WechatError::BadKey)
}

/// A PEM block of `der` under `label` (`PRIVATE KEY`, `PUBLIC KEY`), lines of 64 characters.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// One DER element at the start of `der`: its tag, the whole element, its content, what follows.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |len, &b| (len << 8) | b as usize), &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = der.len() - rest.len();
    Some((tag, &der[..header + len], &rest[..len], &rest[len..]))
}

/// The SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1), `None` if `der` is not
/// one. Merchants of the older mode verify with platform certificates; only the key matters
/// (WeChat Pay names the certificate by serial, and the operator replaces it before it expires).
fn certificate_spki(der: &[u8]) -> Option<Vec<u8>> {
    let (0x30, _, certificate, _) = der_element(der)? else { return None };
    let (0x30, _, mut tbs, _) = der_element(certificate)? else { return None };
    if let (0xa0, _, _, after_version) = der_element(tbs)? {
        tbs = after_version;
    }
    // serialNumber, signature, issuer, validity, subject; then the key.
    for expected in [0x02, 0x30, 0x30, 0x30, 0x30] {
        let (tag, _, _, after) = der_element(tbs)?;
        if tag != expected {
            return None;
        }
        tbs = after;
    }
    let (0x30, spki, _, _) = der_element(tbs)? else { return None };
    Some(spki.to_vec())
}

/// The merchant's API key (or, for the local provider, its stand-in platform key): signs.
pub struct SigningKey {
    pair: RsaKeyPair,
    /// The certificate serial (merchant) or key id (platform) it is known by.
    pub serial: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.serial)
    }
}

impl SigningKey {
    /// From a PKCS#8 private key, PEM or DER.
    pub fn from_pkcs8(pem_or_der: &[u8], serial: impl Into<String>) -> Result<Self, WechatError> {
        let der = pem_to_der(pem_or_der)?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|_| WechatError::BadKey)?;
        if pair.public_modulus_len() * 8 < 2048 {
            return Err(WechatError::BadKey);
        }
        Ok(SigningKey { pair, serial: serial.into() })
    }

    /// A new 2048-bit key (the local provider's, kept in the data dir) and its PKCS#8 DER.
    pub fn generate(serial: impl Into<String>) -> Result<(Self, Vec<u8>), WechatError> {
        use aws_lc_rs::encoding::AsDer;
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| WechatError::BadKey)?;
        let der = pair.as_der().map_err(|_| WechatError::BadKey)?.as_ref().to_vec();
        Ok((SigningKey { pair, serial: serial.into() }, der))
    }

    /// `SHA256withRSA` of `message`, base64.
    pub fn sign(&self, message: &str) -> Result<String, WechatError> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut sig)
            .map_err(|_| WechatError::SigningFailed)?;
        Ok(B64.encode(sig))
    }

    /// The public key as an X.509 SubjectPublicKeyInfo DER (what `PlatformKeys` takes).
    pub fn public_key_der(&self) -> Result<Vec<u8>, WechatError> {
        use aws_lc_rs::encoding::AsDer;
        Ok(self.pair.public_key().as_der().map_err(|_| WechatError::BadKey)?.as_ref().to_vec())
    }
}

/// The platform's public keys by serial (certificate serials, or `PUB_KEY_ID_…`).
#[derive(Default, Clone)]
pub struct PlatformKeys {
    keys: HashMap<String, Vec<u8>>,
}

impl PlatformKeys {
    /// Adds a public key (SubjectPublicKeyInfo or PKCS#1 `RSAPublicKey`) or a platform
    /// certificate (X.509, its key is taken), PEM or DER.
    pub fn add(&mut self, serial: impl Into<String>, pem_or_der: &[u8]) -> Result<(), WechatError> {
        let mut der = pem_to_der(pem_or_der)?;
        if let Some(spki) = certificate_spki(&der) {
            der = spki;
        }
        // Parsed now, so that a bad key fails at start-up, not at the first callback.
        let bits = match aws_lc_rs::rsa::PublicEncryptingKey::from_der(&der) {
            Ok(k) => k.key_size_bits() as u32,
            Err(_) => signature::RsaParameters::public_modulus_len(&der).map_err(|_| WechatError::BadKey)?,
        };
        if !(2048..=8192).contains(&bits) {
            return Err(WechatError::BadKey);
        }
        self.keys.insert(serial.into(), der);
        Ok(())
    }

    /// Verifies `signature` (base64) over `message` with the key `serial` names.
    pub fn verify(&self, serial: &str, message: &str, signature_b64: &str) -> Result<(), WechatError> {
        let key = self.keys.get(serial).ok_or_else(|| WechatError::UnknownSerial(serial.chars().take(64).collect()))?;
        let sig = B64.decode(signature_b64.trim()).map_err(|_| WechatError::BadSignature)?;
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key)
            .verify(message.as_bytes(), &sig)
            .map_err(|_| WechatError::BadSignature)
    }

    /// A callback's (or answer's) headers and body: the timestamp within 5 minutes of
    /// `now_secs`, the signature over `TIMESTAMP\nNONCE\nBODY\n` by the named key.
    pub fn verify_notification(&self, serial: &str, timestamp: &str, nonce: &str, body: &[u8], signature_b64: &str, now_secs: i64) -> Result<(), WechatError> {
        let ts: i64 = timestamp.trim().parse().map_err(|_| WechatError::StaleTimestamp)?;
        if (ts - now_secs).abs() > MAX_SKEW_SECS {
            return Err(WechatError::StaleTimestamp);
        }
        let body = std::str::from_utf8(body).map_err(|_| WechatError::BadSignature)?;
        self.verify(serial, &format!("{timestamp}\n{nonce}\n{body}\n"), signature_b64)
    }
}

/// The message a request to WeChat Pay signs. `url` is the path with its query.
pub fn request_message(method: &str, url: &str, timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The `Authorization` header of a request to WeChat Pay.
pub fn authorization(mchid: &str, key: &SigningKey, method: &str, url: &str, timestamp: i64, nonce: &str, body: &str) -> Result<String, WechatError> {
    let signature = key.sign(&request_message(method, url, timestamp, nonce, body))?;
    Ok(format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{mchid}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
        key.serial
    ))
}

/// `paySign` for `wx.requestPayment` (`signType` `RSA`), `package` being `prepay_id=…`.
pub fn pay_sign(appid: &str, timestamp: i64, nonce: &str, package: &str, key: &SigningKey) -> Result<String, WechatError> {
    key.sign(&format!("{appid}\n{timestamp}\n{nonce}\n{package}\n"))
}

fn gcm_open(key: &[u8], nonce: &[u8], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, WechatError> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let payload = Payload { msg: data, aad };
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| WechatError::BadCiphertext)?;
    match key.len() {
        32 => aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| WechatError::BadCiphertext)?.decrypt(&nonce.into(), payload),
        // WeChat Pay's own SDK examples use 16-byte keys (AES-128-GCM); real APIv3 keys are 32.
        16 => aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| WechatError::BadCiphertext)?.decrypt(&nonce.into(), payload),
        _ => return Err(WechatError::BadCiphertext),
    }
    .map_err(|_| WechatError::BadCiphertext)
}

/// Decrypts a callback's `resource.ciphertext` (base64) with the APIv3 key.
pub fn decrypt_resource(api_v3_key: &[u8], nonce: &str, associated_data: &str, ciphertext_b64: &str) -> Result<Vec<u8>, WechatError> {
    let data = B64.decode(ciphertext_b64.trim()).map_err(|_| WechatError::BadCiphertext)?;
    gcm_open(api_v3_key, nonce.as_bytes(), associated_data.as_bytes(), &data)
}

/// Encrypts a resource as WeChat Pay does (the local provider's callbacks, and tests).
pub fn encrypt_resource(api_v3_key: &[u8], nonce: &str, associated_data: &str, plaintext: &[u8]) -> Result<String, WechatError> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let nonce: [u8; 12] = nonce.as_bytes().try_into().map_err(|_| WechatError::BadCiphertext)?;
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(api_v3_key).map_err(|_| WechatError::BadCiphertext)?;
    let out = cipher.encrypt(&nonce.into(), Payload { msg: plaintext, aad: associated_data.as_bytes() }).map_err(|_| WechatError::BadCiphertext)?;
    Ok(B64.encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vectors of WeChat Pay's own Go SDK (github.com/wechatpay-apiv3/wechatpay-go,
    // Apache-2.0, at 6dbd7ce: utils/sign_test.go, utils/aes_test.go,
    // core/auth/verifiers/sha256withrsa_pubkey_verifier_test.go). The SDK writes the private
    // key's label as "TESTING KEY" so that secret scanners pass it by; so do we.
    const SDK_PRIVATE_KEY: &str = "-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZUJN33V+dSfvd
fL0Mu+39XrZNXFFMQSy1V15FpncHeV47SmV0TzTqZc7hHB0ddqAdDi8Z5k3TKqb7
6sOwYr5TcAfuR6PIPaleyE0/0KrljBum2Isa2Nyq7Dgc3ElBQ6YN4l/a+DpvKaz1
FSKmKrhLNskqokWVSlu4g8OlKlbPXQ9ibII14MZRQrrkTmHYHzfi7GXXM0thAKuR
0HNvyhTHBh4/lrYM3GaMvmWwkwvsMavnOex6+eioZHBOb1/EIZ/LzC6zuHArPpyW
3daGaZ1rtQB1vVzTyERAVVFsXXgBHvfFud3w3ShsJYk8JvMwK2RpJ5/gV0QSARcm
LDRUAlPzAgMBAAECggEBAMc7rDeUaXiWv6bMGbZ3BTXpg1FhdddnWUnYE8HfX/km
OFI7XtBHXcgYFpcjYz4D5787pcsk7ezPidAj58zqenuclmjKnUmT3pfbI5eCA2v4
C9HnbYDrmUPK1ZcADtka4D6ScDccpNYNa1g2TFHzkIrEa6H+q7S3O2fqxY/DRVtN
0JIXalBb8daaqL5QVzSmM2BMVnHy+YITJWIkP2a3pKs9C0W65JGDsnG0wVrHinHF
+cnhFZIbaPEI//DAFMc9NkrWOKVRTEgcCUxCFaHOZVNxDWZD7A2ZfJB2rK6eg//y
gEiFDR2h6mTaDowMB4YF2n2dsIO4/dCG8vPHI20jn4ECgYEA/ZGu6lEMlO0XZnam
AZGtiNgLcCfM/C2ZERZE7QTRPZH1WdK92Al9ndldsswFw4baJrJLCmghjF/iG4zi
hhBvLnOLksnZUfjdumxoHDWXo2QBWbI5QsWIE7AuTiWgWj1I7X4fCXSQf6i+M/y2
6TogQ7d0ANpZFyOkTNMn/tiJvLECgYEA22XqlamG/yfAGWery5KNH2DGlTIyd6xJ
WtJ9j3jU99lZ0bCQ5xhiBbU9ImxCi3zgTsoqLWgA/p00HhNFNoUcTl9ofc0G3zwT
D1y0ZzcnVKxGJdZ6ohW52V0hJStAigtjYAsUgjm7//FH7PiQDBDP1Wa6xSRkDQU/
aSbQxvEE8+MCgYEA3bb8krW7opyM0XL9RHH0oqsFlVO30Oit5lrqebS0oHl3Zsr2
ZGgoBlWBsEzk3UqUhTFwm/DhJLTSJ/TQPRkxnhQ5/mewNhS9C7yua7wQkzVmWN+V
YeUGTvDGDF6qDz12/vJAgSwDDRym8x4NcXD5tTw7mmNRcwIfL22SkysThIECgYAV
BgccoEoXWS/HP2/u6fQr9ZIR6eV8Ij5FPbZacTG3LlS1Cz5XZra95UgebFFUHHtC
EY1JHJY7z8SWvTH8r3Su7eWNaIAoFBGffzqqSVazfm6aYZsOvRY6BfqPHT3p/H1h
Tq6AbBffxrcltgvXnCTORjHPglU0CjSxVs7awW3AEQKBgB5WtaC8VLROM7rkfVIq
+RXqE5vtJfa3e3N7W3RqxKp4zHFAPfr82FK5CX2bppEaxY7SEZVvVInKDc5gKdG/
jWNRBmvvftZhY59PILHO2X5vO4FXh7suEjy6VIh0gsnK36mmRboYIBGsNuDHjXLe
BDa+8mDLkWu5nHEhOxy2JJZl
-----END TESTING KEY-----";
    const SDK_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2VCTd91fnUn73Xy9DLvt
/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXagHQ4vGeZN0yqm++rDsGK+
U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOmDeJf2vg6byms9RUipiq4
SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B834uxl1zNLYQCrkdBzb8oU
xwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGfy8wus7hwKz6clt3Whmmd
a7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtkaSef4FdEEgEXJiw0VAJT
8wIDAQAB
-----END PUBLIC KEY-----";
    const SDK_SIGNATURE_OF_SOURCE: &str = concat!(
        "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoV",
        "z+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLl",
        "i/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj",
        "1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
    );

    // A self-signed certificate, its public key, and its private key's signature of "source",
    // made with OpenSSL 3.0 (`openssl req -x509 -newkey rsa:2048`, `openssl dgst -sha256 -sign`).
    const OPENSSL_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgIUUVfwnv3Alt4V6+gaRwV6cjL5os4wDQYJKoZIhvcNAQEL
BQAwMDEfMB0GA1UEAwwWSmllYmFua2UgdGVzdCBwbGF0Zm9ybTENMAsGA1UECgwE
VGVzdDAeFw0yNjEyMDQwNzMwMTVaFw0zNjEyMDEwNzMwMTVaMDAxHzAdBgNVBAMM
FkppZWJhbmtlIHRlc3QgcGxhdGZvcm0xDTALBgNVBAoMBFRlc3QwggEiMA0GCSqG
SIb3DQEBAQUAA4IBDwAwggEKAoIBAQDkbbSevFg/Ab+po+5+fN3zri34AYMbL1Ds
an8D82GbCZDhxw5nDU50/jEvqx7Odm3Gs5i8QzWOLNrydWJRGnR5YvUdrWo+xAMG
PGoqy2kCd1SkxLZLxnXYl5xKckwCG852Mhnmxwlik9FUlGFOx2rUSDfOl0jl/EKd
bhk6kfsnjhU4+MdWoIozCGWYw2zcNp/v1YQxvRqDhI+CRYYMUCF5cY/xbzBsSuxB
b6hNR15bIVNHINvWcO8KighWnS396VrE20llcX2MNV/8uvcaiEFBRSi/hIvJjBrq
sgWmz8gfkqsxBBxpOX15X+ZtKYdRgQ0l/LYka7zezjgnebWJLnHvAgMBAAGjUzBR
MB0GA1UdDgQWBBTyp+GD68gHnxx8+ECWlabBWaE6WjAfBgNVHSMEGDAWgBTyp+GD
68gHnxx8+ECWlabBWaE6WjAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUA
A4IBAQDNQSgECS30+z7W1jcDDJuEJppTOoDVBP7NV1FxscaVC/pfMMNful+m1ynr
LDx1Bg+biIy4ZzSftQH7bN1vCrYWbALrIyPNeqnLa/3DeMMiJGSEPRHBaej6n6sJ
J5R74NKEQOFXmkuyQkOPwkChoyfKFL/vNq7aA/gbGcBaZixAunfCj4PSqFsT2I3p
m4ynlo+Ej4ykap2sVJq+tUr2twfdk6NCqNSsP1zA+1B5m7kLKp6lY9YATrErLy0q
E8pHpkhzjV/IoHbZM5dLUgreDVnfhAfYVRM5Sb+h2GJrnHP+2+HA3ZqYr+1pCwP8
HfcxWTE5nnfNLeY6P30uKl3WQg4R
-----END CERTIFICATE-----";
    const OPENSSL_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA5G20nrxYPwG/qaPufnzd
864t+AGDGy9Q7Gp/A/NhmwmQ4ccOZw1OdP4xL6seznZtxrOYvEM1jiza8nViURp0
eWL1Ha1qPsQDBjxqKstpAndUpMS2S8Z12JecSnJMAhvOdjIZ5scJYpPRVJRhTsdq
1Eg3zpdI5fxCnW4ZOpH7J44VOPjHVqCKMwhlmMNs3Daf79WEMb0ag4SPgkWGDFAh
eXGP8W8wbErsQW+oTUdeWyFTRyDb1nDvCooIVp0t/elaxNtJZXF9jDVf/Lr3GohB
QUUov4SLyYwa6rIFps/IH5KrMQQcaTl9eV/mbSmHUYENJfy2JGu83s44J3m1iS5x
7wIDAQAB
-----END PUBLIC KEY-----";
    const OPENSSL_SIGNATURE_OF_SOURCE: &str = concat!(
        "rlZ9vpfm0VK3pmfzDYB2w4lUU6+EcS16hre/w3JRJkz7W3/+vZnpohRRamS1TyVfCP9Es5muK7ml6zu3+qRhjAQUpVo7Go17qXh6fK3h",
        "gLS5hDFGFlSFshYjnW+jyXdS4OlR1ewkABDcVUxcSNNW0r68ZyyxVgJSzKpYvshFi6P50X31BwWLQ+P7mX9Lr1ankX/fAlQ+iHTlzckP",
        "yr/Cd2slQiQLBso+0ESKe2nSPSF6RojDwRRkxZ73r2sqpCmqA7aEPuWn80LySFa6WebtIG0sFckXv7fTcuwHc2yq3DpISGSgD4ZcNZML",
        "m/L9PJFuW1sV5mnG4fqf8mpiS+0gLg=="
    );

    fn sdk_key() -> SigningKey {
        SigningKey::from_pkcs8(SDK_PRIVATE_KEY.as_bytes(), "sdk").unwrap()
    }

    #[test]
    fn signatures_match_wechat_pay_s_sdk() {
        // PKCS#1 v1.5 is deterministic: the same key and message give the SDK's exact bytes.
        assert_eq!(sdk_key().sign("source").unwrap(), SDK_SIGNATURE_OF_SOURCE);
        let mut keys = PlatformKeys::default();
        keys.add("F5765756002FDD77", SDK_PUBLIC_KEY.as_bytes()).unwrap();
        keys.verify("F5765756002FDD77", "source", SDK_SIGNATURE_OF_SOURCE).unwrap();
        assert_eq!(keys.verify("F5765756002FDD77", "wrong source", SDK_SIGNATURE_OF_SOURCE), Err(WechatError::BadSignature));
        assert_eq!(keys.verify("PUB_KEY_ID_OTHER", "source", SDK_SIGNATURE_OF_SOURCE), Err(WechatError::UnknownSerial("PUB_KEY_ID_OTHER".into())));
        assert_eq!(keys.verify("F5765756002FDD77", "source", "not base64!"), Err(WechatError::BadSignature));
        // The key's own public half is the SDK's public key.
        assert_eq!(sdk_key().public_key_der().unwrap(), pem_to_der(SDK_PUBLIC_KEY.as_bytes()).unwrap());
    }

    #[test]
    fn platform_certificates_give_their_key() {
        let cert = pem_to_der(OPENSSL_CERTIFICATE.as_bytes()).unwrap();
        assert_eq!(certificate_spki(&cert).unwrap(), pem_to_der(OPENSSL_PUBLIC_KEY.as_bytes()).unwrap());
        // A key is not a certificate.
        assert_eq!(certificate_spki(&pem_to_der(OPENSSL_PUBLIC_KEY.as_bytes()).unwrap()), None);
        let mut keys = PlatformKeys::default();
        keys.add("5157F09EFDC096DE15EBE81A47057A7232F9A2CE", OPENSSL_CERTIFICATE.as_bytes()).unwrap();
        keys.verify("5157F09EFDC096DE15EBE81A47057A7232F9A2CE", "source", OPENSSL_SIGNATURE_OF_SOURCE).unwrap();
        assert_eq!(keys.verify("5157F09EFDC096DE15EBE81A47057A7232F9A2CE", "sourc", OPENSSL_SIGNATURE_OF_SOURCE), Err(WechatError::BadSignature));
        // A truncated certificate is refused, not half-read.
        assert_eq!(PlatformKeys::default().add("x", &cert[..cert.len() / 2]), Err(WechatError::BadKey));
        // PEM written by der_to_pem reads back.
        let pem = der_to_pem("CERTIFICATE", &cert);
        assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
        assert_eq!(pem_to_der(pem.as_bytes()).unwrap(), cert);
    }

    #[test]
    fn resources_decrypt_as_wechat_pay_s_sdk_says() {
        let pt = decrypt_resource(b"testAPIv3Key0000", "wCq51qZv4Yfg", "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC").unwrap();
        assert_eq!(pt, b"Hello World");
        for (key, aad, ct) in [
            (&b"testAPIv3Key1111"[..], "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"),
            (b"testAPIv3Key0000", "tampered associated data", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"),
            (b"testAPIv3Key0000", "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", "SGVsbG8gV29ybGQK"),
            (b"testAPIv3Key0000", "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", "invalid cipher"),
            (b"not a aes key", "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"),
        ] {
            assert_eq!(decrypt_resource(key, "wCq51qZv4Yfg", aad, ct), Err(WechatError::BadCiphertext), "{aad} {ct}");
        }
        // AES-256 (real APIv3 keys are 32 bytes): what we encrypt decrypts, a flipped bit does not.
        let key = b"0123456789abcdef0123456789abcdef";
        let ct = encrypt_resource(key, "000000000000", "transaction", br#"{"out_trade_no":"7"}"#).unwrap();
        assert_eq!(decrypt_resource(key, "000000000000", "transaction", &ct).unwrap(), br#"{"out_trade_no":"7"}"#);
        let mut raw = B64.decode(&ct).unwrap();
        raw[0] ^= 1;
        assert_eq!(decrypt_resource(key, "000000000000", "transaction", &B64.encode(raw)), Err(WechatError::BadCiphertext));
    }

    #[test]
    fn notifications_are_verified_with_their_timestamp() {
        let (platform, _) = SigningKey::generate("PUB_KEY_ID_0114").unwrap();
        let mut keys = PlatformKeys::default();
        keys.add("PUB_KEY_ID_0114", &platform.public_key_der().unwrap()).unwrap();
        let body = br#"{"id":"EV-1","resource":{}}"#;
        let sig = platform.sign(&format!("1700000000\nn0nce\n{}\n", std::str::from_utf8(body).unwrap())).unwrap();
        keys.verify_notification("PUB_KEY_ID_0114", "1700000000", "n0nce", body, &sig, 1_700_000_100).unwrap();
        assert_eq!(keys.verify_notification("PUB_KEY_ID_0114", "1700000000", "n0nce", body, &sig, 1_700_000_301), Err(WechatError::StaleTimestamp));
        assert_eq!(keys.verify_notification("PUB_KEY_ID_0114", "1700000000", "other", body, &sig, 1_700_000_000), Err(WechatError::BadSignature));
        assert_eq!(keys.verify_notification("PUB_KEY_ID_0114", "1700000000", "n0nce", br#"{"id":"EV-2","resource":{}}"#, &sig, 1_700_000_000), Err(WechatError::BadSignature));
        assert_eq!(keys.verify_notification("PUB_KEY_ID_0114", "soon", "n0nce", body, &sig, 1_700_000_000), Err(WechatError::StaleTimestamp));
        assert_eq!(PlatformKeys::default().add("x", b"not a key"), Err(WechatError::BadKey));
        assert_eq!(PlatformKeys::default().add("x", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"), Err(WechatError::BadKey));
    }

    #[test]
    fn request_and_payment_signatures_have_wechat_pay_s_shape() {
        let key = sdk_key();
        let h = authorization("1900000001", &key, "POST", "/v3/pay/transactions/jsapi", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", "{}").unwrap();
        assert!(h.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\""), "{h}");
        assert!(h.ends_with(",timestamp=\"1554208460\",serial_no=\"sdk\""), "{h}");
        let mut keys = PlatformKeys::default();
        keys.add("sdk", SDK_PUBLIC_KEY.as_bytes()).unwrap();
        let sig = h.split("signature=\"").nth(1).unwrap().split('"').next().unwrap();
        keys.verify("sdk", "POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n", sig).unwrap();
        let ps = pay_sign("wx8888888888888888", 1414561699, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "prepay_id=wx201410272009395522657a690389285100", &key).unwrap();
        keys.verify("sdk", "wx8888888888888888\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n", &ps).unwrap();
    }
}
