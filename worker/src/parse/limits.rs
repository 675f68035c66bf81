//! What one page may cost: links, URL length and reply size, enforced while
//! a parser builds its result (a hostile page is a counted outcome, never a
//! reply too big to send, which would cost the whole RPC connection).
//!
//! Parsers do not see the limits: [`Page::links`](super::Page::links) and
//! the rules engine ask the page's [`Budget`] before adding a link, and
//! [`Budget::finish`] makes the final result fit and records what was cut
//! in [`ParseLimits`].

use std::cell::Cell;
use std::collections::BTreeMap;

use rpcsupport::types::ParseLimits;
use rpcsupport::{FetchHints, Item, ParseResult, ParserSpec, Request, Value};

use crate::WorkerConfig;

/// A link's share of the reply, counted before its request is built: the
/// URL plus room for the parser spec (a rule's carries its rule-set id).
/// Generous, so the final [`Budget::finish`] rarely has to drop anything.
const LINK_OVERHEAD_BYTES: usize = 128;

/// The per-page limits, from the `[worker]` settings of the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// `max_links_per_page`.
    pub max_links: usize,
    /// `max_url_bytes`.
    pub max_url_bytes: usize,
    /// `max_result_bytes`.
    pub max_result_bytes: usize,
    /// `max_sitemap_urls`.
    pub max_sitemap_urls: usize,
    /// `max_sitemap_bytes`.
    pub max_sitemap_bytes: u64,
}

impl PageLimits {
    /// The limits `config` sets.
    pub fn from_config(config: &WorkerConfig) -> PageLimits {
        PageLimits {
            max_links: config.max_links_per_page,
            max_url_bytes: config.max_url_bytes,
            max_result_bytes: config.max_result_bytes,
            max_sitemap_urls: config.max_sitemap_urls,
            max_sitemap_bytes: config.max_sitemap_bytes,
        }
    }
}

impl Default for PageLimits {
    /// The `[worker]` defaults.
    fn default() -> Self {
        PageLimits::from_config(&WorkerConfig::default())
    }
}

/// One page's use of its [`PageLimits`], and the counts of what they cut.
/// Also which links the crawl refuses (`rel="nofollow"`, when the policy
/// obeys it), since they are cut at the same place. Lives on the thread
/// parsing the page, hence `Cell`s, not atomics.
#[derive(Debug)]
pub struct Budget {
    limits: PageLimits,
    links: Cell<usize>,
    bytes: Cell<usize>,
    counts: Cell<ParseLimits>,
    /// Skip links marked `rel="nofollow"`.
    obey_nofollow: bool,
    /// Links skipped for it.
    nofollow: Cell<u64>,
    /// The crawler's product token, for `<meta name="{agent}">`.
    agent: String,
}

impl Budget {
    /// A fresh budget for one page, following every link.
    pub fn new(limits: PageLimits) -> Budget {
        Budget {
            limits,
            links: Cell::new(0),
            bytes: Cell::new(0),
            counts: Cell::new(ParseLimits::default()),
            obey_nofollow: false,
            nofollow: Cell::new(0),
            agent: String::new(),
        }
    }

    /// This budget, skipping `rel="nofollow"` links if `obey_nofollow`,
    /// for a crawler whose User-Agent product token is `agent`.
    pub fn obeying(mut self, obey_nofollow: bool, agent: &str) -> Budget {
        self.obey_nofollow = obey_nofollow;
        self.agent = agent.to_owned();
        self
    }

    /// The crawler's product token (see [`Budget::obeying`]); may be empty.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Whether a link with this `rel` attribute is to be skipped: marked
    /// `nofollow` while the crawl obeys it. A skipped link is counted.
    pub fn skip_nofollow(&self, rel: Option<&str>) -> bool {
        let skip = self.obey_nofollow && rel.is_some_and(super::meta::is_nofollow);
        if skip {
            self.nofollow.set(self.nofollow.get() + 1);
        }
        skip
    }

    /// Takes one more request if the reply size allows it (not the link
    /// count: a sitemap lists up to `max_sitemap_urls`, which its parser
    /// enforces); otherwise counts it as dropped.
    pub fn admit_request(&self, request: &Request) -> bool {
        let cost = request_size(request);
        if self.bytes.get() + cost > self.limits.max_result_bytes {
            self.count(|c| c.results_dropped += 1);
            return false;
        }
        self.bytes.set(self.bytes.get() + cost);
        true
    }

