"""Metadata benchmark: Gleaner's publication dates (and authors) against htmldate and trafilatura.

    .venv/bin/python bench/dates.py [--out bench/results/dates.md]

On ``../shared/corpus/htmldate/`` (each page with its URL, as a crawler has it) and
``wcxb-articles``, per half of the fixed development/held-out split (bench/corpora.py), in one
process over the same pages:

- Gleaner: ``extract_article(page, url)``, its ``published_at`` and ``authors``;
- Gleaner's own signals alone: the same with htmldate's search switched off, which is what
  htmldate as a dependency is measured against;
- htmldate 1.11 ``find_date(page, url=..., original_date=True)``, extensive and fast;
- trafilatura ``bare_extraction(page, url=..., with_metadata=True)``, its date and author.

Scores: bench.corpora.date_right (the marked day; a page without an answer is wrong) over the
pages with a marked date, and author_right over those with a marked author. Besides, the cost of
what the metadata adds per page: htmldate's search and the language detection, timed inside
Gleaner's extraction, next to the whole extraction and trafilatura's (CPU time, each page given to
every extractor in turn).
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import htmldate  # noqa: E402
import trafilatura  # noqa: E402

from bench.corpora import HALVES, author_right, available, date_right, load  # noqa: E402
from tasks.extraction import extract as extract_module  # noqa: E402
from tasks.extraction import published as published_module  # noqa: E402
from tasks.extraction import extract_article  # noqa: E402
from worker.errors import ExtractionError  # noqa: E402

SETS = ("htmldate", "wcxb-articles")
COLUMNS = ("gleaner", "gleaner, own signals only", "htmldate extensive", "htmldate fast", "trafilatura")


# CPU time of this process: other processes on the shared machine slow the wall clock of every
# extractor unevenly; they take little of the CPU time.
CLOCK = time.process_time


class Clock:
    """Seconds spent in one function of the extractor, wrapped in place for the run."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = CLOCK()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += CLOCK() - start
                self.calls += 1
        return timed


@contextmanager
def patched(module: Any, name: str, replacement: Callable[..., Any]) -> Iterator[None]:
    with mock.patch.object(module, name, replacement):
        yield


def gleaner(html: bytes, url: str) -> tuple[Any, Any]:
    try:
        article = extract_article(html, url or None)
    except ExtractionError:
        return None, None
    return article.published_at, article.authors


def htmldate_date(html: bytes, url: str, extensive: bool) -> str | None:
    try:
        return htmldate.find_date(html, url=url or None, extensive_search=extensive, original_date=True,
                                  max_date=datetime.now(timezone.utc).date().isoformat())
    except ValueError:
        return None


def trafilatura_meta(html: bytes, url: str) -> tuple[Any, Any]:
    document = trafilatura.bare_extraction(html, url=url or None, with_metadata=True, include_comments=False)
    if document is None:
        return None, None
    return document.date, document.author


