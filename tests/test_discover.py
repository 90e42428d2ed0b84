import gzip

from tasks.discover import parse_feed, parse_sitemap


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
