//! What a fetch gives: the page ([`Fetched`]) and what its final
//! response's headers say of it ([`PageHeaders`]).

use reqwest::header::{HeaderMap, HeaderName, ETAG, LAST_MODIFIED, LINK};
use reqwest::{StatusCode, Url};
use rpcsupport::{content_hash, FetchHints, PageMeta};
use tokio::sync::OwnedSemaphorePermit;

use super::{MAX_HEADER_VALUES, MAX_VALIDATOR_BYTES};

/// A fetched page.
#[derive(Debug)]
pub struct Fetched {
    /// Where the body came from, after redirects: relative links resolve
    /// against this, not the URL asked for.
    pub url: Url,
    /// The final response's status: a 2xx, or 304 when the request's
    /// validators matched (then `body` is empty).
    pub status: u16,
    /// What the final response's headers say about the page itself.
    pub headers: PageHeaders,
    /// The Content-Type header, if any (for the charset).
    pub content_type: Option<String>,
    /// The body, decompressed, at most `max_body_bytes` (for
    /// [`Content::Text`](crate::parse::Content::Text), at most `max_robots_bytes`; for
    /// [`Content::Sitemap`](crate::parse::Content::Sitemap), `max_sitemap_bytes`).
    pub body: Vec<u8>,
    /// Whether `body` is only the start of a longer text (cut at its last
    /// whole line) or sitemap (cut anywhere); HTML bodies are never cut
    /// here, they are refused.
    pub truncated: bool,
    /// The body's share of `max_buffered_body_bytes`, one permit per byte,
    /// held until this page (or the text decoded from it) is dropped.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Fetched {
    /// What the response alone says of the page: its status, validators
    /// and body hash, and whether it is unchanged since the fetch `hints`
    /// describe. A 304 is unchanged, with the validators it sent (or, when
    /// it omits them, the hinted ones, which still hold). A 200 whose body
    /// hashes as `hints.content_hash` is unchanged too: the bytes are the
    /// same as last time (a different body with the same FNV-1a 64 hash is
    /// a 1 in 2^64 chance), even if the server's validators changed or it
    /// sends none, so the page need not be parsed again.
    pub fn page_meta(&self, hints: &FetchHints) -> PageMeta {
        let etag = self.headers.etag.clone();
        let last_modified = self.headers.last_modified.clone();
        if self.status == StatusCode::NOT_MODIFIED.as_u16() {
            return PageMeta {
                status: self.status,
                unchanged: true,
                etag: etag.or_else(|| hints.etag.clone()),
                last_modified: last_modified.or_else(|| hints.last_modified.clone()),
                ..PageMeta::default()
            };
        }
        // FNV-1a runs at about a byte a cycle: a few ms for the largest
        // page, less than the thread hop that moving it would cost.
        let hash = content_hash(&self.body);
        PageMeta {
            status: self.status,
            unchanged: hints.content_hash == Some(hash),
            etag,
            last_modified,
            content_hash: Some(hash),
            ..PageMeta::default()
        }
    }
}

/// The final response's headers that describe the page, copied out of the
/// response (bounded by [`MAX_VALIDATOR_BYTES`] and [`MAX_HEADER_VALUES`]).
/// After redirects they are the final URL's, as the validators a recrawl
/// sends must be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageHeaders {
    /// `ETag`, as sent.
    pub etag: Option<String>,
    /// `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// The `X-Robots-Tag` values.
    pub robots: Vec<String>,
    /// The `Link` values (for `rel="canonical"`).
    pub links: Vec<String>,
}

impl PageHeaders {
    pub(super) fn from_headers(headers: &HeaderMap) -> PageHeaders {
        let validator = |name: HeaderName| {
            let value = headers.get(name)?.to_str().ok()?.trim();
            (!value.is_empty() && value.len() <= MAX_VALIDATOR_BYTES).then(|| value.to_owned())
        };
        let all = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .take(MAX_HEADER_VALUES)
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect()
        };
        PageHeaders {
            etag: validator(ETAG),
            last_modified: validator(LAST_MODIFIED),
            robots: all("x-robots-tag"),
            links: all(LINK.as_str()),
        }
    }
}