    /// The limits in force.
    pub fn limits(&self) -> &PageLimits {
        &self.limits
    }

    /// What was cut so far.
    pub fn counts(&self) -> ParseLimits {
        self.counts.get()
    }

    /// Records a cut.
    pub fn count(&self, f: impl FnOnce(&mut ParseLimits)) {
        let mut counts = self.counts.get();
        f(&mut counts);
        self.counts.set(counts);
    }

    /// Whether a URL of `len` bytes is short enough to keep; a longer one
    /// is counted.
    pub fn url_fits(&self, len: usize) -> bool {
        let fits = len <= self.limits.max_url_bytes;
        if !fits {
            self.count(|c| c.urls_too_long += 1);
        }
        fits
    }

    /// Takes one more link of `url_len` bytes if the page's link count and
    /// reply size allow it; otherwise counts it as truncated or dropped.
    pub fn admit_link(&self, url_len: usize) -> bool {
        if self.links.get() >= self.limits.max_links {
            self.count(|c| c.links_truncated += 1);
            return false;
        }
        let cost = url_len + LINK_OVERHEAD_BYTES;
        if self.bytes.get() + cost > self.limits.max_result_bytes {
            self.count(|c| c.results_dropped += 1);
            return false;
        }
        self.links.set(self.links.get() + 1);
        self.bytes.set(self.bytes.get() + cost);
        true
    }

    /// Whether a value being built for an item is still within the reply
    /// size: `bytes` is its encoded size so far. Lists of elements grow
    /// with the page, so the rules engine stops adding once this is false.
    pub fn value_fits(&self, bytes: usize) -> bool {
        bytes <= self.limits.max_result_bytes
    }

    /// Makes `result` fit `max_result_bytes` as encoded, items first (the
    /// data) then requests, in page order; drops and counts what does not
    /// fit, and attaches the counts.
    pub fn finish(&self, mut result: ParseResult) -> ParseResult {
        // The two Vec lengths and the counts themselves.
        let mut used = 8 + 8 + 5 * 9;
        let mut dropped = 0u64;
        let max = self.limits.max_result_bytes;
        result.items.retain(|item| {
            let size = item_size(item);
            if used + size > max {
                dropped += 1;
                return false;
            }
            used += size;
            true
        });
        result.requests.retain(|request| {
            let size = request_size(request);
            if used + size > max {
                dropped += 1;
                return false;
            }
            used += size;
            true
        });
        if dropped > 0 {
            self.count(|c| c.results_dropped += dropped);
        }
        result.limits = self.counts();
        result.page.nofollow_links = self.nofollow.get();
        result
    }
}

// Encoded sizes, as upper bounds for the bincode format the transport uses,
// which writes integers in a variable-length form: a length (below 4 GiB)
// takes at most 5 bytes and is counted as 8, an enum tag as 4, an Option tag
// as 1, a u32 as 5 and an i64 as 9, so no part is ever undercounted.

fn str_size(s: &str) -> usize {
    8 + s.len()
}

fn spec_size(spec: &ParserSpec) -> usize {
    str_size(&spec.name)
        + 8
        + spec
            .args
            .iter()
            .map(|(k, v)| str_size(k) + str_size(v))
            .sum::<usize>()
}

/// Encoded size of a request (at most).
pub fn request_size(r: &Request) -> usize {
    str_size(&r.url) + spec_size(&r.parser) + 5 + hints_size(&r.hints)
}

/// Each field an Option (1 byte) and its value.
fn hints_size(h: &FetchHints) -> usize {
    5 + h.etag.as_deref().map_or(0, str_size)
        + h.last_modified.as_deref().map_or(0, str_size)
        + h.content_hash.map_or(0, |_| 9)
        + h.lastmod.map_or(0, |_| 9)
        + h.render.map_or(0, |_| 4)
}

/// Encoded size of an item (at most).
pub fn item_size(item: &Item) -> usize {
    str_size(&item.url)
        + str_size(&item.kind)
        + 1
        + item.id.as_deref().map_or(0, str_size)
        + map_size(&item.payload)
}

fn map_size(map: &BTreeMap<String, Value>) -> usize {
    8 + map
        .iter()
        .map(|(k, v)| str_size(k) + value_size(v))
        .sum::<usize>()
}

