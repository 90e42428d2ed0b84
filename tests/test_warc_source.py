"""A ``warc`` source for real: a redis-server, celery beat and a worker, and a folder this test
fills with WARC files between polls (a file still being written, one that grows, a damaged one).
Its own redis-server, so beat's ticks never reach the workers of other test modules."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
import redis

from tests.example_page import news_page
from tests.prose import prose
from tests.servers import Beat, CeleryWorker, RedisServer, base_env, run_cli, wait_for
from worker import keys
from worker.pipeline import PIPELINE
from worker.registry import Registry
from worker.storage import Storage

pytestmark = pytest.mark.integration


def warc(entries, *, info: bool = True) -> tuple[bytes, list[int]]:
    """WARC records as another crawler writes them (warcio, gzip per record); each entry is
    (kind, url, status, content type, body). The bytes, and each entry's offset in them."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out = BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    if info:
        writer.write_record(writer.create_warcinfo_record("test.warc.gz", {"software": "a test crawler"}))
    offsets = []
    for kind, url, status, media, body in entries:
        offsets.append(out.tell())
        if kind == "request":
            http = StatusAndHeaders(f"GET {url} HTTP/1.1", [("User-Agent", "other")], is_http_request=True)
        else:
            http = StatusAndHeaders(status, [("Content-Type", media)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, kind, payload=BytesIO(body), length=len(body),
                                                      http_headers=http))
    return out.getvalue(), offsets


def page(name: str, title: str) -> tuple[str, str, str, str, bytes]:
    body = news_page(prose(f"warc source {name}", paragraphs=4), title=title).encode()
    return ("response", f"https://cc.example/{name}.html", "200 OK", "text/html; charset=utf-8", body)


@pytest.fixture
def folder_crawl(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    folder = tmp_path / "incoming"
    folder.mkdir()
    sources = tmp_path / "sources.toml"
    sources.write_text('[sources.cc]\nwarc = "incoming"\nevery = "1s"\n')  # relative to the file's folder
    env = base_env(GLEANER_REDIS_URL=server.url, GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'gleaner.db'}",
                   GLEANER_DATA_DIR=str(tmp_path), GLEANER_SOURCES=str(sources), GLEANER_SOURCES_TICK="0.5")
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=4, name="warcsrc").start()
    beat = Beat(env, tmp_path / "beat").start()
    client = redis.Redis.from_url(server.url)
    yield {"env": env, "folder": folder, "storage": Storage(env["GLEANER_DATABASE_URL"]),
           "registry": Registry(client), "redis": client, "worker": worker}
    beat.stop()
    worker.stop()
    client.close()
    server.stop()


