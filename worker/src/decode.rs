//! Bytes to text. Chinese sites still serve GBK/GB18030, often declared
//! only in a `<meta>` tag, so the charset is looked for in this order:
//!
//! 1. a byte-order mark (it cannot be wrong, so it beats any declaration,
//!    as in browsers);
//! 2. `charset=` in the Content-Type header;
//! 3. `<meta charset=...>` or `<meta http-equiv="Content-Type"
//!    content="...; charset=...">` within the first 1024 bytes;
//! 4. UTF-8.
//!
//! An unknown label is skipped (falls through to the next source). Decoding
//! never fails: invalid bytes become U+FFFD.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// How far into the body a `<meta>` charset is looked for (the HTML
/// standard's prescan limit).
const SNIFF_BYTES: usize = 1024;

/// A decoded page.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The page as text.
    pub text: String,
    /// The encoding actually used.
    pub encoding: &'static Encoding,
    /// Whether some bytes were invalid and replaced with U+FFFD.
    pub had_errors: bool,
}

/// Decodes `body` using the charset sources in the module's order.
pub fn decode(body: &[u8], content_type: Option<&str>) -> Decoded {
    let declared = content_type
        .and_then(charset_from_content_type)
        .or_else(|| sniff_meta(body))
        .unwrap_or(UTF_8);
    // `Encoding::decode` gives a BOM precedence over `declared` and strips it.
    let (text, encoding, had_errors) = declared.decode(body);
    Decoded {
        text: text.into_owned(),
        encoding,
        had_errors,
    }
}

/// Like [`decode`], taking the body: a page that is already valid UTF-8
/// (most are) becomes the text without a copy, so a big page is in memory
/// once, not twice.
pub fn decode_owned(body: Vec<u8>, content_type: Option<&str>) -> Decoded {
    let declared = content_type
        .and_then(charset_from_content_type)
        .or_else(|| sniff_meta(&body))
        .unwrap_or(UTF_8);
    let (text, encoding, had_errors) = declared.decode(&body);
    // Borrowed and as long as the body: the bytes are the text as is (a
    // stripped BOM makes it shorter, and then it is copied).
    let as_is = matches!(&text, std::borrow::Cow::Borrowed(t) if t.len() == body.len());
    let text = if as_is {
        drop(text);
        // Cannot fail (the decoder said these bytes are the text), but if it
        // did, the lossy form is still a text.
        String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    } else {
        text.into_owned()
    };
    Decoded {
        text,
        encoding,
        had_errors,
    }
}

/// The encoding named by the `charset` parameter of a Content-Type value.
pub fn charset_from_content_type(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let label = value.trim().trim_matches(|c| c == '"' || c == '\'');
        Encoding::for_label(label.as_bytes())
    })
}

/// The encoding declared by a `<meta>` tag in the first 1024 bytes.
///
/// A simplified form of the HTML standard's prescan: it finds `<meta`
/// tags and reads their attributes, but does not skip comments or other
/// tags' attribute values. That is enough for real pages, which put the
/// declaration first in `<head>`.
pub fn sniff_meta(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(SNIFF_BYTES)];
    let mut from = 0;
    while let Some(pos) = find_ascii_ci(&head[from..], b"<meta") {
        let start = from + pos + b"<meta".len();
        from = start;
        // `<metadata>` or `<meta>` without attributes are not candidates.
        if !head
            .get(start)
            .is_some_and(|&b| b.is_ascii_whitespace() || b == b'/')
        {
            continue;
        }
        let end = head[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(head.len(), |p| start + p);
        if let Some(encoding) = meta_charset(&head[start..end]) {
            return Some(encoding);
        }
        from = end;
    }
    None
}

