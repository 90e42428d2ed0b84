"""Fetch benchmark: Gleaner's fetch_page (guarded client, caps, checked redirects) against a plain httpx loop.

    .venv/bin/python bench/fetch.py [--pages 300] [--rounds 3] [--sites 64] [--out bench/results/fetch.md]

A server process on 127.0.0.1 serves gzip-compressed HTML pages of 30-150 KB (uncompressed). In
this process, 1, 8 and 64 threads fetch them: once through ``fetch_page`` with the real guarded
client, once with a plain ``httpx.Client`` doing ``get`` and reading the decoded body, the same
pool sizes for both. Runs alternate within each round, so both meet the same machine noise; the
result is the median of the rounds, read as a ratio.

Then many sites: the same pages spread over ``--sites`` origins (one port each on 127.0.0.1, served
by the same process), fetched in random order by a fetch worker's sixteen threads, each client as
a crawl gets it: the client ``guarded_client`` makes for the fetch worker, and ``httpx.Client()``
with httpx's default pool. Reported beside the pages a second: this process's CPU a page (the
clients run here, the servers elsewhere), how many connections the servers accepted, and the
fetches that failed (counted, not retried: a client's failures are part of the result).
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.fetching.download import FetchLimits  # noqa: E402
from tasks.fetching.pages import fetch_page  # noqa: E402
from tasks.fetching.netguard import AddressGuard, GuardedTransport  # noqa: E402
from tasks.fetching.policy import guarded_client  # noqa: E402
from worker.processes import FETCH_THREADS  # noqa: E402

COMMON = ("the a of and to in on for with said after before during will would could year week that it "
          "was is by at from as council harbour ferry minister budget school river station market").split()
# Both pools keep every connection alive: with fewer kept than threads, the run measures the
# kernel's connection churn (TIME_WAIT, accept backlog), not the clients.
POOL = dict(max_connections=100, max_keepalive_connections=100)


def vocabulary(rng: random.Random, size: int = 8000) -> list[str]:
    # Invented words of natural lengths, so gzip meets prose-like entropy (news HTML shrinks 3-5x).
    return ["".join(rng.choice("etaoinshrdlcumwfgypbvkjxqz"[: rng.randint(8, 26)]) for _ in range(rng.randint(2, 11)))
            for _ in range(size)]


def make_page(n: int, rng: random.Random, words: list[str]) -> bytes:
    """An article-like page of 30-150 KB: markup, navigation, and paragraphs of prose."""
    target = rng.randint(30_000, 150_000)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Story {n}</title>"
             "<link rel='stylesheet' href='/site.css'></head><body><nav>"
             + "".join(f"<a href='/section/{i}'>Section {i}</a>" for i in range(30)) + "</nav><article>"]
    size = sum(map(len, parts))
    while size < target:
        para = "<p class='body-text'>" + " ".join(
            " ".join(rng.choice(COMMON) if rng.random() < 0.4 else rng.choice(words) for _ in range(rng.randint(8, 25)))
            .capitalize() + "." for _ in range(rng.randint(2, 6))) + "</p>\n"
        parts.append(para)
        size += len(para)
    parts.append("</article><footer>Copyright</footer></body></html>")
    return "".join(parts).encode()


def serve(pages: int, port_out: multiprocessing.Queue, sites: int = 1, accepted: Any = None) -> None:
    """Serve the pages on ``sites`` ports (each its own origin); ``accepted`` (a shared integer)
    counts the connections accepted."""
    rng = random.Random(7)
    words = vocabulary(rng)
    bodies = {f"/story/{n}.html": gzip.compress(make_page(n, rng, words), 6) for n in range(pages)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms a page.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            if accepted is not None:
                with accepted.get_lock():
                    accepted.value += 1

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = bodies.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    servers = []
    for _ in range(sites):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 256
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_out.put(([server.server_address[1] for server in servers], sum(map(len, bodies.values()))))
    servers[0].serve_forever()


def run(fetch_one, urls: list[str], concurrency: int) -> tuple[float, int]:
    """Fetch every URL with ``concurrency`` threads; return (seconds, decoded bytes)."""
    chunks = [urls[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[str]) -> int:
        return sum(fetch_one(u) for u in chunk)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(worker, chunks))
    return time.perf_counter() - start, total




def many_sites(pages: int, sites: int, fetches: int, rounds: int, limits: FetchLimits) -> dict[str, list[dict]]:
    """The many-sites rounds: for each client, per round, pages/s, CPU ms a page, connections."""
    ports_out: multiprocessing.Queue = multiprocessing.Queue()
    accepted = multiprocessing.Value("q", 0)
    server = multiprocessing.Process(target=serve, args=(pages, ports_out, sites, accepted), daemon=True)
    server.start()
    ports, _ = ports_out.get(timeout=120)
    rng = random.Random(11)
    urls = [f"http://127.0.0.1:{rng.choice(ports)}/story/{rng.randrange(pages)}.html" for _ in range(fetches)]
    clients: dict[str, Callable[[], httpx.Client]] = {
        "gleaner (guarded_client)": lambda: guarded_client(["127.0.0.1"]),
        "httpx.Client() defaults": lambda: httpx.Client(timeout=20),
    }
    results: dict[str, list[dict]] = {name: [] for name in clients}
    for r in range(rounds):
        order = list(clients.items()) if r % 2 == 0 else list(reversed(clients.items()))
        for name, make in order:
            failed: list[str] = []
            with make() as client:
                def one(url: str, client: httpx.Client = client, guarded: bool = name.startswith("gleaner")) -> int:
                    try:
                        if guarded:
                            return len(fetch_page(url, client, limits)[1])
                        response = client.get(url)
                        response.raise_for_status()
                        return len(response.content)
                    except Exception as exc:  # counted and reported: a client's failures are a result
                        failed.append(f"{type(exc).__name__}: {exc}")
                        return 0

                before_conns, before_cpu = accepted.value, time.process_time()
                seconds, _ = run(one, urls, FETCH_THREADS)
                cpu = time.process_time() - before_cpu
            results[name].append({"pages_s": fetches / seconds, "cpu_ms": cpu / fetches * 1000,
                                  "connections": accepted.value - before_conns, "failed": len(failed),
                                  "errors": sorted(set(failed))[:3]})
            print(f"{sites} sites {name:<26} {fetches / seconds:8.1f} pages/s {cpu / fetches * 1000:6.3f} ms CPU a page "
                  f"{accepted.value - before_conns:6d} connections {len(failed)} failed", file=sys.stderr)
    server.terminate()
    return results


def many_sites_report(results: dict[str, list[dict]], args: argparse.Namespace) -> list[str]:
    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    mine, peer = results
    lines = ["", f"## Many sites ({args.sites} origins, {FETCH_THREADS} threads)", "",
             f"{args.site_fetches} fetches a round of the same pages spread over {args.sites} origins (a port each on "
             f"127.0.0.1), in random order, by {FETCH_THREADS} threads (a fetch worker's); a fresh client each round; "
             f"medians of {args.rounds} alternating rounds. CPU is this process's (the clients'; the servers run in "
             "another), connections are those the servers accepted; a fetch that failed is counted, not retried.", "",
             "| client | pages/s | CPU a page (ms) | connections opened | fetches failed, each round |",
             "|---|---:|---:|---:|---|"]
    for name in results:
        lines.append(f"| {name} | {med(name, 'pages_s'):.0f} | {med(name, 'cpu_ms'):.3f} | {med(name, 'connections'):.0f} "
                     f"| {' / '.join(str(r['failed']) for r in results[name])} |")
    for name in results:
        errors = sorted({e for r in results[name] for e in r["errors"]})
        if errors:
            lines.append(f"\n{name}, failures seen: " + "; ".join(f"`{e[:120]}`" for e in errors[:3]))
    lines += ["", f"Gleaner / httpx defaults: {med(mine, 'pages_s') / med(peer, 'pages_s'):.2f}x the pages a second, "
              f"{med(mine, 'cpu_ms') / med(peer, 'cpu_ms'):.2f}x the CPU a page."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--pages", type=int, default=300, help="distinct pages served (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each table (default 3)")
    parser.add_argument("--concurrency", default="1,8,64", help="threads of the one-site table, comma-separated "
                        "(default 1,8,64)")
    parser.add_argument("--sites", type=int, default=64, help="origins of the many-sites table (default 64)")
    parser.add_argument("--site-fetches", type=int, default=3000,
                        help="fetches a round of the many-sites table (default 3000)")
    parser.add_argument("--out", type=Path, help="write the report here (bench/results/fetch.md); default: print only")
    args = parser.parse_args()

    ports: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.pages, ports), daemon=True)
    server.start()
    (port,), wire_bytes = ports.get(timeout=120)
    urls = [f"http://127.0.0.1:{port}/story/{n}.html" for n in range(args.pages)]

    limits = FetchLimits(max_bytes=10 * 1024 * 1024, user_agent="GleanerBot/bench (+bench@localhost)")
    guarded = httpx.Client(transport=GuardedTransport(AddressGuard(["127.0.0.1"]), **POOL),
                           follow_redirects=False)
    plain = httpx.Client(limits=httpx.Limits(**POOL), timeout=20)

    def gleaner_one(url: str) -> int:
        return len(fetch_page(url, guarded, limits)[1])

    def plain_one(url: str) -> int:
        response = plain.get(url)
        response.raise_for_status()
        return len(response.content)

    variants = {"gleaner fetch_page": gleaner_one, "plain httpx": plain_one}
    for fn in variants.values():  # warm the connection pools and the server
        run(fn, urls[:32], 8)

    results: dict[tuple[str, int], list[float]] = {}
    decoded = 0
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        for fn in variants.values():  # open this many connections before timing
            run(fn, urls[: concurrency * 2], concurrency)
        for r in range(args.rounds):
            order = list(variants.items()) if r % 2 == 0 else list(reversed(variants.items()))
            for name, fn in order:
                seconds, decoded = run(fn, urls, concurrency)
                results.setdefault((name, concurrency), []).append(args.pages / seconds)
                print(f"c={concurrency:<3} {name:<20} {args.pages / seconds:8.1f} pages/s", file=sys.stderr)

    server.terminate()
    sites = many_sites(args.pages, args.sites, args.site_fetches, args.rounds, limits)
    lines = [
        "# Fetch benchmark",
        "",
        f"`.venv/bin/python bench/fetch.py --pages {args.pages} --rounds {args.rounds}` on "
        f"{platform.machine()} ({multiprocessing.cpu_count()} cores, shared), Python {platform.python_version()}, "
        f"httpx {httpx.__version__}.",
        "",
        f"{args.pages} distinct pages, 30-150 KB of HTML each ({decoded / args.pages / 1024:.0f} KB on average, "
        f"{wire_bytes / args.pages / 1024:.0f} KB gzip on the wire), served by a ThreadingHTTPServer in its "
        "own process on 127.0.0.1, keep-alive. Threads in one process fetch them all; median of "
        f"{args.rounds} alternating rounds. `gleaner fetch_page` is the real guarded client "
        "(address guard at connect, socket-level deadline, streaming size caps, gzip inflated "
        "within the cap, redirects followed by hand); `plain httpx` is `httpx.Client.get` with the same "
        "pool sizes (100 connections, all kept alive).",
        "",
        "| concurrent fetches | gleaner fetch_page, pages/s median (min-max) | plain httpx, pages/s median (min-max) "
        "| gleaner / plain |",
        "|---:|---:|---:|---:|",
    ]
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        mine, peer = results[("gleaner fetch_page", concurrency)], results[("plain httpx", concurrency)]
        ours, theirs = statistics.median(mine), statistics.median(peer)
        lines.append(f"| {concurrency} | {ours:.0f} ({min(mine):.0f}-{max(mine):.0f}) | "
                     f"{theirs:.0f} ({min(peer):.0f}-{max(peer):.0f}) | {ours / theirs:.2f} |")
    lines += ["", "Both clients share the machine's two cores with the server process, so the absolute numbers "
              "say more about this machine than about either client; the ratio is the result."]
    lines += many_sites_report(sites, args)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
