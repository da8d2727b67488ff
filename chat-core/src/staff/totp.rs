//! One-time codes for staff logins: TOTP (RFC 6238) over HOTP (RFC 4226), HMAC-SHA1, 30-second
//! steps, 6 digits, the step before and after accepted for clock drift. A code's step is
//! remembered by the caller so that one code logs in once.

use hmac::{Hmac, Mac};

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Steps either side of now that are accepted.
pub const DRIFT_STEPS: u64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// The HOTP value of `counter`, as `digits` decimal digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<sha1::Sha1> as hmac::KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[offset] & 0x7f, h[offset + 1], h[offset + 2], h[offset + 3]]);
    bin % 10u32.pow(digits)
}

/// The step of a time (UTC milliseconds).
pub fn step_at(now_ms: i64) -> u64 {
    (now_ms.max(0) as u64 / 1000) / STEP_SECONDS
}

/// The step whose 6-digit code `code` is, within the drift window around `now_ms`; `None` if
/// it is not a current code.
pub fn verify(secret: &[u8], code: &str, now_ms: i64) -> Option<u64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let now = step_at(now_ms);
    let mut found = None;
    // Every candidate is computed (no early exit), so the time taken does not tell which matched.
    for step in now.saturating_sub(DRIFT_STEPS)..=now + DRIFT_STEPS {
        if hotp(secret, step, 6) == want && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The secret back from its base32 form.
pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        } as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The `otpauth://` URI an authenticator app scans (as a QR code) or takes pasted.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect::<String>();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, the SHA-1 rows (8 digits there; the last 6 are the 6-digit codes).
    #[test]
    fn rfc_6238_vectors_with_a_fixed_clock() {
        let secret = b"12345678901234567890";
        for (t, code8) in [(59u64, 94287082u32), (1111111109, 7081804), (1111111111, 14050471), (1234567890, 89005924), (2000000000, 69279037), (20000000000, 65353130)] {
            assert_eq!(hotp(secret, t / STEP_SECONDS, 8), code8, "t = {t}");
            let six = format!("{:06}", code8 % 1_000_000);
            assert_eq!(verify(secret, &six, t as i64 * 1000), Some(t / STEP_SECONDS), "t = {t}");
        }
    }

    #[test]
    fn the_window_is_one_step_either_side() {
        let secret = b"12345678901234567890";
        let t = 1_234_567_890_000i64;
        let code = format!("{:06}", hotp(secret, step_at(t), 6));
        assert!(verify(secret, &code, t + 30_000).is_some(), "a step late");
        assert!(verify(secret, &code, t - 30_000).is_some(), "a step early");
        assert!(verify(secret, &code, t + 61_000).is_none(), "two steps late");
        assert!(verify(b"another secret......", &code, t).is_none());
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert!(verify(secret, bad, t).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trips() {
        for len in 0..25 {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            assert_eq!(decode_base32(&base32(&bytes)).unwrap(), bytes);
        }
        assert!(decode_base32("abc").is_none());
    }

    #[test]
    fn base32_is_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = otpauth_uri("结伴客", "root", b"12345678901234567890");
        assert!(uri.starts_with("otpauth://totp/%E7%BB%93%E4%BC%B4%E5%AE%A2:root?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"), "{uri}");
    }
}
