//! The worker's integration tests, in one test binary: each file here is
//! a module over the real servers and pages it needs. One binary rather
//! than one per file, because each compiled `common` again and linked the
//! whole worker anew (issue 12). `render.rs` (the browser) and
//! `stream_memory.rs` (its own global allocator, counting) are binaries of
//! their own beside this one.

#[path = "../common/mod.rs"]
mod common;

mod bin;
mod demo_stream_diff;
mod fuzz_frames;
mod guard;
mod hostile;
mod https;
mod metrics;
mod open_web;
mod rpc;
mod rules_tools;
mod stream_diff;
