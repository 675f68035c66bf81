//! Issue 14: the demo site's parsers (`city_list`, `city`, `profile`) give
//! on the streaming path exactly the tree path's `ParseResult` (items,
//! requests, counts, page meta) or the same error, on every page a demo
//! site serves read by each of them, and on those pages' markup bent into
//! what the strict tree must hand to the tree (and what it must not).
//! The pages each parser is meant for are read by the stream itself.
//!
//! Each page is decoded and cut by the prescan exactly as the worker does,
//! then parsed both ways with `rel="nofollow"` obeyed.

use rpcsupport::{ParseError, ParseResult, ParserSpec, Request};
use url::Url;
use worker::parse::{city, city_list, profile, stream, Budget, PageLimits, Parser};
use worker::{decode, prescan, WorkerConfig};

const PARSERS: [&Parser; 3] = [&city_list::PARSER, &city::PARSER, &profile::PARSER];

/// Pages compared, and what differs (the first few are printed).
#[derive(Default)]
struct Diffs {
    pages: usize,
    differ: Vec<String>,
    /// Pages meant for a parser that it left to the tree.
    fell_back: Vec<String>,
    /// Parses the stream did itself (the others went to the tree).
    streamed: usize,
}

impl Diffs {
    /// Parses `text` from `url` with `parser` both ways (`args`: its
    /// arguments); `meant`: the page is one this parser reads on a crawl.
    fn compare(
        &mut self,
        parser: &Parser,
        args: &[(&str, &str)],
        url: &str,
        text: &str,
        meant: bool,
    ) {
        let config = WorkerConfig::default();
        let prefix = prescan::html_prefix(text, config.max_html_nodes, config.max_html_depth);
        let text = &text[..prefix.end];
        let page_url = Url::parse(url).unwrap();
        let mut spec = ParserSpec::named(parser.name);
        for (k, v) in args {
            spec.args.insert(k.to_string(), v.to_string());
        }
        let request = Request::new(url, spec, 1);
        let run = |stream: bool| -> Result<ParseResult, ParseError> {
            let limits = PageLimits {
                stream,
                ..PageLimits::from_config(&config)
            };
            let budget = Budget::new(limits).obeying(true, "crawler");
            parser.run_with(&request, &page_url, text, &budget)
        };
        let (tree, mut streamed) = (run(false), run(true));
        self.pages += 1;
        let whole = stream::streams_whole(parser.name, &page_url, text) == Some(true);
        // The stream says when it left the page to the tree, and only then;
        // otherwise the two results are the same.
        if let Ok(r) = &mut streamed {
            if r.page.tree_fallback == whole {
                self.differ.push(format!(
                    "{} on {url}: tree_fallback {} but streamed whole {whole}",
                    parser.name, r.page.tree_fallback
                ));
            }
            r.page.tree_fallback = false;
        }
        if tree != streamed {
            self.differ.push(format!(
                "{} on {url}: tree {tree:?}\nstream {streamed:?}\npage {text:?}",
                parser.name
            ));
        }
        self.streamed += usize::from(whole);
        if meant && !whole {
            self.fell_back.push(format!("{} on {url}", parser.name));
        }
    }

    fn assert_none(&self, what: &str) {
        assert!(self.pages > 0, "{what}: no pages compared");
        assert!(
            self.differ.is_empty(),
            "{what}: {} of {} parses differ:\n{}",
            self.differ.len(),
            self.pages,
            self.differ
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            self.fell_back.is_empty(),
            "{what}: {} pages left to the tree: {:?}",
            self.fell_back.len(),
            &self.fell_back[..self.fell_back.len().min(5)]
        );
        eprintln!(
            "{what}: {} parses ({} streamed), both paths agree",
            self.pages, self.streamed
        );
    }
}

/// Every page of a 400-profile demo site with the open web on (the city
/// list, every city page, every profile in UTF-8 and GBK, with and without
/// `<base href>`, their print views with a canonical link, the `/meta/`
/// pages), each read by all three parsers: the meant one streams, the
/// others fail or agree through the tree.
#[test]
fn demo_site_pages_agree() {
    let mut diffs = Diffs::default();
    for (url, page, meant) in crate::common::demo_pages(400) {
        let text = decode::decode(&page.body, Some(page.encoding.content_type())).text;
        for parser in PARSERS {
            diffs.compare(parser, &[], &url, &text, parser.name == meant);
        }
        if meant == "city" {
            diffs.compare(&city::PARSER, &[("next", "false")], &url, &text, true);
        }
    }
    assert!(diffs.pages > 3 * 1200, "only {} parses", diffs.pages);
    diffs.assert_none("demo site");
}

