//! The HTML pages: [`Site::render_at`] picks the page for a path, and
//! the city list, city pages and profile pages are written here.

use std::fmt::Write;

use super::html::head;
use super::{canonical_id, head_with, tail, Extra, Page, PageEncoding, Site, View};
use crate::generation;
use crate::profile;

impl Site {
    /// The page at `path` (with optional query), or `None` for a 404.
    /// Only `page=N` is read from the query; other parameters are ignored.
    /// Generation 0, no optional sections: [`Site::render_at`] with the
    /// default [`View`].
    pub fn render(&self, path: &str, query: Option<&str>) -> Option<Page> {
        self.render_at(path, query, &View::default(), "")
    }

    /// The HTML page at `path` as `view` shows it, or `None` (a 404, or a
    /// 410 when [`Site::is_gone`]). `origin` (`http://host:port`, from the
    /// request) makes the absolute links of the open-web pages. Sitemaps,
    /// scripts and JSON are not pages; the router serves them.
    pub fn render_at(
        &self,
        path: &str,
        query: Option<&str>,
        view: &View,
        origin: &str,
    ) -> Option<Page> {
        if path == "/" {
            return Some(self.render_city_list());
        }
        if view.open_web {
            if let Some(rest) = path.strip_prefix("/meta/") {
                return crate::open_web::render_meta(self, rest, view);
            }
            // The print views name the profile's own page as canonical:
            // relative from `/profile/{id}/print`, absolute from
            // `/profile/{id}?view=print`.
            let print = query.is_some_and(|q| q.split('&').any(|p| p == "view=print"));
            let canonical = match path.strip_prefix("/profile/") {
                Some(rest) => match rest.strip_suffix("/print") {
                    Some(id) => Some((id, "")),
                    None if print => Some((rest, origin)),
                    None => None,
                },
                None => None,
            };
            if let Some((id, base)) = canonical {
                let head = format!("<link rel=\"canonical\" href=\"{base}/profile/{id}\">\n");
                return self.profile_page(
                    canonical_id(id)?,
                    view,
                    Extra {
                        head: &head,
                        body: "",
                    },
                );
            }
        }
        if view.js {
            if let Some(rest) = path.strip_prefix("/js/") {
                return crate::js::render(self, rest, view, origin);
            }
        }
        if let Some(slug) = path.strip_prefix("/city/") {
            let city = self.city_index(slug)?;
            let page = match query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("page=")))
            {
                None => 1,
                Some(n) => n.parse().ok()?,
            };
            return self.render_city_at(city, page, view);
        }
        if let Some(id) = path.strip_prefix("/profile/") {
            return self.profile_page(canonical_id(id)?, view, Extra::default());
        }
        None
    }

    /// `/`: a link to every city, plus links a parser must skip.
    pub fn render_city_list(&self) -> Page {
        let mut html = String::with_capacity(600 + 60 * self.cities.len());
        head(&mut html, PageEncoding::Utf8, "城市列表 - 示例交友网", None);
        html.push_str("<div class=\"city-list\">\n<h1>城市列表</h1>\n<ul>\n");
        for city in &self.cities {
            let _ = writeln!(
                html,
                "<li><a href=\"/city/{}\">{}</a></li>",
                city.slug, city.name
            );
        }
        html.push_str(
            "</ul>\n<p class=\"more\"><a href=\"javascript:void(0)\">更多城市</a> \
             <a href=\"mailto:x@y\">合作联系</a> <a href=\"#top\">返回顶部</a></p>\n</div>\n",
        );
        tail(&mut html);
        Page::encode(html, PageEncoding::Utf8)
    }

    /// `/city/{slug}?page=N`: that page's profiles and a link to the next
    /// page while there is one. `None` for a page past the end.
    pub fn render_city(&self, city: u32, page: u64) -> Option<Page> {
        self.render_city_at(city, page, &View::default())
    }

    /// [`Site::render_city`] in `view`'s generation: removed profiles are
    /// left out (the page keeps its place, so pages never shift), changed
    /// ones show their new age.
    pub fn render_city_at(&self, city: u32, page: u64, view: &View) -> Option<Page> {
        let pages = self.city_pages(city);
        if page == 0 || page > pages {
            return None;
        }
        let c = self.cities.get(city as usize)?;
        let size = u64::from(self.config.page_size);
        let first = (page - 1) * size;
        let last = (first + size).min(self.city_profile_count(city));
        let encoding = Site::city_encoding(city, page);
        let mut html = String::with_capacity(700 + 90 * (last - first) as usize);
        let title = format!("{}征婚交友 第{page}页 - 示例交友网", c.name);
        head(&mut html, encoding, &title, None);
        let _ = write!(
            html,
            "<div class=\"nav\"><a href=\"/\">首页</a></div>\n\
             <h1 class=\"city\">{}征婚交友</h1>\n<ul class=\"profile-list\">\n",
            c.name
        );
        for j in first..last {
            let id = u64::from(city) + 1 + j * u64::from(self.config.cities);
            if generation::removed(id, view.generation) {
                continue;
            }
            // Every third link is relative to /city/, to exercise resolution.
            let prefix = if id % 3 == 0 {
                "../profile/"
            } else {
                "/profile/"
            };
            let _ = write!(html, "<li><a href=\"{prefix}{id}\">");
            profile::write_name(id, &mut html);
            let _ = writeln!(
                html,
                "</a> <span class=\"age\">{}岁</span></li>",
                profile::age_after(id, generation::edits(id, view.generation))
            );
        }
        let _ = write!(html, "</ul>\n<div class=\"pager\">第{page}/{pages}页");
        if page < pages {
            // Alternate a query-only relative link with an absolute path.
            let next = page + 1;
            if next.is_multiple_of(2) {
                let _ = write!(html, " <a class=\"next\" href=\"?page={next}\">下一页</a>");
            } else {
                let _ = write!(
                    html,
                    " <a class=\"next\" href=\"/city/{}?page={next}\">下一页</a>",
                    c.slug
                );
            }
        }
        html.push_str(" <a href=\"#top\">返回顶部</a></div>\n");
        tail(&mut html);
        Some(Page::encode(html, encoding))
    }

    /// `/profile/{id}`: the profile table and four recommendations.
    pub fn render_profile(&self, id: u64) -> Option<Page> {
        self.profile_page(id, &View::default(), Extra::default())
    }

    /// The profile page of `id` as `view` shows it, with `extra` markup.
    pub(crate) fn profile_page(&self, id: u64, view: &View, extra: Extra<'_>) -> Option<Page> {
        if !self.serves_profile(id, view) {
            return None;
        }
        let p = self.profile_at(id, view.generation)?;
        let encoding = Site::profile_encoding(id);
        let has_base = Site::profile_has_base(id);
        let mut html = String::with_capacity(2048);
        let title = format!("{}的征婚资料 - 示例交友网", p.name);
        head_with(
            &mut html,
            encoding,
            &title,
            has_base.then_some("/profile/all/"),
            extra.head,
        );
        let slug = &self.cities[self.city_of(id) as usize].slug;
        let _ = write!(
            html,
            "<div class=\"nav\"><a href=\"/\">首页</a> &gt; <a href=\"/city/{slug}\">{}</a></div>\n\
             <h1 class=\"name\">{}</h1>\n",
            p.city, p.name
        );
        p.write_table(&mut html);
        html.push_str("<div class=\"guess-you-like\">\n<h2>猜你喜欢</h2>\n<ul>\n");
        for (k, t) in self.recommendations(id).into_iter().enumerate() {
            if generation::removed(t, view.generation) {
                continue;
            }
            let href = match ((id + k as u64) % 4, has_base) {
                (0, _) => format!("/profile/{t}"),
                // Against <base href="/profile/all/"> only; against the
                // page URL it would give /{t}, a 404.
                (_, true) => format!("../{t}"),
                (1, false) => format!("../profile/{t}"),
                (2, false) => format!("{t}"),
                _ => format!("/profile/{t}#comments"),
            };
            let _ = write!(html, "<li><a href=\"{href}\">");
            profile::write_name(t, &mut html);
            html.push_str("</a></li>\n");
        }
        html.push_str(
            "<li><a href=\"javascript:void(0)\">换一批</a></li>\n</ul>\n</div>\n\
             <div class=\"footer\"><a href=\"#top\">返回顶部</a> \
             <a href=\"mailto:x@y\">联系我们</a></div>\n",
        );
        html.push_str(extra.body);
        tail(&mut html);
        Some(Page::encode(html, encoding))
    }
}
