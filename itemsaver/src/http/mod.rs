//! The search page and its JSON API, served by the itemsaver itself on
//! `http_addr` (off by default).
//!
//! - `GET /?q=&from=&size=&sort=`: the page, rendered on the server from
//!   the very [`SearchPage`] that `/api/search` returns (see [`page`]), so
//!   the page needs no script, and a search is a link: the query, the
//!   sort and the page are all in the URL.
//! - `GET /api/search?q=&from=&size=&sort=`: that page as JSON.
//! - `GET /api/items/{id}`: one item as JSON (each card links to it).
//! - `POST /login`: the form shown when a token is needed.
//!
//! Security. When the RPC has a token, so does this: a request passes with
//! the `itemsaver_token` cookie, an `Authorization: Bearer` header, or
//! `?token=` once, which sets the cookie (HttpOnly, SameSite=Strict) and
//! redirects to the same URL without it. Tokens are compared in constant
//! time ([`Token::matches`]). Without a token, binding beyond loopback
//! warns, as the RPC does. The page is plain HTTP: beyond one machine, put
//! TLS in front. Items are untrusted page content, so every value is
//! escaped, only http(s) URLs become links, and the page's
//! Content-Security-Policy allows no script at all.
//!
//! Bounds: `size` at most [`MAX_PAGE_SIZE`], the query at most
//! [`MAX_QUERY_BYTES`], `from + size` at most the stores'
//! [`crate::store::MAX_RESULT_WINDOW`], a login body at most 8 KiB.
//!
//! - this file: the routes, [`SearchParams`] and the search, and the
//!   headers every answer gets.
//! - `auth.rs`: the token check in front of every route, `POST /login`
//!   and the cookie.
//! - [`page`]: the HTML of the search page and the login form.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rpcsupport::{SearchRequest, Token};
use serde::Serialize;

use crate::store::{ItemStore, Sort, MAX_RESULT_WINDOW};

mod auth;
pub mod page;

use auth::{login, require_token};

/// Most hits on one page (`size`). Default 10, at most 100: a page of 100
/// cards still renders at once.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Hits per page when the URL does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 10;
/// Longest query text accepted, in bytes; longer is a 400. Default 1000,
/// far beyond any typed query.
pub const MAX_QUERY_BYTES: usize = 1000;
/// Largest `POST /login` body.
const MAX_LOGIN_BYTES: usize = 8 * 1024;

#[derive(Clone)]
struct AppState {
    store: Arc<dyn ItemStore>,
    token: Option<Token>,
}

/// The routes, over `store`, asking for `token` if there is one.
pub fn router(store: Arc<dyn ItemStore>, token: Option<Token>) -> Router {
    let state = AppState { store, token };
    Router::new()
        .route("/", get(search_page))
        .route("/api/search", get(search_api))
        .route("/api/items/{id}", get(item_api))
        .route("/login", post(login))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_LOGIN_BYTES))
        .with_state(state)
}

/// Serves the page on `listener` until `shutdown`. Warns if it is open to
/// other machines without a token.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn ItemStore>,
    token: Option<Token>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    if token.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            %local,
            "search page open to anyone who can reach it: no token is set \
             ([rpc] token_file, CRAWLER_RPC_TOKEN or --rpc_token_file)"
        );
    }
    axum::serve(listener, router(store, token))
        .with_graceful_shutdown(shutdown)
        .await
}

/// What `/api/search` answers and the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    /// The query text as given.
    pub q: String,
    /// The sort as given (`age`, `-age`), if any.
    pub sort: Option<String>,
    /// Hits skipped.
    pub from: u32,
    /// Hits per page.
    pub size: u32,
    /// Hits for the whole query.
    pub total: u64,
    /// This page's items, as `Item::to_json`.
    pub items: Vec<serde_json::Value>,
    /// `from` of the previous page, if there is one.
    pub prev: Option<u32>,
    /// `from` of the next page, if there is one (and it is within the
    /// stores' result window).
    pub next: Option<u32>,
}

/// The URL parameters of a search, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchParams {
    /// Query text.
    pub q: String,
    /// Hits to skip.
    pub from: u32,
    /// Hits per page.
    pub size: u32,
    /// `age` (smallest first) or `-age` (largest first).
    pub sort: Option<String>,
}

impl SearchParams {
    /// Reads `q`, `from`, `size` and `sort` from a query string; anything
    /// else is ignored. Errors say which parameter is wrong.
    pub fn parse(raw: Option<&str>) -> Result<SearchParams, String> {
        let mut params = SearchParams {
            size: DEFAULT_PAGE_SIZE,
            ..SearchParams::default()
        };
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "q" => {
                    if value.len() > MAX_QUERY_BYTES {
                        return Err(format!("the query is longer than {MAX_QUERY_BYTES} bytes"));
                    }
                    params.q = value.into_owned();
                }
                "from" => {
                    params.from = value
                        .parse()
                        .map_err(|_| "from must be a whole number".to_string())?;
                }
                "size" => {
                    params.size = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| format!("size must be 1 to {MAX_PAGE_SIZE}"))?;
                }
                "sort" if value.is_empty() => {}
                "sort" => {
                    let field = value.strip_prefix('-').unwrap_or(&value);
                    let valid = !field.is_empty()
                        && field.len() <= 100
                        && field
                            .chars()
                            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
                    if !valid {
                        return Err(
                            "sort must be a payload key, e.g. age, or -age for largest first"
                                .into(),
                        );
                    }
                    params.sort = Some(value.into_owned());
                }
                _ => {}
            }
        }
        Ok(params)
    }

    /// The query string of this search at `from` (defaults left out).
    pub fn query_string(&self, from: u32) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            url.append_pair("q", &self.q);
        }
        if let Some(sort) = &self.sort {
            url.append_pair("sort", sort);
        }
        if self.size != DEFAULT_PAGE_SIZE {
            url.append_pair("size", &self.size.to_string());
        }
        if from > 0 {
            url.append_pair("from", &from.to_string());
        }
        url.finish()
    }
}

