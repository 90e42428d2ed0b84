"""Misbehaving HTTP routes for tests.Site: trickles, floods, bombs, resets, loops.

Each function returns a route (a callable the Site's handler calls) that writes its own bytes to
the socket, the way a broken or hostile server would. Every loop is bounded in time, so a test
that fails never leaves a server thread writing forever.
"""

from __future__ import annotations

import functools
import gzip
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from tests.servers import Site

Route = object  # what tests.servers.Site accepts as a route value


@pytest.fixture(scope="module")
def shared_site():
    s = Site().start()
    yield s
    s.stop()


@pytest.fixture
def site(shared_site):
    """One server per test module (stopping one takes half a second); each test starts with no routes.

    Import both fixtures into a test module to use them in place of conftest's ``site``.
    """
    shared_site.routes.clear()
    shared_site.hits.clear()
    return shared_site

SHIFT_JIS_TEXT = [
    "東京都は二十一日、新しい防災計画を発表しました。計画では、大きな地震が起きたときに住民が",
    "避難する場所を増やし、学校や公民館に水と食料を備えることにしています。",
    "都の担当者は「一人一人が日ごろから備えることが大切です」と話しています。",
    "また、外国から来た人にも分かるように、やさしい日本語と英語で案内を出すということです。",
]


def shift_jis_page(*, meta: bool = False) -> bytes:
    """A Japanese news page encoded in Shift_JIS; with ``meta`` it declares so in a <meta> tag."""
    head = '<meta charset="Shift_JIS">' if meta else ""
    paragraphs = "".join(f"<p>{p}</p>" for p in SHIFT_JIS_TEXT)
    html = (f"<!DOCTYPE html><html lang='ja'><head>{head}<title>東京都が新しい防災計画を発表</title></head>"
            f"<body><article><h1>東京都が新しい防災計画を発表</h1>{paragraphs}</article></body></html>")
    return html.encode("shift_jis")


def trickle(interval: float = 0.2, limit: float = 20.0) -> Route:
    """Headers at once, then one body byte every ``interval`` seconds, never finishing."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", "1000000")
        h.end_headers()
        _drip(h, b"<p>still coming...", interval, limit)

    return route


def trickle_headers(interval: float = 0.2, limit: float = 20.0) -> Route:
    """A status line, then header bytes one at a time: each read succeeds, the response never ends."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
        _drip(h, b"X-Slow: " + b"a" * 10_000, interval, limit)

    return route


def _drip(h: BaseHTTPRequestHandler, data: bytes, interval: float, limit: float) -> None:
    end = time.monotonic() + limit
    for i in range(len(data) * 1000):
        if time.monotonic() > end:
            break
        try:
            h.wfile.write(data[i % len(data):i % len(data) + 1])
            h.wfile.flush()
        except OSError:
            break
        time.sleep(interval)
    h.close_connection = True


def silent(limit: float = 20.0) -> Route:
    """Accepts the request and says nothing (until the client gives up or ``limit`` passes)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.connection.settimeout(limit)
        try:
            h.connection.recv(1)  # returns when the client closes
        except OSError:
            pass
        h.close_connection = True

    return route


class Flood:
    """A ``size``-byte HTML page with no Content-Length, streamed until the client hangs up.

    ``sent`` tells how much went out before the client stopped reading.
    """

    def __init__(self, size: int = 50 * 1024 * 1024, chunk: int = 64 * 1024) -> None:
        self.size = size
        self.chunk = b"<p>" + b"y" * (chunk - 7) + b"</p>"
        self.sent = 0

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        while self.sent < self.size:
            try:
                h.wfile.write(self.chunk)
            except OSError:
                return
            self.sent += len(self.chunk)


def declared_huge(size: int = 50 * 1024 * 1024) -> Route:
    """Announces a ``size``-byte body in Content-Length and starts sending it."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(size))
        h.end_headers()
        h.close_connection = True
        sent = 0
        while sent < size:
            try:
                h.wfile.write(b"z" * 65536)
            except OSError:
                return
            sent += 65536

    return route


@functools.cache
def gzip_bomb_bytes(inflated: int = 32 * 1024 * 1024) -> bytes:
    """``inflated`` bytes of HTML-ish zeros, gzip-compressed to about a thousandth of that."""
    return gzip.compress(b"<html><body>" + b"\0" * inflated, compresslevel=6)


def gzip_bomb(inflated: int = 32 * 1024 * 1024) -> Route:
    body = gzip_bomb_bytes(inflated)
    return lambda h: (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, body)


def reset_mid_body(sent: int = 5000, declared: int = 100_000) -> Route:
    """Starts a body, then aborts the connection with a TCP reset (SO_LINGER 0)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        h.wfile.write(b"<html><body><p>" + b"r" * sent)
        h.wfile.flush()
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True

    return route


def redirect(location: str, status: int = 302) -> Route:
    return (status, {"Location": location, "Content-Type": "text/plain"}, b"")


class Sequence:
    """Answers with each route in turn, then the last one for ever (e.g. 503, 503, then the page)."""

    def __init__(self, *routes: object) -> None:
        self.routes = list(routes)
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, h: BaseHTTPRequestHandler):
        with self._lock:
            route = self.routes[min(self.calls, len(self.routes) - 1)]
            self.calls += 1
        return route(h) if callable(route) else route


class Listener:
    """A bare TCP listener that only counts connections: proof that nothing reached an address."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
