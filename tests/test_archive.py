"""The page archive: WARC 1.1 records as any WARC reader reads them, rotation, unique names,
retention, and a torn or corrupt file read up to its last whole record."""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import replace
from io import BytesIO

import httpx
import pytest
from warcio.archiveiterator import ArchiveIterator

from tasks.archive import ArchiveWriter, DamagedArchive, Skipped, read_pages, record_at
from tasks.fetching.download import FetchLimits, download
from worker.payloads import FetchedPage

HTML = "<html><head><title>Harbour</title></head><body><p>The harbour reopens on Monday, née café.</p></body></html>"


@pytest.fixture
def fetched(site):
    """Three real downloads from a server on 127.0.0.1: plain, gzip-encoded, and after a redirect."""
    site.page("/plain.html", HTML)
    site.routes["/zipped.html"] = (200, {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
                                   gzip.compress(HTML.replace("Harbour", "Zipped").encode()))
    site.routes["/old"] = (301, {"Location": "/plain.html?moved=1"}, b"")
    with httpx.Client() as client:
        return [download(site.url(path), client, FetchLimits()) for path in ("/plain.html", "/zipped.html", "/old")]


def _all(path):
    with open(path, "rb") as fh:
        out = []
        for record in ArchiveIterator(fh):
            out.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI"), record.rec_headers,
                        record.http_headers, record.content_stream().read(), record.raw_stream.read()))
        return out


