"""Quality floors for the metadata on the shared corpora: publication date on htmldate/ and
wcxb-articles, author and title on wcxb-articles, each at most a point under the figure committed
in bench/results/dates.md (scored as bench/dates.py scores them), and a language on every record.
The records come from the session's one extraction of each page (the ``corpus_records`` fixture).
No timings here."""

from __future__ import annotations

from typing import Any

import pytest

from bench.corpora import author_right, date_right, title_exact

# The figures of the last committed bench/results/dates.md, over each whole set; title exact on
# wcxb-articles from the same run's extractions.
COMMITTED = {
    ("htmldate", "date"): 0.915,
    ("wcxb-articles", "date"): 0.885,
    ("wcxb-articles", "author"): 0.803,
    ("wcxb-articles", "title"): 0.805,
}
TOLERANCE = 0.01  # one point: a change that costs more has to say why, and move the figure


@pytest.fixture
def htmldate_set(corpus_records) -> list[tuple[Any, Any]]:
    return corpus_records["htmldate"]


@pytest.fixture
def wcxb_set(corpus_records) -> list[tuple[Any, Any]]:
    return corpus_records["wcxb-articles"]


def _share(pairs: list[tuple[Any, Any]], marked, right) -> tuple[float, str]:
    """The share right over the pages with a mark, and the same per half for the message."""
    shares = {}
    for half in ("dev", "held-out", None):
        scored = [(page, article) for page, article in pairs if marked(page) and half in (None, page.half)]
        shares[half] = sum(article is not None and right(page, article) for page, article in scored) / len(scored)
    return shares[None], f"dev {shares['dev']:.3f}, held-out {shares['held-out']:.3f}"


def _check(key: tuple[str, str], value: float, halves: str) -> None:
    floor = COMMITTED[key] - TOLERANCE
    assert value >= floor, f"{key[1]} on {key[0]}: {value:.3f} ({halves}), committed {COMMITTED[key]:.3f}"


def test_publication_date_on_htmldate_set(htmldate_set) -> None:
    value, halves = _share(htmldate_set, lambda p: p.published, lambda p, a: date_right(a.published_at, p.published))
    _check(("htmldate", "date"), value, halves)


def test_publication_date_on_wcxb(wcxb_set) -> None:
    value, halves = _share(wcxb_set, lambda p: p.published, lambda p, a: date_right(a.published_at, p.published))
    _check(("wcxb-articles", "date"), value, halves)


def test_author_on_wcxb(wcxb_set) -> None:
    value, halves = _share(wcxb_set, lambda p: p.author, lambda p, a: author_right(a.authors, p.author))
    _check(("wcxb-articles", "author"), value, halves)


def test_title_on_wcxb(wcxb_set) -> None:
    value, halves = _share(wcxb_set, lambda p: p.title, lambda p, a: title_exact(a.title, p.title))
    _check(("wcxb-articles", "title"), value, halves)


def test_every_record_carries_a_language(wcxb_set, htmldate_set) -> None:
    languages = [article.language for _, article in wcxb_set + htmldate_set if article is not None]
    assert languages and all(isinstance(code, str) and len(code) == 2 for code in languages)
