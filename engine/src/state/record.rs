//! What the URL store keeps per URL, and its compact encoding.
//!
//! A value is one status byte followed by the rest of the record in
//! bincode's varint encoding (small numbers take one byte, a missing
//! validator one). The status comes first and on its own so a resume can
//! tell queued URLs from finished ones without decoding the rest.

use bincode::Options as _;
use rpcsupport::{FetchHints, ParserSpec, Request};
use serde::{Deserialize, Serialize};

use crate::scheduler::Task;

/// Where a URL stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlStatus {
    /// Waiting to be fetched, or in flight: both are queued again after a
    /// restart, so the store does not spend a write per dispatch to tell
    /// them apart.
    #[default]
    Queued,
    /// Fetched and parsed (or skipped on purpose: not HTML, redirected
    /// off-site).
    Done,
    /// Failed for good (its error is in the failures file).
    Failed,
    /// The server said 404 or 410: the page is no more, its items are
    /// deleted.
    Gone,
    /// Never fetched: a page crawled under another URL named this one its
    /// canonical URL, and its items are stored under it. Seen on a resume
    /// (so the URL is not fetched as well, as in the crawl that claimed
    /// it), never queued again, not even by a recrawl, which refetches the
    /// page that claimed it.
    Claimed,
}

impl UrlStatus {
    fn byte(self) -> u8 {
        match self {
            UrlStatus::Queued => 0,
            UrlStatus::Done => 1,
            UrlStatus::Failed => 2,
            UrlStatus::Gone => 3,
            UrlStatus::Claimed => 4,
        }
    }

    /// The status a stored value starts with (`None`: not a record).
    pub fn of(value: &[u8]) -> Option<UrlStatus> {
        Some(match value.first()? {
            0 => UrlStatus::Queued,
            1 => UrlStatus::Done,
            2 => UrlStatus::Failed,
            3 => UrlStatus::Gone,
            4 => UrlStatus::Claimed,
            _ => return None,
        })
    }
}

/// What the last fetch of a URL answered, and when to fetch it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetched {
    /// HTTP status of the answer (200; 304 is recorded as the 200 it
    /// confirmed).
    pub http_status: u16,
    /// Its `ETag`, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// Its `Last-Modified`, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// Hash of its body ([`rpcsupport::content_hash`]).
    pub content_hash: Option<u64>,
    /// When, in seconds since the Unix epoch (wall clock: it outlives the
    /// process).
    pub fetched_at: i64,
    /// When it is due again, same clock.
    pub next_fetch: i64,
    /// The recrawl interval that gave `next_fetch`, in seconds; it adapts
    /// (see [`super::recrawl`]).
    pub interval_s: u64,
}

/// One URL's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlRecord {
    /// Kept apart in the encoding (the first byte).
    #[serde(skip)]
    pub status: UrlStatus,
    /// The normalized URL (the one its fingerprint is of).
    pub url: String,
    /// How its page is parsed.
    pub parser: ParserSpec,
    /// Links followed from a seed to reach it.
    pub depth: u32,
    /// Worker calls for it that failed at the transport level.
    pub attempts: u32,
    /// Its sitemap `<lastmod>`, seconds since the Unix epoch.
    pub lastmod: Option<i64>,
    /// The last successful fetch, if any.
    pub fetched: Option<Fetched>,
    /// Keys of the items its page produced last time, so a page that is
    /// gone (or stops producing one) has them deleted.
    pub item_keys: Vec<String>,
}

fn codec() -> impl bincode::Options {
    // Varint integers; a record is bounded by what the crawl put in it
    // (URL length limits, the worker's item limits), so no size limit here.
    bincode::DefaultOptions::new()
}

impl UrlRecord {
    /// A queued URL, from its task.
    pub fn queued(task: &Task) -> UrlRecord {
        UrlRecord {
            status: UrlStatus::Queued,
            url: task.request.url.clone(),
            parser: task.request.parser.clone(),
            depth: task.request.depth,
            attempts: task.attempts,
            lastmod: task.request.hints.lastmod,
            fetched: None,
            item_keys: Vec::new(),
        }
    }

    /// The value stored for it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the value stored for it to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.status.byte());
        // Serializing plain data into a Vec cannot fail.
        codec()
            .serialize_into(out, self)
            .expect("a record serializes");
    }

    /// Reads a stored value back.
    pub fn decode(value: &[u8]) -> Result<UrlRecord, bincode::Error> {
        let status = UrlStatus::of(value)
            .ok_or_else(|| Box::new(bincode::ErrorKind::Custom("unknown URL status".into())))?;
        let mut record: UrlRecord = codec().deserialize(&value[1..])?;
        record.status = status;
        Ok(record)
    }

    /// What a fetch of it sends: the validators of its last fetch and its
    /// sitemap date.
    pub fn hints(&self) -> FetchHints {
        let f = self.fetched.as_ref();
        FetchHints {
            etag: f.and_then(|f| f.etag.clone()),
            last_modified: f.and_then(|f| f.last_modified.clone()),
            content_hash: f.and_then(|f| f.content_hash),
            lastmod: self.lastmod,
            render: None,
        }
    }

    /// The task that fetches it again, under its store `key`.
    pub fn task(&self, key: u64) -> Task {
        Task {
            request: Request {
                url: self.url.clone(),
                parser: self.parser.clone(),
                depth: self.depth,
                hints: self.hints(),
            },
            attempts: self.attempts,
            retries: 0,
            robots: false,
            key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record comes back whole, its status readable from the first byte
    /// alone; a small queued record costs well under 100 bytes.
    #[test]
    fn record_round_trip() {
        let mut r = UrlRecord::queued(&Task::new(Request::new(
            "http://127.0.0.1:8080/profile/123456",
            ParserSpec::named("profile"),
            3,
        )));
        assert_eq!(UrlStatus::of(&r.encode()), Some(UrlStatus::Queued));
        assert!(r.encode().len() < 60, "{} bytes", r.encode().len());
        r.status = UrlStatus::Done;
        r.fetched = Some(Fetched {
            http_status: 200,
            etag: Some("\"abc\"".into()),
            last_modified: None,
            content_hash: Some(u64::MAX),
            fetched_at: 1_700_000_000,
            next_fetch: 1_700_086_400,
            interval_s: 86_400,
        });
        r.item_keys = vec!["123456".into()];
        let bytes = r.encode();
        assert_eq!(UrlStatus::of(&bytes), Some(UrlStatus::Done));
        assert_eq!(UrlRecord::decode(&bytes).unwrap(), r);
        assert_eq!(r.hints().etag.as_deref(), Some("\"abc\""));
        assert!(UrlRecord::decode(&[9, 1, 2]).is_err());
    }
}
