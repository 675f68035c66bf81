//! Issue 14: the streaming link parse of a 5 MB page of links holds a small
//! multiple of the page at most (no tree), where the tree path holds many
//! times it. Measured with a counting global allocator, so this file is its
//! own test binary and holds one test (a parallel test would count too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rpcsupport::{ParserSpec, Request};
use url::Url;
use worker::parse::{links, Budget, PageLimits};

/// The system allocator, keeping the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated beyond those in use before, while `f` runs.
fn peak_extra<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - before)
}

/// A 5 MB page of distinct links parses on the streaming path within 3
/// times its size (the tree path: over 5 times), with the same result.
#[test]
fn streaming_memory_is_a_small_multiple_of_the_page() {
    let mut text = String::from("<html><head><title>links</title></head><body>\n");
    let mut i = 0;
    while text.len() < 5 * 1024 * 1024 {
        text.push_str(&format!("<p><a href=\"/page/{i}\">page {i}</a></p>\n"));
        i += 1;
    }
    text.push_str("</body></html>\n");
    let url = Url::parse("http://127.0.0.1:8/").unwrap();
    let request = Request::new(url.as_str(), ParserSpec::named("links"), 0);
    let run = |stream: bool| {
        let limits = PageLimits {
            stream,
            ..PageLimits::default()
        };
        links::PARSER
            .run_with(&request, &url, &text, &Budget::new(limits))
            .unwrap()
    };
    let (streamed, stream_peak) = peak_extra(|| run(true));
    let (tree, tree_peak) = peak_extra(|| run(false));
    assert_eq!(streamed, tree);
    assert_eq!(streamed.limits.links_truncated, i - 10_000);
    let body = text.len();
    eprintln!(
        "{i} links in {body} bytes: streaming peak {stream_peak} bytes ({:.2}x), tree {tree_peak} ({:.2}x)",
        stream_peak as f64 / body as f64,
        tree_peak as f64 / body as f64
    );
    assert!(stream_peak < 3 * body, "streaming peak {stream_peak}");
    assert!(
        tree_peak > 5 * body,
        "tree peak {tree_peak}: the comparison means nothing"
    );
}
