"""The private-address guard: checked after DNS resolution, at every hop, before any connection.

Names are resolved by stubs here, so no lookup or connection ever leaves the machine: the only
address connected to is 127.0.0.1 (allow-listed), where the test's own server listens.
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from tasks.fetching.download import FetchLimits
from tasks.fetching.pages import fetch_page
from tasks.fetching.netguard import AddressGuard, GuardedTransport, forbidden_kind
from tests import badserver
from tests.badserver import shared_site, site  # noqa: F401 - fixtures
from worker.errors import PrivateAddressError

LIMITS = FetchLimits(connect_timeout=2, read_timeout=2, total_timeout=5, max_bytes=100_000)
PAGE = (200, {"Content-Type": "text/html"}, b"<html><body><p>ok</p></body></html>")


def stub(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"stub resolver: no such host {host}")
        return table[host]

    return resolve


def client_with(guard: AddressGuard) -> httpx.Client:
    return httpx.Client(transport=GuardedTransport(guard), follow_redirects=False)


@pytest.mark.parametrize("address,kind", [
    ("127.0.0.1", "loopback"), ("127.0.0.2", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("fd00:ec2::254", "private"),  # AWS's IPv6 metadata address
    ("169.254.169.254", "link-local (cloud metadata lives here)"), ("fe80::1", "link-local (cloud metadata lives here)"),
    ("100.100.100.200", "private"),  # Alibaba's metadata address, in carrier-grade NAT space
    ("0.0.0.0", "reserved"), ("224.0.0.1", "reserved"), ("240.0.0.1", "reserved"),
    ("::ffff:169.254.169.254", "link-local (cloud metadata lives here)"),  # IPv4-mapped IPv6
    ("::ffff:127.0.0.1", "loopback"),
])
def test_internal_addresses_are_named(address, kind):
    assert forbidden_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:84e5"])
def test_public_addresses_pass(address):
    assert forbidden_kind(ipaddress.ip_address(address)) is None


def test_a_name_resolving_to_the_metadata_service_is_refused():
    guard = AddressGuard(["127.0.0.1"], resolver=stub({"metadata.test": ["169.254.169.254"]}))
    with pytest.raises(PrivateAddressError, match="metadata.test resolves to 169.254.169.254, a link-local"):
        guard.resolve("metadata.test", 80)


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    guard = AddressGuard([], resolver=stub({"mixed.test": ["93.184.215.14", "10.0.0.5"]}))
    with pytest.raises(PrivateAddressError, match="10.0.0.5, a private"):
        guard.resolve("mixed.test", 443)


def test_allow_list_takes_hosts_addresses_and_networks():
    guard = AddressGuard(["Intranet.Test", "10.0.0.0/8", "::1"], resolver=stub({
        "intranet.test": ["192.168.0.9"], "wiki.test": ["10.9.9.9"], "v6.test": ["::1"], "db.test": ["192.168.0.10"]}))
    assert guard.resolve("intranet.test", 80) == ["192.168.0.9"]  # listed by name
    assert guard.resolve("wiki.test", 80) == ["10.9.9.9"]  # inside a listed network
    assert guard.resolve("v6.test", 80) == ["::1"]
    with pytest.raises(PrivateAddressError):
        guard.resolve("db.test", 80)


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f000002", "0177.0.0.2", "127.2"])
def test_odd_spellings_of_loopback_are_resolved_then_refused(spelling):
    # Resolving a numeric spelling happens in-process (getaddrinfo) and sends nothing anywhere.
    guard = AddressGuard([])
    with pytest.raises(PrivateAddressError, match="a loopback address"):
        guard.resolve(spelling, 80)


def test_a_name_is_fetched_only_at_the_address_it_was_checked_at(site):
    site.routes["/a.html"] = PAGE
    port = int(site.base_url.rsplit(":", 1)[1])
    guard = AddressGuard(["127.0.0.1"], resolver=stub({"news.test": ["127.0.0.1"], "evil.test": ["10.0.0.7"]}))
    with client_with(guard) as client:
        page, body = fetch_page(f"http://news.test:{port}/a.html", client, LIMITS)
        assert b"ok" in body and page.final_url == f"http://news.test:{port}/a.html"
        with pytest.raises(PrivateAddressError, match="evil.test resolves to 10.0.0.7"):
            fetch_page(f"http://evil.test:{port}/a.html", client, LIMITS)


def test_every_redirect_hop_is_checked_again(site):
    site.routes["/go"] = badserver.redirect("http://internal.test/latest/meta-data/")
    port = int(site.base_url.rsplit(":", 1)[1])
    guard = AddressGuard(["127.0.0.1"], resolver=stub({"news.test": ["127.0.0.1"],
                                                        "internal.test": ["169.254.169.254"]}))
    with client_with(guard) as client, pytest.raises(PrivateAddressError, match="internal.test resolves to 169.254"):
        fetch_page(f"http://news.test:{port}/go", client, LIMITS)


def test_loopback_outside_the_allow_list_is_refused_and_never_connected(site):
    inside = badserver.Listener("127.0.0.3")
    try:
        with client_with(AddressGuard(["127.0.0.1"])) as client, pytest.raises(PrivateAddressError):
            fetch_page(f"http://127.0.0.3:{inside.port}/", client, LIMITS)
        assert inside.accepted == 0
    finally:
        inside.close()


def test_an_environment_proxy_cannot_route_around_the_guard(site, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would be used by a trust_env client
    site.routes["/p.html"] = PAGE
    with client_with(AddressGuard(["127.0.0.1"])) as client:
        assert fetch_page(site.url("/p.html"), client, LIMITS)[0].status == 200
