"""Scheduled crawling for real: a redis-server, celery beat and worker processes, and a site on
127.0.0.1 whose feed and sitemap change between polls. Sources are changed while beat runs.

Each test module here runs its own redis-server, so beat's ticks and the queued crawl never reach
the workers of other test modules.
"""

from __future__ import annotations

import html
import subprocess
import sys

import pytest
import redis

from tests.example_page import news_page
from tests.prose import prose
from tests.servers import REPO, Beat, CeleryWorker, RedisServer, Site, base_env, run_cli, wait_for
from worker.pipeline import PIPELINE
from worker.registry import Registry
from worker.storage import Storage

pytestmark = pytest.mark.integration

def article(title: str) -> str:
    words = title.lower().split()
    paragraphs = [f"{title}: the harbour board said on Tuesday that the {w} plan would go ahead next spring, "
                  f"with work on the {w} section starting in March and ending before the summer season."
                  for w in words] + [f"Residents asked about {title.lower()} at a meeting that ran late into the night."]
    paragraphs += prose(title)  # distinct text per story, as real stories are
    page = news_page(paragraphs, title=f"{title} | generic")
    # The source's rules pick this element as the title; the generic extractor would not.
    return page.replace("<body>", f'<body><h2 class="real-title">{html.escape(title)}</h2>', 1)


def rss(site: Site, paths: list[str]) -> tuple[int, dict[str, str], bytes]:
    items = "".join(f"<item><title>{p}</title><link>{site.url(p)}</link></item>" for p in paths)
    return 200, {"Content-Type": "application/rss+xml"}, f'<rss version="2.0"><channel>{items}</channel></rss>'.encode()


def sitemap(site: Site, paths: list[str]) -> tuple[int, dict[str, str], bytes]:
    urls = "".join(f"<url><loc>{site.url(p)}</loc></url>" for p in paths)
    body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    return 200, {"Content-Type": "application/xml"}, body.encode()


SOURCES = """\
[sources.harbor]
feeds = ["{base}/rss.xml"]
sitemaps = ["{base}/sitemap.xml"]
every = "1s"

[sources.harbor.rules]
title = "h2.real-title"

[sources.quiet]
feeds = ["{base}/quiet/rss.xml"]
every = "1s"
"""


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    root = tmp_path_factory.mktemp("scheduling")
    server = RedisServer(root / "redis").start()
    site = Site().start()
    sources = root / "sources.toml"
    sources.write_text(SOURCES.format(base=site.base_url))
    env = base_env(GLEANER_REDIS_URL=server.url, GLEANER_DATABASE_URL=f"sqlite:///{root / 'gleaner.db'}",
                   GLEANER_DATA_DIR=str(root), GLEANER_SOURCES=str(sources), GLEANER_SOURCES_TICK="0.5",
                   GLEANER_HOST_RATE="0", GLEANER_HOST_CONCURRENCY="0", GLEANER_ALLOW_PRIVATE_URLS="127.0.0.1")
    for n in range(1, 9):
        site.page(f"/news/{n}.html", article(f"Harbor story number {n} about ferries"))
    site.page("/quiet/1.html", article("Quiet story about lighthouses"))
    site.page("/live/1.html", article("Live story about tides"))
    site.routes["/rss.xml"] = rss(site, ["/news/1.html", "/news/2.html"])
    site.routes["/sitemap.xml"] = sitemap(site, ["/news/2.html", "/news/3.html"])
    site.routes["/quiet/rss.xml"] = rss(site, ["/quiet/1.html"])
    site.routes["/live/rss.xml"] = rss(site, ["/live/1.html"])

    # The paused source is paused before beat first ticks: it must never be polled.
    assert run_cli("sources", "sync", env=env).returncode == 0
    assert run_cli("sources", "pause", "quiet", env=env).returncode == 0
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=4, name="sched").start()
    beat = Beat(env, root / "beat-1").start()
    client = redis.Redis.from_url(server.url)
    yield {"env": env, "site": site, "sources": sources, "storage": Storage(env["GLEANER_DATABASE_URL"]),
           "registry": Registry(client), "worker": worker, "beat": beat, "root": root}
    beat.stop()
    worker.stop()
    site.stop()
    client.close()
    server.stop()


