"""URL canonicalization: one spelling per article URL, so a page is fetched and stored once.

``canonicalize_url`` folds the variants a crawler meets for one page (case, default ports,
tracking parameters, fragments, query order, ``index.html`` and trailing slashes, AMP forms)
into one string; ``pick_canonical`` chooses between the fetched URL and the page's own
``rel=canonical`` / ``rel=amphtml`` links. ``check_url`` says what is wrong with a URL that
cannot be fetched at all, before anything is queued or sent.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from worker.errors import InvalidURLError

__all__ = ["MAX_URL_LENGTH", "TRACKING_PARAMS", "canonicalize_url", "check_url", "pick_canonical", "same_site",
           "url_aliases"]

MAX_URL_LENGTH = 2048
# A str pattern's \s is str.isspace's set (Unicode whitespace); every URL a fetch sees is checked
# three times, and one regex search costs a tenth of a loop over its characters in Python.
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")


def check_url(url: str) -> str:
    """Return the URL stripped, or raise InvalidURLError saying what is wrong with it."""
    url = url.strip()
    if not url:
        raise InvalidURLError("malformed URL: empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(f"malformed URL: longer than {MAX_URL_LENGTH} characters")
    if _BLANK_OR_CONTROL.search(url):
        raise InvalidURLError(f"malformed URL {url!r}: contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise InvalidURLError(f"malformed URL {url!r}: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        raise InvalidURLError(f"refused scheme {shown!r} in {url!r}: only http and https are fetched")
    if not parts.hostname:
        raise InvalidURLError(f"malformed URL {url!r}: no host")
    return url


# Parameters that only say where a click came from; the page is the same without them.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi",
        "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "ref_src", "ref_url",
        "cmpid", "ncid", "sr_share", "spm", "at_medium", "at_campaign", "ito", "s_cid",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_custom")

# Query switches that ask for the AMP rendering of the same article.
_AMP_QUERY = {("amp", ""), ("amp", "1"), ("amp", "true"), ("outputtype", "amp"), ("output", "amp")}
_INDEX_FILES = frozenset({"index.html", "index.htm", "index.php", "index.shtml", "default.aspx", "default.htm"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Hosts differing only by these leading labels serve the same site.
_SITE_LABELS = ("www.", "m.", "amp.", "mobile.")
# RFC 3986 unreserved characters never need percent-encoding; decoding them makes
# "%7Euser" and "~user" equal. Other escapes stay as they are ("%2F" must not split a
# segment), and raw characters that need one get one.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _normalize_pct(text: str) -> str:
    # Uppercase every escape and decode those of unreserved characters.
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(0)[1:], 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _PCT.sub(fix, text)


def _host(netloc_host: str | None, raw: str) -> str:
    if not netloc_host:
        raise InvalidURLError(f"URL has no host: {raw!r}")
    host = netloc_host.rstrip(".").lower()
    if not host:
        raise InvalidURLError(f"URL has no host: {raw!r}")
    if ":" in host:  # IPv6 literal; urlsplit strips the brackets
        return f"[{host}]"
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURLError(f"URL host is not a valid domain name: {raw!r}") from exc
    if any(ch in host for ch in " \t\r\n/\\?#@%"):
        raise InvalidURLError(f"URL host has characters a host cannot have: {raw!r}")
    return host


def _path(path: str) -> str:
    path = _normalize_pct(quote(path, safe=_PATH_SAFE))
    if not path.startswith("/"):
        path = "/" + path
    # Resolve "." and ".." the way a browser does, keeping one trailing slash if present.
    trailing = path.endswith("/")
    path = posixpath.normpath(path)
    if path.startswith("//"):  # normpath keeps a leading "//" (POSIX); the web does not care
        path = "/" + path.lstrip("/")
    if trailing and path != "/":
        path += "/"
    head, _, last = path.rpartition("/")
    if last.lower() in _INDEX_FILES:
        path = head + "/"
    # "/news/" and "/news" are the same page on nearly every site; keep the shorter.
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path


def _query(query: str) -> list[tuple[str, str]]:
    pairs = [
        (_normalize_pct(quote(name, safe="-._~!$'()*,;:@/?")), _normalize_pct(quote(value, safe="-._~!$'()*,;:@/?")))
        for name, value in parse_qsl(query, keep_blank_values=True)
        if not _is_tracking(name)
    ]
    return sorted(pairs)


def _strip_amp(host: str, path: str, query: list[tuple[str, str]]) -> tuple[str, str, list[tuple[str, str]]]:
    # Google's AMP cache wraps the publisher URL: cdn.ampproject.org/c/s/<host>/<path>.
    if host.endswith(".cdn.ampproject.org") or host == "cdn.ampproject.org":
        parts = path.split("/")
        # ["", "c"|"v"|"i", ("s")?, host, ...]
        rest = parts[2:]
        if rest and rest[0] == "s":
            rest = rest[1:]
        if rest and "." in rest[0]:
            host, path = rest[0].lower(), "/" + "/".join(rest[1:])
    if host.startswith("amp.") and host.count(".") >= 2:
        host = host[4:]
    for suffix in ("/amp", "/amp.html"):
        if path.endswith(suffix) and len(path) > len(suffix):
            path = path[: -len(suffix)] or "/"
    if path.endswith(".amp.html"):
        path = path[: -len(".amp.html")] + ".html"
    elif path.endswith(".amp"):
        path = path[: -len(".amp")]
    query = [(k, v) for k, v in query if (k.lower(), v.lower()) not in _AMP_QUERY]
    return host, path, query


def canonicalize_url(url: str, *, strip_amp: bool = True) -> str:
    """The one spelling of ``url`` used as its identity (seen-URL set, stored record).

    Raises ``InvalidURLError`` for anything that is not an absolute http(s) URL with a host.
    ``strip_amp`` folds AMP variants (``/amp`` suffix, ``?amp=1``, ``amp.`` host, Google's AMP
    cache) into the plain article URL.
    """
    if not isinstance(url, str):
        raise InvalidURLError(f"URL is not a string: {url!r}")
    raw = url
    url = url.strip()
    if not url or any(ord(ch) < 32 for ch in url):
        raise InvalidURLError(f"URL is empty or has control characters: {raw!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"malformed URL: {raw!r} ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURLError(f"refused scheme {scheme or '(none)'!r} in URL {raw!r}; only http and https")
    host = _host(parts.hostname, raw)
    path = _path(parts.path)
    query = _query(parts.query)
    if strip_amp:
        host, path, query = _strip_amp(host, path, query)
        path = _path(path)
    netloc = host
    if parts.username is not None:
        # Credentials in a URL are kept (they change what the server returns) but normalized.
        userinfo = quote(unquote(parts.username), safe="")
        if parts.password is not None:
            userinfo += ":" + quote(unquote(parts.password), safe="")
        netloc = f"{userinfo}@{host}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, path, urlencode(query, safe="-._~!$'()*,;:@/?%"), ""))


def _site(host: str) -> str:
    for label in _SITE_LABELS:
        if host.startswith(label) and host.count(".") >= 2:
            return host[len(label) :]
    return host


def same_site(a: str, b: str) -> bool:
    """True when two URLs are on one site: same host up to ``www.``/``m.``/``amp.``, or a subdomain."""
    try:
        ha, hb = _site(urlsplit(a).hostname or ""), _site(urlsplit(b).hostname or "")
    except ValueError:
        return False
    if not ha or not hb:
        return False
    return ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha)


def pick_canonical(page_url: str, canonical_link: str | None = None, amp_link: str | None = None) -> str:
    """The canonical URL of a fetched page, from its final URL and its ``<link>`` tags.

    A ``rel=canonical`` on the same site wins (it names the article the publisher means);
    one on another site is ignored, since any page can claim any canonical, and so is one
    naming the home page from an article (a common template mistake). A page served
    from Google's AMP cache may point anywhere, as its canonical is the publisher's page.
    ``amp_link`` (``rel=amphtml``) never becomes the canonical; see ``url_aliases``.
    Relative links are resolved against ``page_url``. Raises ``InvalidURLError`` only when
    ``page_url`` itself is invalid.
    """
    page = canonicalize_url(page_url)
    if canonical_link:
        try:
            candidate = canonicalize_url(urljoin(page_url, canonical_link.strip()))
        except (InvalidURLError, ValueError):
            return page
        from_amp_cache = (urlsplit(page_url.strip()).hostname or "").endswith("cdn.ampproject.org")
        # Some sites put their home page as every page's canonical; an article is not the home page.
        to_home = urlsplit(candidate).path == "/" and urlsplit(page).path != "/"
        if (from_amp_cache or same_site(page, candidate)) and not to_home:
            return candidate
    return page


def url_aliases(
    page_url: str, canonical_link: str | None = None, amp_link: str | None = None, requested_url: str | None = None
) -> set[str]:
    """Every canonical spelling under which this page may be met again (to mark all as seen)."""
    aliases = {pick_canonical(page_url, canonical_link)}
    for extra in (page_url, requested_url, amp_link and urljoin(page_url, amp_link.strip())):
        if extra:
            try:
                aliases.add(canonicalize_url(extra))
            except InvalidURLError:
                continue
    return aliases
