//! The open web in miniature (issue 13), on when `SiteOptions::open_web`:
//! a robots.txt naming sitemaps, the sitemaps themselves (honest and
//! hostile), and the `/meta/...` pages that ask things of crawlers
//! (noindex, nofollow, canonical).
//!
//! Sitemaps (every `<loc>` absolute, origin from the request's `Host`):
//!
//! - `/sitemap_index.xml`: names every `/sitemaps/profiles-{k}.xml.gz`
//!   (k from 1) and `/sitemaps/cities.xml`; no `<lastmod>` (it would cost
//!   a render of every sitemap).
//! - `/sitemaps/profiles-{k}.xml.gz`: a gzip urlset of the profiles with
//!   ids `(k-1)*sitemap_page+1 ..= k*sitemap_page`, out of every profile
//!   the site serves (linked and sitemap-only), removed ones left out (so a
//!   sitemap can hold fewer, and ids never move between sitemaps).
//! - `/sitemaps/cities.xml`: `/` and every page of every city.
//! - `/sitemap.txt`: the sitemap-only profiles again, one URL per line.
//! - Each `<url>` has a `<lastmod>` equal to that page's Last-Modified.
//!
//! Hostile sitemaps, linked from nowhere: `/sitemaps/huge.xml` ([`HUGE_URLS`]
//! entries), `/sitemaps/bomb.xml.gz` (inflates to [`BOMB_BYTES`]),
//! `/sitemaps/junk.xml` (see [`junk`]).

use std::fmt::Write;
use std::io::Write as _;
use std::sync::OnceLock;

use crate::site::{self, Extra, Page, Site, View};
use crate::validators::{date_of, last_change, w3c_date};

/// Default of `SiteOptions::sitemap_page`: URLs per profile sitemap.
pub const DEFAULT_SITEMAP_PAGE: u64 = 1_000;
/// Entries in `/sitemaps/huge.xml`: past the protocol's 50,000.
pub const HUGE_URLS: u64 = 60_000;
/// What `/sitemaps/bomb.xml.gz` inflates to: past the protocol's 50 MB.
pub const BOMB_BYTES: usize = 60 * 1024 * 1024;
/// Profiles that `/meta/noindex|nofollow|header/{id}` and the print views
/// linked from `/meta/` cover.
pub const META_PROFILES: u64 = 5;
/// `/meta/unreached/{n}` exists for n up to this; `/meta/links` links 1..=5,
/// `/meta/nofollow/{id}` links `5 + id`, `/meta/header/{id}` `10 + id`.
pub const UNREACHED_PAGES: u64 = 15;
/// `/meta/followed/{n}` exists for n up to this.
pub const FOLLOWED_PAGES: u64 = 5;
/// Where `/meta/canonical-offsite` points: outside any crawl's scope.
pub const OFFSITE_CANONICAL: &str = "http://elsewhere.test/x";

/// The default `/robots.txt` with the open web on.
pub fn robots(origin: &str) -> String {
    format!(
        "User-agent: *\nAllow: /\nSitemap: {origin}/sitemap_index.xml\nSitemap: {origin}/sitemap.txt\n"
    )
}

/// Whether the page at `path` reads nothing of the generation (the city
/// list, the small `/meta/` pages, the `/js/` shells that name no
/// profile): its Last-Modified is the base date without walking back
/// through up to [`crate::validators::MAX_LOOKBACK`] renders.
pub fn generation_free(path: &str) -> bool {
    const FIXED: &[&str] = &[
        "/",
        "/meta/",
        "/meta/links",
        "/meta/canonical-offsite",
        "/js/",
        "/js/hang",
        "/js/loop",
        "/js/dialog",
        "/js/blocked",
    ];
    FIXED.contains(&path)
        || path.starts_with("/meta/unreached/")
        || path.starts_with("/meta/followed/")
}

/// The generation that last changed the page at `path` (see
/// [`last_change`]): its Last-Modified and its sitemap `<lastmod>`.
pub fn page_last_change(
    site: &Site,
    path: &str,
    query: Option<&str>,
    view: &View,
    origin: &str,
) -> u64 {
    if generation_free(path) {
        return 0;
    }
    last_change(view.generation, |g| {
        let at = View {
            generation: g,
            ..*view
        };
        site.render_at(path, query, &at, origin).map(|p| p.body)
    })
}

