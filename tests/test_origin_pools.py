"""The fetcher's connections, pooled by origin (tasks/fetching/netguard.py ``OriginPools``): each
site keeps its own connections alive however many other sites a crawl fetches from, an idle site's
pool is closed after the keep-alive, and a site whose response is still being read keeps its pool.

Real servers on 127.0.0.1, one per origin; a server tells its connections apart by the client's
port, so the tests count connections as the servers saw them.
"""

from __future__ import annotations

import threading

import httpcore
import httpx
import pytest

from tasks.fetching.netguard import AddressGuard, GuardedTransport, OriginPools
from tests.servers import Site


def _counting_site(ports: list[int], release: threading.Event | None = None) -> Site:
    """A site whose page records the client port of each request; with ``release``, it answers
    only once that is set (a response still being read)."""
    site = Site()

    def page(handler):
        ports.append(handler.client_address[1])
        if release is not None:
            release.wait(10)
        return 200, {"Content-Type": "text/html"}, b"<p>ok</p>"

    site.routes["/"] = page
    return site.start()


@pytest.fixture
def sites():
    started: list[Site] = []

    def start(n: int, release: threading.Event | None = None) -> list[tuple[Site, list[int]]]:
        made = []
        for _ in range(n):
            ports: list[int] = []
            made.append((_counting_site(ports, release), ports))
        started.extend(site for site, _ in made)
        return made

    yield start
    for site in started:
        site.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_site_keeps_its_connection_while_more_sites_than_the_keepalive_count_are_fetched(sites):
    # One pool for every site kept max_keepalive_connections idle in all, counting every site's
    # connections: with three sites and two kept, each request closed the others' idle
    # connections and every page of every site opened a new one.
    three = sites(3)
    transport = GuardedTransport(AddressGuard(["127.0.0.1"]), max_keepalive_connections=2)
    with httpx.Client(transport=transport) as client:
        for _ in range(4):
            for site, _ports in three:
                assert client.get(site.url("/")).status_code == 200
    for _site, ports in three:
        assert len(ports) == 4
        assert len(set(ports)) == 1, f"one site opened {len(set(ports))} connections for 4 pages"


def test_an_idle_sites_pool_is_closed_after_the_keepalive(sites):
    (a, a_ports), (b, _) = sites(2)
    clock = Clock()
    pools = OriginPools(httpcore.ConnectionPool, keepalive=5.0, clock=clock)
    assert pools.pool_for(httpcore.URL(a.url("/"))).request("GET", a.url("/")).status == 200
    assert pools.origins() == 1
    held = pools.pool_for(httpcore.URL(a.url("/")))
    assert len(held.connections) == 1

    clock.now += 4.9  # not yet idle for the keep-alive: kept
    assert pools.pool_for(httpcore.URL(b.url("/"))).request("GET", b.url("/")).status == 200
    assert pools.origins() == 2

    clock.now += 5.0  # a's pool was last used 5.0 s ago (b's just now)
    pools.pool_for(httpcore.URL(b.url("/")))
    assert pools.origins() == 1
    assert held.connections == []  # closed: its socket is not held any longer
    # A new request to the site starts a new pool, on a new connection.
    assert pools.pool_for(httpcore.URL(a.url("/"))).request("GET", a.url("/")).status == 200
    assert pools.origins() == 2
    assert len(set(a_ports)) == 2
    pools.close()
    assert pools.origins() == 0


def test_a_site_whose_response_is_being_read_keeps_its_pool(sites):
    release = threading.Event()
    (slow, _), = sites(1, release)
    (quick, _), = sites(1)
    clock = Clock()
    pools = OriginPools(httpcore.ConnectionPool, keepalive=5.0, clock=clock)
    result: dict[str, int] = {}

    def fetch_slow() -> None:
        url = httpcore.URL(slow.url("/"))
        response = pools.handle_request(httpcore.Request("GET", url, headers=[(b"Host", url.host + b":%d" % url.port)]))
        result["status"] = response.status
        response.read()
        response.close()

    reader = threading.Thread(target=fetch_slow)
    reader.start()
    try:
        for _ in range(200):  # until the request is on its connection
            pool = pools.pool_for(httpcore.URL(slow.url("/")))
            if pool.connections and not pool.connections[0].is_idle():
                break
            threading.Event().wait(0.01)
        clock.now += 60.0  # long past the keep-alive, and a sweep is due
        assert pools.pool_for(httpcore.URL(quick.url("/"))).request("GET", quick.url("/")).status == 200
        assert pools.origins() == 2  # the slow site's connection is in use: its pool stays
    finally:
        release.set()
        reader.join(10)
    assert result["status"] == 200
    pools.close()


def test_closing_the_client_closes_every_sites_connections(sites):
    three = sites(3)
    transport = GuardedTransport(AddressGuard(["127.0.0.1"]))
    client = httpx.Client(transport=transport)
    held = []
    for site, _ in three:
        assert client.get(site.url("/")).status_code == 200
        held.append(transport.pools.pool_for(httpcore.URL(site.url("/"))))
    assert all(len(pool.connections) == 1 for pool in held)
    client.close()
    assert all(pool.connections == [] for pool in held)
