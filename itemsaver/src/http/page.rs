//! The HTML of the search page and the login form: plain server-rendered
//! HTML with one inline stylesheet, no script, readable from a phone's
//! width up. Everything that comes from an item or the URL goes through
//! [`escape`]; only `http:`/`https:` URLs become links.

use std::fmt::Write as _;

use super::{SearchPage, SearchParams, MAX_QUERY_BYTES};

/// Longest payload value shown on a card, in characters; the rest is cut
/// with "…" (the JSON link has it whole), so a page of 100 large items
/// stays small. Default 2000.
pub const MAX_SHOWN_CHARS: usize = 2000;

const STYLE: &str = "
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b6470;--line:#d6dae0;--card:#fff;--bg:#f4f5f7;--accent:#0b57d0}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa3ad;--line:#363c44;--card:#1d2127;--bg:#14171b;--accent:#8ab4f8}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:56rem;margin:0 auto;padding:0 1rem}
header{padding-top:1rem}
h1{font-size:1.15rem;margin:0 0 .6rem}
h1 a{color:inherit;text-decoration:none}
form.search{display:flex;flex-wrap:wrap;gap:.5rem}
form.search input{font:inherit;padding:.5rem .6rem;border:1px solid var(--line);border-radius:6px;background:var(--card);color:inherit;min-width:0}
#q{flex:1 1 18rem}
#sort{flex:0 1 9rem}
button{font:inherit;padding:.5rem 1rem;border:0;border-radius:6px;background:var(--accent);color:#fff;cursor:pointer}
.summary{color:var(--muted);margin:.9rem 0 .5rem}
.error{background:#fde7e9;color:#8a1020;border-radius:6px;padding:.6rem .8rem}
ol.cards{list-style:none;margin:0;padding:0;display:grid;gap:.7rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem .9rem;overflow-wrap:anywhere}
.card h2{font-size:1rem;margin:0 0 .25rem;font-weight:600}
.card a{color:var(--accent)}
.meta{margin:0 0 .5rem;color:var(--muted);font-size:.9rem}
.kind{display:inline-block;border:1px solid var(--line);border-radius:99px;padding:0 .5rem;margin-right:.4rem}
dl{display:grid;grid-template-columns:minmax(5rem,max-content) 1fr;gap:.15rem .9rem;margin:0}
dt{color:var(--muted)}
dd{margin:0;white-space:pre-wrap}
nav.pager{display:flex;justify-content:space-between;align-items:center;gap:.5rem;margin:1rem 0}
nav.pager a,nav.pager span.off{padding:.45rem .9rem;border:1px solid var(--line);border-radius:6px;background:var(--card);text-decoration:none;color:var(--accent)}
nav.pager span.off{color:var(--muted)}
footer{color:var(--muted);font-size:.85rem;padding-bottom:2rem}
footer a{color:inherit}
@media (max-width:30rem){dl{grid-template-columns:1fr}dt{margin-top:.3rem}}
";

/// `text` made safe for HTML text and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
}

/// The search page: the form, then the hits or the error.
pub fn search(params: &SearchParams, result: Result<&SearchPage, &str>) -> String {
    let mut out = String::new();
    let title = if params.q.is_empty() {
        "itemsaver search".to_owned()
    } else {
        format!("{} · itemsaver search", params.q)
    };
    head(&mut out, &title);
    let _ = write!(
        out,
        "<header><h1><a href=\"/\">itemsaver search</a></h1>\
         <form class=\"search\" method=\"get\" action=\"/\" role=\"search\">\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{q}\" maxlength=\"{MAX_QUERY_BYTES}\" \
         placeholder=\"city:shanghai age:[20 TO 30]\" aria-label=\"Query\" autofocus>\
         <input id=\"sort\" name=\"sort\" value=\"{sort}\" placeholder=\"sort: age, -age\" \
         aria-label=\"Sort by a number field; - for largest first\">",
        q = escape(&params.q),
        sort = escape(params.sort.as_deref().unwrap_or_default()),
    );
    if params.size != super::DEFAULT_PAGE_SIZE {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"size\" value=\"{}\">",
            params.size
        );
    }
    out.push_str("<button type=\"submit\">Search</button></form></header><main>");
    match result {
        Err(message) => {
            let _ = write!(
                out,
                "<p class=\"error\" id=\"error\">{}</p>",
                escape(message)
            );
        }
        Ok(found) => hits(&mut out, params, found),
    }
    let api = params.query_string(params.from);
    let _ = write!(
        out,
        "</main><footer><p>Query language as in <code>itemsaver search</code>: free text, \
         <code>field:value</code>, <code>age:[20 TO 30]</code>, <code>age:&gt;30</code>, \
         AND / OR / NOT, <code>\"a phrase\"</code>. \
         <a id=\"json\" href=\"/api/search?{}\">This page as JSON</a>. \
         Everything: <code>itemsaver export</code>.</p></footer></body></html>",
        escape(&api)
    );
    out
}

