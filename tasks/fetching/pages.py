"""Article pages: HTML only (by its Content-Type and by its first bytes), and the Page parse gets.

``fetch_page`` is the policy-free fetch of one page (no robots.txt, no host limits: those are
tasks/fetching/policy.py's), for tests and the fetch benchmark; the fetch stage gets its
response through the policy and makes the page with ``page_of``.
"""

from __future__ import annotations

from typing import Any

import httpx

from tasks.fetching.download import FetchLimits, Download, download, media_type
from tasks.fetching.policy import raise_for_status
from tasks.fetching.validators import Validators
from worker.errors import ContentTypeError
from worker.models import Page

ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
HTML_TYPES = ("text/html", "application/xhtml+xml")
# A body that is plainly not a page, whatever its Content-Type says (or when it says nothing).
_MAGIC = ((b"%PDF-", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"\xff\xd8\xff", "a JPEG image"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip file"))


def refuse_non_html(response: httpx.Response) -> None:
    """Before the body is read: a PDF where HTML was wanted is never downloaded."""
    media, _ = media_type(response.headers)
    if media and media not in HTML_TYPES:
        raise ContentTypeError(f"not an HTML page: {media}")


def _sniff(body: bytes) -> None:
    head = body[:16].lstrip()
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise ContentTypeError(f"not an HTML page: the body is {kind}")
    if head[8:12] == b"WEBP" and head.startswith(b"RIFF"):
        raise ContentTypeError("not an HTML page: the body is a WebP image")


def _page(got: Download, charset: str | None) -> Page:
    media, _ = media_type(got.headers)
    return Page(url=got.url, final_url=got.final_url, status=got.status, content_type=media or "text/html",
                charset=charset, redirects=got.redirects, etag=got.headers.get("etag"),
                last_modified=got.headers.get("last-modified"))


def page_of(got: Download) -> tuple[Page, bytes]:
    """The page of a 2xx response, or ContentTypeError if its body is plainly not HTML."""
    _sniff(got.body)
    _, charset = media_type(got.headers)
    return _page(got, charset), got.body


def fetch_page(url: str, client: httpx.Client, limits: FetchLimits, *,
               validators: Validators | None = None) -> tuple[Page, bytes]:
    """Fetch an HTML page; with ``validators``, a Page of status 304 and no body if it is unchanged."""
    headers: dict[str, Any] = {"Accept": ACCEPT_HTML, **(validators.headers() if validators else {})}
    got = download(url, client, limits, headers=headers, check=refuse_non_html)
    if got.status == 304 and validators is not None:
        return _page(got, None), b""
    raise_for_status(got)
    return page_of(got)
