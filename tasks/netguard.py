"""The private-address guard, enforced where sockets are opened.

Every TCP connection the fetcher makes goes through ``GuardedBackend``: the host is resolved here,
each address is checked, and the socket connects to the checked address itself. So a redirect to
an internal host, or a name that resolves to one (DNS rebinding included), is refused at the hop
that would reach it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence

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


class GuardedBackend(httpcore.SyncBackend):
    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[override]
        last_error: Exception | None = None
        for address in self.guard.resolve(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"no address for {host}")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool opening sockets through the guard."""

    def __init__(self, guard: AddressGuard, *, max_connections: int = 100) -> None:
        super().__init__(trust_env=False)  # an environment proxy would bypass the guard
        # httpx has no public hook for the network backend; swapping the pool keeps its
        # request mapping and error translation while we own the sockets.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(guard),
        )
