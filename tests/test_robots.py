"""robots.txt: parsed with Protego, cached in real Redis, RFC 9309's meaning of each answer."""

from __future__ import annotations

import httpx
import pytest
import redis

from tasks.fetching.download import FetchLimits
from tasks.fetching.netguard import AddressGuard, GuardedTransport
from tasks.fetching.robots import RobotsCache, RobotsRules, agent_token, origin_of
from tests import badserver
from tests.badserver import shared_site, site  # noqa: F401 - fixtures
from worker import keys
from worker.errors import NetworkError, ServerError

LIMITS = FetchLimits(connect_timeout=2, read_timeout=1, total_timeout=3, max_bytes=1_000_000,
                     user_agent="GleanerBot/0.1 (+ops@example.org)")
ROBOTS = """\
User-agent: *
Disallow: /private/
Crawl-delay: 2

User-agent: GleanerBot
Disallow: /no-bots/
Allow: /no-bots/except-this.html
Crawl-delay: 3
"""


@pytest.fixture
def rclient(redis_url):
    client = redis.Redis.from_url(redis_url)
    # Ports come back across tests: an earlier test's cached file must not answer for this one.
    for key in client.scan_iter(keys.robots("*")):
        client.delete(key)
    yield client
    client.close()


@pytest.fixture
def cache(rclient):
    with httpx.Client(transport=GuardedTransport(AddressGuard(["127.0.0.1"]))) as http:
        yield RobotsCache(rclient, http, LIMITS, ttl=120, max_bytes=4096)


def robots_route(text: str, status: int = 200):
    return (status, {"Content-Type": "text/plain"}, text.encode())


def test_origin_and_agent_token():
    assert origin_of("HTTPS://News.Example.COM:443/a/b?c") == "https://news.example.com"
    assert origin_of("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert origin_of("http://[::1]:81/") == "http://[::1]:81"
    assert agent_token("GleanerBot/0.1 (+https://example.org/bot)") == "GleanerBot"


def test_our_own_group_applies_and_its_crawl_delay_is_read():
    rules = RobotsRules("GleanerBot", ROBOTS)
    assert not rules.allowed("http://x.test/no-bots/page.html")
    assert rules.allowed("http://x.test/no-bots/except-this.html")
    assert rules.allowed("http://x.test/private/page.html")  # the * group is not ours once ours exists
    assert rules.crawl_delay == 3.0
    other = RobotsRules("OtherBot", ROBOTS)
    assert not other.allowed("http://x.test/private/page.html") and other.crawl_delay == 2.0


def test_request_rate_counts_as_a_delay():
    assert RobotsRules("GleanerBot", "User-agent: *\nRequest-rate: 1/10s\n").crawl_delay == 10.0


def test_no_file_allows_everything():
    rules = RobotsRules("GleanerBot", None)
    assert rules.allowed("http://x.test/anything") and rules.crawl_delay is None


def test_fetched_once_then_served_from_redis_for_every_worker(site, cache, rclient):
    site.routes["/robots.txt"] = robots_route(ROBOTS)
    rules = cache.rules_for(site.url("/no-bots/a.html"))
    assert not rules.allowed(site.url("/no-bots/a.html")) and rules.crawl_delay == 3.0
    key = keys.robots(origin_of(site.base_url))
    assert 0 < rclient.ttl(key) <= 120
    # Another worker (a new cache, no local memory) reads Redis, not the site.
    with httpx.Client(transport=GuardedTransport(AddressGuard(["127.0.0.1"]))) as http:
        other = RobotsCache(rclient, http, LIMITS, ttl=120, max_bytes=4096)
        assert not other.rules_for(site.url("/no-bots/b.html")).allowed(site.url("/no-bots/b.html"))
    assert site.hits["/robots.txt"] == 1


@pytest.mark.parametrize("status", [404, 410, 401, 403])
def test_a_4xx_robots_means_no_rules(site, cache, rclient, status):
    site.routes["/robots.txt"] = robots_route("User-agent: *\nDisallow: /\n", status)
    assert cache.rules_for(site.url("/a.html")).allowed(site.url("/a.html"))
    assert rclient.hget(keys.robots(origin_of(site.base_url)), "state") == b"none"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_robots_stops_fetching_for_a_while(site, cache, rclient, status):
    site.routes["/robots.txt"] = robots_route("oops", status)
    with pytest.raises(ServerError, match=f"robots.txt of .* unreachable: HTTP {status}"):
        cache.rules_for(site.url("/a.html"))
    # Remembered briefly: the next look raises without asking the site again.
    with pytest.raises(NetworkError, match="could not be read recently"):
        cache.rules_for(site.url("/b.html"))
    assert site.hits["/robots.txt"] == 1
    assert 0 < rclient.ttl(keys.robots(origin_of(site.base_url))) <= 60


def test_an_unreachable_robots_is_retryable(site, cache):
    site.routes["/robots.txt"] = badserver.reset_mid_body()
    with pytest.raises(NetworkError, match="robots.txt of .* unreachable: network error"):
        cache.rules_for(site.url("/a.html"))


def test_robots_redirects_are_followed(site, cache):
    site.routes["/robots.txt"] = badserver.redirect("/real-robots.txt", 301)
    site.routes["/real-robots.txt"] = robots_route("User-agent: *\nDisallow: /secret\n")
    assert not cache.rules_for(site.url("/secret/x")).allowed(site.url("/secret/x"))


def test_a_robots_redirect_loop_counts_as_no_file(site, cache):
    site.routes["/robots.txt"] = badserver.redirect("/r2")
    site.routes["/r2"] = badserver.redirect("/robots.txt")
    assert cache.rules_for(site.url("/x")).allowed(site.url("/x"))


def test_an_oversized_robots_is_cut_at_the_cap_not_refused(site, cache):
    filler = "# " + "x" * 100 + "\n"
    text = "User-agent: *\nDisallow: /early/\n" + filler * 200 + "Disallow: /late/\n"
    site.routes["/robots.txt"] = robots_route(text)
    rules = cache.rules_for(site.url("/"))
    assert not rules.allowed(site.url("/early/a")) and rules.allowed(site.url("/late/a"))
