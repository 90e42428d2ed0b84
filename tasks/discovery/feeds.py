"""Article links in what a source's start points serve: RSS and Atom feeds, sitemaps (urlset,
index, news; plain or gzip) and listing pages picked by a CSS selector.

Feeds and sitemaps are parsed with lxml, not feedparser: only item links are needed (the article
page itself is fetched and extracted), lxml is already here, and its parser is set up to expand no
entities and read nothing from the network, and to recover from broken markup.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup
from lxml import etree

from worker.errors import TooLargeError

__all__ = ["MAX_XML_BYTES", "Sitemap", "parse_feed", "parse_listing", "parse_sitemap", "sitemap_entries", "xml_links"]

MAX_XML_BYTES = 50 * 1024 * 1024  # a gzipped sitemap is inflated no further (the protocol's own cap)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "#")


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _gunzip(data: bytes, limit: int) -> bytes:
    # Bounded: a small .gz can inflate to gigabytes.
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = z.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt gzip data: {exc}") from None
    if len(out) > limit or z.unconsumed_tail:
        raise TooLargeError(f"gzipped sitemap inflates past {limit} bytes")
    return out


def _root(data: bytes, base_url: str | None = None, limit: int = MAX_XML_BYTES):
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, limit)
    # A stray newline before "<?xml" makes the declaration illegal; servers send one often enough.
    if data[:1].isspace():
        data = data.lstrip()
    try:
        root = etree.fromstring(data, parser=_PARSER, base_url=base_url)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root is None:
        raise ValueError("not an XML document")
    return root


def _text(node) -> str:
    return (node.text or "").strip()


@dataclass
class Sitemap:
    pages: list[str] = field(default_factory=list)
    children: list[tuple[str, str]] = field(default_factory=list)  # (URL, lastmod or "")


def _sitemap_of(root) -> Sitemap:
    out = Sitemap()
    for node in root:
        kind = _local(node.tag)
        loc = lastmod = ""
        for child in node:
            name = _local(child.tag)
            if name == "loc":
                loc = _text(child)
            elif name == "lastmod":
                lastmod = _text(child)
        if not loc:
            continue
        if kind == "sitemap":
            out.children.append((loc, lastmod))
        elif kind == "url":
            out.pages.append(loc)
    return out


def sitemap_entries(data: bytes) -> Sitemap:
    """Page URLs and child sitemaps (with their lastmod) of a urlset, news sitemap or index, plain or gzip."""
    return _sitemap_of(_root(data))


def parse_sitemap(data: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index."""
    found = sitemap_entries(data)
    return found.pages, [url for url, _ in found.children]


def _feed_links(root, base_url: str | None) -> list[str]:
    links: list[str] = []
    for node in root.iter():
        kind = _local(node.tag)
        if kind not in ("item", "entry"):
            continue
        href = _entry_link(node)
        if href:
            # xml:base on the entry or its parents, else the feed's own URL, resolves relative links.
            base = node.base or base_url
            links.append(urljoin(base, href) if base else href)
    return list(dict.fromkeys(links))


def _entry_link(node) -> str | None:
    fallback = None
    for child in node:
        name = _local(child.tag)
        if name == "link":
            href = (child.get("href") or _text(child)).strip()
            rel = child.get("rel", "alternate")
            if href and rel == "alternate":
                if child.get("type", "text/html") in ("text/html", "application/xhtml+xml"):
                    return href
                fallback = fallback or href
        elif name == "guid" and fallback is None:
            # RSS 2.0: a guid is the item's permalink unless it says isPermaLink="false".
            if child.get("isPermaLink", "true").lower() != "false" and _text(child).startswith(("http://", "https://")):
                fallback = _text(child)
    return fallback


def parse_feed(data: bytes, base_url: str | None = None) -> list[str]:
    """Item links of an RSS 0.9x/1.0/2.0 or Atom feed, in feed order, relative ones resolved."""
    return _feed_links(_root(data, base_url), base_url)


def parse_listing(html: bytes | str, base_url: str, selector: str) -> list[str]:
    """Links a CSS selector picks on a listing page: an <a href> it matches, or the link inside
    (or around) an element it matches, resolved against the page's <base> or its URL."""
    soup = BeautifulSoup(html, "lxml")
    base_tag = soup.find("base", href=True)
    base = urljoin(base_url, base_tag["href"]) if base_tag else base_url
    links: list[str] = []
    for element in soup.select(selector):
        anchor = element if element.name == "a" and element.get("href") else (
            element.find("a", href=True) or element.find_parent("a", href=True))
        if anchor is None:
            continue
        href = str(anchor["href"]).strip()
        if href and not href.lower().startswith(_SKIP_SCHEMES):
            links.append(urljoin(base, href))
    return list(dict.fromkeys(links))


def xml_links(body: bytes, url: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(article URLs, child sitemaps) of whatever XML a start point serves: search engines accept a
    feed as a sitemap, and sites mix the two up, so the document's root decides, not the config."""
    root = _root(body, url)
    kind = _local(root.tag)
    if kind in ("urlset", "sitemapindex"):
        found = _sitemap_of(root)
        return [urljoin(url, p) for p in found.pages], [(urljoin(url, c), m) for c, m in found.children]
    if kind in ("rss", "rdf", "feed", "channel"):
        return _feed_links(root, url), []
    raise ValueError(f"not a feed or sitemap (its root element is <{kind or '?'}>)")