/// The charset declared by one `<meta ...>` tag's attributes, if any.
fn meta_charset(attrs: &[u8]) -> Option<&'static Encoding> {
    let mut charset = None;
    let mut content = None;
    let mut http_equiv_content_type = false;
    for (name, value) in Attributes(attrs) {
        if name.eq_ignore_ascii_case(b"charset") {
            charset.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content") {
            content.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"http-equiv") {
            http_equiv_content_type = value.eq_ignore_ascii_case(b"content-type");
        }
    }
    let label = match (charset, content) {
        (Some(label), _) => label,
        (None, Some(content)) if http_equiv_content_type => charset_in_content(content)?,
        _ => return None,
    };
    let encoding = Encoding::for_label(trim_ascii(label))?;
    // The standard's rule: a page whose meta tag we could read as ASCII is
    // not UTF-16, whatever it claims; x-user-defined means windows-1252.
    Some(if encoding == UTF_16BE || encoding == UTF_16LE {
        UTF_8
    } else if encoding.name() == "x-user-defined" {
        WINDOWS_1252
    } else {
        encoding
    })
}

/// The value after `charset=` in a meta `content` attribute.
fn charset_in_content(content: &[u8]) -> Option<&[u8]> {
    let pos = find_ascii_ci(content, b"charset")?;
    let rest = trim_ascii(&content[pos + b"charset".len()..]);
    let rest = trim_ascii(rest.strip_prefix(b"=")?);
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|&b| matches!(b, b';' | b'"' | b'\'') || b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

/// Iterates `name=value` pairs (value quoted, unquoted or absent) in the
/// inside of a start tag.
struct Attributes<'a>(&'a [u8]);

