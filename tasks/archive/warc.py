"""A download as WARC 1.1 records (a ``response`` and the ``request`` that fetched it), and a
WARC ``response`` record back as the page the parse stage reads."""

from __future__ import annotations

from io import BytesIO
from urllib.parse import urlsplit

import httpx
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from tasks.fetching.download import Download
from worker.deflated import Deflated, gzip_member

WARC_VERSION = "1.1"
DEFAULT_GZIP_LEVEL = 1  # the setting archive_gzip_level's default (worker/settings.py)
# httpx hands over the body with its chunked transfer coding already undone: the header stays,
# renamed, so a reader does not try to de-chunk a body that no longer is.
_UNDONE = {"transfer-encoding": "X-Gleaner-Transfer-Encoding"}
_END = b"\r\n\r\n"  # what closes a record's block


def _headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    out = []
    for name, value in raw:
        text = name.decode("latin-1")
        out.append((_UNDONE.get(text.lower(), text), value.decode("latin-1")))
    return out


def response_records(got: Download, gzip_level: int = DEFAULT_GZIP_LEVEL, body: Deflated | None = None) -> bytes:
    """The page's ``response`` record and its ``request`` record, each its own gzip member, as the
    bytes to append to a WARC file (the response first: a record's offset is where its bytes start).
    ``body``: the page's body, already deflated; when the page came as it is (no Content-Encoding)
    that is the record's payload, and its blocks go into the record as they are, not compressed again."""
    builder = WARCWriter(BytesIO(), gzip=False, warc_version=WARC_VERSION)
    date = {"WARC-Date": datetime_to_iso_date(got.requested_at.replace(tzinfo=None), use_micros=True)}
    status = StatusAndHeaders(f"{got.status} {got.reason}".strip(), _headers(got.headers.raw),
                              protocol=got.http_version)
    response = builder.create_warc_record(got.final_url, "response", payload=BytesIO(got.raw), length=len(got.raw),
                                          http_headers=status, warc_headers_dict=date)
    parts = urlsplit(got.final_url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_line = StatusAndHeaders(f"GET {target} {got.http_version}", _headers(got.request_headers.raw),
                                    is_http_request=True)
    request = builder.create_warc_record(got.final_url, "request", payload=BytesIO(b""), length=0,
                                         http_headers=request_line, warc_headers_dict=date)
    request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
    payload = body if body is not None and body.data == got.raw else None
    return record_member(response, gzip_level, payload) + record_member(request, gzip_level)


def record_member(record: ArcWarcRecord, gzip_level: int, payload: Deflated | None = None) -> bytes:
    """One record as one gzip member. warcio's own gzip writes at level 9, which on real pages
    (~200 KB) costs about four times level 1's CPU for a fifth less disk: the record is written
    plain and compressed here at the level the settings choose. ``payload``: the record's payload
    already deflated; only the headers before it and the line after it are compressed here."""
    plain = BytesIO()
    WARCWriter(plain, gzip=False, warc_version=WARC_VERSION).write_record(record)
    written = plain.getvalue()
    if payload is None:
        return gzip_member([written], gzip_level)
    # warcio writes the headers, the payload as given, then the closing line.
    head = len(written) - len(payload.data) - len(_END)
    if written[head + len(payload.data):] != _END:
        raise ValueError("the record does not end in its payload and the closing line")
    return gzip_member([written[:head], payload, _END], gzip_level)


def download_of(record: ArcWarcRecord, body: bytes) -> Download:
    """A ``response`` record as the download it recorded (``body``: its payload, decoded)."""
    http = record.http_headers
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    status = int(http.get_statuscode() or 0)
    headers = httpx.Headers([(k, v) for k, v in http.headers if k.lower() != "x-gleaner-transfer-encoding"])
    return Download(url=url, final_url=url, status=status, headers=headers, body=body,
                    reason=http.statusline.partition(" ")[2], http_version=http.protocol or "HTTP/1.1")
