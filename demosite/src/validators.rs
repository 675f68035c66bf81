//! Validators (issue 13): the `ETag` and `Last-Modified` of every answer
//! when `SiteOptions::open_web` is on, and the `304 Not Modified` rule.
//!
//! - The ETag is strong: a 64-bit FNV-1a hash of the body, quoted.
//! - Last-Modified is [`BASE_DATE`] plus one day per generation, at the
//!   last generation whose body differs from the one before
//!   ([`last_change`]), so it moves forward exactly when the page did.
//! - A sitemap's `<lastmod>` is the same date as a W3C datetime.

use std::fmt::Write;

/// Last-Modified of generation 0: 2024-01-01 00:00:00 GMT, in Unix seconds.
pub const BASE_DATE: u64 = 1_704_067_200;

/// Most generations [`last_change`] looks back; a page unchanged for
/// longer shows the oldest generation it looked at (a bound on the work of
/// one request when a test sets a huge generation).
pub const MAX_LOOKBACK: u64 = 1_000;

const DAY: u64 = 86_400;

/// FNV-1a, 64 bits: stable across runs, builds and machines (std's hasher
/// promises none of that), and fast enough for every answer.
pub fn body_hash(body: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The quoted strong ETag of `body`.
pub fn etag(body: &[u8]) -> String {
    format!("\"{:016x}\"", body_hash(body))
}

/// The generation that last changed a page: walks down from `generation`
/// and stops at the first generation whose body (from `body_at`; `None`
/// when the page did not exist) differs from its predecessor's.
pub fn last_change(generation: u64, mut body_at: impl FnMut(u64) -> Option<Vec<u8>>) -> u64 {
    if generation == 0 {
        return 0;
    }
    let floor = generation.saturating_sub(MAX_LOOKBACK);
    let mut newer = body_at(generation).map(|b| body_hash(&b));
    let mut g = generation;
    while g > floor {
        let older = body_at(g - 1).map(|b| body_hash(&b));
        if older != newer {
            return g;
        }
        newer = older;
        g -= 1;
    }
    floor
}

/// Unix seconds of `generation`'s date.
pub fn date_of(generation: u64) -> u64 {
    BASE_DATE.saturating_add(generation.saturating_mul(DAY))
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date (`days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` as an HTTP date (IMF-fixdate): `Mon, 01 Jan 2024 00:00:00 GMT`.
pub fn http_date(secs: u64) -> String {
    let days = (secs / DAY) as i64;
    let rem = secs % DAY;
    let (y, m, d) = civil(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[m as usize - 1],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `secs` as a W3C datetime, as sitemaps' `<lastmod>` has it:
/// `2024-01-01T00:00:00+00:00`.
pub fn w3c_date(secs: u64) -> String {
    let rem = secs % DAY;
    let (y, m, d) = civil((secs / DAY) as i64);
    let mut s = String::with_capacity(25);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    s
}

/// Unix seconds of an IMF-fixdate (the only form a client should send);
/// `None` for anything else, which then never makes a 304.
pub fn parse_http_date(s: &str) -> Option<u64> {
    // "Mon, 01 Jan 2024 00:00:00 GMT"
    let rest = s.trim().split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let d: u32 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let m = MONTHS.iter().position(|x| *x == month)? as u32 + 1;
    let y: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, min, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u64::try_from(days)
        .ok()?
        .checked_mul(DAY)?
        .checked_add(h * 3600 + min * 60 + sec)
}

/// Whether a request with these headers gets a 304 for an answer with
/// `etag` and Last-Modified `modified` (Unix seconds): `If-None-Match`
/// decides when present (a list, `*`, weak tags compared weakly as RFC 9110
/// says for this header); otherwise `If-Modified-Since` not older than
/// `modified`.
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    modified: u64,
) -> bool {
    if let Some(list) = if_none_match {
        return list
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag);
    }
    if_modified_since
        .and_then(parse_http_date)
        .is_some_and(|since| since >= modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates format and parse back, on the known base date.
    #[test]
    fn dates_round_trip() {
        assert_eq!(http_date(BASE_DATE), "Mon, 01 Jan 2024 00:00:00 GMT");
        assert_eq!(w3c_date(date_of(2)), "2024-01-03T00:00:00+00:00");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        for g in [0, 1, 59, 60, 400, 5000] {
            let t = date_of(g) + 3_723;
            assert_eq!(parse_http_date(&http_date(t)), Some(t), "{g}");
        }
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Mon, 01 Jan 2024 00:00:00 CET"), None);
    }

    /// The walk finds the last generation whose body changed.
    #[test]
    fn last_change_finds_the_last_edit() {
        let body = |changes: &'static [u64]| {
            move |g: u64| {
                Some(
                    changes
                        .iter()
                        .filter(|&&c| c <= g)
                        .count()
                        .to_le_bytes()
                        .to_vec(),
                )
            }
        };
        assert_eq!(last_change(0, body(&[])), 0);
        assert_eq!(last_change(9, body(&[])), 0);
        assert_eq!(last_change(9, body(&[3, 5])), 5);
        assert_eq!(last_change(5, body(&[3, 5])), 5);
        assert_eq!(last_change(4, body(&[3, 5])), 3);
        assert_eq!(last_change(4, |g| (g >= 2).then(Vec::new)), 2);
    }

    /// ETags match exactly (or weakly, or `*`); dates only without one.
    #[test]
    fn conditional_rules() {
        let tag = etag(b"x");
        let lm = date_of(3);
        assert!(not_modified(Some(&tag), None, &tag, lm));
        assert!(not_modified(
            Some(&format!("\"a\", W/{tag}")),
            None,
            &tag,
            lm
        ));
        assert!(not_modified(Some("*"), None, &tag, lm));
        assert!(!not_modified(
            Some("\"other\""),
            Some(&http_date(lm)),
            &tag,
            lm
        ));
        assert!(not_modified(None, Some(&http_date(lm)), &tag, lm));
        assert!(not_modified(None, Some(&http_date(lm + 5)), &tag, lm));
        assert!(!not_modified(None, Some(&http_date(lm - 1)), &tag, lm));
        assert!(!not_modified(None, None, &tag, lm));
    }
}
