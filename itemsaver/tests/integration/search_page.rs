//! The search page and its JSON API (issue 15), served on 127.0.0.1:0
//! over an embedded store, spoken to with plain HTTP/1.1: paging, sorting,
//! bounds, escaping, and the token (cookie, bearer, `?token=`, login form).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use itemsaver::ItemStore;
use rpcsupport::{Item, Token, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "s3cret token/with;odd=bytes";

struct Page {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn profile(n: usize) -> Item {
    let mut payload = BTreeMap::new();
    payload.insert("name".to_string(), Value::from(format!("user {n}")));
    payload.insert("age".to_string(), Value::Int(20 + n as i64));
    payload.insert(
        "city".to_string(),
        Value::from(if n.is_multiple_of(2) {
            "shanghai"
        } else {
            "beijing"
        }),
    );
    Item {
        url: format!("http://127.0.0.1:1/profile/{n}"),
        kind: "profile".into(),
        id: Some(format!("p{n}")),
        payload,
    }
}

/// A search page over `items`, asking for [`TOKEN`] if `token`.
async fn start(items: Vec<Item>, token: bool) -> Page {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> = Arc::new(itemsaver::open_embedded(dir.path()).unwrap());
    store.put_batch(items).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = token.then(|| Token::new(TOKEN).unwrap());
    tokio::spawn(itemsaver::http::serve(
        listener,
        store,
        token,
        std::future::pending(),
    ));
    Page { addr, _dir: dir }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request, `Connection: close`, read to the end.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Answer {
    request(addr, "GET", path, headers, "").await
}

/// The API pages through hits with total, prev and next, and `size` is bounded.
#[tokio::test]
async fn api_pages_and_bounds() {
    let page = start((0..25).map(profile).collect(), false).await;
    let first = get(page.addr, "/api/search?q=kind:profile&size=10", &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let json = first.json();
    assert_eq!(json["total"], 25);
    assert_eq!(json["items"].as_array().unwrap().len(), 10);
    assert_eq!(json["prev"], serde_json::Value::Null);
    assert_eq!(json["next"], 10);
    let last = get(page.addr, "/api/search?q=kind:profile&size=10&from=20", &[]).await;
    let json = last.json();
    assert_eq!(json["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        (json["prev"].clone(), json["next"].clone()),
        (10.into(), serde_json::Value::Null)
    );
    let filtered = get(page.addr, "/api/search?q=city%3Abeijing", &[])
        .await
        .json();
    assert_eq!(filtered["total"], 12);

    let too_big = get(page.addr, "/api/search?size=101", &[]).await;
    assert_eq!(too_big.status, 400);
    assert!(too_big.json()["error"].as_str().unwrap().contains("size"));
    let too_deep = get(page.addr, "/api/search?from=9995&size=10", &[]).await;
    assert_eq!(too_deep.status, 400);
    let long = format!("/api/search?q={}", "a".repeat(2000));
    assert_eq!(get(page.addr, &long, &[]).await.status, 400);
    let broken = get(page.addr, "/api/search?q=(unclosed", &[]).await;
    assert_eq!(broken.status, 400);
}

/// `/api/items/{id}` returns the item as saved, and 404 for an unknown id.
#[tokio::test]
async fn api_returns_one_item() {
    let page = start(vec![profile(7)], false).await;
    let found = get(page.addr, "/api/items/p7", &[]).await;
    assert_eq!(found.status, 200);
    assert_eq!(Item::from_json(&found.json()).unwrap(), profile(7));
    assert_eq!(get(page.addr, "/api/items/nope", &[]).await.status, 404);
}

/// `sort=age` and `sort=-age` order the hits by that number, on the page and in the API.
#[tokio::test]
async fn sorting_by_a_number() {
    let page = start((0..25).map(profile).collect(), false).await;
    let up = get(page.addr, "/api/search?sort=age&size=3", &[])
        .await
        .json();
    let ages: Vec<i64> = up["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["payload"]["age"].as_i64().unwrap())
        .collect();
    assert_eq!(ages, [20, 21, 22]);
    let down = get(page.addr, "/api/search?sort=-age&size=1", &[])
        .await
        .json();
    assert_eq!(down["items"][0]["payload"]["age"], 44);
    let html = get(page.addr, "/?sort=-age&size=1", &[]).await;
    assert!(html.body.contains("user 24"), "{}", html.body);
    assert!(html
        .body
        .contains("href=\"/?sort=-age&amp;size=1&amp;from=1\""));
}

/// Markup inside items is shown as text, script URLs are not links, and the page forbids scripts.
#[tokio::test]
async fn item_content_cannot_inject_markup() {
    let mut evil = profile(1);
    evil.url = "javascript:alert(document.cookie)".into();
    evil.payload.insert(
        "bio".into(),
        Value::from("<script>alert(1)</script><img src=x onerror=alert(2)>"),
    );
    let page = start(vec![evil], false).await;
    let html = get(page.addr, "/?q=%3Cscript%3E", &[]).await;
    assert!(!html.body.contains("<script"), "{}", html.body);
    let html = get(page.addr, "/", &[]).await;
    assert_eq!(html.status, 200);
    assert!(!html.body.contains("<script") && !html.body.contains("<img"));
    assert!(html.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.body.contains("href=\"javascript:"));
    let csp = html.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
}

/// With a token: nothing without it; `?token=` once sets an HttpOnly cookie and redirects; the cookie and a bearer header pass.
#[tokio::test]
async fn the_token_guards_page_and_api() {
    let page = start((0..3).map(profile).collect(), true).await;
    let anonymous = get(page.addr, "/?q=user", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body.contains("action=\"/login\""));
    assert!(!anonymous.body.contains("user 1"));
    assert_eq!(get(page.addr, "/api/search", &[]).await.status, 401);
    assert_eq!(get(page.addr, "/api/items/p1", &[]).await.status, 401);
    assert_eq!(get(page.addr, "/?token=wrong", &[]).await.status, 401);

    let encoded: String = url::form_urlencoded::byte_serialize(TOKEN.as_bytes()).collect();
    let once = get(page.addr, &format!("/?q=user&token={encoded}&from=0"), &[]).await;
    assert_eq!(once.status, 303);
    assert_eq!(once.header("location"), Some("/?q=user&from=0"));
    let cookie = once.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let with_cookie = get(
        page.addr,
        "/?q=user",
        &[&format!("Cookie: other=1; {pair}")],
    )
    .await;
    assert_eq!(with_cookie.status, 200);
    assert!(with_cookie.body.contains("3 hits"), "{}", with_cookie.body);
    let bearer = get(
        page.addr,
        "/api/search",
        &[&format!("Authorization: Bearer {TOKEN}")],
    )
    .await;
    assert_eq!(bearer.json()["total"], 3);
    let forged = get(page.addr, "/api/search", &["Cookie: itemsaver_token=guess"]).await;
    assert_eq!(forged.status, 401);
}

/// The login form sets the cookie for the right token, refuses a wrong one, and never redirects off the site.
#[tokio::test]
async fn login_form() {
    let page = start(vec![profile(1)], true).await;
    let form = "application/x-www-form-urlencoded";
    let encoded: String = url::form_urlencoded::byte_serialize(TOKEN.as_bytes()).collect();
    let body = format!("next=%2F%3Fq%3Duser&token={encoded}");
    let ok = request(
        page.addr,
        "POST",
        "/login",
        &[&format!("Content-Type: {form}")],
        &body,
    )
    .await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), Some("/?q=user"));
    assert!(ok
        .header("set-cookie")
        .unwrap()
        .starts_with("itemsaver_token="));
    let wrong = request(page.addr, "POST", "/login", &[], "token=nope").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let away = format!("next=%2F%2Fevil.example%2F&token={encoded}");
    let away = request(page.addr, "POST", "/login", &[], &away).await;
    assert_eq!(away.header("location"), Some("/"));
}
