"""Extraction benchmark: Gleaner against trafilatura and readability on the scrapinghub corpus.

    .venv/bin/python bench/extract.py [--corpus ../shared/corpus/scrapinghub] [--out bench/results/extract.md]

Every extractor runs in this one process over the same decoded pages, so their speeds can be
compared as ratios. Scoring follows the corpus README: 4-token shingles of ``\\w+`` tokens,
per-page precision and recall, averaged, F1 of the averages.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import platform
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.extraction import extract_article  # noqa: E402
from worker.errors import ExtractionError  # noqa: E402

_TOKEN = re.compile(r"\w+")


def shingles(text: str) -> Counter:
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))


def page_scores(predicted: str, truth: str) -> tuple[float | None, float | None]:
    """(precision or None when nothing was extracted, recall or None when nothing is true)."""
    pred, true = shingles(predicted), shingles(truth)
    shared = sum((pred & true).values())
    n_pred, n_true = sum(pred.values()), sum(true.values())
    if not n_pred and not n_true:
        return 1.0, 1.0
    precision = shared / n_pred if n_pred else None
    recall = shared / n_true if n_true else None
    if n_pred and not predicted.strip():
        precision = None
    return precision, recall


def gleaner(html: str, url: str) -> str:
    try:
        return "\n".join(extract_article(html, url).body)
    except ExtractionError:
        return ""


def trafilatura_text(html: str, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url, include_comments=False) or ""


def readability_text(html: str, url: str) -> str:
    import html_text
    from readability import Document

    try:
        return html_text.extract_text(Document(html, url=url).summary(html_partial=True))
    except Exception:  # readability raises on pages it cannot read; that page scores as empty
        return ""


EXTRACTORS: dict[str, Callable[[str, str], str]] = {
    "gleaner": gleaner,
    "trafilatura": trafilatura_text,
    "readability + html-text": readability_text,
}


def run(corpus: Path) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, tuple]]]:
    truth = json.loads((corpus / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {}
    for key in sorted(truth):
        path = corpus / "html" / f"{key}.html.gz"
        pages[key] = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    for extract in EXTRACTORS.values():
        extract(next(iter(pages.values())), "")  # warm imports and caches outside the timing
    gc.collect()
    times: dict[str, list[float]] = {name: [] for name in EXTRACTORS}
    texts: dict[str, dict[str, str]] = {name: {} for name in EXTRACTORS}
    # Page by page, each extractor in turn: load from other processes on the machine then
    # falls on all of them alike, and the speed ratios hold even when the absolute figures drift.
    for key, html in pages.items():
        for name, extract in EXTRACTORS.items():
            start = time.perf_counter()
            texts[name][key] = extract(html, truth[key].get("url", ""))
            times[name].append(time.perf_counter() - start)
    results: dict[str, dict[str, float]] = {}
    per_page: dict[str, dict[str, tuple]] = {}
    for name in EXTRACTORS:
        precisions, recalls, rows = [], [], {}
        for key, text in texts[name].items():
            p, r = page_scores(text, truth[key].get("articleBody", ""))
            if p is not None:
                precisions.append(p)
            if r is not None:
                recalls.append(r)
            rows[key] = (p, r)
        precision = statistics.fmean(precisions) if precisions else 0.0
        recall = statistics.fmean(recalls) if recalls else 0.0
        ms = sorted(t * 1000 for t in times[name])
        results[name] = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "pages_per_s": len(ms) / (sum(ms) / 1000),
            "median_ms": statistics.median(ms),
            "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))],
        }
        per_page[name] = rows
    return results, per_page


def report(results: dict[str, dict[str, float]], pages: int) -> str:
    base = results["trafilatura"]["pages_per_s"]
    lines = [
        "# Extraction benchmark",
        "",
        f"{pages} pages of `../shared/corpus/scrapinghub/` (decoded to text beforehand), one process, "
        f"each page given to every extractor in turn (Python {platform.python_version()}, {platform.machine()}). "
        "Scored as in the corpus README (4-token shingles of `\\w+` tokens; precision averaged over pages "
        "with output, recall over pages with true text; F1 of the two averages).",
        "",
        "Command: `.venv/bin/python bench/extract.py`",
        "",
        "| extractor | precision | recall | F1 | pages/s | median ms | p95 ms | speed vs trafilatura |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['pages_per_s']:.0f} "
            f"| {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {r['pages_per_s'] / base:.2f}× |"
        )
    g = results["gleaner"]
    lines += [
        "",
        f"Gleaner: F1 {g['f1']:.3f} (goal ≥ 0.965), speed {g['pages_per_s'] / base:.2f}× trafilatura's "
        "(goal ≥ 1.0). Pages per second vary 5-20% between runs on a shared 2-core machine; "
        "compare the ratio, not the absolute figures.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "scrapinghub")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extract.md")
    parser.add_argument("--only", nargs="*", help="run only these extractors (no report written)")
    parser.add_argument("--worst", type=int, default=0, help="print Gleaner's N worst pages by F1")
    args = parser.parse_args()
    if args.only:
        for name in list(EXTRACTORS):
            if name not in args.only:
                del EXTRACTORS[name]
    results, per_page = run(args.corpus)
    for name, r in results.items():
        print(f"{name:26s} P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} "
              f"{r['pages_per_s']:6.1f} pages/s  median {r['median_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms")
    if args.worst and "gleaner" in per_page:
        rows = sorted(per_page["gleaner"].items(), key=lambda kv: _f1(*kv[1]))
        for key, (p, r) in rows[:args.worst]:
            print(f"  {key[:16]}  P {p if p is None else round(p, 3)}  R {r if r is None else round(r, 3)}")
    if not args.only and "trafilatura" in results:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(results, len(next(iter(per_page.values())))), encoding="utf-8")
        print(f"wrote {args.out}")


def _f1(p: float | None, r: float | None) -> float:
    p, r = p or 0.0, r or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


if __name__ == "__main__":
    main()
