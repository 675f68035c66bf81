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
//!   links where and how each page is encoded, and the HTML itself. Usable
//!   without HTTP ([`Site::render`]).
//! - [`http`]: the axum [`router`] over a [`Site`], the unlinked
//!   `/fault/...` routes that provoke fetch errors (in `http/fault.rs`),
//!   and [`serve`].
//! - [`hostile`]: the unlinked `/hostile/...` routes, pages built to cost a
//!   crawler as much as possible (link floods, huge `<base href>`, a body
//!   that trickles), linked from [`hostile::INDEX`].
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
//! Anything else is a 404.

pub mod hostile;
pub mod http;
pub mod profile;
pub mod site;

pub use http::{
    router, router_with, serve, serve_router, serve_site, LoggedRequest, RequestLog, SiteOptions,
};
pub use profile::Profile;
pub use site::{Page, PageEncoding, Site, SiteConfig};
