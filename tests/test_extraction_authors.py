"""Authors: where a page names them (JSON-LD, <meta>, a printed byline, rel/itemprop/class author) and
how a byline's other words are cleaned away."""

from __future__ import annotations

import json

import pytest

from tasks.extraction import extract_article
from tasks.extraction.authors import clean_authors

BODY = "".join(
    f"<p>Paragraph {i} of the story tells the reader something new about the harbour, the ferries "
    f"and the people who have worked on them for decades.</p>"
    for i in range(6)
)


def page(head: str = "", top: str = "", site: str = "Harbour News") -> str:
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Ferries return | {site}</title>"
        f"<meta property='og:site_name' content='{site}'>{head}</head><body>"
        f"<article><h1>Ferries return</h1>{top}<div class='article-body'>{BODY}</div></article></body></html>"
    )


def json_ld(data: dict) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


@pytest.mark.parametrize(
    ("byline", "names"),
    [
        ("By Ann Example", ["Ann Example"]),
        ("by ann example", ["ann example"]),
        ("Ann Example, Bo Sample and Cy Person", ["Ann Example", "Bo Sample", "Cy Person"]),
        ("Ann Example & Bo Sample", ["Ann Example", "Bo Sample"]),
        ("By Ann Example | November 18, 2019 4:10pm", ["Ann Example"]),
        ("Nov. 18, 2019 · Ann Example on behalf of the harbour board", ["Ann Example"]),
        ("Posted by Ann Example on Friday", ["Ann Example"]),
        ("Keith Example Senior Autos Reporter", ["Keith Example"]),
        ("Ann Example, MD, PhD", ["Ann Example"]),
        ("Ann Example Tech Reporter", ["Ann Example"]),
        ("Von Anna Beispiel und Bernd Muster", ["Anna Beispiel", "Bernd Muster"]),
        ("Par Anne Exemple et Bruno Modèle", ["Anne Exemple", "Bruno Modèle"]),
        ("@annexample", []),
        ("ann@harbour.example", []),
        ("https://harbour.example/author/ann-example", []),
        ("Staff Writer", []),
        ("admin", []),
    ],
)
def test_a_byline_is_cleaned_to_names(byline: str, names: list[str]) -> None:
    assert clean_authors([byline]) == names


def test_the_outlet_glued_to_a_name_is_cut_but_an_outlet_team_is_a_name() -> None:
    assert clean_authors(["Ann Example USA Daily"], ["USA Daily"]) == ["Ann Example"]
    assert clean_authors(["Harbour News Team"], ["Harbour News"]) == ["Harbour News Team"]


def test_several_json_ld_authors_by_reference_are_a_list() -> None:
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": "NewsArticle", "headline": "Ferries return",
         "author": [{"@id": "https://harbour.example/#ann"}, {"@type": "Person", "name": "Bo Sample"}]},
        {"@type": "Person", "@id": "https://harbour.example/#ann", "name": "Ann Example"},
    ]}
    assert extract_article(page(json_ld(graph))).authors == ["Ann Example", "Bo Sample"]


def test_an_outlet_as_author_gives_way_to_the_printed_byline() -> None:
    data = {"@type": "NewsArticle", "headline": "Ferries return",
            "author": {"@type": "Organization", "name": "Harbour News"}}
    top = "<p class='meta'>November 18, 2019 By Ann Example</p>"
    assert extract_article(page(json_ld(data), top)).authors == ["Ann Example"]


def test_an_outlet_credited_alone_is_kept() -> None:
    # A company blog names only itself: that is the page's author, not a missing one.
    assert extract_article(page('<meta name="author" content="Harbour News">')).authors == ["Harbour News"]


def test_meta_author_and_link_preview_labels() -> None:
    assert extract_article(page('<meta name="author" content="By Ann Example">')).authors == ["Ann Example"]
    labels = '<meta name="twitter:label1" content="Written by"><meta name="twitter:data1" content="Ann Example">'
    assert extract_article(page(labels)).authors == ["Ann Example"]


def test_a_label_with_the_names_on_the_next_line() -> None:
    top = "<div class='info'><h4>Author</h4><p>Ann Example</p></div>"
    assert extract_article(page(top=top)).authors == ["Ann Example"]


def test_rel_author_link_and_itemprop_author() -> None:
    linked = "<span>Story: <a href='/people/ann' rel='author'>Ann Example</a></span>"
    assert extract_article(page(top=linked)).authors == ["Ann Example"]
    micro = ("<div itemprop='author' itemscope><img src='/ann.jpg' alt=''>"
             "<span itemprop='name'>Ann Example</span><span itemprop='jobTitle'>Harbour reporter</span></div>")
    assert extract_article(page(top=micro)).authors == ["Ann Example"]


def test_commenters_are_not_authors() -> None:
    comments = "<ol><li class='comment'><span class='comment-author'>Dee Reader</span> Great story!</li></ol>"
    html = page().replace("</article>", f"</article>{comments}")
    assert extract_article(html).authors == []
