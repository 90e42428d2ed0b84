"""The whole pipeline for real: redis-server, a celery worker process, pages over HTTP on
127.0.0.1, URLs queued through the CLI, records checked field by field in SQLite."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime

import pytest

from tests.conftest import fresh_redis_db
from tests.example_page import TITLE, needs_seed, news_page, printed_body, unique_paragraphs
from tests.prose import prose
from tests.servers import CeleryWorker, Site, base_env, run_cli
from worker.storage import Storage

pytestmark = pytest.mark.integration

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _outcomes(stdout: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in stdout.strip().splitlines())


@needs_seed
def test_example_article_becomes_the_example_record_without_its_defects(pipeline):
    env, storage, site = pipeline
    url = site.page("/nhkworld/en/news/20250321_21/", news_page(printed_body()))
    assert len(printed_body()) == 19  # the seed shows paragraphs 2-10 twice

    result = run_cli("enqueue", "--category", "nhk", "--wait", url, env=env)
    assert result.returncode == 0, result.stderr
    record_id = _outcomes(result.stdout)[url]
    assert re.fullmatch(UUID_RE, record_id)

    record = storage.get_record(record_id)
    assert record.category_id == "nhk"
    assert record.url == url
    assert record.title == TITLE
    assert record.body == unique_paragraphs()
    assert len(record.body) == 10
    assert record.word_count == 314
    assert record.published_at is not None and record.published_at.date().isoformat() == "2025-03-21"
    assert record.created_at.tzinfo is not None and record.updated_at.tzinfo is not None
    assert record.last_read_at is None and record.read_count == 0
    assert record.duplicate_of is None
    assert record.similar == []
    # The summary: whole sentences only, within 300 characters, starting from the lead.
    assert 0 < len(record.summary) <= 300
    assert record.summary.startswith(unique_paragraphs()[0].split(". ")[0])
    assert record.summary.endswith((".", "!", "?", '"'))
    text = " ".join(record.body)
    for sentence in re.split(r"(?<=[.!?])\s+", record.summary):
        assert sentence in text

    data = json.loads(run_cli("show", record_id, "--format", "json", env=env).stdout)
    assert set(data) == {"id", "category_id", "url", "title", "body", "published_at", "modified_at", "authors",
                         "language", "created_at", "updated_at", "last_read_at", "summary", "word_count", "read_count",
                         "similar", "duplicate_of", "story_id"}
    assert data["language"] == "en"
    datetime.fromisoformat(data["created_at"])  # ISO 8601
    assert data["created_at"].endswith(("Z", "+00:00"))

    shown = run_cli("show", record_id, env=env).stdout
    headings = ["Similar Readings (0 items)", "Summary", "Statistics", "Details"]
    positions = [shown.index(h) for h in headings]
    assert positions == sorted(positions)
    assert shown.index(unique_paragraphs()[-1]) < positions[0]
    assert shown.count(unique_paragraphs()[1]) == 1
    for field in (f"ID: {record_id}", "Category ID: nhk", f"URL: {url}", "Date: March 21, 2025", "Words: 314",
                  "Read Count: 0", "Last Read: never"):
        assert field in shown

    read = run_cli("read", record_id, env=env)
    assert "Read Count: 1" in read.stdout
    assert storage.get_record(record_id).last_read_at is not None


def test_same_article_at_another_url_is_linked_as_duplicate(pipeline):
    env, storage, site = pipeline
    paragraphs = [f"The harbour authority said on Monday that pier {n} will close for repairs next spring, "
                  f"affecting ferry routes {n} and {n + 1}." for n in range(3, 8)]
    first = site.page("/a/pier-repairs.html", news_page(paragraphs, title="Pier repairs planned"))
    second = site.page("/syndicated/pier-repairs.html", news_page(paragraphs, title="Pier repairs planned"))
    tracked = first + "?utm_source=newsletter&utm_medium=email#comments"

    one = run_cli("enqueue", "--wait", first, env=env)
    assert one.returncode == 0, one.stderr
    canonical_id = _outcomes(one.stdout)[first]
    two = run_cli("enqueue", "--wait", second, tracked, env=env)
    assert two.returncode == 0, two.stderr
    outcomes = _outcomes(two.stdout)
    assert outcomes[second] == f"duplicate of {canonical_id}"
    assert outcomes[tracked] == canonical_id  # same canonical URL: the same record, not a new one

    exported = [json.loads(line) for line in run_cli("export", "--format", "jsonl", env=env).stdout.splitlines()]
    links = [r for r in exported if r["url"] == second]
    assert len(links) == 1 and links[0]["duplicate_of"] == canonical_id
    assert sum(r["url"].startswith(first) for r in exported) == 1
    assert storage.alternate_urls(canonical_id) == [second]


def test_bad_input_fails_with_reasons_and_the_queue_keeps_flowing(pipeline):
    env, storage, site = pipeline
    site.routes["/report.pdf"] = (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 not an article")
    site.routes["/huge.html"] = (200, {"Content-Type": "text/html"}, b"<p>" + b"x" * 1_500_000 + b"</p>")
    good = site.page("/a/good.html", news_page([
        "A new community garden opened on Saturday behind the old train station, with forty raised beds.",
        "Volunteers built the beds over the summer from timber donated by a local sawmill.",
    ], title="Community garden opens"))
    urls = ["not a url", "ftp://127.0.0.1/file.html", site.url("/report.pdf"), site.url("/huge.html"),
            site.url("/missing.html"), good]

    result = run_cli("enqueue", "--wait", "-", input="\n".join(urls) + "\n", env=env)
    assert result.returncode == 1
    outcomes = _outcomes(result.stdout)
    assert outcomes["not a url"].startswith("failed: malformed URL")
    assert outcomes["ftp://127.0.0.1/file.html"].startswith("failed: refused scheme 'ftp'")
    assert outcomes[site.url("/report.pdf")] == "failed: not an HTML page: application/pdf"
    assert "exceeds the 1000000-byte cap" in outcomes[site.url("/huge.html")]
    assert outcomes[site.url("/missing.html")] == "failed: HTTP 404 Not Found"
    assert re.fullmatch(UUID_RE, outcomes[good])

    failed = run_cli("list", "--failed", env=env).stdout
    assert "application/pdf" in failed and "HTTP 404" in failed


def test_private_addresses_are_refused_unless_allow_listed(pipeline):
    env, storage, site = pipeline
    port = site.base_url.rsplit(":", 1)[1]
    url = f"http://127.0.0.2:{port}/a/anything.html"  # loopback, but not the allow-listed 127.0.0.1
    result = run_cli("enqueue", "--wait", url, env=env)
    assert result.returncode == 1
    reason = _outcomes(result.stdout)[url]
    assert reason.startswith("failed: refused: 127.0.0.2 resolves to 127.0.0.2, a loopback address")
    assert site.hits.get("/a/anything.html") is None


def test_redelivered_store_changes_nothing(pipeline):
    env, storage, site = pipeline
    url = site.page("/a/twice.html", news_page(["The bakery on Elm Street won the regional bread prize again.",
                                                 "Its owner credits a sourdough starter kept alive since 1987."],
                                                title="Bakery wins bread prize"))
    first = _outcomes(run_cli("enqueue", "--wait", url, env=env).stdout)[url]
    before = storage.get_record(first)
    again = _outcomes(run_cli("enqueue", "--wait", url, env=env).stdout)[url]
    after = storage.get_record(again)
    assert again == first
    assert after.updated_at == before.updated_at and after.created_at == before.created_at
    assert uuid.UUID(again)


STORY = [
    "The city's oldest lighthouse will be converted into a small maritime museum, the heritage trust "
    "announced on Tuesday, after a decade of campaigning by local historians.",
    "Restoration of the tower's lantern room and the keeper's cottage will cost about 2.4 million, "
    "most of it raised from private donors and a lottery grant awarded last spring.",
    "The museum will display ship models, logbooks and the original lens, which was removed in 1987 "
    "when the light was automated and has been kept in a warehouse since.",
    "Volunteers will run guided tours of the spiral staircase, limited to twelve visitors at a time "
    "because of the narrow steps and the small gallery at the top.",
    "The trust expects the museum to open in the summer of next year and hopes to attract about "
    "forty thousand visitors in its first season.",
]


def test_near_copies_arriving_together_end_as_one_record_and_links(pipeline):
    env, storage, site = pipeline
    variants = {
        "/wire/lighthouse.html": news_page(STORY, title="Lighthouse to become maritime museum"),
        # A syndicated copy: other headline, last paragraph cut, a credit line added.
        "/partner/lighthouse-museum.html": news_page(
            STORY[:-1] + ["This story was first published by the Coastal Wire news agency."],
            title="Historic lighthouse gets a second life as a museum"),
        # A lightly edited copy: one sentence reworded.
        "/regional/lighthouse.html": news_page(
            [STORY[0].replace("on Tuesday", "this week")] + STORY[1:], title="Lighthouse museum plan approved"),
    }
    urls = [site.page(path, page) for path, page in variants.items()]
    result = run_cli("enqueue", "--wait", *urls, env=env)  # all three in flight at once on 4 threads
    assert result.returncode == 0, result.stderr
    outcomes = _outcomes(result.stdout)
    canonical = [o for o in outcomes.values() if not o.startswith("duplicate of")]
    assert len(canonical) == 1
    assert sorted(outcomes.values()) == sorted([canonical[0]] + [f"duplicate of {canonical[0]}"] * 2)
    assert sorted(storage.alternate_urls(canonical[0])) == sorted(u for u in urls if outcomes[u] != canonical[0])


def _ran(worker: CeleryWorker, stage: str) -> bool:
    """The worker ran ``stage`` as a task of its own (its own message, off its queue)."""
    return any(f"gleaner.{stage}[" in line and "succeeded" in line for line in worker.log)


def _ingest_one(env: dict[str, str], site: Site, path: str, title: str, seed: str):
    """One article served at ``path``, queued through the CLI and waited for; its record."""
    url = site.page(path, news_page(prose(seed, 4), title=title))
    result = run_cli("enqueue", "--wait", url, env=env)
    assert result.returncode == 0, result.stderr
    return Storage(env["GLEANER_DATABASE_URL"]).get_record(_outcomes(result.stdout)[url])


def test_a_stage_added_to_the_table_runs_on_a_real_worker(tmp_path):
    """GLEANER_PIPELINE names a table with one more stage (tests/extra_stage.py): the worker gets
    its task and queue from the table, and every URL passes through it on the way to the store.
    Run-through is off, so each stage's message goes through its queue and its own task runs it."""
    from tests.extra_stage import MARK, PIPELINE as EXTRA

    env = base_env(GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'extra.db'}", GLEANER_DATA_DIR=str(tmp_path),
                   GLEANER_REDIS_URL=fresh_redis_db(), GLEANER_PIPELINE="tests.extra_stage:PIPELINE",
                   GLEANER_HOST_RATE="0", GLEANER_HOST_CONCURRENCY="0", GLEANER_RUN_THROUGH="false")
    worker = CeleryWorker(env, EXTRA.names(), pipeline=EXTRA, name="extra").start()
    site = Site().start()
    try:
        record = _ingest_one(env, site, "/signed.html", "The signed story", "extra-stage")
        assert record.title == "The signed story" and record.summary.endswith(MARK)
        assert _ran(worker, "sign")
    finally:
        site.stop()
        worker.stop()



