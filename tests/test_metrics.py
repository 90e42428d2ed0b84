"""worker.metrics against a real redis-server, and /metrics parsed back with prometheus_client's parser."""

from __future__ import annotations

import math
import time
import warnings

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from prometheus_client.parser import text_string_to_metric_families

from worker import metrics
from worker.pipeline import PIPELINE
from worker.queues import broker_keys
from worker.redis_server import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice that its test client will move to httpx2
    from fastapi.testclient import TestClient



@pytest.fixture
def client(fresh_redis):
    return fresh_redis


def test_record_stage_counts_outcomes_per_stage(client):
    for _ in range(3):
        assert metrics.record_stage(client, "fetch", "success", 0.2)
    metrics.record_stage(client, "fetch", "failure", 0.1)
    metrics.record_stage(client, "parse", "retry", 0.01)
    counts = metrics.stage_counts(client, PIPELINE.names())
    assert counts["fetch"] == {"success": 3, "failure": 1, "retry": 0}
    assert counts["parse"] == {"success": 0, "failure": 0, "retry": 1}
    assert counts["store"] == {"success": 0, "failure": 0, "retry": 0}  # every stage present


def test_latency_histogram_is_cumulative_with_sum_and_count(client):
    for seconds in (0.003, 0.02, 0.02, 0.7, 500.0):
        metrics.record_stage(client, "summarize", "success", seconds)
    hist = metrics.latency(client, ["summarize"])["summarize"]
    buckets = dict(hist.buckets)
    assert buckets["0.005"] == 1
    assert buckets["0.01"] == 1
    assert buckets["0.025"] == 3
    assert buckets["0.5"] == 3
    assert buckets["1.0"] == 4
    assert buckets["120.0"] == 4
    assert buckets["+Inf"] == 5 == hist.count
    assert hist.total == pytest.approx(0.003 + 0.02 + 0.02 + 0.7 + 500.0)
    values = [n for _, n in hist.buckets]
    assert values == sorted(values)


def test_bucket_bounds_are_inclusive():
    assert metrics.bucket_for(0.005) == "0.005"
    assert metrics.bucket_for(0.0051) == "0.01"
    assert metrics.bucket_for(1e9) == "+Inf"
    assert metrics.bucket_for(math.nan) == "+Inf"