/// The demo pages with their markup bent, one way at a time: what the
/// tree builder reads as written (upper case, entities, attributes
/// unquoted or repeated, comments, void and self-closed tags) and what it
/// does not (cells left open, stray text in a table, blocks in a `<p>`,
/// misnested and stray end tags, forms, templates, SVG, a second
/// `<body>`), each parsed by the three parsers both ways.
#[test]
fn bent_demo_pages_agree() {
    let site = demosite::Site::new(demosite::SiteConfig {
        profiles: 60,
        cities: 3,
        page_size: 20,
    });
    let mut pages = vec![(
        "http://127.0.0.1:8/".to_owned(),
        site.render("/", None).unwrap(),
    )];
    pages.push((
        "http://127.0.0.1:8/city/x".to_owned(),
        site.render_city(1, 1).unwrap(),
    ));
    for id in [3, 4, 13, 17, 40] {
        let url = format!("http://127.0.0.1:8/profile/{id}");
        pages.push((url, site.render_profile(id).unwrap()));
    }
    let bends: &[(&str, &str)] = &[
        ("<td", "<TD"),
        ("</td>", "</TD >"),
        ("class=\"profile\"", "class=profile"),
        ("class=\"profile\"", "class=\"x  profile\tbig\" class=other"),
        ("class=\"profile\"", "CLASS=\"Profile\""),
        ("data-id=\"", "data-id=\" "),
        ("data-id=\"", "data-ID=\"x"),
        (
            "data-field=\"age\">",
            "data-field=\"age\"> <!-- c --> &#32;",
        ),
        (
            "data-field=\"name\">",
            "data-field=\"name\">&lt;&amp;&nbsp;\r\n",
        ),
        (
            "data-field=\"name\">",
            "data-field=\"name\"><b>x</b><span data-field=\"city\">y</span>",
        ),
        (
            "data-field=\"name\">",
            "data-field=\"name\"><br/><img src=a data-field=\"height\">",
        ),
        (
            "data-field=\"name\">",
            "data-field=\"name\"><script>s</script>",
        ),
        ("data-field=\"name\">", "data-field=\"name\">\u{0}"),
        ("</td>", ""),
        ("</tr>", ""),
        ("<tr>", "<tr>x"),
        ("<tr>", "<tr><div data-field=\"name\">moved</div>"),
        ("<table", "<p><table"),
        ("<table", "<a href=/x><table"),
        ("<h2>", "<p><h2>"),
        ("<h2>", "<h2><h3>"),
        ("</li>", "</span></li>"),
        ("<li>", "<li><li>"),
        ("<li>", "<li><a href=/n><a href=/m>"),
        ("</a>", "</b></a>"),
        ("<ul", "<form><ul"),
        ("<ul", "<template><ul"),
        ("<ul", "<svg><ul"),
        (
            "<div class=\"guess-you-like\">",
            "<body class=\"guess-you-like\"><div>",
        ),
        (
            "<div class=\"guess-you-like\">",
            "</body><div class=\"guess-you-like\">",
        ),
        (
            "<div class=\"guess-you-like\">",
            "<div class=\"guess-you-like\"><tbody>",
        ),
        ("<div class=\"nav\">", "<div class=\"nav\"></div>"),
        ("<head>", "<head><div>"),
        ("<head>", "<head>text"),
        ("<html lang=\"zh-CN\">", ""),
        ("<html lang=\"zh-CN\">", "<html><html class=\"pager\">"),
        ("<!DOCTYPE html>", ""),
        ("<body>", "<body><frameset>"),
        ("<a ", "<a rel=nofollow "),
        ("<a class=\"next\"", "<a class=\"next\" rel=\"nofollow\""),
        (
            "<ul class=\"profile-list\">",
            "<ul class=\"profile-list\"></ul><ul>",
        ),
        ("<div class=\"city-list\">", "<div class=\"city-list\"><p>"),
        ("</body>", "<p><a href=/after>after</a>"),
        ("</table>", ""),
    ];
    let mut diffs = Diffs::default();
    for (url, page) in &pages {
        let text = decode::decode(&page.body, Some(page.encoding.content_type())).text;
        for &(from, to) in bends {
            // The first and the last occurrence, apart.
            for at in [text.find(from), text.rfind(from)].into_iter().flatten() {
                let bent = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
                for parser in PARSERS {
                    diffs.compare(parser, &[], url, &bent, false);
                }
            }
        }
    }
    assert!(diffs.pages > 1000, "only {} parses", diffs.pages);
    // Both ways out of the strict tree are taken, many times each.
    assert!(
        diffs.streamed > 100 && diffs.pages - diffs.streamed > 200,
        "{} of {} streamed",
        diffs.streamed,
        diffs.pages
    );
    diffs.assert_none("bent demo pages");
}