def test_each_worker_runs_the_stages_it_serves_in_one_task_and_sends_on_the_rest(tmp_path):
    """Two workers splitting the stages. The first runs fetch, which hands on through the broker
    (it waits on the network), and parse, which sends dedupe through the broker to the second
    worker; that one runs dedupe, summarize and store in one task."""
    from worker.pipeline import PIPELINE

    env = base_env(GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'split.db'}", GLEANER_DATA_DIR=str(tmp_path),
                   GLEANER_REDIS_URL=fresh_redis_db(), GLEANER_HOST_RATE="0", GLEANER_HOST_CONCURRENCY="0")
    first = ["fetch", "parse"]
    workers = [CeleryWorker(env, first, name="front").start(),
               CeleryWorker(env, [s for s in PIPELINE.names() if s not in first], pool="prefork", concurrency=1,
                            name="back").start()]
    site = Site().start()
    try:
        record = _ingest_one(env, site, "/through.html", "The run-through story", "run-through")
        assert record.title == "The run-through story" and record.summary
        front, back = workers
        assert [_ran(front, s) for s in first] == [True, True]
        assert [_ran(back, s) for s in ("dedupe", "summarize", "store")] == [True, False, False]
        # Each froze what it loaded at start-up out of the garbage collector's passes (worker/memory.py).
        for worker in workers:
            froze = [line for line in worker.log if "start-up objects out of the garbage collector" in line]
            assert len(froze) == 1 and int(froze[0].split("froze ")[1].split()[0]) > 10_000, froze
    finally:
        site.stop()
        for worker in workers:
            worker.stop()
