//! A deterministic local dating-profile site to crawl in demos, tests and
//! benchmarks.
//!
//! Every page is computed from integers on request, so a site of 100k+
//! profiles costs no disk and almost no memory, and profile 123 looks the
//! same on every run: tests can compare what the crawler extracted with
//! [`Site::profile`].
//!
//! # Layout
//!
//! - [`profile`]: [`Profile`], every field picked from fixed (mostly
//!   Chinese) tables by a small hash of the id.
//! - [`site`]: [`SiteConfig`] and [`Site`]: cities, pagination, which page
//!   links where and how each page is encoded, and the HTML itself
//!   (`site/html.rs`, `site/render.rs`). Usable without HTTP
//!   ([`Site::render`]).
//! - [`http`]: the axum [`router`] over a [`Site`] and [`serve`]; its
//!   [`SiteOptions`] (`http/options.rs`), the [`RequestLog`]
//!   (`http/log.rs`), the page, sitemap and validator answers
//!   (`http/answer.rs`), and the unlinked `/fault/...` routes that provoke
//!   fetch errors (`http/fault.rs`).
//! - [`hostile`]: the unlinked `/hostile/...` routes, pages built to cost a
//!   crawler as much as possible (link floods, huge `<base href>`, a body
//!   that trickles), linked from [`hostile::INDEX`].
//! - [`generation`]: the site after `n` rounds of edits ([`Generation`],
//!   [`generation::changed`], [`generation::removed`]); [`Site::profile_at`],
//!   [`Site::expected_profiles`] and [`Site::profile_page_changed`] (which
//!   pages a revalidation finds changed) build on it (issue 13).
//! - [`validators`]: ETag, Last-Modified and the 304 rule, on every answer
//!   when [`SiteOptions::open_web`] is set.
//! - [`open_web`]: with [`SiteOptions::open_web`], robots.txt naming the
//!   sitemaps, the sitemaps (and hostile ones), the `/meta/...` pages and
//!   the print views with a canonical link.
//! - [`js`]: with [`SiteOptions::js`], the `/js/...` pages a script builds
//!   (issue 16).
//!
//! Everything in the last four is off by default: [`SiteOptions::default`]
//! serves the same pages, bodies and [`Site::page_count`] as before them.
//!
//! # URLs
//!
//! - `/`: the city list, a link per city.
//! - `/city/{slug}` and `/city/{slug}?page=N` (N >= 2): a page of that
//!   city's profiles and a "next page" link while more pages exist.
//! - `/profile/{id}`: the profile table and four "you may also like" links.
//!
//! Links come in several forms (absolute path, `../profile/N`, `N`,
//! `?page=N`, fragments, and on ids ending in 7 a `<base href>` they only
//! resolve against), among junk links (`javascript:`, `mailto:`, `#top`)
//! a parser must skip. Note `#top` on a `<base href>` page resolves to the
//! base URL (a 404), so a crawler must skip fragment-only links explicitly. Profile ids ending in 3 and one city page in five are
//! GBK, declared in the header or only in `<meta>` (see [`PageEncoding`]).
//! Anything else is a 404; a profile removed in the served generation is a
//! 410.
//!
//! With [`SiteOptions::open_web`] (see [`open_web`] for the list):
//! `/robots.txt`, `/sitemap_index.xml`, `/sitemaps/...`, `/sitemap.txt`,
//! `/meta/...`, `/profile/{id}/print` and `/profile/{id}?view=print`, and
//! the sitemap-only profiles `/profile/{profiles+1 ..= profiles+N}`. With
//! [`SiteOptions::js`]: `/js/...` and `/api/js/...` (see [`js`]).
//! `POST /_site/generation/{n}` sets the generation.
//!
//! Choices the spec left open: city pages keep their place across
//! generations (a removed profile leaves a gap, pages never shift); an
//! edit moves a profile's `age` one year on and its `occupation` one entry
//! on; profile sitemaps list sitemap-only profiles too (sitemap.txt lists
//! them again); the sitemap index has no `<lastmod>`; `/meta/header/{id}`
//! says `noindex, nofollow` on odd ids and `none` on even ones.

pub mod generation;
pub mod hostile;
pub mod http;
pub mod js;
pub mod open_web;
pub mod profile;
pub mod site;
pub mod validators;

pub use generation::Generation;
pub use http::{
    router, router_with, serve, serve_router, serve_site, LoggedRequest, RequestLog, SiteOptions,
};
pub use profile::Profile;
pub use site::{Page, PageEncoding, Site, SiteConfig, View};
