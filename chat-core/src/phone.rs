//! Phone numbers, a kernel value: parsed once into E.164 (mainland China numbers must be
//! mobiles) and masked for display. Users, merchants and orders all take them.

use crate::error::{CoreError, FieldProblem};

/// A phone number in E.164 form (`+` and 8 to 15 digits, no leading zero); a mainland China
/// number (+86) must be a mobile: 11 digits starting 13-19.
pub fn phone(raw: &str) -> Result<String, CoreError> {
    let bad = |p: &str| CoreError::Fields(vec![FieldProblem::new("phone", p)]);
    let digits = raw.strip_prefix('+').ok_or_else(|| bad("must be in E.164 form, e.g. +8613812345678"))?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(bad("must be in E.164 form: + and 8 to 15 digits"));
    }
    if let Some(national) = digits.strip_prefix("86") {
        let b = national.as_bytes();
        if b.len() != 11 || b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(bad("a mainland China number must be a mobile number: 11 digits starting 13-19"));
        }
    }
    Ok(raw.to_owned())
}

/// The masked form answers show: a mainland mobile as `138****5678`; other numbers keep the
/// country part and the last four digits (`+44******5678`).
pub fn mask_phone(e164: &str) -> String {
    let digits = e164.trim_start_matches('+');
    if let Some(national) = digits.strip_prefix("86") {
        if national.len() == 11 {
            return format!("{}****{}", &national[..3], &national[7..]);
        }
    }
    let keep_head = 3.min(digits.len());
    let keep_tail = 4.min(digits.len() - keep_head);
    let hidden = digits.len() - keep_head - keep_tail;
    format!("+{}{}{}", &digits[..keep_head], "*".repeat(hidden), &digits[digits.len() - keep_tail..])
}

