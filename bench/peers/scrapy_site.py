"""The Scrapy peer of the benchmark (issue 14).

Crawls one start URL, follows every link within its host, and with
``--parse profile`` (the demo site) yields from each ``/profile/{id}`` page
the fields our ``profile`` parser extracts (worker/src/parse/profile.rs:
``table.profile``, ``[data-field]``, units stripped from numbers) as items
to a JSON-lines feed (``--items``, ``/dev/null`` by default). With
``--parse links`` (the toolchain's docs) it only follows links. Prints one
line in the shape of our ``fetchparse``:

    scrapy pages=N items=N failed=N secs=S pages_per_sec=R items_per_sec=R

Settings are for a speed run against a site of our own on loopback:
``--concurrency`` requests at once overall and per host (128 by default, as
spider-rs and our docs crawl), no AutoThrottle, no download delay, robots.txt
not read, no HTTP cache, no telnet console, WARNING logs. Only the start URL's
host is crawled (``allowed_domains`` plus the link extractor's own filter).

Run by ``PEERS=1 bash scripts/bench.sh`` with the pinned Scrapy it installs
into ``target/peers/venv``.
"""

import argparse
import re
import sys
import time
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import TextResponse
from scrapy.linkextractors import LinkExtractor

# Payload fields and whether they are integers, as in profile.rs.
FIELDS = {
    "name": False,
    "gender": False,
    "age": True,
    "height": True,
    "weight": True,
    "income": False,
    "marriage": False,
    "education": False,
    "occupation": False,
    "city": False,
}
LEADING_INT = re.compile(r"\d+")


class SiteSpider(scrapy.Spider):
    """Follows links within the start host; profile pages become items."""

    name = "site"

    def __init__(self, start_url, parse_profiles, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]
        parts = urlsplit(start_url)
        self.allowed_domains = [parts.hostname]
        # The link extractor compares the whole netloc, port included.
        self.links = LinkExtractor(allow_domains=[parts.netloc])
        self.parse_profiles = parse_profiles

    def parse(self, response):
        # Binary or non-text responses have no links to follow.
        if not isinstance(response, TextResponse):
            return
        if self.parse_profiles and urlsplit(response.url).path.startswith("/profile/"):
            item = profile_item(response)
            if item is not None:
                yield item
        for link in self.links.extract_links(response):
            yield response.follow(link, callback=self.parse)


def profile_item(response):
    """The profile table as an item, or None without one."""
    table = response.css("table.profile")
    if not table:
        return None
    table = table[0]
    try:
        profile_id = int(table.attrib.get("data-id", "").strip())
    except ValueError:
        return None
    payload = {}
    for cell in table.css("[data-field]"):
        field = cell.attrib.get("data-field")
        if field not in FIELDS or field in payload:
            continue
        text = "".join(cell.css("::text").getall()).strip()
        if FIELDS[field]:
            match = LEADING_INT.match(text)
            if match is None:
                continue
            payload[field] = int(match.group())
        elif text:
            payload[field] = text
    return {"url": response.url, "kind": "profile", "id": str(profile_id), "payload": payload}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--parse", choices=["profile", "links"], default="links")
    ap.add_argument("--items", default="/dev/null", help="JSON-lines feed of the items")
    args = ap.parse_args()

    process = CrawlerProcess(
        settings={
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "ROBOTSTXT_OBEY": False,
            "HTTPCACHE_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "LOG_LEVEL": "WARNING",
            # A loopback site needs no proxy, whatever the environment says.
            "HTTPPROXY_ENABLED": False,
            "FEEDS": {args.items: {"format": "jsonlines", "overwrite": True}},
        }
    )
    crawler = process.create_crawler(SiteSpider)
    start = time.monotonic()
    process.crawl(crawler, start_url=args.url, parse_profiles=args.parse == "profile")
    process.start()
    secs = time.monotonic() - start
    stats = crawler.stats.get_stats()
    pages = stats.get("downloader/response_status_count/200", 0)
    items = stats.get("item_scraped_count", 0)
    failed = stats.get("downloader/response_count", 0) - pages + stats.get(
        "downloader/exception_count", 0
    )
    print(
        f"scrapy pages={pages} items={items} failed={failed} secs={secs:.3f} "
        f"pages_per_sec={pages / secs:.1f} items_per_sec={items / secs:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
