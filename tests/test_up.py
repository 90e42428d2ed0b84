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


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ingest(site, path: str, env: dict[str, str], title: str, paragraphs: list[str]) -> None:
    """An article served at ``path``, queued and waited for through the CLI; it must end well."""
    url = site.page(path, news_page(paragraphs, title=title))
    result = run_cli("enqueue", "--wait", "--timeout", "60", url, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_up_runs_everything_and_sigterm_stops_everything(tmp_path, site):
    port = free_port()
    env = base_env(GLEANER_DATA_DIR=str(tmp_path), GLEANER_WEB_PORT=str(port), GLEANER_HOST_RATE="0",
                   GLEANER_PROGRESS_EVERY="1")
    for var in ("GLEANER_REDIS_URL", "GLEANER_DATABASE_URL", "GLEANER_LOG_TASKS"):
        env.pop(var, None)
    log = tmp_path / "up.log"
    up = subprocess.Popen([sys.executable, "-m", "worker.cli", "up"], env=env, cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=log.open("w"), text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the web UI never answered"
            time.sleep(0.3)
        redis_url = EmbeddedRedis(tmp_path).running_url()
        assert redis_url and redis_url.startswith("redis://127.0.0.1:")

        _ingest(site, "/a/up.html", env | {"GLEANER_REDIS_URL": redis_url}, "Night market returns",
                ["The night market returns to the quay on Friday with forty stalls.",
                 "Organisers expect the crowds of last summer to double."])
        children = _children(up.pid)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        assert len(children) == 3 + cores  # fetch worker, a solo stage worker per core, beat, web
        # The job counted in a progress line (every second here) though no task came after it: its
        # stage worker's processes send their counts when idle (metrics.IdleFlush).
        deadline = time.monotonic() + 30
        while "since start 1 through, 0 failed" not in log.read_text():
            assert time.monotonic() < deadline, "no progress line counted the job:\n" + log.read_text()[-3000:]
            time.sleep(0.3)

        # A stage worker that dies (as an out-of-memory kill would end it) is started again, as a
        # prefork pool's main process replaces a pool process, and the next page goes through.
        stage_worker = next(pid for pid in children if " -P solo " in _cmdline(pid))
        os.kill(stage_worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "exited with status -9; started it again" not in log.read_text():
            assert up.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the stage worker was not started again:\n" + log.read_text()[-3000:]
            time.sleep(0.3)
        _ingest(site, "/a/again.html", env | {"GLEANER_REDIS_URL": redis_url}, "Winter ferry timetable",
                ["The ferry timetable changes on Monday for the winter.",
                 "Two evening crossings are dropped until March."])
        children = _children(up.pid)
        assert stage_worker not in children and len(children) == 3 + cores
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(90)
    assert code == 0
    assert not any(_alive(pid) for pid in children)
    assert EmbeddedRedis(tmp_path).running_url() is None  # it started the Redis, so it stopped it
    # The per-task lines are left out by default (GLEANER_LOG_TASKS), from both workers' main
    # processes and the stage worker's pool processes alike, and the HTTP client's line a fetch.
    text = log.read_text()
    assert "Task gleaner.fetch[" not in text and "Task gleaner.parse[" not in text, text[-3000:]
    assert "HTTP Request: GET" not in text, text[-3000:]
    assert "waiting: fetch 0, parse 0, dedupe 0, summarize 0, store 0" in text


def test_celery_task_lines_are_left_out_unless_asked_for_or_at_debug():
    import logging

    from worker.celery_tasks import TASK_LINE_LOGGERS, quiet_task_lines

    root, loggers = logging.getLogger(), [logging.getLogger(name) for name in TASK_LINE_LOGGERS]
    saved = root.level, [lg.level for lg in loggers]
    try:
        root.setLevel(logging.INFO)
        assert quiet_task_lines(log_tasks=True) is False
        assert all(lg.isEnabledFor(logging.INFO) for lg in loggers)
        root.setLevel(logging.DEBUG)
        assert quiet_task_lines(log_tasks=False) is False
        assert all(lg.isEnabledFor(logging.INFO) for lg in loggers)
        root.setLevel(logging.INFO)
        assert quiet_task_lines(log_tasks=False) is True
        assert not any(lg.isEnabledFor(logging.INFO) for lg in loggers)
        assert all(lg.isEnabledFor(logging.ERROR) for lg in loggers)  # a task's failure is still logged
    finally:
        root.setLevel(saved[0])
        for lg, level in zip(loggers, saved[1]):
            lg.setLevel(level)


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


def _start_up_and_read_sizing(tmp_path, *args: str, cores: set[int], workers: int) -> tuple[str, dict[str, list[str]]]:
    """`gleaner up` on ``cores`` only (its CPU affinity): the sizing line it prints and the command
    lines of its ``workers`` Celery workers, by worker name (``-n``); stopped before returning."""
    env = base_env(GLEANER_DATA_DIR=str(tmp_path))
    for var in ("GLEANER_REDIS_URL", "GLEANER_DATABASE_URL"):
        env.pop(var, None)
    up = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--no-web", *args], env=env, cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, cores))
    try:
        sizing = next((line for line in up.stderr if "sizing:" in line), "")
        argvs: dict[str, list[str]] = {}
        deadline = time.monotonic() + 30
        while len(argvs) < workers and time.monotonic() < deadline:  # beat has no -Q
            for pid in _children(up.pid):
                argv = _cmdline(pid).split()
                if "-Q" in argv:
                    argvs[argv[argv.index("-n") + 1].split("@")[0]] = argv
            time.sleep(0.2)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(90)
    return sizing, argvs


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_up_sizes_its_workers_from_the_cores_it_may_use(tmp_path):
    stages = "store,summarize,dedupe,parse"
    one_core = {min(os.sched_getaffinity(0))}
    sizing, argvs = _start_up_and_read_sizing(tmp_path / "default", cores=one_core, workers=2)
    assert "sizing: 1 usable core;" in sizing, sizing
    assert "parse+dedupe+summarize+store: 1 solo worker (one per core)" in sizing, sizing
    assert sorted(argvs) == ["all1", "fetch"]
    assert _flag(argvs["all1"], "-Q") == stages and _flag(argvs["all1"], "-P") == "solo"
    assert _flag(argvs["fetch"], "-P") == "threads" and _flag(argvs["fetch"], "-c") == "16"

    sizing, argvs = _start_up_and_read_sizing(tmp_path / "overridden", "--concurrency", "3", "--fetch-threads", "5",
                                              cores=one_core, workers=4)
    assert "threads pool x 5" in sizing and "3 solo workers" in sizing and "one per core" not in sizing, sizing
    assert sorted(argvs) == ["all1", "all2", "all3", "fetch"]
    assert all(_flag(argvs[f"all{n}"], "-P") == "solo" and _flag(argvs[f"all{n}"], "-c") == "1" for n in (1, 2, 3))
    assert _flag(argvs["fetch"], "-c") == "5"

    sizing, argvs = _start_up_and_read_sizing(tmp_path / "prefork", "--pool", "prefork", cores=one_core, workers=2)
    assert "prefork pool x 1 (one per core)" in sizing, sizing
    assert sorted(argvs) == ["all", "fetch"] and _flag(argvs["all"], "-P") == "prefork" and _flag(argvs["all"], "-c") == "1"
    if len(os.sched_getaffinity(0)) > 1:  # more cores given, more processes
        cores = len(os.sched_getaffinity(0))
        sizing, argvs = _start_up_and_read_sizing(tmp_path / "all", cores=os.sched_getaffinity(0), workers=1 + cores)
        assert f"{cores} solo workers (one per core)" in sizing, sizing
        assert len(argvs) == 1 + cores


def test_a_stage_worker_that_keeps_dying_is_not_started_again_for_ever():
    from worker.processes import Restarts

    restarts = Restarts(limit=2, window=60.0)
    assert restarts.allow("worker-stages-1", 0.0) and restarts.allow("worker-stages-1", 1.0)
    assert not restarts.allow("worker-stages-1", 2.0)  # a crash loop: `gleaner up` stops everything
    assert restarts.allow("worker-stages-2", 2.0)  # counted per process
    assert restarts.allow("worker-stages-1", 61.5)  # the first two are a minute old


def test_up_refuses_a_bad_sizing(tmp_path):
    bad = run_cli("up", "--concurrency", "0", env=base_env(GLEANER_DATA_DIR=str(tmp_path)))
    assert bad.returncode == 2 and "--concurrency" in bad.stderr