def test_per_minute_counters_fill_the_window_and_expire(client):
    now = 1_700_000_000.0  # fixed clock: minute boundaries do not depend on when the test runs
    minute = int(now // 60) * 60
    metrics.record_stage(client, "store", "success", 0.01, now=now)
    metrics.record_stage(client, "store", "success", 0.01, now=now + 1)
    metrics.record_stage(client, "fetch", "failure", 0.01, now=now - 120)
    rows = metrics.throughput(client, minutes=5, now=now)
    assert [r["minute"] for r in rows] == [minute - 240, minute - 180, minute - 120, minute - 60, minute]
    assert rows[-1]["stages"] == {"store": {"success": 2}}
    assert rows[2]["stages"] == {"fetch": {"failure": 1}}
    assert rows[0]["stages"] == {} and rows[3]["stages"] == {}
    ttl = client.ttl(metrics.minute_key(int(now // 60)))
    assert 0 < ttl <= metrics.MINUTE_TTL


def test_queue_depth_reads_the_broker_lists_including_priority_lists(client):
    client.lpush("fetch", "m1", "m2", "m3")
    client.lpush(broker_keys("fetch")[-1], "m4")  # a lower-priority message: another list
    client.lpush("store", "m5")
    client.hset("unacked", mapping={"tag1": "x", "tag2": "y"})
    depths = metrics.queue_depths(client, PIPELINE.names())
    assert depths == {"fetch": 4, "parse": 0, "dedupe": 0, "summarize": 0, "store": 1}
    assert metrics.unacked(client) == 2


def test_progress_counts_jobs_through_the_last_stage_and_failures_per_interval_and_since_start(client):
    from worker.processes import Progress

    stages = PIPELINE.names()
    metrics.record_stage(client, "store", "success", 0.01)  # before gleaner up started: not counted
    progress = Progress(client, stages, every=60.0, now=1000.0)
    assert progress.tick(1000.0) is None  # the first reading is where the counts start
    for _ in range(30):
        metrics.record_stage(client, "fetch", "success", 0.1)
    for _ in range(24):
        metrics.record_stage(client, "store", "success", 0.01)
    metrics.record_stage(client, "fetch", "failure", 0.1)
    metrics.record_stage(client, "parse", "failure", 0.1)
    metrics.record_stage(client, "fetch", "retry", 0.1)
    client.lpush("fetch", "m1", "m2")
    assert progress.tick(1059.0) is None  # not due yet
    line = progress.tick(1060.0)
    assert line == ("progress: 24 jobs through store in the last 60 s (0.4/s), 2 failed, 1 retried; "
                    "since start 24 through, 2 failed; waiting: fetch 2, parse 0, dedupe 0, summarize 0, store 0")
    for _ in range(1200):
        metrics.record_stage(client, "store", "success", 0.01)
    line = progress.tick(1090.0)  # due at 1120
    assert line is None
    line = progress.tick(1120.0)
    assert line.startswith("progress: 1,200 jobs through store in the last 60 s (20.0/s), 0 failed, 0 retried; "
                           "since start 1,224 through, 2 failed;"), line


def test_progress_skips_a_line_while_redis_is_away():
    from worker.processes import Progress

    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    progress = Progress(dead, PIPELINE.names(), every=1.0, now=0.0)
    assert progress.tick(0.0) is None and progress.tick(1.0) is None  # no exception reaches `gleaner up`'s loop


def test_bad_outcome_or_stage_is_refused(client):
    with pytest.raises(ValueError, match="outcome must be one of"):
        metrics.record_stage(client, "fetch", "ok", 0.1)
    with pytest.raises(ValueError, match="stage name"):
        metrics.record_stage(client, "fetch:evil", "success", 0.1)
    assert client.dbsize() == 0


def test_unreachable_redis_loses_the_metric_not_the_task():
    # No retries: redis-py's default backoff would only make the test slow.
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert metrics.record_stage(dead, "fetch", "success", 0.1) is False


def test_metrics_endpoint_exposes_redis_counters(client, tmp_path):
    from worker.storage import Storage
    from worker.web.app import create_app

    for _ in range(4):
        metrics.record_stage(client, "fetch", "success", 0.3)
    metrics.record_stage(client, "fetch", "failure", 2.0)
    metrics.record_stage(client, "store", "success", 0.004)
    client.lpush("parse", "a", "b")
    client.hset("gleaner:inflight", "job-1", "parse|0|1.0|")  # one job between stages
    client.incrby("gleaner:metrics:resent", 3)  # the sweeper resent three lost messages
    storage = Storage(f"sqlite:///{tmp_path / 'm.db'}")
    storage.create_jobs(["http://example.invalid/a", "http://example.invalid/b"], "t")
    app = create_app(storage, redis_client=client, workers=lambda: [{"name": "w@h", "queues": ["fetch"]}],
                     allowed_hosts=["testserver"], token=None)
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("gleaner_")
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert samples[("gleaner_stage_runs_total", (("outcome", "success"), ("stage", "fetch")))] == 4
    assert samples[("gleaner_stage_runs_total", (("outcome", "failure"), ("stage", "fetch")))] == 1
    assert samples[("gleaner_stage_duration_seconds_count", (("stage", "fetch"),))] == 5
    assert samples[("gleaner_stage_duration_seconds_sum", (("stage", "fetch"),))] == pytest.approx(3.2)
    assert samples[("gleaner_stage_duration_seconds_bucket", (("le", "0.5"), ("stage", "fetch")))] == 4
    assert samples[("gleaner_stage_duration_seconds_bucket", (("le", "0.005"), ("stage", "store")))] == 1
    assert samples[("gleaner_queue_depth", (("queue", "parse"),))] == 2
    assert samples[("gleaner_queue_depth", (("queue", "fetch"),))] == 0
    assert samples[("gleaner_jobs", (("state", "queued"),))] == 2
    assert samples[("gleaner_records", ())] == 0
    assert samples[("gleaner_workers_online", ())] == 1
    assert samples[("gleaner_retry_waiting_jobs", ())] == 0
    assert samples[("gleaner_in_flight_messages", ())] == 0
    assert samples[("gleaner_unfinished_jobs", ())] == 1
    assert samples[("gleaner_lost_messages_resent_total", ())] == 3


@pytest.mark.integration
def test_a_real_pipeline_run_is_counted_at_every_stage(redis_url, tmp_path, site):
    from tests.example_page import news_page
    from tests.servers import CeleryWorker, base_env, run_cli

    broker = redis.Redis.from_url(redis_url)
    before = metrics.stage_counts(broker, PIPELINE.names())
    env = base_env(GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}", GLEANER_DATA_DIR=str(tmp_path))
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=2, name="metrics").start()
    try:
        good = site.page("/a/metered.html", news_page(
            ["The metering office said on Tuesday that every stage of this article was counted once.",
             "A second paragraph gives the extractor enough text to call it an article."], title="Metered"))
        result = run_cli("enqueue", "--wait", good, site.url("/missing.html"), env=env)
        assert result.returncode == 1  # the missing page failed, as intended
    finally:
        worker.stop()
    after = metrics.stage_counts(broker, PIPELINE.names())
    for stage in PIPELINE.names():
        assert after[stage]["success"] == before[stage]["success"] + 1, stage
    assert after["fetch"]["failure"] == before["fetch"]["failure"] + 1
    hist = metrics.latency(broker, ["store"])["store"]
    assert hist.count >= 1 and hist.total > 0
    # The run may straddle a minute boundary: look at the last few minutes together.
    recent = metrics.throughput(broker, minutes=5)
    assert sum(row["stages"].get("store", {}).get("success", 0) for row in recent) >= 1


def test_a_tally_holds_runs_until_due_then_adds_what_record_stage_would(client):
    clock = [1000.0]
    tally = metrics.Tally(every=1.0, clock=lambda: clock[0])
    now = time.time()
    runs = [("fetch", "success", 0.2), ("fetch", "success", 0.003), ("fetch", "failure", 7.0), ("parse", "retry", 0.01)]
    for stage, outcome, seconds in runs:
        tally.add(stage, outcome, seconds, now=now)
    pipe = client.pipeline(transaction=False)
    assert not tally.flush_into(pipe) and not pipe.command_stack  # not due yet: nothing queued
    clock[0] += 1.5
    assert tally.flush_into(pipe)
    pipe.execute()
    assert not tally.flush_into(client.pipeline(transaction=False), force=True)  # nothing left to send
    counts = metrics.stage_counts(client, PIPELINE.names())
    assert counts["fetch"] == {"success": 2, "failure": 1, "retry": 0} and counts["parse"]["retry"] == 1
    hist = metrics.latency(client, ["fetch"])["fetch"]
    assert hist.count == 3 and hist.total == pytest.approx(7.203)
    assert dict(hist.buckets)["0.005"] == 1 and dict(hist.buckets)["0.25"] == 2 and dict(hist.buckets)["10.0"] == 3
    minute = [row for row in metrics.throughput(client, minutes=2, now=now) if row["stages"]][-1]
    assert minute["stages"] == {"fetch": {"success": 2, "failure": 1}, "parse": {"retry": 1}}
    assert 0 < client.ttl(metrics.minute_key(int(now // 60))) <= metrics.MINUTE_TTL


def test_a_tally_flushed_at_shutdown_sends_what_it_holds_and_refuses_bad_names(client):
    tally = metrics.Tally(every=3600)
    tally.add("store", "success", 0.01)
    assert tally.flush(client)
    assert metrics.stage_counts(client, PIPELINE.names())["store"]["success"] == 1
    with pytest.raises(ValueError):
        tally.add("store", "ok", 0.1)


def test_an_idle_process_sends_its_held_runs_once_due_without_a_task_to_carry_them(client):
    tally = metrics.Tally(every=0.1)
    flusher = metrics.IdleFlush(tally, client).start()
    try:
        tally.add("store", "success", 0.01)
        tally.add("store", "success", 0.01)
        deadline = time.monotonic() + 5
        while metrics.stage_counts(client, ["store"])["store"]["success"] < 2:
            assert time.monotonic() < deadline, "the idle process's runs were never sent"
            time.sleep(0.02)
    finally:
        flusher.stop()
        flusher.thread.join(5)
    assert not flusher.thread.is_alive()
    tally.add("store", "success", 0.01)  # stopped: held until the shutdown's flush
    time.sleep(0.3)
    assert metrics.stage_counts(client, ["store"])["store"]["success"] == 2
    assert tally.flush(client) and metrics.stage_counts(client, ["store"])["store"]["success"] == 3
