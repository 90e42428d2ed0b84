"""Reading WARC files back: every ``response`` record as the page the parse stage reads, a
record's reasons for being skipped, and where a torn or corrupt file stops being readable.

warcio parses the records; the gzip members are split here, because a member cut short (a
writer killed mid-write) reads through warcio as a shorter record with no error, and this must
say where the damage is, not hand on half a page.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException
from warcio.timeutils import iso_date_to_datetime

from tasks.archive.warc import download_of
from tasks.fetching.download import media_type
from tasks.fetching.pages import HTML_TYPES, page_of
from worker.errors import ContentTypeError
from worker.models import ArchivedAt
from worker.payloads import FetchedPage

CHUNK = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD_BYTES = 256 * 1024 * 1024  # decompressed: a larger record is taken for damage, not read into memory
TORN = "the file ends inside a record (its writer stopped mid-write)"
_PARSE_ERRORS = (ArchiveLoadFailed, StatusAndHeadersParserException, EOFError, ValueError, zlib.error)


class DamagedArchive(Exception):
    """A WARC file is readable only up to ``offset``: what lies there is torn or corrupt."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: unreadable from byte {offset}: {reason}")
        self.path, self.offset, self.reason = path, offset, reason


@dataclass(frozen=True)
class Skipped:
    """A record that is not a page to parse, and why (for the tally)."""

    offset: int
    url: str
    reason: str


def _members(fh: BinaryIO, path: str, start: int, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Each whole gzip member from ``start``: (its offset, its bytes decompressed)."""
    offset, buf = start, b""
    while limit is None or limit > 0:
        if not buf:
            buf = fh.read(CHUNK)
            if not buf:
                return
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out: list[bytes] = []
        fed = size = 0
        while not inflate.eof:
            if not buf:
                buf = fh.read(CHUNK)
                if not buf:
                    raise DamagedArchive(path, offset, TORN)
            fed += len(buf)
            try:
                out.append(inflate.decompress(buf))
            except zlib.error as exc:
                raise DamagedArchive(path, offset, f"corrupt gzip data: {exc}") from None
            size += len(out[-1])
            if size > MAX_RECORD_BYTES:
                raise DamagedArchive(path, offset, f"a record larger than {MAX_RECORD_BYTES} bytes")
            buf = inflate.unused_data
        yield offset, b"".join(out)
        offset += fed - len(buf)
        if limit is not None:
            limit -= 1


def _records(fh: BinaryIO, path: str, start: int, limit: int | None = None) -> Iterator[tuple[int, ArcWarcRecord]]:
    """Each whole record from ``start``, with its offset; DamagedArchive where that stops."""
    fh.seek(start)
    head = fh.read(2)
    if len(head) == 1:  # too short to be anything but the first byte of a record being written
        raise DamagedArchive(path, start, TORN)
    gzipped = head == GZIP_MAGIC
    fh.seek(start)
    if gzipped:
        for offset, data in _members(fh, path, start, limit):
            try:
                for record in ArchiveIterator(BytesIO(data)):
                    record.content = record.content_stream().read()
                    yield offset, record
            except _PARSE_ERRORS as exc:
                raise DamagedArchive(path, offset, f"not a WARC record: {type(exc).__name__}: {exc}") from None
        return
    iterator = ArchiveIterator(fh)
    offset = start
    try:
        for record in iterator:
            offset = iterator.offset  # absolute: the iterator began where the file was positioned
            record.content = record.content_stream().read()
            record.raw_stream.read()
            if record.raw_stream.limit > 0:  # the block ended before its Content-Length
                raise DamagedArchive(path, offset, TORN)
            yield offset, record
            if limit is not None:
                limit -= 1
                if limit == 0:
                    return
    except _PARSE_ERRORS as exc:
        raise DamagedArchive(path, offset, f"not a WARC record: {type(exc).__name__}: {exc}") from None


def record_at(path: Path, offset: int) -> ArcWarcRecord:
    """The record at ``offset`` of a WARC file, its payload decoded in ``record.content``."""
    with open(path, "rb") as fh:
        for _, record in _records(fh, str(path), offset, limit=1):
            return record
    raise DamagedArchive(str(path), offset, "no record there (the file is shorter)")


def _page(record: ArcWarcRecord, name: str, offset: int, max_bytes: int) -> FetchedPage | Skipped:
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    if record.rec_type != "response" or not record.http_headers:
        return Skipped(offset, url, f"a {record.rec_type} record, not a response")
    got = download_of(record, record.content)
    if got.status != 200:
        return Skipped(offset, url, f"HTTP {got.status}")
    media, _ = media_type(got.headers)
    if media and media not in HTML_TYPES:
        return Skipped(offset, url, f"not an HTML page: {media}")
    if len(got.body) > max_bytes:
        return Skipped(offset, url, f"larger than the {max_bytes}-byte cap")
    try:
        page, body = page_of(got)
    except ContentTypeError as exc:
        return Skipped(offset, url, exc.reason)
    date = record.rec_headers.get_header("WARC-Date")
    at = iso_date_to_datetime(date, tz_aware=True) if date else page.fetched_at
    archived = ArchivedAt(file=name, offset=offset, at=at)
    return FetchedPage(page.model_copy(update={"fetched_at": at, "archived": archived}), body)


def page_at(path: Path, name: str, offset: int, max_bytes: int) -> FetchedPage | Skipped:
    """The page archived at ``offset`` (``name``: how its record will name the file)."""
    return _page(record_at(path, offset), name, offset, max_bytes)


def pages_from(path: Path, name: str, max_bytes: int, start: int) -> Iterator[tuple[int, FetchedPage | Skipped | None]]:
    """Each record from byte ``start`` as (its offset, the page or why it is skipped), then (where
    the records end, None): the offset a record appended later will start at. Raises DamagedArchive
    where a torn or corrupt record stops the reading (``TORN`` if the file ends inside one)."""
    with open(path, "rb") as fh:
        for offset, record in _records(fh, str(path), start):
            yield offset, _page(record, name, offset, max_bytes)
        yield fh.tell(), None


def read_pages(path: Path, name: str, max_bytes: int) -> Iterator[FetchedPage | Skipped]:
    """Every record of a WARC file, in order, as a page to parse or the reason it is skipped;
    raises DamagedArchive after the last whole record if the file is torn or corrupt there."""
    with open(path, "rb") as fh:
        for offset, record in _records(fh, str(path), 0):
            yield _page(record, name, offset, max_bytes)
