//! Character references, decoded exactly as html5ever's tokenizer decodes
//! them (its `char_ref` module, with the entity table it uses), since the
//! tree path's attribute values come out of that tokenizer:
//! - named (`&amp;`, `&not`, `&notin;`): the longest name in the table that
//!   the text starts with, found by extending the name while it is still a
//!   prefix of some entry. The legacy names that may omit their `;` (`&amp`,
//!   `&lt`, `&copy`...) are entries without it. In an attribute value such a
//!   name followed by `=` or an ASCII letter or digit stays as written
//!   (`?a=1&copy=2`), "for historical reasons";
//! - numeric (`&#47;`, `&#x2F;`), the `;` optional: zero, surrogates and
//!   values past U+10FFFF become U+FFFD, 0x80-0x9F the windows-1252
//!   character the table gives;
//! - anything else (`& `, `&#;`, `&unknown;`) is a literal `&`.

use html5ever::data::{C1_REPLACEMENTS, NAMED_ENTITIES};

/// One decoded reference: up to two characters, and where the text after
/// it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decoded {
    pub(super) chars: [char; 2],
    pub(super) len: usize,
    pub(super) end: usize,
}

impl Decoded {
    pub(super) fn chars(&self) -> &[char] {
        &self.chars[..self.len]
    }
}

/// The reference whose `&` is just before `b[at]`, or `None` when that `&`
/// is literal text. `b` ends where the reader's text does, or at the quote
/// or delimiter that ends an attribute value (never part of a reference:
/// the result is the same as if the text went on); `in_attribute` picks the
/// attribute rule for legacy names.
pub(super) fn decode(b: &[u8], at: usize, in_attribute: bool) -> Option<Decoded> {
    let first = *b.get(at)?;
    if first == b'#' {
        return numeric(b, at + 1);
    }
    if !first.is_ascii_alphanumeric() {
        return None;
    }
    // By far the most common, and final: no entry goes on past a `;`.
    if b[at..].starts_with(b"amp;") {
        return Some(one('&', at + 4));
    }
    // The longest full entry, extending the name while it is a prefix of
    // one (the table holds every prefix, with a zero code point). Entries
    // are ASCII, so a byte that is not ends the name.
    let mut best = None;
    let mut end = at;
    while let Some(&c) = b.get(end) {
        if !c.is_ascii() {
            break;
        }
        end += 1;
        // ASCII bytes only, so this is a char boundary and valid UTF-8.
        let name = std::str::from_utf8(&b[at..end]).unwrap_or_default();
        match NAMED_ENTITIES.get(name) {
            None => break,
            Some(&(c1, c2)) if c1 != 0 => best = Some((c1, c2, end)),
            Some(_) => {}
        }
    }
    let (c1, c2, end) = best?;
    if in_attribute
        && b[end - 1] != b';'
        && b.get(end)
            .is_some_and(|&n| n == b'=' || n.is_ascii_alphanumeric())
    {
        return None;
    }
    let c1 = char::from_u32(c1).unwrap_or('\u{FFFD}');
    Some(match char::from_u32(c2).filter(|_| c2 != 0) {
        Some(c2) => Decoded {
            chars: [c1, c2],
            len: 2,
            end,
        },
        None => one(c1, end),
    })
}

fn one(c: char, end: usize) -> Decoded {
    Decoded {
        chars: [c, '\0'],
        len: 1,
        end,
    }
}

/// A numeric reference's digits from `b[at]` (just past the `#`).
fn numeric(b: &[u8], mut at: usize) -> Option<Decoded> {
    let base = match b.get(at) {
        Some(b'x' | b'X') => {
            at += 1;
            16
        }
        _ => 10,
    };
    let (mut num, mut too_big, mut digits) = (0u32, false, 0usize);
    while let Some(d) = b.get(at).and_then(|&c| char::from(c).to_digit(base)) {
        // As html5ever counts: once past U+10FFFF the value is only
        // replaced, however it wraps.
        num = num.wrapping_mul(base);
        if num > 0x10FFFF {
            too_big = true;
        }
        num = num.wrapping_add(d);
        digits += 1;
        at += 1;
    }
    if digits == 0 {
        return None;
    }
    if b.get(at) == Some(&b';') {
        at += 1;
    }
    let c = match num {
        n if n > 0x10FFFF || too_big => '\u{FFFD}',
        0 | 0xD800..=0xDFFF => '\u{FFFD}',
        0x80..=0x9F => C1_REPLACEMENTS[(num - 0x80) as usize]
            .unwrap_or_else(|| char::from_u32(num).unwrap_or('\u{FFFD}')),
        n => char::from_u32(n).unwrap_or('\u{FFFD}'),
    };
    Some(one(c, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(s: &str) -> Option<(String, usize)> {
        decode(s.as_bytes(), 1, true).map(|d| (d.chars().iter().collect(), d.end))
    }

    fn text(s: &str) -> Option<(String, usize)> {
        decode(s.as_bytes(), 1, false).map(|d| (d.chars().iter().collect(), d.end))
    }

    /// Named references: the longest entry, legacy names without `;`, the
    /// attribute rule for them, two-character entries, unknown names.
    #[test]
    fn named() {
        assert_eq!(attr("&amp;x"), Some(("&".into(), 5)));
        assert_eq!(attr("&amp"), Some(("&".into(), 4)));
        assert_eq!(attr("&ampx"), None);
        assert_eq!(text("&ampx"), Some(("&".into(), 4)));
        assert_eq!(attr("&amp="), None);
        assert_eq!(attr("&amp-"), Some(("&".into(), 4)));
        assert_eq!(attr("&notin;"), Some(("∉".into(), 7)));
        assert_eq!(text("&notit;"), Some(("¬".into(), 4)));
        assert_eq!(attr("&notit;"), None);
        assert_eq!(attr("&NotEqualTilde;"), Some(("≂\u{338}".into(), 15)));
        assert_eq!(attr("&bogus;"), None);
        assert_eq!(attr("&;"), None);
        assert_eq!(attr("& "), None);
        assert_eq!(attr("&"), None);
        assert_eq!(attr("&lté"), Some(("<".into(), 3)));
    }

    /// Numeric references: decimal, hex, no `;`, no digits, and the
    /// replaced values.
    #[test]
    fn numeric_values() {
        assert_eq!(attr("&#47;"), Some(("/".into(), 5)));
        assert_eq!(attr("&#x2F"), Some(("/".into(), 5)));
        assert_eq!(attr("&#X2f;x"), Some(("/".into(), 6)));
        assert_eq!(attr("&#;"), None);
        assert_eq!(attr("&#x;"), None);
        assert_eq!(attr("&#0;"), Some(("\u{FFFD}".into(), 4)));
        assert_eq!(attr("&#xD800;"), Some(("\u{FFFD}".into(), 8)));
        assert_eq!(attr("&#x110000;"), Some(("\u{FFFD}".into(), 10)));
        assert_eq!(
            attr("&#99999999999999999999;"),
            Some(("\u{FFFD}".into(), 23))
        );
        assert_eq!(attr("&#x80;"), Some(("€".into(), 6)));
        assert_eq!(attr("&#x81;"), Some(("\u{81}".into(), 6)));
        assert_eq!(attr("&#13;"), Some(("\r".into(), 5)));
    }
}
