"""A/B of the stages' CPU on real pages: another commit's code and this tree's, on the same pages in one
run, and whether they stored the same things.

    .venv/bin/python bench/stages_ab.py main                       # main's code against this tree's, 2 rounds
    .venv/bin/python bench/stages_ab.py main --exact-df --rounds 1 # same outputs? (see --exact-df)
    .venv/bin/python bench/stages_ab.py main --sets scrapinghub
    .venv/bin/python bench/stages_ab.py main --tasks              # the workers' tasks, bookkeeping and all

The other commit's files are exported (``git archive``) to a temporary directory. Each round runs both
trees one after the other (the order alternating between rounds), each in a process of its own with
that tree first on ``sys.path``, fresh Redis database and SQLite file: every page of the corpora
through the stage table in bench/e2e_profile.py's loop (bench/stage_cpu.py, no Celery), with the CPU time
(``time.process_time``) of each step; with ``--tasks``, as the workers' tasks run them (fetch's task, then
the CPU worker's, running parse to store through), the runner's bookkeeping in and Celery out. Printed: the median over rounds of each step's milliseconds per
page, and, for every run, the rows of ``records`` and ``jobs`` that differ from the first run's.

Similar readings depend on the word counts of the stored records, which a worker refreshes on a
clock (worker/similar.py ``SimilarIndex._stale``): two runs at different speeds see different counts
at some stores. ``--exact-df`` refreshes them at every store (timings then overstate the store stage),
so that same code means same readings and scores, to the last digit. Without it, two runs (even of
the same code) differ in ``similar`` and ``story_id``, and the list says which columns differ.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# This tree's loop, imported before a run puts the other tree first on sys.path (it imports Gleaner's
# modules only when called, so those are the other tree's).
sys.path.insert(0, str(REPO))

from bench.stage_cpu import stage_cpu, task_cpu  # noqa: E402

# What is compared between runs: what a user reads of a record, and how each job ended.
_RECORDS = ("SELECT id, canonical_url, url, title, body, summary, word_count, content_hash, duplicate_of, story_id, "
            "similar, search_title, search_body FROM records ORDER BY id")
_JOBS = "SELECT url, state, record_id, duplicate_of, reason FROM jobs ORDER BY url"


def run_tree(tree: str, urls: list[str], env: dict[str, str], exact_df: bool, tasks: bool = False) -> dict:
    """In this process, with ``tree``'s modules: every URL through the stages; CPU per step and the outputs."""
    sys.path.insert(0, tree)
    os.environ.update(env)
    from sqlalchemy import text

    from worker.runtime import build_runtime
    from worker.settings import get_settings

    import worker

    if not worker.__file__.startswith(tree):
        raise RuntimeError(f"{tree}: its modules were not the ones imported ({worker.__file__})")
    if exact_df:
        from worker.similar import SimilarIndex

        SimilarIndex._stale = lambda index, df: True
    rt = build_runtime(get_settings())
    cpu, _ = (task_cpu if tasks else stage_cpu)(rt, urls)
    with rt.storage.engine.connect() as conn:
        records = [[v if isinstance(v, (int, float)) else str(v) for v in row] for row in conn.execute(text(_RECORDS))]
        jobs = [[str(v) for v in row] for row in conn.execute(text(_JOBS))]
    rt.close()
    return {"cpu": cpu, "records": records, "jobs": jobs}


_COLUMNS = {"records": _RECORDS.split("SELECT ")[1].split(" FROM")[0].split(", "),
            "jobs": _JOBS.split("SELECT ")[1].split(" FROM")[0].split(", ")}


def _differences(first: dict, other: dict) -> str:
    out = []
    for what in ("records", "jobs"):
        a, b = first[what], other[what]
        rows = sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))
        columns = sorted({_COLUMNS[what][i] for x, y in zip(a, b) for i, (u, v) in enumerate(zip(x, y)) if u != v})
        if rows:
            out.append(f"{rows} rows of {what} differ (in {', '.join(columns) or 'number'})")
    return "; ".join(out) or "the same records and jobs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("before", help="a commit (or branch) whose code runs as 'before'")
    parser.add_argument("--sets", nargs="+", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--exact-df", action="store_true", help="refresh the word counts at every store (see above)")
    parser.add_argument("--tasks", action="store_true",
                        help="time the workers' tasks (the runner's bookkeeping too, no Celery) instead of the stages")
    parser.add_argument("--run", nargs=3, metavar=("TREE", "SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        tree, spec, out = args.run
        spec = json.loads(Path(spec).read_text())
        Path(out).write_text(json.dumps(run_tree(tree, spec["urls"], spec["env"], spec["exact_df"], spec["tasks"])))
        return

    from bench import corpora, e2e
    from tests.servers import RedisServer

    sets = args.sets or corpora.available()
    root = Path(tempfile.mkdtemp(prefix="gleaner-stages-ab-"))
    before = root / "before"
    before.mkdir()
    archive = subprocess.run(["git", "archive", args.before], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
    trees = {"before": str(before), "after": str(REPO)}
    site, base = e2e.start_site(sets, root)
    redis = RedisServer(root / "redis").start()
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    urls = [base + e2e.path_of(page) for name in sets for page in corpora.load(name)]
    load = [os.getloadavg()[0]]
    try:
        for r in range(args.rounds):
            for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
                work = root / f"{name}-{r}"
                work.mkdir()
                env = {"GLEANER_REDIS_URL": redis.url.rsplit("/", 1)[0] + f"/{2 * r + (name == 'after')}",
                       "GLEANER_DATA_DIR": str(work), "GLEANER_ALLOW_PRIVATE_URLS": "127.0.0.1",
                       "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0",
                       "GLEANER_DATABASE_URL": f"sqlite:///{work / 'gleaner.db'}"}
                (work / "spec.json").write_text(json.dumps({"urls": urls, "env": env, "exact_df": args.exact_df,
                                                          "tasks": args.tasks}))
                subprocess.run([sys.executable, __file__, args.before, "--run", trees[name], str(work / "spec.json"),
                                str(work / "out.json")], cwd=trees[name], check=True)
                runs[name].append(json.loads((work / "out.json").read_text()))
                load.append(os.getloadavg()[0])
    finally:
        site.terminate()
        redis.stop()
    n = len(urls)
    print(f"`.venv/bin/python bench/stages_ab.py{''.join(' ' + a for a in sys.argv[1:])}`: {n} pages of "
          f"{', '.join(sets)}; before = {args.before}, after = this tree; {args.rounds} rounds; load average (1 min) "
          + ", ".join(f"{x:.2f}" for x in load) + "\n")
    print("| step | before, ms per page | after | after / before |\n| --- | --- | --- | --- |")
    steps = sorted({s for rs in runs.values() for res in rs for s in res["cpu"]},
                   key=lambda s: -statistics.median(res["cpu"].get(s, 0.0) for res in runs["before"]))
    med = {name: {s: statistics.median(res["cpu"].get(s, 0.0) for res in rs) for s in steps} for name, rs in runs.items()}
    for s in steps:
        b, a = 1000 * med["before"][s] / n, 1000 * med["after"][s] / n
        print(f"| {s} | {b:.2f} | {a:.2f} | {a / b if b else float('nan'):.2f} |")
    b, a = (1000 * sum(med[name].values()) / n for name in ("before", "after"))
    print(f"| **all steps** | **{b:.2f}** | **{a:.2f}** | **{a / b:.2f}** |\n")
    first = runs["before"][0]
    for name, rs in runs.items():
        for r, res in enumerate(rs):
            print(f"- {name}, round {r + 1}: {_differences(first, res)} as before's first run")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
