"""The per-host boilerplate filter learns lines a site repeats on most pages and drops them."""

from __future__ import annotations

import random
import uuid

import pytest
import redis

from tasks.duplicates.boilerplate import BoilerplateFilter, site_of
from worker import keys

SHARE = "Share this article on Facebook, Twitter or by email"
RELATED = "Related: Ten things to know about the city council budget"
SOMETIMES = "Correction: an earlier version misspelled a name"


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def host() -> str:
    return f"news-{uuid.uuid4().hex[:8]}.example"


def page(rng: random.Random, n: int) -> list[str]:
    body = [f"Article {n} paragraph {i}: " + " ".join(rng.choice("abcdefghij") * 3 for _ in range(12)) for i in range(5)]
    body.insert(2, SHARE)
    if rng.random() < 0.8:
        body.append(RELATED)
    if rng.random() < 0.2:
        body.append(SOMETIMES)
    return body


def test_repeated_lines_are_dropped_once_enough_pages_are_seen(client: redis.Redis, host: str) -> None:
    bp = BoilerplateFilter(client, min_pages=20)
    rng = random.Random(1)
    for n in range(19):
        body = page(rng, n)
        assert bp.observe_and_filter(host, body) == body  # too few pages to judge
    for n in range(19, 60):
        body = page(rng, n)
        kept = bp.observe_and_filter(host, body)
        assert SHARE not in kept and RELATED not in kept
        assert [p for p in body if p.startswith("Article")] == [p for p in kept if p.startswith("Article")]
        assert (SOMETIMES in kept) == (SOMETIMES in body)
    bp.forget(host)


def test_hosts_are_counted_apart(client: redis.Redis, host: str) -> None:
    bp = BoilerplateFilter(client, min_pages=5)
    rng = random.Random(2)
    for n in range(10):
        bp.observe_and_filter(host, page(rng, n))
    other = "other-" + host
    fresh = page(rng, 99)
    assert bp.observe_and_filter(other, fresh) == fresh
    for name in (host, other):
        bp.forget(name)


def test_counts_stay_bounded_and_keep_boilerplate(client: redis.Redis, host: str) -> None:
    bp = BoilerplateFilter(client, min_pages=10, window=50, max_lines=64)
    rng = random.Random(3)
    for n in range(300):
        kept = bp.observe_and_filter(host, page(rng, n))
    assert SHARE not in kept
    assert client.hlen(keys.boilerplate_lines(host)) <= 64 + 8
    assert int(client.hget(keys.boilerplate_pages(host), "total")) == 300
    assert int(client.hget(keys.boilerplate_pages(host), "recent")) < 50
    assert 0 < client.ttl(keys.boilerplate_lines(host)) <= 30 * 24 * 3600
    bp.forget(host)


def test_repeats_within_a_page_count_once(client: redis.Redis, host: str) -> None:
    bp = BoilerplateFilter(client, min_pages=2)
    bp.observe_and_filter(host, ["A line", "A line", "a LINE!"])
    assert client.hvals(keys.boilerplate_lines(host)) == [b"1"]
    bp.forget(host)


def test_site_of() -> None:
    assert site_of("https://WWW.Example.com./a") == "example.com"
    assert site_of("https://news.example.com/a") == "news.example.com"
    assert site_of("not a url") == ""


def test_rejects_nonsense_settings(client: redis.Redis) -> None:
    with pytest.raises(ValueError):
        BoilerplateFilter(client, max_share=1.5)
    with pytest.raises(ValueError):
        BoilerplateFilter(client, min_pages=0)
