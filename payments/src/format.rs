//! WeChat Pay's conventions for what is not cryptography: times are RFC 3339 in Beijing time
//! (`2018-06-08T10:34:56+08:00`), nonces are random ASCII.

/// Unix seconds as WeChat Pay writes a time.
pub(crate) fn beijing_rfc3339(unix_secs: i64) -> String {
    let local = unix_secs.saturating_add(8 * 3600);
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+08:00", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The current Unix time in seconds.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `2 * bytes` random upper-case hex characters (WeChat Pay's nonces are at most 32 ASCII).
pub(crate) fn nonce(bytes: usize) -> Result<String, getrandom::Error> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02X}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_beijing_time() {
        assert_eq!(beijing_rfc3339(0), "1970-01-01T08:00:00+08:00");
        // 2023-11-14T22:13:20Z, past midnight in Beijing.
        assert_eq!(beijing_rfc3339(1_700_000_000), "2023-11-15T06:13:20+08:00");
        // A leap day, and the last second of a year.
        assert_eq!(beijing_rfc3339(1_709_164_800), "2024-02-29T08:00:00+08:00");
        assert_eq!(beijing_rfc3339(1_735_660_799), "2024-12-31T23:59:59+08:00");
        assert_eq!(beijing_rfc3339(-8 * 3600 - 1), "1969-12-31T23:59:59+08:00");
    }

    #[test]
    fn nonces_are_random_hex() {
        let (a, b) = (nonce(16).unwrap(), nonce(16).unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()), "{a}");
        assert_ne!(a, b);
    }
}
