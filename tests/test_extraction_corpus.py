"""Quality floors on the shared corpora: a change that costs more than a point of body F1 on any
set, or that leaves more pages with no article text, fails here, scored as bench/extract.py scores
it.

Every page of each set is read from ../shared/corpus/ (the tests skip when a set is absent) and
extracted once a session (the ``corpus_records`` fixture, shared with the metadata floors of
test_extraction_metadata_corpus.py, which also hold the date floors). The figures are those of
the last committed bench/results/extract.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench import corpora

MARGIN = 0.01  # one point: the drop a change may cost before a floor stops it


@dataclass(frozen=True)
class Floor:
    body: float | None  # the set's body metric over the whole set (None: the set marks no body)
    no_text: int  # pages of the set that end with no article text


FLOORS = {
    "scrapinghub": Floor(body=0.976, no_text=0),
    "wcxb-articles": Floor(body=0.948, no_text=1),
    "fundus-eval": Floor(body=0.953, no_text=0),
    "htmldate": Floor(body=None, no_text=5),
}


@pytest.mark.parametrize("set_name", [name for name, floor in FLOORS.items() if floor.body is not None])
def test_body_stays_within_a_point_of_its_figure(corpus_records, set_name: str) -> None:
    scores = {half: corpora.BodyScore() for half in (*corpora.HALVES, None)}
    for page, article in corpus_records[set_name]:
        for half in (page.half, None):
            corpora.add_body_score(set_name, scores[half], "\n".join(article.body) if article else "", page.body or "")
    figure = corpora.headline(set_name, scores[None])
    floor = FLOORS[set_name].body
    halves = ", ".join(f"{half} {corpora.headline(set_name, scores[half]):.3f}" for half in corpora.HALVES)
    assert figure >= floor - MARGIN, (
        f"{set_name}: {corpora.body_metric(set_name)} {figure:.3f} ({halves}; precision {scores[None].precision:.3f}, "
        f"recall {scores[None].recall:.3f}) fell more than a point under its figure {floor:.3f}"
    )


@pytest.mark.parametrize("set_name", list(FLOORS))
def test_pages_with_no_text_stay_few(corpus_records, set_name: str) -> None:
    lost = [page.id for page, article in corpus_records[set_name] if article is None]
    assert len(lost) <= FLOORS[set_name].no_text, f"{set_name}: no article text on {lost}"


def test_every_article_gets_a_title(corpus_records) -> None:
    untitled = [page.id for name in ("scrapinghub", "fundus-eval") for page, article in corpus_records[name]
                if article is not None and not article.title]
    assert not untitled
