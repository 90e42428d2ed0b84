"""Similar-readings benchmark: does the top 5 hold a related article, and how fast is it at 10k,
100k and 1M stored records (SQLite, FTS5 + BM25)?

    .venv/bin/python bench/similar.py [--quick] [--corpus ../shared/corpus/scrapinghub]
                                      [--out bench/results/similar.md] [--db-dir /tmp]

Relatedness. The corpus has no topic labels, and grouping its 181 articles by hand would grade
the benchmark's own guesses. So pairs are built whose relation is certain: every article of at
least 120 words is cut in two at a paragraph boundary; the first half is stored (with the page's
<title>, site name cut off), the second half is the query (no title, so the headline cannot give
the answer away). Hit@k = share of queries whose own first half is in the top k; MRR over the top
5. Two halves of one article share names and subject words but few sentences, which is what
"related" must catch. The same check runs again once the index holds 100k and 1M distractors.

Scale. Distractor records are bags of words: the corpus's general vocabulary (words found in at
least 3 of its articles, at their corpus frequencies; 75%) plus a Zipf tail of made-up words
standing for other stories' names and subjects (25%); 8-word titles and 300-word bodies in 3
paragraphs, bulk-inserted through the real schema (so the triggers index
them) with executemany, 50k rows per transaction. At each size every corpus article is stored as
a new record and ``related()`` is timed right after (p50/p95/p99). General words drawn at random
a million times over make every one of them common at 1M, so the shared subject words (say
"police", "election") cost more postings than in a real archive: on term choice this is harder
than real news. An earlier version also drew each article's own rare words (names) into the
distractors; that put every name in ~1% of 100k random documents, and it is not how archives look.

Peer in the same run: the same index queried with every non-stopword of the record (no
distinctive-term choice, no postings budget, no gate), for the speed and quality the term choice buys.
Also in the same run: our query without the rare-word gate (``gate_min_terms`` out of reach: the
plain OR of the chosen terms, as before the gate), for what the gate costs and buys.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.models import Article, Draft  # noqa: E402
from worker.similar import SimilarIndex, tokens  # noqa: E402
from worker.storage import Storage, records  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "scrapinghub"
MIN_WORDS = 120
BATCH = 50_000


# -- the corpus pairs ---------------------------------------------------------------------------

def _page_title(path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    m = re.search(r"<title[^>]*>(.*?)</title>", raw, re.S | re.I)
    title = html.unescape(re.sub(r"\s+", " ", m.group(1))).strip() if m else ""
    # "Headline | Site" / "Headline - Site": keep the headline.
    return re.split(r"\s+[|\-\u2013\u2014\u00b7:]\s+(?=[^|\-\u2013\u2014]*$)", title)[0] if title else ""


def load_pairs(corpus: Path) -> list[dict]:
    truth = json.loads((corpus / "ground-truth.json").read_text(encoding="utf-8"))
    pairs = []
    for key, item in sorted(truth.items()):
        paras = [p.strip() for p in item["articleBody"].split("\n") if p.strip()]
        words = sum(len(p.split()) for p in paras)
        if words < MIN_WORDS or len(paras) < 2:
            continue
        # Cut at the paragraph boundary nearest the middle word.
        acc, cut = 0, 1
        for i, p in enumerate(paras):
            acc += len(p.split())
            if acc >= words / 2:
                cut = max(1, min(len(paras) - 1, i + (acc - len(p.split()) / 2 < words / 2)))
                break
        pairs.append({"key": key, "title": _page_title(corpus / "html" / f"{key}.html.gz"),
                      "first": paras[:cut], "second": paras[cut:]})
    return pairs


# -- synthetic distractors ----------------------------------------------------------------------

class Filler:
    """Distractor words: the corpus's general vocabulary (words used by at least GENERAL_DF of its
    articles, at their corpus frequencies) 75% of the time, else a made-up Zipf tail standing for
    other stories' names and subject words. An article's own rare words (its names) are not drawn:
    drawn at random a million times over, a name found in one article would sit in thousands of
    random documents, which no real archive does."""

    GENERAL_DF = 3

    def __init__(self, pairs: list[dict], seed: int = 7, tail: int = 300_000) -> None:
        counts: Counter[str] = Counter()
        spread: Counter[str] = Counter()
        for p in pairs:
            words = [t for para in p["first"] + p["second"] for t in tokens(para)]
            counts.update(words)
            spread.update(set(words))
        words = [w for w in counts if spread[w] >= self.GENERAL_DF]
        p = np.array([counts[w] for w in words], dtype=float)
        self.real = np.array(words, dtype=object)
        self.real_p = p / p.sum()
        ranks = np.arange(1, tail + 1, dtype=float)
        zipf = 1 / ranks ** 1.07
        self.fake = np.array([f"zq{np.base_repr(i, 36).lower()}" for i in range(tail)], dtype=object)
        self.fake_p = zipf / zipf.sum()
        self.rng = np.random.default_rng(seed)

    def words(self, n: int) -> np.ndarray:
        real = self.rng.random(n) < 0.75
        out = np.empty(n, dtype=object)
        k = int(real.sum())
        out[real] = self.real[self.rng.choice(len(self.real), size=k, p=self.real_p)]
        out[~real] = self.fake[self.rng.choice(len(self.fake), size=n - k, p=self.fake_p)]
        return out

    def rows(self, start: int, count: int, now: str) -> list[tuple]:
        w = self.words(count * 308).reshape(count, 308)
        rows = []
        for i in range(count):
            r = w[i]
            body = [" ".join(r[8:108]), " ".join(r[108:208]), " ".join(r[208:308])]
            rid = str(uuid.uuid4())
            rows.append((rid, "filler", f"https://filler.test/{start + i}", f"https://filler.test/{start + i}",
                         " ".join(r[:8]).capitalize(), json.dumps(body), now, now, "", 300, 0, "[]",
                         uuid.uuid4().hex, "[]"))
        return rows


def bulk_fill(db_path: Path, filler: Filler, start: int, stop: int) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(db_path, timeout=60)
    conn.execute("PRAGMA synchronous=OFF")
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    for s in range(start, stop, BATCH):
        n = min(BATCH, stop - s)
        rows = filler.rows(s, n, now)
        with conn:
            conn.executemany(
                "INSERT INTO records (id, category_id, url, canonical_url, title, body, created_at, updated_at,"
                " summary, word_count, read_count, similar, content_hash, authors) VALUES"
                " (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        print(f"  filled {s + n:,}  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    conn.close()
    return time.perf_counter() - t0


# -- measurements -------------------------------------------------------------------------------

def _draft(url: str, title: str, body: list[str]) -> Draft:
    return Draft(job_id=str(uuid.uuid4()), category_id="bench", url=url, article=Article(title=title, body=body),
                 canonical_url=url, content_hash=uuid.uuid4().hex, summary="", word_count=len(body))


def quality(index: SimilarIndex, pairs: list[dict], first_ids: dict[str, str]) -> dict:
    hits1 = hits5 = 0
    rr = 0.0
    lat = []
    for p in pairs:
        t = time.perf_counter()
        refs = index.related_to("", p["second"], k=5)
        lat.append((time.perf_counter() - t) * 1000)
        ids = [str(r.id) for r in refs]
        want = first_ids[p["key"]]
        if want in ids:
            pos = ids.index(want)
            hits5 += 1
            hits1 += pos == 0
            rr += 1 / (pos + 1)
    n = len(pairs)
    return {"hit1": hits1 / n, "hit5": hits5 / n, "mrr": rr / n, **_pct(lat)}


def _pct(lat: list[float]) -> dict:
    lat = sorted(lat)
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]  # noqa: E731
    return {"p50": statistics.median(lat), "p95": q(0.95), "p99": q(0.99), "n": len(lat)}


def new_records(storage: Storage, index: SimilarIndex, pairs: list[dict], tag: str,
                other: SimilarIndex) -> tuple[dict, dict, dict]:
    """Store each corpus article whole as a new record; time the store and related() after it,
    then (or before, every other record, so neither always finds the pages warm) ``other``'s."""
    store_lat, rel_lat, other_lat, stored = [], [], [], []
    for i, p in enumerate(pairs):
        t = time.perf_counter()
        rid, _ = storage.upsert_record(_draft(f"https://new.test/{tag}/{p['key']}", p["title"], p["first"] + p["second"]))
        store_lat.append((time.perf_counter() - t) * 1000)
        for which in ((index, other) if i % 2 == 0 else (other, index)):
            t1 = time.perf_counter()
            refs = which.related(rid)
            (rel_lat if which is index else other_lat).append((time.perf_counter() - t1) * 1000)
            assert all(str(r.id) != rid for r in refs)
        stored.append(rid)
    # Gone again (the triggers unindex them), so the next size's relatedness check sees only halves
    # and distractors: a whole article would be the perfect match for its own second half.
    with storage.engine.begin() as conn:
        conn.execute(records.delete().where(records.c.id.in_(stored)))
    return _pct(store_lat), _pct(rel_lat), _pct(other_lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k and 100k only")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "similar.md")
    ap.add_argument("--db-dir", type=Path, default=None)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="distractor counts to measure at, e.g. 0,10000 (overrides --quick)")
    args = ap.parse_args()
    if not (args.corpus / "ground-truth.json").exists():
        sys.exit(f"corpus not found at {args.corpus}")
    sizes = args.sizes or [0, 10_000, 100_000] + ([] if args.quick else [1_000_000])

    pairs = load_pairs(args.corpus)
    workdir = Path(tempfile.mkdtemp(prefix="gleaner-similar-", dir=args.db_dir))
    db_path = workdir / "similar.db"
    storage = Storage(f"sqlite:///{db_path}")
    # Each size refreshes the samples itself; none may refresh mid-measurement.
    frozen = {"sample_max_age": float("inf")}
    index = SimilarIndex(storage.engine, **frozen)
    index.ensure_schema()
    naive = SimilarIndex(storage.engine, max_terms=10_000, postings_budget=float("inf"), max_df_share=1.0,
                         gate_min_terms=10**9, **frozen)
    ungated = SimilarIndex(storage.engine, gate_min_terms=10**9, **frozen)
    first_ids = {}
    for p in pairs:
        rid, _ = storage.upsert_record(_draft(f"https://half.test/{p['key']}", p["title"], p["first"]))
        first_ids[p["key"]] = rid
    filler = Filler(pairs)

    results = []
    filled = 0
    for size in sizes:
        fill_s = bulk_fill(db_path, filler, filled, size) if size > filled else 0.0
        filled = size
        t = time.perf_counter()
        index.refresh_sample()
        naive.refresh_sample()
        sample_s = time.perf_counter() - t
        ungated._df = index._df  # the same sample, so the gate is the only difference
        row = {"size": size, "fill_s": fill_s, "sample_s": sample_s / 2,
               "db_mb": sum(f.stat().st_size for f in workdir.iterdir()) / 1e6}
        row["quality"] = quality(index, pairs, first_ids)
        row["quality_ungated"] = quality(ungated, pairs, first_ids)
        # The peer reads every posting of every word: seconds per query at 1M, so a quarter of them there.
        row["quality_naive"] = quality(naive, pairs if size < 500_000 else pairs[::4], first_ids)
        row["store"], row["related"], row["related_ungated"] = new_records(storage, index, pairs, f"s{size}", ungated)
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    storage.close()
    write_report(args, pairs, results)
    for f in workdir.iterdir():
        f.unlink()
    workdir.rmdir()