fn hits(out: &mut String, params: &SearchParams, found: &SearchPage) {
    if found.items.is_empty() {
        let _ = write!(
            out,
            "<p class=\"summary\" id=\"total\" data-total=\"{}\">{} hits</p>",
            found.total, found.total
        );
    } else {
        let first = u64::from(found.from) + 1;
        let last = u64::from(found.from) + found.items.len() as u64;
        let _ = write!(
            out,
            "<p class=\"summary\" id=\"total\" data-total=\"{}\">{} hits, showing {first} to {last}</p>",
            found.total, found.total
        );
    }
    let _ = write!(out, "<ol class=\"cards\" start=\"{}\">", found.from + 1);
    for item in &found.items {
        card(out, item);
    }
    out.push_str("</ol>");
    if found.prev.is_none() && found.next.is_none() {
        return;
    }
    out.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
    match found.prev {
        Some(from) => {
            let _ = write!(
                out,
                "<a id=\"prev\" rel=\"prev\" href=\"/?{}\">← Previous</a>",
                escape(&params.query_string(from))
            );
        }
        None => out.push_str("<span class=\"off\">← Previous</span>"),
    }
    let size = u64::from(found.size.max(1));
    let _ = write!(
        out,
        "<span id=\"page\">Page {} of {}</span>",
        u64::from(found.from) / size + 1,
        found.total.div_ceil(size).max(1)
    );
    match found.next {
        Some(from) => {
            let _ = write!(
                out,
                "<a id=\"next\" rel=\"next\" href=\"/?{}\">Next →</a>",
                escape(&params.query_string(from))
            );
        }
        None => out.push_str("<span class=\"off\">Next →</span>"),
    }
    out.push_str("</nav>");
}

/// One item: its URL (a link only if http or https), kind, id with a link
/// to its JSON, and its payload keys and values.
fn card(out: &mut String, item: &serde_json::Value) {
    let text = |key: &str| item[key].as_str().unwrap_or_default();
    let (url, kind, id) = (text("url"), text("kind"), text("id"));
    let _ = write!(out, "<li class=\"card\" data-id=\"{}\"><h2>", escape(id));
    let linkable = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if linkable {
        let _ = write!(
            out,
            "<a href=\"{0}\" rel=\"noopener noreferrer nofollow\">{0}</a>",
            escape(url)
        );
    } else {
        out.push_str(&escape(url));
    }
    let id_path: String = url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        // form encoding writes a space as `+`; a path needs %20.
        .replace('+', "%20");
    let _ = write!(
        out,
        "</h2><p class=\"meta\"><span class=\"kind\">{}</span><code>{}</code> · \
         <a href=\"/api/items/{}\">JSON</a></p><dl>",
        escape(kind),
        escape(id),
        escape(&id_path)
    );
    if let Some(payload) = item["payload"].as_object() {
        for (key, value) in payload {
            let shown = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(
                out,
                "<dt>{}</dt><dd>{}</dd>",
                escape(key),
                escape(&shorten(&shown))
            );
        }
    }
    out.push_str("</dl></li>");
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The form asking for the token; `next` is where to go once it is right.
pub fn login(next: &str, error: Option<&str>) -> String {
    let mut out = String::new();
    head(&mut out, "itemsaver search: token needed");
    out.push_str("<header><h1>itemsaver search</h1></header><main>");
    if let Some(error) = error {
        let _ = write!(out, "<p class=\"error\" id=\"error\">{}</p>", escape(error));
    }
    let _ = write!(
        out,
        "<p class=\"summary\">This itemsaver needs its RPC token (<code>[rpc] token_file</code> \
         or <code>CRAWLER_RPC_TOKEN</code>).</p>\
         <form class=\"search\" method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <input type=\"password\" id=\"q\" name=\"token\" aria-label=\"Token\" \
         placeholder=\"token\" autocomplete=\"current-password\" autofocus>\
         <button type=\"submit\">Sign in</button></form></main></body></html>",
        escape(next)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markup in items and queries comes out as text; script URLs are not links.
    #[test]
    fn untrusted_values_are_escaped() {
        let found = SearchPage {
            q: "<q>".into(),
            sort: None,
            from: 0,
            size: 10,
            total: 1,
            items: vec![serde_json::json!({
                "url": "javascript:alert(1)",
                "kind": "<b>k</b>",
                "id": "x\"onmouseover=\"y",
                "payload": {"<k>": "<script>alert(1)</script>", "n": 1},
            })],
            prev: None,
            next: None,
        };
        let params = SearchParams {
            q: "\"><script>".into(),
            size: 10,
            ..SearchParams::default()
        };
        let html = search(&params, Ok(&found));
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>k"));
        assert!(!html.contains("href=\"javascript"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("x&quot;onmouseover=&quot;y"));
    }

    /// Long values are cut on a character boundary.
    #[test]
    fn long_values_are_cut() {
        let long = "é".repeat(MAX_SHOWN_CHARS + 5);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