/// Runs a search for the page or the API.
async fn run_search(store: &dyn ItemStore, params: &SearchParams) -> Result<SearchPage, String> {
    if u64::from(params.from) + u64::from(params.size) > MAX_RESULT_WINDOW {
        return Err(format!(
            "pages end at hit {MAX_RESULT_WINDOW}; narrow the query, or use `itemsaver export`"
        ));
    }
    let request = SearchRequest {
        query: params.q.clone(),
        from: params.from,
        size: params.size,
    };
    let response = match &params.sort {
        Some(sort) => {
            let sort = Sort {
                field: sort.trim_start_matches('-').to_owned(),
                descending: sort.starts_with('-'),
            };
            store.search_sorted(&request, &sort).await
        }
        None => store.search(&request).await,
    }
    .map_err(|e| e.to_string())?;
    let (from, size) = (params.from, params.size);
    let next_from = u64::from(from) + u64::from(size);
    let next = (next_from < response.total && next_from + u64::from(size) <= MAX_RESULT_WINDOW)
        .then_some(next_from as u32);
    let prev = (from > 0).then(|| from.saturating_sub(size));
    Ok(SearchPage {
        q: params.q.clone(),
        sort: params.sort.clone(),
        from,
        size,
        total: response.total,
        items: response.items.iter().map(|item| item.to_json()).collect(),
        prev,
        next,
    })
}

async fn search_page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let params = match SearchParams::parse(raw.as_deref()) {
        Ok(params) => params,
        Err(message) => {
            let params = SearchParams::parse(None).unwrap_or_default();
            return html(
                StatusCode::BAD_REQUEST,
                page::search(&params, Err(&message)),
            );
        }
    };
    match run_search(&*state.store, &params).await {
        Ok(found) => html(StatusCode::OK, page::search(&params, Ok(&found))),
        Err(message) => html(
            StatusCode::BAD_REQUEST,
            page::search(&params, Err(&message)),
        ),
    }
}

async fn search_api(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let params = match SearchParams::parse(raw.as_deref()) {
        Ok(params) => params,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
    };
    match run_search(&*state.store, &params).await {
        Ok(found) => json(StatusCode::OK, &found),
        Err(message) => json_error(StatusCode::BAD_REQUEST, &message),
    }
}

async fn item_api(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.store.get(&id).await {
        Ok(Some(item)) => json(StatusCode::OK, &item.to_json()),
        Ok(None) => json_error(StatusCode::NOT_FOUND, &format!("no item {id:?}")),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// An HTML answer with the headers every page gets: no script may run,
/// nothing is cached (it may be a logged-in view), and following an
/// item's link does not tell that site what was searched.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = answer(status, body, "text/html; charset=utf-8");
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    // Serializing our own types into a String cannot fail.
    let body = serde_json::to_string(value).unwrap_or_default();
    answer(status, body, "application/json")
}

/// `body` as `content_type`, with the headers every answer gets: the type
/// is not to be sniffed, and nothing is cached.
fn answer(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters parse with defaults; bad ones name themselves.
    #[test]
    fn params_parse_and_check() {
        let p = SearchParams::parse(Some("q=city%3Abeijing&from=20&sort=-age")).unwrap();
        assert_eq!(p.q, "city:beijing");
        assert_eq!((p.from, p.size), (20, DEFAULT_PAGE_SIZE));
        assert_eq!(p.sort.as_deref(), Some("-age"));
        assert!(SearchParams::parse(Some("size=101"))
            .unwrap_err()
            .contains("size"));
        assert!(SearchParams::parse(Some("from=x"))
            .unwrap_err()
            .contains("from"));
        assert!(SearchParams::parse(Some("sort=a%20b"))
            .unwrap_err()
            .contains("sort"));
        let long = format!("q={}", "a".repeat(MAX_QUERY_BYTES + 1));
        assert!(SearchParams::parse(Some(&long))
            .unwrap_err()
            .contains("longer"));
    }

    /// A page's own links carry the query, the sort and the new `from`, defaults left out.
    #[test]
    fn query_strings_round_trip() {
        let p = SearchParams::parse(Some("q=a+b%26c&sort=age&size=20")).unwrap();
        let text = p.query_string(40);
        assert_eq!(text, "q=a+b%26c&sort=age&size=20&from=40");
        let again = SearchParams::parse(Some(&text)).unwrap();
        assert_eq!((again.q.as_str(), again.from), ("a b&c", 40));
        assert_eq!(SearchParams::parse(None).unwrap().query_string(0), "");
    }
}
