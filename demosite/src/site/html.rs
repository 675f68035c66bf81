//! What every page is made of: its encoding, its bytes, and the head and
//! tail of its HTML.

use std::fmt::Write;

/// Extra markup a variant of a profile page carries (`/meta/...`, print).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Extra<'a> {
    /// Inside `<head>`, after the title.
    pub head: &'a str,
    /// At the end of `<body>`.
    pub body: &'a str,
}

/// How a page's bytes are encoded and where that is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEncoding {
    /// UTF-8, declared in the header and in `<meta charset="utf-8">`.
    Utf8,
    /// GBK, declared only in the header (`text/html; charset=gbk`).
    GbkHeader,
    /// GBK, declared only in `<meta charset="gbk">` (header `text/html`).
    GbkMeta,
}

impl PageEncoding {
    /// The Content-Type header value the page is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            PageEncoding::Utf8 => "text/html; charset=utf-8",
            PageEncoding::GbkHeader => "text/html; charset=gbk",
            PageEncoding::GbkMeta => "text/html",
        }
    }

    fn meta(self) -> &'static str {
        match self {
            PageEncoding::Utf8 => "<meta charset=\"utf-8\">\n",
            PageEncoding::GbkHeader => "",
            PageEncoding::GbkMeta => "<meta charset=\"gbk\">\n",
        }
    }
}

/// A rendered page: encoded bytes plus the header that describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The body, already in [`Page::encoding`].
    pub body: Vec<u8>,
    /// How the body is encoded; gives the Content-Type.
    pub encoding: PageEncoding,
}

impl Page {
    pub(super) fn encode(html: String, encoding: PageEncoding) -> Page {
        let body = match encoding {
            PageEncoding::Utf8 => html.into_bytes(),
            // Every character on the site is in GBK (see the tables in
            // `profile`), so nothing is lost to replacement.
            PageEncoding::GbkHeader | PageEncoding::GbkMeta => {
                encoding_rs::GBK.encode(&html).0.into_owned()
            }
        };
        Page { body, encoding }
    }
}

pub(super) fn head(html: &mut String, encoding: PageEncoding, title: &str, base: Option<&str>) {
    head_with(html, encoding, title, base, "");
}

/// The page head with `extra` markup (canonical, robots meta) after the
/// title.
pub(crate) fn head_with(
    html: &mut String,
    encoding: PageEncoding,
    title: &str,
    base: Option<&str>,
    extra: &str,
) {
    // The charset declaration comes first so it is inside the 1024 bytes a
    // browser (and our worker) sniffs.
    html.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n");
    html.push_str(encoding.meta());
    if let Some(base) = base {
        let _ = writeln!(html, "<base href=\"{base}\">");
    }
    let _ = write!(
        html,
        "<title>{title}</title>\n{extra}</head>\n<body>\n<a id=\"top\"></a>\n"
    );
}

pub(crate) fn tail(html: &mut String) {
    html.push_str("</body>\n</html>\n");
}

/// A small UTF-8 page: `title`, `head` markup after the title, `body`.
pub(crate) fn small_page(title: &str, head: &str, body: &str) -> Page {
    let mut html = String::with_capacity(200 + head.len() + body.len());
    head_with(&mut html, PageEncoding::Utf8, title, None, head);
    html.push_str(body);
    tail(&mut html);
    Page::encode(html, PageEncoding::Utf8)
}
