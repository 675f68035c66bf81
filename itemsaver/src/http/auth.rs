//! The token check in front of every route, `POST /login`, and the
//! cookie that carries the token once it was given (see the module docs).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{html, json_error, page, AppState};

/// The cookie holding the token once it was given.
const COOKIE: &str = "itemsaver_token";

/// `POST /login` with `token=...&next=/...`: sets the cookie and goes on
/// to `next`, or shows the form again.
pub(super) async fn login(State(state): State<AppState>, body: String) -> Response {
    let mut token = String::new();
    let mut next = String::from("/");
    for (key, value) in url::form_urlencoded::parse(body.as_bytes()) {
        match key.as_ref() {
            "token" => token = value.into_owned(),
            "next" => next = value.into_owned(),
            _ => {}
        }
    }
    // Only a path on this site, so the form cannot send a user elsewhere.
    if !next.starts_with('/') || next.starts_with("//") || next.contains('\\') {
        next = "/".into();
    }
    match &state.token {
        Some(expected) if !expected.matches(token.as_bytes()) => html(
            StatusCode::UNAUTHORIZED,
            page::login(&next, Some("That is not the token.")),
        ),
        Some(_) => with_cookie(redirect(&next), &token),
        None => redirect(&next),
    }
}

/// Lets a request through if no token is configured or it carries the
/// right one; turns `?token=` into the cookie.
pub(super) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    if request.uri().path() == "/login" {
        return next.run(request).await;
    }
    let (given, rest) = split_token(request.uri().query().unwrap_or_default());
    if let Some(given) = given {
        if expected.matches(given.as_bytes()) {
            let path = request.uri().path();
            let target = if rest.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{rest}")
            };
            return with_cookie(redirect(&target), &given);
        }
    } else if presented(request.headers()).is_some_and(|t| expected.matches(&t)) {
        return next.run(request).await;
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    if request.uri().path().starts_with("/api/") {
        json_error(
            StatusCode::UNAUTHORIZED,
            "a token is needed: the itemsaver_token cookie, Authorization: Bearer, or ?token=",
        )
    } else {
        html(StatusCode::UNAUTHORIZED, page::login(&path_and_query, None))
    }
}

/// A query string's `token`, and the query string without it.
fn split_token(query: &str) -> (Option<String>, String) {
    let mut given = None;
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key == "token" {
            given = Some(value.into_owned());
        } else {
            rest.append_pair(&key, &value);
        }
    }
    (given, rest.finish())
}

/// The token a request carries: the cookie, else a bearer header.
fn presented(headers: &HeaderMap) -> Option<Vec<u8>> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name == COOKIE {
                    let decoded: Vec<u8> =
                        url::form_urlencoded::parse(format!("t={value}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned().into_bytes())
                            .unwrap_or_default();
                    return Some(decoded);
                }
            }
        }
    }
    let bearer = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    bearer
        .strip_prefix("Bearer ")
        .map(|t| t.trim().as_bytes().to_vec())
}

fn with_cookie(mut response: Response, token: &str) -> Response {
    // Encoded: a token file may hold bytes a cookie cannot carry as is.
    let value: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
