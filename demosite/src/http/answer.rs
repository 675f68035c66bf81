//! The fallback route: what the site answers at a path (a page, a
//! sitemap, a script, JSON), and on the open web its validators and 304s.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{gone, not_found, AppState, Stopping};
use crate::open_web;
use crate::site::View;
use crate::validators;

/// One answer of the site before validators: what [`answer`] computes for
/// a path in one generation.
struct Doc {
    content_type: &'static str,
    body: Vec<u8>,
    /// The same in every generation: Last-Modified is the base date, with
    /// no walk over generations (the hostile sitemaps are megabytes).
    fixed: bool,
}

impl Doc {
    fn new(content_type: &'static str, body: impl Into<Vec<u8>>) -> Doc {
        Doc {
            content_type,
            body: body.into(),
            fixed: false,
        }
    }

    fn fixed(content_type: &'static str, body: impl Into<Vec<u8>>) -> Doc {
        Doc {
            fixed: true,
            ..Doc::new(content_type, body)
        }
    }
}

/// Longest `Host` header the site puts into its pages: a DNS name (253)
/// and a port. `/sitemaps/huge.xml` repeats the origin 60,000 times, so a
/// longer one could make a request cost gigabytes.
const MAX_HOST_LEN: usize = 260;

/// `http://{Host}` of the request, for absolute links; a missing, overlong
/// or odd Host (anything but a host name or address and a port) gives
/// `http://localhost`, so a request cannot write markup into a page.
pub(super) fn origin_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= MAX_HOST_LEN
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map_or_else(|| "http://localhost".to_owned(), |h| format!("http://{h}"))
}

/// What the site answers at `path` in `view` (every route of the fallback
/// except `/js/never`), or `None`.
fn answer(
    state: &AppState,
    path: &str,
    query: Option<&str>,
    view: &View,
    origin: &str,
) -> Option<Doc> {
    let site = &state.site;
    if view.open_web {
        const XML: &str = "application/xml";
        let per_page = state.options.sitemap_page.max(1);
        match path {
            "/sitemap_index.xml" => {
                return Some(Doc::new(
                    XML,
                    open_web::sitemap_index(site, view, origin, per_page),
                ))
            }
            "/sitemaps/cities.xml" => {
                return Some(Doc::new(XML, open_web::cities_sitemap(site, view, origin)))
            }
            "/sitemap.txt" => {
                return Some(Doc::new(
                    "text/plain; charset=utf-8",
                    open_web::sitemap_txt(site, view, origin),
                ))
            }
            "/sitemaps/huge.xml" => return Some(Doc::fixed(XML, open_web::huge(origin))),
            "/sitemaps/bomb.xml.gz" => {
                return Some(Doc::fixed("application/gzip", open_web::bomb()))
            }
            "/sitemaps/junk.xml" => return Some(Doc::fixed(XML, open_web::junk(origin))),
            _ => {}
        }
        if let Some(k) = path
            .strip_prefix("/sitemaps/profiles-")
            .and_then(|k| k.strip_suffix(".xml.gz"))
            .filter(|k| !k.starts_with('0'))
            .and_then(|k| k.parse().ok())
        {
            let xml = open_web::profile_sitemap_xml(site, view, origin, k, per_page)?;
            return Some(Doc::new("application/gzip", open_web::gzip(xml.as_bytes())));
        }
    }
    if view.js {
        match path {
            "/js/app.js" => return Some(Doc::fixed(JS, crate::js::APP_JS)),
            "/js/profile.js" => return Some(Doc::fixed(JS, crate::js::PROFILE_JS)),
            "/api/js/list.json" => return Some(Doc::new(JSON, crate::js::list_json(site, view))),
            _ => {}
        }
        if let Some(file) = path.strip_prefix("/api/js/profile/") {
            return Some(Doc::new(JSON, crate::js::profile_json(site, view, file)?));
        }
    }
    let page = site.render_at(path, query, view, origin)?;
    let mut doc = Doc::new(page.encoding.content_type(), page.body);
    doc.fixed = open_web::generation_free(path);
    Some(doc)
}

const JS: &str = "text/javascript; charset=utf-8";
const JSON: &str = "application/json";

pub(super) async fn site_page(
    State(state): State<Arc<AppState>>,
    stopping: Option<axum::Extension<Stopping>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(gate) = &state.options.gate {
        match gate.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return not_found(),
        }
    }
    if !state.options.page_delay.is_zero() {
        tokio::time::sleep(state.options.page_delay).await;
    }
    let view = state.options.view();
    let (path, query) = (uri.path(), uri.query());
    if view.js && path == "/js/never" {
        let mut stopping = stopping.map(|s| s.0 .0.subscribe());
        let stopped = async {
            match &mut stopping {
                // An error means the server is gone: stop waiting too.
                Some(rx) => drop(rx.wait_for(|stopping| *stopping).await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(crate::js::NEVER_SECS)) => {}
            _ = stopped => {}
        }
        return (StatusCode::GATEWAY_TIMEOUT, "never\n").into_response();
    }
    let origin = origin_of(&headers);
    let Some(doc) = answer(&state, path, query, &view, &origin) else {
        return if state.site.is_gone(path, &view) {
            gone()
        } else {
            not_found()
        };
    };
    let mut response = if view.open_web {
        with_validators(&state, doc, path, query, &view, &origin, &headers)
    } else {
        ([(header::CONTENT_TYPE, doc.content_type)], doc.body).into_response()
    };
    if let Some(tag) = view
        .open_web
        .then(|| open_web::x_robots_tag(path))
        .flatten()
    {
        response
            .headers_mut()
            .insert("x-robots-tag", HeaderValue::from_static(tag));
    }
    response
}

/// `doc` with its ETag and Last-Modified, or a 304 when the request's
/// validators match them.
fn with_validators(
    state: &AppState,
    doc: Doc,
    path: &str,
    query: Option<&str>,
    view: &View,
    origin: &str,
    headers: &HeaderMap,
) -> Response {
    let etag = validators::etag(&doc.body);
    let changed = if doc.fixed {
        0
    } else {
        validators::last_change(view.generation, |g| {
            let at = View {
                generation: g,
                ..*view
            };
            if g == view.generation {
                // The walk asks for the current body first; it is at hand.
                return Some(doc.body.clone());
            }
            answer(state, path, query, &at, origin).map(|d| d.body)
        })
    };
    let modified = validators::date_of(changed);
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let hit = validators::not_modified(
        header_str(header::IF_NONE_MATCH),
        header_str(header::IF_MODIFIED_SINCE),
        &etag,
        modified,
    );
    let last_modified = validators::http_date(modified);
    if hit {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::LAST_MODIFIED, last_modified)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, doc.content_type.to_owned()),
            (header::ETAG, etag),
            (header::LAST_MODIFIED, last_modified),
        ],
        doc.body,
    )
        .into_response()
}
