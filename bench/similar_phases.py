"""Where the time of a similar-readings query goes on SQLite: related() cut into its steps, CPU
time per step, for every labelled record of bench/similar.py's collection among its distractors.

    .venv/bin/python bench/similar_phases.py [--size 100000] [--out bench/results/similar-phases.md]

The steps are those of ``SimilarIndex.related`` and ``scored``, run one after the other as there:
read the record's title and lead; choose the query terms; the full-text query (FTS5 match, BM25
ranking, the join to ``records`` for the top candidates); score the candidates (cosine of the
title-and-lead vectors). Beside the full-text query, in the same run, the same FTS5 expression
without ranking (the matching alone), and ranked by its gate terms only (``SimilarIndex._gate``):
what BM25's share is, and how it grows with the number of phrases in the expression. CPU time of this process
(SQLite runs in it), so other jobs on a shared machine do not inflate it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.similar import Filler, bulk_fill, collection, labels, store_all  # noqa: E402
from worker import similar as S  # noqa: E402
from worker.storage import Storage  # noqa: E402

_MATCH = "SELECT rowid FROM similar_fts WHERE similar_fts MATCH ?"
# Ranked as SimilarIndex's query ranks (worker/similar.py ``_SQLITE_SEARCH``): by bm25() with its weights.
_RANKED = ("SELECT rowid, bm25(similar_fts, ?, 1.0) AS score FROM similar_fts WHERE similar_fts MATCH ? "
           "ORDER BY score LIMIT ?")


def _pct(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)
    return statistics.median(v), v[min(len(v) - 1, int(0.95 * len(v)))], statistics.fmean(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000, help="distractor records (default 100000)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "similar-phases.md")
    args = ap.parse_args()

    docs = collection()
    subject, _area, _story = labels(docs)
    workdir = Path(tempfile.mkdtemp(prefix="gleaner-phases-"))
    try:
        storage = Storage(f"sqlite:///{workdir / 'similar.db'}")
        index = S.SimilarIndex(storage.engine, sample_max_age=float("inf"))
        index.ensure_schema()
        ids = store_all(storage, docs)
        bulk_fill(storage, Filler(docs), 0, args.size)
        index.refresh_sample()
        df = index._doc_freq()
        budget = max(index.postings_budget, index.postings_share * df.n_docs)
        title_weight = float(index.title_weight)
        raw = sqlite3.connect(storage.engine.url.database)
        keys = sorted(k for k in subject if subject[k] and k in ids)
        steps: dict[str, list[float]] = {n: [] for n in ("read", "terms", "query", "score", "total", "match only",
                                                          "ranked", "ranked by the gate only")}
        phrases, gated = [], 0
        for rep in range(2):  # the first pass warms the page cache; the second is reported
            for values in steps.values():
                values.clear()
            phrases.clear()
            gated = 0
            for k in keys:
                c0 = time.process_time()
                with storage.engine.connect() as conn:
                    row = conn.execute(S._RECORD_LEAD, {"id": ids[k], "lead": S._LEAD_BYTES}).first()
                title, body = row.title, S._lead_paragraphs(row.lead)
                c1 = time.process_time()
                words = S.RecordWords.stored(row.search_title, row.search_body) or S.RecordWords.of(title, body)
                body_tf, title_words = words.counts()
                terms = S._choose_terms(body_tf, title_words, df, max_terms=index.max_terms, postings_budget=budget,
                                        max_df_share=index.max_df_share)
                gate = index._gate(terms, df, S._telling(body_tf, title_words))
                query = S._gated(terms, gate)
                c2 = time.process_time()
                rows = index._search_sqlite(query, index.candidates + 1)
                c3 = time.process_time()
                found = [(r[0], r[1], *S._candidate_counts(r)) for r in rows if r[0] != ids[k]]
                words = list(set().union(body_tf.keys(), title_words, *(c.keys() | t for _i, _t, c, t in found)))
                idf = dict(zip(words, df.idf(words).tolist()))
                mine = S.unit_vector(body_tf, title_words, idf)
                [S.cosine(mine, S.unit_vector(c, t, idf)) for _i, _t, c, t in found]
                c4 = time.process_time()
                for name, spent in (("read", c1 - c0), ("terms", c2 - c1), ("query", c3 - c2), ("score", c4 - c3),
                                    ("total", c4 - c0)):
                    steps[name].append(spent * 1000)
                gated += gate is not None
                phrases.append(query.count('"') // 2)
                for name, sql, params in (("match only", _MATCH, (query,)),
                                          ("ranked", _RANKED, (title_weight, query, index.candidates + 1)),
                                          ("ranked by the gate only", _RANKED,
                                           (title_weight, S._fts5_query(gate) if gate else query,
                                            index.candidates + 1))):
                    c = time.process_time()
                    raw.execute(sql, params).fetchall()
                    steps[name].append((time.process_time() - c) * 1000)
        raw.close()
        storage.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    total = statistics.fmean(steps["total"])
    lines = ["# Similar readings: where a query's time goes (SQLite)", "",
             f"Command: `.venv/bin/python bench/similar_phases.py --size {args.size}` (Python "
             f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.machine()}, {os.cpu_count()} "
             f"cores shared with other jobs; load average {os.getloadavg()[0]:.1f} at the end). {len(docs) + args.size:,} "
             f"records, {len(keys)} queries (the labelled records), CPU time in ms. Method: the module docstring.", "",
             "| step | p50 | p95 | mean | share of the mean total |", "| --- | --- | --- | --- | --- |"]
    for name in ("read", "terms", "query", "score", "total"):
        p50, p95, mean = _pct(steps[name])
        lines.append(f"| {name} | {p50:.2f} | {p95:.2f} | {mean:.2f} | {mean / total:.0%} |")
    lines += ["", f"The full-text expression, apart ({gated} of {len(keys)} queries gated; "
              f"{statistics.fmean(phrases):.1f} phrases on average, the gate's terms counted twice):", "",
              "| FTS5 only | p50 | p95 | mean |", "| --- | --- | --- | --- |"]
    for name in ("match only", "ranked", "ranked by the gate only"):
        p50, p95, mean = _pct(steps[name])
        lines.append(f"| {name} | {p50:.2f} | {p95:.2f} | {mean:.2f} |")
    lines.append("")
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
