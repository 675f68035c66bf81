//! Which requests need a browser, and what the crawl learns about that.
//!
//! A request's render mode is, first found: its `hints.render` (the engine
//! set it, having learnt that pages of its parser on its host need a
//! browser), its rule's `render` key ([`Rules::render_of`]), its parser's
//! `render` argument ([`render_arg`]); else `never`. Requests of any mode
//! but `never` go only to workers that can render ([`crate::pool`]); the
//! worker decides, under `auto`, whether the page really needs it.
//!
//! [`Learnt`] remembers the host and parser of each page that `auto` had
//! to render (its body was a script shell, or it lacked what the parser
//! extracts), so later requests for them ask for rendering straight away
//! instead of being fetched twice. [`RenderWait`] decides when to say, once,
//! that render requests are waiting for a rendering worker.

use std::collections::HashSet;

use rpcsupport::rules::{render_arg, Rules};
use rpcsupport::{ParserSpec, Render, RenderReason, Request};

/// How pages of `spec` are rendered, by its rule (when `rules` has it) or
/// its `render` argument; an unreadable argument is an error naming it.
pub fn render_mode_of(rules: Option<&Rules>, spec: &ParserSpec) -> Result<Render, String> {
    match rules {
        Some(set) => set.render_of(spec),
        None => render_arg(spec),
    }
}

/// The render mode of `request` (see the module doc). A bad `render`
/// argument reads as `never`: the seed and sitemap parsers were checked at
/// start, and the worker refuses a bad argument with a page error.
pub fn render_mode(request: &Request, rules: Option<&Rules>) -> Render {
    request
        .hints
        .render
        .unwrap_or_else(|| render_mode_of(rules, &request.parser).unwrap_or(Render::Never))
}

/// Whether `request` must go to a worker that can render.
pub fn needs_browser(request: &Request, rules: Option<&Rules>) -> bool {
    render_mode(request, rules) != Render::Never
}

/// Host and parser pairs whose pages needed rendering under `auto`.
#[derive(Debug, Default)]
pub struct Learnt {
    pairs: HashSet<(String, ParserSpec)>,
    /// Most pairs kept (`max_render_learnt`).
    max: usize,
    /// Pairs not learnt because the set was full.
    pub refused: u64,
}

impl Learnt {
    /// An empty set that keeps at most `max` pairs.
    pub fn new(max: usize) -> Learnt {
        Learnt {
            max,
            ..Learnt::default()
        }
    }

    /// A page of `request` was rendered for `reason`: if `auto` found it
    /// needed a browser, its host and parser are remembered. Returns
    /// whether a new pair was learnt.
    pub fn page_rendered(&mut self, request: &Request, reason: RenderReason) -> bool {
        if !matches!(reason, RenderReason::Missing | RenderReason::ScriptShell) {
            return false;
        }
        let Some(host) = host_key(&request.url) else {
            return false;
        };
        let pair = (host, request.parser.clone());
        if self.pairs.contains(&pair) {
            return false;
        }
        if self.pairs.len() >= self.max {
            self.refused += 1;
            return false;
        }
        self.pairs.insert(pair)
    }

    /// Before dispatch: a request with no render hint whose host and parser
    /// were learnt asks for rendering (`always`, which the worker reports
    /// as [`RenderReason::Learnt`]).
    pub fn hint(&self, request: &mut Request) {
        if self.pairs.is_empty() || request.hints.render.is_some() {
            return;
        }
        if let Some(host) = host_key(&request.url) {
            // The lookup needs an owned key; pairs are few and this runs
            // once per dispatch, next to an RPC.
            if self.pairs.contains(&(host, request.parser.clone())) {
                request.hints.render = Some(Render::Always);
            }
        }
    }

