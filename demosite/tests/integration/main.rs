//! The demo site's integration tests, in one test binary (one per file
//! linked the site anew each time, issue 12): its pages, its binary, the
//! hostile routes and the open-web mode. `js.rs` (headless Chromium) is a
//! binary of its own beside this one.

mod bin;
mod hostile;
mod open_web;
mod site;
