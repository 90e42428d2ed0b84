"""The fetch worker alone, by its number of threads: CPU a page and seconds over the 1,799 real pages.

    .venv/bin/python bench/fetch_threads.py                         # 1, 4 and 16 threads, 3 rounds; writes bench/results/fetch-threads.md
    .venv/bin/python bench/fetch_threads.py --threads 2 8 --rounds 2 --quick

bench/e2e.py's site (a process of its own on 127.0.0.1) serves every page of the shared corpora.
Each run starts an embedded Redis in a fresh data directory and one fetch worker, as ``gleaner up``
starts it (``worker/processes.py`` ``worker_argv``: a threads pool, ``-c`` threads) but with no CPU
worker, so nothing else wants the cores; ``gleaner enqueue`` queues every URL and the clock runs
from the enqueue's start until every fetched page waits in the parse queue. Reported: the fetch
worker's CPU (user + system, from /proc) per page and the seconds, the median of the rounds for
each thread count, the counts alternating within a round.

What it shows: where every page answers at once, the threads do not wait on the network, they
take turns at the interpreter lock, and each turn is a hand-over between threads. The sixteen
threads are for sites that take a while to answer (deploy/SCALING.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import corpora, e2e  # noqa: E402

SETTLED_POLLS = 3  # the parse queue unchanged this many polls in a row: fetching is over
POLL = 0.3  # seconds


def fetch_run(urls: list[str], threads: int, root: Path) -> dict[str, float]:
    """One fetch worker of ``threads`` threads over the URLs; its CPU seconds and the wall seconds."""
    import redis

    from worker.metrics import queue_depths
    from worker.processes import worker_argv

    gleaner = str(Path(sys.executable).with_name("gleaner"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLEANER_")} | {
        "GLEANER_DATA_DIR": str(root / "gleaner"), "GLEANER_ALLOW_PRIVATE_URLS": "127.0.0.1",
        "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0"}  # as bench/e2e.py's run
    url = subprocess.run([gleaner, "redis", "start"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    env["GLEANER_REDIS_URL"] = url
    log = root / "worker.log"
    worker = subprocess.Popen(worker_argv(["fetch"], pool="threads", concurrency=threads), env=env, cwd=root,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fetch worker did not get ready; see {log}")
            time.sleep(0.2)
        url_file = root / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        client = redis.Redis.from_url(url)
        before, started = e2e.cpu_of(worker.pid), time.monotonic()
        subprocess.run([gleaner, "enqueue", "--category", "bench", "--file", str(url_file)], env=env,
                       capture_output=True, check=True)
        last, settled, ended = -1, 0, started
        while settled < SETTLED_POLLS:
            time.sleep(POLL)
            waiting = queue_depths(client, ["parse"])["parse"]
            if waiting == last:
                settled += 1
            else:
                settled, last, ended = 0, waiting, time.monotonic()
        cpu = e2e.cpu_of(worker.pid) - before
    finally:
        worker.terminate()
        worker.wait(60)
        subprocess.run([gleaner, "redis", "stop"], env=env, capture_output=True)
    return {"pages": last, "cpu": cpu, "seconds": ended - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--threads", type=e2e.positive_int, nargs="+", default=[1, 4, 16],
                        help="thread counts (default 1 4 16)")
    parser.add_argument("--rounds", type=e2e.positive_int, default=3)
    parser.add_argument("--sets", nargs="+", choices=corpora.SETS, default=None, help="corpora (default: all)")
    parser.add_argument("--quick", action="store_true", help="print, do not write the results file")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fetch-threads.md")
    args = parser.parse_args()
    args.sets = corpora.chosen(args.sets)
    root = Path(tempfile.mkdtemp(prefix="gleaner-fetch-threads-"))
    site, base = e2e.start_site(args.sets, root)
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in args.threads}
    load = [os.getloadavg()]
    try:
        pages = [page for name in args.sets for page in corpora.load(name)]
        urls = [base + e2e.path_of(page) for page in pages]
        for r in range(args.rounds):
            order = args.threads if r % 2 == 0 else list(reversed(args.threads))
            for n in order:
                here = root / f"r{r}-t{n}"
                here.mkdir()
                run = fetch_run(urls, n, here)
                runs[n].append(run)
                print(f"round {r + 1}, {n} threads: {run['pages']} pages in {run['seconds']:.1f} s, "
                      f"{1000 * run['cpu'] / max(run['pages'], 1):.2f} ms of CPU a page", file=sys.stderr)
                shutil.rmtree(here, ignore_errors=True)
        load.append(os.getloadavg())
    finally:
        site.terminate()
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        "# The fetch worker alone, by its number of threads",
        "",
        f"Command: `.venv/bin/python bench/fetch_threads.py{''.join(' ' + a for a in sys.argv[1:])}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; load average (1 min) "
        f"{load[0][0]:.2f} at the start, {load[-1][0]:.2f} at the end.",
        "",
        f"{len(urls)} pages of {', '.join(args.sets)} served on 127.0.0.1; one fetch worker, no CPU worker; "
        "the thread counts alternate within each round. Medians of the rounds:",
        "",
        "| threads | CPU a page, ms (each round) | median | seconds (each round) | median | pages/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n in args.threads:
        cpu = [1000 * run["cpu"] / max(run["pages"], 1) for run in runs[n]]
        secs = [run["seconds"] for run in runs[n]]
        pages_fetched = statistics.median(run["pages"] for run in runs[n])
        lines.append(f"| {n} | {' / '.join(f'{c:.2f}' for c in cpu)} | **{statistics.median(cpu):.2f}** | "
                     f"{' / '.join(f'{s:.1f}' for s in secs)} | {statistics.median(secs):.1f} | "
                     f"{pages_fetched / statistics.median(secs):.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