    /// Pairs learnt so far.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether nothing was learnt.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// `host[:port]` of a URL, lowercased (the URL is normalized already).
fn host_key(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// Whether to warn that render requests wait with no worker able to
/// render: once when it starts, not per page, and again only after a
/// rendering worker was seen in between.
#[derive(Debug, Default)]
pub struct RenderWait {
    warned: bool,
}

impl RenderWait {
    /// At a tick: `waiting` render requests, `rendering` workers up.
    /// Returns `Some(waiting)` when the warning is due.
    pub fn tick(&mut self, waiting: usize, rendering: usize) -> Option<usize> {
        if rendering > 0 {
            self.warned = false;
            return None;
        }
        if waiting == 0 || self.warned {
            return None;
        }
        self.warned = true;
        Some(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcsupport::rules::{parse_file, Builtins};

    fn req(url: &str, parser: ParserSpec) -> Request {
        Request::new(url, parser, 0)
    }

    /// The hint wins over the rule, the rule over the argument; no word
    /// at all is `never`, and a bad argument is an error at start but
    /// `never` on a request.
    #[test]
    fn render_mode_resolution() {
        let rules = Rules::check(
            parse_file(
                "[parsers.js]\nrender = \"always\"\n[parsers.plain]\nfollow = [{ parser = \"js\" }]\n",
            )
            .unwrap(),
            Builtins::Unchecked,
        )
        .unwrap();
        let js = rules.spec("js");
        let plain = rules.spec("plain");
        let mut auto = ParserSpec::named("profile");
        auto.args.insert("render".into(), "auto".into());
        let mut bad = ParserSpec::named("profile");
        bad.args.insert("render".into(), "sometimes".into());

        assert_eq!(
            render_mode(&req("http://h/", js.clone()), Some(&rules)),
            Render::Always
        );
        assert_eq!(
            render_mode(&req("http://h/", plain), Some(&rules)),
            Render::Never
        );
        assert_eq!(
            render_mode(&req("http://h/", auto.clone()), None),
            Render::Auto
        );
        assert_eq!(
            render_mode(&req("http://h/", auto.clone()), Some(&rules)),
            Render::Auto
        );
        assert_eq!(
            render_mode(&req("http://h/", ParserSpec::named("p")), None),
            Render::Never
        );
        let mut hinted = req("http://h/", js);
        hinted.hints.render = Some(Render::Never);
        assert_eq!(
            render_mode(&hinted, Some(&rules)),
            Render::Never,
            "the hint wins"
        );
        assert!(render_mode_of(None, &bad)
            .unwrap_err()
            .contains("sometimes"));
        assert_eq!(render_mode(&req("http://h/", bad), None), Render::Never);
        assert!(needs_browser(&req("http://h/", auto), None));
    }

    /// A page `auto` had to render teaches its host and parser: later
    /// requests for the pair (and only those) ask for `always`; a page
    /// rendered because it was asked to teaches nothing; the set is
    /// bounded.
    #[test]
    fn learning_is_per_host_and_parser_and_bounded() {
        let p = ParserSpec::named("profile");
        let q = ParserSpec::named("other");
        let mut l = Learnt::new(2);
        assert!(!l.page_rendered(&req("http://a.test/1", p.clone()), RenderReason::Always));
        assert!(!l.page_rendered(&req("http://a.test/1", p.clone()), RenderReason::Learnt));
        assert!(l.page_rendered(
            &req("http://a.test/1", p.clone()),
            RenderReason::ScriptShell
        ));
        assert!(!l.page_rendered(&req("http://a.test/2", p.clone()), RenderReason::Missing));
        let mut same = req("http://a.test/9", p.clone());
        l.hint(&mut same);
        assert_eq!(same.hints.render, Some(Render::Always));
        for mut other in [
            req("http://a.test/9", q.clone()),
            req("http://b.test/9", p.clone()),
            req("http://a.test:8080/9", p.clone()),
        ] {
            l.hint(&mut other);
            assert_eq!(other.hints.render, None, "{}", other.url);
        }
        let mut asked = req("http://a.test/9", p.clone());
        asked.hints.render = Some(Render::Never);
        l.hint(&mut asked);
        assert_eq!(asked.hints.render, Some(Render::Never), "a hint stays");
        assert!(l.page_rendered(&req("http://b.test/1", p.clone()), RenderReason::Missing));
        assert!(!l.page_rendered(&req("http://c.test/1", p), RenderReason::Missing));
        assert_eq!((l.len(), l.refused), (2, 1));
    }

    /// The warning comes once while render requests wait with no
    /// rendering worker, and again only after one was up in between.
    #[test]
    fn render_wait_warns_once() {
        let mut w = RenderWait::default();
        assert_eq!(w.tick(0, 0), None);
        assert_eq!(w.tick(7, 0), Some(7));
        assert_eq!(w.tick(9, 0), None);
        assert_eq!(w.tick(9, 1), None);
        assert_eq!(w.tick(3, 0), Some(3));
    }
}