def write_report(args: argparse.Namespace, pairs: list[dict], results: list[dict]) -> None:
    cmd = ".venv/bin/python bench/similar.py" + (" --quick" if args.quick else "")
    lines = [
        "# Similar readings benchmark",
        "",
        f"Command: `{cmd}` (Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs: compare ratios within a row).",
        "",
        "Method (details in the module docstring): the corpus's articles of at least "
        f"{MIN_WORDS} words ({len(pairs)} of them) are cut in two at a paragraph boundary; first halves are "
        "stored with the page headline, each second half (no headline) asks for its top 5, and the hit is "
        "its own first half. Distractors are random 300-word bags of the corpus's general words "
        "(found in ≥3 of its articles) plus a made-up Zipf tail for other stories' names. `related()` latency is timed for each corpus article stored whole as a new record, "
        "right after its store. Peer = the same index queried with all of the record's non-stopwords "
        "(no term choice, no postings budget, no gate). No gate = our query without the rare-word gate (the "
        "plain OR of the chosen terms, as before it), same sample, timed on the same records in alternating order.",
        "",
        "## Relatedness (sibling half in the top 5)",
        "",
        "| stored records | Hit@1 | Hit@5 | MRR@5 | no gate Hit@1 | no gate Hit@5 | no gate MRR@5 "
        "| peer Hit@1 | peer Hit@5 | peer MRR@5 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        q, u, n = r["quality"], r["quality_ungated"], r["quality_naive"]
        subset = "" if n["n"] == q["n"] else f" (on {n['n']} of {q['n']})"
        lines.append(f"| {r['size'] + len(pairs):,} | {q['hit1']:.3f} | {q['hit5']:.3f} | {q['mrr']:.3f} | "
                     f"{u['hit1']:.3f} | {u['hit5']:.3f} | {u['mrr']:.3f} | "
                     f"{n['hit1']:.3f} | {n['hit5']:.3f}{subset} | {n['mrr']:.3f} |")
    lines += [
        "",
        "## Latency per new record (ms)",
        "",
        "| stored records | related() p50 | p95 | p99 | no gate p50 | no gate p95 | no gate/ours p95 "
        "| halves: ours p95 | halves: peer p95 | peer/ours "
        "| store p50 (incl. indexing) | fill time | sample refresh | database size |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        rel, un, q, n = r["related"], r["related_ungated"], r["quality"], r["quality_naive"]
        lines.append(
            f"| {r['size'] + len(pairs):,} | {rel['p50']:.2f} | {rel['p95']:.2f} | {rel['p99']:.2f} | "
            f"{un['p50']:.2f} | {un['p95']:.2f} | {un['p95'] / rel['p95']:.1f}× | "
            f"{q['p95']:.2f} | {n['p95']:.2f} | {n['p95'] / q['p95']:.1f}× | {r['store']['p50']:.2f} | "
            f"{r['fill_s']:.0f} s | {r['sample_s'] * 1000:.0f} ms | {r['db_mb']:,.0f} MB |")
    lines += [
        "",
        "related() = a corpus article stored whole as a new record, then its top 5 (read the record, "
        "tokenize, choose terms, query): the number the goals are about. The halves columns time the "
        "relatedness queries, ours and the peer's on the same texts. All include the Python side.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
