"""The JSON API and the HTML pages over HTTP (in process), against a real SQLite file and the session's
redis-server; then schemathesis checks every operation against the app's own OpenAPI document."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.webutil import store_record
from worker import keys, metrics
from worker.delayed import DelayedJobs
from worker.job import Message
from worker.pipeline import PIPELINE
from worker.queues import broker_keys
from worker.storage import Storage
from worker.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice that its test client will move to httpx2
    from fastapi.testclient import TestClient

WORKERS = [{"name": "fetch@box", "queues": ["fetch"]}, {"name": "stages@box", "queues": ["dedupe", "parse"]}]


@pytest.fixture
def broker(redis_url):
    """The broker's Redis (db 0): submit() sends there, so queue depths are read there too."""
    client = redis.Redis.from_url(redis_url)
    yield client
    # Messages sent by these tests name jobs only this test's database knows; drop them so no
    # later worker wastes a delivery on them.
    client.delete(*[key for queue in PIPELINE.names() for key in broker_keys(queue)])
    client.close()


@pytest.fixture
def storage(tmp_path):
    s = Storage(f"sqlite:///{tmp_path / 'web.db'}")
    yield s
    s.close()


@pytest.fixture
def client(storage, broker):
    app = create_app(storage, redis_client=broker, workers=lambda: WORKERS, allowed_hosts=["testserver"], token=None)
    with TestClient(app) as c:
        yield c


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# --- records ----------------------------------------------------------------------------------


