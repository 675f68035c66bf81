//! Typed outcomes of a crawl step and of a save.
//!
//! These are the services' own answers and travel inside the RPC's return
//! value; failures of the RPC itself (deadline, disconnect) are tarpc's
//! `RpcError`, a separate layer. Each error has a short [`kind`] used to
//! count outcomes in summaries and metrics.
//!
//! [`kind`]: CrawlError::kind

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a worker could not turn a request into a [`crate::ParseResult`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum CrawlError {
    /// The page could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The page was fetched but the parser failed or does not exist.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The page needed a browser and could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The call named a policy (`PolicyRef::Known`) this connection does
    /// not hold; nothing was fetched. The caller gives the policy again.
    #[error("unknown fetch policy {0} on this connection")]
    UnknownPolicy(u64),
}

impl CrawlError {
    /// A short label for counting, e.g. `http_404`, `timeout`, `unknown_parser`.
    pub fn kind(&self) -> String {
        match self {
            CrawlError::Fetch(e) => e.kind(),
            CrawlError::Parse(e) => e.kind().to_owned(),
            CrawlError::Render(e) => e.kind().to_owned(),
            CrawlError::UnknownPolicy(_) => "unknown_policy".to_owned(),
        }
    }

    /// Whether trying the same request again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            CrawlError::Fetch(e) => e.is_transient(),
            CrawlError::Render(e) => e.is_transient(),
            CrawlError::Parse(_) | CrawlError::UnknownPolicy(_) => false,
        }
    }
}

/// Why a page that needed a browser was not rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum RenderError {
    /// This worker has no browser (it was started without one, or it could
    /// not be launched). The engine sends render requests to workers whose
    /// [`crate::WorkerStatus::can_render`] is true.
    #[error("this worker cannot render pages: {reason}")]
    Unavailable {
        /// Why: no browser found, or what launching it said.
        reason: String,
    },
    /// The page did not settle within the worker's `render_timeout_ms`
    /// (it hangs, loops, or keeps the network busy).
    #[error("{url}: rendering timed out")]
    Timeout {
        /// The URL asked for.
        url: String,
    },
    /// The browser failed on the page (crashed, or refused to load it).
    #[error("{url}: rendering failed: {reason}")]
    Failed {
        /// The URL asked for.
        url: String,
        /// What the browser said.
        reason: String,
    },
}

impl RenderError {
    /// A short label for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            RenderError::Unavailable { .. } => "render_unavailable",
            RenderError::Timeout { .. } => "render_timeout",
            RenderError::Failed { .. } => "render_failed",
        }
    }

    /// Whether rendering the page again (on this or another worker) may
    /// succeed: a crashed browser is restarted; a timeout is not retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, RenderError::Failed { .. })
    }
}

