//! `<lastmod>`: W3C datetimes as Unix seconds, with no date library.

/// A W3C datetime (the sitemaps protocol's `<lastmod>`) as seconds since
/// the Unix epoch: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or
/// `YYYY-MM-DDThh:mm[:ss[.s+]]` with `Z` or `±hh:mm` (missing, read as
/// UTC, as many sitemaps write it). `None` for anything else.
pub fn w3c_datetime(text: &str) -> Option<i64> {
    let s = text.trim().as_bytes();
    let num = |b: &[u8]| -> Option<i64> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    };
    let year = num(s.get(..4)?)?;
    let (mut month, mut day) = (1, 1);
    let mut rest = &s[4..];
    if !rest.is_empty() {
        if rest[0] != b'-' {
            return None;
        }
        month = num(rest.get(1..3)?)?;
        rest = &rest[3..];
        if !rest.is_empty() {
            if rest[0] != b'-' {
                return None;
            }
            day = num(rest.get(1..3)?)?;
            rest = &rest[3..];
        }
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if rest.is_empty() {
        return Some(seconds);
    }
    // A time needs a full date.
    if s.len() < 10 || !matches!(rest[0], b'T' | b't') {
        return None;
    }
    let hour = num(rest.get(1..3)?)?;
    if rest.get(3) != Some(&b':') {
        return None;
    }
    let minute = num(rest.get(4..6)?)?;
    rest = &rest[6..];
    let mut second = 0;
    if rest.first() == Some(&b':') {
        second = num(rest.get(1..3)?)?;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            rest = &rest[1 + digits..];
        }
    }
    // 60 is a leap second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    seconds += hour * 3600 + minute * 60 + second;
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    Some(seconds - offset)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
