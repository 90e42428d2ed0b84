"""Title, dates, authors, language, canonical URL, site name, image and tags from a page's metadata."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tasks.extraction import extract_article

BODY = "".join(
    f"<p>Paragraph {i} of the story tells the reader something new about the harbour, the ferries "
    f"and the people who have worked on them for decades.</p>"
    for i in range(6)
)


def page(head: str = "", body_top: str = "", lang: str = ' lang="en-GB"') -> str:
    return (
        f"<!DOCTYPE html><html{lang}><head><meta charset='utf-8'>{head}</head><body>"
        f"<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article>{body_top}<div class='article-body'>{BODY}</div></article>"
        f"<footer>Copyright 2019 Harbour News</footer></body></html>"
    )


JSON_LD = {
    "@context": "https://schema.org",
    "@graph": [
        {"@type": "WebSite", "name": "Harbour News"},
        {
            "@type": "NewsArticle",
            "headline": "Ferries return to the old harbour",
            "datePublished": "2019-11-20T10:31:05+01:00",
            "dateModified": "2019-11-21T08:00:00+01:00",
            "author": [{"@type": "Person", "name": "Ann Example"}, {"@type": "Person", "name": "Bo Sample"}],
            "image": {"@type": "ImageObject", "url": "https://harbour.example/img/ferry.jpg"},
            "keywords": ["ferries", "harbour"],
            "inLanguage": "de",
        },
    ],
}


def test_json_ld_metadata_wins() -> None:
    head = (
        f'<script type="application/ld+json">{json.dumps(JSON_LD)}</script>'
        '<meta property="article:published_time" content="2001-01-01T00:00:00Z">'
        '<link rel="canonical" href="/news/2019/11/20/ferries">'
    )
    article = extract_article(page(head, "<h1>Ferries return to the old harbour</h1>"),
                              "https://harbour.example/news/2019/11/20/ferries?utm_source=x")
    assert article.title == "Ferries return to the old harbour"
    assert article.published_at == datetime(2019, 11, 20, 10, 31, 5, tzinfo=timezone(timedelta(hours=1)))
    assert article.modified_at == datetime(2019, 11, 21, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    assert article.authors == ["Ann Example", "Bo Sample"]
    assert article.image == "https://harbour.example/img/ferry.jpg"
    assert article.tags == ["ferries", "harbour"]
    assert article.site_name == "Harbour News"
    assert article.canonical_url == "https://harbour.example/news/2019/11/20/ferries"
    assert article.language == "en"  # the html element's lang comes before JSON-LD's inLanguage
    assert article.url == "https://harbour.example/news/2019/11/20/ferries?utm_source=x"


def test_open_graph_and_meta_tags() -> None:
    head = (
        "<title>Ferries return to the old harbour | Harbour News</title>"
        '<meta property="og:title" content="Ferries return to the old harbour">'
        '<meta property="og:site_name" content="Harbour News">'
        '<meta property="og:image" content="/img/ferry.jpg">'
        '<meta property="og:url" content="https://harbour.example/ferries">'
        '<meta property="article:published_time" content="2019-11-20T10:31:05-05:00">'
        '<meta property="article:modified_time" content="2019-11-20T12:00:00-05:00">'
        '<meta property="article:tag" content="Ferries"><meta property="article:tag" content="Harbour">'
        '<meta name="author" content="By Ann Example">'
    )
    article = extract_article(page(head, lang=""), "https://harbour.example/ferries")
    assert article.title == "Ferries return to the old harbour"
    assert article.published_at == datetime(2019, 11, 20, 10, 31, 5, tzinfo=timezone(timedelta(hours=-5)))
    assert article.modified_at is not None and article.modified_at.hour == 12
    assert article.authors == ["Ann Example"]
    assert article.tags == ["Ferries", "Harbour"]
    assert article.site_name == "Harbour News"
    assert article.image == "https://harbour.example/img/ferry.jpg"
    assert article.canonical_url == "https://harbour.example/ferries"
    assert article.language == "en"  # declared nowhere: read from the text


def test_title_tag_loses_its_site_name_when_nothing_else_declares_a_title() -> None:
    article = extract_article(page("<title>Harbour News - Ferries return to the old harbour</title>"
                                   '<meta property="og:site_name" content="Harbour News">'))
    assert article.title == "Ferries return to the old harbour"


def test_h1_that_agrees_with_the_metadata_is_the_title() -> None:
    head = '<meta property="og:title" content="Ferries return | Harbour News">'
    article = extract_article(page(head, "<h1>Ferries return to the old harbour at last</h1>"))
    assert article.title == "Ferries return to the old harbour at last"


def test_dates_from_time_element_then_url() -> None:
    with_time = page(body_top='<p class="when"><time datetime="2019-11-18T16:10:00+00:00">Nov 18</time></p>')
    assert extract_article(with_time).published_at == datetime(2019, 11, 18, 16, 10, tzinfo=timezone.utc)
    from_url = extract_article(page(), "https://harbour.example/2019/11/17/ferries/")
    assert from_url.published_at == datetime(2019, 11, 17, tzinfo=timezone.utc)
    assert extract_article(page()).published_at is None


def test_broken_json_ld_is_ignored() -> None:
    head = ('<script type="application/ld+json">{"@type": "NewsArticle", "headline": </script>'
            '<meta property="og:title" content="Ferries return to the old harbour">')
    article = extract_article(page(head))
    assert article.title == "Ferries return to the old harbour"
    assert len(article.body) == 6


def test_authors_from_the_byline_when_metadata_names_none() -> None:
    top = ('<div class="article-byline">By Ann Example and Bo Sample | November 18, 2019 4:10pm</div>'
           '<div class="author-bio">Ann Example has covered the harbour for twenty years, first for the evening '
           'paper and since 2010 for this site, where she also edits the weekend magazine.</div>')
    assert extract_article(page(body_top=top)).authors == ["Ann Example", "Bo Sample"]


def test_author_pages_given_as_urls_are_not_names() -> None:
    head = '<meta property="article:author" content="https://harbour.example/author/ann-example">'
    assert extract_article(page(head)).authors == []


def test_date_printed_near_the_headline_when_metadata_has_none() -> None:
    top = "<h1>Ferries return to the old harbour</h1><p class='when'>Posted on 20 November 2019</p>"
    article = extract_article(page(body_top=top))
    assert article.published_at == datetime(2019, 11, 20, tzinfo=timezone.utc)
    assert all("2019" not in paragraph for paragraph in article.body)  # the dateline is not body text


def test_date_in_a_url_with_a_month_name() -> None:
    article = extract_article(page(), "https://harbour.example/news/2019/nov/18/ferries")
    assert article.published_at == datetime(2019, 11, 18, tzinfo=timezone.utc)


def test_no_date_after_the_fetch_is_taken_and_the_update_is_kept_apart() -> None:
    data = {"@type": "NewsArticle", "headline": "Ferries return to the old harbour",
            "datePublished": "2031-05-01T10:00:00Z", "dateModified": "2019-11-22T09:00:00Z"}
    head = (f'<script type="application/ld+json">{json.dumps(data)}</script>'
            '<meta property="article:published_time" content="2019-11-20T10:31:05Z">')
    fetched = datetime(2019, 12, 1, tzinfo=timezone.utc)
    article = extract_article(page(head), "https://harbour.example/ferries", fetched_at=fetched)
    assert article.published_at == datetime(2019, 11, 20, 10, 31, 5, tzinfo=timezone.utc)
    assert article.modified_at == datetime(2019, 11, 22, 9, 0, tzinfo=timezone.utc)
    before = extract_article(page(head), "https://harbour.example/ferries", fetched_at=datetime(2019, 11, 21,
                                                                                           tzinfo=timezone.utc))
    assert before.modified_at is None  # stated after the fetch: not taken
