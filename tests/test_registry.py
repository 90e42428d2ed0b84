"""The source registry against a real redis-server: claims, pause/resume/remove, file sync."""

from __future__ import annotations

import os
import threading

import pytest
import redis

from worker import keys
from worker.registry import Registry, RunReport, UnknownSource, source_of
from worker.sources import Source
from worker.web.app import web_sources


@pytest.fixture
def client(fresh_redis):
    return fresh_redis


@pytest.fixture
def registry(client):
    return Registry(client)


def _source(key: str, every: str = "1m", feeds: tuple[str, ...] = ("https://a.example/rss",), **extra) -> Source:
    return Source.model_validate({"key": key, "feeds": list(feeds), "every": every, **extra})


def _due(client, key: str) -> float | None:
    return client.zscore(keys.sources_due(), key)


def test_a_new_source_is_due_at_once_and_claimed_once_per_slot(registry, client):
    registry.add(_source("a", every="1h"))
    (claim,) = registry.claim_due()
    assert claim.key == "a" and claim.next_run == claim.slot + 3_600_000
    assert registry.claim_due() == []  # the slot is taken; the next is an hour away
    assert _due(client, "a") == claim.next_run


def test_missed_slots_are_skipped_not_run_in_a_burst(registry, client):
    registry.add(_source("a", every="10s"))
    now = registry.now_ms()
    client.zadd(keys.sources_due(), {"a": now - 3_600_000})  # beat was down for an hour
    (claim,) = registry.claim_due()
    assert claim.slot == now - 3_600_000
    assert now + 10_000 <= claim.next_run <= registry.now_ms() + 10_000
    assert registry.claim_due() == []


def test_concurrent_claimers_never_share_a_slot(client):
    # Many sources due at once, eight "beats" claiming in a loop: every slot goes to exactly one.
    registry = Registry(client)
    for n in range(200):
        registry.add(_source(f"s{n}", every="1h"))
    got: list[tuple[str, int]] = []
    lock = threading.Lock()

    def claimer() -> None:
        own = Registry(redis.Redis(connection_pool=client.connection_pool))  # same database, own connections
        for _ in range(20):
            claims = own.claim_due(limit=7)
            with lock:
                got.extend((c.key, c.slot) for c in claims)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(k for k, _ in got) == sorted(f"s{n}" for n in range(200))


def test_pause_resume_and_run_now(registry, client):
    registry.add(_source("a", every="1h"))
    registry.claim_due()
    registry.pause("a")
    assert _due(client, "a") is None and registry.paused() == {"a"}
    client.zadd(keys.sources_due(), {"a": 0})  # even if something re-adds it, a paused source is not claimed
    assert registry.claim_due() == []
    assert _due(client, "a") is None
    with pytest.raises(ValueError, match="paused"):
        registry.run_now("a")
    registry.resume("a")
    assert [c.key for c in registry.claim_due()] == ["a"]
    registry.run_now("a")
    assert [c.key for c in registry.claim_due()] == ["a"]
    with pytest.raises(UnknownSource):
        registry.pause("nope")


def test_changes_reschedule_sensibly(registry, client):
    registry.add(_source("a", every="1h"))
    registry.claim_due()
    far = _due(client, "a")
    registry.add(_source("a", every="1h"))  # unchanged: keeps its slot
    assert _due(client, "a") == far
    registry.add(_source("a", every="10s"))  # shorter interval: due within it
    assert _due(client, "a") <= registry.now_ms() + 10_000
    registry.claim_due()  # not yet due
    client.zadd(keys.sources_due(), {"a": far})
    registry.add(_source("a", every="10s", feeds=("https://a.example/other.xml",)))  # new start point: now
    assert [c.key for c in registry.claim_due()] == ["a"]


def test_a_paused_source_stays_paused_when_redefined(registry, client):
    registry.add(_source("a"))
    registry.pause("a")
    registry.add(_source("a", feeds=("https://a.example/new.xml",)))
    assert _due(client, "a") is None and registry.claim_due() == []


def test_remove_forgets_everything(registry, client):
    registry.add(_source("a"))
    registry.pause("a")
    registry.record_run("a", RunReport(started=1.0, finished=2.0, found=3, new=1))
    registry.remove("a")
    assert registry.entries() == {} and registry.paused() == set()
    assert not client.exists(keys.source_state("a"), keys.source_runs("a"))
    with pytest.raises(UnknownSource):
        registry.remove("a")


def test_run_slots_start_once(registry):
    assert registry.begin_run("a", 1000)
    assert not registry.begin_run("a", 1000)  # the same slot again (two beats, a redelivery)
    assert not registry.begin_run("a", 999)  # a stale one
    assert registry.begin_run("a", 2000)


