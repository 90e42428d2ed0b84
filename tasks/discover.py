"""Discovery: article URLs from sitemaps (index, news, gzip) and RSS/Atom feeds."""

from __future__ import annotations

import gzip

from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _root(data: bytes):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    root = etree.fromstring(data, parser=_PARSER)
    if root is None:
        raise ValueError("not an XML document")
    return root


def parse_sitemap(data: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index."""
    root = _root(data)
    pages: list[str] = []
    children: list[str] = []
    for node in root:
        kind = _local(node.tag)
        loc = next((c.text.strip() for c in node if _local(c.tag) == "loc" and c.text), None)
        if not loc:
            continue
        (children if kind == "sitemap" else pages).append(loc)
    return pages, children


def parse_feed(data: bytes) -> list[str]:
    """Item links of an RSS 2.0, RSS 1.0 or Atom feed, in feed order."""
    root = _root(data)
    links: list[str] = []
    for node in root.iter():
        kind = _local(node.tag)
        if kind not in ("item", "entry"):
            continue
        for child in node:
            if _local(child.tag) != "link":
                continue
            href = child.get("href") or (child.text or "").strip()
            rel = child.get("rel", "alternate")
            if href and rel == "alternate":
                links.append(href)
                break
    return list(dict.fromkeys(links))
