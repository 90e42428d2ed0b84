"""The archive through real workers: a fetched page is kept and `gleaner show --raw` prints it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.example_page import news_page
from tests.servers import run_cli

pytestmark = pytest.mark.integration

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _stored(result) -> str:
    assert result.returncode == 0, result.stderr
    url, record_id = result.stdout.strip().split("\t")
    assert re.fullmatch(UUID_RE, record_id), result.stdout
    return record_id


def test_a_fetched_page_is_archived_and_shown_raw(pipeline):
    env, storage, site = pipeline
    html = news_page(["The lighthouse on the north cape will be lit again on Friday after two years of repairs.",
                      "Its keeper said the new lamp can be seen forty kilometres out at sea."],
                     title="Lighthouse lit again")
    url = site.page("/a/lighthouse.html", html)
    record_id = _stored(run_cli("enqueue", "--wait", url, env=env))

    at = storage.archived_page(record_id)
    assert at is not None and not Path(at.file).is_absolute()
    assert (Path(env["GLEANER_DATA_DIR"]) / "archive" / at.file).is_file()
    shown = run_cli("show", record_id, "--raw", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == html

    unarchived = run_cli("show", "--raw", record_id, env={**env, "GLEANER_ARCHIVE_DIR": str(Path(env["GLEANER_DATA_DIR"]) / "elsewhere")})
    assert unarchived.returncode == 1 and "is gone" in unarchived.stderr
