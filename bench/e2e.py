"""End to end on real pages: the shared corpora through `gleaner up` and through Scrapy + trafilatura.

    .venv/bin/python bench/e2e.py                          # every page of the four sets, writes bench/results/e2e.md
    .venv/bin/python bench/e2e.py --rounds 5               # the same five times in turn: every round's ratio, the median
    .venv/bin/python bench/e2e.py --sets scrapinghub --quick
    .venv/bin/python bench/e2e.py --skip-peer --quick      # Gleaner alone, while working on it
    .venv/bin/python bench/e2e.py --up-args '--concurrency 4' --out bench/results/e2e-concurrency4.md

A site on 127.0.0.1 (a process of its own) serves every page of ``../shared/corpus/`` as the bytes
that were saved, with no charset in its Content-Type where the page declares its own. Then, in the
same run and on the same URLs:

- Gleaner: ``gleaner up`` at its defaults in a fresh data directory (embedded Redis, SQLite, web,
  beat), except what a local site needs: 127.0.0.1 allowed past the private-address guard and no
  per-host rate or concurrency limit (every page is on one host). Its workers are started and
  ready first; the clock runs from the first job recorded by ``gleaner enqueue --file`` to the
  last job's end. The time from enqueue's start (Python and its imports) to its first job is
  reported beside it: the peer's clock leaves out its own start-up in the same way.
- The peer: Scrapy with trafilatura (``bare_extraction``, metadata on, comments off) in the parse
  callback and an item pipeline writing each article to SQLite, one process per core with an
  equal share of the URLs. The clock runs from the first spider opening to the last item stored.

With ``--rounds N`` the two run one after the other N times (Gleaner, peer, Gleaner, ...), each on
a fresh data directory: the machine is shared and a single run's ratio moves by a tenth from one
run to the next, so the report gives every round's ratio and their median, and its other tables
are those of the median round.

Reported: articles per second and the ratio, CPU seconds per article of every process (from
/proc before and after, or the OS's accounting of a finished process), the books (Gleaner:
records + duplicate links + dead letters = input; the peer: items + failures = input), and the
body F1 of what each stored, by the set's own metric (bench/corpora.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import corpora  # noqa: E402

UTF8_SETS = {"scrapinghub", "wcxb-articles", "fundus-eval"}  # saved as UTF-8 (their ORIGIN.md)
_DECLARED = re.compile(rb"<meta[^>]+charset\s*=", re.I)
BODY_SETS = ("scrapinghub", "wcxb-articles", "fundus-eval")  # the sets with a marked body


# --- the site --------------------------------------------------------------------------------------

def _content_type(set_name: str, html: bytes) -> str:
    if _DECLARED.search(html[:4096]):
        return "text/html"  # the page says its own charset; the header must not contradict it
    return "text/html; charset=utf-8" if set_name in UTF8_SETS else "text/html"


def path_of(page: corpora.Page) -> str:
    return f"/{page.set}/{quote(page.id)}"


def copy_path(page: corpora.Page, copy: int) -> str:
    """Where the site serves its ``copy``-th varied copy of a page (``serve(..., copies=True)``)."""
    return f"/copy{copy}{path_of(page)}"


_COPY = re.compile(r"/copy(\d+)(/.*)")


def serve(sets: list[str], port_file: Path, copies: bool = False) -> None:
    """Run the corpus site until killed; write its port to ``port_file`` once listening. With
    ``copies``, ``copy_path`` serves a page varied by bench/memory.py's ``varied``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if copies:
        from bench.memory import varied

    pages: dict[str, tuple[bytes, str]] = {}
    for name in sets:
        for page in corpora.load(name):
            pages[unquote(path_of(page))] = (page.html, _content_type(name, page.html))

    def find(path: str) -> tuple[bytes, str] | None:
        match = _COPY.fullmatch(path) if copies else None
        if not match:
            return pages.get(path)
        found = pages.get(match.group(2))
        return (varied(found[0], path), found[1]) if found else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body in one segment: no delayed-ACK stalls
        wbufsize = 1 << 16

        def log_message(self, *_):
            pass

        def do_GET(self):
            found = find(unquote(self.path.split("?")[0]))
            body, ctype = found if found else (b"not found", "text/plain")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