/// Number of `/sitemaps/profiles-{k}.xml.gz` sitemaps.
pub fn profile_sitemaps(site: &Site, view: &View, per_page: u64) -> u64 {
    (site.profile_count() + view.sitemap_only.min(site::MAX_SITEMAP_ONLY)).div_ceil(per_page.max(1))
}

/// `/sitemap_index.xml`.
pub fn sitemap_index(site: &Site, view: &View, origin: &str, per_page: u64) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for k in 1..=profile_sitemaps(site, view, per_page) {
        let _ = writeln!(
            xml,
            "<sitemap><loc>{origin}/sitemaps/profiles-{k}.xml.gz</loc></sitemap>"
        );
    }
    let _ = writeln!(
        xml,
        "<sitemap><loc>{origin}/sitemaps/cities.xml</loc></sitemap>\n</sitemapindex>"
    );
    xml
}

fn urlset_head() -> String {
    String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    )
}

fn write_url(xml: &mut String, loc: &str, generation: u64) {
    // Locs are the site's own paths (no `&`, `<` or quotes): no escaping.
    let _ = writeln!(
        xml,
        "<url><loc>{loc}</loc><lastmod>{}</lastmod></url>",
        w3c_date(date_of(generation))
    );
}

/// `/sitemaps/profiles-{k}.xml.gz`, before compression; `None` past the last.
pub fn profile_sitemap_xml(
    site: &Site,
    view: &View,
    origin: &str,
    k: u64,
    per_page: u64,
) -> Option<String> {
    let per_page = per_page.max(1);
    if k == 0 || k > profile_sitemaps(site, view, per_page) {
        return None;
    }
    let first = (k - 1) * per_page + 1;
    let last =
        (k * per_page).min(site.profile_count() + view.sitemap_only.min(site::MAX_SITEMAP_ONLY));
    let mut xml = urlset_head();
    for id in first..=last {
        if crate::generation::removed(id, view.generation) {
            continue;
        }
        let path = Site::profile_path(id);
        let g = page_last_change(site, &path, None, view, origin);
        write_url(&mut xml, &format!("{origin}{path}"), g);
    }
    xml.push_str("</urlset>\n");
    Some(xml)
}

/// Gzip of `bytes` (deterministic: no name, no time in the header).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(bytes);
    gz.finish().unwrap_or_default()
}

/// `/sitemaps/cities.xml`: `/` and every page of every city.
pub fn cities_sitemap(site: &Site, view: &View, origin: &str) -> String {
    let mut xml = urlset_head();
    let g = page_last_change(site, "/", None, view, origin);
    write_url(&mut xml, &format!("{origin}/"), g);
    for i in 0..site.city_count() {
        for page in 1..=site.city_pages(i) {
            let Some(path) = site.city_path(i, page) else {
                continue;
            };
            let (p, q) = match path.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (path.as_str(), None),
            };
            let g = page_last_change(site, p, q, view, origin);
            write_url(&mut xml, &format!("{origin}{path}"), g);
        }
    }
    xml.push_str("</urlset>\n");
    xml
}

/// `/sitemap.txt`: the sitemap-only profiles that still exist.
pub fn sitemap_txt(site: &Site, view: &View, origin: &str) -> String {
    let first = site.profile_count() + 1;
    let last = site.profile_count() + view.sitemap_only.min(site::MAX_SITEMAP_ONLY);
    let mut txt = String::new();
    for id in first..=last {
        if !crate::generation::removed(id, view.generation) {
            let _ = writeln!(txt, "{origin}/profile/{id}");
        }
    }
    txt
}

/// `/sitemaps/huge.xml`: [`HUGE_URLS`] well-formed entries, all 404s
/// under `/hostile/void/` so a crawler that takes them costs nothing.
pub fn huge(origin: &str) -> String {
    let mut xml = urlset_head();
    xml.reserve(HUGE_URLS as usize * 60);
    for i in 0..HUGE_URLS {
        let _ = writeln!(xml, "<url><loc>{origin}/hostile/void/huge/{i}</loc></url>");
    }
    xml.push_str("</urlset>\n");
    xml
}

