"""The archive through real workers: a fetched page is kept and `gleaner show --raw` prints it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.example_page import news_page
from tests.prose import prose
from tests.servers import run_cli

pytestmark = pytest.mark.integration

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _stored(result) -> str:
    assert result.returncode == 0, result.stderr
    url, record_id = result.stdout.strip().split("\t")
    assert re.fullmatch(UUID_RE, record_id), result.stdout
    return record_id


def test_a_fetched_page_is_archived_and_shown_raw(pipeline):
    env, storage, site = pipeline
    html = news_page(["The lighthouse on the north cape will be lit again on Friday after two years of repairs.",
                      "Its keeper said the new lamp can be seen forty kilometres out at sea."],
                     title="Lighthouse lit again")
    url = site.page("/a/lighthouse.html", html)
    record_id = _stored(run_cli("enqueue", "--wait", url, env=env))

    at = storage.archived_page(record_id)
    assert at is not None and not Path(at.file).is_absolute()
    assert (Path(env["GLEANER_DATA_DIR"]) / "archive" / at.file).is_file()
    shown = run_cli("show", record_id, "--raw", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == html

    unarchived = run_cli("show", "--raw", record_id, env={**env, "GLEANER_ARCHIVE_DIR": str(Path(env["GLEANER_DATA_DIR"]) / "elsewhere")})
    assert unarchived.returncode == 1 and "is gone" in unarchived.stderr


def _warc(path: Path, entries, *, gzipped: bool = True) -> list[int]:
    """A WARC file as another crawler writes it (warcio, not our writer); each entry is
    (kind, url, status, headers, body). Returns each record's offset."""
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    offsets = []
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gzipped, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "a test crawler"}))
        for kind, url, status, headers, body in entries:
            offsets.append(fh.tell())
            if kind == "request":
                http = StatusAndHeaders(f"GET {url} HTTP/1.1", headers, is_http_request=True)
            else:
                http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, kind, payload=BytesIO(body), length=len(body),
                                                          http_headers=http))
    return offsets


def _article(seed: str, title: str) -> bytes:
    return news_page(prose(seed, paragraphs=4), title=title).encode()