def start_site(sets: list[str], root: Path, copies: bool = False) -> tuple[subprocess.Popen, str]:
    port_file = root / "site.port"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file), "--sets", *sets,
                             *(["--copies"] if copies else [])],
                            cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the corpus site did not start")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port_file.read_text()}"


# --- process accounting -----------------------------------------------------------------------------

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def cpu_of(pid: int) -> float:
    """User + system seconds of one live process: its own threads, and the children it has forked
    and waited for since it started (redis-server's AOF rewrites run in such a child, on the same
    cores; a child still running is a process of its own)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def role_of(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    line = " ".join(a.decode(errors="replace") for a in argv if a)
    if "redis-server" in line:
        return "redis-server"
    if "worker.web" in line or " web" in line:
        return "web"
    if " beat" in line:
        return "beat"
    match = re.search(r" -n (\S+?)@", line)
    if " worker" in line and match:
        return f"worker {match.group(1)}"
    if "gleaner" in line and " up" in line:
        return "gleaner up (supervisor)"
    return line[:60]


def snapshot(pids: list[int]) -> dict[int, tuple[str, float]]:
    """Each process's role and CPU seconds. A prefork worker's pool processes share its command line;
    they are told apart from its main process (which takes the messages from the broker and hands
    them to the pool) by their parent."""
    parent = {child: p for p, children in _children().items() for child in children}
    roles = {pid: role_of(pid) for pid in pids}
    pool = {pid for pid in pids if roles[pid].startswith("worker ") and roles.get(parent.get(pid)) == roles[pid]}
    mains = {parent[pid] for pid in pool}
    return {pid: (roles[pid] + (" (pool)" if pid in pool else " (main)" if pid in mains else ""), cpu_of(pid))
            for pid in pids}


# --- Gleaner -----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_of(parser: argparse.ArgumentParser, given: list[str]) -> dict[str, str]:
    """``--setting GLEANER_NAME=VALUE`` options as an environment."""
    settings = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("GLEANER_"):
            parser.error(f"--setting {item!r}: expected GLEANER_NAME=VALUE")
        settings[name] = value
    return settings


def run_gleaner(urls: list[str], root: Path, log, up_args: list[str] = (),
                settings: dict[str, str] | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """``gleaner up`` over the URLs; ``progress(jobs ended, pid of gleaner up)`` is called at each poll."""
    data = root / "gleaner"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLEANER_")} | {
        "GLEANER_DATA_DIR": str(data),
        "GLEANER_ALLOW_PRIVATE_URLS": "127.0.0.1",  # the site is local; the guard refuses it otherwise
        "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0",  # one host serves every page
        "GLEANER_WEB_PORT": str(_free_port()),
    } | (settings or {})
    gleaner = str(Path(sys.executable).with_name("gleaner"))
    up_log = root / "gleaner-up.log"
    up = subprocess.Popen([gleaner, "up", *up_args], env=env, cwd=root, stdout=open(up_log, "w"), stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while up_log.read_text(errors="replace").count(" ready.") < 2:
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gleaner up did not get ready; see {up_log}")
            time.sleep(0.2)
        redis_url = (data / "redis" / "url").read_text().strip() if (data / "redis" / "url").exists() else None
        redis_pid = _redis_pid(env, gleaner)
        pids = descendants(up.pid) + ([redis_pid] if redis_pid else [])
        before = snapshot(pids)
        url_file = root / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        db = sqlite3.connect(data / "gleaner.db", timeout=30)
        started = time.time()
        enqueue = subprocess.Popen([gleaner, "enqueue", "--category", "bench", "--file", str(url_file)], env=env,
                                   stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(enqueue.pid, 0)
        enqueue.returncode = os.waitstatus_to_exitcode(status)
        if enqueue.returncode:
            raise RuntimeError("gleaner enqueue failed")
        ended = 0
        while ended < len(urls):
            time.sleep(0.25)
            ended = db.execute("SELECT count(*) FROM jobs WHERE state IN ('done', 'duplicate', 'failed')").fetchone()[0]
            print(f"\r  gleaner: {ended}/{len(urls)} ended", end="", file=sys.stderr, flush=True)
            if progress:
                progress(ended, up.pid)
            if time.time() - started > 3600:
                raise RuntimeError("gleaner did not finish within an hour")
        print(file=sys.stderr)
        after = snapshot(pids)
        first, last = db.execute("SELECT min(created_at), max(updated_at) FROM jobs").fetchone()
        recorded, finished = _epoch(first), _epoch(last)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(90)
        except subprocess.TimeoutExpired:
            up.kill()
    cpu: dict[str, float] = {"gleaner enqueue": usage.ru_utime + usage.ru_stime}
    for pid, (role, seconds) in after.items():
        role = before.get(pid, (role, 0.0))[0]
        cpu[role] = cpu.get(role, 0.0) + seconds - before.get(pid, (role, 0.0))[1]
    rows = db.execute(
        "SELECT j.url, j.state, j.reason, r.body, r.title, r.duplicate_of FROM jobs j "
        "LEFT JOIN records r ON r.id = j.record_id").fetchall()
    states = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    links = db.execute("SELECT count(*) FROM records WHERE duplicate_of IS NOT NULL").fetchone()[0]
    records = db.execute("SELECT count(*) FROM records WHERE duplicate_of IS NULL").fetchone()[0]
    # Two URLs declaring one canonical URL are one record (the store upserts on it): both jobs are
    # done, and the second one's page is in the books as an update of that record.
    shared = db.execute("SELECT count(*) - count(DISTINCT record_id) FROM jobs WHERE state = 'done'").fetchone()[0]
    db.close()
    bodies = {url: "\n".join(json.loads(body)) if body else "" for url, _state, _reason, body, _t, _d in rows}
    reasons: dict[str, int] = {}
    for _url, state, reason, *_ in rows:
        if state == "failed":
            key = re.sub(r"\d+", "N", reason or "")[:90]
            reasons[key] = reasons.get(key, 0) + 1
    return {"seconds": max(finished - recorded, 1e-9), "start-up": max(recorded - started, 0.0),
            "cpu": cpu, "bodies": bodies, "reasons": reasons,
            "books": {"records": records, "duplicate links": links, "dead letters": states.get("failed", 0),
                      "updates of a record (same canonical URL)": shared,
                      "jobs done": states.get("done", 0), "jobs duplicate": states.get("duplicate", 0)},
            "redis": redis_url}


def _redis_pid(env: dict, gleaner: str) -> int | None:
    import redis

    url = subprocess.run([gleaner, "redis", "start"], env=env, capture_output=True, text=True).stdout.strip()
    try:
        return int(redis.Redis.from_url(url).info("server")["process_id"])
    except Exception:  # noqa: BLE001 - without it the table has no Redis row; say so below
        return None


def _epoch(stamp: str) -> float:
    from datetime import datetime, timezone

    value = datetime.fromisoformat(stamp)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


# --- the peer: Scrapy + trafilatura ----------------------------------------------------------------

def scrapy_worker(url_file: Path, db_file: Path, times_file: Path) -> None:
    """One Scrapy process: crawl the URLs, extract with trafilatura, store each article in SQLite."""
    import scrapy
    import trafilatura
    from scrapy.crawler import CrawlerProcess

    urls = url_file.read_text().split()
    clock = {"opened": None, "last": None}

    class SQLitePipeline:
        def open_spider(self):
            clock["opened"] = time.time()
            self.db = sqlite3.connect(db_file)
            self.db.execute("CREATE TABLE IF NOT EXISTS articles (url TEXT PRIMARY KEY, title TEXT, body TEXT, "
                            "date TEXT, author TEXT)")

        def process_item(self, item):
            self.db.execute("INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?)",
                            (item["url"], item["title"], item["body"], item["date"], item["author"]))
            self.db.commit()  # each article durable once stored, as Gleaner's are
            clock["last"] = time.time()
            return item

        def close_spider(self):
            self.db.close()

    class Articles(scrapy.Spider):
        name = "articles"
        start_urls = urls

        def parse(self, response):
            doc = trafilatura.bare_extraction(response.text, url=response.url, with_metadata=True,
                                              include_comments=False)
            if doc is None or not doc.text:
                self.crawler.stats.inc_value("articles/none")
                return
            yield {"url": response.url, "title": doc.title, "body": doc.text, "date": doc.date,
                   "author": doc.author}

    process = CrawlerProcess(settings={
        "ITEM_PIPELINES": {SQLitePipeline: 300},
        "ROBOTSTXT_OBEY": True,  # as Gleaner does
        "CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 16, "DOWNLOAD_DELAY": 0,
        "LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False,
    })
    process.crawl(Articles)
    process.start()
    times_file.write_text(json.dumps(clock))


def run_peer(urls: list[str], root: Path) -> dict:
    n = os.cpu_count() or 1
    procs = []
    for i in range(n):
        url_file, db_file, times_file = root / f"peer{i}.urls", root / f"peer{i}.db", root / f"peer{i}.times"
        url_file.write_text("\n".join(urls[i::n]) + "\n")
        procs.append((subprocess.Popen([sys.executable, __file__, "--scrapy", str(url_file), str(db_file),
                                        str(times_file)], cwd=root), db_file, times_file))
    cpu: dict[str, float] = {}
    opened, last, bodies, stored = [], [], {}, 0
    for i, (proc, db_file, times_file) in enumerate(procs):
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"scrapy process {i} failed")
        cpu[f"scrapy process {i}"] = usage.ru_utime + usage.ru_stime
        clock = json.loads(times_file.read_text())
        opened.append(clock["opened"])
        last.append(clock["last"] or clock["opened"])
        db = sqlite3.connect(db_file)
        for url, body in db.execute("SELECT url, body FROM articles"):
            bodies[url] = body or ""
            stored += 1
        db.close()
    return {"seconds": max(last) - min(opened), "cpu": cpu, "bodies": bodies,
            "books": {"articles stored": stored, "no text": len(urls) - stored}}


# --- scoring and report -----------------------------------------------------------------------------

def body_scores(pages: list[corpora.Page], base: str, bodies: dict[str, str]) -> dict[str, float]:
    out = {}
    for name in BODY_SETS:
        score = corpora.BodyScore()
        subset = [p for p in pages if p.set == name]
        if not subset:
            continue
        for page in subset:
            corpora.add_body_score(name, score, bodies.get(base + path_of(page), ""), page.body or "")
        out[name] = corpora.headline(name, score)
    return out


def _accounted(books: dict[str, int]) -> int:
    """Gleaner's input as its books hold it: records, duplicate links, dead letters and updates."""
    return sum(books[k] for k in ("records", "duplicate links", "dead letters",
                                  "updates of a record (same canonical URL)"))