/// Why a page could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum FetchError {
    /// The server answered with a non-success status.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL asked for.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The `Retry-After` header in seconds, when the server sent one.
        retry_after_secs: Option<u64>,
    },
    /// Connecting or reading took longer than the configured timeout.
    #[error("{url}: timed out")]
    Timeout {
        /// The URL asked for.
        url: String,
    },
    /// The connection could not be made or broke off.
    #[error("{url}: connection failed: {reason}")]
    Connect {
        /// The URL asked for.
        url: String,
        /// What the network stack said.
        reason: String,
    },
    /// The body (after decompression) is larger than the configured cap.
    #[error("{url}: body larger than {limit} bytes")]
    TooLarge {
        /// The URL asked for.
        url: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The response is not HTML and the parser did not ask for other types.
    #[error("{url}: not HTML (content type {content_type:?})")]
    NotHtml {
        /// The URL asked for.
        url: String,
        /// The Content-Type header as sent.
        content_type: String,
    },
    /// More redirects than the configured limit (or a loop).
    #[error("{url}: too many redirects")]
    TooManyRedirects {
        /// The URL asked for.
        url: String,
    },
    /// A redirect pointed outside the crawl's allowed domains and was not
    /// followed.
    #[error("{url}: redirect to {target} leaves the allowed domains; not followed")]
    OffsiteRedirect {
        /// The URL asked for.
        url: String,
        /// Where the redirect pointed.
        target: String,
    },
    /// The host is (or resolves to) a loopback, private, link-local or
    /// metadata address that the crawl did not allow explicitly.
    #[error("{url}: {reason}")]
    Blocked {
        /// The URL asked for.
        url: String,
        /// Which host and address, and why.
        reason: String,
    },
    /// The URL cannot be fetched at all (bad syntax, unsupported scheme).
    #[error("{url}: invalid URL: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure while fetching.
    #[error("{url}: {reason}")]
    Other {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl FetchError {
    /// A short label for counting.
    pub fn kind(&self) -> String {
        match self {
            FetchError::Status { status, .. } => format!("http_{status}"),
            FetchError::Timeout { .. } => "timeout".into(),
            FetchError::Connect { .. } => "connect".into(),
            FetchError::TooLarge { .. } => "too_large".into(),
            FetchError::NotHtml { .. } => "not_html".into(),
            FetchError::TooManyRedirects { .. } => "too_many_redirects".into(),
            FetchError::OffsiteRedirect { .. } => "offsite_redirect".into(),
            FetchError::Blocked { .. } => "blocked_address".into(),
            FetchError::InvalidUrl { .. } => "invalid_url".into(),
            FetchError::Other { .. } => "fetch_other".into(),
        }
    }

    /// Whether the same fetch may succeed later: timeouts, connection
    /// failures, 429 and the 5xx statuses that mean "try again".
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            FetchError::Timeout { .. } | FetchError::Connect { .. } => true,
            _ => false,
        }
    }
}

/// Why a fetched page could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum ParseError {
    /// No parser of this name is registered on the worker.
    #[error("unknown parser {0:?}")]
    UnknownParser(String),
    /// The parser exists but its arguments are wrong.
    #[error("parser {parser:?}: bad arguments: {reason}")]
    BadArgs {
        /// The parser's name.
        parser: String,
        /// What is wrong with the arguments.
        reason: String,
    },
    /// A rule parser names a rule set this worker does not hold (it was
    /// restarted since the engine sent it); the engine sends it again.
    #[error("unknown rule set {0:?}")]
    UnknownRuleset(String),
    /// A rules file that does not compile.
    #[error("bad rules: {0}")]
    BadRules(String),
    /// The page does not have the shape the parser expects.
    #[error("parser {parser:?} on {url}: {reason}")]
    Page {
        /// The parser's name.
        parser: String,
        /// The page's URL.
        url: String,
        /// What was missing or malformed.
        reason: String,
    },
}

impl ParseError {
    /// A short label for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::UnknownParser(_) => "unknown_parser",
            ParseError::BadArgs { .. } => "bad_parser_args",
            ParseError::UnknownRuleset(_) => "unknown_ruleset",
            ParseError::BadRules(_) => "bad_rules",
            ParseError::Page { .. } => "parse_page",
        }
    }
}

/// Why the itemsaver did not store a batch. Nothing of the batch is
/// acknowledged: the engine sends it again (`Store`), in smaller batches
/// (`BatchTooLarge`), or records its items as failed (`Rejected`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum SaveError {
    /// The store failed (disk, index, cluster); retrying later may succeed.
    #[error("store failed: {0}")]
    Store(String),
    /// The batch holds more items than the itemsaver (or its store) takes
    /// at once; nothing of it is stored. Send it again in batches of at
    /// most `max_items`.
    #[error("batch too large: at most {max_items} items per batch")]
    BatchTooLarge {
        /// The most items to send in one batch.
        max_items: u32,
    },
    /// The batch is refused for good; sending it again will fail again.
    /// (Single bad items are refused by name in a [`crate::SaveAck`]
    /// instead, and the rest of their batch is stored.)
    #[error("batch rejected: {0}")]
    Rejected(String),
    /// A search query that cannot be parsed.
    #[error("bad query: {0}")]
    BadQuery(String),
}
