//! The demo site's parsers without a tree (issue 14): `city_list`, `city`
//! and `profile` read their pages in one pass through the [`Strict`] tree,
//! with their selectors as [`Compound`]s, and give what their tree paths
//! give. A page outside the strict subset, or one the parser would fail
//! on, goes to the tree path instead ([`read_tree`]), so errors and odd
//! markup come out exactly as before.

use rpcsupport::{Item, ParseError, ParseResult, Request};
use scraper::Html;
use url::Url;

use super::strict::{matches, Collect, Compound, Open, Strict};
use super::{scanner, Attr, StartTag};
use crate::parse::{city as city_parser, city_list as list_parser, profile as profile_parser};
use crate::parse::{follow, read_tree, Budget, Page};

/// `a[href]`.
const A_HREF: Compound = Compound {
    tag: Some("a"),
    classes: 0,
    attrs: 1 << Attr::Href as u16,
};

/// `.{CLASSES[bit]}`, `tag.{CLASSES[bit]}`.
const fn class(tag: Option<&'static str>, bit: u32) -> Compound {
    Compound {
        tag,
        classes: 1 << bit,
        attrs: 0,
    }
}

/// What a block-and-links parser selects: a block the page must have, and
/// lists of links (each a selector ending in an `<a href>`).
struct Spec {
    classes: &'static [&'static str],
    block: &'static [Compound],
    links: &'static [&'static [Compound]],
}

/// `city_list`: `.city-list`, `.city-list a[href]`.
static CITY_LIST: Spec = Spec {
    classes: &["city-list"],
    block: &[class(None, 0)],
    links: &[&[class(None, 0), A_HREF]],
};

/// `city`: `ul.profile-list`, `ul.profile-list a[href]`, then
/// `.pager a.next[href]`.
static CITY: Spec = Spec {
    classes: &["profile-list", "pager", "next"],
    block: &[class(Some("ul"), 0)],
    links: &[
        &[class(Some("ul"), 0), A_HREF],
        &[
            class(None, 1),
            Compound {
                classes: 1 << 2,
                ..A_HREF
            },
        ],
    ],
};

/// What a [`Spec`] finds on a page: whether the block is there, and the
/// anchors each list of links matched, by number in the scan.
struct Selected {
    spec: &'static Spec,
    block: bool,
    links: Vec<Vec<usize>>,
}

impl Collect for Selected {
    fn classes(&self) -> &'static [&'static str] {
        self.spec.classes
    }

    fn start(&mut self, open: &Open, ancestors: &[Open], _: &impl StartTag, anchor: Option<usize>) {
        self.block |= matches(self.spec.block, open, ancestors);
        let Some(anchor) = anchor else { return };
        for (list, chain) in self.links.iter_mut().zip(self.spec.links) {
            if matches(chain, open, ancestors) {
                list.push(anchor);
            }
        }
    }

    fn end(&mut self, _: &Open) {}

    fn wants_text(&self) -> bool {
        false
    }

    fn text(&mut self, _: &str) {}
}

/// Reads `text` through the strict tree into `collect`; `None` when the
/// page is outside the strict subset.
fn read<C: Collect>(text: &str, budget: &Budget, collect: C) -> Option<(super::Scan, C)> {
    let mut strict = Strict::new(budget.agent(), collect);
    scanner::scan(text, &mut strict);
    (!strict.odd).then_some((strict.model.scan, strict.collect))
}

