"""The second strategy: pages on which no run of paragraphs stands out still give their article,
and pages that hold none say what they held."""

from __future__ import annotations

import json

import pytest

from tasks.extraction import extract_article
from tasks.extraction.blocks import read_blocks
from tasks.extraction.extract import parse
from tasks.extraction.fallback import MIN_WORDS, declared_body, densest_blocks
from worker.errors import ExtractionError

SENTENCES = [
    "The ferry between the two islands will run twice a day from the first of June, the harbour board said.",
    "Islanders have asked for a second crossing since the old boat was retired four winters ago.",
    "The new timetable adds an evening sailing on Fridays, when most workers travel home for the weekend.",
    "Fares stay as they are for residents, while visitors will pay a little more in the summer months.",
    "The board expects the service to carry about nine hundred passengers a week in its first season.",
]


def test_an_article_streamed_into_a_hidden_element_is_found() -> None:
    # A React page streams its content into <div hidden> and shows it with a script.
    story = "".join(f"<p>{s}</p>" for s in SENTENCES)
    page = (f"<html><head><title>Ferry</title></head><body><div id='root'><template id='B:0'></template>"
            f"<p>Loading…</p></div><div hidden id='S:0'><article><h1>Ferry</h1>{story}</article></div></body></html>")
    assert extract_article(page).body == SENTENCES


def test_the_articlebody_a_page_declares_stands_in_for_a_page_built_by_scripts() -> None:
    document = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Ferry",
                "articleBody": "\n\n".join(SENTENCES)}
    page = (f"<html><head><title>Ferry</title><script type='application/ld+json'>{json.dumps(document)}</script>"
            "</head><body><div id='app'></div><script src='/bundle.js'></script></body></html>")
    assert extract_article(page).body == SENTENCES


def test_declared_body_reads_markup_and_entities_inside_the_json() -> None:
    body = "<p>" + "</p><p>".join(s.replace("the", "the&nbsp;", 1) for s in SENTENCES) + "</p>"
    paragraphs = declared_body([{"@type": "Article", "articleBody": body}])
    assert len(paragraphs) == len(SENTENCES)
    assert all("&" not in p and "<" not in p for p in paragraphs)


def test_a_short_declared_body_is_not_an_article() -> None:
    assert declared_body([{"@type": "Article", "articleBody": "Read the full story in our app."}]) == []


def test_the_densest_element_wins_over_scattered_lines() -> None:
    # Lines too short to make a run (a poem, a list of results) still gather in their element.
    verse = "".join(f"<div>{s.split(',')[0][:24]}</div>" for s in SENTENCES * 4)
    page = (f"<html><body><ul><li><a href='/'>Home</a></li></ul><div class='text'>{verse}</div>"
            "<div><span>Share</span></div></body></html>")
    chosen = densest_blocks(read_blocks(parse(page)))
    assert len(chosen) == len(SENTENCES) * 4
    assert "Home" not in [b.text for b in chosen]


def test_the_second_strategy_leaves_notices_alone() -> None:
    notice = " ".join(SENTENCES[:3])  # long enough to be an article, but it sits in a cookie notice
    page = f"<html><body><div class='cookie-banner'><p>{notice}</p><p>{notice}</p></div></body></html>"
    assert len(notice.split()) * 2 >= MIN_WORDS
    with pytest.raises(ExtractionError, match="no article text found: none of the page's .* words"):
        extract_article(page)


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        ("<html><head><title>App</title><script>start()</script></head><body><div id='root'></div></body></html>",
         "the page shows no text"),
        ("<html><body><h1>Page not found</h1><div><a href='/'>Back to the front page</a></div></body></html>",
         "the page shows only 8 words"),
        ("<html><body><nav><a href='/'>Home</a></nav>" + "<a href='/x'>Another story about the ferry</a>" * 30
         + "</body></html>", "none of the page's 121 words make a run of paragraphs"),
    ],
)
def test_a_page_without_an_article_says_what_it_held(page: str, reason: str) -> None:
    with pytest.raises(ExtractionError, match=f"no article text found: {reason}"):
        extract_article(page)
