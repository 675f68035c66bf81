//! The engine owns a crawl: it decides what to fetch, hands each request to
//! a worker, feeds the links that come back into its queue and sends items
//! on to the itemsaver, until nothing is left.
//!
//! # Layout
//!
//! In the order a request travels:
//!
//! - [`config`]: `[engine]` of `config.toml` plus flags, validated into
//!   [`Settings`] (seeds, worker and itemsaver addresses, limits).
//! - [`scheduler`]: step 2, the FIFO of pending requests, URL normalization
//!   and dedup, the depth limit.
//! - [`pool`]: step 3, one tarpc client per worker host, handed out
//!   round-robin through a channel.
//! - [`crawl`]: the loop that ties them together: dispatches up to
//!   `worker_count` calls at once, feeds results back, decides when the crawl
//!   is done, and stops cleanly on shutdown.
//! - [`items`]: items out, batched to the itemsaver; buffered in memory and
//!   then on disk while it is down, forgotten only once acknowledged.
//! - [`state`]: the crawl's state on disk (`--state_dir`), written
//!   atomically, so a stopped or killed engine resumes.
//! - [`summary`]: the counts printed at the end.

pub mod config;
pub mod crawl;
pub mod items;
pub mod pool;
pub mod scheduler;
pub mod state;
pub mod summary;

pub use config::{EngineConfig, Settings};
pub use crawl::{run, EngineError};
pub use summary::Summary;
