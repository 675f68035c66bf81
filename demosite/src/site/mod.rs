//! The site's shape (cities, pagination, which page links where) and the
//! HTML of every page, independent of HTTP so tests can walk it directly.
//!
//! - this file: [`SiteConfig`], [`View`] and [`Site`] with what the shape
//!   answers without rendering (counts, paths, which profile is where,
//!   recommendations, encodings, what a generation removed).
//! - `html.rs`: [`Page`], [`PageEncoding`] and the head and tail every
//!   page shares.
//! - `render.rs`: [`Site::render_at`] and the HTML of the city list, the
//!   city pages and the profile pages.

use std::collections::HashMap;

use crate::generation;
use crate::profile::{self, Profile};

mod html;
mod render;

pub(crate) use html::{head_with, small_page, tail, Extra};
pub use html::{Page, PageEncoding};

/// Most sitemap-only profiles a site has (`--sitemap_only`): their ids
/// come after the linked ones, and [`Site::profile_at`] answers for ids up
/// to `profiles + MAX_SITEMAP_ONLY`.
pub const MAX_SITEMAP_ONLY: u64 = 1_000_000;

/// Default of [`View::js_profiles`] and `SiteOptions::js_profiles`.
pub const DEFAULT_JS_PROFILES: u64 = 20;

/// What a request sees beyond the site's shape: the generation and the
/// optional sections (the per-request snapshot of `SiteOptions`). The
/// default is the site every test before issue 13 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Which generation of edits (see [`crate::generation`]).
    pub generation: u64,
    /// Profiles `profiles+1 ..= profiles+sitemap_only` exist, unlinked.
    pub sitemap_only: u64,
    /// The `/meta/...` pages and the print views with a canonical link.
    pub open_web: bool,
    /// The `/js/...` pages.
    pub js: bool,
    /// Profiles the `/js/` list links (ids from 1, at most `profiles`).
    pub js_profiles: u64,
}

impl Default for View {
    fn default() -> Self {
        View {
            generation: 0,
            sitemap_only: 0,
            open_web: false,
            js: false,
            js_profiles: DEFAULT_JS_PROFILES,
        }
    }
}

/// How big the generated site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteConfig {
    /// Profiles, with ids `1..=profiles`.
    pub profiles: u64,
    /// Cities; profile `id` is listed under city `(id - 1) % cities`.
    /// Zero is treated as one.
    pub cities: u32,
    /// Profiles per city list page. Zero is treated as one.
    pub page_size: u32,
}

impl Default for SiteConfig {
    /// 1000 profiles in 20 cities, 20 per page: 3 pages per city, 1061 pages.
    fn default() -> Self {
        SiteConfig {
            profiles: 1000,
            cities: 20,
            page_size: 20,
        }
    }
}

struct City {
    name: String,
    slug: String,
}

/// Chinese name and URL slug of the first cities; later ones reuse these
/// with a district number (`beijing-2`, 北京2区).
const CITY_TABLE: &[(&str, &str)] = &[
    ("北京", "beijing"),
    ("上海", "shanghai"),
    ("广州", "guangzhou"),
    ("深圳", "shenzhen"),
    ("天津", "tianjin"),
    ("重庆", "chongqing"),
    ("成都", "chengdu"),
    ("武汉", "wuhan"),
    ("杭州", "hangzhou"),
    ("南京", "nanjing"),
    ("西安", "xian"),
    ("苏州", "suzhou"),
    ("长沙", "changsha"),
    ("郑州", "zhengzhou"),
    ("沈阳", "shenyang"),
    ("青岛", "qingdao"),
    ("大连", "dalian"),
    ("厦门", "xiamen"),
    ("济南", "jinan"),
    ("哈尔滨", "haerbin"),
    ("长春", "changchun"),
    ("福州", "fuzhou"),
    ("合肥", "hefei"),
    ("昆明", "kunming"),
    ("南昌", "nanchang"),
    ("贵阳", "guiyang"),
    ("南宁", "nanning"),
    ("太原", "taiyuan"),
    ("石家庄", "shijiazhuang"),
    ("兰州", "lanzhou"),
    ("宁波", "ningbo"),
    ("无锡", "wuxi"),
];

/// Number of "you may also like" links on a profile page.
pub const RECOMMENDATIONS: usize = 4;

