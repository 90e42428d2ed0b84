"""The time limits a solo worker arms around each task itself (worker/timelimits.py): Celery
enforces them only in a prefork pool, and `gleaner up` runs the CPU stages in solo workers."""

from __future__ import annotations

import faulthandler
import signal
import subprocess
import sys
import time

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import text

from tests.conftest import fresh_redis_db
from tests.example_page import news_page
from tests.prose import prose
from tests.servers import REPO, CeleryWorker, Site, base_env, run_cli, wait_for
from worker import inflight
from worker.storage import TERMINAL_STATES, Storage
from worker.timelimits import TimeLimits, runs_tasks_in_main_thread


def test_only_a_pool_running_tasks_in_the_main_thread_gets_them():
    assert runs_tasks_in_main_thread("solo")
    assert not runs_tasks_in_main_thread("prefork")  # Celery's own, from the worker's main process
    assert not runs_tasks_in_main_thread("threads")  # a timer's signal reaches the main thread only
    with pytest.raises(ValueError, match="must come before the hard one"):
        TimeLimits(10, 10)


@pytest.fixture
def limits():
    before = signal.getsignal(signal.SIGALRM)
    yield TimeLimits(0.3, 30).install()
    signal.setitimer(signal.ITIMER_REAL, 0)
    faulthandler.cancel_dump_traceback_later()
    signal.signal(signal.SIGALRM, before)


def test_the_soft_limit_interrupts_the_task_where_it_runs_and_a_disarmed_one_nothing(limits):
    from tests.stalling_stage import spin

    began = time.monotonic()
    limits.arm()
    assert signal.getitimer(signal.ITIMER_PROF)[0] > 29  # the CPU clock's hard limit runs
    with pytest.raises(SoftTimeLimitExceeded, match=r"soft time limit \(0.3 s\) exceeded"):
        spin()
    # Delivered: the wall clock alone ends the task now, so a spinning task is not ended by both
    # clocks at once, with two stacks written into each other.
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    limits.disarm()
    assert time.monotonic() - began >= 0.29  # not before its time
    limits.arm()
    limits.disarm()  # a task that ended in time
    time.sleep(0.6)  # twice the soft limit: nothing is raised, and the hard limit's thread is cancelled


def _ended(code: str) -> subprocess.CompletedProcess:
    """``code`` run in a process of its own, after ``limits = TimeLimits(0.2, 0.8)`` installed and armed."""
    head = ("from worker.timelimits import TimeLimits\n"
            "from tests.stalling_stage import stubborn\n"
            "limits = TimeLimits(0.2, 0.8).install()\n"
            "limits.arm()\n")
    return subprocess.run([sys.executable, "-c", head + code], cwd=REPO, env=base_env(), capture_output=True,
                          text=True, timeout=120)


def test_a_task_that_swallows_the_soft_limit_is_ended_at_the_hard_one_and_shows_where_it_was():
    # It waits without spending CPU: only the wall-clock hard limit, set when the soft one was
    # delivered, can end it.
    proc = _ended("import time\n"
                  "from celery.exceptions import SoftTimeLimitExceeded\n"
                  "def waits_on():\n"
                  "    while True:\n"
                  "        try:\n"
                  "            time.sleep(60)\n"
                  "        except SoftTimeLimitExceeded:\n"
                  "            pass\n"
                  "waits_on()\n")
    assert proc.returncode == 1, proc.stderr
    assert "ran past the soft time limit (0.2 s)" in proc.stderr  # said once, when it was delivered
    assert "Timeout (0:00:00.6" in proc.stderr and "in waits_on" in proc.stderr


def test_a_task_stuck_where_python_never_runs_is_ended_after_the_hard_limit_in_cpu_seconds():
    # A builtin summing in C holds the interpreter and never returns to Python, so the soft limit
    # is never delivered; the process's CPU clock ends it, with the stack it was stuck in.
    proc = _ended("def stuck_in_native_code():\n"
                  "    return sum(range(10 ** 15))\n"
                  "stuck_in_native_code()\n")
    assert proc.returncode == -signal.SIGPROF, proc.stderr
    assert "in stuck_in_native_code" in proc.stderr
    assert "soft time limit" not in proc.stderr


def _job_of(storage: Storage, url: str) -> str:
    with storage.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM jobs WHERE url = :url"), {"url": url}).scalar_one()


@pytest.mark.integration
def test_a_solo_worker_dead_letters_a_page_past_the_soft_limit_and_ends_itself_past_the_hard_one(tmp_path):
    """A real solo worker (tests/stalling_stage.py's table, a stage that never ends on some pages),
    with a visibility timeout of 14 s: the soft limit at 10.5 s, the hard one at 12.6 s."""
    from tests.stalling_stage import PIPELINE as STALLING

    env = base_env(GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'limits.db'}", GLEANER_DATA_DIR=str(tmp_path),
                   GLEANER_REDIS_URL=fresh_redis_db(), GLEANER_PIPELINE="tests.stalling_stage:PIPELINE",
                   GLEANER_HOST_RATE="0", GLEANER_HOST_CONCURRENCY="0",
                   GLEANER_VISIBILITY_TIMEOUT="14", GLEANER_TOTAL_TIMEOUT="0.5")
    worker = CeleryWorker(env, STALLING.names(), pool="solo", concurrency=1, pipeline=STALLING, name="solo").start()
    site = Site().start()
    storage = Storage(env["GLEANER_DATABASE_URL"])
    try:
        spins = site.page("/spin/a.html", news_page(prose("spins", 4), title="The page that spins"))
        fine = site.page("/b.html", news_page(prose("fine", 4), title="The page that passes"))
        result = run_cli("enqueue", spins, fine, env=env)
        assert result.returncode == 0, result.stderr
        jobs = {url: _job_of(storage, url) for url in (spins, fine)}
        wait_for("the jobs to end", lambda: all(storage.get_job(j)["state"] in TERMINAL_STATES for j in jobs.values()),
                 worker, timeout=90)
        spun, passed = storage.get_job(jobs[spins]), storage.get_job(jobs[fine])
        assert spun["state"] == "failed" and spun["stage"] == "stall", dict(spun)
        assert spun["reason"].startswith("internal error in stall: SoftTimeLimitExceeded")
        assert "soft time limit (10.5 s) exceeded" in spun["reason"]
        assert passed["state"] == "done"
        assert worker.proc.poll() is None  # the worker goes on

        stubborn = site.page("/stubborn/c.html", news_page(prose("stubborn", 4), title="The page that holds on"))
        assert run_cli("enqueue", stubborn, env=env).returncode == 0
        wait_for("the hard limit to end the worker", lambda: worker.proc.poll() is not None, worker, timeout=90)
        log = "".join(worker.log)
        # It spins, but the CPU clock stopped when the soft limit was delivered: the wall clock
        # (2.1 s after it) ends the worker, with one stack.
        assert worker.proc.returncode == 1, log[-3000:]
        assert "ran past the soft time limit (10.5 s)" in log and log.count("in stubborn\n") == 1, log[-3000:]
        # Not lost: its message waits in the broker for the visibility timeout, and the ledger has it.
        job = _job_of(storage, stubborn)
        assert storage.get_job(job)["state"] == "queued"
        assert inflight.entry(redis.Redis.from_url(env["GLEANER_REDIS_URL"]), job).stage == "stall"
    finally:
        site.stop()
        worker.stop()
