//! Text sitemaps: one URL per line.

use std::io::Read;

use super::input::{Bytes, Capped};
use super::{Entry, EntryKind};

/// A text sitemap: each non-blank line a page URL (lines over
/// `max_url_bytes` are not kept whole). A last line without its newline,
/// when the input was cut, is left out.
pub(super) fn scan_text<R: Read>(
    input: &mut Bytes<Capped<R>>,
    max_url_bytes: usize,
    mut emit: impl FnMut(Entry),
) {
    fn flush(line: &mut Vec<u8>, overflow: &mut bool, emit: &mut impl FnMut(Entry)) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if *overflow || !text.is_empty() {
            emit(Entry {
                kind: EntryKind::Page,
                loc: (!*overflow).then(|| text.to_owned()),
                too_long: *overflow,
                lastmod: None,
            });
        }
        line.clear();
        *overflow = false;
    }
    let mut line = Vec::new();
    let mut overflow = false;
    while let Some(b) = input.next() {
        if b == b'\n' {
            flush(&mut line, &mut overflow, &mut emit);
        } else if line.len() > max_url_bytes {
            overflow = true;
        } else {
            line.push(b);
        }
    }
    if !input.broken && !input.source.cut {
        flush(&mut line, &mut overflow, &mut emit);
    }
}
