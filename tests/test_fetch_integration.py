"""Every way the web fails, at once, through a real celery worker: each URL ends in its own state,
the good pages among them are stored, nothing is lost or left queued.

The worker runs with short timeouts and backoffs from the environment, so the module takes seconds.
"""

from __future__ import annotations

import re
import time

import pytest
import redis

from tests import badserver
from tests.conftest import fresh_redis_db
from tests.example_page import news_page
from tests.prose import prose
from tests.servers import CeleryWorker, Site, base_env, run_cli
from worker.pipeline import PIPELINE
from worker.storage import TERMINAL_STATES, Storage

pytestmark = pytest.mark.integration

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def article(n: int, title: str | None = None) -> str:
    return news_page(prose(f"fetch-{n}"), title=title or f"Council to repave streets, part {n}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fetch-integration")
    site = Site().start()
    redis_db = fresh_redis_db()  # this module's own, empty Redis database (robots, limits, index)
    client = redis.Redis.from_url(redis_db)
    env = base_env(
        GLEANER_REDIS_URL=redis_db,
        GLEANER_DATABASE_URL=f"sqlite:///{root / 'gleaner.db'}", GLEANER_DATA_DIR=str(root),
        GLEANER_TOTAL_TIMEOUT="3", GLEANER_READ_TIMEOUT="1", GLEANER_CONNECT_TIMEOUT="1",
        GLEANER_MAX_BODY_BYTES=str(1_000_000), GLEANER_FETCH_RETRIES="2",
        GLEANER_RETRY_BACKOFF_BASE="0.2", GLEANER_RETRY_BACKOFF_MAX="2",
        GLEANER_HOST_RATE="50", GLEANER_HOST_CONCURRENCY="4", GLEANER_ROBOTS_TTL="60",
        GLEANER_OPERATOR="tests@gleaner.invalid",
    )
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=6, name="fetchtest").start()
    yield env, Storage(env["GLEANER_DATABASE_URL"]), site
    worker.stop()
    site.stop()
    client.close()


def outcomes(stdout: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in stdout.strip().splitlines())