impl<'a> Iterator for Attributes<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.0;
        let start = s
            .iter()
            .position(|&b| !(b.is_ascii_whitespace() || b == b'/'))?;
        let s = &s[start..];
        let name_end = s
            .iter()
            .position(|&b| b == b'=' || b.is_ascii_whitespace() || b == b'/')
            .unwrap_or(s.len());
        let name = &s[..name_end];
        let rest = trim_start(&s[name_end..]);
        let Some(rest) = rest.strip_prefix(b"=") else {
            self.0 = rest;
            return Some((name, b""));
        };
        let rest = trim_start(rest);
        let (value, after) = match rest.first() {
            Some(&q @ (b'"' | b'\'')) => {
                let body = &rest[1..];
                let end = body.iter().position(|&b| b == q).unwrap_or(body.len());
                (&body[..end], body.get(end + 1..).unwrap_or(b""))
            }
            _ => {
                let end = rest
                    .iter()
                    .position(|&b| b.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        self.0 = after;
        Some((name, value))
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

fn find_ascii_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{BIG5, GB18030, GBK, SHIFT_JIS};

    fn page(meta: &str, body: &str) -> String {
        format!(
            "<!DOCTYPE html><html><head>{meta}<title>t</title></head><body>{body}</body></html>"
        )
    }

    /// GBK declared in the header decodes Chinese text.
    #[test]
    fn gbk_from_header() {
        let bytes = GBK.encode(&page("", "北京征婚")).0.into_owned();
        let d = decode(&bytes, Some("text/html; charset=GBK"));
        assert_eq!(d.encoding, GBK);
        assert!(d.text.contains("北京征婚") && !d.had_errors);
    }

    /// GB18030 declared in <meta> decodes characters outside GBK too.
    #[test]
    fn gb18030_from_meta() {
        let text = page("<meta charset=\"gb18030\">", "中文𠀀€");
        let bytes = GB18030.encode(&text).0.into_owned();
        let d = decode(&bytes, Some("text/html"));
        assert_eq!(d.encoding, GB18030);
        assert!(d.text.contains("中文𠀀€"), "{}", d.text);
    }

    /// Big5 via the http-equiv form of <meta>.
    #[test]
    fn big5_from_http_equiv() {
        let text = page(
            "<META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=big5\">",
            "繁體中文",
        );
        let bytes = BIG5.encode(&text).0.into_owned();
        let d = decode(&bytes, None);
        assert_eq!(d.encoding, BIG5);
        assert!(d.text.contains("繁體中文"));
    }

    /// Shift_JIS via its common label and an unquoted attribute.
    #[test]
    fn shift_jis_unquoted_meta() {
        let text = page("<meta charset=shift_jis>", "日本語のページ");
        let bytes = SHIFT_JIS.encode(&text).0.into_owned();
        let d = decode(&bytes, None);
        assert_eq!(d.encoding, SHIFT_JIS);
        assert!(d.text.contains("日本語のページ"));
    }

    /// iso-8859-1 means windows-1252, as in browsers.
    #[test]
    fn latin1_is_windows_1252() {
        let bytes = b"<html><body>caf\xe9 \x80</body></html>";
        let d = decode(bytes, Some("text/html; charset=\"iso-8859-1\""));
        assert_eq!(d.encoding, WINDOWS_1252);
        assert!(d.text.contains("café €"));
    }

    /// The header wins over a conflicting <meta>.
    #[test]
    fn header_beats_meta() {
        let text = page("<meta charset=\"utf-8\">", "北京");
        let bytes = GBK.encode(&text).0.into_owned();
        let d = decode(&bytes, Some("text/html; charset=gbk"));
        assert_eq!(d.encoding, GBK);
        assert!(d.text.contains("北京"));
    }

    /// An unknown label (header or meta) falls through to UTF-8.
    #[test]
    fn unknown_label_is_utf8() {
        let text = page("<meta charset=\"klingon\">", "北京");
        let d = decode(text.as_bytes(), Some("text/html; charset=x-nonsense"));
        assert_eq!(d.encoding, UTF_8);
        assert!(d.text.contains("北京"));
    }

    /// An unknown header label still lets <meta> decide.
    #[test]
    fn unknown_header_label_falls_back_to_meta() {
        let text = page("<meta charset=\"gbk\">", "北京");
        let bytes = GBK.encode(&text).0.into_owned();
        assert_eq!(
            decode(&bytes, Some("text/html; charset=bogus")).encoding,
            GBK
        );
    }

    /// A BOM beats the declared charset; no declaration at all means UTF-8.
    #[test]
    fn bom_and_default() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice("<p>北京</p>".as_bytes());
        let d = decode(&bytes, Some("text/html; charset=gbk"));
        assert_eq!(d.encoding, UTF_8);
        assert_eq!(d.text, "<p>北京</p>");
        assert_eq!(decode("<p>北京</p>".as_bytes(), None).encoding, UTF_8);
    }

    /// A <meta> past the first 1024 bytes is not seen.
    #[test]
    fn meta_after_1024_bytes_is_ignored() {
        let text = format!(
            "<html><head><!-- {} --><meta charset=\"gbk\"></head></html>",
            "x".repeat(1100)
        );
        assert_eq!(sniff_meta(text.as_bytes()), None);
    }

    /// Invalid bytes become U+FFFD rather than an error.
    #[test]
    fn invalid_bytes_are_replaced() {
        let d = decode(b"<p>\xff\xfe\xfd ok</p>", Some("text/html; charset=utf-8"));
        assert!(d.had_errors && d.text.contains('\u{FFFD}') && d.text.contains("ok"));
    }

    /// The owned form gives the same text as the borrowed one, with or
    /// without a copy.
    #[test]
    fn owned_decode_matches() {
        let gbk = GBK.encode(&page("", "北京")).0.into_owned();
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice("<p>北京</p>".as_bytes());
        for (body, ct) in [
            ("<p>北京</p>".as_bytes().to_vec(), None),
            (gbk, Some("text/html; charset=gbk")),
            (bom, None),
            (b"<p>\xff ok</p>".to_vec(), None),
        ] {
            let owned = decode_owned(body.clone(), ct);
            let borrowed = decode(&body, ct);
            assert_eq!(
                (owned.text, owned.encoding, owned.had_errors),
                (borrowed.text, borrowed.encoding, borrowed.had_errors)
            );
        }
    }

    /// <metadata> is not <meta>, and a meta without charset is skipped.
    #[test]
    fn meta_lookalikes() {
        assert_eq!(sniff_meta(b"<metadata charset=gbk>"), None);
        assert_eq!(
            sniff_meta(
                b"<meta name=\"viewport\" content=\"width=device-width\"><meta charset=big5>"
            ),
            Some(BIG5)
        );
        assert_eq!(sniff_meta(b"<meta charset=\"utf-16le\">"), Some(UTF_8));
    }
}
