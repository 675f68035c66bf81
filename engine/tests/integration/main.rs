//! The engine's integration tests, in one test binary: each file here is
//! a module (one concern: the crawl, the CLI, recovery from kills, ...)
//! over the real servers `common` starts. One binary rather than one per
//! file, because each binary compiled `common` again and linked the
//! engine, the worker, the itemsaver and the demo site anew: that was
//! most of the suite's rebuild time after a change to the contract
//! (issue 12). The browser tests (`render.rs`, `render_routing.rs`,
//! `dashboard.rs`) are still binaries of their own beside this one.

#[path = "../common/mod.rs"]
mod common;

mod budget;
mod cli;
mod config_file;
mod crawl;
mod hostile;
mod open_web;
mod poison;
mod policy;
mod politeness;
mod recovery;
mod recrawl;
mod rules;
mod state_lock;