/// `/sitemaps/bomb.xml.gz`: a urlset head, then [`BOMB_BYTES`] of spaces,
/// gzipped to well under 100 KB. Built once and kept.
///
/// Deflating 60 MB would take seconds in a debug build, so only the first
/// two MiB are compressed: the second MiB's blocks, which end on a sync
/// flush and only point back into spaces, are valid after any run of
/// spaces and are repeated; the CRC is computed over the real content.
pub fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        const CHUNK: usize = 1 << 20;
        let head = urlset_head();
        let tail = b"</urlset>\n";
        let spaces = vec![b' '; CHUNK];
        let chunks = BOMB_BYTES.div_ceil(CHUNK);
        let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
        let mut first = head.as_bytes().to_vec();
        first.extend_from_slice(&spaces);
        let a = deflate_all(&mut deflate, &first, flate2::FlushCompress::Sync);
        let b = deflate_all(&mut deflate, &spaces, flate2::FlushCompress::Sync);
        let c = deflate_all(&mut deflate, tail, flate2::FlushCompress::Finish);
        let mut crc = flate2::Crc::new();
        crc.update(&first);
        for _ in 1..chunks {
            crc.update(&spaces);
        }
        crc.update(tail);
        let size = first.len() + (chunks - 1) * CHUNK + tail.len();
        // Gzip header: magic, deflate, no flags, no time, no extra, OS unknown.
        let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        gz.extend_from_slice(&a);
        for _ in 1..chunks {
            gz.extend_from_slice(&b);
        }
        gz.extend_from_slice(&c);
        gz.extend_from_slice(&crc.sum().to_le_bytes());
        gz.extend_from_slice(&(size as u32).to_le_bytes());
        gz
    })
}

/// Raw deflate of all of `input` ending with `flush` (a sync flush ends on
/// a byte boundary, so outputs can be concatenated).
fn deflate_all(
    deflate: &mut flate2::Compress,
    input: &[u8],
    flush: flate2::FlushCompress,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 64 + 1024);
    let start = deflate.total_in();
    loop {
        let consumed = (deflate.total_in() - start) as usize;
        out.reserve(64 * 1024);
        let before = out.len();
        // Deflating into a Vec with room cannot fail; on the off chance,
        // the bomb comes out short rather than the site panicking.
        let Ok(status) = deflate.compress_vec(&input[consumed..], &mut out, flush) else {
            return out;
        };
        let done_input = (deflate.total_in() - start) as usize == input.len();
        let room_left = out.len() < out.capacity();
        match flush {
            flate2::FlushCompress::Finish if status == flate2::Status::StreamEnd => return out,
            flate2::FlushCompress::Finish => {}
            _ if done_input && room_left && out.len() >= before => return out,
            _ => {}
        }
    }
}

/// `/sitemaps/junk.xml`: two good entries (profiles 1 and 2) among locs a
/// crawler must drop (`javascript:`, `ftp:`, relative, off-site, empty,
/// overlong), then a tail that breaks off mid-tag.
pub fn junk(origin: &str) -> String {
    let mut xml = urlset_head();
    let long = format!("{origin}/hostile/void/{}", "x".repeat(9_000));
    for loc in [
        format!("{origin}/profile/1"),
        "javascript:alert(1)".to_owned(),
        "ftp://127.0.0.1/file".to_owned(),
        "/profile/3".to_owned(),
        "profile/4".to_owned(),
        "http://elsewhere.test/profile/5".to_owned(),
        String::new(),
        long,
        format!("{origin}/profile/2"),
    ] {
        let _ = writeln!(xml, "<url><loc>{loc}</loc></url>");
    }
    let _ = write!(xml, "<url><loc>not closed<url><loc>{origin}/profile/3</lo");
    xml
}

/// The `X-Robots-Tag` of `/meta/header/{id}`: both directives for odd
/// ids, the `none` shorthand for even ones.
pub fn x_robots_tag(path: &str) -> Option<&'static str> {
    let id: u64 = path.strip_prefix("/meta/header/")?.parse().ok()?;
    (1..=META_PROFILES).contains(&id).then_some(if id % 2 == 1 {
        "noindex, nofollow"
    } else {
        "none"
    })
}

