"""Extraction benchmark: Gleaner's records beside trafilatura's (and htmldate's dates) on the four shared sets.

    .venv/bin/python bench/extract.py [--sets SET ...] [--half dev|held-out] [--only gleaner] [--worst N]

Every extractor runs in this one process on the same pages (the bytes as saved, each page's URL
given), page by page and each extractor in turn, so load from elsewhere on the machine falls on
all of them alike and their speeds compare as ratios. Bodies are scored by each set's own metric
(``bench/corpora.py``), figures are given per half of the fixed development/held-out split, and
the report goes to ``bench/results/extract.md`` when every set and both halves were run with
every peer. ``--only gleaner`` skips the peers (their last outputs are read back from
``bench/.cache/`` so ``--worst`` can still compare page by page) and writes no report.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import corpora  # noqa: E402
from bench.corpora import HALVES, SETS, BodyScore, Page  # noqa: E402
from tasks.extraction import extract_article  # noqa: E402
from worker.errors import ExtractionError  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "extract-peers.json.gz"
BASE = "trafilatura"  # the peer every speed ratio is taken against
# Issue 15's goals: body figure per set (and at least the best peer's), speed per set.
BODY_GOALS = {"scrapinghub": 0.975, "wcxb-articles": 0.945, "fundus-eval": 0.955}
SPEED_GOAL = 1.5  # Gleaner's pages/s as a multiple of trafilatura's (bare_extraction, metadata on)
LAST = "gleaner's last run"  # the cache's entry for Gleaner's per-page body F1 of the previous run


@dataclass
class Output:
    """What one extractor made of one page (None where it does not say)."""

    body: str | None = None
    title: str | None = None
    date: str | None = None  # YYYY-MM-DD
    authors: list[str] | None = None
    language: str | None = None
    error: str | None = None  # the reason given when nothing came out


def _day(value: object) -> str | None:
    if value is None:
        return None
    return value.date().isoformat() if hasattr(value, "date") and callable(value.date) else str(value)[:10]


def gleaner(page: Page) -> Output:
    try:
        article = extract_article(page.html, page.url or None)
    except ExtractionError as exc:
        return Output(body="", error=str(exc))
    return Output(body="\n".join(article.body), title=article.title, date=_day(article.published_at),
                  authors=article.authors, language=article.language)


def trafilatura_record(page: Page) -> Output:
    """trafilatura's whole record: ``bare_extraction`` with metadata on and comments off."""
    import trafilatura

    doc = trafilatura.bare_extraction(page.html, url=page.url or None, with_metadata=True, include_comments=False)
    if doc is None:
        return Output(body="", error="no document")
    authors = [a.strip() for a in (doc.author or "").split(";") if a.strip()]
    return Output(body=doc.text or "", title=doc.title, date=_day(doc.date), authors=authors or None,
                  language=doc.language)


def trafilatura_text(page: Page) -> Output:
    """trafilatura's body alone, as most users call it: ``extract`` (metadata off, comments off)."""
    import trafilatura

    return Output(body=trafilatura.extract(page.html, url=page.url or None, include_comments=False) or "")


def htmldate_date(page: Page) -> Output:
    """htmldate's extensive search for the original publication date, with the page's URL."""
    from htmldate import find_date

    try:
        return Output(date=find_date(page.html, url=page.url or None, extensive_search=True, original_date=True))
    except Exception as exc:  # a page htmldate cannot read scores as no date, like any other miss
        return Output(error=f"{type(exc).__name__}: {exc}")


