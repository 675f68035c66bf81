//! The bytes of a tag as the prescan reads them: searches that jump with
//! `memchr`, a tag name kept on the stack, and a start tag's attributes
//! counted and stepped over (quoted values may hold `>`).

pub(super) fn find(b: &[u8], from: usize, needle: u8) -> Option<usize> {
    memchr::memchr(needle, b.get(from..)?).map(|p| from + p)
}

pub(super) fn find_seq(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(b.get(from..)?, needle).map(|p| from + p)
}

/// The position of `</name` (any case) at or after `from`.
pub(super) fn find_end_tag(b: &[u8], from: usize, name: &str) -> Option<usize> {
    let mut i = from;
    while let Some(lt) = find_seq(b, i, b"</") {
        let rest = &b[lt + 2..];
        if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return Some(lt);
        }
        i = lt + 1;
    }
    None
}

/// A tag name as [`read_name`] keeps it: at most 32 bytes.
#[derive(Default)]
pub(super) struct NameBuf {
    bytes: [u8; 32],
    len: usize,
}

impl NameBuf {
    pub(super) fn as_str(&self) -> &str {
        // Only ASCII letters, digits, `-` and `:` are kept.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Reads a tag name at `from` into `name`, lower case; returns where it
/// ends. Names are kept to 32 bytes: none that matters here is longer.
pub(super) fn read_name(b: &[u8], from: usize, name: &mut NameBuf) -> usize {
    // Of the first 32 ASCII bytes, those that may be in a name.
    let mut ascii = 0;
    name.len = 0;
    let mut i = from;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_whitespace() || c == b'/' || c == b'>' {
            break;
        }
        if ascii < 32 && c.is_ascii() {
            ascii += 1;
            if c.is_ascii_alphanumeric() || c == b'-' || c == b':' {
                name.bytes[name.len] = c.to_ascii_lowercase();
                name.len += 1;
            }
        }
        i += 1;
    }
    i
}

/// Reads a start tag's attributes from `from`: returns where the tag ends
/// (after its `>`, or the end of the text), how many attributes it has, and
/// whether it ends in `/>`.
pub(super) fn scan_attributes(b: &[u8], from: usize) -> (usize, usize, bool) {
    let mut i = from;
    let mut attrs = 0;
    let mut last = 0u8;
    while let Some(&c) = b.get(i) {
        match c {
            b'>' => return (i + 1, attrs, last == b'/'),
            c if c.is_ascii_whitespace() || c == b'/' => i += 1,
            _ => {
                // An attribute name, then maybe `= value`.
                attrs += 1;
                while let Some(&c) = b.get(i) {
                    if c.is_ascii_whitespace() || matches!(c, b'/' | b'>' | b'=') {
                        break;
                    }
                    i += 1;
                }
                while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
                    i += 1;
                }
                if b.get(i) == Some(&b'=') {
                    i += 1;
                    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
                        i += 1;
                    }
                    match b.get(i) {
                        Some(&q @ (b'"' | b'\'')) => {
                            i = find(b, i + 1, q).map_or(b.len(), |p| p + 1);
                        }
                        _ => {
                            while let Some(&c) = b.get(i) {
                                if c.is_ascii_whitespace() || c == b'>' {
                                    break;
                                }
                                i += 1;
                            }
                        }
                    }
                }
                last = 0;
                continue;
            }
        }
        last = c;
    }
    (b.len(), attrs, false)
}
