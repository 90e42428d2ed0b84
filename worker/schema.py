"""Bringing a database's schema to the current Alembic revision, once, whoever gets there first,
and its indexes' stored settings up to date (``prepare``: what every process does at start)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from worker.similar import tune_index

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x676C65616E  # any constant: every Gleaner process takes the same advisory lock


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine, conn: Connection) -> Iterator[None]:
    # Several workers start at once; only one may run DDL.
    if engine.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(f"{engine.url.database}.migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    else:
        yield


def upgrade(engine: Engine) -> bool:
    """Migrate to head if needed; True if anything ran."""
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return False
    with engine.connect() as conn:
        with _migration_lock(engine, conn):
            conn.commit()
            if current_revision(conn) == head:
                return False
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
    return True


def prepare(engine: Engine) -> None:
    """What a process does with its database at start (worker/storage.py ``Storage``): migrate to
    head, then apply the settings an index keeps in itself, which a migration written before they
    were chosen did not set (a database made then gets them now)."""
    upgrade(engine)
    with engine.begin() as conn:
        tune_index(conn)
