//! `itemsaver export`: every item matching a query, read out of a running
//! itemsaver page by page ([`rpcsupport::ItemSaver::scan`]) and written as
//! JSON lines or CSV.
//!
//! Memory stays flat on both sides: the itemsaver holds one page
//! ([`crate::store::MAX_SCAN_ITEMS`], [`crate::store::SCAN_PAGE_BYTES`]),
//! and so does this side, which writes each page out before it asks for
//! the next. A file is written as `FILE.partial` and renamed to `FILE`
//! only once whole, so a `FILE` is always complete; an interrupted export
//! leaves only the `.partial`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rpcsupport::{Item, ItemSaverClient, SaveError, ScanPage, ScanRequest, Value};
use tarpc::context;
use thiserror::Error;

/// Items asked for per page unless `--page_size` says otherwise. Default
/// 1000: big enough that round trips cost little, small enough that a page
/// of typical items is a few hundred KiB.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;

/// Most CSV columns the first pass collects from the payload keys it
/// sees; past it the export fails, asking for `--fields`. Bounds the
/// client's memory when payloads carry ever-new keys. Default 10 000.
pub const MAX_CSV_COLUMNS: usize = 10_000;

/// The columns every CSV export starts with, before the payload's.
pub const CSV_FIXED_COLUMNS: [&str; 3] = ["url", "kind", "id"];

/// How items are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, as `Item::to_json` (the default).
    Jsonl,
    /// A header, then one row per item: `url`, `kind`, `id`, then one
    /// column per payload key; nested values as JSON text.
    Csv,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The search language of `itemsaver search`; empty exports everything.
    pub query: String,
    /// JSON lines or CSV.
    pub format: Format,
    /// CSV payload columns, in this order; `None` makes a first pass over
    /// the query to collect every payload key (sorted).
    pub fields: Option<Vec<String>>,
    /// Items per page asked of the itemsaver (it may send fewer).
    pub page_size: u32,
}

/// Where an export is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// `"keys"` during the CSV first pass, `"items"` while writing.
    pub pass: &'static str,
    /// Items read so far in this pass.
    pub done: u64,
    /// Items the query matched when the pass began.
    pub total: Option<u64>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Items written.
    pub items: u64,
    /// CSV only: payload values left out because their key had no column
    /// (a key not in `--fields`, or first seen after the first pass).
    pub values_without_column: u64,
}

