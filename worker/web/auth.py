"""Who may use the web app: loopback-only by default, a token once it listens anywhere else.

- Bound to a loopback address with no token, the app is open, but only to requests whose Host
  header names loopback (a DNS-rebinding page cannot reach it under another name).
- With ``GLEANER_WEB_TOKEN`` set, every request but the login page and static files needs it:
  ``Authorization: Bearer <token>`` for programs, a session cookie (set by the login form) for
  browsers. The cookie holds an HMAC derived from the token, never the token, so changing the
  token logs every browser out.
- Bound beyond loopback without a token, the app refuses to start (:func:`check_bind`).
- A state-changing request (POST...) whose Origin (or Referer) names another site is refused,
  so a page elsewhere cannot submit the queue form through a logged-in browser.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

SESSION_COOKIE = "gleaner_session"
SESSION_MAX_AGE = 14 * 24 * 3600  # seconds a browser stays logged in
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Reachable without credentials: the login form itself, its stylesheet, a liveness probe.
OPEN_PATHS = ("/login", "/static/", "/healthz")
# Paths answered with 401 rather than a redirect to the login form: programs, not people.
MACHINE_PATHS = ("/api/", "/metrics", "/openapi.json")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Defence in depth behind autoescaping: even markup that slipped through could run no inline
# script, load nothing from elsewhere, and the pages cannot be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class UnsafeBindError(ValueError):
    """The web app was asked to listen beyond loopback without a token."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise UnsafeBindError(
            f"refusing to serve on {host}: beyond loopback the web app needs a token; "
            "set GLEANER_WEB_TOKEN (a long random string) or bind to 127.0.0.1"
        )


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"gleaner-web-session-v1", hashlib.sha256).hexdigest()


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def is_authenticated(request: Request, token: str | None) -> bool:
    if not token:
        return True
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(credentials.strip(), token):
        return True
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie is not None and hmac.compare_digest(cookie.encode(), session_value(token).encode())


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _host_only(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _same_origin(request: Request) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        # No Origin: not a browser's cross-site form (browsers send one on every cross-origin POST).
        return source is None
    return urlsplit(source).netloc.lower() == request.headers.get("host", "").lower()


class AccessMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, *, token: str | None, allowed_hosts: frozenset[str] | None) -> None:
        super().__init__(app)
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await self._dispatch(request, call_next)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if self.allowed_hosts is not None:
            host = _host_only(request.headers.get("host", "")).lower()
            if host not in self.allowed_hosts:
                return PlainTextResponse(f"host {host!r} not served here", status_code=400)
        if request.method not in SAFE_METHODS and not _same_origin(request):
            return PlainTextResponse("cross-site request refused", status_code=403)
        if path.startswith(OPEN_PATHS) or is_authenticated(request, self.token):
            return await call_next(request)
        if path.startswith(MACHINE_PATHS):
            return JSONResponse({"detail": "authentication required: Authorization: Bearer <GLEANER_WEB_TOKEN>"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def allowed_hosts_for(bind_host: str, token: str | None) -> frozenset[str] | None:
    """Host headers to accept: loopback names when open on loopback; any once a token guards it."""
    if token:
        return None
    return LOOPBACK_HOSTS | {bind_host.lower()}