/// The tree path of `parse`, for a page the stream leaves to it.
fn tree(
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
    parse: fn(&Page<'_>) -> Result<ParseResult, ParseError>,
) -> Result<ParseResult, ParseError> {
    let mut result = read_tree(
        &Html::parse_document(text),
        request,
        url,
        text,
        budget,
        parse,
    )?;
    result.page.tree_fallback = true;
    Ok(result)
}

/// A block-and-links parser's result: each list's links followed with
/// the parser `follows` names for it, at most `take` of each (`None`:
/// all), once the block was found.
fn links_result(
    request: &Request,
    url: &Url,
    budget: &Budget,
    (scan, selected): (super::Scan, Selected),
    follows: &[(&str, Option<usize>)],
) -> ParseResult {
    let base = scan.base(url, budget);
    let mut requests = Vec::new();
    for (list, &(parser, take)) in selected.links.into_iter().zip(follows) {
        let links = scan.links(budget, &base, list.into_iter());
        let take = take.unwrap_or(links.len());
        requests.extend(
            links
                .into_iter()
                .take(take)
                .map(|link| follow(request, link, parser)),
        );
    }
    let mut result = ParseResult {
        requests,
        ..ParseResult::default()
    };
    scan.read_meta(&mut result, &base, url, budget);
    result
}

fn selected(spec: &'static Spec) -> Selected {
    Selected {
        spec,
        block: false,
        links: vec![Vec::new(); spec.links.len()],
    }
}

/// `city_list`'s streaming path ([`list_parser::parse`]'s result).
pub fn city_list(
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
) -> Result<ParseResult, ParseError> {
    match read(text, budget, selected(&CITY_LIST)).filter(|(_, s)| s.block) {
        Some(read) => Ok(links_result(
            request,
            url,
            budget,
            read,
            &[(city_parser::PARSER.name, None)],
        )),
        None => tree(request, url, text, budget, list_parser::parse),
    }
}

/// `city`'s streaming path ([`city_parser::parse`]'s result).
pub fn city(
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
) -> Result<ParseResult, ParseError> {
    let Some(read) = read(text, budget, selected(&CITY)).filter(|(_, s)| s.block) else {
        return tree(request, url, text, budget, city_parser::parse);
    };
    let follows = [
        (profile_parser::PARSER.name, None),
        // Only the first next link; all are admitted (and counted), as
        // the tree path does.
        (city_parser::PARSER.name, Some(1)),
    ];
    let mut read = read;
    if !city_parser::follows_next(request) {
        // Not even looked for.
        read.1.links.truncate(1);
    }
    Ok(links_result(request, url, budget, read, &follows))
}

/// `profile`: `table.profile`, `[data-field]` in it, and
/// `.guess-you-like a[href]`.
const PROFILE_CLASSES: &[&str] = &["profile", "guess-you-like"];
const TABLE: &[Compound] = &[class(Some("table"), 0)];
const RECOMMENDED: &[Compound] = &[class(None, 1), A_HREF];

/// What `profile` reads: the first `table.profile` (its `data-id`), its
/// cells' fields and texts in page order, and the recommended anchors.
#[derive(Default)]
struct Profile {
    /// How many elements are open (every start has its end, a void
    /// element's right after it).
    depth: usize,
    /// The first `table.profile`: its depth while open, and its `data-id`.
    table: Option<(Option<usize>, Option<String>)>,
    cells: Vec<(String, String)>,
    /// The cells open now: their depth and index in `cells`.
    open_cells: Vec<(usize, usize)>,
    links: Vec<usize>,
}

impl Collect for Profile {
    fn classes(&self) -> &'static [&'static str] {
        PROFILE_CLASSES
    }

    fn start(
        &mut self,
        open: &Open,
        ancestors: &[Open],
        tag: &impl StartTag,
        anchor: Option<usize>,
    ) {
        self.depth += 1;
        match &self.table {
            None if matches(TABLE, open, ancestors) => {
                let id = tag.attr(Attr::DataId).map(str::to_owned);
                self.table = Some((Some(self.depth), id));
            }
            Some((Some(_), _)) => {
                if let Some(field) = tag.attr(Attr::DataField) {
                    self.open_cells.push((self.depth, self.cells.len()));
                    self.cells.push((field.to_owned(), String::new()));
                }
            }
            _ => {}
        }
        if anchor.is_some() && matches(RECOMMENDED, open, ancestors) {
            self.links.extend(anchor);
        }
    }

    fn end(&mut self, _: &Open) {
        if self
            .open_cells
            .last()
            .is_some_and(|&(d, _)| d == self.depth)
        {
            self.open_cells.pop();
        }
        if let Some((open, _)) = &mut self.table {
            if *open == Some(self.depth) {
                *open = None;
            }
        }
        self.depth -= 1;
    }

    fn wants_text(&self) -> bool {
        !self.open_cells.is_empty()
    }

    fn text(&mut self, text: &str) {
        for &(_, i) in &self.open_cells {
            self.cells[i].1.push_str(text);
        }
    }
}

/// A profile page read through the strict tree: its scan, recommended
/// anchors and item; `None` for a page the tree must read.
fn read_profile(url: &Url, text: &str, budget: &Budget) -> Option<(super::Scan, Vec<usize>, Item)> {
    let (scan, p) = read(text, budget, Profile::default())?;
    let (_, id) = p.table.as_ref()?;
    let cells = p.cells.iter().map(|(f, t)| (f, t));
    let item = profile_parser::item(url, id.as_deref(), cells)?;
    Some((scan, p.links, item))
}

/// `profile`'s streaming path ([`profile_parser::parse`]'s result).
pub fn profile(
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
) -> Result<ParseResult, ParseError> {
    let Some((scan, links, item)) = read_profile(url, text, budget) else {
        return tree(request, url, text, budget, profile_parser::parse);
    };
    let base = scan.base(url, budget);
    let requests = scan
        .links(budget, &base, links.into_iter())
        .into_iter()
        .map(|link| follow(request, link, profile_parser::PARSER.name))
        .collect();
    let mut result = ParseResult {
        requests,
        items: vec![item],
        ..ParseResult::default()
    };
    scan.read_meta(&mut result, &base, url, budget);
    Ok(result)
}

/// Whether the streaming path of the demo parser `name` reads `text`,
/// the page at `url`, itself rather than handing it to the tree (for
/// tests and measurements that must know the stream did the work);
/// `None` for another parser.
pub fn streams_whole(name: &str, url: &Url, text: &str) -> Option<bool> {
    let budget = Budget::new(crate::parse::PageLimits::default());
    let block = |spec| read(text, &budget, selected(spec)).is_some_and(|(_, s)| s.block);
    Some(match name {
        "city_list" => block(&CITY_LIST),
        "city" => block(&CITY),
        "profile" => read_profile(url, text, &budget).is_some(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