/// Why an export failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The itemsaver could not be reached or did not answer in time.
    #[error("scan request failed: {0}")]
    Rpc(#[from] tarpc::client::RpcError),
    /// The itemsaver refused the scan (a bad query, an expired cursor).
    #[error("itemsaver: {0}")]
    Store(#[from] SaveError),
    /// The output could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file (or `-` for stdout).
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The first pass found more payload keys than [`MAX_CSV_COLUMNS`].
    #[error("more than {MAX_CSV_COLUMNS} payload keys; name the CSV columns with --fields")]
    TooManyColumns,
}

/// Where `export_to_file` writes until the export is whole.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Exports into `path`: written as [`partial_path`], flushed to disk, then
/// renamed to `path`. On failure `path` is untouched (an older file there
/// stays as it was) and the `.partial` is left for inspection.
pub async fn export_to_file(
    client: &ItemSaverClient,
    options: &ExportOptions,
    path: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, ExportError> {
    let partial = partial_path(path);
    let io_error = |source| ExportError::Io {
        path: partial.display().to_string(),
        source,
    };
    let file = File::create(&partial).map_err(io_error)?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let summary = export(client, options, &mut out, progress).await?;
    let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.sync_all().map_err(io_error)?;
    std::fs::rename(&partial, path).map_err(|source| ExportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(summary)
}

/// Exports into `out`, reporting after each page to `progress`.
pub async fn export(
    client: &ItemSaverClient,
    options: &ExportOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, ExportError> {
    let io_error = |source| ExportError::Io {
        path: "output".into(),
        source,
    };
    let mut summary = Summary::default();
    match options.format {
        Format::Jsonl => {
            scan_all(client, options, "items", progress, |item| {
                let mut line = item.json_text_with_id(Some(&item.key()));
                line.push('\n');
                out.write_all(line.as_bytes()).map_err(io_error)?;
                summary.items += 1;
                Ok(())
            })
            .await?;
        }
        Format::Csv => {
            let fields = match &options.fields {
                Some(fields) => fields.clone(),
                None => payload_keys(client, options, progress).await?,
            };
            let mut row = String::new();
            let header = CSV_FIXED_COLUMNS
                .iter()
                .copied()
                .chain(fields.iter().map(String::as_str));
            csv_row(&mut row, header);
            out.write_all(row.as_bytes()).map_err(io_error)?;
            scan_all(client, options, "items", progress, |item| {
                let key = item.key();
                let values: Vec<String> = fields
                    .iter()
                    .map(|field| item.payload.get(field).map(csv_value).unwrap_or_default())
                    .collect();
                summary.values_without_column +=
                    item.payload.keys().filter(|k| !fields.contains(k)).count() as u64;
                row.clear();
                let cells = [item.url.as_str(), item.kind.as_str(), key.as_str()]
                    .into_iter()
                    .chain(values.iter().map(String::as_str));
                csv_row(&mut row, cells);
                out.write_all(row.as_bytes()).map_err(io_error)?;
                summary.items += 1;
                Ok(())
            })
            .await?;
        }
    }
    out.flush().map_err(io_error)?;
    Ok(summary)
}

/// The CSV first pass: every payload key of the matching items, sorted.
async fn payload_keys(
    client: &ItemSaverClient,
    options: &ExportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<String>, ExportError> {
    let mut keys = BTreeSet::new();
    scan_all(client, options, "keys", progress, |item| {
        for key in item.payload.keys() {
            if !keys.contains(key) {
                if keys.len() >= MAX_CSV_COLUMNS {
                    return Err(ExportError::TooManyColumns);
                }
                keys.insert(key.clone());
            }
        }
        Ok(())
    })
    .await?;
    Ok(keys.into_iter().collect())
}

/// Reads every page of a scan of `options.query`, handing each item to
/// `each`, one page in memory at a time.
async fn scan_all(
    client: &ItemSaverClient,
    options: &ExportOptions,
    pass: &'static str,
    progress: &mut dyn FnMut(Progress),
    mut each: impl FnMut(&Item) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut request = ScanRequest {
        query: options.query.clone(),
        after: None,
        size: options.page_size.max(1),
    };
    let mut status = Progress {
        pass,
        done: 0,
        total: None,
    };
    loop {
        let page: ScanPage = client.scan(context::current(), request.clone()).await??;
        if page.total.is_some() {
            status.total = page.total;
        }
        for item in &page.items {
            each(item)?;
        }
        status.done += page.items.len() as u64;
        progress(status);
        match page.next {
            Some(next) => request.after = Some(next),
            None => return Ok(()),
        }
    }
}

/// A payload value as a CSV cell: text as it is, numbers and booleans as
/// JSON writes them, null as an empty cell, lists and maps as JSON text.
pub fn csv_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Str(s) => s.clone(),
        other => other.to_json().to_string(),
    }
}

/// Appends one CSV record (RFC 4180: fields with a comma, quote, CR or LF
/// are quoted, quotes doubled; lines end in CRLF) to `out`.
pub fn csv_row<'a>(out: &mut String, cells: impl IntoIterator<Item = &'a str>) {
    for (n, cell) in cells.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        if cell.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells with separators, quotes or line breaks are quoted, quotes doubled.
    #[test]
    fn csv_quoting() {
        let mut row = String::new();
        csv_row(&mut row, ["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(row, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    /// Nested values become JSON text, null an empty cell, text stays as is.
    #[test]
    fn csv_values() {
        assert_eq!(csv_value(&Value::Null), "");
        assert_eq!(csv_value(&Value::Int(31)), "31");
        assert_eq!(csv_value(&Value::Str("x \"y\"".into())), "x \"y\"");
        let list = Value::List(vec![Value::Int(1), Value::Str("a".into())]);
        assert_eq!(csv_value(&list), "[1,\"a\"]");
    }

    /// The partial file sits next to the target, named by appending `.partial`.
    #[test]
    fn partial_name() {
        assert_eq!(
            partial_path(Path::new("out/items.csv")),
            PathBuf::from("out/items.csv.partial")
        );
    }
}