def _titles(storage: Storage, category: str) -> dict[str, str]:
    return {r.url: r.title for r in storage.list_records(limit=1000, category=category)}


def _runs(registry: Registry, key: str) -> int:
    return next((s.runs for s in registry.statuses() if s.key == key), 0)


def _after_runs(crawl, key: str, more: int) -> None:
    target = _runs(crawl["registry"], key) + more
    wait_for(f"{more} more runs of {key}", lambda: _runs(crawl["registry"], key) >= target, crawl["worker"])


def test_new_items_are_ingested_once_and_old_ones_never_fetched_again(crawl):
    site, storage, worker = crawl["site"], crawl["storage"], crawl["worker"]
    first = {site.url(f"/news/{n}.html") for n in (1, 2, 3)}
    wait_for("the first three articles", lambda: set(_titles(storage, "harbor")) >= first, worker)

    # The feed and the sitemap change between polls.
    site.routes["/rss.xml"] = rss(site, ["/news/4.html", "/news/1.html", "/news/2.html"])
    site.routes["/sitemap.xml"] = sitemap(site, ["/news/2.html", "/news/3.html", "/news/5.html"])
    more = first | {site.url("/news/4.html"), site.url("/news/5.html")}
    wait_for("the two new articles", lambda: set(_titles(storage, "harbor")) == more, worker)
    _after_runs(crawl, "harbor", 3)

    titles = _titles(storage, "harbor")
    assert titles[site.url("/news/4.html")] == "Harbor story number 4 about ferries"  # the source's title rule
    for n in range(1, 6):
        assert site.hits[f"/news/{n}.html"] == 1, f"/news/{n}.html fetched {site.hits[f'/news/{n}.html']} times"
    assert site.hits["/rss.xml"] >= 5 and site.hits["/sitemap.xml"] >= 5
    jobs = storage.count_jobs()
    assert sum(jobs.values()) == 5 and jobs.get("done") == 5

    status = next(s for s in crawl["registry"].statuses() if s.key == "harbor")
    assert status.last_error is None and status.queued_total == 5 and status.next_run is not None
    listed = run_cli("sources", "list", env=crawl["env"]).stdout
    assert "harbor" in listed and "file:1" in listed and "quiet" in listed and "paused" in listed


def test_a_paused_source_is_not_polled_until_resumed(crawl):
    site = crawl["site"]
    _after_runs(crawl, "harbor", 2)
    assert "/quiet/rss.xml" not in site.hits

    assert run_cli("sources", "resume", "quiet", env=crawl["env"]).returncode == 0
    wait_for("the resumed source's article",
             lambda: site.url("/quiet/1.html") in _titles(crawl["storage"], "quiet"), crawl["worker"])

    assert run_cli("sources", "pause", "harbor", env=crawl["env"]).returncode == 0
    _after_runs(crawl, "quiet", 2)  # a run already under way when harbor was paused has ended by now
    polls = site.hits["/rss.xml"]
    _after_runs(crawl, "quiet", 2)
    assert site.hits["/rss.xml"] == polls
    assert run_cli("sources", "resume", "harbor", env=crawl["env"]).returncode == 0


def test_sources_change_while_beat_runs(crawl):
    env, site, storage, sources = crawl["env"], crawl["site"], crawl["storage"], crawl["sources"]

    added = run_cli("sources", "add", "live", "--feed", site.url("/live/rss.xml"), "--every", "1s", env=env)
    assert added.returncode == 0, added.stderr
    wait_for("the added source's article", lambda: site.url("/live/1.html") in _titles(storage, "live"),
             crawl["worker"])
    assert run_cli("sources", "remove", "live", env=env).returncode == 0
    _after_runs(crawl, "harbor", 2)
    polls = site.hits["/live/rss.xml"]
    _after_runs(crawl, "harbor", 2)
    assert site.hits["/live/rss.xml"] == polls

    # A broken file is refused with its line; the sources already running keep running.
    good = sources.read_text()
    sources.write_text(good.replace('every = "1s"', 'every = "often"', 1))
    listed = run_cli("sources", "list", env=env)
    assert f"sources file REFUSED: {sources}:4: source 'harbor': every: interval must be like" in listed.stderr
    before = site.hits["/sitemap.xml"]
    _after_runs(crawl, "harbor", 2)
    assert site.hits["/sitemap.xml"] > before

    # A fixed file with a new start point is picked up at the next tick.
    site.routes["/more.xml"] = rss(site, ["/news/6.html"])
    sources.write_text(good.replace('feeds = ["' + site.url("/rss.xml") + '"]',
                                    'feeds = ["' + site.url("/rss.xml") + '", "' + site.url("/more.xml") + '"]'))
    wait_for("the new feed's article", lambda: site.url("/news/6.html") in _titles(storage, "harbor"),
             crawl["worker"])
    assert crawl["registry"].file_status().error is None