/// Encoded size of a value (at most). Recursive, as [`Value`] is; the values our
/// parsers build are at most a list of scalars deep.
pub fn value_size(v: &Value) -> usize {
    4 + match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 9,
        Value::Float(_) => 8,
        Value::Str(s) => str_size(s),
        Value::List(l) => 8 + l.iter().map(value_size).sum::<usize>(),
        Value::Map(m) => map_size(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with the transport's own codec.
    fn encoded_len<T: serde::Serialize + for<'de> serde::Deserialize<'de> + Unpin>(
        value: &T,
    ) -> usize {
        use std::pin::Pin;
        use tarpc::tokio_serde::{formats::Bincode, Serializer};
        let mut codec = Bincode::<T, T>::default();
        Pin::new(&mut codec).serialize(value).unwrap().len()
    }

    /// The size estimates are never below the codec's sizes, nor far above
    /// them for URL-sized strings.
    #[test]
    fn sizes_bound_the_codec() {
        let request = Request {
            url: "http://h/a".into(),
            parser: ParserSpec {
                name: "r".into(),
                args: [("ruleset".to_string(), "r0123".to_string())].into(),
            },
            depth: 2,
            hints: Default::default(),
        };
        let (estimate, real) = (request_size(&request), encoded_len(&request));
        assert!(
            estimate >= real && estimate < real + 64,
            "{estimate} {real}"
        );
        let long = Request {
            url: "u".repeat(100_000),
            ..request.clone()
        };
        assert!(request_size(&long) >= encoded_len(&long));
        let item = Item {
            url: "http://h/".into(),
            kind: "k".into(),
            id: Some("7".into()),
            payload: [
                ("a".to_string(), Value::Int(1)),
                ("b".to_string(), Value::List(vec!["x".into(), Value::Null])),
                ("c".to_string(), Value::Bool(true)),
                (
                    "d".to_string(),
                    Value::Map([("e".to_string(), Value::Float(1.5))].into()),
                ),
            ]
            .into(),
        };
        let item = Item {
            payload: [
                ("big".to_string(), Value::Int(i64::MIN)),
                ("f".to_string(), Value::Float(f64::MAX)),
            ]
            .into_iter()
            .chain(item.payload)
            .collect(),
            ..item
        };
        assert!(item_size(&item) >= encoded_len(&item));
        let result = ParseResult {
            requests: vec![request],
            items: vec![item],
            limits: ParseLimits::default(),
            page: Default::default(),
        };
        let budget = Budget::new(PageLimits::default());
        let finished = budget.finish(result.clone());
        assert_eq!(finished, result);
        assert!(
            8 + 8 + 5 * 9 + request_size(&result.requests[0]) + item_size(&result.items[0])
                >= encoded_len(&result)
        );
    }

    /// Links past the count are truncated, past the byte budget dropped;
    /// the final fit keeps items first.
    #[test]
    fn budget_counts_what_it_cuts() {
        let budget = Budget::new(PageLimits {
            max_links: 2,
            max_url_bytes: 10,
            max_result_bytes: 1000,
            ..PageLimits::default()
        });
        assert!(budget.url_fits(10));
        assert!(!budget.url_fits(11));
        assert!(budget.admit_link(10));
        assert!(budget.admit_link(10));
        assert!(!budget.admit_link(10));
        let counts = budget.counts();
        assert_eq!((counts.urls_too_long, counts.links_truncated), (1, 1));

        let small = Budget::new(PageLimits {
            max_links: 100,
            max_url_bytes: 1000,
            max_result_bytes: 300,
            ..PageLimits::default()
        });
        assert!(small.admit_link(100));
        assert!(!small.admit_link(100), "over the byte budget");
        assert_eq!(small.counts().results_dropped, 1);
        let big_item = Item {
            url: "u".into(),
            kind: "k".into(),
            id: None,
            payload: [("t".to_string(), Value::Str("x".repeat(150)))].into(),
        };
        let request = Request {
            url: "x".repeat(100),
            parser: ParserSpec::named("p"),
            depth: 0,
            hints: Default::default(),
        };
        let done = small.finish(ParseResult {
            requests: vec![request.clone(), request],
            items: vec![big_item],
            limits: ParseLimits::default(),
            page: Default::default(),
        });
        assert_eq!((done.items.len(), done.requests.len()), (1, 0));
        assert_eq!(done.limits.results_dropped, 3);
        assert!(encoded_len(&done) <= 300);
    }
}
