"""The per-host limiter against real Redis: turns in order, slots, leases, pauses, many clients."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from tasks.fetching.hostlimit import HostLimiter, HostPolicy, host_key
from worker import keys
from worker.errors import HostBusyError


@pytest.fixture
def host():
    return f"host-{uuid.uuid4().hex[:8]}.test"


@pytest.fixture
def limiter(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield HostLimiter(client, lease=60, wait_inline=0, busy_max_wait=30)
    client.close()


def test_host_key_is_the_host_and_any_non_default_port():
    assert host_key("https://News.Example.com/a") == "news.example.com"
    assert host_key("http://news.example.com:80/a") == "news.example.com"
    assert host_key("http://127.0.0.1:8123/a") == "127.0.0.1:8123"


def test_the_slower_of_our_rate_and_the_sites_crawl_delay_wins():
    assert HostPolicy(rate=2).interval() == 0.5
    assert HostPolicy(rate=2).interval(crawl_delay=5) == 5
    assert HostPolicy(rate=2).interval(crawl_delay=500, max_crawl_delay=60) == 60
    assert HostPolicy(rate=0).interval() == 0
    with pytest.raises(ValueError):
        HostPolicy(rate=-1)


def test_turns_are_handed_out_in_order_and_kept_across_tries(limiter, host):
    policy = HostPolicy(rate=0.1, concurrency=0)  # one fetch per 10 s
    assert limiter.try_acquire(host, "a", policy, 10)[0]
    ok_b, wait_b, _ = limiter.try_acquire(host, "b", policy, 10)
    ok_c, wait_c, _ = limiter.try_acquire(host, "c", policy, 10)
    assert not ok_b and not ok_c
    assert 9 < wait_b <= 10 and 19 < wait_c <= 20  # b before c, one interval apart
    # b asks again: same turn (a little nearer), not a new one behind c.
    ok_b2, wait_b2, _ = limiter.try_acquire(host, "b", policy, 10)
    assert not ok_b2 and wait_b2 <= wait_b


def test_concurrency_slots_are_shared_and_freed(limiter, host):
    policy = HostPolicy(rate=0, concurrency=2)
    assert limiter.try_acquire(host, "a", policy, 0)[0]
    assert limiter.try_acquire(host, "b", policy, 0)[0]
    admitted, _, full = limiter.try_acquire(host, "c", policy, 0)
    assert not admitted and full
    limiter.release(host, "a")
    assert limiter.try_acquire(host, "c", policy, 0)[0]


def test_a_dead_workers_slot_frees_itself_when_its_lease_ends(redis_url, host):
    client = redis.Redis.from_url(redis_url)
    short = HostLimiter(client, lease=0.05, wait_inline=0, busy_max_wait=30)
    policy = HostPolicy(rate=0, concurrency=1)
    assert short.try_acquire(host, "crashed", policy, 0)[0]  # never released
    assert not short.try_acquire(host, "next", policy, 0)[0]
    time.sleep(0.1)
    assert short.try_acquire(host, "next", policy, 0)[0]


def test_a_far_turn_raises_host_busy_with_a_capped_retry_after(limiter, host):
    policy = HostPolicy(rate=0.01, concurrency=0)  # one per 100 s
    with limiter.slot(host, policy, token="first"):
        pass
    with pytest.raises(HostBusyError, match=f"host {host} is busy: its next turn is in") as info:
        with limiter.slot(host, policy, token="second"):
            pytest.fail("admitted while the host was busy")
    assert info.value.retry_after == 30  # capped by busy_max_wait


def test_full_slots_raise_host_busy_with_a_short_random_retry(limiter, host):
    policy = HostPolicy(rate=0, concurrency=1)
    with limiter.slot(host, policy):
        with pytest.raises(HostBusyError, match="all its fetch slots are taken") as info:
            with limiter.slot(host, policy):
                pass
    assert 1 <= info.value.retry_after <= 4
    with limiter.slot(host, policy):  # released on the way out
        pass


def test_a_near_turn_is_waited_for_in_the_thread(redis_url, host, monkeypatch):
    client = redis.Redis.from_url(redis_url)
    patient = HostLimiter(client, lease=60, wait_inline=5, busy_max_wait=30)
    policy = HostPolicy(rate=20, concurrency=0)
    slept: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr("tasks.fetching.hostlimit.time.sleep", lambda s: slept.append(s) or real_sleep(s))
    admitted = 0
    for _ in range(3):  # 50 ms apart: slept for in this thread, never raised as HostBusyError
        with patient.slot(host, policy):
            admitted += 1
    assert admitted == 3
    assert slept and all(0 < s <= 0.05 for s in slept)  # the turns' waits, each at most one interval


def test_a_pause_holds_every_new_fetch(limiter, host):
    limiter.pause(host, 30)
    admitted, wait, _ = limiter.try_acquire(host, "a", HostPolicy(rate=100, concurrency=5), 0.01)
    assert not admitted and 29 < wait <= 30


def test_nothing_is_left_behind_without_an_expiry(limiter, host, redis_url):
    client = redis.Redis.from_url(redis_url)
    policy = HostPolicy(rate=0.5, concurrency=2)
    limiter.try_acquire(host, "a", policy, 2)
    limiter.try_acquire(host, "b", policy, 2)
    for key in (keys.host_slots(host), keys.host_tickets(host), keys.host_state(host)):
        assert client.pttl(key) > 0, key


def test_many_workers_never_exceed_the_concurrency_limit(redis_url, host):
    # Six threads, each with its own Redis connection as separate worker processes would have.
    policy = HostPolicy(rate=0, concurrency=2)
    inside, peak, done = [0], [0], []
    lock = threading.Lock()

    def worker() -> None:
        own = HostLimiter(redis.Redis.from_url(redis_url), lease=60, wait_inline=30, busy_max_wait=30)
        for _ in range(5):
            with own.slot(host, policy):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.01)
                with lock:
                    inside[0] -= 1
            done.append(1)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 30
    assert 1 <= peak[0] <= 2
