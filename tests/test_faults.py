"""Kill and starve the real processes: every URL still ends exactly once.

Each test runs its own redis-server (AOF on) and real `celery worker` processes against pages
served on 127.0.0.1. The visibility timeout is shortened to 20 s so redelivery is observable
in a test; the mechanism is the production one (kombu's unacked restore, every 10 s).
"""

from __future__ import annotations

import html
import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import text

from tests.prose import prose
from tests.servers import CeleryWorker, RedisServer, Site, base_env, run_cli
from worker.pipeline import PIPELINE
from worker.storage import TERMINAL_STATES, Storage

pytestmark = pytest.mark.integration

VISIBILITY = 20
FAULT_SETTINGS = dict(
    GLEANER_VISIBILITY_TIMEOUT=str(VISIBILITY), GLEANER_TOTAL_TIMEOUT="5", GLEANER_READ_TIMEOUT="3",
    GLEANER_CONNECT_TIMEOUT="2", GLEANER_HOST_RATE="0", GLEANER_HOST_CONCURRENCY="0",
)


def article(n: int, paragraphs: int = 5) -> str:
    """A page with text unique to n (so no two are duplicates of each other)."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in prose(f"faults-{n}", paragraphs))
    return (f"<html><head><title>Story {n}</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>Story {n}</h1>{body}</article></body></html>")


def extra_records(storage, urls: list[str]) -> list[dict]:
    """Records beyond one per URL, with what tells how they came about."""
    from sqlalchemy import select

    from worker.storage import records

    with storage.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(records.c.id, records.c.url, records.c.canonical_url,
                                                     records.c.duplicate_of, records.c.content_hash,
                                                     records.c.created_at)).mappings()]
    by_url: dict[str, list[dict]] = {}
    for row in rows:
        by_url.setdefault(row["url"], []).append(row)
    return [row for group in by_url.values() if len(group) > 1 for row in group] + [
        row for row in rows if row["url"] not in set(urls)]


@pytest.fixture
def stack(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    env = base_env(GLEANER_REDIS_URL=redis.url, GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}",
                   GLEANER_DATA_DIR=str(tmp_path), **FAULT_SETTINGS)
    site = Site().start()
    workers: list[CeleryWorker] = []
    yield env, redis, site, workers, Storage(env["GLEANER_DATABASE_URL"])
    for n, w in enumerate(workers):
        w.stop()
        (tmp_path / f"worker-{n}.log").write_text("".join(w.log))  # kept by pytest for a failure's post-mortem
    site.stop()
    redis.stop()


def enqueue(env: dict, urls: list[str], tmp_path) -> list[str]:
    listing = tmp_path / f"urls-{time.monotonic_ns()}.txt"
    listing.write_text("\n".join(urls) + "\n")
    result = run_cli("enqueue", "--file", str(listing), env=env)
    assert result.returncode == 0, result.stderr
    return urls


def wait_all(storage: Storage, count: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = storage.count_jobs()
        if sum(states.get(s, 0) for s in TERMINAL_STATES) >= count:
            return states
        time.sleep(0.5)
    return storage.count_jobs()


def why_not_done(storage: Storage) -> list[tuple[str, str]]:
    """The dead letters' stages and reasons, so a failed assertion says what went wrong."""
    return [(j["stage"], j["reason"]) for j in storage.failed_jobs()]


def worker_trouble(worker: CeleryWorker) -> list[str]:
    """The worker's warnings and errors, last first, for an assertion's message."""
    return [line for line in worker.log if "WARNING" in line or "ERROR" in line or "CRITICAL" in line][-15:]


def worker_stacks(worker: CeleryWorker) -> str:
    """Every thread's stack in the worker's main process, for a failure's message: Celery's worker
    prints them on SIGUSR1 (its "cry" handler). A worker that has exited says so, with its last lines."""
    if worker.proc.poll() is not None:
        return f"the worker exited with status {worker.proc.returncode}; its last lines:\n" + "".join(worker.log[-60:])
    seen = len(worker.log)
    worker.proc.send_signal(signal.SIGUSR1)
    time.sleep(2)
    return "".join(worker.log[seen:])[:60000] or "no stacks printed; its last lines:\n" + "".join(worker.log[-60:])


def heavy_article(n: int) -> str:
    """Many paragraphs in deep nesting: a parse that is still running when we kill its worker."""
    nesting = "".join(f"<div class='c{i % 9}'><section>" for i in range(300))
    filler = "".join(f"<p>{'filler words ' * 30}{n}-{i}</p>" for i in range(1500))
    return article(n, paragraphs=5).replace("<article>", "<article>" + nesting + "</section></div>" * 300 + filler)


