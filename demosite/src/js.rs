//! `/js/...`: pages a script builds (issue 16), on when `SiteOptions::js`.
//! Without running the scripts a crawler sees almost empty shells; a
//! renderer sees the same profile table a server-rendered page has.
//!
//! - `/js/`: a shell; `/js/app.js` fetches `/api/js/list.json` and writes
//!   links to `/js/profile/{id}` (ids `1..=min(js_profiles, profiles)`,
//!   removed ones left out) and `/js/plain/{id}` (ids 1..=[`PLAIN_PAGES`]).
//! - `/js/profile/{id}`: a shell; `/js/profile.js` fetches
//!   `/api/js/profile/{id}.json` and writes the `<h1 class="name">` and the
//!   `<table class="profile">` of `/profile/{id}`, byte for byte.
//! - `/js/plain/{id}`: `/profile/{id}`'s server-rendered HTML.
//! - `/js/hang`: fetches `/js/never`, which answers (504) only after
//!   [`NEVER_SECS`] or when the server shuts down (so the page never goes
//!   network-idle in any render budget).
//! - `/js/loop`: a script that never returns.
//! - `/js/dialog`: `alert()` / `confirm()` in a loop.
//! - `/js/blocked`: fetches `http://internal.test:{port}/secret` (port of
//!   the request's `Host`) and the cloud metadata address; a renderer's
//!   guard must stop both.

use crate::site::{self, Site, View};

/// `/js/plain/{id}` exists for ids up to this.
pub const PLAIN_PAGES: u64 = 5;
/// How long `/js/never` keeps a request open: "never" for any render
/// budget, yet bounded, so a server shutting down gracefully is not held
/// forever.
pub const NEVER_SECS: u64 = 600;

/// `/js/app.js`.
pub const APP_JS: &str = r#"(function () {
  fetch('/api/js/list.json').then(function (r) { return r.json(); }).then(function (d) {
    var html = '<ul class="js-list">\n';
    d.profiles.forEach(function (id) {
      html += '<li><a href="/js/profile/' + id + '">profile ' + id + '</a></li>\n';
    });
    d.plain.forEach(function (id) {
      html += '<li><a href="/js/plain/' + id + '">plain ' + id + '</a></li>\n';
    });
    document.getElementById('app').innerHTML = html + '</ul>\n';
  });
})();
"#;

/// `/js/profile.js`: the rows are `Profile::write_table`'s, in its order.
pub const PROFILE_JS: &str = r#"(function () {
  var id = location.pathname.split('/').pop();
  fetch('/api/js/profile/' + id + '.json').then(function (r) {
    if (!r.ok) { throw new Error('status ' + r.status); }
    return r.json();
  }).then(function (p) {
    var rows = [['昵称', 'name', ''], ['性别', 'gender', ''], ['年龄', 'age', '岁'],
      ['身高', 'height', 'cm'], ['体重', 'weight', 'kg'], ['月收入', 'income', ''],
      ['婚况', 'marriage', ''], ['学历', 'education', ''], ['职业', 'occupation', ''],
      ['居住地', 'city', '']];
    var html = '<h1 class="name">' + p.name + '</h1>\n<table class="profile" data-id="' + p.id + '">\n';
    rows.forEach(function (r) {
      html += '<tr><th>' + r[0] + '</th><td data-field="' + r[1] + '">' + p[r[1]] + r[2] + '</td></tr>\n';
    });
    document.getElementById('app').innerHTML = html + '</table>\n';
  });
})();
"#;

fn shell(title: &str, app_attrs: &str, script: &str) -> site::Page {
    let body = format!("<div id=\"app\"{app_attrs}></div>\n{script}\n");
    site::small_page(title, "", &body)
}

fn id_in(rest: &str, prefix: &str, max: u64) -> Option<u64> {
    let s = rest.strip_prefix(prefix)?;
    if s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|id| (1..=max).contains(id))
}

/// Ids the `/js/` list links.
fn listed(site: &Site, view: &View) -> impl Iterator<Item = u64> {
    let g = view.generation;
    (1..=view.js_profiles.min(site.profile_count()))
        .filter(move |&id| !crate::generation::removed(id, g))
}

/// The HTML page at `/js/{rest}`, or `None`.
pub(crate) fn render(site: &Site, rest: &str, view: &View, origin: &str) -> Option<site::Page> {
    if rest == "blocked" {
        return Some(blocked(origin));
    }
    let script = |src: &str| format!("<script src=\"/js/{src}\"></script>");
    match rest {
        "" => return Some(shell("js", "", &script("app.js"))),
        "hang" => {
            return Some(shell(
                "hang",
                "",
                "<script>fetch('/js/never');</script>",
            ))
        }
        "loop" => return Some(shell("loop", "", "<script>while (true) {}</script>")),
        "dialog" => {
            return Some(shell(
                "dialog",
                "",
                "<script>for (var i = 0; i < 1000000; i++) { alert('hi ' + i); confirm('ok?'); }</script>",
            ))
        }
        _ => {}
    }
    if let Some(id) = id_in(rest, "profile/", view.js_profiles.min(site.profile_count())) {
        site.profile_at(id, view.generation)?;
        return Some(shell(
            "profile",
            &format!(" data-id=\"{id}\""),
            &script("profile.js"),
        ));
    }
    if let Some(id) = id_in(rest, "plain/", PLAIN_PAGES) {
        return site.render_at(
            &Site::profile_path(id),
            None,
            &View { js: false, ..*view },
            "",
        );
    }
    None
}

/// `/js/blocked` for a site reached at `origin` (`http://host:port`).
fn blocked(origin: &str) -> site::Page {
    let port = origin
        .rsplit_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("80");
    let script = format!(
        "<script>\nfetch('http://internal.test:{port}/secret').catch(function () {{}});\n\
         fetch('http://169.254.169.254/latest/meta-data/').catch(function () {{}});\n</script>"
    );
    shell("blocked", "", &script)
}

/// `/api/js/list.json`.
pub fn list_json(site: &Site, view: &View) -> String {
    let ids: Vec<String> = listed(site, view).map(|id| id.to_string()).collect();
    let plain: Vec<String> = (1..=PLAIN_PAGES).map(|id| id.to_string()).collect();
    format!(
        "{{\"profiles\":[{}],\"plain\":[{}]}}",
        ids.join(","),
        plain.join(",")
    )
}

/// `/api/js/profile/{id}.json`, or `None` (unlisted or removed).
pub fn profile_json(site: &Site, view: &View, file: &str) -> Option<String> {
    let id = id_in(
        file.strip_suffix(".json")?,
        "",
        view.js_profiles.min(site.profile_count()),
    )?;
    let p = site.profile_at(id, view.generation)?;
    // Every field is digits or table text without quotes or backslashes
    // (see `profile`), so no escaping is needed.
    Some(format!(
        "{{\"id\":{},\"name\":\"{}\",\"gender\":\"{}\",\"age\":{},\"height\":{},\"weight\":{},\
         \"income\":\"{}\",\"marriage\":\"{}\",\"education\":\"{}\",\"occupation\":\"{}\",\"city\":\"{}\"}}",
        p.id, p.name, p.gender, p.age, p.height, p.weight, p.income, p.marriage, p.education,
        p.occupation, p.city
    ))
}