def readability_text(page: Page) -> Output:
    import html_text
    from readability import Document

    try:
        return Output(body=html_text.extract_text(Document(page.html, url=page.url).summary(html_partial=True)))
    except Exception as exc:  # readability raises on pages it cannot read; that page scores as empty
        return Output(body="", error=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Extractor:
    name: str
    run: Callable[[Page], Output]
    sets: tuple[str, ...] = SETS  # the sets it is run on
    does: str = "body, metadata"


EXTRACTORS = (
    Extractor("gleaner", gleaner),
    Extractor("trafilatura", trafilatura_record),
    Extractor("trafilatura extract", trafilatura_text, does="body"),
    Extractor("htmldate", htmldate_date, sets=("wcxb-articles", "htmldate"), does="date"),
    # A third body peer where it is cheap: scrapinghub's 181 pages.
    Extractor("readability + html-text", readability_text, sets=("scrapinghub",), does="body"),
)


@dataclass
class Tally:
    """One extractor's figures on one half of one set."""

    pages: int = 0
    seconds: float = 0.0
    body: BodyScore = field(default_factory=BodyScore)
    no_text: int = 0
    titles: list[bool] = field(default_factory=list)
    dates: list[bool] = field(default_factory=list)
    authors: list[bool] = field(default_factory=list)
    languages: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0


def _share(values: list[bool]) -> str:
    return f"{sum(values) / len(values):.3f}" if values else "–"


def score(set_name: str, page: Page, out: Output, tally: Tally) -> float | None:
    """Add one page to the tally; the page's body F1 (None where the set marks no body)."""
    if out.body is not None:
        tally.no_text += not out.body.strip()
    if out.error:
        tally.errors[re.sub(r"\d+", "N", out.error)] += 1
    f1 = None
    if page.body is not None and out.body is not None:
        corpora.add_body_score(set_name, tally.body, out.body, page.body)
        f1 = tally.body.f1s[-1]
    if page.title is not None and out.body is not None:
        tally.titles.append(corpora.title_exact(out.title, page.title))
    if page.published is not None:
        tally.dates.append(corpora.date_right(out.date, page.published))
    if page.author and out.body is not None:
        tally.authors.append(corpora.author_right(out.authors, page.author))
    tally.languages[out.language or "none"] += 1
    return f1


def run(set_name: str, pages: list[Page], extractors: list[Extractor], cached: dict[str, dict]
        ) -> tuple[dict[str, dict[str, Tally]], dict[str, dict[str, float | None]]]:
    """Every extractor on every page of one set: tallies per extractor per half, and per-page body F1."""
    for extractor in extractors:  # imports and caches warmed outside the timing
        extractor.run(pages[0])
    gc.collect()
    tallies = {e.name: {half: Tally() for half in HALVES} for e in extractors}
    f1s: dict[str, dict[str, float | None]] = {e.name: {} for e in extractors}
    outputs: dict[str, dict] = {e.name: {} for e in extractors}
    for page in pages:
        for extractor in extractors:
            start = time.perf_counter()
            out = extractor.run(page)
            elapsed = time.perf_counter() - start
            tally = tallies[extractor.name][page.half]
            tally.pages += 1
            tally.seconds += elapsed
            f1s[extractor.name][page.id] = score(set_name, page, out, tally)
            if extractor.name != "gleaner":
                outputs[extractor.name][page.id] = asdict(out)
    for name, by_id in cached.items():  # peers not run this time: their last outputs, untimed
        if name in tallies:
            continue
        tallies[name] = {half: Tally() for half in HALVES}
        f1s[name] = {}
        for page in pages:
            if page.id in by_id:
                f1s[name][page.id] = score(set_name, page, Output(**by_id[page.id]), tallies[name][page.half])
    for name, by_id in outputs.items():
        cached.setdefault(name, {}).update(by_id)
    return tallies, f1s


def merged(halves: dict[str, Tally]) -> Tally:
    whole = Tally()
    for t in halves.values():
        whole.pages += t.pages
        whole.seconds += t.seconds
        for name in ("precisions", "recalls", "f1s"):
            getattr(whole.body, name).extend(getattr(t.body, name))
        whole.body.empty += t.body.empty
        whole.no_text += t.no_text
        whole.titles += t.titles
        whole.dates += t.dates
        whole.authors += t.authors
        whole.languages.update(t.languages)
        whole.errors.update(t.errors)
    return whole


def _rows(results: dict[str, dict[str, dict[str, Tally]]], halves: tuple[str, ...]):
    """(set, half label, {extractor: tally}) for each half run, then both halves together."""
    for set_name, by_extractor in results.items():
        labels = [*halves, "all"] if len(halves) > 1 else list(halves)
        for label in labels:
            yield set_name, label, {
                name: (merged(by_half) if label == "all" else by_half[label])
                for name, by_half in by_extractor.items()
            }


def _language_line(tally: Tally) -> str:
    total = sum(tally.languages.values())
    found = total - tally.languages.get("none", 0)
    top = ", ".join(f"{code} {n}" for code, n in tally.languages.most_common(6) if code != "none")
    return f"{found / total:.3f} ({top})" if total else "–"


def _differing(results: dict[str, dict[str, dict[str, Tally]]]) -> int:
    """Pages whose body F1 differs between trafilatura's two calls."""
    count = 0
    for by_extractor in results.values():
        if "trafilatura extract" in by_extractor:
            a, b = merged(by_extractor[BASE]).body.f1s, merged(by_extractor["trafilatura extract"]).body.f1s
            count += sum(x != y for x, y in zip(a, b))
    return count


def _goal_rows(results: dict[str, dict[str, dict[str, Tally]]]) -> list[str]:
    rows = []
    for set_name, by_extractor in results.items():
        t = {name: merged(by_half) for name, by_half in by_extractor.items()}
        g = t["gleaner"]
        peers = {name: corpora.headline(set_name, x.body) for name, x in t.items() if name != "gleaner" and x.body.f1s}
        speed = g.pages_per_s / t[BASE].pages_per_s if t[BASE].seconds else 0.0
        speed_met = "yes" if speed >= SPEED_GOAL else "no"
        if not g.body.f1s:
            rows.append(f"| `{set_name}` | – | – | – | – | {speed:.2f}× | {SPEED_GOAL}× | {speed_met} |")
            continue
        mine = corpora.headline(set_name, g.body)
        best_name, best = max(peers.items(), key=lambda kv: kv[1])
        goal = max(BODY_GOALS.get(set_name, 0.0), best)
        rows.append(
            f"| `{set_name}` | {mine:.3f} | {best:.3f} ({best_name}) | ≥ {BODY_GOALS.get(set_name, 0.0):.3f} and the best "
            f"peer | {'yes' if round(mine, 3) >= round(goal, 3) else 'no'} | {speed:.2f}× | {SPEED_GOAL}× | {speed_met} |"
        )
    return rows


def report(results: dict[str, dict[str, dict[str, Tally]]], halves: tuple[str, ...], command: str,
           seconds: float) -> str:
    lines = [
        "# Extraction benchmark",
        "",
        f"The four shared sets (`../shared/corpus/`), every extractor in one process, page by page and each "
        f"extractor in turn, on the pages' bytes as saved with each page's URL (Python "
        f"{platform.python_version()}, {platform.machine()}, {seconds / 60:.0f} minutes). Figures per half of "
        "the fixed development/held-out split (`bench/corpora.py`; Gleaner is tuned on `dev` only) and for "
        "the whole set. trafilatura is `bare_extraction` with metadata on and comments off; "
        f"`trafilatura extract` is the body alone, metadata off (its body differs from `bare_extraction`'s "
        f"on {_differing(results)} pages), timed for the speed ratio most users would see; htmldate runs "
        "its extensive search for the original date with the page's URL.",
        "",
        f"Command: `{command}`",
        "",
        "## Goals",
        "",
        "| set | Gleaner body | best peer | goal | met | speed vs trafilatura | goal | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *_goal_rows(results),
        "",
        "## Body",
        "",
        "The set's own metric: word F1 (per-page bag-of-words F1, averaged) on `wcxb-articles`, shingle F1 "
        "(4-token shingles; F1 of averaged precision and recall) on `scrapinghub` and `fundus-eval`; `htmldate` "
        "has no marked body. *No text*: pages where the extractor returned no body at all.",
        "",
        "| set | half | pages | Gleaner F1 (P / R) | trafilatura F1 (P / R) | other peer | "
        "no text: Gleaner / trafilatura | pages/s: Gleaner / trafilatura (ratio) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for set_name, label, t in _rows(results, halves):
        g, b = t["gleaner"], t[BASE]

        def body(x: Tally) -> str:
            if not x.body.f1s:
                return "–"
            return f"{corpora.headline(set_name, x.body):.3f} ({x.body.precision:.3f} / {x.body.recall:.3f})"

        other = t.get("readability + html-text")
        speed = f"{g.pages_per_s:.0f} / {b.pages_per_s:.0f} ({g.pages_per_s / b.pages_per_s:.2f}×)" if b.seconds else "–"
        lines.append(
            f"| `{set_name}` | {label} | {g.pages} | {body(g)} | {body(b)} | "
            f"{'readability ' + body(other) if other else ''} | {g.no_text} / {b.no_text} | {speed} |"
        )
    lines += [
        "",
        "## Metadata",
        "",
        "Title: exactly the marked title. Date: the marked publication date (to its precision). Author: "
        "the names share at least half their words with the marked ones both ways. Language: share of "
        "records that carry one, and the most common codes.",
        "",
        "| set | half | title: Gleaner / trafilatura | date: Gleaner / trafilatura / htmldate | "
        "author: Gleaner / trafilatura | language (Gleaner) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for set_name, label, t in _rows(results, halves):
        g, b = t["gleaner"], t[BASE]
        h = t.get("htmldate")
        dates = f"{_share(g.dates)} / {_share(b.dates)} / {_share(h.dates) if h else '–'}"
        n_dates = f" (of {len(g.dates)})" if g.dates else ""
        lines.append(
            f"| `{set_name}` | {label} | {_share(g.titles)} / {_share(b.titles)} | {dates}{n_dates} | "
            f"{_share(g.authors)} / {_share(b.authors)} | {_language_line(g)} |"
        )
    lines += [
        "",
        "## Speed",
        "",
        "Pages per second of each extractor over the same pages in the same run, and Gleaner's as a "
        "multiple of trafilatura's (`bare_extraction` with metadata, the record Gleaner's is compared with; "
        "and `extract`, body only). The machine is shared: compare the ratios, not the absolute figures.",
        "",
        "| set | pages | Gleaner | trafilatura | trafilatura extract | htmldate | Gleaner ÷ trafilatura | "
        "Gleaner ÷ trafilatura extract |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for set_name, by_extractor in results.items():
        t = {name: merged(by_half) for name, by_half in by_extractor.items()}
        g = t["gleaner"]

        def rate(name: str) -> str:
            return f"{t[name].pages_per_s:.0f}" if name in t and t[name].seconds else "–"

        def ratio(name: str) -> str:
            return f"{g.pages_per_s / t[name].pages_per_s:.2f}×" if name in t and t[name].seconds else "–"

        lines.append(
            f"| `{set_name}` | {g.pages} | {rate('gleaner')} | {rate(BASE)} | {rate('trafilatura extract')} | "
            f"{rate('htmldate')} | {ratio(BASE)} | {ratio('trafilatura extract')} |"
        )
    lines += ["", "## Why Gleaner gave no text", ""]
    for set_name, by_extractor in results.items():
        errors = merged(by_extractor["gleaner"]).errors
        listed = "; ".join(f"{n} × {reason}" for reason, n in errors.most_common()) or "none"
        lines.append(f"- `{set_name}`: {listed}")
    lines.append("")
    return "\n".join(lines)


def print_summary(results: dict[str, dict[str, dict[str, Tally]]], halves: tuple[str, ...]) -> None:
    for set_name, label, t in _rows(results, halves):
        parts = [f"{set_name:14s} {label:8s}"]
        for name, x in t.items():
            if x.body.f1s and name != "trafilatura extract":
                parts.append(f"{name[:12]} {corpora.headline(set_name, x.body):.3f}"
                             f" (P {x.body.precision:.3f} R {x.body.recall:.3f} empty {x.no_text})")
        g = t["gleaner"]
        if g.dates:
            parts.append(f"date {_share(g.dates)}")
        if BASE in t and t[BASE].seconds and g.seconds:
            parts.append(f"speed {g.pages_per_s / t[BASE].pages_per_s:.2f}x")
        else:
            parts.append(f"{g.pages_per_s:.0f} pages/s")
        print("  ".join(parts))


def print_worst(f1s: dict[str, dict[str, dict[str, float | None]]], pages: dict[str, list[Page]], n: int) -> None:
    """Gleaner's pages that lose most against trafilatura's (by body F1), with both figures."""
    rows = []
    for set_name, by_extractor in f1s.items():
        ours, theirs = by_extractor["gleaner"], by_extractor.get(BASE, {})
        for page in pages[set_name]:
            mine = ours.get(page.id)
            if mine is None:
                continue
            peer = theirs.get(page.id)
            rows.append((mine - (peer if peer is not None else 1.0), set_name, page, mine, peer))
    rows.sort(key=lambda row: row[0])
    for loss, set_name, page, mine, peer in rows[:n]:
        peer_text = f"{peer:.3f}" if peer is not None else "  –  "
        print(f"  {loss:+.3f}  gleaner {mine:.3f}  trafilatura {peer_text}  {set_name}/{page.id}  {page.url[:80]}")


def print_changed(f1s: dict[str, dict[str, dict[str, float | None]]], previous: dict[str, dict]) -> None:
    """The pages whose Gleaner body F1 moved by more than a hundredth since the previous run."""
    for set_name, by_extractor in f1s.items():
        for page_id, now in by_extractor["gleaner"].items():
            before = previous.get(set_name, {}).get(page_id)
            if now is not None and before is not None and abs(now - before) > 0.01:
                print(f"  {now - before:+.3f}  {before:.3f} -> {now:.3f}  {set_name}/{page_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--half", choices=HALVES, help="run one half of each set only (no report written)")
    parser.add_argument("--only", nargs="+", choices=[e.name for e in EXTRACTORS],
                        help="run only these extractors (peers' last outputs come from the cache; no report)")
    parser.add_argument("--worst", type=int, default=0, help="print the N pages where Gleaner loses most")
    parser.add_argument("--changed", action="store_true",
                        help="print the pages whose Gleaner body F1 moved since the last run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extract.md")
    args = parser.parse_args()
    names = set(args.only or [e.name for e in EXTRACTORS]) | {"gleaner"}
    halves = (args.half,) if args.half else HALVES
    cache: dict[str, dict[str, dict]] = {}
    if CACHE.exists():
        cache = json.loads(gzip.decompress(CACHE.read_bytes()))
    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, Tally]]] = {}
    f1s: dict[str, dict[str, dict[str, float | None]]] = {}
    all_pages: dict[str, list[Page]] = {}
    for set_name in args.sets:
        pages = corpora.load(set_name, half=args.half)
        all_pages[set_name] = pages
        extractors = [e for e in EXTRACTORS if e.name in names and set_name in e.sets]
        cached = cache.setdefault(set_name, {})
        results[set_name], f1s[set_name] = run(set_name, pages, extractors, cached)
        print_summary({set_name: results[set_name]}, halves)
    seconds = time.perf_counter() - started
    previous = {}
    for set_name, by_extractor in f1s.items():
        last = cache.setdefault(LAST, {}).setdefault(set_name, {})
        previous[set_name] = dict(last)
        last.update(by_extractor["gleaner"])
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_bytes(gzip.compress(json.dumps(cache).encode()))
    if args.worst:
        print_worst(f1s, all_pages, args.worst)
    if args.changed:
        print_changed(f1s, previous)
    if args.only or args.half or set(args.sets) != set(SETS):
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(results, halves, ".venv/bin/python bench/extract.py", seconds), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
