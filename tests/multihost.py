"""The deployment of deploy/SCALING.md ("A tested layout") built on namespaced hosts, for tests.

    data     10.213.20.10  redis-server (password, AOF) and PostgreSQL (password), on this address only
    site     10.213.20.30  the news site the crawl fetches (served by the test process, bound in here)
    work-a   10.213.20.21  gleaner worker -Q fetch (threads) and -Q parse,dedupe,summarize,store
    work-b   10.213.20.22  the same two workers
    control  10.213.20.40  gleaner beat, gleaner web (token), and where URLs are queued from

Every Gleaner process gets only its GLEANER_* settings from here (nothing of the test session's),
so a process can reach Redis and PostgreSQL only over the bridge, at the data host's address.
Secrets go in files (GLEANER_*_FILE) except on work-b, which has them in plain variables, so both
ways are in use. Each process's output goes to ``<run dir>/logs/<host>-<role>.log``.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import redis as redis_py

from tests.netns import Host, Network, OnHost, wait_until
from tests.servers import REPO, PostgresServer, Site
from worker.redis_server import redis_server_binary, server_config, wait_for_ping

SUBNET = "10.213.20"
ADDRESSES = {"data": 10, "work-a": 21, "work-b": 22, "site": 30, "control": 40}
REDIS_PORT, PG_PORT, WEB_PORT, SITE_PORT = 6379, 5432, 8000, 8080
WORKER_HOSTS = ("work-a", "work-b")
# (role, queues, pool, concurrency) on every worker host: deploy/SCALING.md's split, I/O apart from CPU.
WORKERS = (
    ("fetch", "fetch", "threads", 8),
    ("stages", "parse,dedupe,summarize,store", "threads", 2),
)
VISIBILITY = 20  # seconds: short, so redelivery after a partition fits in a test
# libpq's timeouts, in the database URL as deploy/SCALING.md advises (there 30 s, here scaled to the
# short visibility timeout): a query on a connection whose peer went silent fails after 10 s
# instead of TCP's 15 minutes, and an idle one is found dead by keepalives.
PG_TIMEOUTS = "connect_timeout=5&tcp_user_timeout=10000&keepalives_idle=10&keepalives_interval=5&keepalives_count=2"
# The server's side of it, as deploy/SCALING.md advises (there 30 s): a session whose client went
# silent in the middle of a transaction is ended after 10 s, and its row locks with it. Without
# this, the cut-off host's unfinished store held the lock on its record's URL, and the survivor's
# store of the same job waited on it until the link came back.
PG_SERVER_TIMEOUTS = {"idle_in_transaction_session_timeout": "10s", "tcp_keepalives_idle": "10",
                      "tcp_keepalives_interval": "5", "tcp_keepalives_count": "2", "tcp_user_timeout": "10000"}
# Settings the test changes from their defaults (the rest are a deployment's defaults).
TEST_SETTINGS = {
    "GLEANER_VISIBILITY_TIMEOUT": str(VISIBILITY),
    "GLEANER_TOTAL_TIMEOUT": "5", "GLEANER_READ_TIMEOUT": "3", "GLEANER_CONNECT_TIMEOUT": "2",
    # One site serves every URL; per-host politeness would make a 500-URL run take minutes.
    "GLEANER_HOST_RATE": "0", "GLEANER_HOST_CONCURRENCY": "0",
    "GLEANER_SOURCES_TICK": "2",
    "GLEANER_LOG_TASKS": "true",  # the tests read Celery's per-task lines (task_events)
}


def gleaner(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker.cli", *args]


@dataclass
class Secrets:
    """Random values, so that finding one anywhere it should not be is unambiguous."""

    redis_password: str = field(default_factory=lambda: "redispw-" + secrets.token_hex(12))
    pg_password: str = field(default_factory=lambda: "pgpw-" + secrets.token_hex(12))
    web_token: str = field(default_factory=lambda: "webtoken-" + secrets.token_hex(16))

    def all(self) -> list[str]:
        return [self.redis_password, self.pg_password, self.web_token]


class DataHost:
    """Redis and PostgreSQL on the data host, listening on its address only, with passwords."""

    def __init__(self, host: Host, root: Path, secret: Secrets) -> None:
        self.host = host
        self.root = root
        self.secret = secret
        self.redis_dir = root / "redis"
        self.pg = PostgresServer(root / "postgres")  # for its binaries and directory rules
        self.redis_proc: subprocess.Popen | None = None
        self.pg_proc: subprocess.Popen | None = None

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.secret.redis_password}@{self.host.address}:{REDIS_PORT}/0"

    def database_url(self, database: str = "gleaner", password: str | None = None) -> str:
        password = self.secret.pg_password if password is None else password
        return f"postgresql+psycopg://gleaner:{password}@{self.host.address}:{PG_PORT}/{database}?{PG_TIMEOUTS}"

    def start(self) -> DataHost:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        conf = self.redis_dir / "redis.conf"
        conf.write_text(server_config(self.redis_dir, REDIS_PORT, daemonize=False, host=self.host.address,
                                      password=self.secret.redis_password))
        conf.chmod(0o600)
        self.start_redis()
        self._init_postgres()
        self.start_postgres()
        self.host.call(_create_database, self.database_url("postgres"), "gleaner")
        return self

    def start_redis(self) -> None:
        # Same directory and append-only file every time: a restart finds its data again.
        self.redis_proc = self.host.popen([redis_server_binary(), str(self.redis_dir / "redis.conf")],
                                          env=dict(os.environ), log=self.root / "redis.out")
        self.host.call(wait_for_ping, self.redis_url, 20.0)

    def stop_redis(self, sig: int) -> None:
        """SIGTERM: Redis writes its append-only file and exits. SIGKILL: a crash."""
        assert self.redis_proc is not None
        self.host.stop(self.redis_proc, sig)

    def _init_postgres(self) -> None:
        directory = self.pg.directory
        directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(directory, "postgres")
        pwfile = directory / "pwfile"
        pwfile.write_text(self.secret.pg_password + "\n")
        shutil.chown(pwfile, "postgres")
        pwfile.chmod(0o600)
        initdb = subprocess.run(["runuser", "-u", "postgres", "--", str(self.pg.bindir / "initdb"),
                                 "-D", str(directory / "data"), "-U", "gleaner", "-A", "scram-sha-256",
                                 f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions"],
                                capture_output=True, text=True)
        pwfile.unlink()
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stdout[-2000:]}{initdb.stderr[-2000:]}")
        # Password logins from the bridge's subnet only; no unix socket, no trust anywhere.
        (directory / "data" / "pg_hba.conf").write_text(
            f"host all all {SUBNET}.0/24 scram-sha-256\n")

    def start_postgres(self) -> None:
        self.pg_proc = self.host.popen(
            [str(self.pg.bindir / "postgres"), "-D", str(self.pg.directory / "data"),
             "-c", f"listen_addresses={self.host.address}", "-p", str(PG_PORT),
             "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200",
             *(arg for k, v in PG_SERVER_TIMEOUTS.items() for arg in ("-c", f"{k}={v}"))],
            env=dict(os.environ), log=self.root / "postgres.log", user="postgres")
        self.host.call(_wait_for_postgres, self.database_url("postgres"), self.pg_proc, 60.0)


def _wait_for_postgres(url: str, proc: subprocess.Popen, timeout: float) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.2)


def _create_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


@dataclass
class Proc:
    host: Host
    role: str
    proc: subprocess.Popen
    log: Path

    @property
    def name(self) -> str:
        return f"{self.host.name}/{self.role}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class Cluster:
    """Five hosts on one bridge, Gleaner running on them as deploy/SCALING.md lays it out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.secret = Secrets()
        self.net = Network(SUBNET)
        self.hosts: dict[str, Host] = {}
        self.data: DataHost | None = None
        self.site: Site | None = None
        self.procs: dict[str, Proc] = {}
        self.sources_file = root / "sources.toml"

    # --- building it ------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.net.__enter__()
        for name, octet in ADDRESSES.items():
            self.hosts[name] = self.net.add_host(name, octet)
        self.data = DataHost(self.hosts["data"], self.root / "data", self.secret).start()
        self.site = self.hosts["site"].call(Site, (self.hosts["site"].address, SITE_PORT)).start()
        self._write_secret_files()
        (self.root / "control").mkdir()
        self.sources_file.write_text("# sources.toml: none yet; tests add theirs\n")
        for host in WORKER_HOSTS:
            for role, queues, pool, concurrency in WORKERS:
                self.spawn(host, role, gleaner("worker", "-Q", queues, "-P", pool, "-c", str(concurrency),
                                               "-n", f"{role}@{host}"))
        self.spawn("control", "beat", gleaner("beat"))
        self.spawn("control", "web", gleaner("web"))
        for proc in self.procs.values():
            self.wait_started(proc)
        return self

    def _write_secret_files(self) -> None:
        folder = self.root / "secrets"
        folder.mkdir(mode=0o700)
        for name, value in (("redis_url", self.data.redis_url), ("database_url", self.data.database_url()),
                            ("web_token", self.secret.web_token)):
            path = folder / name
            path.write_text(value + "\n")
            path.chmod(0o600)

    def env(self, host: str, **extra: str | None) -> dict[str, str]:
        """What a Gleaner process on ``host`` is started with: the machine's environment minus
        any GLEANER_* of the test session, plus this host's settings (``extra``: changes, None
        removes one)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLEANER_")}
        secrets_dir = self.root / "secrets"
        env.update(TEST_SETTINGS)
        env.update(
            PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1",
            GLEANER_DATA_DIR=str(self.root / host / "data"),
            # The site is on a private address: the guard refuses it unless allow-listed.
            GLEANER_ALLOW_PRIVATE_URLS=self.hosts["site"].address,
            # Read by whichever fetch worker runs beat's tick, so every host has the same file.
            GLEANER_SOURCES=str(self.sources_file),
        )
        if host == "work-b":  # secrets in plain variables here, in files everywhere else
            env.update(GLEANER_REDIS_URL=self.data.redis_url, GLEANER_DATABASE_URL=self.data.database_url())
        else:
            env.update(GLEANER_REDIS_URL_FILE=str(secrets_dir / "redis_url"),
                       GLEANER_DATABASE_URL_FILE=str(secrets_dir / "database_url"))
        if host == "control":
            env.update(GLEANER_WEB_HOST=self.hosts["control"].address, GLEANER_WEB_PORT=str(WEB_PORT),
                       GLEANER_WEB_TOKEN_FILE=str(secrets_dir / "web_token"))
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def spawn(self, host: str, role: str, argv: list[str], **env: str | None) -> Proc:
        log = self.logs / f"{host}-{role}.log"
        proc = Proc(self.hosts[host], role, self.hosts[host].popen(argv, env=self.env(host, **env), log=log,
                                                                   cwd=REPO), log)
        self.procs[proc.name] = proc
        return proc

    def wait_started(self, proc: Proc, timeout: float = 120.0) -> None:
        marker = {"beat": "beat: Starting", "web": "Uvicorn running on"}.get(proc.role, " ready.")

        def started() -> bool:
            if proc.proc.poll() is not None:
                raise AssertionError(f"{proc.name} exited ({proc.proc.returncode}):\n{proc.text()[-3000:]}")
            return marker in proc.text()

        wait_until(started, timeout=timeout, interval=0.3, what=f"{proc.name} to start")

    def workers(self, host: str | None = None) -> list[Proc]:
        return [p for p in self.procs.values() if p.host.name in WORKER_HOSTS and (host is None or p.host.name == host)]

    # --- using it ---------------------------------------------------------------------------

    def enqueue(self, urls: list[str], category: str) -> subprocess.CompletedProcess:
        """Queue URLs the way an operator does, with `gleaner enqueue` on the control host."""
        listing = self.root / "control" / f"{category}.txt"
        listing.write_text("\n".join(urls) + "\n")
        result = self.hosts["control"].run(gleaner("enqueue", "--category", category, "--file", str(listing)),
                                           env=self.env("control"), cwd=REPO)
        (self.logs / f"control-enqueue-{category}.log").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, result.stderr
        return result

    @functools.cached_property
    def redis(self) -> OnHost:
        """A client of the data host's Redis, used from the control host."""
        return OnHost(self.hosts["control"], redis_py.Redis.from_url, self.data.redis_url, socket_timeout=10)

    def close(self) -> None:
        if "redis" in self.__dict__:
            self.redis.close()
        if self.site is not None:
            self.site.stop()
        self.net.close()  # stops every process of every host, then removes the namespaces


# --- reading Celery's logs -------------------------------------------------------------------

_TASK_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/[\w-]+\] Task ([\w.]+)\[([0-9a-f-]+)\] (\w+)")
_ANY_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")


def log_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def task_events(text: str) -> list[tuple[float, str, str, str]]:
    """(time, task name, task id, event) for each 'Task name[id] event' line of a worker's log."""
    out = []
    for line in text.splitlines():
        m = _TASK_LINE.match(line)
        if m:
            out.append((log_time(m.group(1)), m.group(2), m.group(3), m.group(4)))
    return out


def lines_after(text: str, since: float, needle: str) -> list[str]:
    """The log lines stamped after ``since`` (epoch seconds) that contain ``needle``."""
    out = []
    for line in text.splitlines():
        m = _ANY_LINE.match(line)
        if m and log_time(m.group(1)) > since and needle in line:
            out.append(line)
    return out


def held_at(text: str, moment: float) -> set[str]:
    """Task ids a worker had received and not yet finished at ``moment``."""
    held: set[str] = set()
    for stamp, _name, task_id, event in task_events(text):
        if stamp > moment:
            break
        if event == "received":
            held.add(task_id)
        else:
            held.discard(task_id)
    return held

