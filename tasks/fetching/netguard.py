"""The private-address guard and the whole-fetch deadline, enforced where sockets are opened.

Every TCP connection the fetcher makes goes through ``GuardedBackend``: the host is resolved here,
each address is checked, and the socket connects to the checked address itself. So a redirect to
an internal host, or a name that resolves to one (DNS rebinding included), is refused at the hop
that would reach it. Every socket operation is also bounded by the calling thread's ``deadline``,
so a server that trickles its headers or body a byte at a time cannot outlast the total timeout.
The connections are pooled by origin (``OriginPools``): a crawl of many sites keeps each site's
connections alive, and each request looks only at its own site's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import httpcore
import httpx

from worker.errors import PrivateAddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Ranges that Python's is_private does not already cover but that reach internal services.
_EXTRA_BLOCKED = [ipaddress.ip_network("100.64.0.0/10")]  # carrier-grade NAT, some cloud metadata


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def forbidden_kind(ip: IPAddress) -> str | None:
    """Why this address is off limits, or None if it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata lives here)"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "reserved"
    if ip.is_private or any(ip in net for net in _EXTRA_BLOCKED):
        return "private"
    return None


class AddressGuard:
    """Refuses private, loopback, link-local and reserved addresses unless allow-listed.

    ``allow`` holds host names (matched exactly, case-insensitively) and addresses or CIDRs.
    """

    def __init__(self, allow: Iterable[str] = (), resolver: Resolver = system_resolver) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            entry = entry.strip()
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))
        self.resolver = resolver

    def allowed_address(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.networks if net.version == ip.version)

    def resolve(self, host: str, port: int) -> Sequence[str]:
        """Resolve host and return its addresses, or raise if any of them is off limits."""
        host = host.strip("[]")
        try:
            addresses = [host] if _is_ip(host) else self.resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if host.lower().rstrip(".") in self.hosts:
            return addresses
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            kind = forbidden_kind(ip)
            if kind and not self.allowed_address(ip):
                raise PrivateAddressError(
                    f"refused: {host} resolves to {address}, a {kind} address "
                    "(allow it with GLEANER_ALLOW_PRIVATE_URLS)"
                )
        return addresses


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


_deadline = threading.local()


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Bound every socket operation of this thread's fetch by ``at`` (a ``time.monotonic()`` value).

    httpx's timeouts bound one read each; a peer sending a byte every second never trips them.
    """
    previous = getattr(_deadline, "at", None)
    _deadline.at = at
    try:
        yield
    finally:
        _deadline.at = previous


def past_deadline() -> bool:
    at = getattr(_deadline, "at", None)
    return at is not None and time.monotonic() >= at


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    remaining = at - time.monotonic()
    if remaining <= 0:
        raise error("the fetch's total deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


class DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation waits no longer than the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[override]
        last_error: Exception | None = None
        for address in self.guard.resolve(host, port):
            try:
                stream = super().connect_tcp(address, port, _bounded(timeout, httpcore.ConnectTimeout),
                                             local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
                continue
            return DeadlineStream(stream)
        raise last_error or httpcore.ConnectError(f"no address for {host}")


KEEPALIVE = 5.0  # seconds an idle connection is kept for the next request to its origin


class OriginPools:
    """httpcore connection pools, one for each origin (scheme, host and port), in place of one pool
    for every host: what ``httpx.HTTPTransport`` asks of its pool (``handle_request``, ``close``,
    the context manager), routed by the request's origin.

    A pool's bookkeeping looks at every connection it holds, on each request and on each response's
    end: whether it is idle, whether it has expired, and for each idle one whether its socket is
    readable (a system call). One pool for a crawl of many sites does that over every site's
    connections for every page, and (httpcore 1.0) closes idle connections until it holds no more
    than ``max_keepalive_connections`` in all, idle or not: a crawl of more sites than that closes
    the other sites' idle connections at each request, and the next page of a site opens a new one
    (a TCP and a TLS handshake) where one was kept for it. A pool per origin looks only at that
    site's few connections, and keeps each one until it has been idle ``keepalive`` seconds (as
    long as no site has more than ``max_keepalive_connections`` at once; a fetch worker's sixteen
    threads never do): bench/results/fetch.md, "Many sites".

    A pool none of whose connections is in use and that took no request for ``keepalive`` seconds
    is closed and dropped (looked for at most once every ``keepalive`` seconds), so a crawl over
    thousands of sites holds the sockets of those it fetched from lately only.
    """

    def __init__(self, make_pool: Callable[[], httpcore.ConnectionPool], *, keepalive: float = KEEPALIVE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._make_pool = make_pool
        self.keepalive = keepalive
        self._clock = clock
        self._lock = threading.Lock()
        self._pools: dict[tuple[bytes, bytes, int | None], tuple[httpcore.ConnectionPool, float]] = {}
        self._swept_at = clock()

    def pool_for(self, url: httpcore.URL) -> httpcore.ConnectionPool:
        """The origin's pool (made on its first request), marked as used now."""
        key = (url.scheme, url.host, url.port)
        with self._lock:
            now = self._clock()
            if now - self._swept_at >= self.keepalive:
                self._sweep(now)
            entry = self._pools.get(key)
            pool = entry[0] if entry is not None else self._make_pool()
            self._pools[key] = (pool, now)
            return pool

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        return self.pool_for(request.url).handle_request(request)

    def origins(self) -> int:
        """How many origins have a pool now."""
        with self._lock:
            return len(self._pools)

    def _sweep(self, now: float) -> None:
        # Called with the lock held. A pool whose last request came more than ``keepalive`` ago
        # and whose connections are all idle (or which holds none) serves nobody: a thread about to
        # use it would have marked it used under this lock.
        self._swept_at = now
        for key, (pool, used_at) in list(self._pools.items()):
            if now - used_at >= self.keepalive and all(c.is_idle() or c.is_closed() for c in pool.connections):
                del self._pools[key]
                pool.close()

    def close(self) -> None:
        with self._lock:
            pools = [pool for pool, _ in self._pools.values()]
            self._pools.clear()
        for pool in pools:
            pool.close()

    def __enter__(self) -> OriginPools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connections opened through the guard, pooled by origin
    (``pools``); ``max_connections`` and ``max_keepalive_connections`` bound each origin's pool."""

    def __init__(self, guard: AddressGuard, *, max_connections: int = 100, max_keepalive_connections: int = 20,
                 keepalive: float = KEEPALIVE) -> None:
        super().__init__(trust_env=False)  # an environment proxy would bypass the guard
        backend = GuardedBackend(guard)
        ssl_context = httpx.create_ssl_context()

        def pool() -> httpcore.ConnectionPool:
            return httpcore.ConnectionPool(ssl_context=ssl_context, max_connections=max_connections,
                                           max_keepalive_connections=max_keepalive_connections,
                                           keepalive_expiry=keepalive, network_backend=backend)

        # httpx has no public hook for the network backend; swapping the pool keeps its
        # request mapping and error translation while we own the sockets and the pooling.
        self.pools = OriginPools(pool, keepalive=keepalive)
        self._pool = self.pools  # type: ignore[assignment]