fn small(title: &str, body: &str) -> Page {
    site::small_page(title, "", body)
}

fn meta_id(rest: &str, prefix: &str, max: u64) -> Option<u64> {
    let n: u64 = rest.strip_prefix(prefix)?.parse().ok()?;
    ((1..=max).contains(&n) && !rest[prefix.len()..].starts_with('0')).then_some(n)
}

/// The page at `/meta/{rest}`, or `None`.
pub(crate) fn render_meta(site: &Site, rest: &str, view: &View) -> Option<Page> {
    match rest {
        "" => return Some(meta_index()),
        "links" => return Some(meta_links()),
        "canonical-offsite" => {
            return Some(site::small_page(
                "canonical offsite",
                &format!("<link rel=\"canonical\" href=\"{OFFSITE_CANONICAL}\">\n"),
                "<p>this page's canonical is off the crawl's scope</p>\n",
            ))
        }
        _ => {}
    }
    if let Some(id) = meta_id(rest, "noindex/", META_PROFILES) {
        let head = "<meta name=\"robots\" content=\"noindex\">\n";
        return site.profile_page(id, view, Extra { head, body: "" });
    }
    if let Some(id) = meta_id(rest, "nofollow/", META_PROFILES) {
        let head = "<meta name=\"robots\" content=\"nofollow\">\n";
        let body = format!("<p><a href=\"/meta/unreached/{}\">more</a></p>\n", 5 + id);
        return site.profile_page(id, view, Extra { head, body: &body });
    }
    if let Some(id) = meta_id(rest, "header/", META_PROFILES) {
        let body = format!("<p><a href=\"/meta/unreached/{}\">more</a></p>\n", 10 + id);
        return site.profile_page(
            id,
            view,
            Extra {
                head: "",
                body: &body,
            },
        );
    }
    if let Some(n) = meta_id(rest, "unreached/", UNREACHED_PAGES) {
        return Some(small(
            &format!("unreached {n}"),
            "<p>a nofollow link led here</p>\n",
        ));
    }
    if let Some(n) = meta_id(rest, "followed/", FOLLOWED_PAGES) {
        return Some(small(
            &format!("followed {n}"),
            "<p>a plain link led here</p>\n",
        ));
    }
    None
}

/// `/meta/`: a link to every `/meta/...` page and print view.
fn meta_index() -> Page {
    let mut body = String::from("<h1>meta</h1>\n<ul>\n");
    for kind in ["noindex", "nofollow", "header"] {
        for id in 1..=META_PROFILES {
            let _ = writeln!(
                body,
                "<li><a href=\"/meta/{kind}/{id}\">{kind} {id}</a></li>"
            );
        }
    }
    body.push_str("<li><a href=\"/meta/links\">links</a></li>\n");
    for id in 1..=META_PROFILES {
        let _ = writeln!(
            body,
            "<li><a href=\"/profile/{id}/print\">print {id}</a></li>\n\
             <li><a href=\"/profile/{id}?view=print\">view=print {id}</a></li>"
        );
    }
    body.push_str("<li><a href=\"/meta/canonical-offsite\">canonical offsite</a></li>\n</ul>\n");
    small("meta", &body)
}

/// `/meta/links`: `rel="nofollow"` links (to pages nothing else links)
/// beside plain ones.
fn meta_links() -> Page {
    let mut body = String::from("<h1>links</h1>\n<ul>\n");
    for n in 1..=5u64 {
        let rel = if n % 2 == 0 {
            "ugc nofollow"
        } else {
            "nofollow"
        };
        let _ = writeln!(
            body,
            "<li><a rel=\"{rel}\" href=\"/meta/unreached/{n}\">unreached {n}</a> \
             <a href=\"/meta/followed/{n}\">followed {n}</a></li>"
        );
    }
    body.push_str("</ul>\n");
    small("links", &body)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    /// The spliced gzip bomb is a valid gzip (CRC and size checked by the
    /// decoder) of more than 50 MB.
    #[test]
    fn bomb_is_valid_gzip() {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(super::bomb())
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.len() > 50_000_000);
        assert!(out.ends_with(b"   </urlset>\n"));
    }
}
