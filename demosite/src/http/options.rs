//! [`SiteOptions`]: what a test (or the binary's flags) sets on top of a
//! [`Site`](crate::Site), and the [`View`] of it a request sees.

use std::sync::Arc;
use std::time::Duration;

use crate::generation::Generation;
use crate::open_web;
use crate::site::{View, DEFAULT_JS_PROFILES};

/// Test knobs on top of a [`Site`](crate::Site): a robots.txt, slow pages, a request
/// log, and the sections that are off by default (the open web, script
/// pages, generations). The default serves exactly the site of
/// [`Site::render`](crate::Site::render).
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// Served at `/robots.txt`; `None` means 404 (allow all).
    pub robots: Option<String>,
    /// `/robots.txt` answers 503 this many times before it works.
    pub robots_failures: u32,
    /// Every site page (not `/fault/...`) waits this long before answering.
    pub page_delay: Duration,
    /// When set, `/robots.txt` is an allow-all file of this many bytes,
    /// streamed (a hostile site's 100 MB robots.txt); wins over `robots`.
    pub robots_bytes: Option<u64>,
    /// When set, every site page first takes (and uses up) one permit, so a
    /// test decides how many pages the site serves and when.
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
    /// The open web (issue 13): sitemaps and a robots.txt naming them,
    /// validators and 304s on every page, the `/meta/...` pages and the
    /// sitemap-only profiles (see [`crate::open_web`]).
    pub open_web: bool,
    /// Profiles `profiles+1 ..= profiles+sitemap_only` exist, linked from
    /// no page (only the sitemaps list them); needs `open_web`. Default 0,
    /// at most [`crate::site::MAX_SITEMAP_ONLY`].
    pub sitemap_only: u64,
    /// URLs per `/sitemaps/profiles-{k}.xml.gz`; default
    /// [`open_web::DEFAULT_SITEMAP_PAGE`] (1,000), zero counts as one.
    pub sitemap_page: u64,
    /// The generation served (see [`crate::generation`]); keep a clone to
    /// change it while the site runs. Default 0.
    pub generation: Generation,
    /// The `/js/...` script-built pages (issue 16, see [`crate::js`]).
    pub js: bool,
    /// Profiles the `/js/` list links; default
    /// [`DEFAULT_JS_PROFILES`] (20).
    pub js_profiles: u64,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            robots: None,
            robots_failures: 0,
            page_delay: Duration::ZERO,
            robots_bytes: None,
            gate: None,
            open_web: false,
            sitemap_only: 0,
            sitemap_page: open_web::DEFAULT_SITEMAP_PAGE,
            generation: Generation::default(),
            js: false,
            js_profiles: DEFAULT_JS_PROFILES,
        }
    }
}

impl SiteOptions {
    /// What a request arriving now sees.
    pub fn view(&self) -> View {
        View {
            generation: self.generation.get(),
            // Sitemap-only profiles are an open-web feature: without the
            // sitemaps nothing could reach them.
            sitemap_only: if self.open_web { self.sitemap_only } else { 0 },
            open_web: self.open_web,
            js: self.js,
            js_profiles: self.js_profiles,
        }
    }
}
