#!/usr/bin/env python3
"""Splits a callgrind profile's instructions (exclusive cost per function)
into the crawl's stages, by the crate or library each function lives in.

    python3 bench/cgsplit.py /tmp/crawler-profile/callgrind.out.worker [PAGES]

With PAGES, also prints instructions per page. Used for bench/NOTES.md.
"""
import re
import subprocess
import sys
from collections import defaultdict

# First match wins, so more specific patterns come first.
STAGES = [
    ("parse: html5ever tokenizer + tree", r"html5ever|tendril|markup5ever|string_cache|scraper::html|web_atoms"),
    ("parse: selectors + our parsers", r"selectors::|cssparser|scraper::|worker::parse|precomputed_hash"),
    ("decode: charset (encoding_rs)", r"encoding_rs|worker::decode"),
    ("url: parse / resolve / normalize", r"/url-|url::|idna|percent_encoding|form_urlencoded|engine::scheduler"),
    ("store: tantivy indexing + commit", r"tantivy|fst|bitpacking|lz4|zstd|tantivy_"),
    ("json (store documents)", r"serde_json"),
    ("serialize: bincode + serde", r"bincode|serde"),
    ("rpc: tarpc + framing", r"tarpc|tokio_serde|tokio_util::codec|length_delimited"),
    ("fetch: reqwest / hyper / http", r"reqwest|hyper|/http-|http::|h2::|tower|httparse|want::"),
    ("compression", r"flate2|miniz|brotli|async_compression"),
    ("async runtime (tokio, futures)", r"tokio|mio|futures|parking_lot|crossbeam|async_channel|event_listener"),
    ("logging (tracing)", r"tracing"),
    ("alloc: malloc/free/realloc", r"malloc\.c|:malloc|:free|realloc|_int_|alloc::raw_vec|alloc::alloc"),
    ("memcpy/memmove/memset/strlen", r"memmove|memcpy|memset|memchr|memcmp|strlen|strchr"),
    ("kernel interface (libc syscalls)", r"libc\.so|ld-linux|syscall|epoll|pthread"),
    ("std / core (hash, fmt, strings)", r"/rustc/|std::|core::|hashbrown"),
]

def main():
    path = sys.argv[1]
    pages = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path],
                         capture_output=True, text=True, check=True).stdout
    totals = defaultdict(int)
    total = 0
    row = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+(.*)$")
    for line in out.splitlines():
        m = row.match(line)
        if not m:
            continue
        cost, name = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in name:
            total = cost
            continue
        for stage, pattern in STAGES:
            if re.search(pattern, name):
                totals[stage] += cost
                break
        else:
            totals["other"] += cost
    print(f"{path}: {total:,} instructions" + (f", {total // pages:,} per page" if pages else ""))
    for stage, cost in sorted(totals.items(), key=lambda kv: -kv[1]):
        per = f"{cost // pages:>9,} /page" if pages else ""
        print(f"  {100 * cost / total:5.1f}%  {per}  {stage}")

main()
