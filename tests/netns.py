"""Several hosts on one machine, for multi-host tests: Linux network namespaces on a bridge.

Each :class:`Host` is a network namespace with its own loopback and one interface (``eth0``, a
veth pair whose other end is on the test's own bridge) holding an address the test assigns. The
root namespace gets no address on the bridge and no namespace gets a default route or NAT, so
traffic stays between the test's namespaces and never reaches the outside world.

As a guard against a test that forgets to run a client inside a host (a socket opened by the test
process itself would leave through the machine's default route), the root namespace gets an
``unreachable`` route for the subnet while the network exists: such a connection fails at once.

Names carry the test process's pid (``glmh-<pid>-<host>``, bridge ``glmh<pid>``), so two runs on
one machine do not collide, and the leftovers of a run that died (its pid gone) are removed when
the next one starts. Needs root and iproute2; :func:`unavailable` says why not, for a skip.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "glmh"
GUARD_NET = "10.213"  # subnets are taken from 10.213.0.0/16; guard routes outside it are not ours
CLONE_NEWNET = 0x40000000  # <sched.h>
NETNS_DIR = Path("/run/netns")  # where `ip netns add` mounts a namespace by name
STOP_GRACE = 20.0  # seconds a process gets between SIGTERM and SIGKILL

T = TypeVar("T")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def unavailable() -> str | None:
    """Why namespaces cannot be made here (a reason to skip), or None when they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are a Linux feature"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CI runs the suite as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_everything_in(netns: str) -> None:
    """SIGKILL the processes left in one of our namespaces (ours: we created the namespace)."""
    pids = _ip("netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def clean_stale() -> list[str]:
    """Remove namespaces and bridges of earlier runs whose process is gone (or whose pid is ours,
    reused from a crashed run). Returns what was removed."""
    removed = []
    me = os.getpid()
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.fullmatch(rf"{PREFIX}-(\d+)-[\w-]+", name)
        if m and (int(m.group(1)) == me or not _alive(int(m.group(1)))):
            _kill_everything_in(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        m = re.match(rf"\d+: ({PREFIX}(\d+)):", line)
        if m and (int(m.group(2)) == me or not _alive(int(m.group(2)))):
            _ip("link", "del", m.group(1), check=False)
            removed.append(m.group(1))
    # The guard routes carry their run's pid as the metric.
    for line in _ip("route", "show", "type", "unreachable", check=False).stdout.splitlines():
        m = re.fullmatch(r"unreachable (\S+) metric (\d+)\s*", line)
        if m and m.group(1).startswith(f"{GUARD_NET}.") and (int(m.group(2)) == me or not _alive(int(m.group(2)))):
            _ip("route", "del", "unreachable", m.group(1), "metric", m.group(2), check=False)
            removed.append(f"route {m.group(1)}")
    return removed


def _enter(netns: str) -> None:
    """Move the calling thread into a namespace (setns(2) moves only the calling thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Host:
    """One namespace: an address on the bridge, processes started in it, code run from it."""

    def __init__(self, network: Network, name: str, address: str, index: int) -> None:
        self.name = name
        self.address = address
        self.netns = f"{PREFIX}-{network.tag}-{name}"
        self.interface = "eth0"
        self._outer = f"{PREFIX}{network.tag}{index}"  # the veth's end on the bridge
        self._network = network
        self._thread: ThreadPoolExecutor | None = None
        self.processes: list[subprocess.Popen] = []

    def create(self) -> Host:
        _ip("netns", "add", self.netns)
        _ip("link", "add", self._outer, "type", "veth", "peer", "name", self.interface, "netns", self.netns)
        _ip("link", "set", self._outer, "master", self._network.bridge, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/{self._network.prefix_length}", "dev", self.interface)
        _ip("-n", self.netns, "link", "set", "lo", "up")
        _ip("-n", self.netns, "link", "set", self.interface, "up")
        return self

    # --- the link ---------------------------------------------------------------------------

    def link_down(self) -> None:
        """Cut the host off the network: its interface goes down; its processes keep running."""
        _ip("-n", self.netns, "link", "set", self.interface, "down")

    def link_up(self) -> None:
        _ip("-n", self.netns, "link", "set", self.interface, "up")

    # --- running things in it ---------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn on a thread that lives in this namespace: sockets it opens (clients, listening
        servers) belong to the host and keep working when used from other threads."""
        if threading.current_thread().name.startswith(self.netns + "_"):
            return fn(*args, **kwargs)  # already there (an OnHost method used inside a call)
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=self.netns, initializer=_enter,
                                              initargs=(self.netns,))
        return self._thread.submit(fn, *args, **kwargs).result()

    def popen(self, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path | None = None,
              user: str | None = None) -> subprocess.Popen:
        """Start a process in this namespace (its own session), output appended to ``log``."""
        prefix = ["ip", "netns", "exec", self.netns] + (["runuser", "-u", user, "--"] if user else [])
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(prefix + argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(proc)
        return proc

    def run(self, argv: list[str], *, env: dict[str, str], cwd: Path | None = None,
            timeout: float = 180.0) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = STOP_GRACE) -> None:
        """Signal a process's whole group; SIGKILL it if it has not ended after ``grace``."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            self.stop(proc, grace=5.0)

    def close(self) -> None:
        self.stop_all()
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)
        _kill_everything_in(self.netns)
        _ip("netns", "del", self.netns, check=False)  # takes its veth, and so the bridge's end, along


class OnHost:
    """An object (a Redis client, an engine...) whose every method runs on its host's thread, so
    the connections it opens are the host's. Objects its methods return are not wrapped: use
    ``host.call`` with a function for pipelines and the like."""

    def __init__(self, host: Host, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._host = host
        self._obj = host.call(factory, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._host.call(attr, *args, **kwargs)


class Network:
    """A bridge and the hosts on it. Use as a context manager: closing removes everything."""

    def __init__(self, subnet: str = f"{GUARD_NET}.20", prefix_length: int = 24) -> None:
        if not subnet.startswith(f"{GUARD_NET}.") or prefix_length != 24:
            raise ValueError(f"subnets are {GUARD_NET}.N.0/24")
        self.tag = str(os.getpid())
        self.bridge = f"{PREFIX}{self.tag}"
        self.subnet = subnet  # the first three octets; hosts get subnet.N
        self.prefix_length = prefix_length
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Network:
        clean_stale()
        _ip("route", "add", "unreachable", self.cidr, "metric", self.tag)
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        return self

    @property
    def cidr(self) -> str:
        return f"{self.subnet}.0/{self.prefix_length}"

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, name: str, last_octet: int) -> Host:
        host = Host(self, name, f"{self.subnet}.{last_octet}", len(self.hosts))
        self.hosts[name] = host
        return host.create()

    def close(self) -> None:
        """Stop every process while the network still carries their goodbyes (the last hosts
        added, the clients, first), then remove the namespaces, the bridge and the guard route.
        A connection killed after its peer's namespace is gone lingers as an orphan socket and
        keeps its namespace alive for minutes."""
        hosts = list(self.hosts.values())[::-1]
        for host in hosts:
            host.stop_all()
        for host in hosts:
            try:
                host.close()
            except Exception as exc:  # noqa: BLE001 - remove the rest whatever one host did
                print(f"netns: closing {host.netns}: {exc}", file=sys.stderr)
        _ip("link", "del", self.bridge, check=False)
        _ip("route", "del", "unreachable", self.cidr, "metric", self.tag, check=False)


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.2, what: str = "") -> T:
    """Poll until predicate() is truthy and return it; AssertionError naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)
