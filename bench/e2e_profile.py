"""Where a real page's CPU goes: the stage functions in one process over the shared corpora, timed
stage by stage, with the payloads' Redis round trips and their encoding apart.

    .venv/bin/python bench/e2e_profile.py                      # every page, writes bench/results/e2e-profile.md
    .venv/bin/python bench/e2e_profile.py --sets scrapinghub --quick --top 30

The corpus site of bench/e2e.py (its own process) serves the pages; a throwaway redis-server and a
SQLite database in a temporary directory hold the state. Each page goes through the stage table
(worker/pipeline.py) as ``run_inline`` runs it (no Celery, no runner bookkeeping), and this
process's CPU time (``time.process_time``) is taken around each step: reading and decoding the
input payload, the stage function, encoding and writing its output. cProfile then runs over every
third page (``--every``) on a fresh database, for the functions under the stages (``--top``). What Celery and
the runner's bookkeeping add is the difference between bench/e2e.py's worker CPU per article and
the sum here.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import corpora, e2e  # noqa: E402
from bench.stage_cpu import stage_cpu  # noqa: E402


def run_pages(urls: list[str], env: dict[str, str],
              profile: cProfile.Profile | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """Every URL through the pipeline in this process, under ``env``; CPU seconds per step, and how the jobs ended."""
    os.environ.update(env)
    from worker.runtime import build_runtime
    from worker.settings import get_settings

    get_settings.cache_clear()
    rt = build_runtime(get_settings())
    try:
        return stage_cpu(rt, urls, profile)
    finally:
        rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sets", nargs="+", choices=corpora.SETS, default=None)
    parser.add_argument("--top", type=int, default=25, help="functions listed from cProfile")
    parser.add_argument("--every", type=int, default=3, help="cProfile runs over every n-th page (it doubles the time)")
    parser.add_argument("--ab-full-rereads", action="store_true",
                        help="also time the pass with the similar-readings word counts re-read whole whenever "
                             "stale (before issue 18), on a fresh database, after the timed pass")
    parser.add_argument("--no-cprofile", action="store_true", help="the timed pass only")
    parser.add_argument("--quick", action="store_true", help="print, do not write the results file")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "e2e-profile.md")
    args = parser.parse_args()
    args.sets = args.sets or corpora.available()

    from tests.servers import RedisServer  # the same throwaway redis-server the tests use

    root = Path(tempfile.mkdtemp(prefix="gleaner-e2e-profile-"))
    site, base = e2e.start_site(args.sets, root)
    redis = RedisServer(root / "redis").start()
    load = [os.getloadavg()]
    try:
        pages = [page for name in args.sets for page in corpora.load(name)]
        urls = [base + e2e.path_of(page) for page in pages]
        env = {"GLEANER_REDIS_URL": redis.url, "GLEANER_DATA_DIR": str(root), "GLEANER_ALLOW_PRIVATE_URLS": "127.0.0.1",
               "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0",
               "GLEANER_DATABASE_URL": f"sqlite:///{root / 'timed.db'}"}
        # The stages' warm-ups run in the loop before its clock (bench/stage_cpu.py ``warm``), as in a worker
        # before its first message; a first pass also warms the imports and caches a worker's first pages fill.
        run_pages(urls[:20], env | {"GLEANER_DATABASE_URL": f"sqlite:///{root / 'warm.db'}",
                                    "GLEANER_REDIS_URL": redis.url.rsplit("/", 1)[0] + "/2"})
        redis_cpu = e2e.cpu_of(redis.proc.pid)
        wall = time.perf_counter()
        cpu, outcomes = run_pages(urls, env)
        wall = time.perf_counter() - wall
        redis_cpu = e2e.cpu_of(redis.proc.pid) - redis_cpu
        load.append(os.getloadavg())
        before = None
        if args.ab_full_rereads:
            from worker.similar import SimilarIndex

            grown = SimilarIndex._grown
            SimilarIndex._grown = lambda index, df: index._sample()  # what every stale read did before
            try:
                before, _ = run_pages(urls, env | {"GLEANER_DATABASE_URL": f"sqlite:///{root / 'before.db'}",
                                                   "GLEANER_REDIS_URL": redis.url.rsplit("/", 1)[0] + "/3"})
            finally:
                SimilarIndex._grown = grown
        stats_text = ""
        if not args.no_cprofile:
            profile = cProfile.Profile()
            run_pages(urls[::args.every], env | {"GLEANER_DATABASE_URL": f"sqlite:///{root / 'profiled.db'}",
                                   "GLEANER_REDIS_URL": redis.url.rsplit("/", 1)[0] + "/1"}, profile)
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top * 2)
            stats_text = out.getvalue()
            load.append(os.getloadavg())
    finally:
        site.terminate()
        redis.stop()
    n = len(urls)
    total = sum(cpu.values())
    lines = [
        "# Where a real page's CPU goes (stages in one process)",
        "",
        f"Command: `.venv/bin/python bench/e2e_profile.py{''.join(' ' + a for a in sys.argv[1:])}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; load average (1 min) "
        + ", ".join(f"{a[0]:.2f}" for a in load) + " (start, after the timed pass, after the profiled pass).",
        "",
        f"{n} pages of {', '.join(args.sets)} through the stage table in one process (`run_inline`'s loop, "
        f"no Celery); outcomes: {', '.join(f'{v} {k}' for k, v in sorted(outcomes.items()))}. "
        f"Wall {wall:.1f} s ({n / wall:.1f} pages/s); this process's CPU {total:.1f} s, redis-server's {redis_cpu:.1f} s.",
        "",
        "| step | CPU s | ms per page | share |",
        "| --- | --- | --- | --- |",
    ]
    for step, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {step} | {seconds:.2f} | {1000 * seconds / n:.2f} | {100 * seconds / total:.0f}% |")
    lines.append(f"| **all** | **{total:.2f}** | **{1000 * total / n:.2f}** | |")
    lines.append(f"| redis-server (its own process) | {redis_cpu:.2f} | {1000 * redis_cpu / n:.2f} | |")
    if before:
        lines += ["", "## Before/after: the word counts of similar readings re-read whole when stale, or only the new "
                  "records read (same pages, same run, each on a fresh database)", "",
                  "| step | before, ms per page | after | after / before |", "| --- | --- | --- | --- |"]
        for step in ("store: stage", "parse: stage", "dedupe: stage", "summarize: stage"):
            lines.append(f"| {step} | {1000 * before[step] / n:.2f} | {1000 * cpu[step] / n:.2f} | "
                         f"{cpu[step] / before[step]:.2f} |")
        lines.append(f"| all steps | {1000 * sum(before.values()) / n:.2f} | {1000 * total / n:.2f} | "
                     f"{total / sum(before.values()):.2f} |")
    if stats_text:
        lines += ["", f"## cProfile (every {args.every}th page again, on a fresh database; by own time, then cumulative)", "",
                  "```", stats_text.strip(), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        args.out.write_text(text)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
