"""Quality floors on the shared corpora: a change that costs more than a point of body F1 (or of
date accuracy) on any set fails here, scored as bench/extract.py scores it.

Each set is read from ../shared/corpus/ (the tests skip when it is absent) and, where it is large,
sampled: every Nth page in the fixed order bench/corpora.py gives. The floors are the figures the
current code gets on exactly these pages, less a point; bench/results/extract.md has the figures
on the whole sets, beside the peers'.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench import corpora
from tasks.extraction import extract_article
from worker.errors import ExtractionError
from worker.models import Article

MARGIN = 0.01  # one point: the drop a change may cost before a floor stops it


@dataclass(frozen=True)
class Floor:
    every: int  # pages sampled: every Nth of the set
    body: float | None  # the set's body metric on the sample (None: the set marks no body)
    date: float | None  # share of the sample's marked dates found (None: not floored here)
    no_text: int  # pages of the sample that may end with no article text


# Figures of the code at the last raised floor, on the sample. Date floors are those of the date
# work of the same day; raise them with it.
FLOORS = {
    "scrapinghub": Floor(every=1, body=0.975, date=None, no_text=0),
    "wcxb-articles": Floor(every=4, body=0.950, date=0.821, no_text=0),
    "fundus-eval": Floor(every=1, body=0.953, date=None, no_text=0),
    "htmldate": Floor(every=5, body=None, date=0.825, no_text=2),
}


@pytest.fixture(scope="module")
def extracted() -> dict[str, list[tuple[corpora.Page, Article | None]]]:
    """Each set's sampled pages with what the extractor made of them (None: no article), once."""
    missing = [name for name in corpora.SETS if name not in corpora.available()]
    if missing:
        pytest.skip(f"corpora not found under {corpora.SHARED}: {', '.join(missing)}")
    found = {}
    for name, floor in FLOORS.items():
        rows = []
        for page in corpora.load(name)[::floor.every]:
            try:
                rows.append((page, extract_article(page.html, page.url or None)))
            except ExtractionError:
                rows.append((page, None))
        found[name] = rows
    return found


@pytest.mark.parametrize("set_name", [name for name, floor in FLOORS.items() if floor.body is not None])
def test_body_stays_within_a_point_of_its_floor(extracted: dict, set_name: str) -> None:
    score = corpora.BodyScore()
    for page, article in extracted[set_name]:
        corpora.add_body_score(set_name, score, "\n".join(article.body) if article else "", page.body or "")
    figure = corpora.headline(set_name, score)
    floor = FLOORS[set_name].body
    assert figure >= floor - MARGIN, (
        f"{set_name}: {corpora.body_metric(set_name)} {figure:.3f} (precision {score.precision:.3f}, "
        f"recall {score.recall:.3f}) fell more than a point under its floor {floor:.3f}"
    )


@pytest.mark.parametrize("set_name", list(FLOORS))
def test_pages_with_no_text_stay_few(extracted: dict, set_name: str) -> None:
    lost = [page.id for page, article in extracted[set_name] if article is None]
    assert len(lost) <= FLOORS[set_name].no_text, f"{set_name}: no article text on {lost}"


@pytest.mark.parametrize("set_name", [name for name, floor in FLOORS.items() if floor.date is not None])
def test_dates_stay_within_a_point_of_their_floor(extracted: dict, set_name: str) -> None:
    dated = [(page, article) for page, article in extracted[set_name] if page.published]
    right = sum(corpora.date_right(article.published_at if article else None, page.published)
                for page, article in dated)
    figure = right / len(dated)
    floor = FLOORS[set_name].date
    assert figure >= floor - MARGIN, (
        f"{set_name}: publication date right on {figure:.3f} of {len(dated)} pages, "
        f"more than a point under its floor {floor:.3f}"
    )


def test_every_article_gets_a_title(extracted: dict) -> None:
    untitled = [page.id for name in ("scrapinghub", "fundus-eval") for page, article in extracted[name]
                if article is not None and not article.title]
    assert not untitled
