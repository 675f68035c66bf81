//! `worker check-rules` and `worker try-rules`: tools for writing rules
//! files, so a user can develop rules against a real page quickly. They
//! live with the worker because they need what only it has: the HTML
//! parser that compiles selectors, and the fetcher.

use std::fmt::Write as _;
use std::path::Path;

use rpcsupport::{FetchPolicy, Request};
use thiserror::Error;

use crate::fetch::Fetcher;
use crate::parse::{Content, Registry};
use crate::rules::{compile, parse_file, RuleError, RuleSet};

/// Why a tool could not do its job.
#[derive(Debug, Error)]
pub enum ToolError {
    /// The rules file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The rules file has a mistake.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// The page could not be fetched.
    #[error("fetching the page failed: {0}")]
    Fetch(#[from] rpcsupport::FetchError),
    /// The rule failed on the page.
    #[error("the rule failed on the page: {0}")]
    Parse(#[from] rpcsupport::ParseError),
    /// Wrong arguments.
    #[error("{0}")]
    Usage(String),
}

/// Reads, checks and compiles the rules file against this worker's
/// built-in parsers.
fn load(path: &Path) -> Result<RuleSet, ToolError> {
    let text = std::fs::read_to_string(path).map_err(|source| ToolError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let file = parse_file(&text)?;
    Ok(compile(&file, &Registry::standard().names())?)
}

/// Checks and compiles the rules file, CSS selectors included, and
/// describes it: every parser, what it follows and what it extracts.
pub fn check_rules(path: &Path) -> Result<String, ToolError> {
    let set = load(path)?;
    let rules = set.rules();
    Ok(format!(
        "{}: ok, {} parsers (rule set {})\n{}",
        path.display(),
        rules.file().parsers.len(),
        set.id(),
        rules.describe()
    ))
}

/// Runs one rule on one page, fetched from `target` (an http(s) URL) or
/// read from a local HTML file, and describes the links it would follow and
/// the item it would extract. A local file's links resolve against `base`
/// (the URL it was saved from); without it they cannot be followed.
pub async fn try_rules(
    path: &Path,
    target: &str,
    parser: Option<&str>,
    base: Option<&str>,
) -> Result<String, ToolError> {
    let set = load(path)?;
    let name = match parser {
        Some(p) => p.to_owned(),
        None => set.rules().file().start.clone().ok_or_else(|| {
            ToolError::Usage("no --parser given and the rules have no start".into())
        })?,
    };
    if !set.has(&name) {
        return Err(ToolError::Usage(format!(
            "{name:?} is not a parser of {}",
            path.display()
        )));
    }
    let (url, text) = if target.starts_with("http://") || target.starts_with("https://") {
        fetch_page(target).await?
    } else {
        read_page(target, base)?
    };
    let request = Request {
        url: url.to_string(),
        parser: set.spec(&name),
        depth: 0,
        hints: Default::default(),
    };
    let result = set.run(&name, &request, &url, &text)?;
    let mut out = String::new();
    let _ = writeln!(out, "{} with parser {name}:", url);
    let _ = writeln!(out, "links ({}):", result.requests.len());
    if url.scheme() == "file" {
        let _ = writeln!(out, "  (a local file's links resolve only with --base URL)");
    }
    for r in &result.requests {
        let _ = writeln!(out, "  {} -> {}", r.url, r.parser.name);
    }
    match result.items.first() {
        Some(item) => {
            let _ = writeln!(
                out,
                "item:\n{}",
                serde_json::to_string_pretty(&item.to_json()).unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(out, "item: none");
        }
    }
    Ok(out)
}

/// Fetches `target` as a worker would, and decodes it.
async fn fetch_page(target: &str) -> Result<(url::Url, String), ToolError> {
    // The user names this page on the command line: its host is the
    // one internal host this local fetcher may reach (a worker's own
    // setting, not a crawl's, is what allows internal hosts).
    let host = url::Url::parse(target)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
    let fetcher = Fetcher::new(&crate::WorkerConfig {
        allow_internal: host.iter().cloned().collect(),
        ..crate::WorkerConfig::default()
    })
    .map_err(|e| ToolError::Usage(e.to_string()))?;
    let policy = FetchPolicy {
        allowed_domains: host.into_iter().collect(),
        obey_robots_meta: false,
        obey_nofollow: false,
    };
    let fetched = fetcher.fetch(target, &policy, Content::Html).await?;
    let text = crate::decode::decode(&fetched.body, fetched.content_type.as_deref()).text;
    Ok((fetched.url, text))
}

/// Reads a saved page from the file `target`, its links resolving against
/// `base` if given, else against the file's own `file:` URL.
fn read_page(target: &str, base: Option<&str>) -> Result<(url::Url, String), ToolError> {
    let bytes = std::fs::read(target).map_err(|source| ToolError::Read {
        path: target.to_owned(),
        source,
    })?;
    let url = match base {
        Some(b) => {
            url::Url::parse(b).map_err(|e| ToolError::Usage(format!("--base {b:?}: {e}")))?
        }
        None => {
            let abs = std::fs::canonicalize(target).unwrap_or_else(|_| target.into());
            url::Url::from_file_path(&abs)
                .unwrap_or_else(|_| url::Url::parse("file:///page.html").expect("valid"))
        }
    };
    Ok((url, crate::decode::decode(&bytes, None).text))
}