def test_every_failure_ends_in_its_state_and_good_pages_are_stored(world):
    env, storage, site = world
    inside = badserver.Listener("127.0.0.2")  # where the private redirect points; must never be reached
    unavailable = (503, {"Content-Type": "text/html"}, b"down")
    seen_agents: list[str] = []

    def good(n: int):
        def route(h):
            seen_agents.append(h.headers.get("User-Agent", ""))
            return (200, {"Content-Type": "text/html; charset=utf-8"}, article(n).encode())
        return route

    routes = {
        "/robots.txt": (200, {"Content-Type": "text/plain"}, ROBOTS),
        "/good/1.html": good(1), "/good/2.html": good(2), "/good/3.html": good(3), "/good/4.html": good(4),
        "/trickle.html": badserver.trickle(interval=0.1),
        "/huge.html": badserver.Flood(),
        "/bomb.html": badserver.gzip_bomb(),
        "/loop-a": badserver.redirect("/loop-b"), "/loop-b": badserver.redirect("/loop-a"),
        "/to-private": badserver.redirect(f"http://127.0.0.2:{inside.port}/latest/meta-data/"),
        "/flaky.html": badserver.Sequence(unavailable, unavailable, good(5)),
        "/limited.html": badserver.Sequence((429, {"Retry-After": "1"}, b""), good(6)),
        "/sjis.html": (200, {"Content-Type": "text/html"}, badserver.shift_jis_page()),
        "/report.pdf": (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 an annual report"),
        "/photo.jpg": (200, {"Content-Type": "image/jpeg"}, b"\xff\xd8\xff\xe0 a photo"),
        "/private/secret.html": good(7),
        "/reset.html": badserver.reset_mid_body(),
        "/reset-once.html": badserver.Sequence(badserver.reset_mid_body(), good(8)),
        "/gone.html": (410, {"Content-Type": "text/html"}, b"gone"),
        "/missing.html": (404, {"Content-Type": "text/html"}, b"missing"),
    }
    site.routes.update(routes)
    urls = [site.url(p) for p in routes if p not in ("/robots.txt", "/loop-b")]

    try:
        result = run_cli("enqueue", "--wait", "--timeout", "120", "-", input="\n".join(urls) + "\n", env=env)
    finally:
        inside.close()
    assert result.returncode == 1, result.stderr  # some failed, as they should
    got = outcomes(result.stdout)
    assert set(got) == set(urls)
    assert not [u for u, o in got.items() if o.startswith("pending")], "nothing may be left unfinished"

    def failed(path: str) -> str:
        outcome = got[site.url(path)]
        assert outcome.startswith("failed: "), (path, outcome)
        return outcome.removeprefix("failed: ")

    for path in ("/good/1.html", "/good/2.html", "/good/3.html", "/good/4.html", "/flaky.html",
                 "/limited.html", "/sjis.html", "/reset-once.html"):
        assert re.fullmatch(UUID_RE, got[site.url(path)]), (path, got[site.url(path)])
    assert re.fullmatch(r"too slow: .*/trickle.html not fetched within 3s \(trickling or endless\)", failed("/trickle.html"))
    assert failed("/huge.html") == "body exceeds the 1000000-byte cap"
    assert failed("/bomb.html") == "decompressed body exceeds 1000000 bytes (compression bomb?)"
    assert failed("/loop-a").startswith("redirect loop: ")
    assert failed("/to-private").startswith("refused: 127.0.0.2 resolves to 127.0.0.2, a loopback address")
    assert inside.accepted == 0
    assert failed("/report.pdf") == "not an HTML page: application/pdf"
    assert failed("/photo.jpg") == "not an HTML page: image/jpeg"
    assert re.fullmatch(r"robots.txt of http://127.0.0.1:\d+ disallows /private/secret.html to GleanerBot",
                        failed("/private/secret.html"))
    assert re.fullmatch(r"network error fetching .*/reset.html: .* \(gave up after 3 attempts\)", failed("/reset.html"))
    assert failed("/gone.html") == "HTTP 410 Gone"
    assert failed("/missing.html") == "HTTP 404 Not Found"

    # Retried exactly as often as they should be; permanent failures and robots never retried.
    assert site.hits["/flaky.html"] == 3 and site.hits["/limited.html"] == 2
    assert site.hits["/reset.html"] == 3 and site.hits["/reset-once.html"] == 2
    assert site.hits["/gone.html"] == 1 and site.hits["/missing.html"] == 1
    assert "/private/secret.html" not in site.hits
    assert site.hits["/robots.txt"] == 1  # once for every worker thread, then from Redis
    assert seen_agents and all(a == "GleanerBot/0.1 (+tests@gleaner.invalid)" for a in seen_agents)

    # The stored records are the pages, the Shift_JIS one decoded.
    sjis = storage.get_record(got[site.url("/sjis.html")])
    assert sjis.title == "東京都が新しい防災計画を発表"
    assert badserver.SHIFT_JIS_TEXT[0] in sjis.body
    assert storage.get_record(got[site.url("/flaky.html")]).title == "Council to repave streets, part 5"

    # The dead-letter store has each failure with URL, reason, status, attempts and time.
    jobs = {j["url"]: j for j in storage.failed_jobs(limit=100)}
    assert (jobs[site.url("/gone.html")]["http_status"], jobs[site.url("/gone.html")]["attempts"]) == (410, 1)
    assert jobs[site.url("/reset.html")]["attempts"] == 3
    listing = run_cli("failed", "list", env=env)
    assert listing.returncode == 0, listing.stderr
    gone_id = jobs[site.url("/gone.html")]["id"]
    block = re.search(rf"^{gone_id}  \d{{4}}-\d\d-\d\d \d\d:\d\d  fetch\s+x1 HTTP 410  {re.escape(site.url('/gone.html'))}\n"
                      r"    HTTP 410 Gone$", listing.stdout, re.M)
    assert block, listing.stdout
    assert listing.stdout.count("\n    ") == len(jobs)


def wait_terminal(storage: Storage, job_ids: list[str], timeout: float = 60) -> dict[str, dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = storage.get_jobs(job_ids)
        if all(j["state"] in TERMINAL_STATES for j in jobs.values()):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"jobs still queued: {storage.get_jobs(job_ids)}")


def test_failed_retry_sends_dead_letters_through_again(world):
    env, storage, site = world
    site.routes["/later/a.html"] = (503, {"Content-Type": "text/html"}, b"down")
    site.routes["/later/b.html"] = (500, {"Content-Type": "text/html"}, b"broken")
    a, b = site.url("/later/a.html"), site.url("/later/b.html")
    first = outcomes(run_cli("enqueue", "--wait", a, b, env=env).stdout)
    assert first[a].endswith("(gave up after 3 attempts)") and first[b].endswith("(gave up after 3 attempts)")
    ids = {j["url"]: j["id"] for j in storage.failed_jobs(limit=1000)}

    # The site recovers; one retried by id, then the rest with --all.
    site.routes["/later/a.html"] = (200, {"Content-Type": "text/html"}, article(20).encode())
    site.routes["/later/b.html"] = (200, {"Content-Type": "text/html"}, article(21).encode())
    one = run_cli("failed", "retry", ids[a], env=env)
    assert one.returncode == 0 and one.stdout.strip() == f"{ids[a]}: requeued {a}", one.stderr
    assert wait_terminal(storage, [ids[a]])[ids[a]]["state"] == "done"  # a fresh tally: not exhausted at once
    assert ids[a] not in {j["id"] for j in storage.failed_jobs(limit=1000)}

    skipped = run_cli("failed", "retry", ids[a], env=env)
    assert "not a failed job, skipped" in skipped.stderr

    # Every other broken page of the first test is mended too, except the two that can't be.
    for n, path in enumerate(sorted(site.routes)):
        if path not in ("/robots.txt", "/later/a.html", "/later/b.html", "/to-private", "/private/secret.html"):
            site.routes[path] = (200, {"Content-Type": "text/html"}, article(100 + n).encode())
    everything = run_cli("failed", "retry", "--all", env=env)
    assert everything.returncode == 0 and f"{ids[b]}: requeued {b}" in everything.stdout
    requeued = dict(re.findall(rf"^({UUID_RE}): requeued (\S+)$", everything.stdout, re.M))
    assert len(requeued) == len(ids) - 1
    jobs = wait_terminal(storage, list(requeued), timeout=90)
    assert storage.get_record(jobs[ids[b]]["record_id"]).title == "Council to repave streets, part 21"
    still_failed = {requeued[j]: row["reason"] for j, row in jobs.items() if row["state"] == "failed"}
    assert set(still_failed) == {site.url("/to-private"), site.url("/private/secret.html")}
    assert still_failed[site.url("/to-private")].startswith("refused: 127.0.0.2 resolves to 127.0.0.2")
    assert all(row["state"] in ("done", "failed") for row in jobs.values())
    assert run_cli("failed", "retry", env=env).returncode != 0  # neither ids nor --all: a usage error


def test_conditional_requests_keep_the_record_and_a_change_updates_it(world):
    env, storage, site = world
    state = {"etag": '"v1"', "body": article(30, "Bridge reopens after repairs").encode()}
    conditional: list[str | None] = []

    def route(h):
        conditional.append(h.headers.get("If-None-Match"))
        if h.headers.get("If-None-Match") == state["etag"]:
            return (304, {"ETag": state["etag"]}, b"")
        return (200, {"Content-Type": "text/html", "ETag": state["etag"]}, state["body"])

    site.routes["/bridge.html"] = route
    url = site.url("/bridge.html")
    record_id = outcomes(run_cli("enqueue", "--wait", url, env=env).stdout)[url]
    assert re.fullmatch(UUID_RE, record_id)
    before = storage.get_record(record_id)

    unchanged = outcomes(run_cli("enqueue", "--wait", url, env=env).stdout)[url]
    assert unchanged == record_id
    assert conditional == [None, '"v1"']
    same = storage.get_record(record_id)
    assert same.updated_at == before.updated_at and same.body == before.body

    state.update(etag='"v2"', body=article(31, "Bridge reopens after repairs, with a new cycle lane").encode())
    changed = outcomes(run_cli("enqueue", "--wait", url, env=env).stdout)[url]
    assert changed == record_id  # the same record, updated in place
    after = storage.get_record(record_id)
    assert after.title == "Bridge reopens after repairs, with a new cycle lane"
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert conditional == [None, '"v1"', '"v1"']
