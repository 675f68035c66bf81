//! Scans for export: the open scans and their limit, the cursor format,
//! and the page reader (see the parent module's docs).

use std::collections::HashMap;

use rpcsupport::{Item, ScanCursor, ScanPage, ScanRequest};
use tantivy::query::{EnableScoring, Weight};
use tantivy::{DocAddress, DocId, DocSet, Searcher, TERMINATED};

use super::{lock, run_error, Inner};
use crate::store::{StoreError, MAX_SCAN_ITEMS, SCAN_KEEP_ALIVE, SCAN_PAGE_BYTES};

/// Most scans open at once. Each holds a searcher, which keeps the files
/// of the segments it reads on disk (merged-away ones included) until the
/// scan ends or its [`SCAN_KEEP_ALIVE`] runs out; a new scan beyond this is
/// refused. Default 64.
pub(super) const MAX_OPEN_SCANS: usize = 64;

/// The scans between two pages, by id. A scan is taken out while a page
/// of it is read, so two requests never read one scan at once.
#[derive(Default)]
pub(super) struct Scans {
    last_id: u64,
    pub(super) open: HashMap<u64, (OpenScan, tokio::time::Instant)>,
}

/// A scan's snapshot: the searcher of its first page and its query,
/// compiled once against it.
pub(super) struct OpenScan {
    searcher: Searcher,
    weight: Box<dyn Weight>,
    /// The query text, so a cursor is not used with another query.
    query: String,
}

impl Scans {
    pub(super) fn expire(&mut self, now: tokio::time::Instant) {
        self.open.retain(|_, (_, expires)| *expires > now);
    }

    /// An id for a new scan, if there is room for one.
    fn admit(&mut self, now: tokio::time::Instant) -> Result<u64, StoreError> {
        self.expire(now);
        if self.open.len() >= MAX_OPEN_SCANS {
            return Err(StoreError::Rejected(format!(
                "{MAX_OPEN_SCANS} scans are open already; try again when one ends"
            )));
        }
        self.last_id += 1;
        Ok(self.last_id)
    }
}

/// A cursor: `scan id:segment:document`, the next document to look at.
fn cursor(id: u64, segment: usize, doc: DocId) -> ScanCursor {
    ScanCursor(format!("{id}:{segment}:{doc}"))
}

fn parse_cursor(cursor: &ScanCursor) -> Option<(u64, usize, DocId)> {
    let mut parts = cursor.0.splitn(3, ':');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

impl Inner {
    /// One page of a scan; see the module docs.
    pub(super) fn scan(&self, request: &ScanRequest) -> Result<ScanPage, StoreError> {
        let now = tokio::time::Instant::now();
        let (id, scan, segment, doc, total) = match &request.after {
            None => {
                let query = self.parse_query(&request.query)?;
                let searcher = self.reader.searcher();
                let weight = query
                    .weight(EnableScoring::disabled_from_searcher(&searcher))
                    .map_err(run_error)?;
                let mut total = 0u64;
                for segment in searcher.segment_readers() {
                    total += u64::from(weight.count(segment)?);
                }
                let id = lock(&self.scans).admit(now)?;
                let scan = OpenScan {
                    searcher,
                    weight,
                    query: request.query.clone(),
                };
                (id, scan, 0, 0, Some(total))
            }
            Some(after) => {
                let (id, segment, doc) = parse_cursor(after).ok_or_else(|| {
                    StoreError::BadQuery(format!("bad scan cursor {:?}", after.0))
                })?;
                let mut scans = lock(&self.scans);
                scans.expire(now);
                let (scan, _) = scans.open.remove(&id).ok_or_else(|| {
                    StoreError::BadQuery(format!(
                        "scan {id} is over or expired (a scan is kept {}s between pages); \
                         start again",
                        SCAN_KEEP_ALIVE.as_secs()
                    ))
                })?;
                (id, scan, segment, doc, None)
            }
        };
        if scan.query != request.query {
            return Err(StoreError::BadQuery(
                "scan cursor belongs to another query".into(),
            ));
        }
        let size = request.size.clamp(1, MAX_SCAN_ITEMS) as usize;
        let page = self.scan_page(&scan, segment, doc, size);
        // Kept on failure too, so the client may retry the same cursor.
        let keep = match &page {
            Ok((_, next)) => next.is_some(),
            Err(_) => true,
        };
        if keep {
            lock(&self.scans)
                .open
                .insert(id, (scan, tokio::time::Instant::now() + SCAN_KEEP_ALIVE));
        }
        let (items, next) = page?;
        Ok(ScanPage {
            items,
            next: next.map(|(segment, doc)| cursor(id, segment, doc)),
            total,
        })
    }

    /// The live hits of `scan` from document `doc` of segment `segment` on,
    /// at most `size` of them and about [`SCAN_PAGE_BYTES`], and where the
    /// next page starts (`None`: no hit is left).
    #[allow(clippy::type_complexity)]
    fn scan_page(
        &self,
        scan: &OpenScan,
        segment: usize,
        doc: DocId,
        size: usize,
    ) -> Result<(Vec<Item>, Option<(usize, DocId)>), StoreError> {
        let mut items = Vec::new();
        let mut bytes = 0;
        for (ord, reader) in scan.searcher.segment_readers().iter().enumerate() {
            if ord < segment {
                continue;
            }
            let start = if ord == segment { doc } else { 0 };
            let mut scorer = scan.weight.scorer(reader, 1.0)?;
            let mut at = scorer.doc();
            if at < start {
                at = scorer.seek(start);
            }
            let alive = reader.alive_bitset();
            while at != TERMINATED {
                if alive.is_none_or(|alive| alive.is_alive(at)) {
                    if items.len() >= size || bytes >= SCAN_PAGE_BYTES {
                        return Ok((items, Some((ord, at))));
                    }
                    let address = DocAddress::new(ord as u32, at);
                    let item = self.load(&scan.searcher, address)?;
                    bytes += item.json_len();
                    items.push(item);
                }
                at = scorer.advance();
            }
        }
        Ok((items, None))
    }
}