def test_run_reports_show_in_statuses(registry):
    registry.add(_source("a"))
    registry.record_run("a", RunReport(started=100.0, finished=101.0, found=5, new=2, errors=["feed x: HTTP 500"]))
    registry.record_run("a", RunReport(started=200.0, finished=201.0, found=6, new=1))
    (status,) = registry.statuses()
    assert (status.found, status.new, status.runs, status.queued_total) == (6, 1, 2, 3)
    assert status.last_error is None and status.last_run.timestamp() == 200.0
    assert status.next_run is not None and not status.paused
    assert [r["found"] for r in registry.runs("a")] == [6, 5]
    (row,) = web_sources(registry.redis)
    assert row["name"] == "a" and row["url"] == "https://a.example/rss" and row["last_run"] == status.last_run


def test_a_jobs_source_is_looked_up_by_its_category(registry, client):
    registry.add(_source("a", rules={"title": "h1.t", "drop": [".ad"]}, politeness={"rate": 0.25}))
    registry.add(_source("b"))
    assert source_of(client, "a").rules.title == "h1.t"
    assert source_of(client, "a").politeness.rate == 0.25 and source_of(client, "a").politeness.concurrency is None
    assert source_of(client, "b").rules is None and source_of(client, "manual") is None
    client.hset(keys.sources(), "broken", b"{not json")
    assert source_of(client, "broken") is None  # logged, never a crash in the parse stage


FILE = """\
[sources.a]
feeds = ["https://a.example/rss"]
every = "1m"

[sources.b]
sitemaps = ["https://b.example/sitemap.xml"]
every = "1h"
"""


def test_file_sync_adds_changes_and_removes(registry, client, tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(FILE)
    status = registry.sync_file(path)
    assert status.changed and status.error is None and status.count == 2
    assert {k: (e.origin, e.line) for k, e in registry.entries().items()} == {"a": ("file", 1), "b": ("file", 5)}
    assert not registry.sync_file(path).changed  # same mtime and size: not read again

    path.write_text(FILE.replace('every = "1h"', 'every = "2h"').replace("[sources.a]", "[sources.c]"))
    assert registry.sync_file(path).changed
    entries = registry.entries()
    assert set(entries) == {"b", "c"} and entries["b"].source.every == 7200


def test_a_broken_file_is_refused_and_the_running_sources_stay(registry, tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(FILE)
    registry.sync_file(path)
    path.write_text(FILE.replace('every = "1h"', 'every = "soon"') + "\n[sources.d]\nfeeds = []\n")
    status = registry.sync_file(path)
    assert status.error == (f"{path}:7: source 'b': every: interval must be like '15m', '30s', '2h' "
                            "or '1h30m', not 'soon'")
    assert set(registry.entries()) == {"a", "b"} and registry.entries()["b"].source.every == 3600
    assert registry.file_status().error == status.error
    path.write_text(FILE)
    assert registry.sync_file(path).error is None


def test_unchanged_stamp_means_no_reread(registry, tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(FILE)
    registry.sync_file(path)
    stat = path.stat()
    path.write_text(FILE.replace('"1m"', '"2m"'))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    registry.sync_file(path)
    assert registry.entries()["a"].source.every == 60
    assert registry.sync_file(path, force=True).changed
    assert registry.entries()["a"].source.every == 120


def test_a_missing_file_keeps_the_sources(registry, tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(FILE)
    registry.sync_file(path)
    path.unlink()
    assert "cannot read" in registry.sync_file(path).error
    assert set(registry.entries()) == {"a", "b"}


def test_file_and_cli_sources_each_keep_their_place(registry, tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(FILE)
    registry.sync_file(path)
    registry.add(_source("mine"))
    with pytest.raises(ValueError, match="defined in the sources file at line 1"):
        registry.add(_source("a"))
    with pytest.raises(ValueError, match="delete it there"):
        registry.remove("b")
    path.write_text(FILE.split("[sources.b]")[0])
    registry.sync_file(path)
    assert set(registry.entries()) == {"a", "mine"}  # a file sync never removes a CLI source
    registry.remove("mine")
    assert set(registry.entries()) == {"a"}



def test_a_sources_politeness_overrides_the_global_host_limits(registry, client):
    from tasks.fetching.policy import host_policy
    from worker.settings import get_settings

    settings = get_settings()
    registry.add(_source("slow", politeness={"concurrency": 1}))
    registry.add(_source("plain"))
    policy = host_policy(settings, source_of(client, "slow").politeness)
    assert policy.concurrency == 1 and policy.rate == settings.host_rate
    plain = host_policy(settings, source_of(client, "plain").politeness)
    assert (plain.rate, plain.concurrency) == (settings.host_rate, settings.host_concurrency)
    assert host_policy(settings, None) == plain
