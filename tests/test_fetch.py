"""fetch_page against a misbehaving server on 127.0.0.1, through the real guarded client."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from tasks.extraction.decode import decode_html
from tasks.fetching.download import FetchLimits
from tasks.fetching.pages import fetch_page
from tasks.urlnorm import check_url
from tasks.fetching.netguard import AddressGuard, GuardedTransport
from tasks.fetching.validators import Validators
from tests import badserver
from tests.badserver import shared_site, site  # noqa: F401 - fixtures
from worker.errors import (
    ContentTypeError,
    HTTPStatusError,
    InvalidURLError,
    NetworkError,
    PermanentError,
    PrivateAddressError,
    RedirectError,
    RetryableError,
    ServerError,
    TooLargeError,
)

LIMITS = FetchLimits(connect_timeout=2, read_timeout=1, total_timeout=2, max_bytes=1_000_000, max_redirects=5,
                     user_agent="GleanerBot/test (+ops@example.org)")
PAGE = b"<html><head><title>T</title></head><body><p>Hello, world.</p></body></html>"


@pytest.fixture
def client():
    with httpx.Client(transport=GuardedTransport(AddressGuard(["127.0.0.1"])), follow_redirects=False) as c:
        yield c


def html(body: bytes = PAGE, **headers: str):
    return (200, {"Content-Type": "text/html; charset=utf-8", **headers}, body)


def test_a_good_page_comes_back_with_its_metadata(site, client):
    site.routes["/a.html"] = html(ETag='"v1"', **{"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"})
    page, body = fetch_page(site.url("/a.html"), client, LIMITS)
    assert body == PAGE
    assert (page.status, page.content_type, page.charset) == (200, "text/html", "utf-8")
    assert (page.etag, page.last_modified) == ('"v1"', "Wed, 21 Oct 2015 07:28:00 GMT")
    assert page.url == page.final_url == site.url("/a.html") and page.redirects == []


def test_the_user_agent_names_the_operator(site, client):
    seen = {}

    def route(h):
        seen.update(h.headers)
        return html()

    site.routes["/ua.html"] = route
    fetch_page(site.url("/ua.html"), client, LIMITS)
    assert seen["User-Agent"] == "GleanerBot/test (+ops@example.org)"
    assert "gzip" in seen["Accept-Encoding"]


@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send it
])
def test_compressed_pages_are_decoded(site, client, encoding, compress):
    site.routes["/z.html"] = html(compress(PAGE), **{"Content-Encoding": encoding})
    assert fetch_page(site.url("/z.html"), client, LIMITS)[1] == PAGE


def test_xhtml_is_an_article_type(site, client):
    site.routes["/x.xhtml"] = (200, {"Content-Type": "application/xhtml+xml"}, PAGE)
    assert fetch_page(site.url("/x.xhtml"), client, LIMITS)[0].content_type == "application/xhtml+xml"


# --- limits -------------------------------------------------------------------------------------

def test_a_body_that_trickles_forever_ends_at_the_total_deadline(site, client):
    site.routes["/trickle.html"] = badserver.trickle(interval=0.05)
    limits = FetchLimits(read_timeout=1, total_timeout=0.8, max_bytes=LIMITS.max_bytes)
    with pytest.raises(TooLargeError, match=r"too slow: .* not fetched within 0.8s"):
        fetch_page(site.url("/trickle.html"), client, limits)


def test_headers_that_trickle_forever_end_at_the_total_deadline(site, client):
    # Every read returns a byte well inside the read timeout; only the whole-fetch deadline stops it.
    site.routes["/slow-headers.html"] = badserver.trickle_headers(interval=0.05)
    limits = FetchLimits(read_timeout=1, total_timeout=0.8, max_bytes=LIMITS.max_bytes)
    with pytest.raises(TooLargeError, match="too slow"):
        fetch_page(site.url("/slow-headers.html"), client, limits)


def test_a_silent_server_is_a_retryable_read_timeout(site, client):
    site.routes["/silent.html"] = badserver.silent()
    limits = FetchLimits(read_timeout=0.3, total_timeout=5, max_bytes=LIMITS.max_bytes)
    with pytest.raises(NetworkError, match="timed out .*ReadTimeout"):
        fetch_page(site.url("/silent.html"), client, limits)


def test_a_declared_50mb_body_is_refused_before_reading(site, client):
    site.routes["/declared.html"] = badserver.declared_huge()
    with pytest.raises(TooLargeError, match="body of 52428800 bytes exceeds the 1000000-byte cap"):
        fetch_page(site.url("/declared.html"), client, LIMITS)


def test_an_undeclared_50mb_body_is_cut_off_while_streaming(site, client):
    flood = badserver.Flood()
    site.routes["/flood.html"] = flood
    with pytest.raises(TooLargeError, match="body exceeds the 1000000-byte cap"):
        fetch_page(site.url("/flood.html"), client, LIMITS)
    # We hung up: the server could push only what fits in the socket buffers past our cap.
    assert flood.sent < 20 * 1024 * 1024


def test_a_gzip_bomb_is_never_inflated_past_the_cap(site, client):
    site.routes["/bomb.html"] = badserver.gzip_bomb()
    assert len(badserver.gzip_bomb_bytes()) < LIMITS.max_bytes / 10  # small on the wire, 32 MB inflated
    with pytest.raises(TooLargeError, match="decompressed body exceeds 1000000 bytes"):
        fetch_page(site.url("/bomb.html"), client, LIMITS)


def test_a_corrupt_gzip_body_is_a_network_error(site, client):
    site.routes["/corrupt.html"] = html(b"\x1f\x8b\x08\x00garbage" * 10, **{"Content-Encoding": "gzip"})
    with pytest.raises(NetworkError, match="corrupt compressed body"):
        fetch_page(site.url("/corrupt.html"), client, LIMITS)


def test_an_unknown_content_encoding_is_refused(site, client):
    site.routes["/br.html"] = html(b"\x00\x01", **{"Content-Encoding": "br"})
    with pytest.raises(ContentTypeError, match="unsupported Content-Encoding 'br'"):
        fetch_page(site.url("/br.html"), client, LIMITS)


# --- redirects ----------------------------------------------------------------------------------

def test_redirects_are_followed_and_recorded(site, client):
    site.routes["/old"] = badserver.redirect("/older", 301)
    site.routes["/older"] = badserver.redirect(site.url("/new.html"), 308)
    site.routes["/new.html"] = html()
    page, body = fetch_page(site.url("/old"), client, LIMITS)
    assert body == PAGE and page.final_url == site.url("/new.html")
    assert [(r.url, r.status) for r in page.redirects] == [(site.url("/old"), 301), (site.url("/older"), 308)]


def test_a_redirect_loop_is_detected(site, client):
    site.routes["/loop-a"] = badserver.redirect("/loop-b")
    site.routes["/loop-b"] = badserver.redirect("/loop-a")
    with pytest.raises(RedirectError, match=r"redirect loop: .*/loop-a -> .*/loop-b -> .*/loop-a$"):
        fetch_page(site.url("/loop-a"), client, LIMITS)
    assert site.hits == {"/loop-a": 1, "/loop-b": 1}


def test_too_many_redirects_stop_at_the_limit(site, client):
    for n in range(20):
        site.routes[f"/hop{n}"] = badserver.redirect(f"/hop{n + 1}")
    with pytest.raises(RedirectError, match="more than 5 redirects"):
        fetch_page(site.url("/hop0"), client, LIMITS)
    assert sum(site.hits.values()) == 6


def test_a_redirect_to_another_scheme_is_refused(site, client):
    site.routes["/ftp"] = badserver.redirect("ftp://127.0.0.1/file")
    with pytest.raises(RedirectError, match="redirect to a refused URL: refused scheme 'ftp'"):
        fetch_page(site.url("/ftp"), client, LIMITS)


def test_a_redirect_to_a_private_address_is_refused_before_connecting(site, client):
    inside = badserver.Listener("127.0.0.2")  # loopback, but not on the allow-list
    try:
        site.routes["/out"] = badserver.redirect(f"http://127.0.0.2:{inside.port}/admin")
        with pytest.raises(PrivateAddressError, match="refused: 127.0.0.2 resolves to 127.0.0.2, a loopback"):
            fetch_page(site.url("/out"), client, LIMITS)
        assert inside.accepted == 0
    finally:
        inside.close()


# --- statuses -----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [404, 410, 403, 501])
def test_statuses_that_retrying_cannot_fix_are_permanent(site, client, status):
    site.routes["/s.html"] = (status, {"Content-Type": "text/html"}, b"no")
    with pytest.raises(HTTPStatusError) as info:
        fetch_page(site.url("/s.html"), client, LIMITS)
    assert info.value.status == status and isinstance(info.value, PermanentError)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_server_trouble_is_retryable(site, client, status):
    site.routes["/s.html"] = (status, {"Content-Type": "text/html"}, b"later")
    with pytest.raises(ServerError) as info:
        fetch_page(site.url("/s.html"), client, LIMITS)
    assert info.value.status == status and info.value.retry_after is None


def test_retry_after_is_read_in_seconds_and_as_a_date(site, client):
    site.routes["/429"] = (429, {"Retry-After": "7"}, b"")
    with pytest.raises(ServerError) as info:
        fetch_page(site.url("/429"), client, LIMITS)
    assert info.value.retry_after == 7.0
    site.routes["/503"] = (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"")
    with pytest.raises(ServerError) as info:
        fetch_page(site.url("/503"), client, LIMITS)
    assert info.value.retry_after == 0.0  # a date in the past: now


def test_a_connection_reset_mid_body_is_retryable(site, client):
    site.routes["/reset.html"] = badserver.reset_mid_body()
    with pytest.raises(NetworkError, match="network error fetching"):
        fetch_page(site.url("/reset.html"), client, LIMITS)


# --- content types and charsets -----------------------------------------------------------------

@pytest.mark.parametrize("content_type,body,reason", [
    ("application/pdf", b"%PDF-1.7 ...", "not an HTML page: application/pdf"),
    ("image/png", b"\x89PNG\r\n\x1a\n....", "not an HTML page: image/png"),
    ("text/plain", b"just text", "not an HTML page: text/plain"),
    ("", b"%PDF-1.4 no type given", "not an HTML page: the body is a PDF document"),
    ("text/html", b"\xff\xd8\xff\xe0 JFIF labelled as html", "not an HTML page: the body is a JPEG image"),
])
def test_non_html_is_refused(site, client, content_type, body, reason):
    headers = {"Content-Type": content_type} if content_type else {}
    site.routes["/file"] = (200, headers, body)
    with pytest.raises(ContentTypeError) as info:
        fetch_page(site.url("/file"), client, LIMITS)
    assert str(info.value) == reason


def test_shift_jis_without_a_charset_header_is_passed_on_undeclared_and_decodes(site, client):
    site.routes["/sjis.html"] = (200, {"Content-Type": "text/html"}, badserver.shift_jis_page())
    page, body = fetch_page(site.url("/sjis.html"), client, LIMITS)
    assert page.charset is None
    text = decode_html(body, page.charset)
    assert badserver.SHIFT_JIS_TEXT[0] in text and "東京都が新しい防災計画を発表" in text


def test_the_header_charset_is_passed_on(site, client):
    site.routes["/sjis.html"] = (200, {"Content-Type": 'text/html; charset="Shift_JIS"'}, badserver.shift_jis_page())
    page, body = fetch_page(site.url("/sjis.html"), client, LIMITS)
    assert page.charset == "Shift_JIS"
    assert badserver.SHIFT_JIS_TEXT[2] in decode_html(body, page.charset)


# --- conditional requests -----------------------------------------------------------------------

def test_validators_make_a_conditional_request_and_304_means_unchanged(site, client):
    seen = {}

    def route(h):
        seen.update(h.headers)
        if h.headers.get("If-None-Match") == '"v1"':
            return (304, {"ETag": '"v1"'}, b"")
        return html(ETag='"v1"')

    site.routes["/c.html"] = route
    known = Validators(site.url("/c.html"), etag='"v1"', last_modified="Wed, 21 Oct 2015 07:28:00 GMT")
    page, body = fetch_page(site.url("/c.html"), client, LIMITS, validators=known)
    assert (page.status, body) == (304, b"")
    assert seen["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    changed = Validators(site.url("/c.html"), etag='"v0"')
    assert fetch_page(site.url("/c.html"), client, LIMITS, validators=changed)[0].status == 200


def test_an_unasked_304_is_not_a_page(site, client):
    site.routes["/304"] = (304, {}, b"")
    with pytest.raises(HTTPStatusError, match="HTTP 304 Not Modified"):
        fetch_page(site.url("/304"), client, LIMITS)


# --- URLs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url,reason", [
    ("", "malformed URL: empty"),
    ("javascript:alert(1)", "refused scheme 'javascript'"),
    ("file:///etc/passwd", "refused scheme 'file'"),
    ("http:///nohost", "no host"),
    ("http://a b.com/", "whitespace"),
    ("http://a.com/x\u00a0y", "whitespace"),  # Unicode whitespace too (a no-break space)
    ("http://a.com/x\ty", "whitespace"),
    ("http://a.com/x\x1by", "control characters"),
    ("http://example.com:99999/", "malformed URL"),
])
def test_bad_urls_are_refused_without_a_request(url, reason):
    with pytest.raises(InvalidURLError, match=reason):
        check_url(url)


def test_every_error_is_either_retryable_or_permanent():
    for cls in (NetworkError, ServerError):
        assert issubclass(cls, RetryableError)
    for cls in (TooLargeError, RedirectError, ContentTypeError, HTTPStatusError, PrivateAddressError):
        assert issubclass(cls, PermanentError)