def test_warc_files_are_ingested_without_fetching_and_damage_is_located(pipeline, tmp_path):
    import gzip

    env, storage, site = pipeline
    html = [("text/html; charset=utf-8", {}), ("text/html", {"Content-Encoding": "gzip"})]
    entries = [
        ("response", "https://news.example/a/one.html", "200 OK", [("Content-Type", html[0][0])],
         _article("ingest one", "Tide tables revised")),
        ("request", "https://news.example/a/one.html", "", [("User-Agent", "other")], b""),
        ("response", "https://news.example/a/two.html", "200 OK",
         [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
         gzip.compress(_article("ingest two", "Ferry timetable changes"))),
        ("response", "https://news.example/missing.html", "404 Not Found", [("Content-Type", "text/html")],
         b"<p>gone</p>"),
        ("response", "https://news.example/report.pdf", "200 OK", [("Content-Type", "application/pdf")],
         b"%PDF-1.4"),
        ("response", "https://news.example/a/three.html", "200 OK", [("Content-Type", "text/html")],
         _article("ingest three", "Bridge opens to cyclists")),
    ]
    good = tmp_path / "crawl.warc.gz"
    _warc(good, entries)
    plain = tmp_path / "crawl.warc"
    _warc(plain, [("response", "https://news.example/b/four.html", "200 OK", [("Content-Type", "text/html")],
                   _article("ingest four", "Library extends its hours"))], gzipped=False)

    result = run_cli("ingest", "--category", "cc", str(good), str(plain), env=env)
    assert result.returncode == 0, result.stderr
    assert "4 page(s): 4 stored, 0 duplicate, 0 failed, 0 unfinished; 5 record(s) skipped" in result.stderr
    for reason in ("skipped 1: HTTP 404", "skipped 1: not an HTML page: application/pdf",
                   "skipped 1: a request record, not a response", "skipped 2: a warcinfo record, not a response"):
        assert reason in result.stderr
    titles = {r.url: r.title for r in storage.list_records(category="cc", limit=100)}
    assert titles == {"https://news.example/a/one.html": "Tide tables revised",
                      "https://news.example/a/two.html": "Ferry timetable changes",
                      "https://news.example/a/three.html": "Bridge opens to cyclists",
                      "https://news.example/b/four.html": "Library extends its hours"}
    # (news.example is never resolved here: stored records prove the pages were not fetched.)
    record = storage.find_record_by_url("https://news.example/a/two.html")
    assert storage.archived_page(str(record.id)).file == str(good.resolve())
    raw = run_cli("show", "--raw", str(record.id), env=env)
    assert raw.stdout.encode() == _article("ingest two", "Ferry timetable changes")

    # A file cut short inside its fourth page (a crawler killed mid-write): the three before it go in.
    entries = [("response", f"https://news.example/c/{n}.html", "200 OK", [("Content-Type", "text/html")],
                _article(f"torn {n}", f"Harbour notice number {n}")) for n in range(4)]
    torn = tmp_path / "torn.warc.gz"
    offsets = _warc(torn, entries)
    torn.write_bytes(torn.read_bytes()[: offsets[3] + 100])
    result = run_cli("ingest", "--category", "torn", str(torn), env=env)
    assert result.returncode == 1
    assert f"{torn}: stopped at byte {offsets[3]} of {offsets[3] + 100}: the file ends inside a record" in result.stderr
    assert "3 page(s): 3 stored" in result.stderr
    assert sorted(r.title for r in storage.list_records(category="torn")) == [
        f"Harbour notice number {n}" for n in range(3)]

    # Corrupt bytes inside the second record: the first goes in, and the byte is named.
    corrupt = tmp_path / "corrupt.warc.gz"
    offsets = _warc(corrupt, [(k, u.replace("/c/", "/d/"), s, h, b) for k, u, s, h, b in entries[:3]])
    data = bytearray(corrupt.read_bytes())
    data[offsets[1] + 20: offsets[1] + 60] = bytes(40)
    corrupt.write_bytes(bytes(data))
    result = run_cli("ingest", "--category", "corrupt", str(corrupt), env=env)
    assert result.returncode == 1
    assert f"stopped at byte {offsets[1]} of {len(data)}: corrupt gzip data" in result.stderr
    assert [r.url for r in storage.list_records(category="corrupt")] == ["https://news.example/d/0.html"]


def test_reprocess_extracts_archived_pages_again_keeping_ids(pipeline):
    import redis

    from tasks.extraction import SiteRules
    from worker.registry import Registry
    from worker.sources import Source

    env, storage, site = pipeline
    kicker = '<p class="kicker">Council approves the new harbour wall</p>'
    page_a = news_page(prose("reprocess a", paragraphs=4), title="Harbour wall vote").replace("<h1>", kicker + "<h1>")
    a_url = site.page("/r/harbour-wall.html", page_a)
    b_url = site.page("/r/market-day.html", news_page(prose("reprocess b", paragraphs=4), title="Market day moves"))
    a_id = _stored(run_cli("enqueue", "--category", "rp", "--wait", a_url, env=env))
    b_id = _stored(run_cli("enqueue", "--category", "rp2", "--wait", b_url, env=env))
    a, b = storage.get_record(a_id), storage.get_record(b_id)
    assert a.title == "Harbour wall vote"
    hits, stored = dict(site.hits), storage.count_records()
    site.page("/r/market-day.html", "<html><body><p>Changed on the site since.</p></body></html>")

    assert run_cli("reprocess", env=env).returncode == 2  # which records must be said
    # Extraction improves for source rp: its headline is in the kicker.
    client = redis.Redis.from_url(env["GLEANER_REDIS_URL"])
    Registry(client).add(Source(key="rp", feeds=[site.url("/r/feed.xml")], every=86400.0,
                                rules=SiteRules(title="p.kicker")))
    client.close()

    result = run_cli("reprocess", "--all", env=env)
    assert result.returncode == 0, result.stderr
    assert " 0 failed, 0 unfinished" in result.stderr
    a2, b2 = storage.get_record(a_id), storage.get_record(b_id)
    assert a2.title == "Council approves the new harbour wall"  # extracted again, with the new rules
    assert (a2.id, a2.created_at, a2.url) == (a.id, a.created_at, a.url)
    assert a2.updated_at > a.updated_at
    # From the archive, not the changed site: nothing changed, updated_at included (its similar
    # readings may: records stored since are its neighbours now).
    assert b2.model_dump(exclude={"similar"}) == b.model_dump(exclude={"similar"})
    assert site.hits == hits  # nothing was fetched
    assert storage.count_records() == stored  # no record added: each was stored under its own id

    only = run_cli("reprocess", "--source", "rp2", env=env)
    assert only.returncode == 0 and "1 page(s): 1 stored" in only.stderr, only.stderr
    assert storage.get_record(b_id).updated_at == b.updated_at
    later = run_cli("reprocess", "--since", "2999-01-01", env=env)
    assert later.returncode == 0 and "0 page(s)" in later.stderr


def test_a_changed_refetch_keeps_the_old_version_and_an_unchanged_one_adds_none(pipeline):
    import json
    import warnings

    import redis

    from worker.web.app import create_app

    env, storage, site = pipeline
    first = prose("revisions", paragraphs=3)
    url = site.page("/v/budget.html", news_page(first, title="Budget passes"))
    record_id = _stored(run_cli("enqueue", "--wait", url, env=env))
    seen = storage.get_record(record_id)

    assert _stored(run_cli("enqueue", "--wait", url, env=env)) == record_id  # the same text again
    assert storage.get_record(record_id).updated_at == seen.updated_at
    assert len(storage.revisions(record_id)) == 1  # only the record itself

    words = first[1].split()
    second = [first[0], " ".join(words[:4] + ["<b>amended</b>", "&"] + words[5:]), first[2]]
    site.page("/v/budget.html", news_page(second, title="Budget passes after all"))
    assert _stored(run_cli("enqueue", "--wait", url, env=env)) == record_id
    now = storage.get_record(record_id)
    versions = storage.revisions(record_id)
    assert [(v.title, v.body) for v in versions] == [("Budget passes", first), ("Budget passes after all", second)]
    assert versions[0].seen_at == seen.updated_at and versions[1].seen_at == now.updated_at > seen.updated_at
    assert now.created_at == seen.created_at

    shown = run_cli("show", "--revisions", record_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Version 2 of 2")
    assert "title was: Budget passes\n" in shown.stdout
    assert f"[-{words[4]}-] {{+<b>amended</b> &+}}" in shown.stdout
    assert "(the first version seen)" in shown.stdout
    as_json = json.loads(run_cli("show", "--revisions", "--format", "json", record_id, env=env).stdout)
    assert [v["number"] for v in as_json] == [1, 2] and as_json[0]["changes"] is None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    client = redis.Redis.from_url(env["GLEANER_REDIS_URL"])
    app = create_app(storage, redis_client=client, workers=lambda: [], allowed_hosts=["testserver"], token=None)
    with TestClient(app) as web:
        api = web.get(f"/api/records/{record_id}/revisions").json()
        assert api == as_json
        changes = api[1]["changes"]
        assert {"op": "removed", "text": words[4]} in changes and {"op": "added", "text": "<b>amended</b> &"} in changes
        assert web.get(f"/api/records/{'0' * 8}-0000-0000-0000-{'0' * 12}/revisions").status_code == 404
        page = web.get(f"/records/{record_id}").text
        assert "Revisions (2 versions)" in page
        assert f"<del>{words[4]}</del>" in page and "<ins>&lt;b&gt;amended&lt;/b&gt; &amp;</ins>" in page
        assert "<b>amended" not in page
    client.close()
