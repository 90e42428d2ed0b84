"""The demo news site: its pages, feed and sitemap, served for real over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from html import escape

import httpx
import pytest
from bs4 import BeautifulSoup

from worker.demo_site import (
    ARTICLES,
    REPEATED_SLUG,
    SYNDICATED_SLUG,
    DemoArticle,
    DemoSite,
    render_article_page,
)

BY_SLUG = {a.slug: a for a in ARTICLES}
SITEMAP_NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # trust_env=False: no proxy from the environment may sit between us and 127.0.0.1.
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


def soup_of(client: httpx.Client, url: str) -> BeautifulSoup:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return BeautifulSoup(response.content, "lxml")


def body_paragraphs(soup: BeautifulSoup) -> list[str]:
    # The Ledger's template and the wire template each keep the body in their own container.
    return [p.get_text() for p in soup.select("article .story-body p, article .wire-text p")]


def json_ld(soup: BeautifulSoup) -> dict:
    return json.loads(soup.find("script", type="application/ld+json").string)


# --- content ---------------------------------------------------------------------------------


def test_articles_are_news_sized_and_varied() -> None:
    assert len(ARTICLES) == 6
    assert len({a.section for a in ARTICLES}) == 6
    assert len({a.published_at.utcoffset() for a in ARTICLES}) >= 3
    for a in ARTICLES:
        words = sum(len(p.split()) for p in a.paragraphs)
        assert 4 <= len(a.paragraphs) <= 7, a.slug
        assert 150 <= words <= 300, (a.slug, words)
        assert len(set(a.paragraphs)) == len(a.paragraphs), a.slug
    assert SYNDICATED_SLUG != REPEATED_SLUG


def test_bad_articles_are_refused() -> None:
    good = ARTICLES[0].model_dump()
    with pytest.raises(ValueError, match="UTC offset"):
        DemoArticle(**{**good, "published": "2026-11-20T08:30:00"})
    with pytest.raises(ValueError, match="slug"):
        DemoArticle(**{**good, "slug": "../etc/passwd"})


# --- pages -----------------------------------------------------------------------------------


def test_homepage_links_every_article(site: DemoSite, client: httpx.Client) -> None:
    soup = soup_of(client, site.base_url + "/")
    hrefs = {a["href"] for a in soup.select("main a")}
    assert hrefs == {a.path for a in ARTICLES}
    assert soup.find("link", rel="canonical")["href"] == site.base_url + "/"


@pytest.mark.parametrize("slug", [a.slug for a in ARTICLES if a.slug != REPEATED_SLUG])
def test_article_page(site: DemoSite, client: httpx.Client, slug: str) -> None:
    article = BY_SLUG[slug]
    url = site.article_url(slug)
    soup = soup_of(client, url)
    assert soup.find("link", rel="canonical")["href"] == url
    assert soup.find("meta", property="og:url")["content"] == url
    assert soup.find("meta", property="og:title")["content"] == article.title
    assert soup.article.h1.get_text() == article.title
    assert soup.article.time["datetime"] == article.published
    assert article.author in soup.select_one(".byline").get_text()
    assert body_paragraphs(soup) == article.paragraphs
    ld = json_ld(soup)
    assert ld["@type"] == "NewsArticle"
    assert (ld["headline"], ld["datePublished"], ld["author"]["name"]) == (
        article.title, article.published, article.author)
    related = [a["href"] for a in soup.select("aside a")]
    assert "Related stories" in soup.aside.get_text()
    assert len(related) == 3 and article.path not in related
    assert all(href in {a.path for a in ARTICLES} for href in related)
    assert "Share this story" in soup.get_text()
    assert "\u00a9 2026" in soup.footer.get_text()


def test_repeated_page_prints_the_body_twice_after_the_lead(site: DemoSite, client: httpx.Client) -> None:
    article = BY_SLUG[REPEATED_SLUG]
    soup = soup_of(client, site.article_url(REPEATED_SLUG))
    got = body_paragraphs(soup)
    rest = article.paragraphs[1:]
    assert got == [article.paragraphs[0], *rest, *rest]
    html = client.get(site.article_url(REPEATED_SLUG)).text
    assert html.count(f"<p>{escape(article.paragraphs[0])}</p>") == 1
    assert all(html.count(f"<p>{escape(p)}</p>") == 2 for p in rest)


def test_syndicated_copy_has_same_text_in_another_template(site: DemoSite, client: httpx.Client) -> None:
    original = soup_of(client, site.article_url(SYNDICATED_SLUG))
    copy_url = site.syndicated_url()
    assert copy_url == f"{site.base_url}/syndicated/{SYNDICATED_SLUG}.html"
    copy = soup_of(client, copy_url)
    assert body_paragraphs(copy) == body_paragraphs(original) == BY_SLUG[SYNDICATED_SLUG].paragraphs
    assert copy.h1.get_text() == original.h1.get_text()
    # A true second URL: it names itself as canonical, and its boilerplate differs.
    assert copy.find("link", rel="canonical")["href"] == copy_url
    assert copy.title.get_text() != original.title.get_text()
    assert copy.find("nav").get_text() != original.find("nav").get_text()
    assert copy.find("footer").get_text() != original.find("footer").get_text()
    assert json_ld(copy)["headline"] == json_ld(original)["headline"]


# --- feed, sitemap, robots -------------------------------------------------------------------


def test_sitemap_lists_every_article_and_the_syndicated_copy(site: DemoSite, client: httpx.Client) -> None:
    response = client.get(site.sitemap_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    entries = {u.findtext("sm:loc", namespaces=SITEMAP_NS): u.findtext("sm:lastmod", namespaces=SITEMAP_NS)
               for u in root.findall("sm:url", SITEMAP_NS)}
    expected = {site.article_url(a.slug) for a in ARTICLES} | {site.syndicated_url()}
    assert set(entries) == expected
    assert entries[site.article_url(ARTICLES[2].slug)] == ARTICLES[2].published


def test_feed_holds_the_four_newest_by_real_time(site: DemoSite, client: httpx.Client) -> None:
    response = client.get(site.feed_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/rss+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = root.findall("channel/item")
    assert len(items) == 4
    # Ordered by the instant, not the string: two dates here disagree on which is newer.
    newest = sorted(ARTICLES, key=lambda a: a.published_at, reverse=True)[:4]
    assert [i.findtext("link") for i in items] == [site.article_url(a.slug) for a in newest]
    assert [i.findtext("guid") for i in items] == [i.findtext("link") for i in items]
    assert [i.findtext("title") for i in items] == [a.title for a in newest]
    assert [parsedate_to_datetime(i.findtext("pubDate")) for i in items] == [a.published_at for a in newest]
    by_string = sorted(ARTICLES, key=lambda a: a.published, reverse=True)[:4]
    assert {a.slug for a in by_string} != {a.slug for a in newest}  # the fixture keeps that trap


def test_robots_allows_everything_and_names_the_sitemap(site: DemoSite, client: httpx.Client) -> None:
    response = client.get(site.base_url + "/robots.txt")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    lines = response.text.splitlines()
    assert "User-agent: *" in lines and "Allow: /" in lines
    assert f"Sitemap: {site.sitemap_url}" in lines


# --- HTTP behaviour --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/news/", "/news/nope.html", "/index.html",
                                  f"/syndicated/{REPEATED_SLUG}.html", "/rss.xml/extra"])
def test_unknown_paths_are_404(site: DemoSite, client: httpx.Client, path: str) -> None:
    response = client.get(site.base_url + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_query_string_is_ignored_and_head_has_no_body(site: DemoSite, client: httpx.Client) -> None:
    url = site.article_url(ARTICLES[0].slug)
    assert client.get(url + "?utm_source=feed").content == client.get(url).content
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(client.get(url).content)


# --- escaping --------------------------------------------------------------------------------


def test_text_is_escaped_on_served_pages(site: DemoSite, client: httpx.Client) -> None:
    library = next(a for a in ARTICLES if "&" in a.title)
    html = client.get(site.article_url(library.slug)).text
    assert "more light &amp; more room" in html and "more light & more room" not in html.split("</script>")[1]
    kelp = next(a for a in ARTICLES if any("< 2" in p for p in a.paragraphs))
    html = client.get(site.article_url(kelp.slug)).text
    assert "&lt; 2 per square meter" in html and "< 2 per" not in html


def test_hostile_text_cannot_break_out_of_the_page() -> None:
    evil = '</script><script>alert("x")</script> & <b>'
    article = DemoArticle(slug="evil", title=evil, author=evil, published="2026-11-20T08:30:00+09:00",
                          section=evil, paragraphs=[evil, "second " + evil])
    html = render_article_page(article, "http://127.0.0.1:1")
    assert "<script>alert" not in html and "<b>" not in html
    soup = BeautifulSoup(html, "lxml")
    assert soup.h1.get_text() == evil
    assert [p.get_text() for p in soup.select(".story-body p")] == article.paragraphs
    assert json_ld(soup)["headline"] == evil
    assert len(soup.find_all("script")) == 1


# --- lifecycle -------------------------------------------------------------------------------


def test_taken_port_raises_a_clear_oserror() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}.*port 0 picks a free one"):
            DemoSite(port=port).start()


def test_stop_frees_the_port_for_a_restart(client: httpx.Client) -> None:
    first = DemoSite()
    base = first.start()
    port = int(base.rsplit(":", 1)[1])
    assert client.get(base + "/").status_code == 200
    first.stop()
    first.stop()  # harmless twice
    with pytest.raises(httpx.ConnectError):
        client.get(base + "/")
    with DemoSite(port=port) as again:
        assert again.base_url == base
        assert client.get(again.feed_url).status_code == 200


def test_refuses_non_loopback_hosts_and_unstarted_use() -> None:
    for host in ("0.0.0.0", "192.168.1.10", "example.org", "::1"):
        with pytest.raises(ValueError, match="loopback"):
            DemoSite(host=host)
    with pytest.raises(RuntimeError, match="not started"):
        _ = DemoSite().base_url


def test_serves_quietly(capfd: pytest.CaptureFixture[str], client: httpx.Client) -> None:
    with DemoSite() as quiet:
        assert client.get(quiet.base_url + "/").status_code == 200
        assert client.get(quiet.base_url + "/missing").status_code == 404
    assert capfd.readouterr().err == ""
