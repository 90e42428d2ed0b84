"""A page deflated once serves two frames: the zlib stream of its payload, which workers old and new
read, and the gzip member of its WARC record, which any gzip or WARC reader reads."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest
import redis

from worker.deflated import Deflated, deflate, gzip_member, zlib_stream
from worker.models import Page
from worker.payloads import PAGE, FetchedPage


def page_bytes(size: int, seed: int = 7) -> bytes:
    """HTML-ish text that compresses as pages do (repeated words), ``size`` bytes long."""
    rng = random.Random(seed)
    words = [f"w{n}" for n in range(400)] + ["<p>", "</p>", "harbour", "café"]
    text = " ".join(rng.choice(words) for _ in range(size))
    return text.encode()[:size]


@pytest.mark.parametrize("data", [b"", b"x", page_bytes(70_000)])
@pytest.mark.parametrize("level", [1, 3, 4, 9])
def test_the_zlib_frame_reads_back_as_the_data(data, level):
    assert zlib.decompress(zlib_stream(deflate(data, level))) == data


@pytest.mark.parametrize("level", [1, 3, 9])
def test_a_gzip_member_of_plain_and_deflated_pieces_reads_back_whole(level):
    body = deflate(page_bytes(90_000), level)
    pieces = [b"WARC/1.1\r\nContent-Length: 90004\r\n\r\n", body, b"\r\n\r\n"]
    member = gzip_member(pieces, level)
    assert gzip.decompress(member) == pieces[0] + body.data + pieces[2]
    assert body.blocks in member  # the blocks stand in the member as they were made
    # Ending on a Deflated piece, two in a row, none at all: still whole members.
    for parts in ([b"head", body], [body, deflate(b"more", level)], [], [b""]):
        plain = b"".join(p.data if isinstance(p, Deflated) else p for p in parts)
        assert gzip.decompress(gzip_member(parts, level)) == plain
    # Members one after another are one gzip file, as a WARC file is.
    assert gzip.decompress(member + gzip_member([b"next"], level)) == gzip.decompress(member) + b"next"


def test_a_corrupt_member_is_refused_by_its_checksum():
    member = bytearray(gzip_member([b"head", deflate(page_bytes(5000), 1)], 1))
    member[-6] ^= 0xFF  # the CRC of the data
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(bytes(member))


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.delete("test:deflated:old", "test:deflated:new")
    client.close()


def test_the_page_payload_frames_the_fetch_stages_blocks_and_old_and_new_workers_read_it(client):
    body = page_bytes(60_000)
    page = Page(url="http://127.0.0.1/a.html", final_url="http://127.0.0.1/a.html", status=200,
                content_type="text/html")
    deflated = deflate(body, 1)
    pipe = client.pipeline(transaction=False)
    PAGE.write(pipe, "test:deflated:new", FetchedPage(page, body, deflated), 60)
    # What a worker from before this change wrote: the body through zlib.compress at level 3.
    pipe.hset("test:deflated:old", mapping={"meta": page.model_dump_json(), "body": zlib.compress(body, 3)})
    pipe.execute()

    stored = client.hget("test:deflated:new", "body")
    assert stored == zlib_stream(deflated)  # the fetch stage's blocks, not the page compressed again
    assert zlib.decompress(stored) == body  # what an older worker's decode does
    for key in ("test:deflated:new", "test:deflated:old"):
        pipe = client.pipeline(transaction=False)
        PAGE.read(pipe, key)
        read = PAGE.decode(pipe.execute()[0])
        assert read.page == page and read.body == body

    # A page built elsewhere (ingest, reprocess) carries no blocks: the codec compresses it.
    pipe = client.pipeline(transaction=False)
    PAGE.write(pipe, "test:deflated:new", FetchedPage(page, body), 60)
    pipe.execute()
    assert zlib.decompress(client.hget("test:deflated:new", "body")) == body