def run(set_name: str) -> dict[str, Any]:
    pages = load(set_name)
    answers: dict[str, list[Any]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    search, language = Clock(), Clock()
    # What each loads once per process (the language model, dateparser's tables) outside the timings.
    extract_module.choose_language([], "", ["Loaded once per process."])
    for page in pages[:5]:
        gleaner(page.html, page.url), htmldate_date(page.html, page.url, True), trafilatura_meta(page.html, page.url)
    extractors: dict[str, Callable[[bytes, str], tuple[Any, Any]]] = {
        "gleaner": gleaner,
        "htmldate extensive": lambda html, url: (htmldate_date(html, url, True), None),
        "htmldate fast": lambda html, url: (htmldate_date(html, url, False), None),
        "trafilatura": trafilatura_meta,
    }
    with patched(published_module, "search_page", search.wrap(published_module.search_page)), \
            patched(extract_module, "choose_language", language.wrap(extract_module.choose_language)):
        for page in pages:  # each page to every extractor in turn, so the machine's load falls on all alike
            for name, extractor in extractors.items():
                start = CLOCK()
                answers[name].append(extractor(page.html, page.url))
                seconds[name] += CLOCK() - start
    with patched(published_module, "search_page", lambda *args, **kwargs: None):
        answers["gleaner, own signals only"] = [gleaner(p.html, p.url) for p in pages]

    scores: dict[tuple[str, str], dict[str, float]] = {}
    for half in (*HALVES, "all"):
        chosen = [i for i, p in enumerate(pages) if half == "all" or p.half == half]
        dated = [i for i in chosen if pages[i].published]
        authored = [i for i in chosen if pages[i].author]
        for column in COLUMNS:
            scores[(column, half)] = {
                "date": sum(date_right(answers[column][i][0], pages[i].published) for i in dated) / len(dated),
                "author": (sum(author_right(answers[column][i][1], pages[i].author) for i in authored) / len(authored)
                           if authored else float("nan")),
                "dated": len(dated), "authored": len(authored),
            }
    return {"pages": len(pages), "scores": scores, "seconds": dict(seconds),
            "search": (search.seconds, search.calls), "language": (language.seconds, language.calls)}


def _pct(value: float) -> str:
    return "" if value != value else f"{value:.3f}"  # NaN: no marked authors in this set


def report(results: dict[str, dict[str, Any]], command: str) -> str:
    lines = [
        "# Publication dates and authors",
        "",
        f"One process, every extractor over the same pages in turn (Python {platform.python_version()}, "
        f"{platform.machine()}), htmldate {htmldate.__version__}, trafilatura {trafilatura.__version__}. "
        "A date is right when its day is the marked one (bench.corpora.date_right, a page with no answer is "
        "wrong); an author when the names match the marked ones (bench.corpora.author_right). Halves: the "
        "fixed development/held-out split of bench/corpora.py.",
        "",
        f"Command: `{command}`",
        "",
    ]
    for set_name, result in results.items():
        scores = result["scores"]
        lines += [f"## {set_name} ({result['pages']} pages)", "",
                  "| extractor | date, dev | date, held-out | date, all |" +
                  (" author, dev | author, held-out | author, all |" if set_name == "wcxb-articles" else ""),
                  "| --- | --- | --- | --- |" + (" --- | --- | --- |" if set_name == "wcxb-articles" else "")]
        for column in COLUMNS:
            row = f"| {column} | " + " | ".join(_pct(scores[(column, h)]["date"]) for h in (*HALVES, "all")) + " |"
            if set_name == "wcxb-articles" and column in ("gleaner", "trafilatura"):
                row += " " + " | ".join(_pct(scores[(column, h)]["author"]) for h in (*HALVES, "all")) + " |"
            elif set_name == "wcxb-articles":
                row += " | | |"
            lines.append(row)
        counts = ", ".join(f"{h} {scores[('gleaner', h)]['dated']}" for h in (*HALVES, "all"))
        lines += ["", f"Pages with a marked date: {counts}."]
        if set_name == "wcxb-articles":
            counts = ", ".join(f"{h} {scores[('gleaner', h)]['authored']}" for h in (*HALVES, "all"))
            lines.append(f"Pages with a marked author: {counts}.")
        n = result["pages"]
        ms = {name: 1000 * s / n for name, s in result["seconds"].items()}
        search_s, search_calls = result["search"]
        language_s, language_calls = result["language"]
        lines += [
            "",
            f"CPU time per page (ms, averaged over all {n} pages): Gleaner's whole extraction {ms['gleaner']:.1f}, of "
            f"which htmldate's search {1000 * search_s / n:.1f} (run on {search_calls} pages, "
            f"{1000 * search_s / max(search_calls, 1):.1f} each) and language detection {1000 * language_s / n:.2f}; "
            f"htmldate alone {ms['htmldate extensive']:.1f} extensive, {ms['htmldate fast']:.1f} fast; "
            f"trafilatura {ms['trafilatura']:.1f}. Gleaner's pages/s over trafilatura's: "
            f"{ms['trafilatura'] / ms['gleaner']:.2f}×.",
            "",
        ]
    lines.append("Timings vary 5-20% between runs on a shared 2-core machine: compare within a run.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dates.md")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the peers log every page they cannot date
    missing = [name for name in SETS if name not in available()]
    if missing:
        sys.exit(f"corpus sets missing under ../shared/corpus: {', '.join(missing)}")
    results = {name: run(name) for name in SETS}
    text = report(results, ".venv/bin/python bench/dates.py")
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