/// The generated site: city tables built once, everything else computed
/// per request from integers.
pub struct Site {
    config: SiteConfig,
    cities: Vec<City>,
    slug_index: HashMap<String, u32>,
    page_count: u64,
}

impl Site {
    /// Builds the city tables for `config`.
    pub fn new(mut config: SiteConfig) -> Site {
        config.cities = config.cities.max(1);
        config.page_size = config.page_size.max(1);
        let cities: Vec<City> = (0..config.cities)
            .map(|i| {
                let (name, slug) = CITY_TABLE[i as usize % CITY_TABLE.len()];
                let round = i as usize / CITY_TABLE.len();
                if round == 0 {
                    City {
                        name: name.to_owned(),
                        slug: slug.to_owned(),
                    }
                } else {
                    City {
                        name: format!("{name}{}区", round + 1),
                        slug: format!("{slug}-{}", round + 1),
                    }
                }
            })
            .collect();
        let slug_index = cities
            .iter()
            .enumerate()
            .map(|(i, c)| (c.slug.clone(), i as u32))
            .collect();
        let mut site = Site {
            config,
            cities,
            slug_index,
            page_count: 0,
        };
        let city_pages: u64 = (0..config.cities).map(|i| site.city_pages(i)).sum();
        site.page_count = 1 + city_pages + config.profiles;
        site
    }

    /// The configuration in use (zero cities or page size raised to one).
    pub fn config(&self) -> SiteConfig {
        self.config
    }

    /// Number of profiles (ids `1..=profile_count()`).
    pub fn profile_count(&self) -> u64 {
        self.config.profiles
    }

    /// Number of cities.
    pub fn city_count(&self) -> u32 {
        self.config.cities
    }

    /// Distinct pages a full crawl fetches: the city list, every page of
    /// every city, every profile.
    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    /// URL slug of city `i`, e.g. `beijing`.
    pub fn city_slug(&self, i: u32) -> Option<&str> {
        self.cities.get(i as usize).map(|c| c.slug.as_str())
    }

    /// Chinese name of city `i`, e.g. 北京.
    pub fn city_name(&self, i: u32) -> Option<&str> {
        self.cities.get(i as usize).map(|c| c.name.as_str())
    }

    /// Index of the city with this slug.
    pub fn city_index(&self, slug: &str) -> Option<u32> {
        self.slug_index.get(slug).copied()
    }

    /// Profiles listed under city `i`.
    pub fn city_profile_count(&self, i: u32) -> u64 {
        let (i, n) = (u64::from(i), u64::from(self.config.cities));
        if i >= n || self.config.profiles <= i {
            0
        } else {
            (self.config.profiles - 1 - i) / n + 1
        }
    }

    /// List pages of city `i` (at least one, even when it has no profiles).
    pub fn city_pages(&self, i: u32) -> u64 {
        self.city_profile_count(i)
            .div_ceil(u64::from(self.config.page_size))
            .max(1)
    }

    /// Path of page `page` (1-based) of city `i`: page 1 has no query.
    pub fn city_path(&self, i: u32, page: u64) -> Option<String> {
        let slug = self.city_slug(i)?;
        Some(if page <= 1 {
            format!("/city/{slug}")
        } else {
            format!("/city/{slug}?page={page}")
        })
    }

    /// Path of profile `id`.
    pub fn profile_path(id: u64) -> String {
        format!("/profile/{id}")
    }

    /// Profile `id`, or `None` outside `1..=profile_count()`.
    pub fn profile(&self, id: u64) -> Option<Profile> {
        if id == 0 || id > self.config.profiles {
            return None;
        }
        let city = self.city_of(id);
        Some(profile::build(id, &self.cities[city as usize].name))
    }

    /// Profile `id` as generation `generation` shows it: `None` when it
    /// was removed by then or `id` is 0 or past `profiles +`
    /// [`MAX_SITEMAP_ONLY`]. Ids past [`Site::profile_count`] are the
    /// sitemap-only profiles (served when `SiteOptions::sitemap_only`
    /// reaches them). Each edit moves `age` and `occupation` on, so a
    /// [`generation::changed`] profile differs in extracted fields.
    pub fn profile_at(&self, id: u64, generation: u64) -> Option<Profile> {
        if id == 0 || id > self.config.profiles.saturating_add(MAX_SITEMAP_ONLY) {
            return None;
        }
        if generation::removed(id, generation) {
            return None;
        }
        let city = &self.cities[self.city_of(id) as usize].name;
        Some(profile::build_after(
            id,
            city,
            generation::edits(id, generation),
        ))
    }

