"""Backpressure (worker/backpressure.py): a worker stops taking a stage's messages while too many
wait for the stages after it, and takes them again at half as many; nothing is lost meanwhile."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time

import pytest
import redis

from tests.conftest import fresh_redis_db
from tests.example_page import news_page
from tests.prose import prose
from tests.servers import REPO, CeleryWorker, RedisServer, Site, base_env, run_cli
from worker.backpressure import Gate, check, gates, later_stages
from worker.metrics import queue_depths
from worker.pipeline import PIPELINE
from worker.processes import celery_base
from worker.queues import broker_key
from worker.storage import Storage


def test_a_gate_closes_at_the_limit_and_opens_at_half_of_it():
    gate = Gate("fetch", ["parse"], limit=10)
    assert [gate.update(n) for n in (0, 9)] == [None, None]
    assert gate.update(10) == "pause"
    # Between half and the limit a paused stage stays paused, and an open one open.
    assert [gate.update(n) for n in (12, 9, 6)] == [None, None, None]
    assert gate.update(5) == "resume"
    assert [gate.update(n) for n in (6, 9)] == [None, None]
    assert gate.update(11) == "pause"


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        Gate("fetch", ["parse"], limit=0)


def test_gates_follow_the_stage_table():
    assert later_stages(PIPELINE, "fetch") == ["parse", "dedupe", "summarize", "store"]
    assert later_stages(PIPELINE, "store") == []
    fetch_only = gates(PIPELINE, {"fetch"}, 100)
    assert [(g.stage, g.after, g.limit, g.resume_at) for g in fetch_only] == [
        ("fetch", ["parse", "dedupe", "summarize", "store"], 100, 50)]
    # The last stage hands nothing on, so nothing after it can pile up.
    assert [g.stage for g in gates(PIPELINE, set(PIPELINE.names()), 100)] == ["fetch", "parse", "dedupe", "summarize"]
    assert gates(PIPELINE, {"store"}, 100) == []
    assert gates(PIPELINE, {"fetch"}, 0) == []  # 0 turns it off


def test_check_counts_every_priority_list_of_every_later_stage(redis_url):
    client = redis.Redis.from_url(fresh_redis_db())
    actions: list[tuple[str, str]] = []

    def run() -> None:
        check(fetch_and_parse, client, lambda s: actions.append(("pause", s)), lambda s: actions.append(("resume", s)))

    fetch_and_parse = gates(PIPELINE, {"fetch", "parse"}, 6)
    client.rpush(broker_key("parse", 0), *range(3))
    client.rpush(broker_key("parse", 6), *range(2))
    client.rpush(broker_key("store", 9), 1)
    run()  # six wait after fetch, one after parse
    assert actions == [("pause", "fetch")]
    client.rpush(broker_key("dedupe", 3), *range(5))
    run()  # eleven after fetch, six after parse
    assert actions == [("pause", "fetch"), ("pause", "parse")]
    client.delete(broker_key("parse", 0), broker_key("dedupe", 3))
    run()  # three after fetch, one after parse
    assert actions[2:] == [("resume", "fetch"), ("resume", "parse")]
    run()
    assert len(actions) == 4
    client.close()


def test_pauses_are_logged_at_info_once_a_minute_and_counted_between(redis_url, caplog):
    client = redis.Redis.from_url(fresh_redis_db())
    fetch = gates(PIPELINE, {"fetch"}, 4)
    caplog.set_level(logging.DEBUG, logger="gleaner.backpressure")

    def cycle(at: float) -> list[tuple[int, str]]:
        """Fill parse to the limit and drain it: one pause and one resume, at ``at`` seconds."""
        caplog.clear()
        client.rpush(broker_key("parse", 0), *range(4))
        check(fetch, client, lambda s: None, lambda s: None, now=at)
        client.delete(broker_key("parse", 0))
        check(fetch, client, lambda s: None, lambda s: None, now=at + 1)
        return [(r.levelno, r.getMessage()) for r in caplog.records]

    assert cycle(0) == [
        (logging.INFO, "backpressure: fetch paused, 4 messages wait for parse, dedupe, summarize, store (limit 4); "
                       "it resumes at 2"),
        (logging.INFO, "backpressure: fetch resumed, 0 messages wait for parse, dedupe, summarize, store")]
    assert [level for level, _ in cycle(10)] == [logging.DEBUG, logging.DEBUG]
    assert [level for level, _ in cycle(30)] == [logging.DEBUG, logging.DEBUG]
    (pause_level, pause_line), (resume_level, _) = cycle(61)
    assert (pause_level, resume_level) == (logging.INFO, logging.INFO)
    assert pause_line.startswith("backpressure: fetch paused (2 more pauses since the last line like this), 4 messages")
    client.close()


def test_check_changes_nothing_while_redis_is_away():
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    gate = Gate("fetch", ["parse"], limit=1)
    check([gate], away, lambda s: pytest.fail("paused"), lambda s: pytest.fail("resumed"))
    assert not gate.paused


PAGE_DELAY = 0.2  # seconds each page takes to answer: two fetch threads fetch at most ten a second
THREADS = 2
LIMIT = 5
URLS = 40
WATCH = 6.0  # seconds: long enough for two threads to fetch every page, were nothing to stop them


def waiting(client: redis.Redis, stage: str) -> int:
    return queue_depths(client, [stage])[stage]


def slow_page(n: int):
    def route(_handler):
        time.sleep(PAGE_DELAY)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, news_page(
            prose(f"backpressure-{n}"), title=f"Harbour works, part {n}").encode()
    return route


class Crawl:
    """A site of slow pages, a fetch worker that backs off at ``LIMIT``, its URLs queued, and no
    worker yet for the stages after fetch; ``cpu()`` starts one."""

    def __init__(self, tmp_path, redis_url: str) -> None:
        self.site = Site().start()
        for n in range(URLS):
            self.site.routes[f"/a/{n}.html"] = slow_page(n)
        self.client = redis.Redis.from_url(redis_url)
        self.env = base_env(GLEANER_REDIS_URL=redis_url, GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}",
                            GLEANER_DATA_DIR=str(tmp_path), GLEANER_BACKPRESSURE_LIMIT=str(LIMIT),
                            GLEANER_HOST_RATE="1000", GLEANER_HOST_CONCURRENCY="16", GLEANER_ROBOTS_OBEY="false")
        self.storage = Storage(self.env["GLEANER_DATABASE_URL"])
        self.workers = [CeleryWorker(self.env, ["fetch"], pool="threads", concurrency=THREADS, name="bpfetch").start()]
        self.fetch = self.workers[0]
        queued = run_cli("enqueue", "-", input="".join(self.site.url(f"/a/{n}.html") + "\n" for n in range(URLS)),
                         env=self.env)
        assert queued.returncode == 0, queued.stderr

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.fetch.log)

    def wait_logged(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.logged(text):
            assert time.monotonic() < deadline, "".join(self.fetch.log[-30:])
            time.sleep(0.1)

    def cpu_stores_every_url(self) -> None:
        """Start a worker for the stages after fetch; fetch must resume, and every URL end stored."""
        self.workers.append(CeleryWorker(self.env, PIPELINE.names()[1:], pool="threads", concurrency=2,
                                         name="bpcpu").start())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.storage.count_jobs().get("done", 0) < URLS:
            time.sleep(0.2)
        assert self.storage.count_jobs() == {"done": URLS}, self.storage.count_jobs()
        assert self.logged("backpressure: fetch resumed"), "".join(self.fetch.log[-30:])
        assert not self.logged("Started consuming from")
        assert self.storage.count_records() == URLS

    def close(self) -> None:
        for worker in reversed(self.workers):
            worker.stop()
        self.storage.close()
        self.client.close()
        self.site.stop()


@pytest.mark.integration
def test_fetch_stops_while_pages_wait_to_be_parsed_and_every_url_ends_stored(tmp_path):
    crawl = Crawl(tmp_path, fresh_redis_db())
    try:
        # No worker takes parse yet: without backpressure, fetch would take all forty in about four
        # seconds. With it, fetch stops once the limit's worth waits (read once a second, so a
        # second's fetching and the messages the worker already holds may go past it).
        most = 0
        deadline = time.monotonic() + WATCH
        while time.monotonic() < deadline:
            most = max(most, waiting(crawl.client, "parse"))
            time.sleep(0.1)
        assert crawl.logged("backpressure: a stage stops taking messages at 5 waiting for the stages after it and "
                            "resumes at 2 (fetch: parse, dedupe, summarize, store)")
        assert crawl.logged("backpressure: fetch paused"), "".join(crawl.fetch.log[-30:])
        assert not crawl.logged("Canceling queue")  # Celery's own line for it, left out: the pause is logged once a minute
        left = waiting(crawl.client, "fetch")
        assert left >= URLS // 2, (left, most)
        fetched_in_a_second = THREADS / PAGE_DELAY
        held = THREADS * 2  # the worker's prefetch (celeryconfig: worker_prefetch_multiplier)
        assert LIMIT <= most <= LIMIT + held + 2 * fetched_in_a_second, most
        # What an operator sees in Flower, or from Celery's own control command: no queue consumed.
        inspect = subprocess.run([*celery_base(), "inspect", "active_queues", "--json", "--timeout", "5"],
                                 env=crawl.env, cwd=REPO, capture_output=True, text=True, timeout=60)
        replies = json.loads(inspect.stdout.strip().splitlines()[-1])
        assert [queues for node, queues in replies.items() if node.startswith("bpfetch@")] == [[]], inspect.stdout
        assert waiting(crawl.client, "fetch") == left, "a paused fetch worker took more"

        # Parse starts taking pages: fetch resumes at half the limit, and every URL ends stored.
        crawl.cpu_stores_every_url()
    finally:
        crawl.close()


@pytest.mark.integration
def test_a_paused_fetch_stays_paused_over_a_redis_restart_and_resumes_after(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    crawl = Crawl(tmp_path, server.url)
    try:
        crawl.wait_logged("backpressure: fetch paused")
        time.sleep(1.5)  # the messages the worker held when it paused are fetched
        # Redis restarts (its AOF keeps the queues): the worker's consumer reconnects and restarts,
        # and must read its queues as the pause left them, not as its -Q said at start.
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait()
        left = None
        seen = len(crawl.fetch.log)
        server.start()
        deadline = time.monotonic() + 30
        while not any("Connected to redis" in line for line in crawl.fetch.log[seen:]):
            assert time.monotonic() < deadline, "".join(crawl.fetch.log[-30:])
            time.sleep(0.1)
        left = waiting(crawl.client, "fetch")
        time.sleep(3)
        assert waiting(crawl.client, "fetch") == left > 0, "the reconnected worker took fetch messages while paused"
        crawl.cpu_stores_every_url()
        assert crawl.fetch.proc.poll() is None
    finally:
        crawl.close()
        server.stop()
