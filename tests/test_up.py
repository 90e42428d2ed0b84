"""`gleaner up` on the embedded default, and `gleaner worker` alone: real processes, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.example_page import news_page
from tests.servers import REPO, base_env, run_cli
from worker.redis_server import EmbeddedRedis, free_port

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_runs_everything_and_sigterm_stops_everything(tmp_path, site):
    port = free_port()
    env = base_env(GLEANER_DATA_DIR=str(tmp_path), GLEANER_WEB_PORT=str(port), GLEANER_HOST_RATE="0")
    for var in ("GLEANER_REDIS_URL", "GLEANER_DATABASE_URL"):
        env.pop(var, None)
    up = subprocess.Popen([sys.executable, "-m", "worker.cli", "up"], env=env, cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert up.poll() is None, up.stderr.read()
            assert time.monotonic() < deadline, "the web UI never answered"
            time.sleep(0.3)
        redis_url = EmbeddedRedis(tmp_path).running_url()
        assert redis_url and redis_url.startswith("redis://127.0.0.1:")

        url = site.page("/a/up.html", news_page(["The night market returns to the quay on Friday with forty stalls.",
                                                  "Organisers expect the crowds of last summer to double."],
                                                 title="Night market returns"))
        result = run_cli("enqueue", "--wait", "--timeout", "60", url, env=env | {"GLEANER_REDIS_URL": redis_url})
        assert result.returncode == 0, result.stdout + result.stderr
        children = _children(up.pid)
        assert len(children) == 4  # fetch worker, stage worker, beat, web
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(90)
    assert code == 0
    assert not any(_alive(pid) for pid in children)
    assert EmbeddedRedis(tmp_path).running_url() is None  # it started the Redis, so it stopped it


def test_worker_command_serves_only_its_queues(tmp_path):
    env = base_env(GLEANER_DATA_DIR=str(tmp_path))
    bad = run_cli("worker", "--queues", "fetch,bogus", env=env)
    assert bad.returncode != 0
    assert "unknown queue(s) bogus" in bad.stderr
    worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--queues", "parse,store", "-c", "1"],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        for line in worker.stdout:
            lines.append(line)
            if " ready." in line or time.monotonic() > deadline:
                break
        banner = "".join(lines)
        assert " ready." in banner
        assert ".> parse" in banner and ".> store" in banner and ".> fetch" not in banner
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
