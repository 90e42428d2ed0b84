"""Fetch benchmark: Gleaner's fetch_page (guarded client, caps, checked redirects) against a plain httpx loop.

    .venv/bin/python bench/fetch.py [--pages 300] [--rounds 3] [--out bench/results/fetch.md]

A server process on 127.0.0.1 serves gzip-compressed HTML pages of 30-150 KB (uncompressed). In
this process, 1, 8 and 64 threads fetch them: once through ``fetch_page`` with the real guarded
client, once with a plain ``httpx.Client`` doing ``get`` and reading the decoded body, the same
pool sizes for both. Runs alternate within each round, so both meet the same machine noise; the
result is the median of the rounds, read as a ratio.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import platform
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.fetching.download import FetchLimits  # noqa: E402
from tasks.fetching.pages import fetch_page  # noqa: E402
from tasks.fetching.netguard import AddressGuard, GuardedTransport  # noqa: E402

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


def serve(pages: int, port_out: multiprocessing.Queue) -> None:
    rng = random.Random(7)
    words = vocabulary(rng)
    bodies = {f"/story/{n}.html": gzip.compress(make_page(n, rng, words), 6) for n in range(pages)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms a page.
        disable_nagle_algorithm = True

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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    port_out.put((server.server_address[1], sum(map(len, bodies.values()))))
    server.serve_forever()


def run(fetch_one, urls: list[str], concurrency: int) -> tuple[float, int]:
    """Fetch every URL with ``concurrency`` threads; return (seconds, decoded bytes)."""
    chunks = [urls[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[str]) -> int:
        return sum(fetch_one(u) for u in chunk)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(worker, chunks))
    return time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    ports: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.pages, ports), daemon=True)
    server.start()
    port, wire_bytes = ports.get(timeout=120)
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
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
