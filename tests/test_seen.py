"""The seen-URL set: any spelling of a URL is seen after marking, and forgotten after the window."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from tasks.discovery.seen import SeenURLs
from worker.errors import InvalidURLError


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def url() -> str:
    return f"https://example.com/{uuid.uuid4().hex}"


def test_mark_then_seen_under_any_spelling(client: redis.Redis) -> None:
    seen = SeenURLs(client, window=60)
    page = url()
    assert not seen.seen(page)
    seen.mark(page)
    assert seen.seen(page)
    assert seen.seen(page.replace("https://example.com", "HTTPS://EXAMPLE.com:443") + "/?utm_source=x#top")
    assert not seen.seen(url())
    seen.forget(page)
    assert not seen.seen(page)


def test_claim_is_won_once(client: redis.Redis) -> None:
    seen = SeenURLs(client, window=60)
    page = url()
    assert seen.claim(page)
    assert not seen.claim(page + "?fbclid=1")
    seen.forget(page)
    assert seen.claim(page)


def test_claim_many_in_one_round_trip(client: redis.Redis) -> None:
    seen = SeenURLs(client, window=60)
    a, b = url(), url()
    seen.mark(b)
    assert seen.claim_many([a, b, a + "#frag"]) == [True, False, False]
    assert SeenURLs(client, window=0).claim_many([a, a]) == [True, True]


def test_window_expires(client: redis.Redis) -> None:
    seen = SeenURLs(client, window=1)
    page = url()
    seen.mark(page)
    assert seen.seen(page)
    deadline = time.monotonic() + 5
    while seen.seen(page) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not seen.seen(page)


def test_zero_window_turns_it_off(client: redis.Redis) -> None:
    seen = SeenURLs(client, window=0)
    page = url()
    seen.mark(page)
    assert not seen.seen(page) and seen.claim(page) and seen.claim(page)


def test_invalid_url_raises(client: redis.Redis) -> None:
    with pytest.raises(InvalidURLError):
        SeenURLs(client).mark("ftp://example.com/x")
