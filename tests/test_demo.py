"""`gleaner demo` on the embedded default: its own redis-server, SQLite under the data dir."""

import re
import sqlite3

import pytest

from tests.servers import base_env, run_cli
from worker.demo_site import ARTICLES, REPEATED_SLUG, SYNDICATED_SLUG
from worker.redis_server import EmbeddedRedis

pytestmark = pytest.mark.integration


def test_demo_ingests_the_demo_site_through_the_real_pipeline(tmp_path):
    env = base_env(GLEANER_DATA_DIR=str(tmp_path))
    for var in ("GLEANER_REDIS_URL", "GLEANER_DATABASE_URL", "GLEANER_ALLOW_PRIVATE_URLS"):
        env.pop(var, None)
    result = run_cli("demo", "--port", "0", env=env, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(ARTICLES)} records, 1 duplicates, 0 failed." in result.stdout
    assert "Redis: embedded redis-server at redis://127.0.0.1:" in result.stderr
    for article in ARTICLES:
        assert article.title in result.stdout

    db = sqlite3.connect(tmp_path / "gleaner.db")
    rows = dict(db.execute("select url, body from records").fetchall())
    assert len(rows) == len(ARTICLES) + 1
    repeated = next(a for a in ARTICLES if a.slug == REPEATED_SLUG)
    stored = next(body for url, body in rows.items() if url.endswith(f"/news/{REPEATED_SLUG}.html"))
    assert stored.count(repeated.paragraphs[1][:40]) == 1  # printed twice on the page, stored once
    # The same story at two URLs: whichever was stored first is canonical, the other links to it.
    pair = dict(db.execute("select id, duplicate_of from records where url like ?", (f"%/{SYNDICATED_SLUG}.html",)))
    assert len(pair) == 2 and sorted(pair.values(), key=str) == sorted([None, *[k for k, v in pair.items() if v is None]], key=str)
    assert re.search(r"gleaner show [0-9a-f-]{36}", result.stdout)
    # The demo stops the Redis it started.
    assert EmbeddedRedis(tmp_path).running_url() is None
    assert (tmp_path / "redis" / "appendonly.aof").exists() or any((tmp_path / "redis").glob("appendonly*"))
