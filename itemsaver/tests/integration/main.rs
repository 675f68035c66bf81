//! The itemsaver's integration tests, in one test binary: each file here
//! is a module (the contract over both stores, the binary, export, the
//! search page, ...). One binary rather than one per file, because each
//! linked the whole itemsaver and its stores anew (issue 12). `browser.rs`
//! (headless Chromium) is a binary of its own beside this one.

mod binary;
mod contract;
mod crash;
mod elastic_tls;
mod export;
mod export_cli;
mod fuzz_frames;
mod search_page;
mod service;
