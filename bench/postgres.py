"""PostgreSQL next to SQLite at scale: storing records, and the similar-readings query, at 10k, 100k
and 1M records, both databases built with the same rows in the same run.

    .venv/bin/python bench/postgres.py [--sizes 10000,100000,1000000] [--out bench/results/postgres.md]
                                       [--db-dir /tmp]

Each database is Gleaner's own schema, made by ``Storage`` (Alembic): SQLite with its FTS5 index
kept by triggers, PostgreSQL (a private cluster started here) with its generated tsvector column
and GIN index (worker/similar.py). The records are bench/similar.py's: its labelled topic
collection (the shared corpora's marked pages and the pages written for the project, stored with
``store_all``), plus its ``Filler`` distractors (the collection's everyday words in the share of
pages they are in, its rarer words in passing, and a made-up subject of their own) up to each size.

At each size:

- **bulk fill**: the distractors go in batches of 20,000 rows, one transaction each, generated once
  and inserted into both (only the insert is timed: rows/s, the indexes kept up to date as it goes).
  PostgreSQL then gets ``VACUUM ANALYZE`` (timed apart): it flushes GIN's pending list and gives the
  planner statistics; SQLite's FTS5 merges its segments while it writes instead.
- **related()**: ``SimilarIndex.related(id)``, the query behind a record's similar readings, for
  every labelled record of the collection: p50/p95/p99, and precision@5 over the labelled subjects
  (bench/similar.py's ``score_lists``, per half of its fixed split).
- **store**: each page of the collection is stored again as a new record (its own URL and hash)
  with ``Storage.upsert_record`` (through ``store_all``), the call the store stage makes, one
  transaction each: latency and records/s, one writer; then deleted, so every size holds the same
  collection.
- **size per record**: the full-text index (SQLite: the FTS5 shadow tables and the docid map;
  PostgreSQL: the GIN index plus the stored tsvector column), all indexes on records, and the
  whole database, each divided by the number of records.

PostgreSQL runs with fsync on and ``synchronous_commit=off`` (a crash loses the last moments of
commits, never consistency: SQLite's WAL with ``synchronous=NORMAL`` promises the same), 1 GB of
shared buffers and the rest of its defaults. Both read through the same OS page cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import corpora  # noqa: E402
from bench.similar import _COLUMNS, SETS, Filler, _pct, collection, labels, score_lists, store_all  # noqa: E402
from tests.servers import PostgresServer  # noqa: E402
from worker.similar import SimilarIndex  # noqa: E402
from worker.storage import Storage, records  # noqa: E402

BATCH = 20_000
# bench/similar.py's Filler rows. Quoted: "similar" is a keyword to PostgreSQL.
COLUMNS = ", ".join(f'"{c}"' for c in _COLUMNS)
PG_SETTINGS = {"fsync": "on", "synchronous_commit": "off", "shared_buffers": "1GB", "max_wal_size": "8GB",
               "maintenance_work_mem": "512MB", "max_connections": "20"}


class Backend:
    """One database: its Storage, its similar-readings index, and how to fill and measure it."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.storage = Storage(url)
        self.index = SimilarIndex(self.storage.engine, sample_max_age=float("inf"))  # refreshed per size
        self.index.ensure_schema()
        self.fill_seconds = 0.0

    def insert(self, rows: list[dict]) -> float:
        marks = ",".join(f":{c}" if self.name == "SQLite" else f"%({c})s" for c in _COLUMNS)
        t0 = time.perf_counter()
        with self.storage.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO records ({COLUMNS}) VALUES ({marks})", rows)
        elapsed = time.perf_counter() - t0
        self.fill_seconds += elapsed
        return elapsed

    def maintain(self) -> float:
        """PostgreSQL: VACUUM ANALYZE (flushes GIN's pending list, plans on statistics)."""
        if self.name == "SQLite":
            return 0.0
        t0 = time.perf_counter()
        with self.storage.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE records")
        return time.perf_counter() - t0

    def count(self) -> int:
        return self.storage.count_records()

    def sizes(self) -> dict[str, int]:
        """Bytes of the full-text index, of all indexes on records, and of the whole database."""
        with self.storage.engine.connect() as conn:
            if self.name == "SQLite":
                pages = dict(conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").all())
                on_records = [n for (n,) in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'")]
                fulltext = sum(v for n, v in pages.items() if n.startswith("similar_")
                               or n.startswith("sqlite_autoindex_similar_"))
                return {"fulltext": fulltext, "indexes": sum(pages.get(n, 0) for n in on_records) + fulltext,
                        "database": sum(pages.values())}
            gin = conn.exec_driver_sql("SELECT pg_relation_size('ix_records_search_vector')").scalar()
            column = conn.exec_driver_sql("SELECT coalesce(sum(pg_column_size(search_vector)), 0) FROM records").scalar()
            indexes = conn.exec_driver_sql("SELECT pg_indexes_size('records')").scalar()
            database = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
            return {"fulltext": gin + column, "indexes": indexes + column, "database": database}


def relate(backend: Backend, ids: dict[str, str], subject: dict, area: dict, half: dict) -> dict:
    """related() for every labelled record: latency, and precision@5 over the labelled subjects."""
    by_id = {v: k for k, v in ids.items()}
    keys = sorted(k for k in subject if subject[k] and k in ids)
    lists, lat = {}, []
    for k in keys:
        t0 = time.perf_counter()
        refs = backend.index.related(ids[k])
        lat.append((time.perf_counter() - t0) * 1000)
        lists[k] = [by_id.get(str(r.id), "-") for r in refs]
    return {"related": _pct(lat), "quality": score_lists(lists, subject, area, half, keys)}


def store(backend: Backend, docs: list[dict], tag: str) -> dict:
    """Store each page of the collection again as a new record and time each store, then delete
    them (the next size must hold the same collection)."""
    ms, stored = [], []
    for d in docs:
        again = {**d, "key": f"{tag}/{d['key']}", "url": f"{d['url']}#{tag}"}  # a new canonical URL and hash
        t0 = time.perf_counter()
        stored += store_all(backend.storage, [again]).values()
        ms.append((time.perf_counter() - t0) * 1000)
    with backend.storage.engine.begin() as conn:
        conn.execute(records.delete().where(records.c.id.in_(stored)))
    return {"store": _pct(ms), "store_per_s": len(ms) / (sum(ms) / 1000)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 100_000, 1_000_000],
                    help="distractor counts to measure at (default 10000,100000,1000000)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "postgres.md")
    ap.add_argument("--db-dir", type=Path, default=None, help="where the two databases go (default: the temp dir)")
    args = ap.parse_args()
    missing = set(SETS) - set(corpora.available())
    if missing:
        sys.exit(f"corpora not found under {corpora.SHARED}: {', '.join(sorted(missing))}")
    if PostgresServer.find_bindir() is None:
        sys.exit("PostgreSQL binaries not found under /usr/lib/postgresql (apt-get install postgresql)")

    docs = collection()
    workdir = Path(tempfile.mkdtemp(prefix="gleaner-pg-bench-", dir=args.db_dir))
    workdir.chmod(0o755)
    pg = PostgresServer(workdir / "postgres", settings=PG_SETTINGS).start()
    try:
        backends = [Backend("SQLite", f"sqlite:///{workdir / 'bench.db'}"), Backend("PostgreSQL", pg.new_database())]
        results = run(backends, docs, args.sizes)
        versions = {"SQLite": sqlite3.sqlite_version,
                    "PostgreSQL": backends[1].storage.engine.connect().exec_driver_sql("SHOW server_version").scalar()}
        for b in backends:
            b.storage.close()
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    write_report(args, docs, results, versions)


def run(backends: list[Backend], docs: list[dict], sizes: list[int]) -> list[dict]:
    subject, area, _ = labels(docs)
    half = {d["key"]: d["half"] for d in docs}
    ids = {b.name: store_all(b.storage, docs) for b in backends}
    filler = Filler(docs)
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    results, filled = [], 0
    for size in sizes:
        seconds = {b.name: 0.0 for b in backends}
        start = filled
        while filled < size:
            rows = filler.rows(filled, min(BATCH, size - filled), now)
            for b in backends:
                seconds[b.name] += b.insert(rows)
            filled += len(rows)
            print(f"  filled {filled:,}: " + ", ".join(f"{n} {s:.0f} s" for n, s in seconds.items()),
                  file=sys.stderr, flush=True)
        row = {"size": size, "records": None, "backends": {}}
        for b in backends:
            maintenance = b.maintain()
            b.index.refresh_sample()
            measured = {**relate(b, ids[b.name], subject, area, half), **store(b, docs, f"s{size}")}
            row["records"] = b.count()
            row["backends"][b.name] = {
                "fill_rows_per_s": (size - start) / seconds[b.name] if size > start else None,
                "maintenance_s": maintenance, **measured, "sizes": b.sizes(),
            }
            print(f"  {size:,} {b.name}: {row['backends'][b.name]}", file=sys.stderr, flush=True)
        results.append(row)
    return results


def _p5(measured: dict) -> str:
    return " / ".join(f"{measured['quality'][h]['p']:.3f}" for h in corpora.HALVES)


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def write_report(args: argparse.Namespace, docs: list[dict], results: list[dict], versions: dict[str, str]) -> None:
    sizes = ",".join(str(r["size"]) for r in results)
    lines = [
        "# PostgreSQL next to SQLite: storing and similar readings at scale",
        "",
        f"Command: `.venv/bin/python bench/postgres.py --sizes {sizes}` (Python {platform.python_version()}, "
        f"SQLite {versions['SQLite']}, PostgreSQL {versions['PostgreSQL']}, {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs: compare within a row).",
        "",
        "Method in the module docstring. Same rows in both, same run. Bulk fill = batches of "
        f"{BATCH:,} rows, one transaction each, indexes maintained as they go (rows/s over the rows added "
        "since the previous size). Store = `Storage.upsert_record`, one article per transaction, one writer "
        f"({len(docs):,} pages of bench/similar.py's collection stored again as new records). related() = "
        "`SimilarIndex.related(id)` for each labelled record, before those stores; P@5 = share of its first five "
        "listed records that share a labelled subject with it (bench/similar.py's `score_lists`), dev / held-out "
        "half. Sizes per record: the full-text index, all indexes on `records` (full-text included), the "
        "whole database.",
        "",
        "## Storing",
        "",
        "| records | bulk fill SQLite | bulk fill PostgreSQL | PG/SQLite | PG VACUUM ANALYZE "
        "| store p50 SQLite | store p50 PG | store/s SQLite | store/s PG | PG/SQLite |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        s, p = r["backends"]["SQLite"], r["backends"]["PostgreSQL"]
        fill = (f"{s['fill_rows_per_s']:,.0f} rows/s | {p['fill_rows_per_s']:,.0f} rows/s | "
                f"{p['fill_rows_per_s'] / s['fill_rows_per_s']:.2f}×") if s["fill_rows_per_s"] else "– | – | –"
        lines.append(f"| {r['records']:,} | {fill} | {p['maintenance_s']:.0f} s | {s['store']['p50']:.2f} ms | "
                     f"{p['store']['p50']:.2f} ms | {s['store_per_s']:,.0f} | {p['store_per_s']:,.0f} | "
                     f"{p['store_per_s'] / s['store_per_s']:.2f}× |")
    lines += [
        "",
        "## Similar readings: related() per labelled record (ms)",
        "",
        "| records | SQLite p50 | p95 | p99 | PostgreSQL p50 | p95 | p99 | PG/SQLite p95 | P@5 SQLite (dev / held-out) "
        "| P@5 PG (dev / held-out) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        s, p = r["backends"]["SQLite"], r["backends"]["PostgreSQL"]
        sr, pr = s["related"], p["related"]
        lines.append(f"| {r['records']:,} | {sr['p50']:.2f} | {sr['p95']:.2f} | {sr['p99']:.2f} | {pr['p50']:.2f} | "
                     f"{pr['p95']:.2f} | {pr['p99']:.2f} | {pr['p95'] / sr['p95']:.1f}× | {_p5(s)} | {_p5(p)} |")
    lines += [
        "",
        "## Size per record (bytes)",
        "",
        "| records | full-text SQLite | full-text PG | all indexes SQLite | all indexes PG | database SQLite "
        "| database PG | database SQLite / PG |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        s, p = r["backends"]["SQLite"]["sizes"], r["backends"]["PostgreSQL"]["sizes"]
        n = r["records"]
        lines.append(f"| {n:,} | {s['fulltext'] / n:,.0f} | {p['fulltext'] / n:,.0f} | {s['indexes'] / n:,.0f} | "
                     f"{p['indexes'] / n:,.0f} | {s['database'] / n:,.0f} ({_mb(s['database'])}) | "
                     f"{p['database'] / n:,.0f} ({_mb(p['database'])}) | {s['database'] / p['database']:.2f} |")
    lines += [
        "",
        "PostgreSQL's full-text figure counts the stored `search_vector` column with the GIN index: the "
        "column exists only for the index. Its database figure includes the table's TOAST (the JSON bodies).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