def storage_states_during_outage(db_url: str) -> dict[str, int]:
    """Proves the database is really down: every query fails while it is stopped."""
    from sqlalchemy.exc import OperationalError

    probe = Storage.__new__(Storage)
    from worker.storage import make_engine

    probe.engine = make_engine(db_url)
    try:
        return probe.count_jobs()
    except OperationalError:
        return {}
    finally:
        probe.engine.dispose()


def kill_group(worker: CeleryWorker) -> None:
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the main process and its pool, like an OOM kill
    worker.proc.wait()


def assert_each_url_stored_once(storage: Storage, urls: list[str]) -> None:
    records = list(storage.iter_records())
    assert sorted(r.url for r in records) == sorted(urls)
    assert all(r.duplicate_of is None for r in records)


def test_killing_a_fetch_worker_mid_fetch_loses_nothing(stack, tmp_path):
    env, redis, site, workers, storage = stack

    def slow(handler, n):
        time.sleep(1.0)  # a slow site keeps fetches in flight when the worker dies
        return 200, {"Content-Type": "text/html; charset=utf-8"}, article(n).encode()

    urls = []
    for n in range(24):
        site.routes[f"/slow/{n}.html"] = lambda h, n=n: slow(h, n)
        urls.append(site.url(f"/slow/{n}.html"))
    victim = CeleryWorker(env, ["fetch"], pool="threads", concurrency=8, name="victim").start()
    survivor = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=2, name="survivor").start()
    workers += [victim, survivor]
    enqueue(env, urls, tmp_path)
    deadline = time.monotonic() + 30
    while sum(site.hits.values()) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    killed_at = time.monotonic()
    kill_group(victim)

    states = wait_all(storage, len(urls), timeout=120)
    assert states == {"done": len(urls)}
    assert time.monotonic() - killed_at < 120
    assert_each_url_stored_once(storage, urls)
    # The victim's fetches were really redelivered: some pages were requested twice.
    assert any(n >= 2 for n in site.hits.values())


def test_killing_a_parse_worker_mid_parse_loses_nothing(stack, tmp_path):
    env, redis, site, workers, storage = stack
    urls = [site.page(f"/heavy/{n}.html", heavy_article(n)) for n in range(8)]
    victim = CeleryWorker(env, ["parse"], pool="prefork", concurrency=1, name="victim").start()
    enqueue(env, urls, tmp_path)
    survivor = CeleryWorker(env, ["fetch"], pool="threads", concurrency=4, name="fetcher").start()
    workers.append(survivor)
    deadline = time.monotonic() + 60
    while not any("gleaner.parse[" in line and "received" in line for line in victim.log):
        assert time.monotonic() < deadline, "the victim never received a parse"
        time.sleep(0.05)
    time.sleep(0.2)
    kill_group(victim)
    workers.append(CeleryWorker(env, PIPELINE.names(), pool="prefork", concurrency=2, name="survivor").start())

    states = wait_all(storage, len(urls), timeout=150)
    assert states == {"done": len(urls)}
    assert_each_url_stored_once(storage, urls)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "crash"])
def test_redis_going_down_with_a_thousand_urls_queued_loses_none(stack, tmp_path, how):
    env, redis, site, workers, storage = stack
    urls = []
    for n in range(1000):
        urls.append(site.page(f"/n/{n}.html", article(n, paragraphs=2)))
    enqueue(env, urls, tmp_path)
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=8, name="w").start()
    workers.append(worker)
    deadline = time.monotonic() + 60
    while storage.count_jobs().get("done", 0) < 50:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # SIGTERM: Redis writes its AOF and exits. SIGKILL: a crash, and the last second of writes
    # may be gone. Either way a message kombu had popped but not yet recorded as unacknowledged
    # vanishes with no trace in Redis; the in-flight ledger's sweeper must send it again.
    redis.proc.send_signal(how)
    redis.proc.wait()
    time.sleep(2)
    redis.start()

    states = wait_all(storage, len(urls), timeout=200)
    assert states == {"done": len(urls)}, (why_not_done(storage), worker_trouble(worker), worker_stacks(worker))
    assert storage.count_records() == len(urls), extra_records(storage, urls)
    # The same worker reconnected: none exited on the outage (Celery 5.7.0 did; worker/consumer.py).
    assert worker.proc.poll() is None
    assert not any("Unrecoverable error" in line for line in worker.log)