def test_every_page_is_a_response_and_its_request_as_warc_1_1(tmp_path, fetched, site):
    writer = ArchiveWriter(tmp_path, max_bytes=1 << 30)
    places = [writer.write(got) for got in fetched]
    writer.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and {p.file for p in places} == {files[0].name}

    records = _all(files[0])
    assert [r[0] for r in records] == ["warcinfo"] + ["response", "request"] * 3
    for (kind, uri, rec, http, content, _), got in zip(records[1::2], fetched):
        assert rec.protocol == "WARC/1.1"
        assert uri == got.final_url
        assert http.get_statuscode() == "200"
        assert content == got.body  # any reader decodes the body as received into the page
        assert rec.get_header("WARC-Date").startswith(got.requested_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert records[5][1] == site.url("/plain.html?moved=1")  # the URL after redirects
    # The gzip-encoded page is stored as it came over the wire, with its header.
    assert records[3][3].get_header("Content-Encoding") == "gzip"
    with open(files[0], "rb") as fh:
        raw = next(r for r in ArchiveIterator(fh) if (r.rec_headers.get_header("WARC-Target-URI") or "").endswith("zipped.html"))
        assert gzip.decompress(raw.raw_stream.read()).decode() == HTML.replace("Harbour", "Zipped")
    request = records[2]
    assert request[3].protocol == "GET" and request[3].statusline.startswith("/plain.html HTTP/1.1")
    assert request[3].get_header("User-Agent").startswith("GleanerBot/")
    assert request[2].get_header("WARC-Concurrent-To") == records[1][2].get_header("WARC-Record-ID")

    # Each place names the response record of its page.
    for place, got in zip(places, fetched):
        record = record_at(files[0], place.offset)
        assert record.rec_type == "response" and record.content == got.body


def test_the_gzip_level_changes_the_bytes_on_disk_not_what_is_read(tmp_path, fetched):
    big = [replace(got, raw=got.raw * 200, body=got.body * 200) for got in fetched[:1]]
    sizes, contents = {}, {}
    for level in (1, 9):
        folder = tmp_path / str(level)
        writer = ArchiveWriter(folder, max_bytes=1 << 30, gzip_level=level)
        place = writer.write(big[0])
        writer.close()
        (path,) = folder.iterdir()
        sizes[level] = path.stat().st_size
        contents[level] = record_at(path, place.offset).content
        # one gzip member a record: the response's member ends where the request's begins
        with open(path, "rb") as fh:
            assert [r.rec_type for r in ArchiveIterator(fh)] == ["warcinfo", "response", "request"]
    assert contents[1] == contents[9] == big[0].body
    assert sizes[9] < sizes[1]


def test_a_body_deflated_beforehand_goes_in_as_it_is_and_reads_the_same(tmp_path, fetched):
    """The fetch stage deflates a page once for its payload and hands the archive those blocks: the
    record holds them as they are (when the page came without a Content-Encoding), and reads, digests
    included, as the record compressed whole does."""
    from worker.deflated import deflate

    writer = ArchiveWriter(tmp_path, max_bytes=1 << 30)
    bodies = [deflate(got.body, 1) for got in fetched]
    places = [(writer.write(got), writer.write(got, body)) for got, body in zip(fetched, bodies)]
    writer.close()
    (path,) = tmp_path.iterdir()
    data = path.read_bytes()
    for (whole, framed), got, body in zip(places, fetched, bodies):
        a, b = record_at(path, whole.offset), record_at(path, framed.offset)
        assert a.content == b.content == got.body
        for name in ("WARC-Payload-Digest", "WARC-Block-Digest", "Content-Length"):
            assert a.rec_headers.get_header(name) == b.rec_headers.get_header(name)
        # the blocks are in the file, unless the page came gzip-encoded (its record holds those bytes)
        assert (body.blocks in data[framed.offset:]) == (got.raw == got.body)
    with open(path, "rb") as fh:
        records = [(r.rec_type, r.content_stream().read()) for r in ArchiveIterator(fh, check_digests="raise")]
    assert [kind for kind, _ in records] == ["warcinfo"] + ["response", "request"] * 6


def test_files_rotate_by_size_and_never_share_a_name(tmp_path, fetched):
    one = ArchiveWriter(tmp_path, max_bytes=1)  # every page in a file of its own
    two = ArchiveWriter(tmp_path, max_bytes=1)
    places = [w.write(got) for got in fetched for w in (one, two)]
    one.close(), two.close()
    names = [p.file for p in places]
    assert len(set(names)) == 6 and sorted(names) == sorted(p.name for p in tmp_path.iterdir())
    for name in names:
        assert name.startswith("gleaner-") and name.endswith(".warc.gz") and f"-{os.getpid()}." in name
    assert all(record_at(tmp_path / p.file, p.offset).rec_type == "response" for p in places)


def test_retention_removes_only_old_archive_files(tmp_path, fetched):
    old = tmp_path / "gleaner-20200101000000-00001-elsewhere-1.warc.gz"
    old.write_bytes(b"")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    os.utime(other, (time.time() - 3 * 86400,) * 2)
    writer = ArchiveWriter(tmp_path, max_bytes=1 << 30, retention_days=2)
    place = writer.write(fetched[0])
    writer.close()
    assert not old.exists() and other.exists() and (tmp_path / place.file).exists()


def _pages(path):
    got, damage = [], None
    try:
        for item in read_pages(path, path.name, 1 << 20):
            got.append(item)
    except DamagedArchive as exc:
        damage = exc
    return got, damage


def test_a_torn_tail_is_read_up_to_the_last_whole_record(tmp_path, fetched):
    writer = ArchiveWriter(tmp_path, max_bytes=1 << 30)
    places = [writer.write(got) for got in fetched]
    writer.close()
    path = tmp_path / places[0].file
    whole = path.read_bytes()
    pages, damage = _pages(path)
    assert damage is None
    assert [p.page.final_url for p in pages if isinstance(p, FetchedPage)] == [g.final_url for g in fetched]
    assert [p.body for p in pages if isinstance(p, FetchedPage)] == [g.body for g in fetched]
    assert all(p.reason.endswith("record, not a response") for p in pages if isinstance(p, Skipped))

    last = places[-1].offset
    with open(path, "rb") as fh:
        members = ArchiveIterator(fh)
        request = [members.get_record_offset() for _ in members][-1]  # the last page's request record
    # Cut inside the last page's response: two pages; inside its request: three; never half a page.
    for cut, kept, at in ((last + 1, 2, last), (last + 40, 2, last), (request - 1, 2, last),
                          (request + 10, 3, request), (len(whole) - 1, 3, request)):
        path.write_bytes(whole[:cut])
        pages, damage = _pages(path)
        assert [p.body for p in pages if isinstance(p, FetchedPage)] == [g.body for g in fetched[:kept]], cut
        assert damage is not None and damage.offset == at, cut
        assert "ends inside a record" in damage.reason

    corrupt = bytearray(whole)
    corrupt[places[1].offset + 30: places[1].offset + 60] = b"\x00" * 30
    path.write_bytes(bytes(corrupt))
    pages, damage = _pages(path)
    assert [p.body for p in pages if isinstance(p, FetchedPage)] == [fetched[0].body]
    assert damage.offset == places[1].offset and "corrupt" in damage.reason


@pytest.mark.parametrize("gzipped", [True, False])
def test_pages_from_an_offset_end_where_the_next_record_will_start(tmp_path, fetched, gzipped):
    """What a warc source's runs rely on: reading from the end of one read finds only what was
    appended since, and a tail of one byte is a record being written, not damage."""
    from warcio.warcwriter import WARCWriter

    from tasks.archive import TORN, pages_from
    from tasks.archive.warc import response_records

    def records(got) -> bytes:
        if gzipped:
            return response_records(got)
        # The same records uncompressed, as a plain .warc file holds them.
        out = []
        for member in ArchiveIterator(BytesIO(response_records(got))):
            buf = BytesIO()
            WARCWriter(buf, gzip=False, warc_version="1.1").write_record(member)
            out.append(buf.getvalue())
        return b"".join(out)

    path = tmp_path / ("a.warc.gz" if gzipped else "a.warc")
    path.write_bytes(records(fetched[0]))
    read = list(pages_from(path, path.name, 1 << 20, 0))
    end, last = read[-1]
    assert last is None and end == path.stat().st_size
    assert [item.page.final_url for _, item in read if isinstance(item, FetchedPage)] == [fetched[0].final_url]

    more = records(fetched[1])
    with open(path, "ab") as fh:
        fh.write(more[:1])
    with pytest.raises(DamagedArchive) as torn:
        list(pages_from(path, path.name, 1 << 20, end))
    assert (torn.value.offset, torn.value.reason) == (end, TORN)
    with open(path, "ab") as fh:
        fh.write(more[1:])
    read = list(pages_from(path, path.name, 1 << 20, end))
    assert [offset for offset, item in read if isinstance(item, FetchedPage)] == [end]
    assert read[-1] == (path.stat().st_size, None)
