// Written once for two crates: the worker's browser (render/browser.rs)
// and the test crate's (testsupport/src/browser.rs), which `include!`s
// this file, since the test crate links nothing but std. So: items only,
// no inner `//!` docs, nothing but core in scope.

/// The Chromium flags that keep a headless browser from doing anything of
/// its own accord: no GPU, QUIC, first-run or default-browser prompts, no
/// background, update, sync, metrics, crash or phishing traffic, no
/// extensions, no sound, no scrollbars in what it draws. Each user adds
/// what it needs (the profile, where pages may go, how it is driven).
pub const QUIET_FLAGS: &[&str] = &[
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    "--mute-audio",
    "--hide-scrollbars",
];
