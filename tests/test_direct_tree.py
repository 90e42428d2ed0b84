"""The canary for tasks/extraction/direct_tree.py: the tree it builds is BeautifulSoup's own, object
for object, on the release pinned in pyproject.toml; on any other release, or any difference, the
extractor falls back to BeautifulSoup's path and says so."""

from __future__ import annotations

import logging

import bs4
import pytest

from bench import corpora
from tasks.extraction import direct_tree
from tasks.extraction.builder import LineEdgeBuilder
from tasks.extraction.decode import decode_html
from tasks.extraction.direct_tree import CHECK_PAGE, DirectBuilder, build, tree_signature
from tasks.extraction.extract import parse
from tasks.extraction.prepare import prepare, without_empty
from tests.test_extraction_builder import PAGE

pytestmark = pytest.mark.filterwarnings("ignore::bs4.XMLParsedAsHTMLWarning")  # the "<?xml" page, on purpose

# Markup a page may hold that the check page does not: nothing at all, bare text, an unclosed
# <pre>, <pre> in <pre>, a <textarea> of whitespace, a table without rows, a processing
# instruction alone, prefixed tag names, deep nesting, stray closing tags.
ODD = [
    "", "just text", "<p>", "<pre>  open\n  <b> b </b>  <i>", "<pre><pre> a </pre>  <b>b</b>  </pre> x",
    "<textarea>   </textarea><p> </p>", "<table> <td> a </td> </table>", "<?xml version='1.0'?><p>x</p>",
    "<html><body><o:p> w </o:p><fb:like a='1'></fb:like></body></html>",
    "<div>" * 300 + "deep" + "</div>" * 300, "</p></div> stray <b></i>closing</b>",
    "<template><p> t </p></template><rt>r</rt><rp>(</rp>",
]


def _same(markup: str) -> None:
    assert tree_signature(build(markup, DirectBuilder)) == tree_signature(build(markup, LineEdgeBuilder))


@pytest.fixture(autouse=True)
def _fresh_check():
    direct_tree.check.cache_clear()
    yield
    direct_tree.check.cache_clear()


def test_written_against_the_installed_release() -> None:
    # Fails on an upgrade of BeautifulSoup: re-run this file and bench/tree_build.py, then move TESTED
    # and the pin in pyproject.toml together.
    assert bs4.__version__.startswith(direct_tree.TESTED + ".") or bs4.__version__ == direct_tree.TESTED
    assert direct_tree.check()
    assert direct_tree.tree_builder() is DirectBuilder


@pytest.mark.parametrize("markup", [CHECK_PAGE, PAGE, *ODD], ids=lambda m: m[:30])
def test_the_same_tree_as_beautifulsoup(markup: str) -> None:
    _same(markup)


def test_the_tree_is_searched_and_edited_as_beautifulsoup_s() -> None:
    # The tree is BeautifulSoup's own: its API works on it as on one it built.
    direct, stock = build(PAGE, DirectBuilder), build(PAGE, LineEdgeBuilder)
    for soup in (direct, stock):
        soup.select_one("div[hidden]").decompose()
        soup.find("pre").insert_before(soup.new_tag("hr"))
    assert str(direct) == str(stock)
    assert direct.select("ul > li")[1].get_text(" ", strip=True) == "two three"
    assert direct.find("meta", property="og:title")["content"] == "A title"


def test_the_same_tree_on_real_pages() -> None:
    if not corpora.available():
        pytest.skip(f"the shared corpus is not at {corpora.SHARED}")
    pages = [page for name in corpora.available() for page in corpora.load(name)][::12]
    for page in pages:
        markup, _ = prepare(decode_html(page.html).replace("\x00", ""))
        markup = without_empty(markup)
        assert tree_signature(build(markup, DirectBuilder)) == tree_signature(build(markup, LineEdgeBuilder)), page.id


def test_a_different_tree_falls_back_with_a_warning(monkeypatch, caplog) -> None:
    # As if a release changed a field Tag.__init__ sets: the check page shows it.
    start = DirectBuilder.initialize_soup

    def changed(self, soup):
        start(self, soup)
        self._fields["hidden"] = True

    monkeypatch.setattr(DirectBuilder, "initialize_soup", changed)
    with caplog.at_level(logging.WARNING, logger="gleaner.extraction"):
        assert direct_tree.tree_builder() is LineEdgeBuilder
    assert "makes a different tree" in caplog.text
    assert parse("<p>still parsed</p>").p.string == "still parsed"


def test_another_release_falls_back_with_a_warning(monkeypatch, caplog) -> None:
    monkeypatch.setattr(bs4, "__version__", "4.99.0")
    with caplog.at_level(logging.WARNING, logger="gleaner.extraction"):
        assert direct_tree.tree_builder() is LineEdgeBuilder
    assert "not the tested" in caplog.text


def test_a_failing_builder_falls_back(monkeypatch, caplog) -> None:
    def broken(self, name, attrib):
        raise AttributeError("'BeautifulSoup' object has no attribute 'tagStack'")

    monkeypatch.setattr(DirectBuilder, "_open", broken)
    with caplog.at_level(logging.WARNING, logger="gleaner.extraction"):
        assert direct_tree.tree_builder() is LineEdgeBuilder
    assert "failed its check" in caplog.text


def test_refuses_trees_it_does_not_build() -> None:
    with pytest.raises(ValueError, match="plain trees only"):
        bs4.BeautifulSoup("<p class='a b'>x</p>", builder=DirectBuilder)