    /// Exactly the profiles a full crawl of `generation` stores, by id: the
    /// linked ones and the `sitemap_only` unlinked ones, removed ones left
    /// out.
    pub fn expected_profiles(&self, generation: u64, sitemap_only: u64) -> Vec<Profile> {
        let last = self.config.profiles + sitemap_only.min(MAX_SITEMAP_ONLY);
        (1..=last)
            .filter_map(|id| self.profile_at(id, generation))
            .collect()
    }

    /// Whether the page `/profile/{id}` of `generation` differs from the
    /// one before (so a revalidation gets a 200, not a 304): the profile
    /// was edited ([`generation::changed`]), or one of its recommendations
    /// was removed in this very generation (its link goes). False once the
    /// profile itself is removed (the page is a 410).
    pub fn profile_page_changed(&self, id: u64, generation: u64) -> bool {
        if generation == 0 || generation::removed(id, generation) {
            return false;
        }
        generation::changed(id, generation)
            || self
                .recommendations(id)
                .into_iter()
                .any(|t| generation::removed_in(t, generation) == Some(generation))
    }

    /// Whether `id` is a profile `view` serves (removed or not).
    pub(crate) fn serves_profile(&self, id: u64, view: &View) -> bool {
        id >= 1 && id <= self.config.profiles + view.sitemap_only.min(MAX_SITEMAP_ONLY)
    }

    /// Whether `path` is a profile page (or its print view) of a profile
    /// that `view`'s generation removed: answered 410 Gone, not 404.
    pub fn is_gone(&self, path: &str, view: &View) -> bool {
        let id = match path.strip_prefix("/profile/") {
            Some(rest) => rest
                .strip_suffix("/print")
                .filter(|_| view.open_web)
                .unwrap_or(rest),
            None => return false,
        };
        canonical_id(id).is_some_and(|id| {
            self.serves_profile(id, view) && generation::removed(id, view.generation)
        })
    }

    /// The city profile `id` is listed under.
    pub fn city_of(&self, id: u64) -> u32 {
        ((id.saturating_sub(1)) % u64::from(self.config.cities)) as u32
    }

    /// The "you may also like" targets of profile `id`: other existing
    /// profiles, fixed per id. Empty when the site has a single profile.
    pub fn recommendations(&self, id: u64) -> Vec<u64> {
        let n = self.config.profiles;
        if n < 2 {
            return Vec::new();
        }
        (0..RECOMMENDATIONS as u64)
            .map(|k| {
                let t = 1 + profile::field_hash(id, 100 + k) % n;
                // Never recommend the profile to itself; the next id is
                // as good as any.
                if t == id {
                    t % n + 1
                } else {
                    t
                }
            })
            .collect()
    }

    /// How profile `id`'s page is encoded: ids ending in 3 are GBK, with
    /// 3, 23, 43… declared in the header and 13, 33, 53… only in `<meta>`.
    pub fn profile_encoding(id: u64) -> PageEncoding {
        match (id % 10, (id / 10) % 2) {
            (3, 0) => PageEncoding::GbkHeader,
            (3, _) => PageEncoding::GbkMeta,
            _ => PageEncoding::Utf8,
        }
    }

    /// Whether profile `id`'s page carries `<base href="/profile/all/">`
    /// and relative links that only resolve correctly against it.
    pub fn profile_has_base(id: u64) -> bool {
        id % 10 == 7
    }

    /// How page `page` of city `i` is encoded: one in five is GBK, half of
    /// those declared in the header (page 1 of city 1 among them).
    pub fn city_encoding(i: u32, page: u64) -> PageEncoding {
        match (u64::from(i) + page) % 10 {
            2 => PageEncoding::GbkHeader,
            7 => PageEncoding::GbkMeta,
            _ => PageEncoding::Utf8,
        }
    }
}

/// A profile id as the site spells it, or `None`. Only canonical decimal
/// ids: "007" or "+7" would be a second URL for the same page and break the
/// page count.
fn canonical_id(id: &str) -> Option<u64> {
    if id.starts_with('0') || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}
