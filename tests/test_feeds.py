"""Article links in feeds, sitemaps and listing pages (tasks/discovery/feeds.py)."""

import gzip
import zlib

import pytest

from tasks.discovery import feeds
from tasks.discovery.feeds import parse_feed, parse_listing, parse_sitemap, sitemap_entries
from worker.errors import TooLargeError




def test_sitemap_and_index_and_gzip():
    urlset = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <url><loc> https://a.test/1 </loc><lastmod>2026-01-01</lastmod></url><url><loc>https://a.test/2</loc></url></urlset>"""
    assert parse_sitemap(urlset) == (["https://a.test/1", "https://a.test/2"], [])
    assert parse_sitemap(gzip.compress(urlset))[0] == ["https://a.test/1", "https://a.test/2"]
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <sitemap><loc>https://a.test/s1.xml.gz</loc></sitemap></sitemapindex>"""
    assert parse_sitemap(index) == ([], ["https://a.test/s1.xml.gz"])


def test_rss_and_atom_links():
    rss = b"""<rss version="2.0"><channel><item><title>A</title><link>https://a.test/a</link></item>
    <item><link>https://a.test/b</link></item><item><link>https://a.test/a</link></item></channel></rss>"""
    assert parse_feed(rss) == ["https://a.test/a", "https://a.test/b"]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><link rel="self" href="https://a.test/self"/>
    <link href="https://a.test/post"/></entry></feed>"""
    assert parse_feed(atom) == ["https://a.test/post"]


def test_entities_are_not_expanded():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>
    <urlset><url><loc>https://a.test/&b;</loc></url></urlset>"""
    pages, _ = parse_sitemap(bomb)
    assert all("aaaaa" not in p for p in pages)


def test_feed_links_resolve_relative_and_fall_back_to_guid():
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><link>https://a.test/</link>
    <item><link>/news/1</link></item>
    <item><guid>https://a.test/news/2</guid></item>
    <item><guid isPermaLink="false">tag:a.test,2026:3</guid></item>
    </channel></rss>"""
    assert parse_feed(rss, "https://a.test/feeds/rss.xml") == ["https://a.test/news/1", "https://a.test/news/2"]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://b.test/blog/">
    <entry><link rel="enclosure" href="x.mp3"/><link type="application/pdf" href="p.pdf"/>
    <link type="text/html" href="post-1"/></entry>
    <entry><link href="https://c.test/elsewhere"/></entry></feed>"""
    assert parse_feed(atom, "https://b.test/atom.xml") == ["https://b.test/blog/post-1", "https://c.test/elsewhere"]
    rdf = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
    <item rdf:about="https://d.test/1"><link>https://d.test/1</link></item></rdf:RDF>"""
    assert parse_feed(rdf) == ["https://d.test/1"]


def test_news_sitemap_and_index_lastmod():
    news = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
      xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url><loc>https://a.test/n1</loc>
      <news:news><news:title>One</news:title></news:news></url></urlset>"""
    assert sitemap_entries(news).pages == ["https://a.test/n1"]
    index = b"""\n\n<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <sitemap><loc>https://a.test/old.xml</loc><lastmod>2020-01-01</lastmod></sitemap>
    <sitemap><loc>https://a.test/new.xml</loc><lastmod>2026-05-01</lastmod></sitemap></sitemapindex>"""
    assert sitemap_entries(index).children == [("https://a.test/old.xml", "2020-01-01"),
                                               ("https://a.test/new.xml", "2026-05-01")]


def test_gzip_is_inflated_only_up_to_the_cap():
    big = b"<urlset>" + b" " * (3 * 1024 * 1024) + b"</urlset>"
    compressed = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = compressed.compress(big) + compressed.flush()
    assert len(bomb) < 10_000
    with pytest.raises(TooLargeError):
        feeds._root(bomb, limit=1024 * 1024)
    assert feeds._root(bomb).tag == "urlset"


def test_listing_links_by_selector():
    html = b"""<html><head><base href="https://a.test/news/"></head><body>
    <nav><a class="headline" href="/about">About</a></nav>
    <a class="headline" href="story-1.html">One</a>
    <h2 class="headline"><a href="https://a.test/story-2.html">Two</a></h2>
    <a href="/story-3.html"><span class="headline">Three</span></a>
    <a class="headline" href="javascript:void(0)">No</a><a class="headline" href="#top">No</a>
    <a class="headline" href="story-1.html#comments">One again</a>
    </body></html>"""
    assert parse_listing(html, "https://a.test/", "main a.headline") == []
    assert parse_listing(html, "https://a.test/", ".headline") == [
        "https://a.test/about", "https://a.test/news/story-1.html", "https://a.test/story-2.html",
        "https://a.test/story-3.html", "https://a.test/news/story-1.html#comments"]
