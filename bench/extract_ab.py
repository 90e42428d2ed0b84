"""The extractor at a git revision against the working tree: the same records, and the CPU each spends.

    .venv/bin/python bench/extract_ab.py [--base main] [--rounds 3] [--sets SET ...] [--slowest 10]

The base revision is exported (``git archive``) to a temporary folder; each round runs the base and
then the working tree, each in a fresh child process over every page of the chosen sets, the pages'
bytes as saved, with each page's URL and one fixed fetch time. A child times each page's
``extract_article`` with ``time.process_time`` (the corpus is read and the language model loaded
before the clock starts) and writes every Article it made, or the error it raised. The records of the
two sides must be identical field for field, on every page; the pages that differ are listed. The
CPU figures compare only within one run (the machine is shared): the ratio is the result.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FETCHED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)  # one fixed "now" for the dates on both sides


def child(code_root: Path, sets: list[str], out: Path) -> None:
    """Extract every page with the code under code_root; write the records and the CPU per page."""
    sys.path.insert(0, str(code_root))
    from bench import corpora
    from tasks.extraction import extract_article
    from tasks.extraction.language import _identifier
    from worker.errors import ExtractionError

    import tasks
    assert Path(tasks.__file__).resolve().is_relative_to(code_root.resolve()), tasks.__file__
    _identifier()
    pages = [page for name in sets for page in corpora.load(name)]
    rows = []
    for page in pages:
        start = time.process_time()
        try:
            record = extract_article(page.html, page.url or None, fetched_at=FETCHED_AT).model_dump(mode="json")
        except ExtractionError as exc:
            record = {"error": str(exc)}
        rows.append({"page": f"{page.set}/{page.id}", "cpu": time.process_time() - start, "record": record})
    out.write_bytes(gzip.compress(json.dumps(rows).encode()))


def _run_child(code_root: Path, sets: list[str], out: Path) -> list[dict]:
    subprocess.run([sys.executable, __file__, "--child", str(code_root), "--out", str(out), "--sets", *sets],
                   check=True, cwd=code_root)
    return json.loads(gzip.decompress(out.read_bytes()))


def _export(revision: str, into: Path) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = into / "base.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), commit], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "base", filter="data")
    return commit


def main() -> None:
    from bench.corpora import SETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="git revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=3, help="base then working tree, this many times")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--slowest", type=int, default=10, help="list the N pages slowest on the base")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.sets, args.out)
        return

    with tempfile.TemporaryDirectory(prefix="extract-ab-") as tmp:
        folder = Path(tmp)
        commit = _export(args.base, folder)
        sides = {f"base {commit}": folder / "base", "working tree": ROOT}
        runs: dict[str, list[list[dict]]] = {name: [] for name in sides}
        for round_no in range(args.rounds):
            for name, code_root in sides.items():
                runs[name].append(_run_child(code_root, args.sets, folder / "out.json.gz"))
                total = sum(row["cpu"] for row in runs[name][-1])
                print(f"round {round_no + 1} {name}: {total:.2f} s CPU", flush=True)

    base_name, new_name = sides
    base_rows, new_rows = runs[base_name][0], runs[new_name][0]
    differing = [b["page"] for b, n in zip(base_rows, new_rows, strict=True) if b["record"] != n["record"]]
    print(f"\n{len(base_rows)} pages; records differing: {len(differing)}")
    for page in differing[:20]:
        print("  differs:", page)

    print("\n| set | pages | base ms/page | working tree ms/page | ratio (base ÷ working tree) |")
    print("| --- | --- | --- | --- | --- |")
    set_names = [*args.sets, "all"] if len(args.sets) > 1 else args.sets

    def per_page(name: str, set_name: str) -> list[float]:
        # Per round, the set's mean CPU per page; the median over rounds.
        means = []
        for rows in runs[name]:
            cpu = [row["cpu"] for row in rows if set_name == "all" or row["page"].startswith(set_name + "/")]
            means.append(1000 * sum(cpu) / len(cpu))
        return means

    for set_name in set_names:
        base, new = per_page(base_name, set_name), per_page(new_name, set_name)
        count = sum(1 for row in base_rows if set_name == "all" or row["page"].startswith(set_name + "/"))
        print(f"| `{set_name}` | {count} | {statistics.median(base):.2f} ({min(base):.2f}–{max(base):.2f}) | "
              f"{statistics.median(new):.2f} ({min(new):.2f}–{max(new):.2f}) | "
              f"{statistics.median(base) / statistics.median(new):.2f}× |")

    def page_cpu(name: str) -> dict[str, float]:
        return {row["page"]: min(rows[i]["cpu"] for rows in runs[name]) for i, row in enumerate(runs[name][0])}

    base_cpu, new_cpu = page_cpu(base_name), page_cpu(new_name)
    print(f"\nslowest {args.slowest} pages on the base (least CPU of the rounds, ms): base / working tree")
    for page in sorted(base_cpu, key=base_cpu.__getitem__, reverse=True)[:args.slowest]:
        print(f"  {page}: {1000 * base_cpu[page]:.1f} / {1000 * new_cpu[page]:.1f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