def ratio_of(n: int, g: dict, p: dict | None) -> float | None:
    return (n / g["seconds"]) / (n / p["seconds"]) if p else None


def median_round(n: int, rounds: list[tuple[dict, dict | None]]) -> int:
    """The index of the round whose ratio (Gleaner's rate, without a peer) is the median: the
    lower middle one of an even number."""
    keys = [ratio_of(n, g, p) or n / g["seconds"] for g, p in rounds]
    order = sorted(range(len(rounds)), key=keys.__getitem__)
    return order[(len(order) - 1) // 2]


def report(args, pages, base, rounds: list[tuple[dict, dict | None]]) -> str:
    n = len(pages)
    chosen = median_round(n, rounds)
    g, p = rounds[chosen]
    g_rate, lines = n / g["seconds"], []
    gleaner = (f"Gleaner (`gleaner up{' ' + args.up_args + '`' if args.up_args else '`, defaults'}"
               f"{''.join(f', `{x}`' for x in args.setting)})")
    lines += [
        "# End to end on real pages",
        "",
        f"Command: `.venv/bin/python bench/e2e.py{''.join(' ' + (repr(a) if ' ' in a else a) for a in sys.argv[1:])}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}. "
        + ("Gleaner and the peer ran one after the other in this run, on the same URLs"
           + (f", {len(rounds)} times in turn" if len(rounds) > 1 else "") + ".  " if p else "Gleaner alone.  "),
        "Load average (1, 5, 15 min; the machine is shared with other work, so compare the ratio): "
        + "; ".join(f"{when} {a:.2f} {b:.2f} {c:.2f}" for when, (a, b, c) in args.load.items()) + ".",
        "",
        f"{n} pages of the shared corpora ({', '.join(f'{s}: {sum(1 for x in pages if x.set == s)}' for s in args.sets)}) "
        "served on 127.0.0.1 as saved.",
        "",
    ]
    if len(rounds) > 1:
        lines += ["## Rounds", "",
                  "| round | Gleaner, articles/s | peer, articles/s | ratio | CPU an article, Gleaner / peer (ms) "
                  "| Gleaner's books |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for i, (rg, rp) in enumerate(rounds):
            mark = "**" if i == chosen else ""
            cpu = f"{1000 * sum(rg['cpu'].values()) / n:.1f}" + (f" / {1000 * sum(rp['cpu'].values()) / n:.1f}" if rp else "")
            ratio = ratio_of(n, rg, rp)
            peer_rate = f"{n / rp['seconds']:.1f}" if rp else ""
            shown = f"{ratio:.2f}×" if ratio else ""
            lines.append(f"| {mark}{i + 1}{mark} | {n / rg['seconds']:.1f} | {peer_rate} | {shown} | {cpu} | "
                         f"{_accounted(rg['books'])} of {n} |")
        ratios = [r for r in (ratio_of(n, rg, rp) for rg, rp in rounds) if r]
        if ratios:
            lines += ["", f"Median ratio **{statistics.median(ratios):.2f}×** (range {min(ratios):.2f}–{max(ratios):.2f}×); "
                      f"the tables below are round {chosen + 1}'s."]
        lines.append("")
    lines += [
        "## Throughput",
        "",
        "The clocks: Gleaner's from its first job recorded to its last job's end, the peer's from its first "
        "spider opening to its last item stored; neither holds its client's start-up. "
        f"`gleaner enqueue` took {g['start-up']:.2f} s from its start to its first job "
        f"(with it, Gleaner's rate is {n / (g['seconds'] + g['start-up']):.1f} articles/s"
        + (f", {(n / (g['seconds'] + g['start-up'])) / (n / p['seconds']):.2f}×" if p else "") + ").",
        "",
        "| run | seconds | articles/s | ratio |",
        "| --- | --- | --- | --- |",
        f"| {gleaner} | {g['seconds']:.1f} | {g_rate:.1f} | {f'{ratio_of(n, g, p):.2f}×' if p else ''} |",
    ]
    if p:
        lines.append(f"| Scrapy + trafilatura, {os.cpu_count()} processes | {p['seconds']:.1f} | {n / p['seconds']:.1f} | 1.00× |")
    lines += ["", "## CPU per article (user + system, ms)", "", "| process | CPU s | ms per article |", "| --- | --- | --- |"]
    for run in (g, p):
        if not run:
            continue
        for role, seconds in sorted(run["cpu"].items()):
            if seconds >= 0.05:
                lines.append(f"| {role} | {seconds:.1f} | {1000 * seconds / n:.1f} |")
        total = sum(run["cpu"].values())
        lines.append(f"| **all of {'Gleaner' if run is g else 'the peer'}** | **{total:.1f}** | **{1000 * total / n:.1f}** |")
    lines += ["", "## The books", "", "| run | " + " | ".join(g["books"]) + " | accounted |",
              "| --- |" + " --- |" * (len(g["books"]) + 1)]
    accounted = _accounted(g["books"])
    lines.append("| Gleaner | " + " | ".join(str(v) for v in g["books"].values()) +
                 f" | {accounted} of {n}{'' if accounted == n else ' (MISSING)'} |")
    if p:
        lines.append(f"| peer | {p['books']['articles stored']} articles, {p['books']['no text']} without text |" +
                     " |" * (len(g["books"]) - 1) + f" {sum(p['books'].values())} of {n} |")
    if g["reasons"]:
        lines += ["", "Gleaner's dead letters by reason:", ""]
        lines += [f"- {count} × {reason}" for reason, count in sorted(g["reasons"].items(), key=lambda kv: -kv[1])]
    gs = body_scores(pages, args.base, g["bodies"])
    ps = body_scores(pages, args.base, p["bodies"]) if p else {}
    lines += ["", "## Body of what was stored (the set's own metric)", "", "| set | metric | Gleaner | peer |",
              "| --- | --- | --- | --- |"]
    for name, value in gs.items():
        lines.append(f"| {name} | {corpora.body_metric(name)} | {value:.3f} | "
                     f"{ps[name]:.3f} |" if name in ps else f"| {name} | {corpora.body_metric(name)} | {value:.3f} | |")
    return "\n".join(lines) + "\n"


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sets", nargs="+", choices=corpora.SETS, default=None, help="corpora to serve (default: all)")
    parser.add_argument("--skip-peer", action="store_true", help="run Gleaner only")
    parser.add_argument("--up-args", default="", help="arguments for `gleaner up` (e.g. '--concurrency 4'); default none")
    parser.add_argument("--setting", action="append", default=[], metavar="GLEANER_NAME=VALUE",
                        help="a setting for Gleaner's run (repeatable), e.g. GLEANER_ARCHIVE=false")
    parser.add_argument("--rounds", type=positive_int, default=1,
                        help="run Gleaner and the peer this many times in turn; report every round's ratio and "
                             "their median (default 1)")
    parser.add_argument("--quick", action="store_true", help="print the report, do not write it")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "e2e.md")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scrapy", nargs=3, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--copies", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sets = corpora.chosen(args.sets)
    if args.serve:
        return serve(args.sets, args.serve, args.copies)
    if args.scrapy:
        return scrapy_worker(*args.scrapy)
    root = Path(tempfile.mkdtemp(prefix="gleaner-e2e-"))
    site, base = start_site(args.sets, root)
    args.base = base
    try:
        pages = [page for name in args.sets for page in corpora.load(name)]
        urls = [base + path_of(page) for page in pages]
        print(f"{len(urls)} pages served at {base}", file=sys.stderr)
        args.load = {"start": os.getloadavg()}
        rounds: list[tuple[dict, dict | None]] = []
        for i in range(args.rounds):
            here = root / f"round{i + 1}"
            here.mkdir()
            g = run_gleaner(urls, here, sys.stderr, args.up_args.split(), settings_of(parser, args.setting))
            print(f"  gleaner: {len(urls) / g['seconds']:.1f} articles/s", file=sys.stderr)
            p = None
            if not args.skip_peer:
                p = run_peer(urls, here)
                print(f"  peer: {len(urls) / p['seconds']:.1f} articles/s", file=sys.stderr)
            rounds.append((g, p))
            shutil.rmtree(here, ignore_errors=True)
        args.load["end"] = os.getloadavg()
    finally:
        site.terminate()
    text = report(args, pages, base, rounds)
    print(text)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
