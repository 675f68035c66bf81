//! Scans (for export): a point in time opened at the first page, each page
//! continued with `search_after` from the last hit's sort values.

use elasticsearch::http::StatusCode;
use elasticsearch::{OpenPointInTimeParts, SearchParts};
use rpcsupport::{Item, ScanCursor, ScanPage, ScanRequest};
use serde_json::{json, Value as Json};

use super::client::reason;
use super::dsl::to_dsl;
use super::mapping::decode_hit;
use super::Inner;
use crate::store::{query, StoreError, MAX_SCAN_ITEMS, SCAN_KEEP_ALIVE, SCAN_PAGE_BYTES};

impl Inner {
    /// One page of a scan; see the module docs.
    pub(super) async fn scan(&self, request: &ScanRequest) -> Result<ScanPage, StoreError> {
        let ast = query::parse(&request.query)?;
        let dsl = to_dsl(&ast)
            .map_err(|e| StoreError::BadQuery(format!("query {:?}: {e}", request.query)))?;
        let keep_alive = format!("{}s", SCAN_KEEP_ALIVE.as_secs());
        let (pit, after) = self.scan_position(request, &keep_alive).await?;
        let first = after.is_none();
        let size = request.size.clamp(1, MAX_SCAN_ITEMS);
        let mut body = json!({
            "query": dsl,
            "size": size,
            "pit": {"id": pit, "keep_alive": keep_alive},
            // `id` is unique, so the order is total (ES adds its own
            // `_shard_doc` tiebreaker to the sort values anyway).
            "sort": [{"id": "asc"}],
            "_source": ["item"],
            "track_total_hits": first,
        });
        if let Some(after) = after {
            body["search_after"] = after;
        }
        let response = self
            .read(|| async {
                self.client
                    .search(SearchParts::None)
                    .body(body.clone())
                    .send()
                    .await
            })
            .await?;
        let status = response.status_code();
        if status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND {
            // 404: the point in time expired (or never was).
            let body: Json = response.json().await.unwrap_or_default();
            return Err(StoreError::BadQuery(format!(
                "scan of {:?}: {} (a scan is kept {keep_alive} between pages)",
                request.query,
                reason(&body)
            )));
        }
        let body = self.ok_json(response).await?;
        // ES may hand out a new id for the same point in time.
        let pit = body["pit_id"].as_str().unwrap_or(&pit).to_owned();
        let (items, last_sort, full) = page_items(&body, size)?;
        let next = match last_sort {
            Some(after) if full => {
                Some(ScanCursor(json!({"pit": pit, "after": after}).to_string()))
            }
            _ => {
                self.close_point_in_time(&pit).await;
                None
            }
        };
        let total = if first {
            Some(body["hits"]["total"]["value"].as_u64().ok_or_else(|| {
                StoreError::Cluster(format!("scan answer without a total: {body}"))
            })?)
        } else {
            None
        };
        Ok(ScanPage { items, next, total })
    }

    /// Where a scan stands: a new point in time for its first page (after
    /// a refresh, so it sees what was just written), else the point in
    /// time and last sort values its cursor carries.
    async fn scan_position(
        &self,
        request: &ScanRequest,
        keep_alive: &str,
    ) -> Result<(String, Option<Json>), StoreError> {
        let bad_cursor = || StoreError::BadQuery("bad scan cursor".into());
        match &request.after {
            None => {
                self.refresh_if_written().await?;
                Ok((self.open_point_in_time(keep_alive).await?, None))
            }
            Some(ScanCursor(text)) => {
                let cursor: Json = serde_json::from_str(text).map_err(|_| bad_cursor())?;
                let pit = cursor["pit"].as_str().ok_or_else(bad_cursor)?.to_owned();
                Ok((pit, Some(cursor["after"].clone())))
            }
        }
    }

    async fn open_point_in_time(&self, keep_alive: &str) -> Result<String, StoreError> {
        let response = self
            .read(|| async {
                self.client
                    .open_point_in_time(OpenPointInTimeParts::Index(&[&self.index]))
                    .keep_alive(keep_alive)
                    .send()
                    .await
            })
            .await?;
        let body = self.ok_json(response).await?;
        body["id"].as_str().map(str::to_owned).ok_or_else(|| {
            StoreError::Cluster(format!("point in time answer without an id: {body}"))
        })
    }

    /// Frees a finished scan's point in time at once; failing that, ES
    /// frees it when its keep-alive runs out, so a failure is only logged.
    async fn close_point_in_time(&self, pit: &str) {
        let sent = self
            .client
            .close_point_in_time()
            .body(json!({"id": pit}))
            .send()
            .await;
        match sent {
            Ok(response) if response.status_code().is_success() => {}
            Ok(response) => {
                tracing::debug!(status = %response.status_code(), "closing a point in time failed")
            }
            Err(e) => tracing::debug!(error = %e, "closing a point in time failed"),
        }
    }
}

/// The items of one answer, up to about [`SCAN_PAGE_BYTES`]; the last
/// one's sort values; and whether more may follow (the page was cut, or
/// came back full).
fn page_items(body: &Json, size: u32) -> Result<(Vec<Item>, Option<Json>, bool), StoreError> {
    let hits = body["hits"]["hits"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut bytes = 0;
    let mut last_sort = None;
    for hit in hits {
        if bytes >= SCAN_PAGE_BYTES {
            break;
        }
        let item = decode_hit(hit)?;
        bytes += item.json_len();
        items.push(item);
        last_sort = Some(hit["sort"].clone());
    }
    let full = items.len() < hits.len() || hits.len() as u64 >= u64::from(size);
    Ok((items, last_sort, full))
}
