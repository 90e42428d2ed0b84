"""The tree builder that leaves out whitespace at block edges: fewer strings, the same readings."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup, NavigableString
from bs4.element import AttributeDict

from bench import corpora
from tasks.extraction.authors import marked_bylines
from tasks.extraction.blocks import read_blocks
from tasks.extraction.builder import LineEdgeBuilder
from tasks.extraction.decode import decode_html
from tasks.extraction.metadata import PageMeta
from tasks.extraction.prepare import prepare, without_empty

# Whitespace at block edges, between inline elements, beside hidden and skipped blocks, inside
# <time>, <pre> and a swallowing <button>, after a <br>, and around stray or unclosed tags.
PAGE = """<!DOCTYPE html>
<html lang="en"><head>
  <title>  A  title </title>
  <meta property="og:title" content="A title">
</head>
<body>
  <div class="article">
    <h1> The  headline </h1>
    <p class="byline author">By <a rel="author" href="/ann">Ann   Example</a>
       <time datetime="">Nov
         20,<span> 2019</span></time></p>
    <p>First <b>bold</b> <i>italic</i>
       <a href="/x">link</a> end.</p>
    <div hidden>secret</div> after hidden
    <div style="display: none">gone</div>
    <section>x<div hidden>h</div> y</section>
    <ul>
      <li> one </li>
      <li>two<br>
        three</li>
    </ul>
    <pre>  kept
      as is  </pre>
    <table><tr><td> a </td> <td> b </td></tr></table>
    <button>press</button> me
    <button><div>
      swallowed</div> <p>text</p></button>
    <dialog><p> a dialog </p> <p> shown </p></dialog>
  </div> tail </span> words
  <p>unclosed <div> inside
</body></html>
"""


def _soups(markup: str) -> tuple[BeautifulSoup, BeautifulSoup]:
    options = {"multi_valued_attributes": None, "attribute_dict_class": AttributeDict}
    return BeautifulSoup(markup, "lxml", **options), BeautifulSoup(markup, builder=LineEdgeBuilder, **options)


def _strings(soup: BeautifulSoup) -> int:
    return sum(1 for node in soup.descendants if isinstance(node, NavigableString))


def _readings(soup: BeautifulSoup) -> tuple:
    collected: list = []
    blocks = read_blocks(soup, collected)
    meta = PageMeta(soup, [], collected)
    hidden_too = read_blocks(soup, hidden=True)
    return ([(b.text, b.tag, b.link_chars, len(b.path), b.furniture, b.hints, b.semantic) for b in blocks],
            [(b.text, b.tag, b.link_chars) for b in hidden_too],
            meta.title_tag, meta.time_stamps(), meta.declared_titles(), marked_bylines(soup))


def test_fewer_strings_same_readings() -> None:
    plain, lean = _soups(PAGE)
    assert _strings(lean) < _strings(plain)
    assert _readings(lean) == _readings(plain)
    blocks = read_blocks(lean)
    texts = [b.text for b in blocks]
    assert "First bold italic link end." in texts  # spaces between inline elements stay
    assert "x y" in texts  # beside a hidden block the space is kept, it separates words
    assert "Nov 20, 2019" in PageMeta(lean, [], [t for t in lean.find_all("time")]).time_stamps()


def test_same_readings_on_real_pages() -> None:
    if not corpora.available():
        pytest.skip(f"the shared corpus is not at {corpora.SHARED}")
    pages = [page for name in corpora.available() for page in corpora.load(name)][::40]
    for page in pages:
        markup, _ = prepare(decode_html(page.html).replace("\x00", ""))
        plain, lean = _soups(without_empty(markup))
        assert _readings(lean) == _readings(plain), page.id