def test_a_warc_folder_is_ingested_as_it_fills_each_record_once(folder_crawl):
    env, folder, storage, registry, worker = (folder_crawl[k] for k in ("env", "folder", "storage", "registry",
                                                                         "worker"))

    def titles() -> dict[str, str]:
        return {r.url: r.title for r in storage.list_records(category="cc", limit=100)}

    def status():
        return next(s for s in registry.statuses() if s.key == "cc")

    def after_runs(more: int) -> None:
        target = status().runs + more
        wait_for(f"{more} more runs", lambda: status().runs >= target, worker)

    # A whole file: two articles, and records that are counted and skipped with their reasons.
    data, _ = warc([page("one", "Tide tables revised"),
                    ("request", "https://cc.example/one.html", "", "", b""),
                    ("response", "https://cc.example/gone.html", "404 Not Found", "text/html", b"<p>gone</p>"),
                    ("response", "https://cc.example/report.pdf", "200 OK", "application/pdf", b"%PDF-1.4"),
                    page("two", "Ferry timetable changes")])
    (folder / "a.warc.gz").write_bytes(data)
    (folder / "notes.txt").write_text("not a WARC file")
    wait_for("the first file's articles", lambda: len(titles()) == 2, worker)
    assert titles() == {"https://cc.example/one.html": "Tide tables revised",
                        "https://cc.example/two.html": "Ferry timetable changes"}
    fed = [run for run in registry.runs("cc") if run["new"]]
    assert [(run["found"], run["new"], run["skipped"], run["errors"]) for run in fed] == [
        (6, 2, {"a warcinfo record, not a response": 1, "a request record, not a response": 1, "HTTP 404": 1,
                "not an HTML page: application/pdf": 1}, [])]

    # A file another process is still writing: its first page is whole, its second cut short.
    growing, offsets = warc([page("three", "Bridge opens to cyclists"), page("four", "Library extends its hours")])
    cut = offsets[1] + 120
    (folder / "b.warc.gz").write_bytes(growing[:cut])
    wait_for("the whole page of the file being written", lambda: "https://cc.example/three.html" in titles(), worker)
    after_runs(2)
    assert "https://cc.example/four.html" not in titles()  # half a record is never ingested
    assert status().last_error is None  # a file being written is not damaged
    with open(folder / "b.warc.gz", "ab") as fh:  # the writer finishes it
        fh.write(growing[cut:])
    wait_for("the finished page", lambda: "https://cc.example/four.html" in titles(), worker)

    # A damaged file: corrupt bytes inside its second record; the first goes in, the byte is named.
    damaged, offsets = warc([page("five", "Harbour notice five"), page("six", "Harbour notice six"),
                             page("seven", "Harbour notice seven")])
    broken = bytearray(damaged)
    broken[offsets[1] + 20: offsets[1] + 60] = bytes(40)
    (folder / "c.warc.gz").write_bytes(bytes(broken))
    wait_for("the damaged file reported", lambda: (status().last_error or "").startswith("c.warc.gz:"), worker)
    assert status().last_error.startswith(f"c.warc.gz: stopped at byte {offsets[1]} of {len(broken)}: "
                                          "corrupt gzip data")
    wait_for("the page before the damage", lambda: "https://cc.example/five.html" in titles(), worker)

    # The first file grows: only its new records go in.
    more, _ = warc([page("eight", "Market day moves")], info=False)
    with open(folder / "a.warc.gz", "ab") as fh:
        fh.write(more)
    wait_for("the grown file's new page", lambda: "https://cc.example/eight.html" in titles(), worker)
    after_runs(3)

    # Every page went in exactly once, whatever the number of polls; nothing after the damage did.
    assert set(titles()) == {f"https://cc.example/{n}.html" for n in ("one", "two", "three", "four", "five", "eight")}
    assert storage.count_jobs() == {"done": 6}
    assert status().queued_total == 6
    assert "c.warc.gz: stopped at byte" in status().last_error  # reported on every run while unchanged
    progress = folder_crawl["redis"].hgetall(keys.source_warc_progress("cc"))
    assert {Path(k.decode()).name for k in progress} == {"a.warc.gz", "b.warc.gz", "c.warc.gz"}

    shown = run_cli("sources", "show", "cc", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "records read 0, pages fed 0, skipped 0  errors: c.warc.gz: stopped at byte" in shown.stdout
    listed = run_cli("sources", "list", env=env)
    assert "cc" in listed.stdout and "c.warc.gz: stopped at byte" in listed.stdout

    # The damaged file is taken away: its error and what was remembered of it go with it.
    (folder / "c.warc.gz").unlink()
    wait_for("the error to clear", lambda: status().last_error is None, worker)
    progress = folder_crawl["redis"].hgetall(keys.source_warc_progress("cc"))
    assert {Path(k.decode()).name for k in progress} == {"a.warc.gz", "b.warc.gz"}
    assert storage.count_jobs() == {"done": 6}


def test_a_warc_source_needs_a_readable_folder(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        env = base_env(GLEANER_REDIS_URL=server.url, GLEANER_DATA_DIR=str(tmp_path),
                       GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'gleaner.db'}")
        missing = run_cli("sources", "add", "cc", "--warc", str(tmp_path / "nowhere"), env=env)
        assert missing.returncode == 1
        assert f"warc: folder '{tmp_path / 'nowhere'}' does not exist" in missing.stderr
        (tmp_path / "file").write_text("")
        not_folder = run_cli("sources", "add", "cc", "--warc", str(tmp_path / "file"), env=env)
        assert not_folder.returncode == 1 and "is not a folder" in not_folder.stderr
        mixed = run_cli("sources", "add", "cc", "--warc", str(tmp_path), "--feed", "https://a.example/rss", env=env)
        assert mixed.returncode == 1 and "a warc source reads its folder only" in mixed.stderr
        added = run_cli("sources", "add", "cc", "--warc", str(tmp_path), "--every", "1h", env=env)
        assert added.returncode == 0, added.stderr
        shown = run_cli("sources", "show", "cc", env=env)
        assert f'"warc": "{tmp_path}"' in shown.stdout

        sources = tmp_path / "sources.toml"
        sources.write_text('[sources.ok]\nfeeds = ["https://a.example/rss"]\n\n[sources.cc2]\nwarc = "gone"\n')
        refused = run_cli("sources", "list", env={**env, "GLEANER_SOURCES": str(sources)})
        assert (f"sources file REFUSED: {sources}:5: source 'cc2': warc: folder '{tmp_path / 'gone'}' "
                "does not exist") in refused.stderr
    finally:
        server.stop()


def test_an_unreadable_folder_is_refused(tmp_path):
    import os

    from worker.sources import check_folder

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: every folder is readable")
        with pytest.raises(ValueError, match="is not readable by this user"):
            check_folder(str(locked), None)
    finally:
        locked.chmod(0o755)

