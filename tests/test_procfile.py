"""The Procfile under a Procfile runner (honcho): web, workers, beat and Flower, for real."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_redis_db
from tests.example_page import news_page
from tests.servers import REPO, base_env, run_cli
from worker.redis_server import free_port

pytestmark = pytest.mark.integration


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code < 500:
                return response
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "the Procfile runner exited"
        assert time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.3)


def test_procfile_runs_the_whole_system(tmp_path, site):
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or shutil.which("honcho")
    if honcho is None:
        pytest.skip("honcho is not installed (pip install honcho)")
    web_port, flower_port = free_port(), free_port()
    env = base_env(GLEANER_DATA_DIR=str(tmp_path), GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}",
                   GLEANER_WEB_PORT=str(web_port), FLOWER_PORT=str(flower_port), GLEANER_HOST_RATE="0",
                   GLEANER_REDIS_URL=fresh_redis_db(), GLEANER_FLOWER_URL=f"http://127.0.0.1:{flower_port}",
                   PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    runner = subprocess.Popen([honcho, "start", "-f", str(REPO / "Procfile"), "-d", str(REPO)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert _wait_http(f"http://127.0.0.1:{web_port}/api/stats", runner).status_code == 200
        assert _wait_http(f"http://127.0.0.1:{flower_port}/healthcheck", runner).status_code == 200
        url = site.page("/a/procfile.html", news_page(
            ["The ferry company added a second evening crossing for the holiday weekend.",
             "Tickets for the extra sailing went on sale on Monday and sold out within hours."],
            title="Extra evening ferry added"))
        result = run_cli("enqueue", "--wait", "--timeout", "90", url, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        overview = httpx.get(f"http://127.0.0.1:{web_port}/", timeout=5).text
        assert f'href="http://127.0.0.1:{flower_port}' in overview  # the overview links to Flower
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        assert runner.wait(90) is not None