def test_a_message_the_broker_lost_is_sent_again(stack, tmp_path):
    env, redis, site, workers, storage = stack
    urls = [site.page(f"/lost/{n}.html", article(n, paragraphs=2)) for n in range(20)]
    enqueue(env, urls, tmp_path)
    client = redis_client(redis)
    assert client.llen("fetch") == 20
    client.rpop("fetch")  # the message kombu would pop next, gone as in a crash mid-delivery
    workers.append(CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=4, name="w").start())

    states = wait_all(storage, len(urls), timeout=4 * VISIBILITY + 60)
    assert states == {"done": len(urls)}, why_not_done(storage)
    assert_each_url_stored_once(storage, urls)
    assert sum("message was lost" in line for line in workers[0].log) == 1
    assert client.hlen("gleaner:inflight") == 0  # every finished job struck off the ledger


def redis_client(server: RedisServer):
    import redis as redis_py

    return redis_py.Redis.from_url(server.url)


def test_a_database_outage_delays_but_loses_nothing(tmp_path, postgres_server):
    redis = RedisServer(tmp_path / "redis").start()
    db_url = postgres_server.new_database()
    env = base_env(GLEANER_REDIS_URL=redis.url, GLEANER_DATABASE_URL=db_url, GLEANER_DATA_DIR=str(tmp_path),
                   **FAULT_SETTINGS)
    site = Site().start()
    storage = Storage(db_url)
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=4, name="w").start()
    try:
        urls = [site.page(f"/db/{n}.html", article(n, paragraphs=2)) for n in range(300)]
        enqueue(env, urls, tmp_path)
        deadline = time.monotonic() + 60
        while storage.count_jobs().get("done", 0) < 5:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # Stop PostgreSQL mid-run for a few seconds, then bring it back on the same port.
        assert storage.count_jobs().get("queued", 0) > 0  # mid-run: jobs are still on their way
        postgres_server.stop()
        time.sleep(4)
        assert sum(storage_states_during_outage(db_url).values()) == 0
        postgres_server.restart()
        storage.engine.dispose()
        states = wait_all(storage, len(urls), timeout=120)
        assert states == {"done": len(urls)}
        assert storage.count_records() == len(urls)
        assert any("database unavailable" in line for line in worker.log)
    finally:
        worker.stop()
        site.stop()
        redis.stop()
        (tmp_path.parent / "db-outage-worker.log").write_text("".join(worker.log))


def test_a_page_that_kills_its_parser_is_dead_lettered_while_the_rest_flow(stack, tmp_path):
    env, redis, site, workers, storage = stack
    # 9 MB of markup (under the 10 MB cap) that takes the parser seconds: long enough to be
    # caught in the act each time.
    bulk = "".join(f"<div><p>{'word ' * 40}{i}</p><span>x</span></div>" for i in range(40000))
    poison = site.page("/poison.html", article(999).replace("<article>", "<article>" + bulk))
    good = [site.page(f"/ok/{n}.html", article(n, paragraphs=3)) for n in range(10)]
    parser = CeleryWorker(env, ["parse"], pool="prefork", concurrency=1, name="parser").start()
    workers += [parser, CeleryWorker(env, [q for q in PIPELINE.names() if q != "parse"], pool="threads",
                                     concurrency=4, name="others").start()]
    enqueue(env, [poison], tmp_path)
    poison_job = storage.failed_jobs()  # nothing failed yet
    assert poison_job == []
    # Each time the poison page is being parsed, its pool process dies (as an OOM kill would):
    # whenever the parser receives it, its pool child is killed, until the job ends somewhere.
    [job_id] = [j for j, in storage.engine.connect().execute(text("select id from jobs"))]
    kills, seen = 0, 0
    deadline = time.monotonic() + 150
    while storage.get_job(job_id)["state"] == "queued" and time.monotonic() < deadline:
        received = [line for line in parser.log if "gleaner.parse[" in line and "received" in line]
        if len(received) > seen:
            seen = len(received)
            time.sleep(0.3)
            children = subprocess.run(["pgrep", "-P", str(parser.proc.pid)], capture_output=True, text=True)
            for pid in children.stdout.split():
                os.kill(int(pid), signal.SIGKILL)
            kills += 1
        time.sleep(0.02)
    assert kills >= 3, (kills, storage.get_job(job_id)["state"], storage.get_job(job_id)["reason"], [l for l in parser.log if "parse[" in l or "Process " in l])
    enqueue(env, good, tmp_path)
    states = wait_all(storage, 1 + len(good), timeout=120)
    assert states == {"done": len(good), "failed": 1}
    [dead] = storage.failed_jobs()
    assert dead["url"] == poison and dead["stage"] == "parse"
    assert "started 3 times without finishing" in dead["reason"]