def test_records_search_filters_by_words_source_and_date(client, storage):
    a = store_record(storage, title="Harbour pier to close", body=["The pier closes in spring."], category="nhk",
                     published_at=_when("2025-03-21T09:00:00"), summary="Pier repairs.")
    b = store_record(storage, title="Bakery wins prize", body=["Sourdough again."], category="local",
                     published_at=_when("2025-03-25T23:59:00"))
    c = store_record(storage, title="Council votes on lanes", body=["Bicycle lanes approved."], category="nhk",
                     published_at=_when("2025-04-02T00:00:00"))

    def ids(**params):
        response = client.get("/api/records", params=params)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["total"] == len(data["items"]) or data["total"] > data["limit"]
        return {item["id"] for item in data["items"]}

    assert ids() == {a, b, c}
    assert ids(source="nhk") == {a, c}
    assert ids(q="pier") == {a}
    assert ids(q="repairs") == {a}  # the summary is searched too
    assert ids(since="2025-03-22") == {b, c}
    assert ids(until="2025-03-25") == {a, b}  # the whole last day is included
    assert ids(since="2025-03-22", until="2025-03-31") == {b}
    assert ids(source="nhk", since="2025-04-01") == {c}
    assert ids(q="100%") == set()  # % is a character to find, not a wildcard
    # A date is YYYY-MM-DD; a number is not read as a Unix time (schemathesis found "-1e-228").
    for bad in ("0", "-1.2585799987145422e-228", "1711929600", "2025-3-1"):
        response = client.get("/api/records", params={"until": bad})
        assert response.status_code == 422 and "YYYY-MM-DD" in response.text, bad

    page = client.get("/api/records", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    rest = client.get("/api/records", params={"limit": 2, "offset": 2}).json()
    assert {i["id"] for i in page["items"] + rest["items"]} == {a, b, c}


def test_duplicates_are_hidden_unless_asked_for(client, storage):
    canonical = store_record(storage, title="Pier repairs planned", body=["Same text."])
    copy = store_record(storage, title="Pier repairs planned", body=["Same text.", "Syndicated."],
                        duplicate_of=canonical)
    assert {i["id"] for i in client.get("/api/records").json()["items"]} == {canonical}
    assert {i["id"] for i in client.get("/api/records?duplicates=true").json()["items"]} == {canonical, copy}
    detail = client.get(f"/api/records/{canonical}").json()
    assert detail["also_at"] == [storage.get_record(copy).url]


def test_get_record_by_id_or_prefix_does_not_count_a_read(client, storage):
    record_id = store_record(storage, title="Stem cells", body=["Patients regained motor function."])
    full = client.get(f"/api/records/{record_id}")
    assert full.status_code == 200
    data = full.json()
    assert data["id"] == record_id and data["title"] == "Stem cells"
    assert data["body"] == ["Patients regained motor function."]
    assert client.get(f"/api/records/{record_id[:8]}").json()["id"] == record_id
    assert storage.get_record(record_id).read_count == 0

    read = client.post(f"/api/records/{record_id}/read")
    assert read.status_code == 200 and read.json()["read_count"] == 1
    assert client.post(f"/api/records/{record_id}/read").json()["read_count"] == 2
    assert storage.get_record(record_id).last_read_at is not None


def test_unknown_and_malformed_record_ids(client):
    assert client.get("/api/records/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/api/records/not-hex!").status_code == 422
    assert client.get("/api/records/ab").status_code == 422  # too short to be a useful prefix
    assert client.post("/api/records/00000000-0000-0000-0000-000000000000/read").status_code == 404


# --- queueing, jobs, failures -----------------------------------------------------------------


def test_post_urls_creates_jobs_and_queues_the_valid_ones(client, storage, broker):
    before = metrics.queue_depths(broker, PIPELINE.names())["fetch"]
    response = client.post("/api/urls", json={"urls": ["https://news.example/a.html", "ftp://x/y", "not a url"],
                                              "category": "wire"})
    assert response.status_code == 202, response.text
    jobs = response.json()["jobs"]
    assert [j["url"] for j in jobs] == ["https://news.example/a.html", "ftp://x/y", "not a url"]
    assert [j["state"] for j in jobs] == ["queued", "failed", "failed"]
    assert all(j["category_id"] == "wire" for j in jobs)
    assert jobs[1]["reason"].startswith("refused scheme 'ftp'")
    assert jobs[2]["reason"].startswith("malformed URL")
    assert metrics.queue_depths(broker, PIPELINE.names())["fetch"] == before + 1  # only the valid URL was sent

    one = client.get(f"/api/jobs/{jobs[0]['id']}").json()
    assert one["state"] == "queued" and one["url"] == "https://news.example/a.html"
    several = client.get("/api/jobs", params=[("ids", j["id"]) for j in jobs]).json()
    assert [j["id"] for j in several] == [j["id"] for j in jobs]
    assert client.post("/api/urls", json={"urls": ["https://news.example/b"]}).json()["jobs"][0]["category_id"] == "manual"


def test_post_urls_rejects_bad_bodies(client):
    assert client.post("/api/urls", json={"urls": []}).status_code == 422
    assert client.post("/api/urls", json={"urls": "https://news.example/a"}).status_code == 422
    assert client.post("/api/urls", json={"urls": ["https://x.example/" + "a" * 3000]}).status_code == 422
    assert client.post("/api/urls", json={"urls": ["https://x.example/"] * 1001}).status_code == 422
    assert client.post("/api/urls", json={"urls": ["https://x.example/"], "category": ""}).status_code == 422


def test_failures_list_and_retry(client, storage, broker):
    [failed_id, queued_id] = storage.create_jobs(["https://news.example/gone", "https://news.example/ok"], "t")
    storage.fail_job(failed_id, reason="HTTP 404 Not Found", stage="fetch", status=404)
    listed = client.get("/api/failures").json()
    assert [(j["id"], j["reason"], j["http_status"], j["stage"]) for j in listed] == [
        (failed_id, "HTTP 404 Not Found", 404, "fetch")]

    before = metrics.queue_depths(broker, PIPELINE.names())["fetch"]
    retried = client.post(f"/api/failures/{failed_id}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    assert metrics.queue_depths(broker, PIPELINE.names())["fetch"] == before + 1
    assert client.get("/api/failures").json() == []
    assert client.post(f"/api/failures/{queued_id}/retry").status_code == 409
    assert client.post("/api/failures/00000000-0000-0000-0000-000000000000/retry").status_code == 404


def test_sources_come_from_the_provider(storage, broker):
    rows = [{"name": "NHK World", "url": "https://www3.nhk.or.jp/rss", "category": "nhk",
             "last_run": datetime(2025, 3, 22, 7, 0, tzinfo=timezone.utc), "next_run": None,
             "last_error": "HTTP 503 Service Unavailable"}]
    app = create_app(storage, redis_client=broker, workers=lambda: [], sources=lambda: rows,
                     allowed_hosts=["testserver"], token=None)
    with TestClient(app) as c:
        data = c.get("/api/sources").json()
        assert data == [{"name": "NHK World", "url": "https://www3.nhk.or.jp/rss", "category": "nhk",
                         "last_run": "2025-03-22T07:00:00Z", "next_run": None,
                         "last_error": "HTTP 503 Service Unavailable"}]
        page = c.get("/sources").text
        assert "NHK World" in page and "2025/03/22 07:00" in page and "HTTP 503 Service Unavailable" in page


def test_sources_are_empty_without_a_provider(client):
    assert client.get("/api/sources").json() == []
    assert "No sources configured." in client.get("/sources").text


# --- stats and overview -----------------------------------------------------------------------


def test_stats_report_queues_stage_counters_jobs_and_workers(client, storage, broker):
    before = client.get("/api/stats").json()
    metrics.record_stage(broker, "store", "success", 0.01)
    metrics.record_stage(broker, "fetch", "failure", 0.5)
    storage.create_jobs(["https://news.example/x"], "t")
    broker.lpush("dedupe", "m1", "m2")
    DelayedJobs(broker).add(Message("fetch", "00000000-0000-0000-0000-0000000000aa", {"priority": 0}), delay=3600)
    after = client.get("/api/stats").json()
    assert set(after["queues"]) == {"fetch", "parse", "dedupe", "summarize", "store"}
    assert after["queues"]["dedupe"] == before["queues"]["dedupe"] + 2
    assert after["stages"]["store"]["success"] == before["stages"]["store"]["success"] + 1
    assert after["stages"]["fetch"]["failure"] == before["stages"]["fetch"]["failure"] + 1
    assert after["jobs"]["queued"] == before["jobs"]["queued"] + 1
    assert after["retry_waiting"] == before["retry_waiting"] + 1
    for member in broker.zrange(keys.delayed(), 0, -1):
        if b"0000000000aa" in member:
            broker.zrem(keys.delayed(), member)
    assert len(after["throughput"]) == 60
    recent = after["throughput"][-2:]  # the minute may have turned since record_stage
    assert sum(m["stored"] for m in recent) >= 1 and sum(m["failed"] for m in recent) >= 1
    assert after["workers"] == WORKERS
    assert after["flower_url"] == "http://127.0.0.1:5555"


def test_overview_page_shows_stages_workers_and_links_flower(client):
    page = client.get("/").text
    for stage in ("fetch", "parse", "dedupe", "summarize", "store"):
        assert f'data-stage="{stage}"' in page
    assert "fetch@box" in page and "stages@box" in page
    assert 'href="http://127.0.0.1:5555"' in page
    assert '<script src="/static/overview.js"' in page
    assert client.get("/static/overview.js").status_code == 200


def test_worker_listing_errors_show_instead_of_failing(storage, broker):
    def broken():
        raise ConnectionError("broker unreachable")

    app = create_app(storage, redis_client=broker, workers=broken, allowed_hosts=["testserver"], token=None)
    with TestClient(app) as c:
        stats = c.get("/api/stats").json()
    assert stats["workers"] == [] and "broker unreachable" in stats["workers_error"]


# --- pages --------------------------------------------------------------------------------------


def test_queue_form_submits_and_follows_the_jobs(client, storage):
    response = client.post("/queue", data={"urls": "https://news.example/a.html\n# a comment\n\nnot a url\n",
                                           "category": "form"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/jobs?ids=")
    page = client.get(response.headers["location"]).text
    assert "https://news.example/a.html" in page and "not a url" in page and "a comment" not in page
    assert "malformed URL" in page
    assert client.post("/queue", data={"urls": "  \n"}).status_code == 422


def test_reader_page_counts_reads_and_follows_the_example_layout(client, storage):
    record_id = store_record(storage, title="Stem cell transplant helps", category="nhk",
                             body=["First paragraph.", "Second paragraph."], summary="Two patients recovered.",
                             url="https://www3.nhk.or.jp/nhkworld/en/news/20250321_21/",
                             published_at=_when("2025-03-21T09:30:00"), authors=["Ann Example", "Bo Sample"],
                             language="ja")
    page = client.get(f"/records/{record_id}").text
    order = ["Stem cell transplant helps", "First paragraph.", "Second paragraph.", "Similar Readings (0 items)",
             "Summary", "Two patients recovered.", "Statistics", "Words", "Read Count", "Details", "ID",
             record_id, "Category ID", "nhk", "URL", "https://www3.nhk.or.jp/nhkworld/en/news/20250321_21/",
             "Date", "March 21, 2025", "Authors", "Ann Example, Bo Sample", "Language", "ja", "Created", "Updated",
             "Last Read"]
    article = page[page.index("<article"):]
    position = 0
    for marker in order:  # each one after the one before
        position = article.index(marker, position) + len(marker)
    assert '<span class="num" id="read-count">1</span>' in page
    assert storage.get_record(record_id).read_count == 1
    assert '<span class="num" id="read-count">2</span>' in client.get(f"/records/{record_id[:8]}").text
    assert client.get("/records/00000000-0000-0000-0000-000000000000",
                      headers={"accept": "text/html"}).status_code == 404


def test_records_page_filters(client, storage):
    store_record(storage, title="Harbour pier to close", body=["x"], category="nhk",
                 published_at=_when("2025-03-21T09:00:00"))
    store_record(storage, title="Bakery wins prize", body=["y"], category="local")
    page = client.get("/records", params={"source": "nhk"}).text
    assert "Harbour pier to close" in page and "Bakery wins prize" not in page
    assert '<option value="local"' in page and '<option value="nhk" selected' in page
    page = client.get("/records", params={"since": "2025-13-01"}).text
    assert "is not a date" in page


def test_failures_page_retry_button(client, storage):
    [job_id] = storage.create_jobs(["https://news.example/gone"], "t")
    storage.fail_job(job_id, reason="HTTP 410 Gone", stage="fetch", status=410)
    page = client.get("/failures").text
    assert "HTTP 410 Gone" in page and f'action="/failures/{job_id}/retry"' in page
    response = client.post(f"/failures/{job_id}/retry", follow_redirects=True)
    assert response.status_code == 200 and "No failures." in response.text
    assert storage.get_job(job_id)["state"] == "queued"


def test_openapi_document_lists_the_api(client):
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    assert {"get"} <= set(paths["/api/records"]) and {"get"} <= set(paths["/api/records/{record_id}"])
    assert "post" in paths["/api/urls"] and "get" in paths["/api/stats"] and "get" in paths["/api/sources"]
    assert "get" in paths["/api/failures"] and "post" in paths["/api/failures/{job_id}/retry"]
    assert not any(p.startswith(("/records", "/queue", "/login", "/metrics")) for p in paths)


# --- schemathesis -------------------------------------------------------------------------------

EXAMPLES = 12  # per operation and mode: enough to hit every parameter, quick enough for every run


def test_api_conforms_to_its_openapi_document(storage, broker):
    """Every operation, with valid and invalid inputs generated from the document: no 5xx, every
    status documented, every body matching its schema, invalid input refused."""
    store_record(storage, title="Seed record", body=["Something to find."])
    [job_id] = storage.create_jobs(["https://news.example/gone"], "t")
    storage.fail_job(job_id, reason="HTTP 404 Not Found", stage="fetch", status=404)
    app = create_app(storage, redis_client=broker, workers=lambda: WORKERS, allowed_hosts=["testserver"], token=None)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    negative_impossible = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.generate])
            def check(case):
                case.call_and_validate()

            try:
                check()
            except Unsatisfiable:
                # No invalid input exists for an operation that takes none (GET /api/stats).
                assert mode is GenerationMode.NEGATIVE and not _has_inputs(operation), operation.label
                negative_impossible.append(operation.label)
    assert set(negative_impossible) <= {"GET /api/sources", "GET /api/stats"}


def _has_inputs(operation) -> bool:
    return any(len(group) for group in (operation.path_parameters, operation.query, operation.headers)) or bool(
        list(operation.body))
