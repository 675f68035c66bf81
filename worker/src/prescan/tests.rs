//! The prescan's cuts: node and depth limits, and what it leaves intact.

use super::*;

fn depth_of(html: &str) -> usize {
    // The smallest max_depth that does not cut.
    (1..10_000)
        .find(|&d| !html_prefix(html, usize::MAX, d).is_cut(html))
        .unwrap()
}

/// Ordinary pages are not cut, and their nodes are counted.
#[test]
fn ordinary_pages_pass() {
    let html = r#"<!DOCTYPE html><html><head><meta charset=utf-8><title>a < b</title>
        <script>if (a<b) { document.write("<div><div><div>") }</script></head>
        <body><!-- <div><div> --><p>one<p>two<ul><li>a<li>b</ul>
        <table><tr><td>1<td>2<tr><td>3</table><img src="x>y"><br/></body></html>"#;
    let p = html_prefix(html, 1000, 8);
    assert_eq!(p.end, html.len());
    // html, head, meta+charset, title, script, body, p, p, ul, li, li,
    // table, tr, td, td, tr, td, img+src, br.
    assert_eq!(p.nodes, 21);
    assert!(depth_of(html) <= 5, "{}", depth_of(html));
}

/// Deep nesting is cut at the first tag past the depth, on a char
/// boundary, whatever case or stray end tags hide it.
#[test]
fn deep_nesting_is_cut() {
    let deep = format!(
        "<html><body>{}é{}",
        "<div>".repeat(1000),
        "</div>".repeat(1000)
    );
    let p = html_prefix(&deep, usize::MAX, 512);
    assert_eq!(p.end, "<html><body>".len() + 512 * 5);
    assert!(deep.is_char_boundary(p.end));
    for hidden in [
        "<DIV>".repeat(1000),
        "<span><div></span>".repeat(600),
        "<div></x>".repeat(1000),
        "<div/>".repeat(1000),
        "<b><i>".repeat(600),
    ] {
        assert!(
            html_prefix(&hidden, usize::MAX, 512).is_cut(&hidden),
            "{}",
            &hidden[..20]
        );
    }
}

/// Siblings that close each other do not add depth.
#[test]
fn implied_ends_do_not_nest() {
    for flat in [
        "<p>x".repeat(2000),
        "<li>x".repeat(2000),
        "<td>x".repeat(2000),
        "<option>x".repeat(2000),
        "<a href=1>x".repeat(2000),
        "<div>x</div>".repeat(2000),
        "<svg><path/><path/></svg>".repeat(2000),
        "<br><img src=1><hr>".repeat(2000),
    ] {
        assert!(depth_of(&flat) <= 2, "{}: {}", &flat[..12], depth_of(&flat));
    }
}

/// Elements and attributes both count towards the node limit.
#[test]
fn nodes_are_limited() {
    let html = "<a href=/x title='t>t' data-x>x</a>".repeat(10);
    let p = html_prefix(&html, 8, 512);
    assert_eq!(p.nodes, 8);
    assert_eq!(p.end, html.len() / 10 * 2);
    assert_eq!(html_prefix(&html, usize::MAX, 512).nodes, 40);
}

/// Text that only looks like markup is skipped without counting.
#[test]
fn text_is_not_tags() {
    let text = "a < b, 1<2, <3 <!-- <div> --> <![CDATA[<div>]]> <?php <div> ?> </ x>";
    assert_eq!(html_prefix(text, usize::MAX, 1).nodes, 0);
    let raw = format!("<textarea>{}</textarea><p>", "<div>".repeat(100));
    assert_eq!(depth_of(&raw), 1);
}

/// The stack a thread keeps between pages answers as a fresh one would,
/// after pages cut with elements open or with odd markup, and a page with
/// more names than are kept, or nested deeper than is kept, leaves a fresh
/// table behind.
#[test]
fn kept_stack_answers_as_a_fresh_one() {
    let many_names: String = (0..NAMES_KEPT + 10).map(|i| format!("<x{i}>")).collect();
    let pages = [
        format!("<html><body>{}", "<div><p>".repeat(300)),
        "<p>a</div></p><div></div><svg><g/></svg>".repeat(50),
        "<table><tr><td><ul><li>x</table>".repeat(40),
        many_names.clone(),
        "<div><span><div></span>".repeat(400),
        "<b><i>".repeat(DEPTH_KEPT),
        "</li><li></ul><p>".repeat(100),
        // Leaves a <span> open; the next page's stray </span> must not
        // find it.
        "<div><div><span>".to_string(),
        "<b><b><b><b></span><i><i>".to_string(),
    ];
    for round in 0..2 {
        for page in &pages {
            for (nodes, depth) in [(usize::MAX, 512), (100, 8), (1000, usize::MAX), (100, 5)] {
                let kept = html_prefix(page, nodes, depth);
                let fresh = prefix_with(page, nodes, depth, &mut Stack::default());
                assert_eq!(
                    (kept.end, kept.nodes),
                    (fresh.end, fresh.nodes),
                    "round {round}, {}",
                    &page[..30]
                );
            }
        }
    }
    html_prefix(&many_names, usize::MAX, 512);
    STACK.with(|s| assert!(s.borrow().names.names.is_empty()));
    html_prefix("<html><div><p>", usize::MAX, 512);
    STACK.with(|s| assert_eq!(s.borrow().names.names.len(), 3));
    let deep = "<b><i>".repeat(DEPTH_KEPT);
    html_prefix(&deep, usize::MAX, usize::MAX);
    STACK.with(|s| assert!(s.borrow().names.names.is_empty()));
    // Many names each open a little deep: room kept across all names.
    let wide: String = (0..40).map(|i| format!("<n{i}>").repeat(20)).collect();
    html_prefix(&wide, usize::MAX, usize::MAX);
    STACK.with(|s| assert!(s.borrow().names.names.is_empty()));
}