def test_two_beats_never_schedule_one_run_twice(crawl):
    second = Beat(crawl["env"], crawl["root"] / "beat-2").start()
    try:
        _after_runs(crawl, "harbor", 6)
    finally:
        second.stop()
    crawl["beat"].stop()
    worker = crawl["worker"]

    def count(*needles: str) -> int:
        return sum(all(n in line for n in needles) for line in worker.log)

    # Every discover message the worker got ended as one run or one logged skip; none was a
    # slot that another beat's tick had claimed already.
    wait_for("the last runs to finish", lambda: count("gleaner.discover[", "received")
             == count("URLs listed") + count("run is dropped") + count("previous run still going"), worker)
    assert count("duplicate run dropped") == 0
    assert count("URLs listed") >= 6
    ticks = count("gleaner.poll_sources[", "received")
    assert ticks > count("source harbor:", "URLs listed")  # both beats ticked all along


# --- manual URLs jump the line ---------------------------------------------------------------------

def test_a_manual_url_overtakes_500_scheduled_ones(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    site = Site().start()
    env = base_env(GLEANER_REDIS_URL=server.url, GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'gleaner.db'}",
                   GLEANER_DATA_DIR=str(tmp_path), GLEANER_HOST_RATE="0", GLEANER_HOST_CONCURRENCY="0",
                   GLEANER_ALLOW_PRIVATE_URLS="127.0.0.1")
    worker = None
    try:
        scheduled = [site.page(f"/crawl/{n}.html", article(f"Crawled story {n} on the weather")) for n in range(500)]
        manual = site.page("/breaking.html", article("Breaking story about the bridge"))
        queued = subprocess.run(
            [sys.executable, "-c", "import sys\n"
             "from worker.queues import Priority\nfrom worker.settings import get_settings\n"
             "from worker.storage import Storage\nfrom worker.submit import submit\n"
             "submit(Storage(get_settings().effective_database_url), sys.stdin.read().split(), 'crawl',"
             " Priority.SCHEDULED)"],
            input="\n".join(scheduled), env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert queued.returncode == 0, queued.stderr
        assert run_cli("enqueue", "--category", "manual", manual, env=env).returncode == 0

        storage = Storage(env["GLEANER_DATABASE_URL"])
        worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=1, name="one").start()
        manual_job = wait_for("the manual job", lambda: next(
            (j for j in storage.get_jobs(_job_ids(storage)).values() if j["url"] == manual
             and j["state"] in ("done", "duplicate", "failed")), None), worker)
        assert manual_job["state"] == "done", manual_job["reason"]
        # The scheduled work then runs too: the order is the priorities', not a stuck crawl.
        wait_for("scheduled fetches", lambda: sum(p.startswith("/crawl/") for p in site.hits) >= 4, worker)
        jobs = storage.get_jobs(_job_ids(storage))
        finished_first = [j for j in jobs.values() if j["url"] != manual and j["state"] in ("done", "duplicate")
                          and j["updated_at"] <= manual_job["updated_at"]]
        assert finished_first == []
        article_hits = [path for path in site.hits if path.endswith(".html")]  # in order of first hit
        assert article_hits[0] == "/breaking.html"
    finally:
        if worker:
            worker.stop()
        site.stop()
        server.stop()


def _job_ids(storage: Storage) -> list[str]:
    from sqlalchemy import select

    from worker.storage import jobs

    with storage.engine.connect() as conn:
        return list(conn.execute(select(jobs.c.id)).scalars())
